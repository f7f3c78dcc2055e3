"""``vidcolor probe``: what a run would do with a file, in a few lines, without a model.

Each non-video stream is tried on a scratch output of the destination's container, with the
same calls the real run makes, so "copied", "re-encoded" and "left out" are what a run does.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import av
import av.error

from vidcolor.errors import InputError, VidcolorError
from vidcolor.media.decode import VideoInfo, open_input, probe_video
from vidcolor.media.encode import (
    CHAPTER_FORMATS,
    is_chapter_track,
    other_stream_action,
    unusable_audio,
)
from vidcolor.media.image import is_animated, is_image_path

log = logging.getLogger("vidcolor")

FIELD_ORDERS = {
    0: "unknown (FFmpeg does not say; treated as progressive)",
    1: "progressive",
    2: "interlaced, top field first",
    3: "interlaced, bottom field first",
    4: "interlaced, top field coded first, bottom displayed first",
    5: "interlaced, bottom field coded first, top displayed first",
}
"""AVFieldOrder values (libavcodec/defs.h) as words."""


@dataclass
class FilePlan:
    """What vidcolor sees in one file and would do with each of its streams."""

    path: Path
    kind: str
    """'film', 'image', or 'unreadable'."""
    lines: list[str] = field(default_factory=list)
    error: str | None = None

    def format(self) -> str:
        """The report: a head line, then one indented line per fact or stream."""
        if self.error is not None:
            return f"{self.path}: cannot be coloured: {self.error}"
        return "\n".join([f"{self.path}: {self.kind}", *(f"  {ln}" for ln in self.lines)])


def field_order(path: Path, stream_index: int) -> int:
    """The video stream's AVFieldOrder as FFmpeg reports it (0 when it does not say)."""
    with open_input(path) as c:
        order = getattr(c.streams[stream_index].codec_context, "field_order", None)
    try:
        return int(order or 0)
    except (TypeError, ValueError):
        return 0


def _video_line(info: VideoInfo) -> str:
    sar = "" if info.sample_aspect_ratio == 1 else (
        f", pixel aspect {info.sample_aspect_ratio.numerator}:"
        f"{info.sample_aspect_ratio.denominator}")
    shown = info.display_size
    rot = f", rotated {info.rotation} deg" if info.rotation else ""
    rate = "variable frame rate" if info.maybe_vfr else (
        f"{float(info.fps):.6g} fps" if info.fps else "frame rate unknown")
    frames = f"~{info.frame_count} frames" if info.frame_count else "frame count unknown"
    length = f"{float(info.duration):.2f} s" if info.duration else "length unknown"
    return (f"video #{info.stream_index} {info.codec} {info.width}x{info.height} (shown "
            f"{shown[0]}x{shown[1]}{sar}{rot}), {rate}, time base {info.time_base.numerator}/"
            f"{info.time_base.denominator}, {frames}, {length}")


def _colour_line(info: VideoInfo) -> str:
    rng = "full" if info.full_range else "limited"
    src = "a grey source" if info.is_grey_source else "a colour source: its colour is replaced"
    return (f"{info.pix_fmt}, {info.bit_depth}-bit {rng} range {info.color_matrix}; {src}; "
            "luma kept, chroma from the model")


def stream_actions(info: VideoInfo, dest_suffix: str) -> list[str]:
    """One line per non-video stream: copied, re-encoded or left out, and why."""
    lines = []
    with tempfile.TemporaryDirectory(prefix="vidcolor-probe-") as tmp, \
            av.open(str(Path(tmp) / f"scratch{dest_suffix}"), "w") as out, \
            open_input(info.path) as src:
        fmt = out.format.name
        chapters = info.chapters
        if chapters:
            lines.append(f"{len(chapters)} chapters -> " + (
                "copied" if fmt in CHAPTER_FORMATS else f"left out: {fmt} cannot hold chapters"))
        for s in info.others:
            ins = src.streams[s.index]
            if is_chapter_track(ins, bool(chapters)):
                continue
            reason = other_stream_action(ins, fmt, video_index=info.stream_index,
                                         chapters=bool(chapters))
            lines.append(f"{s} -> " + ("copied" if reason is None else f"left out: {reason}"))
        for s in (*info.audio, *info.subtitles):
            ins = src.streams[s.index]
            missing = unusable_audio(ins)
            if missing:
                lines.append(f"{s} -> left out: it {missing}")
                continue
            try:
                out.add_stream_from_template(ins)
                lines.append(f"{s} -> copied")
                continue
            except (ValueError, av.error.FFmpegError, AttributeError) as e:
                reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            if s.type == "audio":
                target = "opus" if fmt == "webm" else "aac"
                lines.append(f"{s} -> re-encoded to {target}: {fmt} cannot hold {s.codec} "
                             f"({reason})")
            else:
                lines.append(f"{s} -> left out: {fmt} cannot hold {s.codec} subtitles "
                             "(use .mkv)")
    return lines


def probe_file(path: Path | str, dest_suffix: str = ".mp4") -> FilePlan:
    """What ``vidcolor FILE -o OUT{dest_suffix}`` would do; an unreadable file gets its error."""
    path = Path(path)
    if is_image_path(path) and not is_animated(path):
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as img:
                return FilePlan(path, "image", [f"{img.format} {img.width}x{img.height} "
                                                f"{img.mode}: coloured as a still"])
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
            return FilePlan(path, "unreadable", error=f"not a readable image ({e})")
    try:
        info = probe_video(path)
        order = field_order(path, info.stream_index)
        lines = [_video_line(info), _colour_line(info),
                 f"scan: {FIELD_ORDERS.get(order, f'field order {order}')}"]
        lines += stream_actions(info, dest_suffix)
    except VidcolorError as e:
        return FilePlan(path, "unreadable", error=_strip_path(str(e), path))
    kind = "animated image, coloured as a film" if is_animated(path) else "film"
    return FilePlan(path, kind, lines)


def _strip_path(message: str, path: Path) -> str:
    prefix = f"{path}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def probe_paths(paths: list[Path], dest_suffix: str = ".mp4") -> int:
    """Print the plan of every file; exit code 0 if all can be coloured, else InputError's."""
    bad = 0
    for p in paths:
        plan = probe_file(p, dest_suffix)
        print(plan.format())
        bad += plan.error is not None
    if bad:
        log.warning("%d of %d files cannot be coloured", bad, len(paths))
        return InputError.exit_code
    return 0
