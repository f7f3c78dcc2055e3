"""Export a training run as a shipped model: fp16 weights, the tuned inference options
(chosen with benchmarks/tune_inference.py) and where it came from.

    .venv/bin/python benchmarks/export_default.py --run runs/fusion-v2
    .venv/bin/python benchmarks/export_default.py --run runs/chromagan-v2 --name vidcolor-chromagan

A shipped model given as ``--run`` (new inference options only) keeps its recorded source.
"""

from __future__ import annotations

import argparse
import json

from vidcolor.models import DEFAULT_MODEL, models_dir, resolve_checkpoint
from vidcolor.models.checkpoint import export_checkpoint, read_config

SHIPPED_INFERENCE = {"mix": 0.75, "mix_confidence": True, "temperature": 0.38,
                     "confidence": "entropy", "smooth": 0, "damp": 0.0, "saturation": 1.0,
                     "film_fade": 0.26, "fade_power": 1.2, "fade_cast": 0.25}
"""The inference options written into the shipped config: bin head weight
min(1, 1.5 x confidence). On 100 held-out scene photos (benchmarks/results/tune_inference.txt)
it is the setting nearest colorfulness 0.85x the truth with the best PSNR: v1's mix 1.0 gives
+2.7 colorfulness for -0.43 dB; the spread/damping variants sit on the same trade-off curve.
Films fade what the model is unsure of (``film_fade``) and take three quarters of each frame's
guessed colour cast off (``fade_cast``): benchmarks/results/tune_film.txt,
eval_films_fade_cast.txt."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="training run folder or checkpoint")
    ap.add_argument("--name", default=DEFAULT_MODEL)
    ap.add_argument("--inference", type=json.loads, default=None,
                    help="JSON of inference options (default: SHIPPED_INFERENCE)")
    a = ap.parse_args()
    src = resolve_checkpoint(a.run)
    dest = models_dir() / f"{a.name}.safetensors"
    inference = SHIPPED_INFERENCE if a.inference is None else a.inference
    source = str(a.run)
    if src.resolve().parent == models_dir().resolve():  # re-exported with new options
        source = read_config(src).get("source", source)
    export_checkpoint(src, dest, inference=inference, source=source)
    print(f"exported {src} -> {dest} with {inference}")


if __name__ == "__main__":
    main()
