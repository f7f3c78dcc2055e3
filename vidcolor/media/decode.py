"""Probe and decode the video stream of a file with PyAV: native luma planes, exact timestamps.

Clock conventions (used by :mod:`vidcolor.media.encode` too):

- ``DecodedFrame.pts`` is the frame's own pts in ``VideoInfo.time_base`` (exact, unchanged).
- ``DecodedFrame.time`` and every ``start`` / ``duration`` / seek time are *film time*:
  seconds since the first frame, ``(pts - info.start_pts) * info.time_base``, so 0 is the
  first frame even when the container starts at another timestamp (MPEG-TS, edit lists).
"""

from __future__ import annotations

import collections
import errno
import functools
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Self

import av
import av.error
import numpy as np

from vidcolor.errors import IO_ERRNOS, InputError, ReadError

log = logging.getLogger("vidcolor")

PROBE_FRAMES = 5
"""Frames decoded by :func:`probe_video` for rotation, colour tags and the grey heuristic."""

RETIME_WINDOW = 8
"""Decoded frames held back so that a run of damaged timestamps this long can be re-timed."""

GREY_CHROMA_TOLERANCE = 3.0
"""Largest 99th-percentile |chroma - neutral| (8-bit steps) still called a grey source."""

# AVColorSpace values (libavutil/pixfmt.h) -> matrix names used by vidcolor.lab.LUMA_COEFFS.
_MATRIX_BY_COLORSPACE = {1: "bt709", 5: "bt601", 6: "bt601", 9: "bt2020", 10: "bt2020"}
_COLORSPACE_BY_MATRIX = {"bt709": 1, "bt601": 6, "bt2020": 9}
"""AVColorSpace tag to write for each matrix (bt601 as SMPTE 170M, FFmpeg's usual tag)."""
_SWS_COLORSPACE = {"bt709": 1, "bt601": 5, "bt2020": 9}
"""swscale SWS_CS_* constants for reformat(src_colorspace=/dst_colorspace=)."""
_AVCOL_RANGE_JPEG = 2
_AVCOL_RANGE_MPEG = 1

_DECODE_ERRORS = (av.error.FFmpegError,)
"""Per-packet failures that are counted and skipped (InvalidDataError and friends)."""
def io_failure(e: BaseException) -> bool:
    """True for an operating-system failure to read (see IO_ERRNOS), never for damaged data."""
    return isinstance(e, OSError | MemoryError) and getattr(e, "errno", None) in IO_ERRNOS


def read_error(path: object, e: BaseException, where: str) -> ReadError:
    """The one-line error for an I/O failure while reading ``path``."""
    reason = getattr(e, "strerror", None) or errno.errorcode.get(getattr(e, "errno", 0), "")
    return ReadError(
        f"{path}: read error {where} ({reason or _short(e)}): this is the disk, mount or memory, "
        "not damage in the file; nothing was written, run it again once it reads"
    )


@dataclass(frozen=True)
class Chapter:
    """One chapter of the source: start and end in its own time base, and its tags."""

    start: int
    end: int
    time_base: Fraction
    metadata: tuple[tuple[str, str], ...] = ()


def _chapters(container: av.container.InputContainer) -> tuple[Chapter, ...]:
    try:
        raw = container.chapters()
    except (AttributeError, av.error.FFmpegError, UnicodeDecodeError):
        return ()
    return tuple(Chapter(int(c["start"]), int(c["end"]), Fraction(c["time_base"]),
                         tuple((str(k), str(v)) for k, v in (c.get("metadata") or {}).items()))
                 for c in raw)


@dataclass(frozen=True)
class StreamSummary:
    """One non-video stream of the input: what it is, for messages and for stream copying."""

    index: int
    type: str
    codec: str
    language: str | None = None

    def __str__(self) -> str:
        lang = f" [{self.language}]" if self.language else ""
        return f"#{self.index} {self.type} {self.codec}{lang}"


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` learns about a file's video stream (all times exact)."""

    path: Path
    stream_index: int
    codec: str
    width: int
    """Coded width in pixels (before rotation)."""
    height: int
    rotation: int
    """Counter-clockwise display rotation in degrees (display matrix), 0 if none."""
    display_size: tuple[int, int]
    """(width, height) as shown: sample aspect ratio applied, swapped for +-90 rotations."""
    sample_aspect_ratio: Fraction
    """Pixel aspect ratio (1 for square pixels)."""
    time_base: Fraction
    start_pts: int
    """pts of the first decoded frame; film time 0."""
    fps: Fraction | None
    """Average frame rate from the container (None if unknown)."""
    maybe_vfr: bool
    """Container hint of variable frame rate (average rate != base rate); frames decide."""
    duration: Fraction | None
    """Film duration in seconds from the container (stream, else container), None if unknown."""
    frame_count: int | None
    """Frame count from the container, else estimated from duration x fps; None if unknown."""
    pix_fmt: str
    """Native pixel format of the decoded frames (e.g. yuv420p, yuv420p10le, rgb24, gray)."""
    luma_pix_fmt: str
    """Format the frames are converted to so that plane 0 is luma (== pix_fmt for YUV/grey)."""
    bit_depth: int
    color_matrix: str
    """'bt601' | 'bt709' | 'bt2020': tagged, else by height like FFmpeg (>= 720 -> bt709)."""
    full_range: bool
    """True if luma spans 0..2^depth-1 (JPEG range), False for limited (16..235 in 8 bit)."""
    color_primaries: int
    """Raw AVColorPrimaries tag of the source (2 = unspecified), copied to the output."""
    color_trc: int
    """Raw AVColorTransferCharacteristic tag of the source (2 = unspecified)."""
    colorspace: int
    """Raw AVColorSpace tag of the source (2 = unspecified)."""
    is_grey_source: bool
    """Heuristic: the first frames have neutral chroma (False means it is already colour)."""
    audio: tuple[StreamSummary, ...] = ()
    subtitles: tuple[StreamSummary, ...] = ()
    others: tuple[StreamSummary, ...] = ()
    chapters: tuple[Chapter, ...] = ()
    field_order: int = 0
    """AVFieldOrder of the stream: 0 unknown, 1 progressive, 2/4 top field first, 3/5 bottom."""
    interlaced: bool = False
    """Interlaced pictures (tagged so, or the first frames say so): chroma is made per field
    and the output is coded interlaced in the same field order."""

    @property
    def top_field_first(self) -> bool:
        """Field dominance of an interlaced source (top first unless tagged bottom first)."""
        return self.field_order not in (3, 5)

    @property
    def start_time(self) -> Fraction:
        """Container timestamp (seconds) of the first frame."""
        return self.start_pts * self.time_base

    @property
    def is_high_depth(self) -> bool:
        """True when the luma plane is uint16 (more than 8 bits)."""
        return self.bit_depth > 8

    @property
    def luma_dtype(self) -> type[np.unsignedinteger]:
        """numpy dtype of ``DecodedFrame.y``: uint8 for 8-bit, uint16 above."""
        return np.uint16 if self.bit_depth > 8 else np.uint8

    def describe(self) -> str:
        """One line for logs: size, rate, format, duration and the other streams."""
        fps = f"{float(self.fps):.3f} fps" if self.fps else "unknown fps"
        dur = f"{float(self.duration):.2f} s" if self.duration is not None else "unknown length"
        rot = f", rotated {self.rotation} deg" if self.rotation else ""
        rng = "full" if self.full_range else "limited"
        extra = ", ".join(str(s) for s in (*self.audio, *self.subtitles))
        scan = (f", interlaced {'top' if self.top_field_first else 'bottom'} field first"
                if self.interlaced else "")
        return (
            f"{self.path.name}: {self.codec} {self.width}x{self.height}{rot}{scan}, {fps}, {dur}, "
            f"{self.pix_fmt} ({self.bit_depth}-bit {rng} {self.color_matrix})"
            + (f"; {extra}" if extra else "")
        )


@dataclass
class DecodedFrame:
    """One decoded video frame: the native luma plane and its exact timestamps.

    ``av_frame`` is the decoded ``av.VideoFrame`` (native format) when the reader was asked
    to keep it (``keep_frames=True``); use :func:`frame_to_rgb` for previews and evaluation.
    """

    index: int
    pts: int
    """pts in ``VideoInfo.time_base``, unchanged (synthesised only if the container has none)."""
    time: Fraction
    """Film time in seconds: ``(pts - info.start_pts) * info.time_base``."""
    y: np.ndarray
    """Native luma plane, (height, width), uint8 (8-bit) or uint16 (>8-bit), no padding."""
    duration: int | None
    """Frame duration in time_base units if the container says, else None."""
    bit_depth: int
    full_range: bool
    av_frame: av.VideoFrame | None = field(default=None, repr=False)


def _fraction(value: object) -> Fraction | None:
    """A PyAV rational (Fraction or None) as a non-zero Fraction, else None."""
    if value is None:
        return None
    frac = Fraction(value)  # type: ignore[arg-type]
    return frac if frac > 0 else None


def _component_depth(fmt: av.VideoFormat) -> int:
    """Bits per component of a pixel format (8 for pal8)."""
    comps = fmt.components
    return max((c.bits for c in comps), default=8) if fmt.name != "pal8" else 8


def _luma_pix_fmt(fmt: av.VideoFormat) -> str:
    """A format whose plane 0 is the luma plane, little-endian, at the source depth.

    Planar / semi-planar YUV and planar grey are kept as they are; RGB, palette, packed YUV,
    grey+alpha, float and big-endian formats are converted (4:4:4, so luma is not resampled).
    """
    name = fmt.name
    depth = _component_depth(fmt)
    integer = not name.startswith(("grayf", "yaf")) and "f16" not in name and "f32" not in name
    little = not fmt.is_big_endian or depth <= 8
    if integer and little:
        if name.startswith(("yuv", "nv", "p0", "p2", "p4")) and not name.startswith("yuyv"):
            return name
        if name.startswith("gray"):
            return name
    if name.startswith(("gray", "ya", "mono")):
        return "gray" if depth <= 8 else "gray16le"
    if depth <= 8:
        return "yuv444p"
    if depth <= 10:
        return "yuv444p10le"
    if depth <= 12:
        return "yuv444p12le"
    return "yuv444p16le"


def _is_grey_format(name: str) -> bool:
    return name.startswith(("gray", "ya", "monow", "monob"))


def _check_path(path: Path) -> None:
    """Raise InputError for a missing path or a directory."""
    if not path.exists():
        hint = " (broken symlink)" if path.is_symlink() else ""
        raise InputError(f"{path}: no such file{hint}")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a video file")


def open_input(path: Path) -> av.container.InputContainer:
    """Open a media file for reading, translating PyAV failures into one-line InputErrors."""
    _check_path(path)
    try:
        # a tag in another encoding than UTF-8 must not make a readable film unreadable
        return av.open(str(path), "r", metadata_errors="replace")
    except PermissionError as e:
        raise InputError(f"{path}: permission denied reading the file") from e
    except (OSError, MemoryError) as e:
        if not io_failure(e):
            raise _not_media(path, e) from e
        raise read_error(path, e, "opening it") from e
    except av.error.EOFError as e:
        size = path.stat().st_size
        raise InputError(f"{path}: no media data (file ends after {size} bytes)") from e
    except (av.error.FFmpegError, UnicodeDecodeError) as e:
        raise _not_media(path, e) from e


def _not_media(path: Path, e: BaseException) -> InputError:
    size = path.stat().st_size
    return InputError(f"{path}: not a media file FFmpeg can read ({size} bytes; {_short(e)})")


def _short(e: BaseException) -> str:
    """An exception as a short one-line string."""
    strerror = getattr(e, "strerror", None)  # FFmpeg errors: the message without errno or path
    text = strerror if isinstance(strerror, str) and strerror else str(e) or type(e).__name__
    text = text.splitlines()[0]
    return text if len(text) <= 160 else text[:157] + "..."


def _pick_video_stream(container: av.container.InputContainer, path: Path) -> av.VideoStream:
    """The first real video stream (cover-art pictures excluded), else InputError."""
    for stream in container.streams.video:
        if stream.disposition & av.stream.Disposition.attached_pic:
            continue
        if stream.codec_context is None:
            continue
        return stream
    kinds = ", ".join(
        f"{s.type} {stream_codec_name(s)}" for s in container.streams
    )
    raise InputError(f"{path}: no video stream (streams: {kinds or 'none'})")


def stream_codec_name(s: av.stream.Stream) -> str:
    """A stream's codec name; data and attachment streams have no decoder (``unknown``)."""
    for get in (lambda: s.codec_context.name, lambda: s.codec.name):
        try:
            name = get()
        except AttributeError:
            continue
        if name:
            return str(name)
    return "unknown"


def _language(s: av.stream.Stream) -> str | None:
    try:
        return s.language
    except (AttributeError, UnicodeDecodeError):
        return None


def _summaries(container: av.container.InputContainer, video_index: int) -> dict[str, list]:
    out: dict[str, list] = {"audio": [], "subtitle": [], "other": []}
    for s in container.streams:
        if s.index == video_index:
            continue
        summary = StreamSummary(s.index, s.type, stream_codec_name(s), _language(s))
        out[s.type if s.type in ("audio", "subtitle") else "other"].append(summary)
    return out


def _chroma_is_neutral(frame: av.VideoFrame, luma_fmt: str) -> bool:
    """True if the frame's chroma is within GREY_CHROMA_TOLERANCE of neutral (8-bit steps)."""
    name = frame.format.name
    if _is_grey_format(name):
        return True
    if luma_fmt != name:  # RGB-like: compare channels directly
        rgb = frame.to_ndarray(format="rgb24").astype(np.int16)
        dev = np.maximum(np.abs(rgb[..., 0] - rgb[..., 1]), np.abs(rgb[..., 1] - rgb[..., 2]))
        return float(np.percentile(dev, 99)) <= GREY_CHROMA_TOLERANCE
    depth = _component_depth(frame.format)
    if len(frame.planes) < 2:
        return True
    neutral = 1 << (depth - 1)
    scale = 1 << (depth - 8)
    devs = []
    for plane in frame.planes[1:3]:
        arr = _plane_array(plane, depth).astype(np.int32)
        devs.append(np.abs(arr - neutral).ravel())
    dev = np.concatenate(devs) / scale
    return float(np.percentile(dev, 99)) <= GREY_CHROMA_TOLERANCE


def _plane_array(plane: av.video.plane.VideoPlane, depth: int) -> np.ndarray:
    """A copy of one plane without line padding, uint8 or native-endian uint16."""
    dtype = np.dtype("<u2") if depth > 8 else np.dtype(np.uint8)
    itemsize = dtype.itemsize
    raw = np.frombuffer(plane, dtype=dtype)
    arr = raw.reshape(plane.height, plane.line_size // itemsize)[:, : plane.width]
    return arr.astype(np.uint16 if depth > 8 else np.uint8, copy=True)


def probe_video(path: Path | str) -> VideoInfo:
    """Read a file's video stream properties and first frames, or raise a one-line InputError.

    Decodes up to PROBE_FRAMES frames: rotation and colour tags live on frames, and a file
    with no decodable frame is refused here rather than halfway through a run.
    """
    path = Path(path)
    with open_input(path) as container:
        vs = _pick_video_stream(container, path)
        tb = _fraction(vs.time_base) or Fraction(1, 90000)
        fps = _fraction(vs.average_rate) or _fraction(vs.guessed_rate)
        reader = _FrameSource(container, vs, tb, fps)
        frames = []
        for frame in reader.frames():
            frames.append(frame)
            if len(frames) >= PROBE_FRAMES:
                break
        if not frames:
            raise InputError(
                f"{path}: no decodable video frame (stream #{vs.index} {vs.codec_context.name}, "
                f"{reader.packets} packets read, {reader.damaged_packets} damaged)"
            )
        first, first_pts = frames[0]
        summaries = _summaries(container, vs.index)
        fmt = first.format
        luma_fmt = _luma_pix_fmt(fmt)
        depth = _component_depth(av.VideoFormat(luma_fmt))
        width, height = first.width, first.height
        rotation = int(first.rotation or 0)
        if not rotation:
            try:
                rotation = -int(float(vs.metadata.get("rotate", 0)))  # clockwise in metadata
            except ValueError:
                rotation = 0
        rotation = ((rotation + 180) % 360) - 180 if rotation else 0
        colorspace = int(first.colorspace or 2)
        matrix = _MATRIX_BY_COLORSPACE.get(colorspace, "bt709" if height >= 720 else "bt601")
        if _is_grey_format(fmt.name):  # grey images are full range unless tagged otherwise
            full_range = int(first.color_range or 0) != _AVCOL_RANGE_MPEG
        elif luma_fmt != fmt.name:
            full_range = False  # RGB converted to limited-range YUV (FFmpeg's default)
        elif fmt.name.startswith("yuvj"):
            full_range = True
        else:
            full_range = int(first.color_range or 0) == _AVCOL_RANGE_JPEG
        grey = all(_chroma_is_neutral(f, luma_fmt) for f, _ in frames)
        try:
            order = int(getattr(vs.codec_context, "field_order", 0) or 0)
        except (TypeError, ValueError):
            order = 0
        sar = _fraction(vs.sample_aspect_ratio) or Fraction(1)
        disp_w, disp_h = max(1, round(width * sar)), height
        if abs(rotation) == 90:
            disp_w, disp_h = disp_h, disp_w
        duration = None
        if vs.duration:
            duration = vs.duration * tb
            if vs.start_time is not None:
                duration -= (first_pts - vs.start_time) * tb
        elif container.duration:
            duration = Fraction(container.duration, av.time_base)
        if duration is not None and duration <= 0:
            duration = None
        count = vs.frames or None
        if count is None and duration is not None and fps:
            count = max(1, round(duration * fps))
        return VideoInfo(
            path=path,
            stream_index=vs.index,
            codec=vs.codec_context.name,
            width=width,
            height=height,
            rotation=rotation,
            display_size=(disp_w, disp_h),
            sample_aspect_ratio=sar,
            time_base=tb,
            start_pts=first_pts,
            fps=fps,
            maybe_vfr=bool(
                vs.average_rate and vs.base_rate and Fraction(vs.average_rate) != vs.base_rate
            ),
            duration=duration,
            frame_count=count,
            pix_fmt=fmt.name,
            luma_pix_fmt=luma_fmt,
            bit_depth=depth,
            color_matrix=matrix,
            full_range=full_range,
            color_primaries=int(first.color_primaries or 2),
            color_trc=int(first.color_trc or 2),
            colorspace=colorspace,
            is_grey_source=grey,
            audio=tuple(summaries["audio"]),
            subtitles=tuple(summaries["subtitle"]),
            others=tuple(summaries["other"]),
            chapters=_chapters(container),
            field_order=order,
            interlaced=order in (2, 3, 4, 5) or (
                order == 0 and any(bool(getattr(f, "interlaced_frame", False)) for f, _ in frames)
            ),
        )


class _FrameSource:
    """Demux + decode loop that survives damaged packets and repairs missing/backward pts."""

    def __init__(
        self,
        container: av.container.InputContainer,
        stream: av.VideoStream,
        time_base: Fraction,
        fps: Fraction | None,
    ) -> None:
        self.container = container
        self.stream = stream
        self.time_base = time_base
        step = (1 / (fps * time_base)) if fps else Fraction(1)
        self.default_step = max(1, round(step))
        self.packets = 0
        self.damaged_packets = 0
        self.corrupt_frames = 0
        self.repaired_pts = 0
        self.retimed = 0
        self.repeated_frames = 0
        self.unknown_stream_packets = 0
        self.last_pts: int | None = None
        stream.thread_type = "AUTO"

    def reset_pts(self) -> None:
        """Forget the previous pts (after a seek)."""
        self.last_pts = None

    def _packets(self) -> Iterator[av.Packet | None]:
        """Packets of the video stream; a read error is counted and reading resumes."""
        failures = 0
        while True:
            try:
                for packet in self.container.demux(self.stream):
                    failures = 0
                    yield packet
                return
            except IndexError:
                # A packet of a stream that appeared mid-file (MPEG-TS, program streams): PyAV
                # has no Stream object for it. It is not ours; read on.
                self.unknown_stream_packets += 1
                continue
            except _DECODE_ERRORS as e:
                if io_failure(e):
                    raise read_error(self.container.name, e, f"after {self.packets} packets") from e
                self.damaged_packets += 1
                failures += 1
                log.debug("%s: demux error: %s", self.container.name, _short(e))
                if failures >= 32:
                    yield None  # give up reading; flush the decoder
                    return

    def frames(self) -> Iterator[tuple[av.VideoFrame, int]]:
        """Decoded frames with a usable, strictly increasing pts (in the stream time base).

        Frames are held back RETIME_WINDOW deep: a damaged timestamp that jumps ahead and
        comes back (a corrupt MPEG PES header) is re-timed between its neighbours instead of
        pushing every later frame one tick after it, which would stretch the film.
        """
        held: collections.deque[list] = collections.deque()
        previous: tuple[int | None, int | None] | None = None
        for frame in self._decoded():
            pts = frame.pts if frame.pts is not None else frame.dts
            if pts is not None and (pts, frame.dts) == previous:
                # The same pts and dts twice: the demuxer handed a packet out again after a
                # damaged stretch; it is not a new picture, and none is invented after it.
                self.repeated_frames += 1
                continue
            previous = (pts, frame.dts)
            if pts is not None and held and held[-1][1] is not None and pts <= held[-1][1]:
                self._retime(held, pts)
            held.append([frame, pts])
            if len(held) > RETIME_WINDOW:
                f, p = held.popleft()
                yield f, self._fix_pts(p)
        while held:
            f, p = held.popleft()
            yield f, self._fix_pts(p)

    def _retime(self, held: collections.deque[list], pts: int) -> None:
        """The held frames after the last one earlier than ``pts`` jumped ahead: space them
        evenly between that frame and ``pts`` (if the gap has room; else leave them)."""
        anchor = self.last_pts
        k = len(held)
        while k > 0 and (held[k - 1][1] is None or held[k - 1][1] >= pts):
            k -= 1
        if k > 0:
            anchor = held[k - 1][1]
        if anchor is None:
            return
        jumped = len(held) - k
        if pts - anchor <= jumped:
            return
        for i in range(jumped):
            held[k + i][1] = anchor + (pts - anchor) * (i + 1) // (jumped + 1)
        self.retimed += jumped

    def _decoded(self) -> Iterator[av.VideoFrame]:
        for packet in self._packets():
            if packet is not None:
                self.packets += packet.size > 0
                if packet.is_corrupt:
                    self.damaged_packets += 1
            try:
                decoded = self.stream.decode(packet)
            except _DECODE_ERRORS as e:
                if io_failure(e):
                    raise read_error(self.container.name, e, f"after {self.packets} packets") from e
                self.damaged_packets += 1
                log.debug("%s: decode error: %s", self.container.name, _short(e))
                continue
            for frame in decoded:
                if frame.is_corrupt:
                    self.corrupt_frames += 1
                yield frame

    def _fix_pts(self, pts: int | None) -> int:
        if pts is None:
            pts = 0 if self.last_pts is None else self.last_pts + self.default_step
            self.repaired_pts += 1
        elif self.last_pts is not None and pts <= self.last_pts:
            pts = self.last_pts + 1
            self.repaired_pts += 1
        self.last_pts = pts
        return pts


class FrameReader:
    """Iterator of :class:`DecodedFrame` over one file; also reports what it had to skip.

    Attributes after (or during) iteration: ``frames_read``, ``damaged_packets`` (packets the
    demuxer flagged or the decoder rejected), ``corrupt_frames`` (frames the decoder concealed),
    ``repaired_pts`` (frames with missing or non-increasing pts that got a synthetic one).
    """

    def __init__(
        self,
        info: VideoInfo,
        *,
        start: Fraction | None = None,
        duration: Fraction | None = None,
        keep_frames: bool = False,
    ) -> None:
        if start is not None and start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        if duration is not None and duration <= 0:
            raise ValueError(f"duration must be > 0, got {duration}")
        self.info = info
        self.start = Fraction(start) if start else Fraction(0)
        self.end = self.start + Fraction(duration) if duration is not None else None
        self.keep_frames = keep_frames
        self.frames_read = 0
        self._resized = 0
        """Frames of another size than the first, scaled to it."""
        self._container: av.container.InputContainer | None = None
        self._source: _FrameSource | None = None
        self._iter: Iterator[DecodedFrame] | None = None

    @property
    def damaged_packets(self) -> int:
        """Packets flagged corrupt by the demuxer, rejected by the decoder, or unreadable."""
        return self._source.damaged_packets if self._source else 0

    @property
    def corrupt_frames(self) -> int:
        """Frames the decoder output but marked corrupt (errors concealed)."""
        return self._source.corrupt_frames if self._source else 0

    @property
    def repaired_pts(self) -> int:
        """Frames whose pts was missing or not increasing and was synthesised."""
        return self._source.repaired_pts if self._source else 0

    @property
    def retimed(self) -> int:
        """Frames whose damaged pts jumped ahead and back and were re-timed between neighbours."""
        return self._source.retimed if self._source else 0

    @property
    def repeated_frames(self) -> int:
        """Decoded frames dropped because they repeat the previous frame's timestamp."""
        return self._source.repeated_frames if self._source else 0

    @property
    def damaged(self) -> int:
        """damaged_packets + corrupt_frames: non-zero means warn the user."""
        return self.damaged_packets + self.corrupt_frames

    def __iter__(self) -> FrameReader:
        return self

    def __next__(self) -> DecodedFrame:
        if self._iter is None:
            self._iter = self._generate()
        return next(self._iter)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the input file (also done automatically when iteration ends)."""
        if self._iter is not None:
            self._iter.close()  # type: ignore[attr-defined]
        if self._container is not None:
            self._container.close()
            self._container = None

    def _seek(
        self, container: av.container.InputContainer, source: _FrameSource, t: Fraction
    ) -> None:
        """Seek to the keyframe at or before film time t (t <= 0: back to the first frame)."""
        target = self.info.start_pts + math.floor(max(t, Fraction(0)) / self.info.time_base)
        try:
            container.seek(target, stream=source.stream, backward=True)
        except _DECODE_ERRORS as e:
            log.debug("%s: seek failed (%s); decoding from the start", self.info.path, _short(e))
            container.seek(min(0, self.info.start_pts), stream=source.stream, backward=True)
        source.stream.codec_context.flush_buffers()
        source.reset_pts()

    def _generate(self) -> Iterator[DecodedFrame]:
        info = self.info
        container = open_input(info.path)
        self._container = container
        try:
            vs = container.streams[info.stream_index]
            source = _FrameSource(container, vs, info.time_base, info.fps)
            self._source = source
            # Seek, then verify we landed at or before start; else back off (imprecise demuxers).
            backoff = Fraction(1)
            attempt_start, retry = self.start, False
            while True:
                if attempt_start > 0 or retry:
                    self._seek(container, source, attempt_start)
                frames = source.frames()
                first = next(frames, None)
                if first is None or attempt_start <= 0:
                    break
                t0 = (first[1] - info.start_pts) * info.time_base
                if t0 <= self.start:
                    break
                # The demuxer landed after start (imprecise seeking, e.g. MPEG-TS): back off.
                attempt_start, retry = max(Fraction(0), self.start - backoff), True
                backoff *= 4
                frames.close()
            if first is None:
                return
            luma_fmt = info.luma_pix_fmt
            pending: Iterator[tuple[av.VideoFrame, int]] = _chain_one(first, frames)
            for frame, pts in pending:
                t = (pts - info.start_pts) * info.time_base
                if t < self.start:
                    continue
                if self.end is not None and t >= self.end:
                    break
                yield self._make(frame, pts, t, luma_fmt)
        finally:
            container.close()
            self._container = None

    def _make(self, frame: av.VideoFrame, pts: int, t: Fraction, luma_fmt: str) -> DecodedFrame:
        info = self.info
        native = frame
        if (frame.width, frame.height) != (info.width, info.height):
            # FFmpeg's way: frames of another size are scaled to the first frame's size.
            if not self._resized:
                log.warning(
                    "%s: the frame size changes mid-stream from %dx%d to %dx%d at frame %d; "
                    "such frames are scaled to %dx%d", info.path, info.width, info.height,
                    frame.width, frame.height, self.frames_read, info.width, info.height,
                )
            self._resized += 1
            native = frame = frame.reformat(width=info.width, height=info.height)
        if frame.format.name != luma_fmt:
            frame = frame.reformat(
                format=luma_fmt, dst_colorspace=_SWS_COLORSPACE[info.color_matrix]
            )
        y = _plane_array(frame.planes[0], info.bit_depth)
        decoded = DecodedFrame(
            index=self.frames_read,
            pts=pts,
            time=t,
            y=y,
            duration=int(native.duration) if native.duration else None,
            bit_depth=info.bit_depth,
            full_range=info.full_range,
            av_frame=native if self.keep_frames else None,
        )
        self.frames_read += 1
        return decoded


def _chain_one(first: tuple, rest: Iterator[tuple]) -> Iterator[tuple]:
    yield first
    yield from rest


def iter_frames(
    info_or_path: VideoInfo | Path | str,
    *,
    start: Fraction | None = None,
    duration: Fraction | None = None,
    keep_frames: bool = False,
) -> FrameReader:
    """Stream the frames of a file (film time [start, start + duration)), in output order.

    Memory stays constant; every decodable frame is kept with its exact pts (VFR included).
    Damaged packets are skipped and counted: check ``reader.damaged`` after the loop.
    """
    info = info_or_path if isinstance(info_or_path, VideoInfo) else probe_video(info_or_path)
    return FrameReader(info, start=start, duration=duration, keep_frames=keep_frames)


def seek_frames(
    info_or_path: VideoInfo | Path | str, times: list[Fraction], *, keep_frames: bool = True
) -> list[DecodedFrame]:
    """For each film time t, the first frame at or after t (the last frame if t is past the end).

    For previews; frames keep their ``av_frame`` by default so :func:`frame_to_rgb` works.
    """
    info = info_or_path if isinstance(info_or_path, VideoInfo) else probe_video(info_or_path)
    results: list[DecodedFrame] = []
    last: DecodedFrame | None = None
    for t in times:
        with FrameReader(info, start=Fraction(t), keep_frames=keep_frames) as reader:
            frame = next(reader, None)
        if frame is None:
            if last is None:
                last = _last_frame(info, keep_frames)
            frame = last
        results.append(frame)
    return results


def _last_frame(info: VideoInfo, keep_frames: bool) -> DecodedFrame:
    """The last decodable frame, searching back from the end in growing windows."""
    window = Fraction(2)
    end = info.duration
    while True:
        start = max(Fraction(0), end - window) if end is not None else Fraction(0)
        last = None
        with FrameReader(info, start=start, keep_frames=keep_frames) as reader:
            for frame in reader:
                last = frame
        if last is not None or start == 0:
            break
        window *= 4
    if last is None:
        raise InputError(f"{info.path}: no decodable video frame")
    return last


def frame_to_rgb(
    frame: DecodedFrame | av.VideoFrame, *, info: VideoInfo | None = None
) -> np.ndarray:
    """The whole frame as float32 RGB in [0, 1], (H, W, 3), coded orientation; for previews/eval.

    Needs ``DecodedFrame.av_frame`` (read with ``keep_frames=True``, the default of
    :func:`seek_frames`); the source's matrix and range are honoured by swscale.
    """
    av_frame = frame.av_frame if isinstance(frame, DecodedFrame) else frame
    if av_frame is None:
        raise ValueError("frame_to_rgb needs the av.VideoFrame: read with keep_frames=True")
    kwargs = {}
    if info is not None and info.colorspace == 2 and info.luma_pix_fmt == info.pix_fmt:
        kwargs["src_colorspace"] = _SWS_COLORSPACE[info.color_matrix]
    rgb = av_frame.to_ndarray(format="rgb24", **kwargs)
    return rgb.astype(np.float32) / 255.0


def _luma_arith(y: np.ndarray, bit_depth: int, full_range: bool) -> np.ndarray:
    """The arithmetic of :func:`luma_to_unit`, on any array of codes."""
    scale = 1 << (bit_depth - 8)
    yf = y.astype(np.float32)
    top = float((1 << bit_depth) - 1)
    out = yf / top if full_range else (yf - 16.0 * scale) / (219.0 * scale)
    return np.clip(out, 0.0, 1.0)


@functools.lru_cache(maxsize=8)
def _luma_table(bit_depth: int, full_range: bool, codes: int) -> np.ndarray:
    """:func:`_luma_arith` of every code 0 .. codes - 1 (read-only)."""
    table = _luma_arith(np.arange(codes, dtype=np.uint32), bit_depth, full_range)
    table.flags.writeable = False
    return table


def luma_to_unit(y: np.ndarray, bit_depth: int, full_range: bool) -> np.ndarray:
    """Native luma codes to float32 Y' in [0, 1] (limited range stretched), for the models.

    By table for 8- and 16-bit codes: the same values as the arithmetic, one look-up a pixel."""
    if y.dtype == np.uint8:
        import cv2  # here: the CLI's --help path imports this module, and cv2 costs 0.14 s

        return cv2.LUT(y, _luma_table(bit_depth, full_range, 256))
    if y.dtype == np.uint16:
        return np.take(_luma_table(bit_depth, full_range, 1 << 16), y)
    return _luma_arith(y, bit_depth, full_range)
