"""Training losses; every weight is an option of ``TrainOptions``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from kornia.filters import gaussian_blur2d

from vidcolor.models import bins as abbins

HUBER_DELTA = 0.1
"""Huber transition point on normalised ab (about 11 Lab units)."""


def _match(ab_n: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Area-resize the normalised target to the prediction's resolution."""
    if ab_n.shape[-2:] == like.shape[-2:]:
        return ab_n
    return F.adaptive_avg_pool2d(ab_n, like.shape[-2:])


def huber_ab(pred_n: torch.Tensor, target_n: torch.Tensor) -> torch.Tensor:
    """Huber loss on normalised ab."""
    return F.huber_loss(pred_n, _match(target_n, pred_n), delta=HUBER_DELTA)


def blur_averaged_ab(pred_n: torch.Tensor, target_n: torch.Tensor) -> torch.Tensor:
    """ColorNet's loss: Huber averaged over the plain and 3 px / 5 px Gaussian-blurred chroma."""
    target_n = _match(target_n, pred_n)
    total = huber_ab(pred_n, target_n)
    for k, s in ((3, 1.0), (5, 1.5)):
        total = total + huber_ab(
            gaussian_blur2d(pred_n, (k, k), (s, s)), gaussian_blur2d(target_n, (k, k), (s, s))
        )
    return total / 3.0


def rebalanced_bins_ce(
    logits: torch.Tensor, ab: torch.Tensor, centers: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Zhang et al.'s cross-entropy against soft-encoded targets, weighted per pixel by the
    rarity of its true colour (``ab`` in Lab units, area-resized to the logits' size)."""
    ab = F.adaptive_avg_pool2d(ab, logits.shape[-2:])
    target, nearest = abbins.soft_encode(ab, centers)
    logp = F.log_softmax(logits, dim=1)
    ce = -(target * logp).sum(1)
    w = weights[nearest]
    return (w * ce).mean()
