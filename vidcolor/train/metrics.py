"""Image metrics used by validation and ``eval-images``: PSNR, SSIM, colorfulness."""

from __future__ import annotations

import torch
from kornia.metrics import ssim as kornia_ssim

from vidcolor.lab import colorfulness

__all__ = ["colorfulness", "psnr", "ssim"]


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of RGB in [0, 1], (B,) tensor."""
    mse = (pred.clamp(0, 1) - target.clamp(0, 1)).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(1.0 / mse.clamp_min(1e-10))


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM (11x11 Gaussian window, averaged over RGB channels), (B,) tensor."""
    return kornia_ssim(pred.clamp(0, 1), target.clamp(0, 1), 11).flatten(1).mean(1)
