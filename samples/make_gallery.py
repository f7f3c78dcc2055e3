"""Build ``samples/gallery.png``: grey | each model | original for the public-domain photos
bundled in scikit-image, coloured through the same path as ``vidcolor photo.jpg``.

    .venv/bin/python samples/make_gallery.py --overwrite \
        --models vidcolor-fusion-v1 vidcolor-fusion vidcolor-chromagan
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
CELL = (300, 200)
"""Every picture is fitted into a cell this size (width, height), so the columns line up."""
LABEL_HEIGHT = 24
WORKING_SHORT_SIDE = 224


def grey_of(rgb: np.ndarray) -> np.ndarray:
    """The black-and-white version: the grey level with the same Lab lightness."""
    t = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
    g = lab.l_to_grey(lab.rgb_to_l(t))[0, 0]
    g8 = (g * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).numpy()
    return np.repeat(g8[..., None], 3, axis=2)


def fit(rgb: np.ndarray) -> Image.Image:
    """The picture scaled to fit a cell, centred on white."""
    img = Image.fromarray(rgb)
    s = min(CELL[0] / img.width, CELL[1] / img.height)
    img = img.resize((round(img.width * s), round(img.height * s)), Image.LANCZOS)
    cell = Image.new("RGB", CELL, "white")
    cell.paste(img, ((CELL[0] - img.width) // 2, (CELL[1] - img.height) // 2))
    return cell


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=[DEFAULT_MODEL])
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("gallery.png"))
    ap.add_argument("--overwrite", action="store_true")
    a = ap.parse_args()
    if a.out.exists() and not a.overwrite:
        raise SystemExit(f"{a.out} exists; use --overwrite")
    colorizers = [Colorizer.load(m, device="cpu", working_short_side=WORKING_SHORT_SIDE)
                  for m in a.models]
    labels = ["grey input", *a.models, "original"]
    rows = []
    for name in PHOTOS:
        rgb = getattr(data, name)()
        grey = grey_of(rgb)
        rows.append([fit(grey), *(fit(colorize_rgb_array(c, grey)) for c in colorizers),
                     fit(rgb)])
    sheet = Image.new("RGB", (CELL[0] * len(labels), LABEL_HEIGHT + CELL[1] * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for j, label in enumerate(labels):
        draw.text((j * CELL[0] + 6, 6), label, fill="black")
    for i, row in enumerate(rows):
        for j, tile in enumerate(row):
            sheet.paste(tile, (j * CELL[0], LABEL_HEIGHT + i * CELL[1]))
    sheet.save(a.out)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
