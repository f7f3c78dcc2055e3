"""Build ``samples/gallery.png``: grey | vidcolor | original for the public-domain photos bundled
in scikit-image, coloured by the shipped default model (or ``--model``).

    .venv/bin/python samples/make_gallery.py --overwrite
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from skimage import data

from vidcolor import lab
from vidcolor.colorize import Colorizer, colorize_rgb_array
from vidcolor.models import DEFAULT_MODEL

PHOTOS = ("astronaut", "chelsea", "rocket", "coffee")
"""Public domain or CC0 (see samples/README.md for sources and licences)."""
ROW_HEIGHT = 200
WORKING_SHORT_SIDE = 224


def grey_of(rgb: np.ndarray) -> np.ndarray:
    """The black-and-white version: the grey level with the same Lab lightness."""
    t = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
    g = lab.l_to_grey(lab.rgb_to_l(t))[0, 0]
    g8 = (g * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).numpy()
    return np.repeat(g8[..., None], 3, axis=2)


def fit(rgb: np.ndarray) -> Image.Image:
    img = Image.fromarray(rgb)
    return img.resize((round(img.width * ROW_HEIGHT / img.height), ROW_HEIGHT), Image.LANCZOS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("gallery.png"))
    ap.add_argument("--overwrite", action="store_true")
    a = ap.parse_args()
    if a.out.exists() and not a.overwrite:
        raise SystemExit(f"{a.out} exists; use --overwrite")
    colorizer = Colorizer.load(a.model, device="cpu", working_short_side=WORKING_SHORT_SIDE)
    rows = []
    for name in PHOTOS:
        rgb = getattr(data, name)()
        grey = grey_of(rgb)
        ours = colorize_rgb_array(colorizer, grey)
        rows.append([fit(grey), fit(ours), fit(rgb)])
    width = max(sum(t.width for t in r) for r in rows)
    sheet = Image.new("RGB", (width, 24 + ROW_HEIGHT * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    x = 0
    for label, tile in zip(("grey input", "vidcolor", "original"), rows[0], strict=True):
        draw.text((x + 6, 6), label, fill="black")
        x += tile.width
    for i, row in enumerate(rows):
        x = 0
        for tile in row:
            sheet.paste(tile, (x, 24 + i * ROW_HEIGHT))
            x += tile.width
    sheet.save(a.out)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
