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
    KEYFRAME_L_TOLERANCE,
    MANIFEST_L_TOLERANCE,
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
    # manifest keyframes without a frame number: found by lightness within their shot
    unplaced: list[tuple[ShotSteer, SteerImage, str]] = []
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
                if frame is None:
                    unplaced.append((steer, image, where))
                elif not s.first <= frame <= s.last:
                    raise InputError(
                        f"{where}: keyframe {k.file.name} is frame {frame}, outside the shot's "
                        f"frames {s.first}-{s.last}; list it under the shot that holds it"
                    )
                else:
                    steer.keyframes.append((image, frame))
            if s.reference is not None:
                steer.references.append(load_steer_image(s.reference, what=f"reference ({where})"))
            plan.shots.append(steer)
    images = [load_steer_image(r, what="reference") for r in references]
    if images or unplaced:
        frames = place_images(
            info, [im for _, im, _ in unplaced] + images,
            ranges=[(st.first, st.last) for st, _, _ in unplaced] + [None] * len(images),
            tolerances=[MANIFEST_L_TOLERANCE] * len(unplaced)
            + [KEYFRAME_L_TOLERANCE] * len(images),
            working_short_side=working_short_side, start=start, duration=duration,
        )
        for (steer, image, where), frame in zip(unplaced, frames, strict=False):
            if frame is None:
                raise InputError(
                    f"{where}: keyframe {image.path.name} matches no frame of the shot "
                    f"({steer.first}-{steer.last}) by lightness; give its frame: "
                    f'{{ file = "{image.path.name}", frame = N }}'
                )
            steer.keyframes.append((image, frame))
        for image, frame in zip(images, frames[len(unplaced) :], strict=True):
            if frame is None:
                plan.references.append(image)
                log.info("%s matches no frame: used as a reference photo", image.path.name)
            else:
                plan.keyframes.append((image, frame))
                log.info("%s is frame %d of the film: used as its keyframe", image.path.name, frame)
    if shots is not None:
        for s, steer in zip(m.shots, plan.shots, strict=True):
            where = f"{m.path}:{s.line}" if s.line else str(m.path)
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


def place_images(
    info: VideoInfo,
    images: list[SteerImage],
    *,
    ranges: list[tuple[int, int] | None],
    tolerances: list[float],
    working_short_side: int,
    start: Fraction | None = None,
    duration: Fraction | None = None,
) -> list[int | None]:
    """One quick decode of the film at working size: the frame each image is (or None)."""
    placer = ReferencePlacer(images, upright_size(info), ranges=ranges, tolerances=tolerances)
    size = working_size(info.height, info.width, working_short_side)
    with iter_frames(info, start=start, duration=duration) as reader:
        for frame in reader:
            unit = torch.from_numpy(luma_to_unit(frame.y, frame.bit_depth, frame.full_range))
            L = lab.grey_to_l(resize(unit[None, None], size))
            placer.update(frame.index, rotate(L, info.rotation))
    return placer.frames()


def _shot_key_frame(keyframe: int | None, steer: ShotSteer, first: int, last: int) -> int:
    """Where a shot's hints go when their file names no frame: its (first) keyframe."""
    if steer.keyframes:
        return min(frame for _, frame in steer.keyframes)
    return keyframe if keyframe is not None else (first + last) // 2
