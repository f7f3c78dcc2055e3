"""Train every architecture with the same short CPU budget and print a comparison table
(validation PSNR, SSIM, colorfulness and the grey baseline, training images/s).

    .venv/bin/python benchmarks/compare_architectures.py --data ../shared/data/train_images \\
        --out runs/compare --steps 300
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from vidcolor.models import ARCHITECTURES
from vidcolor.train.trainer import TrainOptions, train


def last_values(metrics_csv: Path, kind: str) -> dict[str, float]:
    """The last logged value of each metric of one kind ('train' or 'val')."""
    out: dict[str, float] = {}
    with metrics_csv.open() as f:
        for row in csv.DictReader(f):
            if row["kind"] == kind:
                out[row["name"]] = float(row["value"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--val-max", type=int, default=64)
    ap.add_argument("--archs", default=",".join(ARCHITECTURES))
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    rows = []
    for arch in a.archs.split(","):
        run = a.out / arch
        if not (run / "final" / "model.json").is_file():
            train(TrainOptions(
                data=a.data, out=run, model=arch, steps=a.steps, batch_size=a.batch_size,
                image_size=a.image_size, val_every=a.steps, ckpt_every=a.steps,
                val_max=a.val_max, resume=any(run.glob("ckpt-*")),
            ))
        val = last_values(run / "metrics.csv", "val")
        tr = last_values(run / "metrics.csv", "train")
        rows.append({"arch": arch, "img_per_s": tr.get("img_per_s", 0.0), **val})
    head = (f"{'arch':<12}{'PSNR':>7}{'SSIM':>7}{'colorful':>10}{'truth':>7}{'grey PSNR':>11}"
            f"{'img/s':>7}")
    print(f"{a.steps} steps, batch {a.batch_size}, {a.image_size} px crops, CPU")
    print(head)
    for r in rows:
        print(f"{r['arch']:<12}{r['psnr']:>7.2f}{r['ssim']:>7.3f}{r['colorfulness']:>10.1f}"
              f"{r['colorfulness_truth']:>7.1f}{r['grey_psnr']:>11.2f}{r['img_per_s']:>7.1f}")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
