"""``vidcolor eval-video``: colour a colour clip's grey version and score the temporal stage.

The clip (video file, or a folder of numbered frames such as ``00000.jpg``) is held in memory as
uint8 RGB, so use ``max_frames`` for long clips. Each frame is made grey (Lab L), shrunk to the
working size, coloured by ``colorize_fn``, run through every requested stage and through
``flow='none'`` (per-frame baseline); ab is upsampled bilinearly to full size and joined with the
original L. Reported per variant: PSNR and SSIM against the original, warping error (Lai et al.)
and CDC (TCVC), with per-frame curves, and the stage's own cost in ms per frame.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.errors import InputError, UsageError
from vidcolor.lab import lab_to_rgb, rgb_to_l
from vidcolor.temporal.api import TemporalOptions
from vidcolor.temporal.cuts import CutDetector
from vidcolor.temporal.metrics import (
    ReferenceFlow,
    as_rgb,
    cdc_from_histograms,
    color_histograms,
    warping_error_pair,
)
from vidcolor.temporal.stabilize import make_temporal_stage, run_stage_on_sequence
from vidcolor.train.metrics import psnr, ssim

ColorizeFn = Callable[[torch.Tensor], torch.Tensor]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
COLORIZE_BATCH = 8
ORIGINAL_LABEL = "original colours"
"""Row of the clip's own colours scored like an output (real colour changes count as flicker)."""
GREY_LABEL = "steady grey (floor)"
"""Row of the grey clip (ab = 0): the warping error of perfectly steady chroma. Outputs share the
original lightness, so no colouring can get far below this; what the reference flow cannot
explain in the lightness stays in every row."""


@dataclass
class VariantResult:
    """Scores of one way of running the temporal stage over the clip."""

    label: str
    """'per-frame' for the baseline, else the stage name ('dis/forward', ...)."""
    psnr: float
    ssim: float
    warping_error: float
    cdc: float
    ms_per_frame: float
    """The temporal stage's own cost (not colouring or metrics)."""
    cuts: list[tuple[int, Fraction]] = field(default_factory=list)
    per_frame_psnr: list[float] = field(default_factory=list)
    per_frame_warping_error: list[float] = field(default_factory=list)
    """Frames 1..T-1 (frame 0 has no predecessor); NaN at cuts in the original clip."""
    per_frame_cdc: list[float] = field(default_factory=list)


@dataclass
class EvalResult:
    """Everything ``eval-video`` reports; ``to_dict`` for JSON, ``format_table`` to print."""

    clip: str
    frames: int
    size: tuple[int, int]
    working_size: tuple[int, int]
    variants: list[VariantResult]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict: cut times as float seconds, NaN (no value) as None."""
        data = dataclasses.asdict(self)
        for v in data["variants"]:
            v["cuts"] = [[i, float(t)] for i, t in v["cuts"]]
            for key in ("psnr", "ssim"):
                v[key] = None if math.isnan(v[key]) else v[key]
            for key in ("per_frame_psnr", "per_frame_warping_error", "per_frame_cdc"):
                v[key] = [None if math.isnan(x) else x for x in v[key]]
        return data

    def variant(self, label: str) -> VariantResult:
        """The row called ``label``."""
        for v in self.variants:
            if v.label == label:
                return v
        raise KeyError(f"no variant {label!r}; have {[v.label for v in self.variants]}")

    def ratios(self, label: str) -> dict[str, float]:
        """Warping error and CDC of ``label`` as multiples of per-frame colouring, and its
        *excess* warping error (above the steady-grey floor) as a multiple of per-frame's: the
        share of the removable flicker that is left (NaN where per-frame has none)."""
        v, base, grey = self.variant(label), self.variant("per-frame"), self.variant(GREY_LABEL)
        removable = base.warping_error - grey.warping_error
        return {
            "warping_error": _ratio(v.warping_error, base.warping_error),
            "excess_warping_error": _ratio(v.warping_error - grey.warping_error, removable)
            if removable > 0
            else math.nan,
            "cdc": _ratio(v.cdc, base.cdc),
        }

    def format_table(self) -> str:
        """Fixed-width table: one row per variant, lower warping error / CDC is steadier.
        'x pf' is a multiple of per-frame colouring; 'excess x' the same for the warping error
        above the steady-grey floor (the flicker colouring can remove)."""
        head = (
            f"{'variant':<22}{'PSNR':>7}{'SSIM':>8}{'warp err':>10}{'x pf':>6}{'excess x':>9}"
            f"{'CDC':>9}{'x pf':>6}{'ms/frame':>9}"
        )
        rows = [
            f"{self.clip}: {self.frames} frames, {self.size[0]}x{self.size[1]}, "
            f"working {self.working_size[0]}x{self.working_size[1]}",
            head,
            "-" * len(head),
        ]
        for v in self.variants:
            r = self.ratios(v.label)
            psnr = "-" if math.isnan(v.psnr) else f"{v.psnr:.2f}"
            ssim = "-" if math.isnan(v.ssim) else f"{v.ssim:.4f}"
            rows.append(
                f"{v.label:<22}{psnr:>7}{ssim:>8}{v.warping_error:>10.5f}"
                f"{r['warping_error']:>6.2f}{r['excess_warping_error']:>9.2f}"
                f"{v.cdc:>9.5f}{r['cdc']:>6.2f}{v.ms_per_frame:>9.1f}"
            )
        cuts = next((v.cuts for v in self.variants if v.cuts), [])
        if cuts:
            rows.append("cuts at frames " + ", ".join(str(i) for i, _ in cuts))
        return "\n".join(rows)


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.nan


def _frame_number(path: Path) -> tuple[int, str]:
    digits = re.findall(r"\d+", path.stem)
    return (int(digits[-1]) if digits else -1, path.name)


def read_clip(path: Path, *, max_frames: int | None = None) -> tuple[list[np.ndarray], Fraction]:
    """RGB uint8 (H, W, 3) frames of a video file or numbered-image folder, and the frame rate."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"clip not found: {path}")
    limit = math.inf if max_frames is None else max_frames
    frames: list[np.ndarray] = []
    if path.is_dir():
        from PIL import Image

        files = sorted(
            (p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_frame_number
        )
        for f in files[: None if max_frames is None else max_frames]:
            with Image.open(f) as im:
                frames.append(np.asarray(im.convert("RGB")))
        rate = Fraction(25)
    else:
        import av

        try:
            with av.open(str(path), metadata_errors="replace") as container:
                if not container.streams.video:
                    raise InputError(f"{path} has no video stream")
                stream = container.streams.video[0]
                rate = Fraction(stream.average_rate or 25)
                for frame in container.decode(stream):
                    if len(frames) >= limit:
                        break
                    frames.append(frame.to_ndarray(format="rgb24"))
        except av.error.FFmpegError as exc:
            raise InputError(f"cannot decode {path}: {exc}") from exc
    if not frames:
        raise InputError(f"no frames could be read from {path}")
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        raise InputError(f"frames of {path} change size: {sorted(shapes)}")
    return frames, rate


def working_size(size: tuple[int, int], short_side: int) -> tuple[int, int]:
    """The pipeline's working size for a frame of ``size`` (same rounding as ``vidcolor``)."""
    if short_side < 16:
        raise UsageError(f"working short side must be >= 16, got {short_side}")
    from vidcolor.colorize import working_size as pipeline_working_size

    return pipeline_working_size(size[0], size[1], short_side)


def _predict(
    L_full: torch.Tensor, colorize_fn: ColorizeFn, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Working-size L (T, 1, h, w) and predicted ab (T, 2, h, w)."""
    L_work = F.interpolate(L_full, size=size, mode="bilinear", align_corners=False, antialias=True)
    preds = []
    with torch.inference_mode():
        for start in range(0, L_work.shape[0], COLORIZE_BATCH):
            batch = L_work[start : start + COLORIZE_BATCH]
            ab = colorize_fn(batch)
            if ab.shape != (batch.shape[0], 2, *size):
                raise UsageError(
                    f"colorize_fn must return (B, 2, h, w) = {(batch.shape[0], 2, *size)}, "
                    f"got {tuple(ab.shape)}"
                )
            preds.append(ab.float().cpu())
    return L_work, torch.cat(preds)


def _render(L_full: torch.Tensor, ab_work: torch.Tensor, L_work: torch.Tensor) -> torch.Tensor:
    """Full-size RGB (1, 3, H, W) from full-size L and working-size ab, upsampled guided by L
    exactly as the film pipeline does."""
    from vidcolor.upsample import guided_upsample

    ab = guided_upsample(ab_work, L_work, L_full)
    return lab_to_rgb(torch.cat([L_full, ab], dim=1))


def _score(
    label: str,
    rendered: Iterable[torch.Tensor],
    originals: list[np.ndarray],
    flows: list[tuple[torch.Tensor, torch.Tensor] | None],
    *,
    accuracy: bool = True,
    ssim_every: int = 1,
) -> VariantResult:
    """All metrics of one variant's full-size RGB frames (1, 3, H, W); ``accuracy=False`` skips
    PSNR and SSIM (for the original clip, scored as the floor of the flicker metrics);
    ``ssim_every`` > 1 scores SSIM on every so many frames only (it is the slow metric)."""
    psnrs, ssims, errors, hists = [], [], [], []
    prev: torch.Tensor | None = None
    for t, (rgb, original, pair) in enumerate(zip(rendered, originals, flows, strict=True)):
        if accuracy:
            truth = torch.from_numpy(np.array(original)).permute(2, 0, 1)[None] / 255.0
            out8 = (rgb * 255.0).round() / 255.0
            psnrs.append(float(psnr(out8, truth)))
            if t % ssim_every == 0:
                ssims.append(float(ssim(out8, truth)))
        hists.append(color_histograms(rgb))
        if prev is not None:
            errors.append(math.nan if pair is None else warping_error_pair(prev, rgb, *pair))
        prev = rgb
    cdc_value, cdc_frames = cdc_from_histograms(hists)
    return VariantResult(
        label=label,
        psnr=float(np.mean(psnrs)) if psnrs else math.nan,
        ssim=float(np.mean(ssims)) if ssims else math.nan,
        warping_error=float(np.nanmean(errors)) if not np.isnan(errors).all() else 0.0,
        cdc=cdc_value,
        ms_per_frame=0.0,
        per_frame_psnr=psnrs,
        per_frame_warping_error=errors,
        per_frame_cdc=cdc_frames,
    )


def _reference_flows(
    rgb: torch.Tensor, L_full: torch.Tensor
) -> list[tuple[torch.Tensor, torch.Tensor] | None]:
    """Per frame, the reference flow to the previous frame and its mask; None at frame 0 and at
    cuts of the original clip (warping across a cut measures the cut, not flicker)."""
    reference, detector = ReferenceFlow(), CutDetector()
    flows: list[tuple[torch.Tensor, torch.Tensor] | None] = []
    for t in range(rgb.shape[0]):
        cut = detector.update(L_full[t])
        flows.append(None if t == 0 or cut else reference(rgb[t - 1 : t], rgb[t : t + 1]))
    return flows


def evaluate_frames(
    originals: list[np.ndarray],
    *,
    colorize_fn: ColorizeFn,
    working_short_side: int,
    options_list: Sequence[TemporalOptions],
    clip: str = "frames",
    labels: Sequence[str] | None = None,
) -> EvalResult:
    """:func:`evaluate_video` on frames already in memory (uint8 RGB (H, W, 3)); ``labels``
    name the rows of ``options_list`` (default: each stage's name, e.g. 'dis/forward')."""
    if labels is not None and len(labels) != len(options_list):
        raise ValueError(f"got {len(labels)} labels for {len(options_list)} options")
    rgb = as_rgb(np.stack(originals))
    L_full = rgb_to_l(rgb)
    size = working_size(tuple(L_full.shape[-2:]), working_short_side)
    L_work, pred = _predict(L_full, colorize_fn, size)
    flows = _reference_flows(rgb, L_full)
    variants = []
    names = [None, *(labels or [None] * len(options_list))]
    for options, name in zip([TemporalOptions(flow="none"), *options_list], names, strict=True):
        stage = make_temporal_stage(options)
        start = time.perf_counter()
        ab = run_stage_on_sequence(stage, L_work, pred)
        ms = (time.perf_counter() - start) * 1000.0 / len(originals)
        label = name or ("per-frame" if stage.name == "none" else stage.name)
        frames = (
            _render(L_full[t : t + 1], ab[t : t + 1], L_work[t : t + 1])
            for t in range(len(originals))
        )
        result = _score(label, frames, originals, flows)
        result.ms_per_frame, result.cuts = ms, list(stage.cuts)
        variants.append(result)
    # Perfectly steady chroma (none at all): the warping error the shared lightness leaves.
    zero = torch.zeros(1, 2, *L_full.shape[-2:])
    grey = (lab_to_rgb(torch.cat([L_full[t : t + 1], zero], dim=1)) for t in range(len(originals)))
    variants.append(_score(GREY_LABEL, grey, originals, flows))
    # The clip's own colours scored like an output: real colour changes count too.
    colours = (as_rgb(o) for o in originals)
    variants.append(_score(ORIGINAL_LABEL, colours, originals, flows, accuracy=False))
    return EvalResult(
        clip=clip,
        frames=len(originals),
        size=(int(L_full.shape[-2]), int(L_full.shape[-1])),
        working_size=size,
        variants=variants,
    )


def evaluate_video(
    path: Path,
    *,
    colorize_fn: ColorizeFn,
    working_short_side: int,
    options_list: Sequence[TemporalOptions],
    max_frames: int | None = None,
    labels: Sequence[str] | None = None,
) -> EvalResult:
    """Score per-frame colouring against each stage in ``options_list`` on a colour clip.

    ``colorize_fn(L)`` maps (B, 1, h, w) lightness 0..100 to (B, 2, h, w) ab in Lab units.
    """
    frames, _ = read_clip(Path(path), max_frames=max_frames)
    return evaluate_frames(
        frames,
        colorize_fn=colorize_fn,
        working_short_side=working_short_side,
        options_list=options_list,
        clip=str(path),
        labels=labels,
    )


PLOT_COLOURS = [(120, 120, 120), (31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189)]


def plot_flicker(result: EvalResult, path: Path) -> None:
    """Per-frame warping error over time for every variant, cuts marked, to a PNG."""
    if importlib.util.find_spec("matplotlib") is not None:
        _plot_matplotlib(result, Path(path))
    else:
        _plot_pillow(result, Path(path))


def _plot_matplotlib(result: EvalResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4))
    for v in result.variants:
        ax.plot(
            range(1, len(v.per_frame_warping_error) + 1), v.per_frame_warping_error, label=v.label
        )
    for index, _ in next((v.cuts for v in result.variants if v.cuts), []):
        ax.axvline(index, color="k", linestyle=":", linewidth=1)
    ax.set_xlabel("frame")
    ax.set_ylabel("warping error")
    ax.set_title(f"flicker: {result.clip}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_pillow(result: EvalResult, path: Path) -> None:
    from PIL import Image, ImageDraw

    width, height, margin = 1000, 400, 50
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    x0, y0, x1, y1 = margin, margin // 2, width - margin // 2, height - margin
    draw.rectangle((x0, y0, x1, y1), outline="black")
    series = [v.per_frame_warping_error for v in result.variants]
    finite = [e for s in series for e in s if not math.isnan(e)]
    top = max(finite, default=1.0) or 1.0
    count = max(result.frames - 1, 1)

    def point(t: int, value: float) -> tuple[float, float]:
        return x0 + (x1 - x0) * t / count, y1 - (y1 - y0) * value / top

    for index, _ in next((v.cuts for v in result.variants if v.cuts), []):
        x, _ = point(index, 0.0)
        draw.line((x, y0, x, y1), fill=(0, 0, 0), width=1)
    for k, (v, values) in enumerate(zip(result.variants, series, strict=True)):
        colour = PLOT_COLOURS[k % len(PLOT_COLOURS)]
        run: list[tuple[float, float]] = []
        for t, e in enumerate([*values, math.nan]):
            if math.isnan(e):
                if len(run) > 1:
                    draw.line(run, fill=colour, width=2)
                run = []
            else:
                run.append(point(t + 1, e))
        draw.text((x0 + 10, y0 + 8 + 14 * k), v.label, fill=colour)
    draw.text(
        (x0, y1 + 8), f"frame 0 .. {result.frames - 1}   (vertical lines: cuts)", fill="black"
    )
    draw.text((x0, 4), f"warping error per frame, max {top:.4g}: {result.clip}", fill="black")
    image.save(path)
