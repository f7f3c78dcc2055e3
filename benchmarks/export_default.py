"""Export a training run as the shipped default model: fp16 weights, the tuned inference options
(chosen with benchmarks/tune_inference.py) and where it came from.

    .venv/bin/python benchmarks/export_default.py --run runs/fusion-both
"""

from __future__ import annotations

import argparse

from vidcolor.models import DEFAULT_MODEL, models_dir, resolve_checkpoint
from vidcolor.models.checkpoint import export_checkpoint

SHIPPED_INFERENCE = {"mix": 1.0, "mix_confidence": True, "temperature": 0.38}
"""Bin head weight = min(1, 2 x confidence): +4 to +10 colorfulness for ~0.5 dB (tune table)."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="training run folder or checkpoint")
    ap.add_argument("--name", default=DEFAULT_MODEL)
    a = ap.parse_args()
    src = resolve_checkpoint(a.run)
    dest = models_dir() / f"{a.name}.safetensors"
    export_checkpoint(src, dest, inference=SHIPPED_INFERENCE, source=str(a.run))
    print(f"exported {src} -> {dest}")


if __name__ == "__main__":
    main()
