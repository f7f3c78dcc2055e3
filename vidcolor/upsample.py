"""Chroma upsampling guided by the full-resolution lightness (fast guided filter, He & Sun 2015),
so colour follows the original edges instead of bleeding across them."""

from __future__ import annotations

import torch
import torch.nn.functional as F

GUIDED_RADIUS = 2
"""Box radius, in working-resolution pixels, of the local linear model."""
GUIDED_EPS = 4.0
"""Regulariser on L variance (L in 0..100 units): larger is smoother, smaller follows edges
harder."""


def box(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over a (2r+1)^2 window, edges handled by replicate padding."""
    k = 2 * r + 1
    return F.avg_pool2d(F.pad(x, (r, r, r, r), mode="replicate"), k, stride=1)


def guided_upsample(
    src_lo: torch.Tensor,
    guide_lo: torch.Tensor,
    guide_hi: torch.Tensor,
    *,
    radius: int = GUIDED_RADIUS,
    eps: float = GUIDED_EPS,
) -> torch.Tensor:
    """Upsample ``src_lo`` (B, C, h, w) to ``guide_hi``'s size (B, 1, H, W).

    A local linear model src ≈ a·guide + b is fitted at low resolution; a and b are upsampled
    bilinearly and applied to the high-resolution guide, which restores its edges.
    """
    mean_g = box(guide_lo, radius)
    mean_s = box(src_lo, radius)
    cov = box(guide_lo * src_lo, radius) - mean_g * mean_s
    var = box(guide_lo * guide_lo, radius) - mean_g * mean_g
    a = cov / (var + eps)
    b = mean_s - a * mean_g
    a = box(a, radius)
    b = box(b, radius)
    size = guide_hi.shape[-2:]
    a = F.interpolate(a, size=size, mode="bilinear", align_corners=False)
    b = F.interpolate(b, size=size, mode="bilinear", align_corners=False)
    return a * guide_hi + b
