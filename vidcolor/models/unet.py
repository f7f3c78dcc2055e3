"""A small U-Net trained from scratch on L: the no-prior baseline for comparison."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vidcolor import lab
from vidcolor.models.fusion import UpBlock, conv_bn_relu


@dataclass(frozen=True)
class UNetConfig:
    """Channels per level (each level halves the resolution)."""

    channels: tuple[int, ...] = (32, 64, 128, 256, 256)


class UNetColorizer(nn.Module):
    """L in [0, 100] (B, 1, H, W) -> {'ab', 'ab_reg'}; H, W divisible by 2**(levels-1)."""

    arch = "unet"

    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        self.stride = 2 ** (len(c) - 1)
        self.down = nn.ModuleList()
        cin = 1
        for ch in c:
            self.down.append(nn.Sequential(conv_bn_relu(cin, ch), conv_bn_relu(ch, ch)))
            cin = ch
        self.up = nn.ModuleList(UpBlock(c[i + 1], c[i], c[i]) for i in reversed(range(len(c) - 1)))
        self.head = nn.Conv2d(c[0], 2, 3, padding=1)

    def config(self) -> dict:
        """Plain config that rebuilds this network."""
        return asdict(self.cfg)

    def forward(self, L: torch.Tensor) -> dict[str, torch.Tensor]:
        H, W = L.shape[-2:]
        if H % self.stride or W % self.stride:
            raise ValueError(f"expected H and W divisible by {self.stride}, got {H}x{W}")
        x = lab.normalize_l(L) - 0.5
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for up, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            x = up(x, skip)
        ab_reg = torch.tanh(self.head(x))
        return {"ab": lab.denormalize_ab(ab_reg), "ab_reg": ab_reg}


def unet_colorizer(*, weights: dict[str, torch.Tensor] | None = None, **overrides) -> UNetColorizer:
    """Build the U-Net baseline; ``overrides`` are UNetConfig fields."""
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    model = UNetColorizer(UNetConfig(**overrides))
    if weights is not None:
        model.load_state_dict(weights, strict=True)
    return model


TINY_UNET = {"channels": (8, 16, 16)}
