"""Build the steering example for ``samples/sample.mp4`` and, with ``--shots``, put it into a
shot folder made by ``vidcolor shots`` the way a user would edit it by hand.

- ``samples/steer/hints_f000020.json``: four clicks that make the astronaut's suit orange (the
  shipped model paints it beige) on shot 1's keyframe, frame 20.
- ``samples/steer/keyframe_f000062.png``: shot 2's keyframe (frame 62) in colour: the true colours
  of the photo the sample was made from, standing in for a keyframe painted in an editor.

Usage::

    .venv/bin/python samples/make_steer_example.py              # (re)write samples/steer/
    .venv/bin/vidcolor shots samples/sample.mp4 -o shots/
    .venv/bin/python samples/make_steer_example.py --shots shots/   # list them in the manifest
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
if importlib.util.find_spec("vidcolor") is None:  # run from a checkout without installing
    sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import make_sample  # noqa: E402

from vidcolor.steer.manifest import KeyframeEntry, read_manifest, write_manifest  # noqa: E402

OUT = HERE / "steer"
HINT_FRAME, KEY_FRAME = 20, 62
SUIT = "#e0662a"
HINTS = {
    "frame": HINT_FRAME,
    "points": [
        {"x": 90, "y": 330, "color": SUIT, "radius": 10},
        {"x": 160, "y": 345, "color": SUIT, "radius": 10},
        {"x": 450, "y": 340, "color": SUIT, "radius": 10},
        {"x": 110, "y": 300, "color": SUIT, "radius": 8},
    ],
}


def colour_frame(index: int) -> np.ndarray:
    """Frame ``index`` of the sample in the colours of its source photo (uint8 RGB)."""
    import skimage.data

    start = 0
    lengths = make_sample.shot_lengths(round(make_sample.SECONDS * make_sample.FPS))
    for shot, n in zip(make_sample.SHOTS, lengths, strict=True):
        if index < start + n:
            i = index - start
            s = make_sample._smoothstep(i / (n - 1)) if n > 1 else 0.0
            view = tuple(a + (b - a) * s for a, b in zip(shot.start, shot.end, strict=True))
            photo = Image.fromarray(getattr(skimage.data, shot.photo)()[..., :3])
            box = make_sample.crop_box(photo.size, view)  # type: ignore[arg-type]
            return np.asarray(photo.resize(make_sample.SIZE, Image.Resampling.BICUBIC, box=box))
        start += n
    raise ValueError(f"frame {index} is past the sample's end")


def write_example() -> list[Path]:
    OUT.mkdir(exist_ok=True)
    hints = OUT / f"hints_f{HINT_FRAME:06d}.json"
    hints.write_text(json.dumps(HINTS, indent=1) + "\n")
    key = OUT / f"keyframe_f{KEY_FRAME:06d}.png"
    Image.fromarray(colour_frame(KEY_FRAME)).save(key)
    return [hints, key]


def apply_to(shots: Path) -> None:
    """Copy the example into a shot folder and list it in its manifest (as a user would)."""
    m = read_manifest(shots)
    hints, key = OUT / f"hints_f{HINT_FRAME:06d}.json", OUT / f"keyframe_f{KEY_FRAME:06d}.png"
    for f in (hints, key):
        shutil.copy2(f, shots / f.name)
    m.shots[m.shot_of(HINT_FRAME)].hints = [shots / hints.name]
    m.shots[m.shot_of(KEY_FRAME)].keyframes = [KeyframeEntry(shots / key.name)]
    write_manifest(m)
    print(f"{m.path}: hints on shot {m.shot_of(HINT_FRAME) + 1}, keyframe on shot "
          f"{m.shot_of(KEY_FRAME) + 1}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shots", type=Path, help="a shot folder to put the example into")
    a = ap.parse_args()
    if a.shots is not None:
        apply_to(a.shots)
    else:
        for p in write_example():
            print(f"wrote {p}")


if __name__ == "__main__":
    main()
