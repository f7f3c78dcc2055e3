"""Cost of keyframe propagation against the default pipeline, measured in one run: the same grey
film coloured with the default preset, and with its first true frame as ``--reference``
(placement scan included), alternating A B A B; wall time and process CPU time per frame.

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

import numpy as np
from PIL import Image

from vidcolor.bench import frames_to_clip
from vidcolor.pipeline import ColorizeOptions, colorize_video
from vidcolor.temporal.evaluate import read_clip


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(src: Path, dest: Path, options: ColorizeOptions) -> tuple[float, float, int]:
    t0, c0 = time.perf_counter(), cpu_seconds()
    result = colorize_video(src, dest, options)
    return time.perf_counter() - t0, cpu_seconds() - c0, result.frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip", type=Path, help="colour clip (video or folder of frames)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    logging.getLogger("vidcolor").setLevel(logging.WARNING)
    frames, _ = read_clip(a.clip, max_frames=1)
    rows: dict[str, list[tuple[float, float, int]]] = {"default": [], "keyframe": []}
    with tempfile.TemporaryDirectory(prefix="vidcolor-steer-speed-") as tmp:
        tmp_path = Path(tmp)
        src = frames_to_clip(a.clip, tmp_path / "grey.mp4") if a.clip.is_dir() else a.clip
        ref = tmp_path / "first.png"
        Image.fromarray(np.asarray(frames[0])).save(ref)
        runs = {
            "default": ColorizeOptions(quiet=True, overwrite=True),
            "keyframe": ColorizeOptions(quiet=True, overwrite=True, references=(ref,)),
        }
        colorize_video(src, tmp_path / "warm.mp4", runs["default"])  # warm caches, not timed
        for _ in range(a.repeats):
            for name, options in runs.items():
                rows[name].append(timed(src, tmp_path / f"{name}.mp4", options))
    out = {}
    for name, rs in rows.items():
        n = rs[0][2]
        out[name] = {
            "frames": n,
            "wall_ms_per_frame": statistics.median(w / n * 1000 for w, _, _ in rs),
            "cpu_ms_per_frame": statistics.median(c / n * 1000 for _, c, _ in rs),
        }
    wall = out["keyframe"]["wall_ms_per_frame"] / out["default"]["wall_ms_per_frame"]
    cpu = out["keyframe"]["cpu_ms_per_frame"] / out["default"]["cpu_ms_per_frame"]
    print(f"{a.clip}: {out['default']['frames']} frames, {a.repeats} runs each, alternating")
    for name, o in out.items():
        print(f"  {name:<9} wall {o['wall_ms_per_frame']:6.1f} ms/frame   "
              f"CPU {o['cpu_ms_per_frame']:6.1f} ms/frame")
    print(f"  keyframe propagation / default: {wall:.2f}x wall, {cpu:.2f}x CPU")
    if a.json is not None:
        a.json.write_text(json.dumps({**out, "ratio_wall": wall, "ratio_cpu": cpu,
                                      "clip": str(a.clip)}, indent=1))


if __name__ == "__main__":
    main()
