"""Content matching: where in a reference picture each pixel of a frame is, by the ImageNet
encoder's features of lightness alone (as in Deep Exemplar-based colorization), so a colour photo
of the same place, or a painted keyframe the flow has lost, can lend its colours."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

MATCH_STRIDE = 8
"""Matching grid: one cell per 8x8 pixels of the working resolution."""
SIM_LOW = 0.35
SIM_HIGH = 0.85
"""Cosine similarity mapped linearly onto the guidance confidence 0..1 the guided model was
trained with (below SIM_LOW: no match)."""
OUTPUT_SIM_LOW = 0.42
OUTPUT_SIM_HIGH = 0.58
"""The same for taking a match's colour straight into the output where the flow has lost track:
on the project's clips, cells of the same scene score a median 0.56-0.60 and cells of unrelated
scenes 0.38-0.43 (``benchmarks/exemplar_facts.py``), so only likely matches count."""
SOFT_TOP_K = 4
SOFT_TAU = 0.03
"""The colour of a match is a softmax (temperature SOFT_TAU) over the SOFT_TOP_K best cells."""
CYCLE_CELLS = 2.0
"""A match whose reverse best match lands within this many cells of the start is trusted fully;
one that does not keeps half its confidence."""


@dataclass
class MatchTarget:
    """A reference ready for matching: its features and its ab on the matching grid."""

    features: torch.Tensor
    """(1, C, h, w) unit-normalised features."""
    ab: torch.Tensor
    """(1, 2, h, w) mean ab of each cell, Lab units."""
    weight: torch.Tensor
    """(1, 1, h, w) 1 where the reference has colour (painted keyframes may be partial)."""


def encoder_features(model: torch.nn.Module, L: torch.Tensor) -> torch.Tensor:
    """(B, C, h/8, w/8) unit-length features of L: the encoder's stride-8 and stride-16 maps."""
    skips, _ = model.encode(L)
    return features_from_skips(skips)


def features_from_skips(skips: list[torch.Tensor]) -> torch.Tensor:
    """Matching features from the encoder's skip maps (strides 2, 4, 8, 16, 32)."""
    s8, s16 = skips[2], skips[3]
    s16 = F.interpolate(s16, size=s8.shape[-2:], mode="bilinear", align_corners=False)
    f = torch.cat([F.normalize(s8.float(), dim=1), F.normalize(s16.float(), dim=1)], 1)
    return F.normalize(f, dim=1)


def prepare_reference(
    model: torch.nn.Module,
    L: torch.Tensor,
    ab: torch.Tensor,
    weight: torch.Tensor | None = None,
    *,
    pool: int = 1,
) -> MatchTarget:
    """Features and cell colours of one reference: L (1, 1, H, W), ab (1, 2, H, W).

    ``pool`` > 1 averages its feature cells ``pool`` x ``pool`` (matching costs 1/pool^2)."""
    feats = encoder_features(model, L)
    if pool > 1:
        feats = F.normalize(F.avg_pool2d(feats, pool, ceil_mode=True), dim=1)
    size = feats.shape[-2:]
    if weight is None:
        weight = torch.ones_like(L)
    w = F.adaptive_avg_pool2d(weight.float(), size)
    ab_cells = F.adaptive_avg_pool2d(ab.float() * weight, size) / w.clamp_min(1e-3)
    return MatchTarget(features=feats, ab=ab_cells, weight=(w > 0.5).float())


def match(
    features: torch.Tensor, target: MatchTarget
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each cell of ``features`` (B, C, h, w) against the reference: ab (B, 2, h, w), the
    guidance confidence and the output confidence (B, 1, h, w); low where nothing looks alike."""
    B, _, h, w = features.shape
    ref = target.features.flatten(2)[0]  # (C, M)
    M = ref.shape[1]
    valid = target.weight.flatten()  # (M,)
    q = features.flatten(2).transpose(1, 2)  # (B, N, C)
    sim = q @ ref  # (B, N, M)
    sim = sim.masked_fill(valid[None, None] < 0.5, -1.0)
    k = min(SOFT_TOP_K, M)
    top, idx = sim.topk(k, dim=2)  # (B, N, k)
    wts = torch.softmax(top / SOFT_TAU, dim=2)
    ab_ref = target.ab.flatten(2)[0].T  # (M, 2)
    ab = (ab_ref[idx] * wts[..., None]).sum(2)  # (B, N, 2)
    best = idx[..., 0]  # (B, N)
    # cycle check: the reference cell's own best match among this frame's cells
    back = sim.argmax(dim=1)  # (B, M)
    cycle = torch.gather(back, 1, best)  # (B, N)
    n = torch.arange(h * w, device=features.device)
    dy = (cycle // w - n // w).float()
    dx = (cycle % w - n % w).float()
    consistent = ((dx.square() + dy.square()) <= CYCLE_CELLS**2).float()
    cycle = 0.5 + 0.5 * consistent
    conf = ((top[..., 0] - SIM_LOW) / (SIM_HIGH - SIM_LOW)).clamp(0.0, 1.0) * cycle
    sure = ((top[..., 0] - OUTPUT_SIM_LOW) / (OUTPUT_SIM_HIGH - OUTPUT_SIM_LOW)).clamp(0.0, 1.0)
    ab = ab.transpose(1, 2).reshape(B, 2, h, w)
    return ab, conf.reshape(B, 1, h, w), (sure * cycle).reshape(B, 1, h, w)


def match_guidance(
    features: torch.Tensor, target: MatchTarget, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`match` upsampled to the working size ``size``: (ab, guidance confidence)."""
    ab, conf, _ = match_maps(features, target, size)
    return ab, conf


def match_maps(
    features: torch.Tensor, target: MatchTarget, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`match` upsampled to ``size``: (ab, guidance confidence, output confidence)."""
    return tuple(  # type: ignore[return-value]
        F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        for x in match(features, target)
    )
