"""Speed on real footage, as ratios to the cost of just moving the pixels, in one run.

The colour clips of a folder (``../shared/data/videos``) are made grey, fitted to the size
(letterboxed) and looped into a film of ``--seconds`` at 24 fps. Then, in one sitting:

- the **I/O floor**: a plain PyAV decode + libx264 re-encode with vidcolor's own encoder
  settings (veryfast, CRF 18), no colour; measured before, between and after the runs, each
  run's ratio taken against the two floors either side of it (the machine's speed drifts);
- **vidcolor** with the default preset (and any ``--variant`` given), end to end;
- with ``--rounds N``, all of it N times in turn (A B A B ...), each figure the median.

Reported: wall fps, process CPU-ms per frame (all threads; robust to a busy machine), the
per-stage times, time to the first written frame (start-up: imports done, model load, first
batch), peak resident memory, and vidcolor's ratio to the floor in wall and in CPU time.

    .venv/bin/python benchmarks/real_footage.py ../shared/data/videos --size 854x480 \\
        --json benchmarks/results/real_footage_854x480.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import resource
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from eval_temporal import clips_in, parse_settings  # this folder's script: shared helpers
from PIL import Image

from vidcolor.pipeline import ColorizeOptions, colorize_video, rss_mb
from vidcolor.presets import DEFAULT_PIPELINE, load_pipeline
from vidcolor.temporal.evaluate import read_clip

FPS = 24


def grey_frames(folder: Path, size: tuple[int, int]):
    """Grey frames of every clip in the folder, fitted into ``size`` (width, height), forever."""
    clips = clips_in(folder)
    w, h = size
    while True:
        for clip in clips:
            frames, _ = read_clip(clip)
            for rgb in frames:
                img = Image.fromarray(rgb).convert("L")
                s = min(w / img.width, h / img.height)
                img = img.resize((max(2, round(img.width * s)), max(2, round(img.height * s))),
                                 Image.Resampling.BILINEAR)
                canvas = Image.new("L", (w, h), 16)
                canvas.paste(img, ((w - img.width) // 2, (h - img.height) // 2))
                yield np.asarray(canvas)


def make_film(folder: Path, dest: Path, size: tuple[int, int], seconds: float) -> int:
    """The looped grey film (H.264, near-lossless); returns its frame count."""
    n = round(seconds * FPS)
    with av.open(str(dest), "w") as out:
        vs = out.add_stream("libx264", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
        vs.options = {"preset": "veryfast", "crf": "12"}
        for i, grey in zip(range(n), grey_frames(folder, size), strict=False):
            f = av.VideoFrame.from_ndarray(grey, format="gray").reformat(format="yuv420p")
            f.pts = i
            out.mux(vs.encode(f))
        out.mux(vs.encode(None))
    return n


def io_floor(src: Path, dest: Path) -> dict[str, float]:
    """Decode + re-encode with vidcolor's encoder settings, no colour: wall and CPU time."""
    t0, c0 = time.perf_counter(), time.process_time()
    frames = 0
    with av.open(str(src)) as inp, av.open(str(dest), "w") as out:
        ins = inp.streams.video[0]
        ins.thread_type = "AUTO"
        vs = out.add_stream("libx264", rate=ins.average_rate)
        vs.width, vs.height, vs.pix_fmt = ins.width, ins.height, "yuv420p"
        vs.options = {"preset": "veryfast", "crf": "18"}
        rate = Fraction(ins.average_rate or FPS)
        for f in inp.decode(ins):
            f.pts, f.time_base = frames, 1 / rate
            out.mux(vs.encode(f))
            frames += 1
        out.mux(vs.encode(None))
    return {"frames": frames, "wall_s": time.perf_counter() - t0,
            "cpu_s": time.process_time() - c0}


def vidcolor_run(src: Path, dest: Path, options: ColorizeOptions) -> dict[str, object]:
    """One vidcolor run: wall, CPU, stage times, first-frame time, memory."""
    first: list[float] = []
    t0, c0 = time.perf_counter(), time.process_time()

    def progress(done: int, _total: int | None) -> None:
        if not first:
            first.append(time.perf_counter() - t0)

    result = colorize_video(src, dest, options, progress=progress)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    n = result.frames
    t = result.times
    return {
        "frames": n, "wall_s": wall, "cpu_s": cpu, "fps": n / wall, "cpu_ms_per_frame":
        1000 * cpu / n, "first_frame_s": first[0] if first else None,
        "stage_ms": {k: 1000 * getattr(t, k) / n for k in
                     ("decode", "colorize", "temporal", "upsample", "encode")
                     if hasattr(t, k)},
        "rss_mb_now": rss_mb(),
    }


def variant_options(text: str, preset_path: Path) -> dict[str, object]:
    """``key=value[,key=value]`` -> ColorizeOptions keywords. Keys of ColorizeOptions go there;
    other preset settings (``flow_downscale``, ``dis_preset``, ...) go into a TOML preset
    written to ``preset_path``: the variant's ``pipeline`` (or the default one) plus these."""
    names = {f.name for f in dataclasses.fields(ColorizeOptions)}
    settings = parse_settings(text, others=names)
    options = {k: v for k, v in settings.items() if k in names}
    changed = {k: v for k, v in settings.items() if k not in names}
    if changed:
        base = load_pipeline(str(options.get("pipeline", DEFAULT_PIPELINE)), **changed)
        preset_path.write_text("".join(
            f"{f.name} = {json.dumps(getattr(base, f.name))}\n"
            for f in dataclasses.fields(base) if f.name != "name"))
        options["pipeline"] = str(preset_path)
    return options


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--size", default="854x480")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--variant", action="append", default=[],
                    help="extra run: key=value[,key=value] of ColorizeOptions or of a preset "
                    "(e.g. precision=fp32, or model_every=2,flow_downscale=1)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run everything this many times, in turn (A B A B): each figure is "
                    "the median over the rounds")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    logging.getLogger("vidcolor").setLevel(logging.WARNING)
    w, h = (int(v) for v in a.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="vidcolor-bench-") as tmp:
        film = Path(tmp) / "film.mp4"
        n = make_film(a.folder, film, (w, h), a.seconds)
        runs = {"default (balanced)": {}}
        for i, v in enumerate(a.variant):
            runs[v] = variant_options(v, Path(tmp) / f"variant{i}.toml")
        floors = [io_floor(film, Path(tmp) / "floor.mp4")]
        rounds: dict[str, list[dict]] = {label: [] for label in runs}
        for _ in range(a.rounds):
            for label, extra in runs.items():
                out = Path(tmp) / "out.mp4"
                out.unlink(missing_ok=True)
                r = vidcolor_run(film, out, ColorizeOptions(quiet=True, **extra))
                # the floor again after each run: a machine of this kind changes speed within
                # minutes, so each run is compared with the floors measured either side of it
                floors.append(io_floor(film, Path(tmp) / "floor.mp4"))
                before, after = floors[-2], floors[-1]
                r["floor_wall_s"] = (before["wall_s"] + after["wall_s"]) / 2
                r["floor_cpu_ms_per_frame"] = 500 * (before["cpu_s"] + after["cpu_s"]) / n
                r["x_floor_wall"] = r["wall_s"] / r["floor_wall_s"]
                r["x_floor_cpu"] = r["cpu_ms_per_frame"] / r["floor_cpu_ms_per_frame"]
                rounds[label].append(r)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"film: {n} frames of grey real footage ({a.folder}), {w}x{h}, {FPS} fps, "
          f"{n / FPS:.0f} s; python {sys.version.split()[0]}; {a.rounds} round(s), medians")
    fps = ", ".join(f"{n / f['wall_s']:.1f}" for f in floors)
    cpu = ", ".join(f"{1000 * f['cpu_s'] / n:.1f}" for f in floors)
    print(f"I/O floor (decode + libx264 veryfast CRF 18), measured before, between and after "
          f"the runs: {fps} fps; {cpu} CPU-ms/frame")
    results = {label: median_run(rs) for label, rs in rounds.items()}
    for label, r in results.items():
        stages = ", ".join(f"{k} {v:.1f}" for k, v in r["stage_ms"].items())
        print(f"{label}: {r['fps']:.1f} fps, {r['cpu_ms_per_frame']:.1f} CPU-ms/frame; "
              f"{r['x_floor_wall']:.2f}x the floor in wall time, {r['x_floor_cpu']:.2f}x in "
              f"CPU time (against the floors either side: {n / r['floor_wall_s']:.1f} fps, "
              f"{r['floor_cpu_ms_per_frame']:.1f} CPU-ms/frame); first frame after "
              f"{r['first_frame_s']:.1f} s; stages (ms/frame) {stages}")
    print(f"peak resident memory of the process: {peak:.0f} MB")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({
            "size": [w, h], "frames": n, "fps": FPS, "floor": floors[0], "floors": floors,
            "rounds": rounds, "runs": results,
            "peak_rss_mb": peak, "film_seconds": float(Fraction(n, FPS))}, indent=2) + "\n")


def median_run(runs: list[dict]) -> dict:
    """Each number of the runs' results (stage times too) as its median over the rounds."""
    out: dict = {}
    for key, value in runs[0].items():
        if isinstance(value, dict):
            out[key] = median_run([r[key] for r in runs])
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = statistics.median(r[key] for r in runs)
        else:
            out[key] = value
    return out


if __name__ == "__main__":
    main()
