"""Make a long 854x480 test film by looping the bundled sample (for speed and memory benchmarks).

    .venv/bin/python benchmarks/make_long_clip.py --minutes 10 --out /tmp/long.mp4
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "sample.mp4"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--size", default="854x480", help="WIDTHxHEIGHT")
    ap.add_argument("--fps", type=int, default=24)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    w, h = (int(x) for x in a.size.lower().split("x"))
    with av.open(str(SAMPLE)) as src:
        frames = [
            np.asarray(Image.fromarray(f.to_ndarray(format="gray")).resize((w, h), Image.BILINEAR))
            for f in src.decode(video=0)
        ]
    total = round(a.minutes * 60 * a.fps)
    with av.open(str(a.out), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(a.fps))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "23"}
        neutral = np.full((h // 2, w), 128, np.uint8)  # the U and V planes, packed
        for i in range(total):
            yuv = np.concatenate([frames[i % len(frames)], neutral])
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            frame.pts = i
            frame.time_base = Fraction(1, a.fps)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    print(f"wrote {a.out}: {total} frames, {w}x{h}, {a.fps} fps")


if __name__ == "__main__":
    main()
