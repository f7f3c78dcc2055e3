#!/usr/bin/env bash
# How the shipped default model was trained and chosen (see models/README.md). About 40 minutes
# on a 2-core CPU for the main run. Needs ../shared/data/train_images.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/train_images}
# 1. the fusion model, frozen ImageNet encoder, both heads
.venv/bin/vidcolor train --data "$DATA" --out runs/fusion-both --model fusion --steps 5000 \
  --batch-size 24 --image-size 128 --val-every 500 --ckpt-every 250 --val-max 96 --workers 1
# 2. inference options (bin/regression mix, temperature) on the validation split
.venv/bin/python benchmarks/tune_inference.py --model runs/fusion-both --data "$DATA" \
  --json benchmarks/results/tune_inference.json
# 3. a ChromaGAN fine-tune of it, for comparison
.venv/bin/vidcolor train --data "$DATA" --out runs/chromagan-ft --model chromagan \
  --init runs/fusion-both --steps 400 --batch-size 16 --image-size 128 --lr 0.0001 \
  --val-every 200 --ckpt-every 100 --workers 1
.venv/bin/vidcolor eval-images "$DATA" --split val --model runs/chromagan-ft --mix 1.0 \
  --json benchmarks/results/eval_val_chromagan.json
# 4. ship the fusion model and measure it
.venv/bin/python benchmarks/export_default.py --run runs/fusion-both
.venv/bin/vidcolor eval-images "$DATA" --split val --json benchmarks/results/eval_val_default.json
.venv/bin/vidcolor eval-images "$DATA" --split val --degrade \
  --json benchmarks/results/eval_val_default_degraded.json
.venv/bin/python samples/make_gallery.py --overwrite
