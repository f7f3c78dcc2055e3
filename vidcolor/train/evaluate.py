"""``vidcolor eval-images``: colour the grey versions of colour photos and score them against the
originals (PSNR, SSIM, colorfulness), beside the grey baseline, so models can be compared."""

from __future__ import annotations

import json
import logging
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vidcolor import lab
from vidcolor.colorize import Colorizer, lab_to_rgb_keep_l, photo_ab, pick_device
from vidcolor.errors import DataError, OutputError, UsageError
from vidcolor.models import DEFAULT_MODEL, load_model
from vidcolor.models.checkpoint import atomic_write_bytes
from vidcolor.models.infer import predict_ab
from vidcolor.presets import PipelineSettings
from vidcolor.train.data import find_images, is_validation, load_rgb, rgb_to_grey_u8
from vidcolor.train.degrade import DegradeOptions, degrade_grey
from vidcolor.train.metrics import blotch, colorfulness, psnr, ssim

log = logging.getLogger("vidcolor")

METRICS = (
    "psnr",
    "ssim",
    "colorfulness",
    "colorfulness_truth",
    "colorfulness_gap",
    "blotch",
    "grey_psnr",
    "grey_ssim",
    "grey_colorfulness",
)
"""Per-image metrics, in report order (the ``grey_`` ones score the uncoloured baseline)."""
MIN_SIZE = 32
"""Smallest --size: below it SSIM's 11-px window and the network's stride leave little to score."""


SPLITS = ("all", "val", "train")


@dataclass(frozen=True)
class EvalImagesOptions:
    """Everything ``vidcolor eval-images`` does, with each default stated once."""

    model: str | Path = DEFAULT_MODEL
    device: str = "auto"
    size: int = 256
    """Images are shrunk so their short side is at most this (never enlarged)."""
    json: Path | None = None
    limit: int | None = None
    """Evaluate at most this many usable images (files in sorted order)."""
    degrade: bool = False
    """Feed the model archive-degraded grey (metrics still use the clean lightness)."""
    seed: int = 0
    """Seed of the per-image degradation (combined with a hash of the file's relative path)."""
    split: str = "all"
    """'all' files, or only the training run's deterministic 'val' (or 'train') split."""
    under: tuple[str, ...] = ()
    """Only files under these subfolders of the data folder (the split is still of the whole)."""
    working_short_side: int | None = field(
        default_factory=lambda: PipelineSettings().working_short_side
    )
    """The model's working size, as ``vidcolor photo.jpg`` uses it (None: the image's own)."""
    precision: str = field(default_factory=lambda: PipelineSettings().precision)
    """The model's arithmetic, as the CLI resolves it (with a working size)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Inference options of the model (temperature, mix, saturation...), for tuning."""


@dataclass(frozen=True)
class EvalImagesResult:
    """Means and per-image rows of one evaluation, plus what was skipped and how fast it ran."""

    model: str
    arch: str
    size: int
    working_short_side: int | None
    degrade: bool
    found: int
    evaluated: int
    broken: int
    grey: int
    seconds: float
    images_per_s: float
    means: dict[str, float]
    rows: list[dict[str, Any]] = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able dict (what ``--json`` writes)."""
        return {
            "model": self.model,
            "arch": self.arch,
            "size": self.size,
            "working_short_side": self.working_short_side,
            "degrade": self.degrade,
            "counts": {
                "found": self.found,
                "evaluated": self.evaluated,
                "broken": self.broken,
                "grey": self.grey,
            },
            "seconds": self.seconds,
            "images_per_s": self.images_per_s,
            "means": self.means,
            "images": self.rows,
        }


def predict_full(model: nn.Module | Colorizer, L: torch.Tensor, saturation: float = 1.0
                 ) -> torch.Tensor:
    """ab at L's size: a :class:`Colorizer` through the photo path (working size, guided
    upsampling, its precision), as ``vidcolor photo.jpg``; a bare network at L's own size."""
    if isinstance(model, Colorizer):
        return photo_ab(model, L, saturation=saturation)
    return predict_ab(model, L).float() * saturation


def evaluate_one(
    model: nn.Module | Colorizer,
    rgb: torch.Tensor,
    L_in: torch.Tensor | None = None,
    *,
    saturation: float = 1.0,
) -> dict[str, Any]:
    """Colour one RGB image (1, 3, H, W) from its grey version; metrics vs truth and vs grey.

    ``L_in`` is the lightness shown to the model (e.g. a degraded copy); the prediction is
    always recombined with the clean L (keeping it, as the CLI does), so the metrics score the
    chroma alone.
    """
    truth_lab = lab.rgb_to_lab(rgb)
    L = truth_lab[:, :1]
    ab = predict_full(model, L if L_in is None else L_in, saturation)
    pred = lab_to_rgb_keep_l(L, ab)
    grey = lab.lab_to_rgb(torch.cat([L, torch.zeros_like(ab)], 1))
    cf_truth = float(colorfulness(rgb))
    cf_pred = float(colorfulness(pred))
    return {
        "pred": pred,
        "grey": grey,
        "metrics": {
            "psnr": float(psnr(pred, rgb)),
            "ssim": float(ssim(pred, rgb)),
            "colorfulness": cf_pred,
            "colorfulness_truth": cf_truth,
            "colorfulness_gap": cf_pred - cf_truth,
            "blotch": float(blotch(pred, rgb)),
            "grey_psnr": float(psnr(grey, rgb)),
            "grey_ssim": float(ssim(grey, rgb)),
            "grey_colorfulness": float(colorfulness(grey)),
        },
    }


def degraded_l(rgb_u8: np.ndarray, key: str, seed: int) -> torch.Tensor:
    """Lightness (1, 1, H, W) of the archive-degraded grey copy; the same for the same key+seed."""
    rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
    grey = degrade_grey(rgb_to_grey_u8(rgb_u8), rng, DegradeOptions())
    return lab.grey_to_l(torch.from_numpy(grey).float()[None, None] / 255.0)


def format_table(result: EvalImagesResult) -> str:
    """Small aligned table: model, grey baseline and truth for each metric."""
    m = result.means
    skipped = f"{result.broken} broken, {result.grey} grey skipped"
    head = (
        f"{result.model} ({result.arch}) at {result.size} px, working size "
        f"{result.working_short_side or 'the image'}"
        f"{', degraded input' if result.degrade else ''}: {result.evaluated} images "
        f"({skipped}), {result.images_per_s:.2f} images/s"
    )
    rows = [
        ("", "model", "grey", "truth"),
        ("PSNR (dB)", f"{m['psnr']:.2f}", f"{m['grey_psnr']:.2f}", "-"),
        ("SSIM", f"{m['ssim']:.4f}", f"{m['grey_ssim']:.4f}", "-"),
        ("blotch (%)", f"{100 * m['blotch']:.2f}", "0.00", "-"),
        (
            "colorfulness",
            f"{m['colorfulness']:.2f}",
            f"{m['grey_colorfulness']:.2f}",
            f"{m['colorfulness_truth']:.2f}",
        ),
        (
            "colorfulness gap",
            f"{m['colorfulness_gap']:+.2f}",
            f"{m['grey_colorfulness'] - m['colorfulness_truth']:+.2f}",
            "-",
        ),
    ]
    w0 = max(len(r[0]) for r in rows)
    widths = [max(len(r[i]) for r in rows) for i in range(1, 4)]
    lines = [head]
    for r in rows:
        cells = [r[0].ljust(w0)] + [c.rjust(w) for c, w in zip(r[1:], widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write the report atomically (a reader never sees half a file), creating its folder."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode())
    except OSError as exc:
        raise OutputError(f"{path}: cannot write the JSON report ({exc.strerror or exc})") from exc


@torch.inference_mode()
def eval_images(data: Path, opt: EvalImagesOptions | None = None) -> EvalImagesResult:
    """Score a model on every colour image under ``data``; prints a table, returns the result."""
    opt = opt or EvalImagesOptions()
    if opt.size < MIN_SIZE:
        raise UsageError(f"--size must be at least {MIN_SIZE}, got {opt.size}")
    if opt.limit is not None and opt.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {opt.limit}")
    if opt.json is not None and Path(opt.json).is_dir():
        raise OutputError(f"{opt.json}: is a directory; give a file name for --json")
    root = Path(data)
    files = find_images(root)  # DataError when missing or image-less
    if opt.split not in SPLITS:
        raise UsageError(f"--split must be one of {', '.join(SPLITS)}, got {opt.split!r}")
    if opt.split != "all":
        files = [p for p in files if is_validation(p, root) == (opt.split == "val")]
        if not files:
            raise DataError(f"{root}: no images in the {opt.split!r} split")
    if opt.under:
        tops = tuple(Path(u).as_posix().strip("/") + "/" for u in opt.under)
        files = [p for p in files if p.relative_to(root).as_posix().startswith(tops)]
        if not files:
            raise DataError(f"{root}: no images under {', '.join(opt.under)}")
    device = pick_device(opt.device)
    if opt.working_short_side is None:
        model, cfg = load_model(opt.model, device=device, overrides=opt.overrides)
    else:  # the CLI's own model runner: precision, memory layout
        model = Colorizer.load(opt.model, device=opt.device, overrides=opt.overrides,
                               working_short_side=opt.working_short_side,
                               precision=opt.precision)
        cfg = model.config
    rows: list[dict[str, Any]] = []
    broken = grey = 0
    t0 = time.perf_counter()
    for path in files:
        if opt.limit is not None and len(rows) >= opt.limit:
            break
        rgb_u8 = load_rgb(path, short_side=opt.size)
        if rgb_u8 is None:
            broken += 1
            continue
        if rgb_u8.size == 0:
            grey += 1
            continue
        rel = path.relative_to(root).as_posix()
        rgb = torch.from_numpy(rgb_u8).permute(2, 0, 1)[None].float().to(device) / 255.0
        L_in = degraded_l(rgb_u8, rel, opt.seed).to(device) if opt.degrade else None
        m = evaluate_one(model, rgb, L_in)["metrics"]
        h, w = rgb_u8.shape[:2]
        rows.append({"path": rel, "width": w, "height": h, **m})
    seconds = time.perf_counter() - t0
    log.info("evaluation images: %d kept, %d broken skipped, %d grey skipped",
             len(rows), broken, grey)
    if not rows:
        raise DataError(
            f"{root}: no usable colour images among {broken + grey} files "
            f"({broken} broken, {grey} grey)"
        )
    result = EvalImagesResult(
        model=str(opt.model),
        arch=str(cfg.get("arch")),
        size=opt.size,
        working_short_side=opt.working_short_side,
        degrade=opt.degrade,
        found=len(files),
        evaluated=len(rows),
        broken=broken,
        grey=grey,
        seconds=seconds,
        images_per_s=len(rows) / max(seconds, 1e-9),
        means={k: float(np.mean([r[k] for r in rows])) for k in METRICS},
        rows=rows,
    )
    print(format_table(result))
    if opt.json is not None:
        _write_json(opt.json, result.to_json())
    return result


__all__ = ["EvalImagesOptions", "EvalImagesResult", "eval_images", "evaluate_one"]
