"""Image metrics used by validation and ``eval-images``: PSNR, SSIM, colorfulness."""

from __future__ import annotations

import torch
from kornia.metrics import ssim as kornia_ssim

from vidcolor import lab
from vidcolor.lab import colorfulness

__all__ = ["BLOTCH_CHROMA", "blotch", "colorfulness", "psnr", "ssim"]

BLOTCH_CHROMA = 15.0
"""Lab chroma above which a painted colour counts as a confident one."""
BLOTCH_GREY = 5.0
"""Truth chroma below which a pixel counts as colourless (its hue means nothing)."""
BLOTCH_HUE = 90.0
"""Hue error in degrees beyond which a confident colour is the wrong one."""


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of RGB in [0, 1], (B,) tensor."""
    mse = (pred.clamp(0, 1) - target.clamp(0, 1)).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(1.0 / mse.clamp_min(1e-10))


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM (11x11 Gaussian window, averaged over RGB channels), (B,) tensor."""
    return kornia_ssim(pred.clamp(0, 1), target.clamp(0, 1), 11).flatten(1).mean(1)


def blotch(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image share (B,) of pixels painted a confident wrong colour: chroma above 15 where
    the truth is nearly grey, or more than 90 degrees of hue away from the truth's."""
    p_ab = lab.rgb_to_lab(pred.clamp(0, 1))[:, 1:]
    t_ab = lab.rgb_to_lab(target.clamp(0, 1))[:, 1:]
    p_c, t_c = p_ab.norm(dim=1), t_ab.norm(dim=1)
    cos = (p_ab * t_ab).sum(1) / (p_c * t_c).clamp_min(1e-6)
    wrong_hue = cos < torch.cos(torch.deg2rad(torch.tensor(BLOTCH_HUE)))
    bad = (p_c > BLOTCH_CHROMA) & ((t_c < BLOTCH_GREY) | wrong_hue)
    return bad.flatten(1).float().mean(1)
