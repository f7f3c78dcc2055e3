"""Shot-parallel speed-up of ``vidcolor batch`` on one long film: 1 worker against N.

    .venv/bin/python benchmarks/batch_speedup.py --seconds 60 --size 640x360 --workers 2

The film is the bundled sample looped (hard cuts every 1.75 s), made by make_long_clip.py.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from vidcolor.batch import BatchOptions, run_batch
from vidcolor.media.decode import iter_frames
from vidcolor.pipeline import ColorizeOptions

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        film = src / "film.mp4"
        subprocess.run(  # a fixed argument list, no shell
            [sys.executable, str(HERE / "make_long_clip.py"), "--minutes", str(a.seconds / 60),
             "--size", a.size, "--out", str(film)],
            check=True,
        )
        base = BatchOptions(colorize=ColorizeOptions(quiet=True), split_seconds=a.seconds / 2)
        rows = {}
        for workers in (1, a.workers):
            out = Path(tmp) / f"out{workers}"
            t0 = time.perf_counter()
            code = run_batch(src, out, replace(base, workers=workers))
            seconds = time.perf_counter() - t0
            frames = sum(1 for _ in iter_frames(out / "film.mp4"))
            rows[workers] = {"seconds": seconds, "frames": frames, "exit": code}
            print(f"{workers} worker(s): {seconds:.1f} s, {frames} frames, exit {code}", flush=True)
            shutil.rmtree(out)
    speedup = rows[1]["seconds"] / rows[a.workers]["seconds"]
    print(f"speed-up with {a.workers} workers: {speedup:.2f}x")
    if a.json:
        a.json.write_text(json.dumps({"runs": rows, "speedup": speedup, **vars(a)}, default=str))


if __name__ == "__main__":
    main()
