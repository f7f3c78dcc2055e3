"""Start-up of the command line: `vidcolor --help`, `--version` and a subcommand's help (which
import no torch), against importing the pipeline (torch and all), median of N runs each.

    .venv/bin/python benchmarks/startup.py [--runs 5]   # -> benchmarks/results/startup.txt
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = {
    "vidcolor --help": [sys.executable, "-m", "vidcolor", "--help"],
    "vidcolor --version": [sys.executable, "-m", "vidcolor", "--version"],
    "vidcolor studio --help": [sys.executable, "-m", "vidcolor", "studio", "--help"],
    "import vidcolor.pipeline (torch)": [sys.executable, "-c", "import vidcolor.pipeline"],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "startup.txt")
    args = ap.parse_args()
    lines = [f"start-up, median of {args.runs} runs (wall seconds; first run warms the caches)"]
    for label, cmd in CASES.items():
        subprocess.run(cmd, capture_output=True, check=True)  # warm the file cache and .pyc
        times = []
        for _ in range(args.runs):
            t = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            times.append(time.perf_counter() - t)
        lines.append(f"{label:36s} {statistics.median(times):6.2f} s  (max {max(times):.2f})")
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
