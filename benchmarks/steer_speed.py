"""Cost of keyframe propagation, measured in one run: the same grey film as a plain PyAV decode +
re-encode with vidcolor's encoder settings (libx264 veryfast, CRF 18: the I/O floor), coloured
with the default preset, and with its first true frame as ``--reference`` (placement scan
included), alternating; wall time and process CPU time per frame, and ratios to the floor.

    .venv/bin/python benchmarks/steer_speed.py ../shared/data/videos/davis_bmx-trees \\
        --json benchmarks/results/steer_speed.json
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from PIL import Image

from vidcolor.bench import frames_to_clip
from vidcolor.pipeline import ColorizeOptions, colorize_video
from vidcolor.temporal.evaluate import read_clip


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def io_floor(src: Path, dest: Path) -> int:
    """Plain decode + re-encode (no colour): what just moving the pixels costs."""
    n = 0
    with av.open(str(src)) as inp, av.open(str(dest), "w") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream("libx264", rate=vin.average_rate or 24)
        vout.width, vout.height, vout.pix_fmt = vin.width, vin.height, "yuv420p"
        vout.options = {"preset": "veryfast", "crf": "18"}
        for frame in inp.decode(vin):
            frame.pts = None
            out.mux(vout.encode(frame.reformat(format="yuv420p")))
            n += 1
        out.mux(vout.encode(None))
    return n


def timed(src: Path, dest: Path, options: ColorizeOptions | None) -> tuple[float, float, int]:
    t0, c0 = time.perf_counter(), cpu_seconds()
    n = io_floor(src, dest) if options is None else colorize_video(src, dest, options).frames
    return time.perf_counter() - t0, cpu_seconds() - c0, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip", type=Path, help="colour clip (video or folder of frames)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    logging.getLogger("vidcolor").setLevel(logging.WARNING)
    frames, _ = read_clip(a.clip, max_frames=1)
    rows: dict[str, list[tuple[float, float, int]]] = {"io floor": [], "default": [],
                                                       "keyframe": []}
    with tempfile.TemporaryDirectory(prefix="vidcolor-steer-speed-") as tmp:
        tmp_path = Path(tmp)
        src = frames_to_clip(a.clip, tmp_path / "grey.mp4") if a.clip.is_dir() else a.clip
        ref = tmp_path / "first.png"
        Image.fromarray(np.asarray(frames[0])).save(ref)
        runs = {
            "io floor": None,
            "default": ColorizeOptions(quiet=True, overwrite=True),
            "keyframe": ColorizeOptions(quiet=True, overwrite=True, references=(ref,)),
        }
        colorize_video(src, tmp_path / "warm.mp4", runs["default"])  # warm caches, not timed
        for _ in range(a.repeats):
            for name, options in runs.items():
                dest = tmp_path / f"{name.replace(' ', '_')}.mp4"
                dest.unlink(missing_ok=True)
                rows[name].append(timed(src, dest, options))
    out = {}
    for name, rs in rows.items():
        n = rs[0][2]
        out[name] = {
            "frames": n,
            "wall_ms_per_frame": statistics.median(w / n * 1000 for w, _, _ in rs),
            "cpu_ms_per_frame": statistics.median(c / n * 1000 for _, c, _ in rs),
        }
    floor = out["io floor"]
    for o in out.values():
        o["x_floor_wall"] = o["wall_ms_per_frame"] / floor["wall_ms_per_frame"]
        o["x_floor_cpu"] = o["cpu_ms_per_frame"] / floor["cpu_ms_per_frame"]
    wall = out["keyframe"]["wall_ms_per_frame"] / out["default"]["wall_ms_per_frame"]
    cpu = out["keyframe"]["cpu_ms_per_frame"] / out["default"]["cpu_ms_per_frame"]
    print(f"{a.clip}: {out['default']['frames']} frames, {a.repeats} runs each, alternating")
    for name, o in out.items():
        print(f"  {name:<9} wall {o['wall_ms_per_frame']:6.1f} ms/frame "
              f"({o['x_floor_wall']:5.2f}x floor)   CPU {o['cpu_ms_per_frame']:6.1f} ms/frame "
              f"({o['x_floor_cpu']:5.2f}x floor)")
    print(f"  keyframe propagation / default: {wall:.2f}x wall, {cpu:.2f}x CPU")
    if a.json is not None:
        a.json.write_text(json.dumps({**out, "ratio_wall": wall, "ratio_cpu": cpu,
                                      "clip": str(a.clip)}, indent=1))


if __name__ == "__main__":
    main()
