"""Steering the colour: shots, coloured keyframes, reference photos and colour hints.

``vidcolor shots FILM -o shots/`` writes a manifest and keyframe PNGs (:mod:`.shots`); the user
paints keyframes, adds references and hints (:mod:`.guides`) in the manifest (:mod:`.manifest`);
``vidcolor FILM -o OUT --shots shots/`` (or ``--reference``, ``--hints``) builds a plan
(:mod:`.plan`) that the steering stage (:mod:`.engine`) carries through each shot along the
optical flow of :mod:`vidcolor.temporal`, with content matching (:mod:`.match`) and the guided
model (``vidcolor-exemplar``) filling what the flow loses.
"""

from __future__ import annotations

import torch

from vidcolor.colorize import Colorizer
from vidcolor.errors import DeviceError
from vidcolor.media.decode import VideoInfo
from vidcolor.steer.engine import ShotSteer, SteerPlan, SteerStage, describe_plan
from vidcolor.steer.plan import upright_size
from vidcolor.temporal import TemporalOptions
from vidcolor.temporal.flow import make_flow, resolve_flow_name


def make_steer_stage(
    options: TemporalOptions,
    *,
    plan: SteerPlan,
    colorizer: Colorizer,
    info: VideoInfo,
    batch_size: int,
    saturation: float = 1.0,
    automatic: Colorizer | None = None,
) -> SteerStage:
    """The steering stage for one film, on the temporal options' flow backend and device."""
    device = torch.device(options.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"steering device is {options.device!r} but CUDA is unavailable")
    name = resolve_flow_name(options.flow, device=options.device, weights_file=options.flow_weights)
    backend = make_flow(name, device=options.device, weights_file=options.flow_weights)
    upright = upright_size(info)
    # a buffered frame holds its native luma and its float copy at full size
    frame_bytes = info.width * info.height * (4 + (2 if info.bit_depth > 8 else 1))
    return SteerStage(
        backend=backend, colorizer=colorizer, plan=plan, strength=options.strength,
        cut_threshold=options.cut_threshold, device=device, rotation=info.rotation,
        frame_hw=upright, batch_size=batch_size, saturation=saturation, frame_bytes=frame_bytes,
        automatic=automatic,
    )


__all__ = ["ShotSteer", "SteerPlan", "SteerStage", "describe_plan", "make_steer_stage"]
