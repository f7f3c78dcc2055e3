"""``vidcolor eval-video``: colour a colour clip's grey version with the real model and score
accuracy and flicker, per-frame against the temporal stage's modes."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vidcolor.colorize import Colorizer
from vidcolor.errors import UsageError
from vidcolor.media.atomic import atomic_output
from vidcolor.pipeline import ColorizeOptions
from vidcolor.temporal import MODE_CHOICES
from vidcolor.temporal.evaluate import EvalResult, evaluate_video, plot_flicker

log = logging.getLogger("vidcolor")


@dataclass(frozen=True)
class EvalVideoOptions:
    """Options of ``vidcolor eval-video``."""

    colorize: ColorizeOptions = field(default_factory=ColorizeOptions)
    modes: tuple[str, ...] = ("forward",)
    json: Path | None = None
    plot: Path | None = None
    max_frames: int | None = None
    reference: str | None = None
    """'first', 'middle' or a frame number: score steering with that frame's true colours."""


def eval_video(clip: Path, options: EvalVideoOptions) -> EvalResult | list:
    """Score per-frame colouring and each requested temporal mode on one colour clip (or, with
    ``reference``, steering by one true frame against automatic colour and baselines)."""
    if options.reference is not None:
        return _eval_reference(Path(clip), options)
    bad = [m for m in options.modes if m not in MODE_CHOICES]
    if bad:
        raise UsageError(f"--modes takes {', '.join(MODE_CHOICES)}, got {', '.join(bad)}")
    settings = options.colorize.settings()
    if settings.flow == "none":
        raise UsageError(
            "eval-video compares against per-frame colouring: give a --flow other than none"
        )
    colorizer = Colorizer.load(
        options.colorize.model,
        device=options.colorize.device,
        working_short_side=settings.working_short_side,
        precision=settings.precision,
    )
    colorizer.use_fade(not settings.vivid)

    def colorize_fn(L: torch.Tensor) -> torch.Tensor:
        return colorizer.predict(L).cpu() * settings.saturation

    result = evaluate_video(
        Path(clip),
        colorize_fn=colorize_fn,
        working_short_side=settings.working_short_side,
        options_list=[
            settings.temporal_options(device=str(colorizer.device),
                                      flow_weights=options.colorize.flow_weights, mode=m)
            for m in options.modes
        ],
        max_frames=options.max_frames,
    )
    print(result.format_table())
    if options.json is not None:
        with atomic_output(options.json) as tmp:
            Path(tmp).write_text(json.dumps(result.to_dict(), indent=2))
    if options.plot is not None:
        plot_flicker(result, options.plot)
    return result


def _eval_reference(clip: Path, options: EvalVideoOptions) -> list:
    """``eval-video --reference``: the field's protocol on one clip."""
    from vidcolor.steer.evaluate import evaluate_steering, format_scores, scores_to_json
    from vidcolor.temporal.evaluate import read_clip

    ref = options.reference
    if ref not in ("first", "middle") and not (ref.isdigit()):
        raise UsageError(f"--reference takes first, middle or a frame number, got {ref!r}")
    settings = options.colorize.settings()
    frames, _ = read_clip(clip, max_frames=options.max_frames)
    if ref.isdigit() and int(ref) >= len(frames):
        raise UsageError(
            f"--reference {ref}: the clip has {len(frames)} frames (0-{len(frames) - 1})"
        )
    auto = Colorizer.load(options.colorize.model, device=options.colorize.device,
                          working_short_side=settings.working_short_side,
                          precision=settings.precision)
    auto.use_fade(not settings.vivid)
    guided = Colorizer.load(options.colorize.steer_model, device=options.colorize.device,
                            working_short_side=settings.working_short_side,
                            precision=settings.precision)
    temporal = settings.temporal_options(device="cpu", flow_weights=options.colorize.flow_weights)
    scores = evaluate_steering(
        frames, automatic=auto, guided=guided, temporal=temporal,
        working_short_side=settings.working_short_side,
        variants=("grey", "automatic", f"keyframe {ref}", "naive chained"),
        batch_size=settings.batch_size,
    )
    print(format_scores(str(clip), scores))
    if options.json is not None:
        with atomic_output(options.json) as tmp:
            Path(tmp).write_text(json.dumps(scores_to_json(scores), indent=2))
    return scores
