"""How the warping error's reference flow sets its floor: per-frame, stabilised (default
forward stage) and steady-grey warping error of clips under several reference flows.

    .venv/bin/python benchmarks/reference_flow_floor.py ../shared/data/videos/davis_blackswan \\
        --max-frames 12
    .venv/bin/python benchmarks/reference_flow_floor.py ../shared/data/videos \\
        --max-frames 20 --methods farneback,tv-l1

Farneback (what ``vidcolor eval-video`` uses) always runs; TV-L1 and DeepFlow run when OpenCV's
contrib modules (``cv2.optflow``) are importable. They are not a dependency of vidcolor; to try
them without touching the project's OpenCV, unpack the wheel and put it first on the path:

    pip download --no-deps opencv-contrib-python-headless -d /tmp/w
    unzip -q /tmp/w/*.whl -d /tmp/cvc && PYTHONPATH=/tmp/cvc .venv/bin/python benchmarks/...
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from eval_temporal import clips_in, geomean

from vidcolor.colorize import Colorizer
from vidcolor.lab import lab_to_rgb, rgb_to_l
from vidcolor.models import DEFAULT_MODEL
from vidcolor.presets import load_pipeline
from vidcolor.temporal import evaluate as ev
from vidcolor.temporal.cuts import CutDetector
from vidcolor.temporal.flow import FarnebackFlow, _to_uint8
from vidcolor.temporal.metrics import warping_error_pair
from vidcolor.temporal.stabilize import make_temporal_stage, run_stage_on_sequence
from vidcolor.temporal.warp import consistency_mask, motion_boundary_mask

FlowFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def reference_flows() -> dict[str, FlowFn]:
    """Name -> flow(a, b) on uint8 images, for every method this OpenCV has."""
    methods: dict[str, FlowFn] = {"farneback": FarnebackFlow()._one}  # eval-video's reference
    if hasattr(cv2, "optflow"):
        tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
        deep = cv2.optflow.createOptFlow_DeepFlow()
        methods["tv-l1"] = lambda a, b: tvl1.calc(a, b, None)
        methods["deepflow"] = lambda a, b: deep.calc(a, b, None)
    return methods


def measure(
    clip: Path, colorizer: Colorizer, methods: dict[str, FlowFn], max_frames: int
) -> dict[str, dict[str, float]]:
    """Per reference flow: each output's mean warping error as a multiple of per-frame's."""
    settings = load_pipeline("balanced")
    frames, _ = ev.read_clip(clip, max_frames=max_frames)
    rgb = ev.as_rgb(np.stack(frames))
    L = rgb_to_l(rgb)
    size = ev.working_size(tuple(L.shape[-2:]), settings.working_short_side)
    L_work, pred = ev._predict(L, lambda x: colorizer.predict(x).cpu(), size)
    stage = make_temporal_stage(settings.temporal_options(device="cpu"))
    stable = run_stage_on_sequence(stage, L_work, pred)
    n = len(frames)
    outputs = {
        "per-frame": torch.cat(
            [ev._render(L[t : t + 1], pred[t : t + 1], L_work[t : t + 1]) for t in range(n)]
        ),
        "forward": torch.cat(
            [ev._render(L[t : t + 1], stable[t : t + 1], L_work[t : t + 1]) for t in range(n)]
        ),
        "steady grey": lab_to_rgb(torch.cat([L, torch.zeros(n, 2, *L.shape[-2:])], dim=1)),
        "original colours": rgb,
    }
    u8 = _to_uint8(L)
    cuts = CutDetector()
    is_cut = [cuts.update(L[t]) for t in range(n)]
    print(f"{clip}: {n} frames; warping error as a multiple of per-frame colouring")
    found: dict[str, dict[str, float]] = {}
    for name, flow in methods.items():
        start = time.perf_counter()
        errors: dict[str, list[float]] = {k: [] for k in outputs}
        kept = []
        for t in range(1, n):
            if is_cut[t]:
                continue
            cur_prev = torch.from_numpy(flow(u8[t], u8[t - 1])).permute(2, 0, 1)[None].float()
            prev_cur = torch.from_numpy(flow(u8[t - 1], u8[t])).permute(2, 0, 1)[None].float()
            mask = consistency_mask(cur_prev, prev_cur) * motion_boundary_mask(cur_prev)
            kept.append(float(mask.mean()))
            for k, v in outputs.items():
                errors[k].append(warping_error_pair(v[t - 1 : t], v[t : t + 1], cur_prev, mask))
        seconds = (time.perf_counter() - start) / max(2 * len(kept), 1)
        base = float(np.mean(errors["per-frame"]))
        found[name] = {k: float(np.mean(v)) / base for k, v in errors.items()}
        ratios = "  ".join(f"{k} x{r:.2f}" for k, r in found[name].items())
        print(f"  {name:<10} per-frame {base:.5f}  {ratios}  "
              f"(pixels kept {np.mean(kept):.0%}, {seconds:.2f} s per flow)", flush=True)
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip", type=Path, help="a clip, or a folder of clips")
    ap.add_argument("--max-frames", type=int, default=12)
    ap.add_argument("--methods", help="comma-separated subset of the available reference flows")
    a = ap.parse_args()
    logging.getLogger("vidcolor").setLevel(logging.WARNING)
    methods = reference_flows()
    if a.methods:
        wanted = a.methods.split(",")
        missing = sorted(set(wanted) - set(methods))
        if missing:
            raise SystemExit(
                f"reference flows not available here: {missing}; have {sorted(methods)}"
            )
        methods = {k: methods[k] for k in wanted}
    colorizer = Colorizer.load(
        DEFAULT_MODEL, device="cpu", working_short_side=load_pipeline("balanced").working_short_side
    )
    clips = clips_in(a.clip) if a.clip.is_dir() else [a.clip]
    results = [measure(clip, colorizer, methods, a.max_frames) for clip in clips]
    if len(results) > 1:
        print("\ngeometric mean over clips of the multiple of per-frame warping error:")
        for name in methods:
            means = {k: geomean([r[name][k] for r in results]) for k in results[0][name]}
            print(f"  {name:<10} " + "  ".join(f"{k} x{v:.2f}" for k, v in means.items()))


if __name__ == "__main__":
    main()
