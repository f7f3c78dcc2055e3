"""Facts the model card states about the steering model: parameter counts, and how alike the
matching features find cells of the same scene and of unrelated scenes (which sets the
output thresholds in ``vidcolor/steer/match.py``).

    .venv/bin/python benchmarks/exemplar_facts.py ../shared/data/videos
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.lab import rgb_to_lab
from vidcolor.models import DEFAULT_MODEL, STEER_MODEL, load_model
from vidcolor.steer.match import encoder_features
from vidcolor.temporal.evaluate import read_clip, working_size
from vidcolor.temporal.metrics import as_rgb

PAIRS = [  # (clip, frame, clip, frame): two of the same scene, two of unrelated scenes
    ("davis_dog", 0, "davis_dog", 29),
    ("davis_blackswan", 0, "davis_blackswan", 40),
    ("davis_dog", 0, "davis_blackswan", 10),
    ("mmaction2__demo.mp4", 0, "davis_kite-surf", 10),
]


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def lightness(folder: Path, clip: str, index: int) -> torch.Tensor:
    frames, _ = read_clip(folder / clip, max_frames=index + 1)
    lab = rgb_to_lab(as_rgb(frames[index][None]))
    size = working_size(tuple(lab.shape[-2:]), 224)
    return F.interpolate(lab, size=size, mode="bilinear", antialias=True)[:, :1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("videos", type=Path)
    a = ap.parse_args()
    guided, _ = load_model(STEER_MODEL)
    auto, _ = load_model(DEFAULT_MODEL)
    extra = count(guided.guide) + count(guided.inject)
    print(f"parameters: {DEFAULT_MODEL} {count(auto):,}, {STEER_MODEL} {count(guided):,} "
          f"(guidance pyramid and injections {extra:,})")
    print("best cosine similarity of each cell, percentiles 10/25/50/75/90:")
    with torch.no_grad():
        for c1, i, c2, j in PAIRS:
            fa = encoder_features(guided, lightness(a.videos, c1, i))
            fb = encoder_features(guided, lightness(a.videos, c2, j))
            sim = (fb.flatten(2)[0].T @ fa.flatten(2)[0]).max(1).values.numpy()
            kind = "same scene" if c1 == c2 else "unrelated"
            print(f"  {c2} {j} vs {c1} {i} ({kind}): "
                  f"{np.percentile(sim, [10, 25, 50, 75, 90]).round(3).tolist()}")


if __name__ == "__main__":
    main()
