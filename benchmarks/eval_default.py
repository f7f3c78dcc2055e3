"""Photo figures of the model card, for several models in one run, through the CLI's own
inference path (``vidcolor eval-images``: working size, guided upsampling, precision): the
held-out photos of ``train_more`` (scenes, old photographs, video frames: what the default is
tuned on) and of ``train_images`` (the v1 split: 59 % Imagenette), at short side 256.

    .venv/bin/python benchmarks/eval_default.py --data .data/all \\
        --models vidcolor-fusion-v1 vidcolor-fusion --json benchmarks/results/eval_default.json
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from vidcolor.train.evaluate import EvalImagesOptions, eval_images

SPLITS = {"scenes (train_more val)": ("train_more",), "v1 split (train_images val)":
          ("train_images",)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True,
                    help="folder holding train_images/ and train_more/")
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--precision", help="model arithmetic (default: as the CLI resolves it)")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    logging.getLogger("vidcolor").setLevel(logging.WARNING)
    rows = []
    for split, under in SPLITS.items():
        for model in a.models:
            extra = {"precision": a.precision} if a.precision else {}
            res = eval_images(a.data, EvalImagesOptions(model=model, split="val", under=under,
                                                        **extra))
            rows.append({"split": split, "model": model, "images": res.evaluated,
                         "seconds": res.seconds, **res.means})
    print(f"\n{'split':<30}{'model':<22}{'n':>5}{'PSNR':>7}{'grey':>7}{'SSIM':>8}"
          f"{'colourful':>10}{'truth':>7}{'blotch %':>9}")
    for r in rows:
        print(f"{r['split']:<30}{r['model']:<22}{r['images']:>5}{r['psnr']:>7.2f}"
              f"{r['grey_psnr']:>7.2f}{r['ssim']:>8.4f}{r['colorfulness']:>10.1f}"
              f"{r['colorfulness_truth']:>7.1f}{100 * r['blotch']:>9.2f}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
