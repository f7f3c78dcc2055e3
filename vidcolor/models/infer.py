"""Running any colorizer on arbitrary sizes: pad L to the network's stride, predict, crop."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def pad_amounts(h: int, w: int, multiple: int) -> tuple[int, int]:
    """Bottom and right padding that makes h and w multiples of ``multiple``."""
    return (-h) % multiple, (-w) % multiple


def predict_ab(model: nn.Module, L: torch.Tensor) -> torch.Tensor:
    """L (B, 1, H, W) in [0, 100] of any size -> ab (B, 2, H, W) in Lab units."""
    h, w = L.shape[-2:]
    ph, pw = pad_amounts(h, w, int(getattr(model, "stride", 32)))
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        L = F.pad(L, (0, pw, 0, ph), mode=mode)
    return model(L)["ab"][..., :h, :w]
