"""Score a fusion checkpoint's inference settings (bin/regression mix, temperature, saturation)
on the validation split, to choose the shipped defaults.

    .venv/bin/python benchmarks/tune_inference.py --model runs/fusion-both \\
        --data ../shared/data/train_images --json benchmarks/results/tune_inference.json
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from vidcolor.train.evaluate import EvalImagesOptions, eval_images

VARIANTS = (
    # (label, inference overrides)
    ("regression head only", {"mix": 0.0}),
    ("bin head only, T 0.38", {"mix": 1.0, "mix_confidence": False, "temperature": 0.38}),
    ("bin head only, T 0.6", {"mix": 1.0, "mix_confidence": False, "temperature": 0.6}),
    ("mix 0.5 x confidence, T 0.38", {"mix": 0.5, "mix_confidence": True, "temperature": 0.38}),
    ("mix 0.5 x confidence, T 0.6", {"mix": 0.5, "mix_confidence": True, "temperature": 0.6}),
    ("mix 0.5 flat, T 0.38", {"mix": 0.5, "mix_confidence": False, "temperature": 0.38}),
    ("mix 0.5 flat, T 0.38, sat 1.2", {"mix": 0.5, "mix_confidence": False, "saturation": 1.2}),
    ("mix 0.75 flat, T 0.38", {"mix": 0.75, "mix_confidence": False, "temperature": 0.38}),
    ("mix 1.0 x confidence, T 0.38", {"mix": 1.0, "mix_confidence": True, "temperature": 0.38}),
    ("mix 1.5 x confidence, T 0.38", {"mix": 1.5, "mix_confidence": True, "temperature": 0.38}),
    ("mix 2.5 x confidence, T 0.38", {"mix": 2.5, "mix_confidence": True, "temperature": 0.38}),
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--only", help="comma-separated variant numbers (1-based) to run")
    a = ap.parse_args()
    logging.getLogger("vidcolor").setLevel(logging.WARNING)
    rows = []
    picked = [int(i) - 1 for i in a.only.split(",")] if a.only else range(len(VARIANTS))
    for label, overrides in (VARIANTS[i] for i in picked):
        res = eval_images(
            a.data, EvalImagesOptions(model=a.model, split="val", size=a.size, overrides=overrides)
        )
        rows.append({"variant": label, **overrides, **res.means})
    print(f"\n{'variant':<32}{'PSNR':>8}{'SSIM':>8}{'colorful':>10}{'truth':>7}")
    for r in rows:
        print(f"{r['variant']:<32}{r['psnr']:>8.2f}{r['ssim']:>8.4f}{r['colorfulness']:>10.1f}"
              f"{r['colorfulness_truth']:>7.1f}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
