"""Accuracy and vividness of the default film output on real colour clips, for one or more
models in one run: each clip (first 90 frames) is made grey, coloured by the model at the
default preset's working size, stabilised by the default temporal stage and upsampled guided
by the full-resolution lightness, as ``vidcolor film.mp4`` does (colour faded where the model is
unsure; ``--vivid`` also scores the unfaded colour); then compared with the truth.

    .venv/bin/python benchmarks/eval_films.py ../shared/data/videos \\
        --models vidcolor-fusion-v1 vidcolor-fusion --json benchmarks/results/eval_films.json

Per clip: PSNR of the grey clip and of each model's output, colorfulness (Hasler-Suesstrunk)
of the truth and the output, and the blotch share (confident colour of the wrong hue).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
from pathlib import Path

import numpy as np
import torch
from eval_temporal import clips_in, parse_settings  # this folder's script: shared helpers

from vidcolor.colorize import Colorizer
from vidcolor.lab import colorfulness, lab_to_rgb, rgb_to_l
from vidcolor.presets import load_pipeline
from vidcolor.temporal.evaluate import _predict, _render, read_clip, working_size
from vidcolor.temporal.metrics import as_rgb
from vidcolor.temporal.stabilize import make_temporal_stage, run_stage_on_sequence
from vidcolor.train.metrics import blotch, psnr


@torch.inference_mode()
def score_clip(
    frames: list[np.ndarray], colorizer: Colorizer, settings, stride: int
) -> dict[str, float]:
    """Mean PSNR, colorfulness and blotch share of the film output (every ``stride``-th frame
    scored; all frames coloured and stabilised)."""
    rgb = as_rgb(np.stack(frames))
    L_full = rgb_to_l(rgb)
    size = working_size(tuple(L_full.shape[-2:]), settings.working_short_side)

    def colorize_fn(L: torch.Tensor) -> torch.Tensor:
        return colorizer.predict(L).cpu() * settings.saturation

    L_work, pred = _predict(L_full, colorize_fn, size)
    stage = make_temporal_stage(settings.temporal_options(device="cpu"))
    ab = run_stage_on_sequence(stage, L_work, pred)
    out: dict[str, list[float]] = {"psnr": [], "colorfulness": [], "blotch": []}
    for t in range(0, len(frames), stride):
        frame = _render(L_full[t : t + 1], ab[t : t + 1], L_work[t : t + 1])
        frame = (frame * 255.0).round() / 255.0
        truth = rgb[t : t + 1]
        out["psnr"].append(float(psnr(frame, truth)))
        out["colorfulness"].append(float(colorfulness(frame)))
        out["blotch"].append(float(blotch(frame, truth)))
    return {k: float(np.mean(v)) for k, v in out.items()}


def grey_scores(frames: list[np.ndarray], stride: int) -> dict[str, float]:
    """PSNR of the grey clip and colorfulness of the truth, on the same frames."""
    ps, cf = [], []
    for t in range(0, len(frames), stride):
        truth = as_rgb(frames[t][None])
        L = rgb_to_l(truth)
        grey = lab_to_rgb(torch.cat([L, torch.zeros_like(L).expand(-1, 2, -1, -1)], 1))
        ps.append(float(psnr((grey * 255).round() / 255, truth)))
        cf.append(float(colorfulness(truth)))
    return {"grey_psnr": float(np.mean(ps)), "truth_colorfulness": float(np.mean(cf))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--models", nargs="+", default=["vidcolor-fusion"])
    ap.add_argument("--vivid", action="store_true",
                    help="also score each model as `--vivid` colours (not faded where unsure)")
    ap.add_argument("--max-frames", type=int, default=90)
    ap.add_argument("--stride", type=int, default=3, help="score every N-th frame")
    ap.add_argument("--model-every", type=int, nargs="+", metavar="N",
                    help="also score the film path with the model on every N-th frame (default: "
                    "the preset's; each value gets its own rows)")
    ap.add_argument("--variant", action="append", default=[], metavar="KEY=VALUE[,KEY=VALUE]",
                    help="also score the film path with these preset settings changed (e.g. "
                    "model_every=3,working_short_side=192); each variant gets its own rows")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    logging.getLogger("vidcolor").setLevel(logging.WARNING)
    preset = load_pipeline()
    variants: dict[str, object] = {"": preset}  # row tag -> settings
    if a.model_every:
        variants = {f" every {n}": dataclasses.replace(preset, model_every=n)
                    for n in a.model_every}
    for v in a.variant:
        variants[f" {v}"] = dataclasses.replace(preset, **parse_settings(v))
    colorizers = {}  # row name -> (model, whether its films fade as the film path does, preset)
    for m in a.models:
        c = Colorizer.load(m, device="cpu", working_short_side=preset.working_short_side)
        for tag, settings in variants.items():
            colorizers[f"{m}{tag}"] = (c, True, settings)
            if a.vivid:
                colorizers[f"{m}{tag} --vivid"] = (c, False, settings)
    rows = []
    for clip in clips_in(a.folder):
        frames, _ = read_clip(clip, max_frames=a.max_frames)
        row = {"clip": clip.name, "frames": len(frames), **grey_scores(frames, a.stride)}
        for name, (colorizer, film, settings) in colorizers.items():
            colorizer.use_fade(film)
            colorizer.working_short_side = settings.working_short_side
            row[name] = score_clip(frames, colorizer, settings, a.stride)
        rows.append(row)
        cells = "  ".join(
            f"{n}: {row[n]['psnr']:.2f} dB ({row[n]['psnr'] - row['grey_psnr']:+.2f}), "
            f"colourful {row[n]['colorfulness']:.1f}, blotch {100 * row[n]['blotch']:.1f} %"
            for n in colorizers
        )
        print(f"{clip.name:<40} grey {row['grey_psnr']:.2f} dB, truth colourful "
              f"{row['truth_colorfulness']:.1f} | {cells}", flush=True)
    summary = {}
    for n in colorizers:
        deltas = [r[n]["psnr"] - r["grey_psnr"] for r in rows]
        ratios = [r[n]["colorfulness"] / r["truth_colorfulness"] for r in rows
                  if r["truth_colorfulness"] > 0]
        summary[n] = {
            "mean_psnr": float(np.mean([r[n]["psnr"] for r in rows])),
            "mean_vs_grey_db": float(np.mean(deltas)),
            "worst_vs_grey_db": float(min(deltas)),
            "worst_clip": rows[int(np.argmin(deltas))]["clip"],
            "colorfulness_vs_truth": float(np.mean(ratios)) if ratios else math.nan,
            "blotch": float(np.mean([r[n]["blotch"] for r in rows])),
        }
    grey = float(np.mean([r["grey_psnr"] for r in rows]))
    print(f"\nmean over {len(rows)} clips: grey {grey:.2f} dB")
    print(f"{'model':<28}{'PSNR':>7}{'vs grey':>9}{'worst':>8}  {'worst clip':<34}"
          f"{'colourful/truth':>16}{'blotch %':>10}")
    for n, s in summary.items():
        print(f"{n:<28}{s['mean_psnr']:>7.2f}{s['mean_vs_grey_db']:>+9.2f}"
              f"{s['worst_vs_grey_db']:>+8.2f}  {s['worst_clip']:<34}"
              f"{s['colorfulness_vs_truth']:>16.2f}{100 * s['blotch']:>10.2f}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({
            "preset": "balanced", "max_frames": a.max_frames, "stride": a.stride,
            "grey_psnr": grey, "clips": rows, "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
