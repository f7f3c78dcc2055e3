"""Temporal-consistency metrics: warping error (Lai et al., ECCV 2018) and CDC (TCVC, Liu et al.).

Frames are RGB, either float tensors (T, 3, H, W) / (3, H, W) in [0, 1] or uint8 arrays
(T, H, W, 3) / (H, W, 3); :func:`as_rgb` converts either to float (T, 3, H, W).
The flow for the warping error is Farneback on the *original* frames, independent of the
stage's own flow, so a stage cannot score well merely by agreeing with itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from vidcolor.errors import InputError
from vidcolor.lab import rgb_to_l
from vidcolor.temporal.flow import FarnebackFlow, flow_pair
from vidcolor.temporal.warp import backward_warp, consistency_mask, motion_boundary_mask

CDC_DILATIONS = (1, 2, 4)

FrameSeq = torch.Tensor | np.ndarray | Sequence[torch.Tensor | np.ndarray]


def as_rgb(frames: FrameSeq) -> torch.Tensor:
    """Float (T, 3, H, W) in [0, 1] from uint8 (..., H, W, 3) arrays or (..., 3, H, W) tensors."""
    if isinstance(frames, Sequence) and not isinstance(frames, torch.Tensor | np.ndarray):
        if not frames:
            raise InputError("expected at least one frame, got none")
        return torch.cat([as_rgb(f) for f in frames])
    if isinstance(frames, np.ndarray):
        if frames.dtype != np.uint8 or frames.shape[-1] != 3:
            raise InputError(
                f"expected uint8 arrays of shape (..., H, W, 3), got {frames.dtype} {frames.shape}"
            )
        x = torch.from_numpy(np.array(frames)).float().div(255.0)  # a copy: inputs may be read-only
        x = x.movedim(-1, -3)
    else:
        x = frames.float()
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[1] != 3:
        raise InputError(f"expected RGB frames (T, 3, H, W), got {tuple(x.shape)}")
    return x


class ReferenceFlow:
    """Farneback flow t -> t-1 on original frames and its non-occlusion mask, for warping error."""

    def __init__(self) -> None:
        self._flow = FarnebackFlow()

    def __call__(
        self, original_prev: torch.Tensor, original_cur: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, 2, H, W) flow cur -> prev and (1, 1, H, W) mask of the pixels Lai et al. keep:
        those passing the forward-backward test and not on a motion boundary."""
        L_prev, L_cur = rgb_to_l(as_rgb(original_prev)), rgb_to_l(as_rgb(original_cur))
        cur_to_prev, prev_to_cur = flow_pair(self._flow, L_cur, L_prev)
        mask = consistency_mask(cur_to_prev, prev_to_cur) * motion_boundary_mask(cur_to_prev)
        return cur_to_prev, mask


def warping_error_pair(
    out_prev: torch.Tensor, out_cur: torch.Tensor, flow: torch.Tensor, mask: torch.Tensor
) -> float:
    """Masked mean over pixels of ``|out_cur - warp(out_prev)|^2`` (squared RGB norm, 0..3)."""
    prev, cur = as_rgb(out_prev), as_rgb(out_cur)
    sq = (cur - backward_warp(prev, flow)).square().sum(1, keepdim=True)
    count = float(mask.sum())
    if count == 0:
        return float(sq.mean())
    return float((sq * mask).sum() / count)


def warping_error(outputs: FrameSeq, originals: FrameSeq) -> tuple[float, list[float]]:
    """Mean warping error and the per-frame values (frames 1..T-1) of an output sequence."""
    out, ref = as_rgb(outputs), as_rgb(originals)
    if out.shape != ref.shape:
        raise InputError(f"outputs {tuple(out.shape)} and originals {tuple(ref.shape)} differ")
    flows = ReferenceFlow()
    per_frame = []
    for t in range(1, out.shape[0]):
        flow, mask = flows(ref[t - 1 : t], ref[t : t + 1])
        per_frame.append(warping_error_pair(out[t - 1 : t], out[t : t + 1], flow, mask))
    return (float(np.mean(per_frame)) if per_frame else 0.0), per_frame


def color_histograms(frame: torch.Tensor | np.ndarray) -> np.ndarray:
    """(3, 256) per-channel histograms of one RGB frame quantised to 8 bits, each summing to 1."""
    rgb = as_rgb(frame)[0]
    q = (rgb * 255.0).round().clamp(0, 255).long().flatten(1)
    hist = torch.zeros(3, 256, dtype=torch.float64).scatter_add_(
        1, q, torch.ones_like(q, dtype=torch.float64)
    )
    return (hist / hist.sum(1, keepdim=True)).numpy()


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence (natural log, 0..ln 2) of two normalised histograms."""
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log(a[nz] / m[nz])))

    return 0.5 * kl(p) + 0.5 * kl(q)


def cdc_from_histograms(
    hists: Sequence[np.ndarray], *, dilations: Sequence[int] = CDC_DILATIONS
) -> tuple[float, list[float]]:
    """CDC as in TCVC: per dilation d, mean over channels and t of JS(h_t, h_{t+d}); then mean
    over d (equal weights, d with no pair skipped). Per-frame values: mean over channels and d."""
    per_d = []
    per_frame: list[list[float]] = [[] for _ in hists]
    for d in dilations:
        values = []
        for t in range(len(hists) - d):
            js = float(np.mean([js_divergence(hists[t][c], hists[t + d][c]) for c in range(3)]))
            values.append(js)
            per_frame[t].append(js)
        if values:
            per_d.append(float(np.mean(values)))
    frames = [float(np.mean(v)) if v else math.nan for v in per_frame]
    return (float(np.mean(per_d)) if per_d else 0.0), frames


def cdc(frames: FrameSeq, *, dilations: Sequence[int] = CDC_DILATIONS) -> tuple[float, list[float]]:
    """Colour distribution consistency of an RGB sequence (lower is steadier); with per-frame."""
    rgb = as_rgb(frames)
    return cdc_from_histograms([color_histograms(f) for f in rgb], dilations=dilations)
