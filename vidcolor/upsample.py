"""Chroma upsampling guided by the full-resolution lightness (fast guided filter, He & Sun 2015),
so colour follows the original edges instead of bleeding across them."""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

GUIDED_RADIUS = 2
"""Box radius, in working-resolution pixels, of the local linear model."""
GUIDED_EPS = 4.0
"""Regulariser on L variance (L in 0..100 units): larger is smoother, smaller follows edges
harder."""


def box(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over a (2r+1)^2 window, edges replicated; running sums, so O(1) per pixel
    (``avg_pool2d`` with stride 1 is an order of magnitude slower on CPUs)."""
    k = 2 * r + 1
    xp = F.pad(x, (r + 1, r, r + 1, r), mode="replicate")
    c = xp.cumsum(-1)
    c = c[..., k:] - c[..., :-k]
    c = c.cumsum(-2)
    return (c[..., k:, :] - c[..., :-k, :]) / (k * k)


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
    c = src_lo.shape[1]
    stats = box(torch.cat([guide_lo, src_lo, guide_lo * src_lo, guide_lo * guide_lo], 1), radius)
    mean_g, mean_s = stats[:, :1], stats[:, 1 : 1 + c]
    cov = stats[:, 1 + c : 1 + 2 * c] - mean_g * mean_s
    var = stats[:, -1:] - mean_g * mean_g
    a = cov / (var + eps)
    b = mean_s - a * mean_g
    a, b = box(torch.cat([a, b], 1), radius).split(c, dim=1)
    size = guide_hi.shape[-2:]
    a = F.interpolate(a, size=size, mode="bilinear", align_corners=False)
    b = F.interpolate(b, size=size, mode="bilinear", align_corners=False)
    return a * guide_hi + b


def guided_upsample_cpu(
    src_lo: np.ndarray,
    guide_lo: np.ndarray,
    guide_hi: np.ndarray,
    *,
    radius: int = GUIDED_RADIUS,
    eps: float = GUIDED_EPS,
) -> np.ndarray:
    """:func:`guided_upsample` of one frame in OpenCV's SIMD kernels (the film's CPU path):
    ``src_lo`` (C, h, w), guides (h, w) and (H, W) float32; returns (C, H, W). The same filter:
    replicated edges, half-pixel bilinear."""
    k = (2 * radius + 1, 2 * radius + 1)

    def mean(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, k, borderType=cv2.BORDER_REPLICATE)

    g = np.ascontiguousarray(guide_lo, dtype=np.float32)
    mean_g = mean(g)
    var = mean(g * g) - mean_g * mean_g
    size = (guide_hi.shape[1], guide_hi.shape[0])
    out = np.empty((src_lo.shape[0], *guide_hi.shape), np.float32)
    for c, s in enumerate(np.asarray(src_lo, dtype=np.float32)):
        mean_s = mean(s)
        a = (mean(g * s) - mean_g * mean_s) / (var + eps)
        b = mean_s - a * mean_g
        a = cv2.resize(mean(a), size, interpolation=cv2.INTER_LINEAR)
        b = cv2.resize(mean(b), size, interpolation=cv2.INTER_LINEAR)
        out[c] = a * guide_hi + b
    return out


_HALVE_KERNEL = np.array([0.25, 0.5, 0.25], np.float32)


def _halve_rows(x: np.ndarray) -> np.ndarray:
    """(n, W) -> (n, W // 2), W even: the weights [1, 3, 3, 1] / 8 at stride 2, the truncated
    weights renormalised at both ends (torch's anti-aliased bilinear halving)."""
    a, b = x[:, 0::2], x[:, 1::2]
    out = np.empty_like(a)
    out[:, 1:-1] = (b[:, :-2] + 3 * (a[:, 1:-1] + b[:, 1:-1]) + a[:, 2:]) / 8
    out[:, 0] = (3 * (a[:, 0] + b[:, 0]) + a[:, 1]) / 7
    out[:, -1] = (b[:, -2] + 3 * (a[:, -1] + b[:, -1])) / 7
    return out


def _halve_strip(x: np.ndarray) -> np.ndarray:
    """:func:`halve_cpu` by plain numpy, for the thin strips along its edges."""
    return _halve_rows(np.ascontiguousarray(_halve_rows(x).T)).T


def halve_cpu(x: np.ndarray) -> np.ndarray:
    """A float32 (H, W) plane, H and W even and at least 4, halved as torch's anti-aliased
    bilinear resize halves it (to float rounding), in OpenCV: [1, 2, 1] / 4 then 2x2 means
    inside; the edge rows and columns, where torch renormalises, from 4-pixel strips."""
    h, w = x.shape
    x = np.ascontiguousarray(x, dtype=np.float32)
    smooth = cv2.sepFilter2D(x, -1, _HALVE_KERNEL, _HALVE_KERNEL,
                             borderType=cv2.BORDER_REPLICATE)
    out = cv2.resize(smooth, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    out[0], out[-1] = _halve_strip(x[:4])[0], _halve_strip(x[-4:])[-1]
    out[:, 0], out[:, -1] = _halve_strip(x[:, :4])[:, 0], _halve_strip(x[:, -4:])[:, -1]
    return out
