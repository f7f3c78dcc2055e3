"""Steering benchmark by the field's protocol (ColorMNet, ECCV 2024, Table 1): one true frame of
each clip is the reference; PSNR, SSIM and CDC over the clip (and PSNR over its last 10 frames)
against the truth (SSIM on every third frame; no warping error: it needs a slow reference
flow), for automatic colour, automatic keyframes, keyframe propagation from the
first and the middle frame, a non-matched reference photo (the middle frame mirrored and cropped
to 70 %), the naive chained baseline and the grey input.

    .venv/bin/python benchmarks/steer_benchmark.py ../shared/data/videos \\
        --json benchmarks/results/steer_benchmark.json
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from eval_temporal import clips_in, mean

from vidcolor.colorize import Colorizer
from vidcolor.models import DEFAULT_MODEL, STEER_MODEL
from vidcolor.presets import load_pipeline
from vidcolor.steer.evaluate import VARIANTS, SteerScore, evaluate_steering, format_scores
from vidcolor.temporal.evaluate import read_clip

COLUMNS = ("psnr", "psnr_tail", "ssim", "cdc")


def summary(rows: list[dict]) -> str:
    """Means over clips per variant, and each variant's gain over automatic."""
    out = [f"{'variant':<18}{'PSNR':>7}{'last10':>8}{'SSIM':>8}{'CDC':>9}{'dB vs auto':>11}"
           f"{'last10 vs auto':>15}{'ms/frame':>10}"]
    auto = [r for r in rows if r["label"] == "automatic"]
    for label in dict.fromkeys(r["label"] for r in rows):
        sel = [r for r in rows if r["label"] == label]
        m = {c: mean([r[c] for r in sel]) for c in COLUMNS}
        gain = mean([r["psnr"] - a["psnr"] for r, a in zip(sel, auto, strict=True)])
        tail = mean([r["psnr_tail"] - a["psnr_tail"] for r, a in zip(sel, auto, strict=True)])
        ms = mean([r["ms_per_frame"] for r in sel])
        out.append(f"{label:<18}{m['psnr']:>7.2f}{m['psnr_tail']:>8.2f}{m['ssim']:>8.4f}"
                   f"{m['cdc']:>9.5f}{gain:>+11.2f}{tail:>+15.2f}{ms:>10.1f}")
    return "\n".join(out)


def reprint(path: Path) -> None:
    """The per-clip tables and the summary again, from a run's JSON."""
    data = json.loads(path.read_text())
    rows = data["rows"]
    for clip in dict.fromkeys(r["clip"] for r in rows):
        sel = [r for r in rows if r["clip"] == clip]
        scores = [SteerScore(**{k: (math.nan if v is None else v) for k, v in r.items()
                                if k not in ("clip", "frames")}) for r in sel]
        print(format_scores(f"{clip} ({sel[0]['frames']} frames)", scores))
    print(f"\nmean over {len(set(r['clip'] for r in rows))} clips (models {data['model']} / "
          f"{data['steer_model']}, first {data['max_frames']} frames):")
    print(summary(rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, nargs="?", help="clips folder (not with --from-json)")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--steer-model", default=STEER_MODEL)
    ap.add_argument("--pipeline", default="balanced")
    ap.add_argument("--max-frames", type=int, default=60)
    ap.add_argument("--ssim-every", type=int, default=3,
                    help="SSIM on every Nth frame (the slow metric; default 3)")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--clips", help="comma-separated clip names (default: every clip)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--from-json", type=Path, help="only print the tables of an earlier run")
    a = ap.parse_args()
    if a.from_json is not None:
        reprint(a.from_json)
        return
    logging.getLogger("vidcolor").setLevel(logging.WARNING)
    settings = load_pipeline(a.pipeline)
    auto = Colorizer.load(a.model, device="cpu", working_short_side=settings.working_short_side)
    auto.use_fade(not settings.vivid)  # automatic colour as the film path gives it
    guided = Colorizer.load(a.steer_model, device="cpu",
                            working_short_side=settings.working_short_side)
    temporal = settings.temporal_options(device="cpu")
    clips = clips_in(a.folder)
    if a.clips:
        keep = set(a.clips.split(","))
        clips = [c for c in clips if c.name in keep]
    rows = []
    t0 = time.perf_counter()
    for clip in clips:
        frames, _ = read_clip(clip, max_frames=a.max_frames)
        scores = evaluate_steering(
            frames, automatic=auto, guided=guided, temporal=temporal,
            working_short_side=settings.working_short_side, variants=a.variants.split(","),
            batch_size=settings.batch_size, warping_error=False, ssim_every=a.ssim_every,
        )
        print(format_scores(f"{clip.name} ({len(frames)} frames)", scores), flush=True)
        rows += [{"clip": clip.name, "frames": len(frames), **asdict(s)} for s in scores]
    print(f"\nmean over {len(clips)} clips ({time.perf_counter() - t0:.0f} s; "
          f"models {auto.name} / {guided.name}, working short side "
          f"{settings.working_short_side}):")
    print(summary(rows))
    if a.json is not None:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        clean = [{k: (None if isinstance(v, float) and math.isnan(v) else v)
                  for k, v in r.items()} for r in rows]
        a.json.write_text(json.dumps({"rows": clean, "max_frames": a.max_frames,
                                      "ssim_every": a.ssim_every,
                                      "model": auto.name, "steer_model": guided.name},
                                     indent=1))


if __name__ == "__main__":
    main()
