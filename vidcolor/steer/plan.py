"""From what the user gave (a shot folder, ``--reference`` images, ``--hints`` files) to a
:class:`SteerPlan`, every file read and checked before the slow work starts."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import torch

from vidcolor import lab
from vidcolor.colorize import resize, rotate, working_size
from vidcolor.errors import InputError
from vidcolor.media.decode import VideoInfo, iter_frames, luma_to_unit
from vidcolor.steer.engine import ShotSteer, SteerPlan
from vidcolor.steer.guides import (
    ReferencePlacer,
    SteerImage,
    frame_from_name,
    load_hints,
    load_steer_image,
)
from vidcolor.steer.manifest import Manifest, read_manifest

log = logging.getLogger("vidcolor")


def upright_size(info: VideoInfo) -> tuple[int, int]:
    """(height, width) of the frames as shown (rotation metadata applied)."""
    return (info.width, info.height) if info.rotation % 180 else (info.height, info.width)


def check_manifest_film(m: Manifest, info: VideoInfo) -> None:
    """A manifest made for another film is refused (frame count, then frame size)."""
    if info.frame_count and abs(info.frame_count - m.frames) > max(2, m.frames // 100):
        raise InputError(
            f"{m.path}: made for a film of {m.frames} frames ({m.film or 'unnamed'}), but "
            f"{info.path.name} has {info.frame_count}; re-make it with `vidcolor shots`"
        )
    h, w = upright_size(info)
    if m.size != (0, 0) and m.size != (w, h):
        raise InputError(
            f"{m.path}: made for {m.size[0]}x{m.size[1]} frames, but {info.path.name} is "
            f"{w}x{h}; re-make it with `vidcolor shots`"
        )


def build_plan(
    info: VideoInfo,
    *,
    shots: Path | None = None,
    references: tuple[Path, ...] = (),
    hints: tuple[Path, ...] = (),
    auto_keyframes: bool = False,
    working_short_side: int = 224,
    start: Fraction | None = None,
    duration: Fraction | None = None,
) -> SteerPlan | None:
    """The plan for one film, or None when nothing steers it (the plain temporal stage)."""
    if shots is None and not references and not hints and not auto_keyframes:
        return None
    h, w = upright_size(info)
    plan = SteerPlan(auto_keyframes=auto_keyframes)
    if shots is not None:
        m = read_manifest(shots)
        check_manifest_film(m, info)
        plan.shots = []
        for s in m.shots:
            where = f"{m.path}:{s.line}" if s.line else str(m.path)
            steer = ShotSteer(first=s.first, last=s.last, saturation=s.saturation)
            for k in s.keyframes:
                image = load_steer_image(k.file, what=f"keyframe ({where})")
                frame = k.frame if k.frame is not None else frame_from_name(k.file)
                if frame is not None and not s.first <= frame <= s.last:
                    raise InputError(
                        f"{where}: keyframe {k.file.name} is frame {frame}, outside the shot's "
                        f"frames {s.first}-{s.last}; list it under the shot that holds it"
                    )
                steer.keyframes.append((image, frame))
            if s.reference is not None:
                steer.references.append(load_steer_image(s.reference, what=f"reference ({where})"))
            for hp in s.hints:
                hint = load_hints(hp, (w, h))
                if hint.frame is None:
                    hint.frame = _shot_key_frame(s.keyframe, steer, s.first, s.last)
                if not s.first <= hint.frame <= s.last:
                    raise InputError(
                        f"{where}: hints {hp.name} are for frame {hint.frame}, outside the shot's "
                        f"frames {s.first}-{s.last}"
                    )
                steer.hints.append(hint)
            plan.shots.append(steer)
    images = [load_steer_image(r, what="reference") for r in references]
    if images:
        plan.keyframes, plan.references = place_references(
            info, images, working_short_side=working_short_side, start=start, duration=duration
        )
        for im, frame in plan.keyframes:
            log.info("%s is frame %d of the film: used as its keyframe", im.path.name, frame)
        for im in plan.references:
            log.info("%s matches no frame: used as a reference photo", im.path.name)
    for hp in hints:
        hint = load_hints(hp, (w, h))
        if hint.frame is None:
            raise InputError(
                f"{hp}: --hints needs the frame the hints are for: add \"frame\": N to the file "
                "(or list it in a shot manifest, where it goes on the shot's keyframe)"
            )
        if info.frame_count and hint.frame >= info.frame_count + max(2, info.frame_count // 100):
            raise InputError(
                f"{hp}: hints are for frame {hint.frame}, but the film has {info.frame_count} "
                f"frames (0-{info.frame_count - 1})"
            )
        plan.hints.append(hint)
    return plan


def place_references(
    info: VideoInfo,
    images: list[SteerImage],
    *,
    working_short_side: int,
    start: Fraction | None = None,
    duration: Fraction | None = None,
) -> tuple[list[tuple[SteerImage, int]], list[SteerImage]]:
    """One quick decode of the film at working size: which images are frames of it."""
    placer = ReferencePlacer(images, upright_size(info))
    size = working_size(info.height, info.width, working_short_side)
    with iter_frames(info, start=start, duration=duration) as reader:
        for frame in reader:
            unit = torch.from_numpy(luma_to_unit(frame.y, frame.bit_depth, frame.full_range))
            L = lab.grey_to_l(resize(unit[None, None], size))
            placer.update(frame.index, rotate(L, info.rotation))
    return placer.result()


def _shot_key_frame(keyframe: int | None, steer: ShotSteer, first: int, last: int) -> int:
    """Where a shot's hints go when their file names no frame: its keyframe."""
    for _, frame in steer.keyframes:
        if frame is not None:
            return frame
    return keyframe if keyframe is not None else (first + last) // 2
