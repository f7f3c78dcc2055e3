"""Scoring steered colour on a colour clip, by the field's protocol (ColorMNet, ECCV 2024): the
true colours of one frame are the reference, and PSNR, SSIM and CDC are measured over the whole
clip against the truth (and over its last frames, to see whether the reference holds).

Variants, all at the pipeline's working size with the same guided upsampling:
``grey``, ``automatic`` (the default model and forward stabiliser), ``auto-keyframes``,
``keyframe first`` / ``keyframe middle`` (that true frame given as ``--reference``),
``reference photo`` (the middle frame mirrored and cropped to 70 %: only content matching can
use it) and ``naive chained`` (the first frame's ab warped frame to frame by DIS, no anchoring).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.colorize import Colorizer
from vidcolor.errors import UsageError
from vidcolor.lab import rgb_to_l, rgb_to_lab
from vidcolor.steer.engine import SteerPlan, SteerStage
from vidcolor.steer.guides import ReferencePlacer, steer_image_from_array
from vidcolor.temporal import TemporalOptions, make_temporal_stage, run_stage_on_sequence
from vidcolor.temporal.evaluate import _reference_flows, _render, _score, working_size
from vidcolor.temporal.flow import flow_pair, make_flow
from vidcolor.temporal.metrics import as_rgb
from vidcolor.temporal.warp import backward_warp

VARIANTS = (
    "grey", "automatic", "auto-keyframes", "keyframe first", "keyframe middle",
    "reference photo", "naive chained",
)
TAIL_FRAMES = 10
"""PSNR is also reported over the clip's last this many frames (does the reference hold?)."""
REFERENCE_CROP = 0.7


@dataclass
class SteerScore:
    label: str
    psnr: float
    ssim: float
    psnr_tail: float
    cdc: float
    warping_error: float
    ms_per_frame: float
    keyframes: list[tuple[int, str]] = field(default_factory=list)


def mirrored_crop(rgb: np.ndarray, share: float = REFERENCE_CROP) -> np.ndarray:
    """The centre ``share`` of each side, mirrored left-right: a reference that is no frame."""
    h, w = rgb.shape[:2]
    ch, cw = round(h * share), round(w * share)
    y, x = (h - ch) // 2, (w - cw) // 2
    return np.ascontiguousarray(rgb[y : y + ch, x : x + cw][:, ::-1])


def naive_chain(
    L_work: torch.Tensor, ab_key: torch.Tensor, key: int = 0, flow: str = "dis"
) -> torch.Tensor:
    """The keyframe's ab warped frame to frame along the flow (forward and backward from
    frame ``key``), never re-anchored: the baseline that drifts."""
    backend = make_flow(flow, device="cpu")
    T = L_work.shape[0]
    out: list[torch.Tensor | None] = [None] * T
    out[key] = ab_key
    for t in range(key + 1, T):
        f_cp, _ = flow_pair(backend, L_work[t : t + 1], L_work[t - 1 : t])
        out[t] = backward_warp(out[t - 1], f_cp)
    for t in range(key - 1, -1, -1):
        f_cn, _ = flow_pair(backend, L_work[t : t + 1], L_work[t + 1 : t + 2])
        out[t] = backward_warp(out[t + 1], f_cn)
    return torch.cat(out)


def key_frame(label: str, count: int) -> int | None:
    """Frame index named by 'keyframe first|middle|N' (None for other variants)."""
    if not label.startswith("keyframe "):
        return None
    which = label.split(" ", 1)[1]
    if which == "first":
        return 0
    if which == "middle":
        return count // 2
    if which.isdigit() and int(which) < count:
        return int(which)
    raise UsageError(f"{label!r}: use keyframe first, middle or a frame number below {count}")


def _working_ab(rgb: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    t = as_rgb(rgb)
    ab = rgb_to_lab(t)[:, 1:]
    return F.interpolate(ab, size=size, mode="bilinear", align_corners=False, antialias=True)


def evaluate_steering(
    originals: list[np.ndarray],
    *,
    automatic: Colorizer,
    guided: Colorizer,
    temporal: TemporalOptions,
    working_short_side: int,
    variants: Sequence[str] = VARIANTS,
    batch_size: int = 4,
    warping_error: bool = True,
    ssim_every: int = 1,
) -> list[SteerScore]:
    """Score each variant on one clip's frames (uint8 RGB (H, W, 3)). ``warping_error=False``
    skips the reference flow and that metric (NaN); ``ssim_every`` thins the SSIM frames."""
    bad = [v for v in variants if v not in VARIANTS and not v.startswith("keyframe ")]
    if bad:
        raise UsageError(f"unknown variant {bad[0]!r}; choose from {', '.join(VARIANTS)}")
    rgb = as_rgb(np.stack(originals))
    L_full = rgb_to_l(rgb)
    T, _, H, W = L_full.shape
    size = working_size(tuple(L_full.shape[-2:]), working_short_side)
    L_work = F.interpolate(L_full, size=size, mode="bilinear", align_corners=False, antialias=True)
    flows = _reference_flows(rgb, L_full) if warping_error else [None] * T
    zeros = torch.zeros(T, 2, *size)
    mid = T // 2
    scores = []
    for label in variants:
        t0 = time.perf_counter()
        used: list[tuple[int, str]] = []
        if label == "grey":
            ab = zeros
        elif label == "automatic":
            preds = [automatic.predict(L_work[i : i + 8]).cpu() for i in range(0, T, 8)]
            stage = make_temporal_stage(temporal)
            ab = run_stage_on_sequence(stage, L_work, torch.cat(preds))
        elif label == "naive chained":
            k = next((key_frame(v, T) for v in variants if key_frame(v, T) is not None), 0)
            ab = naive_chain(L_work, _working_ab(originals[k], size), k)
        else:
            plan = SteerPlan()
            model = guided
            if label == "auto-keyframes":
                plan.auto_keyframes, model = True, automatic
            else:
                k = key_frame(label, T)
                ref = originals[k] if k is not None else mirrored_crop(originals[mid])
                placer = ReferencePlacer([steer_image_from_array(ref, label)], (H, W))
                for t in range(T):
                    placer.update(t, L_work[t : t + 1])
                plan.keyframes, plan.references = placer.result()
            stage = SteerStage(
                backend=make_flow("dis" if temporal.flow == "auto" else temporal.flow),
                colorizer=model, plan=plan, strength=temporal.strength,
                cut_threshold=temporal.cut_threshold, device=torch.device("cpu"),
                frame_hw=tuple(L_full.shape[-2:]), batch_size=batch_size, automatic=automatic,
            )
            ab = run_stage_on_sequence(stage, L_work, zeros)
            used = list(stage.keyframes_used)
        ms = (time.perf_counter() - t0) * 1000.0 / T
        frames = (_render(L_full[t : t + 1], ab[t : t + 1], L_work[t : t + 1]) for t in range(T))
        r = _score(label, frames, originals, flows, ssim_every=ssim_every)
        tail = r.per_frame_psnr[-TAIL_FRAMES:]
        scores.append(SteerScore(
            label=label, psnr=r.psnr, ssim=r.ssim,
            psnr_tail=float(np.mean(tail)) if tail else math.nan, cdc=r.cdc,
            warping_error=r.warping_error if warping_error else math.nan, ms_per_frame=ms,
            keyframes=used,
        ))
    return scores


def format_scores(clip: str, scores: list[SteerScore]) -> str:
    """Fixed-width table of one clip's variants."""
    head = (f"{'variant':<18}{'PSNR':>7}{'SSIM':>8}{'last10':>8}{'CDC':>9}{'warp err':>10}"
            f"{'ms/fr':>8}")
    rows = [clip, head, "-" * len(head)]
    for s in scores:
        we = "-" if s.warping_error is None or math.isnan(s.warping_error) else (
            f"{s.warping_error:.5f}")
        rows.append(
            f"{s.label:<18}{s.psnr:>7.2f}{s.ssim:>8.4f}{s.psnr_tail:>8.2f}{s.cdc:>9.5f}"
            f"{we:>10}{s.ms_per_frame:>8.1f}"
        )
    return "\n".join(rows)


def scores_to_json(scores: list[SteerScore]) -> list[dict]:
    """JSON-ready rows (NaN, a metric not computed, as None)."""
    return [
        {k: None if isinstance(v, float) and math.isnan(v) else v
         for k, v in dataclasses.asdict(s).items()}
        for s in scores
    ]
