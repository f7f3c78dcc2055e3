"""Per-clip flicker and accuracy table of the temporal stage (per-frame vs forward vs
bidirectional) on every clip of a folder, with the shipped model.

    .venv/bin/python benchmarks/eval_temporal.py ../shared/data/videos \\
        --json benchmarks/results/eval_temporal.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
from collections.abc import Iterable
from pathlib import Path

from vidcolor.colorize import Colorizer
from vidcolor.models import DEFAULT_MODEL
from vidcolor.presets import PipelineSettings, load_pipeline
from vidcolor.temporal import MODE_CHOICES
from vidcolor.temporal.evaluate import GREY_LABEL, ORIGINAL_LABEL, evaluate_video
from vidcolor.temporal.flow import resolve_flow_name

CLIP_SUFFIXES = (".mp4", ".avi", ".webm", ".mkv", ".mov")


def geomean(values: list[float]) -> float:
    """Geometric mean (NaN if any value is not positive)."""
    if any(not v > 0 for v in values):
        return math.nan
    return math.exp(sum(map(math.log, values)) / len(values))


def mean(values: list[float]) -> float:
    """Mean of the values that are not NaN."""
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


def clips_in(folder: Path) -> list[Path]:
    """Video files and folders of numbered frames, sorted."""
    return sorted(p for p in folder.iterdir() if p.is_dir() or p.suffix.lower() in CLIP_SUFFIXES)


def parse_settings(text: str, *, others: Iterable[str] = ()) -> dict[str, object]:
    """``key=value[,key=value]`` -> preset settings, each value of its setting's type; keys in
    ``others`` (say, command options that are not preset settings) are kept as text."""
    kinds = {f.name: type(f.default) for f in dataclasses.fields(PipelineSettings)}
    out: dict[str, object] = {}
    for pair in text.split(","):
        key, _, value = pair.partition("=")
        if key in kinds:
            kind = kinds[key]
            out[key] = value.lower() == "true" if kind is bool else kind(value)
        elif key in others:
            out[key] = value
        else:
            raise SystemExit(f"{text}: unknown setting {key!r}; known: {', '.join(kinds)}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--pipeline", default="balanced")
    ap.add_argument("--max-frames", type=int, default=90)
    ap.add_argument("--modes", nargs="+", choices=MODE_CHOICES, default=list(MODE_CHOICES))
    ap.add_argument("--compare", action="append", default=[], metavar="NAME=PRESET",
                    help="also score another preset (a name or a .toml) in the same modes, "
                    "its rows labelled NAME (its working size must be the same)")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    logging.getLogger("vidcolor").setLevel(logging.WARNING)
    settings = load_pipeline(a.pipeline)
    colorizer = Colorizer.load(
        a.model, device="cpu", working_short_side=settings.working_short_side
    )
    rows = [(None, settings)]
    for c in a.compare:
        name, _, preset = c.partition("=")
        other = load_pipeline(preset)
        if other.working_short_side != settings.working_short_side:
            raise SystemExit(f"--compare {c}: working size {other.working_short_side}, not "
                             f"{settings.working_short_side}")
        rows.append((name, other))
    options, labels = [], []
    for name, s in rows:
        for m in a.modes:
            options.append(s.temporal_options(device="cpu", mode=m))
            flow = resolve_flow_name(s.flow, device="cpu")
            labels.append(f"{flow}/{m}" + (f" ({name})" if name else ""))
    results = []
    for clip in clips_in(a.folder):
        res = evaluate_video(
            clip,
            colorize_fn=lambda L: colorizer.predict(L).cpu(),
            working_short_side=settings.working_short_side,
            options_list=options,
            max_frames=a.max_frames,
            labels=labels,
        )
        print(res.format_table(), flush=True)
        results.append(res)
    head = ("| clip | frames | row | PSNR | warping error | x per-frame | excess x | CDC "
            "| x per-frame | ms/frame |")
    print("\n" + head + "\n|" + "---|" * 10)
    for res in results:
        for x in res.variants:
            r = res.ratios(x.label)
            psnr = "-" if math.isnan(x.psnr) else f"{x.psnr:.2f}"
            print(f"| {Path(res.clip).name} | {res.frames} | {x.label} | {psnr} "
                  f"| {x.warping_error:.5f} | {r['warping_error']:.2f} "
                  f"| {r['excess_warping_error']:.2f} | {x.cdc:.5f} | {r['cdc']:.2f} "
                  f"| {x.ms_per_frame:.1f} |")
    summary = {}
    for label in (*labels, GREY_LABEL, ORIGINAL_LABEL):
        ratios = [res.ratios(label) for res in results]
        base = [res.variant("per-frame").psnr for res in results]
        dpsnr = [res.variant(label).psnr - b for res, b in zip(results, base, strict=True)]
        summary[label] = {
            "warping_error_ratio_geomean": geomean([r["warping_error"] for r in ratios]),
            "excess_warping_error_ratio_mean": mean([r["excess_warping_error"] for r in ratios]),
            "cdc_ratio_geomean": geomean([r["cdc"] for r in ratios]),
            "psnr_change_mean": mean(dpsnr),
        }
    print("\nsummary over clips (geometric mean of ratios to per-frame; mean excess ratio):")
    for label, s in summary.items():
        print(f"  {label}: warping error x{s['warping_error_ratio_geomean']:.2f}, "
              f"excess x{s['excess_warping_error_ratio_mean']:.2f}, "
              f"CDC x{s['cdc_ratio_geomean']:.2f}, PSNR {s['psnr_change_mean']:+.2f} dB")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        clips = [res.to_dict() for res in results]
        a.json.write_text(json.dumps({"clips": clips, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
