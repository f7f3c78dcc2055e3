"""Start-up of the command line: `vidcolor --help`, `--version` and a subcommand's help (which
import no torch), against importing the pipeline (torch and all), and the whole command on a
one-frame 854x480 film (start-up to the first frame: imports, model load, one frame coloured
and written, the file closed), median of N runs each.

    .venv/bin/python benchmarks/startup.py [--runs 5]   # -> benchmarks/results/startup.txt
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CASES = {
    "vidcolor --help": [sys.executable, "-m", "vidcolor", "--help"],
    "vidcolor --version": [sys.executable, "-m", "vidcolor", "--version"],
    "vidcolor studio --help": [sys.executable, "-m", "vidcolor", "studio", "--help"],
    "import vidcolor.pipeline (torch)": [sys.executable, "-c", "import vidcolor.pipeline"],
}


def one_frame_film(path: Path, size: tuple[int, int] = (854, 480)) -> Path:
    """A grey H.264 film of one frame (a ramp, so the model sees some structure)."""
    w, h = size
    ramp = np.tile(np.linspace(16, 235, w, dtype=np.float32), (h, 1)).astype(np.uint8)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=24)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        frame = av.VideoFrame.from_ndarray(ramp, format="gray").reformat(format="yuv420p")
        out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "startup.txt")
    args = ap.parse_args()
    lines = [f"start-up, median of {args.runs} runs (wall seconds; first run warms the caches)"]
    with tempfile.TemporaryDirectory(prefix="vidcolor-startup-") as tmp:
        film = one_frame_film(Path(tmp) / "one_frame.mp4")
        cases = {**CASES, "vidcolor FILM -o OUT, 1 frame 854x480": [
            sys.executable, "-m", "vidcolor", str(film), "-o", str(Path(tmp) / "out.mp4"),
            "--overwrite", "-q"]}
        for label, cmd in cases.items():
            subprocess.run(cmd, capture_output=True, check=True)  # warm the file cache, .pyc
            times = []
            for _ in range(args.runs):
                t = time.perf_counter()
                subprocess.run(cmd, capture_output=True, check=True)
                times.append(time.perf_counter() - t)
            lines.append(f"{label:38s} {statistics.median(times):6.2f} s  (max {max(times):.2f})")
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
