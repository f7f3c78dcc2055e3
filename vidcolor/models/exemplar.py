"""Guided (exemplar) colorizer: the fusion network plus a guidance input, *ab* and a confidence
per pixel, so hints, a matched reference photo or a propagated keyframe steer its colours.

Guidance of any density enters the same way (as in Zhang et al. 2017's interactive colorization):
a small convolutional pyramid reads (a, b, confidence) at working resolution and its features are
added to the decoder at strides 16, 8, 4 and 2 through zero-initialised 1x1 convolutions, so a
network built from fusion weights starts out exactly as the automatic model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vidcolor import lab
from vidcolor.models.fusion import TINY_FUSION, FusionColorizer, FusionConfig, build_on_lite0

GUIDE_CHANNELS = 3
"""Guidance layout: (a / AB_SCALE * confidence, b / AB_SCALE * confidence, confidence)."""


@dataclass(frozen=True)
class ExemplarConfig(FusionConfig):
    """Fusion's options plus the widths of the guidance pyramid (strides 2, 4, 8, 16)."""

    guide_channels: tuple[int, ...] = (16, 32, 64, 64)


def guide_tensor(ab: torch.Tensor, confidence: torch.Tensor) -> torch.Tensor:
    """ab (B, 2, h, w) in Lab units and confidence (B, 1, h, w) in [0, 1] -> model guidance."""
    c = confidence.clamp(0.0, 1.0)
    return torch.cat([lab.normalize_ab(ab).clamp(-1.0, 1.0) * c, c], 1)


def empty_guide(L: torch.Tensor) -> torch.Tensor:
    """No guidance at all for a batch of L (B, 1, h, w): the automatic colours."""
    return L.new_zeros(L.shape[0], GUIDE_CHANNELS, *L.shape[-2:])


class GuidePyramid(nn.Module):
    """Strided 3x3 convolutions over the guidance: features at strides 2, 4, 8 and 16."""

    def __init__(self, channels: tuple[int, ...]) -> None:
        super().__init__()
        if len(channels) != 4:
            raise ValueError(f"guide_channels needs 4 widths, got {len(channels)}: {channels}")
        cin, levels = GUIDE_CHANNELS, []
        for c in channels:
            levels.append(
                nn.Sequential(
                    nn.Conv2d(cin, c, 3, stride=2, padding=1), nn.ReLU(inplace=True),
                    nn.Conv2d(c, c, 3, padding=1), nn.ReLU(inplace=True),
                )
            )
            cin = c
        self.levels = nn.ModuleList(levels)

    def forward(self, guide: torch.Tensor) -> list[torch.Tensor]:
        feats, x = [], guide
        for level in self.levels:
            x = level(x)
            feats.append(x)
        return feats


class ExemplarColorizer(FusionColorizer):
    """L (B, 1, H, W) and optional guidance (B, 3, H, W) -> dict with 'ab' in Lab units."""

    arch = "exemplar"

    def __init__(self, cfg: ExemplarConfig, *, encoder=None) -> None:
        super().__init__(cfg, encoder=encoder)
        self.guide = GuidePyramid(cfg.guide_channels)
        d = self.cfg.decoder_channels if cfg.head != "bins" else self.cfg.decoder_channels[:4]
        # decoder levels end at strides 16, 8, 4 (and 2); guidance features are at 2, 4, 8, 16
        g = cfg.guide_channels
        pairs = list(zip(d[1:], (g[3], g[2], g[1], g[0]), strict=False))
        self.inject = nn.ModuleList(nn.Conv2d(cg, cd, 1) for cd, cg in pairs)
        for conv in self.inject:
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(
        self,
        L: torch.Tensor,
        guide: torch.Tensor | None = None,
        *,
        guide_fn: Callable[[list[torch.Tensor]], torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """``guide_fn`` (instead of ``guide``) builds the guidance from the encoder's features,
        so matching a reference by content costs no second encoder pass."""
        H, W = L.shape[-2:]
        if H % self.stride or W % self.stride:
            raise ValueError(f"expected H and W divisible by {self.stride}, got {H}x{W}")
        skips, emb = self.encode(L)
        if guide_fn is not None:
            guide = guide_fn(skips)
        if guide is None:
            guide = empty_guide(L)
        if guide.shape[0] != L.shape[0] or guide.shape[1] != GUIDE_CHANNELS:
            raise ValueError(
                f"expected guidance (B, {GUIDE_CHANNELS}, h, w) for L {tuple(L.shape)}, "
                f"got {tuple(guide.shape)}"
            )
        if guide.shape[-2:] != L.shape[-2:]:
            guide = F.interpolate(guide, size=(H, W), mode="bilinear", align_corners=False)
        g = self.guide(guide.to(L.dtype))[::-1]  # strides 16, 8, 4, 2: the decoder's order
        extra = [conv(f) for conv, f in zip(self.inject, g, strict=False)]
        x4, x2 = self.decoder(skips, emb, extra)
        return self.heads(x4, x2, emb, (H, W))


def exemplar_colorizer(
    *, weights: dict[str, torch.Tensor] | None = None, pretrained_encoder: bool = False, **overrides
) -> ExemplarColorizer:
    """Build the guided colorizer; ``overrides`` are ExemplarConfig fields (lists become tuples)."""
    return build_on_lite0(ExemplarColorizer, ExemplarConfig, weights=weights,
                          pretrained_encoder=pretrained_encoder, overrides=overrides)


TINY_EXEMPLAR = {**TINY_FUSION, "guide_channels": (8, 8, 8, 8)}
"""A tiny guided network for tests."""
