"""Per-clip flicker and accuracy table of the temporal stage (per-frame vs forward vs
bidirectional) on every clip of a folder, with the shipped model.

    .venv/bin/python benchmarks/eval_temporal.py ../shared/data/videos \\
        --json benchmarks/results/eval_temporal.json
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from dataclasses import replace
from pathlib import Path

from vidcolor.colorize import Colorizer
from vidcolor.models import DEFAULT_MODEL
from vidcolor.presets import load_pipeline
from vidcolor.temporal.evaluate import ORIGINAL_LABEL, evaluate_video

CLIP_SUFFIXES = (".mp4", ".avi", ".webm", ".mkv", ".mov")


def clips_in(folder: Path) -> list[Path]:
    """Video files and folders of numbered frames, sorted."""
    return sorted(p for p in folder.iterdir() if p.is_dir() or p.suffix.lower() in CLIP_SUFFIXES)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--pipeline", default="balanced")
    ap.add_argument("--max-frames", type=int, default=90)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    logging.getLogger("vidcolor").setLevel(logging.WARNING)
    settings = load_pipeline(a.pipeline)
    colorizer = Colorizer.load(
        a.model, device="cpu", working_short_side=settings.working_short_side
    )
    base = settings.temporal_options(device="cpu")
    results = []
    for clip in clips_in(a.folder):
        res = evaluate_video(
            clip,
            colorize_fn=lambda L: colorizer.predict(L).cpu(),
            working_short_side=settings.working_short_side,
            options_list=[replace(base, mode="forward"), replace(base, mode="bidirectional")],
            max_frames=a.max_frames,
        )
        print(res.format_table(), flush=True)
        results.append(res.to_dict())
    head = ("| clip | frames | mode | PSNR | warping error | x per-frame | excess x | CDC "
            "| x per-frame | ms/frame |")
    print("\n" + head + "\n|" + "---|" * 10)
    for r in results:
        v = {x["label"]: x for x in r["variants"]}
        pf, orig = v["per-frame"], v[ORIGINAL_LABEL]
        for x in r["variants"]:
            if x["label"] == ORIGINAL_LABEL:
                continue
            print(f"| {Path(r['clip']).name} | {r['frames']} | {x['label']} | {x['psnr']:.2f} "
                  f"| {x['warping_error']:.5f} | {x['warping_error'] / pf['warping_error']:.2f} "
                  f"| {x['cdc']:.5f} | {x['cdc'] / pf['cdc']:.2f} "
                  f"| {x['ms_per_frame']:.1f} |")
        print(f"| {Path(r['clip']).name} | {r['frames']} | original colours (floor) | - "
              f"| {orig['warping_error']:.5f} | {orig['warping_error'] / pf['warping_error']:.2f} "
              f"| {orig['cdc']:.5f} | {orig['cdc'] / pf['cdc']:.2f} | - |")
    summary = {}
    for label in ("dis/forward", "dis/bidirectional"):
        ratios_we = [
            next(x for x in r["variants"] if x["label"] == label)["warping_error"]
            / r["variants"][0]["warping_error"] for r in results
        ]
        ratios_cdc = [
            next(x for x in r["variants"] if x["label"] == label)["cdc"]
            / r["variants"][0]["cdc"] for r in results
        ]
        dpsnr = [
            next(x for x in r["variants"] if x["label"] == label)["psnr"]
            - r["variants"][0]["psnr"] for r in results
        ]
        summary[label] = {
            "warping_error_ratio_geomean": math.exp(sum(map(math.log, ratios_we)) / len(ratios_we)),
            "cdc_ratio_geomean": math.exp(sum(map(math.log, ratios_cdc)) / len(ratios_cdc)),
            "psnr_change_mean": sum(dpsnr) / len(dpsnr),
        }
    print("\nsummary (geometric mean of ratios to per-frame over clips):")
    for label, s in summary.items():
        print(f"  {label}: warping error x{s['warping_error_ratio_geomean']:.2f}, "
              f"CDC x{s['cdc_ratio_geomean']:.2f}, PSNR {s['psnr_change_mean']:+.2f} dB")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"clips": results, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
