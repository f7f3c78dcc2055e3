"""Quantised ab bins (Zhang et al. 2016): grid, soft-encoding, rebalancing, annealed mean."""

from __future__ import annotations

import math

import kornia.color as kc
import torch
import torch.nn.functional as F

GRID_STEP = 10.0
"""Bin spacing in Lab ab units."""
SOFT_NEIGHBOURS = 5
SOFT_SIGMA = 5.0
REBALANCE_LAMBDA = 0.5
HIST_SIGMA = 5.0
DEFAULT_TEMPERATURE = 0.38


def in_gamut_bins(step: float = GRID_STEP) -> torch.Tensor:
    """Centres (Q, 2) of the ab grid cells that are in the sRGB gamut for some lightness."""
    r = torch.arange(-110.0, 110.0 + 1e-6, step)
    a, b = torch.meshgrid(r, r, indexing="ij")
    ab = torch.stack([a.flatten(), b.flatten()], 1)
    ok = torch.zeros(len(ab), dtype=torch.bool)
    for L in torch.arange(5.0, 96.0, 2.5):
        labv = torch.cat([torch.full((len(ab), 1), float(L)), ab], 1).T[None, :, :, None]
        rgb = kc.lab_to_rgb(labv, clip=False)[0, :, :, 0].T
        ok |= ((rgb >= -0.002) & (rgb <= 1.002)).all(1)
    return ab[ok].contiguous()


def soft_encode(ab: torch.Tensor, centers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ab (B, 2, H, W) -> soft targets (B, Q, H, W) over the k nearest bins, and nearest index."""
    B, _, H, W = ab.shape
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    d2 = torch.cdist(flat, centers) ** 2
    dist, idx = d2.topk(SOFT_NEIGHBOURS, dim=1, largest=False)
    w = torch.softmax(-dist / (2 * SOFT_SIGMA**2), dim=1)
    target = torch.zeros(flat.shape[0], centers.shape[0], device=ab.device, dtype=ab.dtype)
    target.scatter_(1, idx, w)
    target = target.view(B, H, W, -1).permute(0, 3, 1, 2)
    return target, idx[:, 0].view(B, H, W)


def rebalance_weights(hist: torch.Tensor, lam: float = REBALANCE_LAMBDA) -> torch.Tensor:
    """Per-bin loss weights from an ab histogram: w ∝ ((1-λ)p + λ/Q)^-1, scaled so E_p[w] = 1."""
    p = hist.double() / hist.sum().clamp_min(1)
    w = 1.0 / ((1 - lam) * p + lam / len(p))
    w = w / (p * w).sum()
    return w.float()


def smoothed_histogram(ab_samples: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Histogram of ab samples (N, 2) over the bins, smoothed with a Gaussian over ab distance."""
    idx = torch.cdist(ab_samples.float(), centers).argmin(1)
    hist = torch.bincount(idx, minlength=len(centers)).double()
    k = torch.exp(-torch.cdist(centers, centers).double() ** 2 / (2 * HIST_SIGMA**2))
    return (k @ hist).float()


def annealed_mean(logits: torch.Tensor, centers: torch.Tensor, temperature: float) -> torch.Tensor:
    """Logits (B, Q, H, W) -> ab (B, 2, H, W): mean of softmax(logits / T) over the bin centres."""
    p = F.softmax(logits / temperature, dim=1)
    return torch.einsum("bqhw,qc->bchw", p, centers)


CONFIDENCE_ROWS = 8
"""Rows of bin logits :func:`confidence` takes at a time at inference: the four passes over a
band stay in the CPU's cache, where a whole frame's would not (the same numbers at the shipped
shapes; elsewhere within float rounding)."""


def confidence(logits: torch.Tensor) -> torch.Tensor:
    """Per-pixel confidence in [0, 1]: 1 - normalised entropy of the bin distribution."""
    if not logits.requires_grad and logits.shape[2] > CONFIDENCE_ROWS:
        bands = logits.split(CONFIDENCE_ROWS, dim=2)
        return torch.cat([_confidence(band) for band in bands], dim=2)
    return _confidence(logits)


def _confidence(logits: torch.Tensor) -> torch.Tensor:
    log_p = F.log_softmax(logits, dim=1)  # cheaper than a log of each probability
    ent = -(log_p.exp() * log_p).sum(1, keepdim=True)
    return 1.0 - ent / math.log(logits.shape[1])


def spread(logits: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Per-pixel standard deviation (B, 1, H, W) in ab units of the bin posterior: small when
    its mass sits on one colour, large when split between distant ones (multi-modal)."""
    p = F.softmax(logits, dim=1)
    mean = torch.einsum("bqhw,qc->bchw", p, centers)
    sq = torch.einsum("bqhw,q->bhw", p, centers.pow(2).sum(1))[:, None]
    return (sq - mean.pow(2).sum(1, keepdim=True)).clamp_min(0.0).sqrt()


__all__ = [
    "annealed_mean",
    "confidence",
    "in_gamut_bins",
    "rebalance_weights",
    "smoothed_histogram",
    "soft_encode",
    "spread",
]
