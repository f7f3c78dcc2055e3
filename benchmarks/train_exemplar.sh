#!/usr/bin/env bash
# How the shipped steering model (vidcolor-exemplar) was trained (see models/README.md): the
# shipped fusion model's weights plus a guidance input, fine-tuned with random hints, dense
# propagated-keyframe guidance and content-matched references drawn from the true colours.
# About 51 minutes on a 2-core CPU. Needs ../shared/data/{train_images,train_more}.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=.data/steer
mkdir -p "$DATA"
for d in train_images train_more; do
  [ -d "$DATA/$d" ] || cp -r "../shared/data/$d" "$DATA/$d"
done
rm -f "$DATA/train_more/README.md" "$DATA/train_more/manifest.csv"
.venv/bin/vidcolor train --data "$DATA" --out runs/exemplar --model exemplar \
  --init models/vidcolor-fusion.safetensors --steps 3000 --batch-size 16 --image-size 128 \
  --lr 0.0003 --val-every 1000 --ckpt-every 250 --val-max 96 --workers 1
.venv/bin/python benchmarks/export_default.py --run runs/exemplar --name vidcolor-exemplar
.venv/bin/python benchmarks/steer_benchmark.py ../shared/data/videos \
  --json benchmarks/results/steer_benchmark.json | tee benchmarks/results/steer_benchmark.txt
.venv/bin/python benchmarks/steer_speed.py ../shared/data/videos/davis_bmx-trees \
  --json benchmarks/results/steer_speed.json | tee benchmarks/results/steer_speed.txt
