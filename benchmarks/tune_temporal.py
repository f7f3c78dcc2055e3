"""How the stabiliser's strength, lightness sigma and mode trade flicker against accuracy, on
every clip of a folder, with the shipped model (how the defaults were chosen).

    .venv/bin/python benchmarks/tune_temporal.py ../shared/data/videos --max-frames 40 \\
        | tee benchmarks/results/tune_temporal.txt

Per clip and setting: warping error as a multiple of per-frame colouring, the *excess* multiple
(warping error above the steady-grey floor, i.e. the share of the removable flicker left), the
PSNR change against per-frame colouring and the stage's own ms per frame.
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch

from vidcolor.colorize import Colorizer
from vidcolor.lab import rgb_to_l
from vidcolor.models import DEFAULT_MODEL
from vidcolor.presets import load_pipeline
from vidcolor.temporal import evaluate as ev
from vidcolor.temporal.cuts import DEFAULT_CUT_THRESHOLD
from vidcolor.temporal.flow import DisFlow
from vidcolor.temporal.stabilize import BidirectionalStage, ForwardStage, run_stage_on_sequence

SETTINGS = {  # label: (mode, strength, lightness sigma, DIS preset)
    "fwd s0.80 sig6": ("forward", 0.80, 6.0, "fast"),
    "fwd s0.95 sig6": ("forward", 0.95, 6.0, "fast"),
    "fwd s0.90 sig12": ("forward", 0.90, 12.0, "fast"),
    "fwd s0.95 sig12": ("forward", 0.95, 12.0, "fast"),
    "fwd s0.95 sig20": ("forward", 0.95, 20.0, "fast"),
    "fwd s0.95 sig12 medium": ("forward", 0.95, 12.0, "medium"),
    "bidi s0.80 sig6": ("bidirectional", 0.80, 6.0, "fast"),
    "bidi s0.95 sig12": ("bidirectional", 0.95, 12.0, "fast"),
}
WINDOW = 10


def score(
    ab: torch.Tensor,
    L_full: torch.Tensor,
    L_work: torch.Tensor,
    frames: list[np.ndarray],
    flows: list,
) -> tuple[float, float]:
    """Warping error and PSNR of working-size ab rendered at full size as the pipeline does."""
    rendered = (
        ev._render(L_full[t : t + 1], ab[t : t + 1], L_work[t : t + 1]) for t in range(len(frames))
    )
    r = ev._score("", rendered, frames, flows)
    return r.warping_error, r.psnr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--max-frames", type=int, default=40)
    ap.add_argument(
        "--working-short-side", type=int, default=load_pipeline("balanced").working_short_side
    )
    a = ap.parse_args()
    logging.getLogger("vidcolor").setLevel(logging.WARNING)
    colorizer = Colorizer.load(
        DEFAULT_MODEL, device="cpu", working_short_side=a.working_short_side
    )
    from eval_temporal import clips_in

    rows: dict[str, list[tuple[float, float, float]]] = {k: [] for k in SETTINGS}
    for clip in clips_in(a.folder):
        frames, _ = ev.read_clip(clip, max_frames=a.max_frames)
        rgb = ev.as_rgb(np.stack(frames))
        L_full = rgb_to_l(rgb)
        size = ev.working_size(tuple(L_full.shape[-2:]), a.working_short_side)
        L_work, pred = ev._predict(L_full, lambda L: colorizer.predict(L).cpu(), size)
        flows = ev._reference_flows(rgb, L_full)

        base_we, base_psnr = score(pred, L_full, L_work, frames, flows)
        grey_we, _ = score(torch.zeros_like(pred), L_full, L_work, frames, flows)
        print(f"{clip.name}: per-frame {base_we:.5f}, steady grey x{grey_we / base_we:.2f}")
        for label, (mode, strength, sigma, preset) in SETTINGS.items():
            common = {
                "backend": DisFlow(preset=preset),
                "strength": strength,
                "cut_threshold": DEFAULT_CUT_THRESHOLD,
                "device": torch.device("cpu"),
                "luma_sigma": sigma,
            }
            stage = (
                BidirectionalStage(window=WINDOW, **common)
                if mode == "bidirectional"
                else ForwardStage(**common)
            )
            start = time.perf_counter()
            ab = run_stage_on_sequence(stage, L_work, pred)
            ms = (time.perf_counter() - start) * 1000.0 / len(frames)
            we, psnr = score(ab, L_full, L_work, frames, flows)
            excess = (we - grey_we) / (base_we - grey_we) if base_we > grey_we else math.nan
            rows[label].append((we / base_we, excess, psnr - base_psnr))
            print(f"  {label:<22} x{we / base_we:.2f}  excess x{excess:5.2f}  "
                  f"{psnr - base_psnr:+.2f} dB  {ms:.1f} ms/frame", flush=True)
    print("\nover clips: geometric mean of the ratio, mean excess ratio, mean PSNR change")
    for label, values in rows.items():
        v = np.array(values)
        print(f"  {label:<22} x{math.exp(np.log(v[:, 0]).mean()):.3f}  "
              f"excess x{np.nanmean(v[:, 1]):.3f}  {v[:, 2].mean():+.3f} dB")


if __name__ == "__main__":
    main()
