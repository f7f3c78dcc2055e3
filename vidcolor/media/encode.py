"""Encode colourized frames next to the source's untouched luma, copying audio and subtitles.

The writer keeps the source's frames, timestamps, rotation, colour tags and other streams:
only the chroma planes are new. See :class:`VideoWriter`.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Self

import av
import av.error
import numpy as np

from vidcolor.errors import OutputError
from vidcolor.media.atomic import AtomicFile, check_output_path, translate_os_error
from vidcolor.media.decode import (
    _COLORSPACE_BY_MATRIX,
    DecodedFrame,
    VideoInfo,
    _short,
    io_failure,
    open_input,
    read_error,
)

log = logging.getLogger("vidcolor")

_AVCOL_RANGE_MPEG, _AVCOL_RANGE_JPEG = 1, 2
_UNSPECIFIED = 2


@dataclass(frozen=True)
class CodecSpec:
    """How vidcolor drives one encoder: default options and how crf / preset are passed."""

    options: dict[str, str]
    crf_option: str | None = None
    """Option that takes ``crf`` (None: the codec has no quality knob, e.g. lossless ffv1)."""
    preset_option: str | None = None
    default_preset: str | None = None
    chroma: str = "420"
    """Default chroma subsampling: '420', '422' or '444'."""
    depths: tuple[int, ...] = (8,)
    """Bit depths the encoder takes in that subsampling (per its pix_fmt list)."""
    even_dims: bool = False
    """True if 4:2:0 / 4:2:2 need even width (and 4:2:0 even height): odd sizes go 4:4:4."""
    extra: dict[str, str] = field(default_factory=dict)


CODECS: dict[str, CodecSpec] = {
    # veryfast + auto threads keeps 854x480 well above 8 fps on 2 cores; crf 18 ~ transparent.
    "libx264": CodecSpec(
        {"threads": "0"},
        crf_option="crf",
        preset_option="preset",
        default_preset="veryfast",
        depths=(8, 10),
        even_dims=True,
    ),
    "libx265": CodecSpec(
        {"x265-params": "log-level=error", "threads": "0"},
        crf_option="crf",
        preset_option="preset",
        default_preset="veryfast",
        depths=(8, 10, 12),
        even_dims=True,
    ),
    # Lossless; level 3 with slices is the fast, robust FFV1 variant.
    "ffv1": CodecSpec(
        {"level": "3", "slices": "4", "slicecrc": "1", "threads": "0"},
        depths=(8, 9, 10, 12, 16),
    ),
    # ProRes is 10-bit 4:2:2 only; profile 2 = standard ('hq' is 3).
    "prores_ks": CodecSpec({"profile": "2", "threads": "0"}, chroma="422", depths=(10,)),
    # MPEG-4 part 2 (avi): quality by fixed quantiser derived from crf.
    "mpeg4": CodecSpec({"flags": "+qscale", "threads": "0"}, crf_option="qscale"),
    "libvpx-vp9": CodecSpec(
        {"b": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1", "threads": "2"},
        crf_option="crf",
        preset_option="cpu-used",
    ),
}
"""Each supported encoder's default options, stated once."""

_CHROMA_SUB = {"420": (2, 2), "422": (1, 2), "444": (1, 1)}
"""(vertical, horizontal) subsampling factors per chroma layout."""

_FORMAT_HINT = "use .mp4, .mkv, .mov, .avi or .webm"

READ_MARGIN = Fraction(5)
"""Seconds of audio/subtitle packets read around an excerpt (demuxers interleave loosely)."""

_MAX_REFUSED = 32
"""Packets of sound the muxer may refuse, before any is accepted, before the run stops."""


def _rescale(ts: int, src: Fraction, dst: Fraction | None) -> int:
    """A timestamp in another time base, rounded as FFmpeg's muxers round it."""
    if not dst:
        return ts
    q = ts * src / Fraction(dst)
    return int(q.numerator * 2 + q.denominator) // (2 * q.denominator)


def _pix_fmt_name(chroma: str, depth: int) -> str:
    return f"yuv{chroma}p" if depth == 8 else f"yuv{chroma}p{depth}le"


def _depth_of(pix_fmt: str) -> int:
    fmt = av.VideoFormat(pix_fmt)
    return max(c.bits for c in fmt.components)


def _chroma_of(pix_fmt: str) -> str:
    fmt = av.VideoFormat(pix_fmt, 64, 64)
    if len(fmt.components) < 3 or fmt.is_rgb:
        return "400"
    c = fmt.components[1]
    sub = (64 // max(1, c.height), 64 // max(1, c.width))
    for name, s in _CHROMA_SUB.items():
        if s == sub:
            return name
    raise OutputError(f"pix_fmt {pix_fmt}: unsupported chroma layout for vidcolor output")


def choose_pix_fmt(codec: str, source: VideoInfo, pix_fmt: str | None = None) -> str:
    """The output pix_fmt: 4:2:0 (codec default) at the source bit depth where the codec allows.

    Odd sizes with x264/x265 go 4:2:2 (odd height) or 4:4:4 (odd width), keeping every pixel.
    """
    spec = CODECS.get(codec)
    if pix_fmt is not None:
        return pix_fmt
    if spec is None:
        return _pix_fmt_name("420", 10 if source.bit_depth > 8 else 8)
    chroma = spec.chroma
    if spec.even_dims and chroma in ("420", "422"):
        if source.width % 2:
            chroma = "444"
        elif chroma == "420" and source.height % 2:
            chroma = "422"
        if chroma != spec.chroma:
            log.warning(
                "%s: odd frame size %dx%d; %s output uses %s chroma to keep every pixel",
                source.path,
                source.width,
                source.height,
                codec,
                {"422": "4:2:2", "444": "4:4:4"}[chroma],
            )
    depths = spec.depths
    if source.bit_depth in depths:
        depth = source.bit_depth
    else:
        higher = [d for d in depths if d >= source.bit_depth]
        depth = min(higher) if higher else max(depths)
    return _pix_fmt_name(chroma, depth)


def encode_chroma(
    c: np.ndarray, *, subsampling: tuple[int, int], bit_depth: int, full_range: bool
) -> np.ndarray:
    """Full-resolution chroma in [-0.5, 0.5] (H, W) to subsampled native codes (uint8/uint16).

    Box-averages by ``subsampling`` (vertical, horizontal; odd edges replicated) then
    quantises like FFmpeg (limited range: 16..240 in 8 bit, scaled for higher depths).
    """
    sv, sh = subsampling
    c = np.asarray(c, dtype=np.float32)
    if sv > 1 or sh > 1:
        h, w = c.shape
        ph, pw = (-h) % sv, (-w) % sh
        if ph or pw:
            c = np.pad(c, ((0, ph), (0, pw)), mode="edge")
        c = c.reshape(c.shape[0] // sv, sv, c.shape[1] // sh, sh).mean(axis=(1, 3))
    top = (1 << bit_depth) - 1
    if full_range:
        gain, offset = float(top), float(1 << (bit_depth - 1))
    else:
        scale = 1 << (bit_depth - 8)
        gain, offset = 224.0 * scale, 128.0 * scale
    if bit_depth <= 16 and c.ndim == 2 and c.size:
        import cv2  # here: the CLI's --help path imports this module, and cv2 costs 0.14 s

        # one pass, rounded to nearest and saturated (in double: a float32 tie may round down)
        codes = cv2.addWeighted(c, gain, c, 0.0, offset,
                                dtype=cv2.CV_8U if bit_depth == 8 else cv2.CV_16U)
        return codes if top in (255, 65535) else np.minimum(codes, np.uint16(top))
    dtype = np.uint16 if bit_depth > 8 else np.uint8
    return np.clip(np.rint(c * gain + offset), 0, top).astype(dtype)


def _rescale_depth(plane: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Integer codes from src to dst bits (shift up, or round and shift down)."""
    if src == dst:
        return plane
    if dst > src:
        return plane.astype(np.uint16) << (dst - src)
    shift = src - dst
    out = (plane.astype(np.uint32) + (1 << (shift - 1))) >> shift
    return np.minimum(out, (1 << dst) - 1).astype(np.uint16 if dst > 8 else np.uint8)


def _fill_plane(plane: av.video.plane.VideoPlane, data: np.ndarray) -> None:
    """Copy a 2-D array into a frame plane, respecting its line padding."""
    dtype = np.dtype("<u2") if data.dtype.itemsize == 2 else np.dtype(np.uint8)
    view = np.frombuffer(plane, dtype=dtype).reshape(
        plane.height, plane.line_size // dtype.itemsize
    )
    view[:, : plane.width] = data


COVER_FORMATS = ("mp4", "mov", "ipod", "matroska")
"""Output containers that hold a cover picture (an attached-picture stream)."""

CHAPTER_FORMATS = ("mp4", "mov", "ipod", "matroska", "webm")
"""Output containers that hold chapters."""

_CHAPTER_HANDLERS = ("subtitlehandler", "chapter", "text")
_COVER_EXT = {"mjpeg": "jpg", "png": "png", "bmp": "bmp", "webp": "webp"}
_COVER_MIME = {"mjpeg": "image/jpeg", "png": "image/png", "bmp": "image/bmp",
               "webp": "image/webp"}


def unusable_audio(ins: av.stream.Stream) -> str | None:
    """Why an audio stream can be neither copied nor re-encoded (None if it can): a stream
    that starts mid-file may have no sample rate or channel count in the file's header."""
    if ins.type != "audio":
        return None
    cc = ins.codec_context
    if cc is None:
        return "has no readable sample description"
    if not cc.sample_rate or not cc.channels:
        return "has no sample rate or channel count in the file's header (it starts mid-file)"
    return None


def is_chapter_track(ins: av.stream.Stream, chapters: bool) -> bool:
    """The text track an MP4/MOV keeps its chapters in: copied as chapters, not as a stream."""
    handler = str(ins.metadata.get("handler_name", "")).lower()
    return chapters and ins.type == "data" and any(h in handler for h in _CHAPTER_HANDLERS)


def other_stream_action(
    ins: av.stream.Stream, fmt: str, *, video_index: int, chapters: bool
) -> str | None:
    """None if a run copies this stream (neither the film, sound nor subtitles) into a ``fmt``
    output, else why it is left out. The run and ``vidcolor probe`` both ask this."""
    if ins.type == "video" and ins.disposition & av.stream.Disposition.attached_pic:
        if fmt in COVER_FORMATS:
            return None
        return f"{fmt} cannot hold a cover picture (use .mp4, .mov or .mkv)"
    if ins.type == "video":
        return f"a second video stream: only #{video_index} is coloured"
    if ins.type == "attachment":
        return None if "matroska" in fmt else f"{fmt} cannot hold attachments (use .mkv)"
    if is_chapter_track(ins, chapters):
        return None if fmt in CHAPTER_FORMATS else f"{fmt} cannot hold chapters (use .mp4, .mkv)"
    return "carries no picture or sound (timecode, camera or broadcast metadata)"


def _copy_others(
    source: VideoInfo, out: av.container.OutputContainer, dest: Path
) -> list[tuple[av.Packet, av.stream.Stream]]:
    """Cover pictures and attachments go where the container holds them; data streams
    (timecode, VANC, camera metadata) are left out, said in one line. Returns the cover
    pictures' packets, to be muxed once every stream is added."""
    dropped, covers = [], []
    fmt = out.format.name
    with open_input(source.path) as container:
        chapters = bool(source.chapters)
        for other in source.others:
            ins = container.streams[other.index]
            reason = other_stream_action(ins, fmt, video_index=source.stream_index,
                                         chapters=chapters)
            if is_chapter_track(ins, chapters):
                continue  # written by the muxer from the chapters, or said by copy_chapters
            if reason is None:
                try:
                    if ins.type == "video" and "matroska" in fmt:  # Matroska: an attachment
                        codec = ins.codec_context.name
                        out.add_attachment(f"cover.{_COVER_EXT.get(codec, codec)}",
                                           _COVER_MIME.get(codec, "application/octet-stream"),
                                           bytes(_first_packet(container, ins)))
                    elif ins.type == "video":
                        ost = out.add_stream_from_template(ins)
                        ost.disposition = av.stream.Disposition.attached_pic
                        covers.append((_first_packet(container, ins), ost))
                    else:
                        out.add_stream_from_template(ins)
                    continue
                except (ValueError, av.error.FFmpegError, AttributeError, StopIteration) as e:
                    reason = f"copying it failed ({_short(e)})"
            dropped.append(f"#{other.index} {other.type} {other.codec} ({reason})")
    if dropped:
        log.warning("%s: not copied: %s", dest.name, "; ".join(dropped))
    return covers


def _first_packet(container: av.container.InputContainer, ins: av.stream.Stream) -> av.Packet:
    """A cover picture's one packet (FFmpeg hands it out first)."""
    for packet in container.demux(ins):
        if packet.size:
            return packet
    raise StopIteration("no picture in the cover stream")


def copy_chapters(
    source: VideoInfo, out: av.container.OutputContainer, dest: Path,
    window: tuple[Fraction, Fraction | None] | None, shift: Fraction,
) -> int:
    """The source's chapters, cut to the excerpt and shifted with it; the count written."""
    chapters = source.chapters
    if not chapters:
        return 0
    if out.format.name not in CHAPTER_FORMATS:
        log.warning("%s: %d chapters not copied (%s cannot hold chapters; use .mp4 or .mkv)",
                    dest.name, len(chapters), out.format.name)
        return 0
    kept = []
    for ch in chapters:
        tb = ch.time_base
        start, end = ch.start * tb, ch.end * tb
        if window is not None:
            lo, hi = window
            if end <= lo or (hi is not None and start >= hi):
                continue
            start, end = max(start, lo), min(end, hi) if hi is not None else end
        start, end = start - shift, end - shift
        kept.append({"id": len(kept) + 1, "start": round(start / tb), "end": round(end / tb),
                     "time_base": tb, "metadata": dict(ch.metadata)})
    if kept:
        out.set_chapters(kept)
    return len(kept)


class _StreamCopier:
    """Reads the source's audio/subtitle packets with its own demuxer and muxes them in step.

    Audio and subtitles are copied packet for packet when the output container takes the
    codec; otherwise audio is re-encoded (AAC, or Opus for WebM) and subtitles are dropped,
    each with a warning. Only packets up to the requested time are read, so memory stays flat.
    """

    def __init__(
        self,
        source: VideoInfo,
        out: av.container.OutputContainer,
        dest: Path,
        *,
        window: tuple[Fraction, Fraction | None] | None,
        shift: Fraction,
    ) -> None:
        self.window = window
        self.shift = shift
        self.out = out
        self.drop_negative = out.format.name == "avi"
        self.input = open_input(source.path)
        self.map: dict[int, av.stream.Stream] = {}
        self.transcoders: dict[int, _AudioTranscoder] = {}
        wanted = [s.index for s in (*source.audio, *source.subtitles)]
        for index in wanted:
            ins = self.input.streams[index]
            codec = ins.codec_context.name if ins.codec_context else "unknown"
            missing = unusable_audio(ins)
            if missing:
                log.warning("%s: audio stream #%d %s; it cannot be copied or re-encoded and is "
                            "left out", dest.name, index, missing)
                continue
            try:
                self.map[index] = out.add_stream_from_template(ins)
                continue
            except (ValueError, av.error.FFmpegError) as e:
                reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            if ins.type == "audio":
                tr = _AudioTranscoder(ins, out, window=window, shift=shift)
                log.warning(
                    "%s: %s cannot hold %s audio (stream #%d, %s); re-encoding it to %s",
                    dest.name,
                    out.format.name,
                    codec,
                    index,
                    reason,
                    tr.codec,
                )
                self.transcoders[index] = tr
                self.map[index] = tr.stream
            else:
                log.warning(
                    "%s: %s cannot hold %s subtitles (stream #%d); dropping them (use .mkv)",
                    dest.name,
                    out.format.name,
                    codec,
                    index,
                )
        streams = [self.input.streams[i] for i in self.map]
        if streams and window is not None and window[0] > READ_MARGIN:
            # Skip straight to the excerpt (container-wide seek, backwards, with a margin).
            target = (window[0] - READ_MARGIN) * av.time_base
            try:
                self.input.seek(int(target), backward=True)
            except av.error.FFmpegError as e:
                log.debug("%s: seek for stream copy failed (%s); reading from 0", dest.name, e)
        self._stop_after = (
            window[1] + READ_MARGIN if window is not None and window[1] is not None else None
        )
        self._streams = streams
        self._packets = self.input.demux(streams) if streams else iter(())
        self._last_dts: dict[int, tuple[int, Fraction]] = {}
        self.damaged = 0
        """Audio/subtitle packets skipped as damaged (unreadable, repeated or out of order)."""
        self._pending: av.Packet | None = None
        self._exhausted = not streams
        self.muxed = 0
        """Packets copied so far (tests check that copying keeps pace with the video)."""
        self.refused = 0
        """Packets the muxer refused (counted in ``damaged`` too)."""
        self.per_stream: dict[int, int] = {}
        """Packets written per source stream index (re-encoded ones count at finish)."""

    def _time(self, packet: av.Packet) -> Fraction | None:
        ts = packet.pts if packet.pts is not None else packet.dts
        if ts is None or packet.time_base is None:
            return None
        return ts * Fraction(packet.time_base)

    def mux_until(self, t: Fraction | None) -> None:
        """Mux every copied packet whose time is <= t (all remaining ones if t is None)."""
        while not self._exhausted:
            if self._pending is None:
                self._pending = self._next_packet()
                if self._pending is None:
                    self._exhausted = True
                    break
            packet = self._pending
            pt = self._time(packet)
            if t is not None and pt is not None and pt > t:
                return
            if self._stop_after is not None and pt is not None and pt > self._stop_after:
                self._exhausted = True  # past the excerpt: do not read the rest of the film
                break
            self._pending = None
            self._mux(packet, pt)

    def _next_packet(self) -> av.Packet | None:
        """The next audio/subtitle packet; damage is skipped and reading resumes (as for the
        video), an I/O failure stops the run (ReadError); None at the end."""
        failures = 0
        while True:
            try:
                return next(self._packets)
            except StopIteration:
                return None
            except IndexError:  # a packet of a stream that appeared mid-file: not ours
                self._packets = self.input.demux(self._streams)
                continue
            except av.error.FFmpegError as e:
                if io_failure(e):
                    raise read_error(self.input.name, e, "copying the sound") from e
                failures += 1
                self.damaged += 1
                log.debug("%s: audio/subtitle demux error: %s", self.input.name, e)
                if failures >= 32:
                    log.warning("%s: audio/subtitle data unreadable after %d packets; the rest "
                                "of the sound is not copied", self.input.name, self.muxed)
                    return None
                self._packets = self.input.demux(self._streams)

    def _mux(self, packet: av.Packet, pt: Fraction | None) -> None:
        index = packet.stream.index
        if index in self.transcoders:
            self.transcoders[index].feed(packet)
            return
        if packet.size == 0:  # demuxer flush packet
            return
        if self.drop_negative and pt is not None and pt - self.shift < 0:
            # AVI cannot start a stream before 0: FFmpeg would shift every stream and the
            # constant-rate video would gain a blank slot; drop the priming packet instead.
            return
        if self.window is not None and pt is not None:
            start, end = self.window
            dur = (packet.duration or 0) * Fraction(packet.time_base)
            if end is not None and pt >= end:
                return
            if packet.stream.type == "subtitle":
                if pt + dur <= start:
                    return
                if pt < start:  # cue already showing at start: keep its remaining part
                    cut = round((start - pt) / Fraction(packet.time_base))
                    packet.pts = packet.pts + cut if packet.pts is not None else None
                    packet.dts = packet.dts + cut if packet.dts is not None else None
                    packet.duration = max(1, (packet.duration or 0) - cut)
            elif pt < start:
                return
        if self.shift:
            off = round(self.shift / Fraction(packet.time_base))
            if packet.pts is not None:
                packet.pts -= off
            if packet.dts is not None:
                packet.dts -= off
        last = self._last_dts.get(index)
        dts = packet.dts if packet.dts is not None else packet.pts
        tb = Fraction(packet.time_base)
        out_tb = self.map[index].time_base  # the muxer may change it when the header is written
        if last is not None and dts is not None and (
            # compared in the output's time base: two input times may round to one output tick
            _rescale(dts, tb, out_tb) <= _rescale(last[0], last[1], out_tb)
        ):
            self.damaged += 1  # a repeated or out-of-order packet (a bad splice): not copied
            return
        packet.stream = self.map[index]
        try:
            self.out.mux(packet)
        except av.error.FFmpegError as e:
            # The muxer (or its bitstream filter) refused this packet, e.g. a damaged ADTS
            # header: the packet is lost, not the sound. An OS error (a full disk) stops the run.
            if isinstance(e, OSError):
                raise
            self.damaged += 1
            self.refused += 1
            log.debug("%s: stream #%d packet not copied: %s", self.out.name, index, _short(e))
            if self.refused >= _MAX_REFUSED and not self.muxed:
                raise OutputError(
                    f"{self.out.name}: copying stream #{index} failed ({_short(e)})"
                ) from e
            return
        if dts is not None:
            self._last_dts[index] = (dts, tb)
        self.muxed += 1
        self.per_stream[index] = self.per_stream.get(index, 0) + 1

    def finish(self) -> None:
        """Mux everything left, flush transcoders and close the second demuxer."""
        self.mux_until(None)
        for index, tr in self.transcoders.items():
            tr.flush()
            self.per_stream[index] = tr.frames_encoded
            if tr.decode_errors:
                log.warning("%s: %d packets of audio stream #%d could not be decoded for "
                            "re-encoding (damaged); the sound has gaps there", self.input.name,
                            tr.decode_errors, index)
        if self.damaged:
            log.warning("%s: %d damaged audio/subtitle packets (unreadable, repeated or out of "
                        "order) were not copied", self.input.name, self.damaged)
        for index in self.map:
            if not self.per_stream.get(index) and self.input.streams[index].type == "audio":
                log.warning("%s: no packet of audio stream #%d could be read or copied (%d "
                            "damaged); the output has no sound from it", self.input.name, index,
                            self.damaged)
        self.close()

    def close(self) -> None:
        """Close the second demuxer."""
        self.input.close()


class _AudioTranscoder:
    """Re-encodes one audio stream the output container cannot copy (AAC, or Opus for WebM)."""

    def __init__(
        self,
        ins: av.audio.stream.AudioStream,
        out: av.container.OutputContainer,
        *,
        window: tuple[Fraction, Fraction | None] | None,
        shift: Fraction,
    ) -> None:
        self.ins = ins
        self.out = out
        self.window = window
        self.shift = shift
        rate = ins.codec_context.sample_rate or 48000
        last_error: Exception | None = None
        for codec in ("aac", "libopus"):
            try:
                if codec == "libopus":
                    rate = 48000
                self.stream = out.add_stream(codec, rate=rate)
                self.codec = codec
                break
            except (ValueError, av.error.FFmpegError) as e:
                last_error = e
        else:
            raise OutputError(
                f"{out.name}: {out.format.name} cannot hold audio as aac or opus ({last_error})"
            )
        # A decoder may give only a channel count ("2 channels", no order: WMA, 4XM, DVD PCM),
        # which the encoders refuse; the standard layout for that count is what it means.
        channels = ins.codec_context.channels or 2
        self.stream.codec_context.layout = "mono" if channels == 1 else "stereo"
        self.stream.codec_context.bit_rate = 192_000
        self.rate = rate
        self.resampler: av.AudioResampler | None = None
        self.next_pts: int | None = None
        self.decode_errors = 0
        self.frames_encoded = 0

    def feed(self, packet: av.Packet | None) -> None:
        """Decode a source packet (None flushes) and mux the re-encoded result."""
        try:
            frames = self.ins.decode(packet)
        except av.error.FFmpegError as e:
            if io_failure(e):
                raise
            self.decode_errors += 1
            log.debug("audio decode error skipped: %s", e)
            return
        for frame in frames:
            t = frame.time
            if self.window is not None and t is not None:
                start, end = self.window
                if t < start or (end is not None and t >= end):
                    continue
            self._encode(frame)

    def _encode(self, frame: av.AudioFrame | None) -> None:
        cc = self.stream.codec_context
        if self.resampler is None:
            self.resampler = av.AudioResampler(
                format=cc.format.name if cc.format else "fltp", layout=cc.layout, rate=self.rate
            )
        if self.next_pts is None and frame is not None:
            t = Fraction(frame.time) if frame.time is not None else Fraction(0)
            self.next_pts = round((t - self.shift) * self.rate)
        for out_frame in self.resampler.resample(frame):
            out_frame.pts = self.next_pts
            out_frame.time_base = Fraction(1, self.rate)
            self.next_pts = (self.next_pts or 0) + out_frame.samples
            self.out.mux(self.stream.encode(out_frame))
            self.frames_encoded += 1

    def flush(self) -> None:
        """Flush decoder, resampler and encoder."""
        self.feed(None)
        if self.resampler is not None:
            self._encode(None)
        self.out.mux(self.stream.encode(None))


def check_video_name(dest: Path) -> None:
    """Refuse an output name whose container FFmpeg does not know, before any slow work."""
    with tempfile.TemporaryDirectory(prefix="vidcolor-probe-") as tmp:
        try:
            av.open(str(Path(tmp) / ("probe" + dest.suffix)), "w").close()
        except ValueError:
            raise OutputError(
                f"{dest}: unknown output format '{dest.suffix}' ({_FORMAT_HINT})"
            ) from None
        except (OSError, av.error.FFmpegError):
            pass  # the real open reports anything else, with the real path


class VideoWriter:
    """Writes the source's native luma plus new chroma to ``dest``, atomically (a context manager).

    Per frame call :meth:`write` (or :meth:`write_frame`) with the unchanged luma plane and the
    chroma planes of shape :attr:`chroma_shape`, in the *source* bit depth (uint8 / uint16).
    Frames keep their source pts (VFR included); the video time base is the source's unless
    the muxer forces one (Matroska/WebM: 1/1000). Audio and subtitles are copied packet for
    packet, interleaved as the video advances. Output appears at ``dest`` only after a
    successful :meth:`close`; on an exception the temp file is removed and dest is untouched.
    """

    def __init__(
        self,
        dest: Path | str,
        *,
        source: VideoInfo,
        codec: str = "libx264",
        crf: int = 18,
        preset: str | None = None,
        pix_fmt: str | None = None,
        copy_streams: bool = True,
        overwrite: bool = False,
        start: Fraction | None = None,
        duration: Fraction | None = None,
        options: dict[str, str] | None = None,
    ) -> None:
        self.dest = check_output_path(dest, inputs=[source.path], overwrite=overwrite)
        self.source = source
        self.codec = codec
        self.pix_fmt = choose_pix_fmt(codec, source, pix_fmt)
        self.bit_depth = _depth_of(self.pix_fmt)
        chroma = _chroma_of(self.pix_fmt)
        if chroma == "400":
            raise OutputError(f"{self.dest}: pix_fmt {self.pix_fmt} has no chroma to colour")
        self.subsampling: tuple[int, int] = _CHROMA_SUB[chroma]
        """(vertical, horizontal) chroma subsampling of the output."""
        sv, sh = self.subsampling
        self.chroma_shape: tuple[int, int] = (-(-source.height // sv), -(-source.width // sh))
        """(height, width) the u and v planes passed to :meth:`write` must have."""
        if self.bit_depth != source.bit_depth:
            log.warning(
                "%s: %s takes %d-bit %s, the source is %d-bit; luma is rescaled (not bit-exact)",
                self.dest.name,
                codec,
                self.bit_depth,
                self.pix_fmt,
                source.bit_depth,
            )
        start = Fraction(start) if start else Fraction(0)
        self.shift_pts = round(start / source.time_base)
        self.out_time_base: Fraction = source.time_base
        """Time base of the encoder: the source's, except for AVI (1/fps)."""
        self._inexact_pts = False
        self._last_pts: int | None = None
        self._last_src_pts: int | None = None
        self._durations: dict[int, int] = {}
        self.frames_written = 0
        self._closed = False
        self._copier: _StreamCopier | None = None
        self._file = AtomicFile(self.dest)
        try:
            self._open(crf, preset, options or {}, copy_streams, start, duration)
        except BaseException:
            self._abort()
            raise

    # -- setup -----------------------------------------------------------------------------

    def _open(
        self,
        crf: int,
        preset: str | None,
        options: dict[str, str],
        copy_streams: bool,
        start: Fraction,
        duration: Fraction | None,
    ) -> None:
        src, dest = self.source, self.dest
        try:
            self._out = av.open(str(self._file.tmp), "w")
        except ValueError as e:
            raise OutputError(
                f"{dest}: unknown output format '{dest.suffix}' ({_FORMAT_HINT})"
            ) from e
        except OSError as e:
            raise translate_os_error(e, dest) from e
        try:
            vs = self._out.add_stream(self.codec, rate=src.fps or None)
        except (ValueError, av.error.FFmpegError) as e:
            raise OutputError(
                f"{dest}: the {self._out.format.name} container cannot hold {self.codec} video"
                f" ({_FORMAT_HINT} with a matching --codec)"
            ) from e
        spec = CODECS.get(self.codec, CodecSpec({}))
        opts = dict(spec.options)
        if spec.crf_option == "qscale":  # mpeg4: fixed quantiser ~ crf / 6, in lambda units
            opts["global_quality"] = str(118 * max(1, min(31, round(crf / 6))))
        elif spec.crf_option:
            opts[spec.crf_option] = str(crf)
        if spec.preset_option and (preset or spec.default_preset):
            opts[spec.preset_option] = str(preset or spec.default_preset)
        if src.maybe_vfr and self.codec in ("libx264", "libx265"):
            # Without B-frames dts == pts, so the muxer's track duration is exact for VFR too.
            opts["bf"] = "0"
        opts.update(options)
        if src.interlaced:  # keep the scan: field-coded output in the source's field order
            opts["flags"] = "+ildct+ilme"
            if self.codec == "libx264":
                field = "tff=1" if src.top_field_first else "bff=1"
                opts["x264-params"] = ":".join(p for p in (opts.get("x264-params"), field) if p)
        vs.width, vs.height = src.width, src.height
        vs.pix_fmt = self.pix_fmt
        if self._out.format.name == "avi" and src.fps:
            # AVI is constant-rate: one tick per frame slot (VFR is quantised, with a warning).
            self.out_time_base = 1 / src.fps
        vs.time_base = self.out_time_base
        cc = vs.codec_context
        cc.time_base = self.out_time_base
        if src.sample_aspect_ratio != 1:
            cc.sample_aspect_ratio = src.sample_aspect_ratio
        if src.interlaced:
            cc.field_order = src.field_order if src.field_order in (2, 3, 4, 5) else (
                2 if src.top_field_first else 3)
            if self.codec not in ("libx264", "mpeg2video", "mpeg4"):
                log.warning("%s: %s is coded progressive here; the output is tagged %s field "
                            "first but each frame is coded as one picture", dest.name,
                            self.codec, "top" if src.top_field_first else "bottom")
        self.color_range = _AVCOL_RANGE_JPEG if src.full_range else _AVCOL_RANGE_MPEG
        self.colorspace = _COLORSPACE_BY_MATRIX[src.color_matrix]
        cc.color_range = self.color_range
        cc.colorspace = self.colorspace
        if src.color_primaries != _UNSPECIFIED:
            cc.color_primaries = src.color_primaries
        if src.color_trc != _UNSPECIFIED:
            cc.color_trc = src.color_trc
        vs.options = opts
        if src.rotation:
            vs.set_display_rotation(src.rotation)
        self._stream = vs
        covers = _copy_others(src, self._out, dest) if copy_streams and src.others else []
        window = None
        if start or duration is not None:
            abs_start = src.start_time + start
            window = (abs_start, abs_start + duration if duration is not None else None)
        if copy_streams and (src.audio or src.subtitles):
            self._copier = _StreamCopier(src, self._out, dest, window=window, shift=start)
        if copy_streams:
            copy_chapters(src, self._out, dest, window, start)
        for packet, stream in covers:  # every stream is added: the header can be written
            packet.stream = stream
            self._out.mux(packet)

    # -- writing ---------------------------------------------------------------------------

    def write(
        self,
        y: np.ndarray,
        u: np.ndarray,
        v: np.ndarray,
        pts: int,
        duration: int | None = None,
    ) -> None:
        """Encode one frame: y as decoded (native luma), u/v at :attr:`chroma_shape`, source pts.

        pts is in the source time base and must increase; duration (same unit) is optional.
        """
        if self._closed:
            raise RuntimeError(f"{self.dest}: write() after close()")
        src = self.source
        if y.shape != (src.height, src.width):
            raise ValueError(f"y has shape {y.shape}, expected {(src.height, src.width)}")
        for name, c in (("u", u), ("v", v)):
            if c.shape != self.chroma_shape:
                raise ValueError(f"{name} has shape {c.shape}, expected {self.chroma_shape}")
            if c.dtype != y.dtype:
                raise ValueError(f"{name} has dtype {c.dtype}, expected {y.dtype} (as y)")
        expected = np.uint16 if src.bit_depth > 8 else np.uint8
        if y.dtype != expected:
            raise ValueError(f"y has dtype {y.dtype}, expected {np.dtype(expected)}")
        out_pts = self._out_pts(int(pts))
        self._last_pts = out_pts
        frame = av.VideoFrame(src.width, src.height, self.pix_fmt)
        planes = (y, u, v)
        for plane, data in zip(frame.planes[:3], planes, strict=True):
            _fill_plane(plane, _rescale_depth(data, src.bit_depth, self.bit_depth))
        frame.pts = out_pts
        frame.time_base = self.out_time_base
        if duration and self.out_time_base == src.time_base:
            frame.duration = int(duration)
            self._durations[out_pts] = int(duration)
        frame.color_range = self.color_range
        frame.colorspace = self.colorspace
        if self._copier is not None:
            try:
                self._copier.mux_until(int(pts) * src.time_base)
            except OSError as e:
                raise translate_os_error(e, self.dest) from e
        try:
            packets = self._stream.encode(frame)
        except OSError as e:
            raise translate_os_error(e, self.dest) from e
        except av.error.FFmpegError as e:
            raise OutputError(f"{self.dest}: {self.codec} encoding failed ({_short(e)})") from e
        try:
            self._mux_video(packets)
        except OSError as e:
            raise translate_os_error(e, self.dest) from e
        except av.error.FFmpegError as e:
            raise OutputError(f"{self.dest}: writing the {self._out.format.name} file failed "
                              f"({_short(e)})") from e
        self.frames_written += 1

    def _mux_video(self, packets: list[av.Packet]) -> None:
        """Mux encoded packets, restoring each frame's duration (encoders often drop it)."""
        for packet in packets:
            duration = self._durations.pop(packet.pts, None) if packet.pts is not None else None
            if duration and not packet.duration:
                packet.duration = duration
            self._out.mux(packet)

    def _out_pts(self, pts: int) -> int:
        """Source pts to encoder pts (identity unless --start shifts it or AVI re-ticks it)."""
        src_pts = pts - self.shift_pts
        if self._last_src_pts is not None and src_pts <= self._last_src_pts:
            raise ValueError(f"pts {pts} does not increase (previous {self._last_src_pts})")
        self._last_src_pts = src_pts
        if self.out_time_base == self.source.time_base:
            return src_pts
        exact = src_pts * self.source.time_base / self.out_time_base
        out = round(exact)
        if self._last_pts is not None and out <= self._last_pts:
            out = self._last_pts + 1
        if out != exact and not self._inexact_pts:
            self._inexact_pts = True
            log.warning(
                "%s: %s is constant-rate; variable frame timing is rounded to 1/%s s "
                "(use .mkv or .mp4 to keep exact timestamps)",
                self.dest.name,
                self._out.format.name,
                1 / self.out_time_base,
            )
        return out

    def write_frame(self, frame: DecodedFrame, u: np.ndarray, v: np.ndarray) -> None:
        """:meth:`write` with y, pts and duration taken from a :class:`DecodedFrame`."""
        self.write(frame.y, u, v, frame.pts, frame.duration)

    # -- finishing -------------------------------------------------------------------------

    def close(self) -> Path:
        """Flush the encoder, mux the remaining audio/subtitles, finish, move the file to dest."""
        if self._closed:
            return self.dest
        try:
            if self.frames_written == 0:
                raise OutputError(f"{self.dest}: no frames were written; nothing to save")
            try:
                self._mux_video(self._stream.encode(None))
                if self._copier is not None:
                    self._copier.finish()
                    self._copier = None
                self._out.close()
            except OSError as e:
                raise translate_os_error(e, self.dest) from e
            except av.error.FFmpegError as e:
                raise OutputError(f"{self.dest}: finishing the file failed ({_short(e)})") from e
            self._closed = True
            return self._file.commit()
        except BaseException:
            self._abort()
            raise

    def abort(self) -> None:
        """Stop without producing dest: close everything and delete the temp file."""
        self._abort()

    def _abort(self) -> None:
        self._closed = True
        if self._copier is not None:
            with contextlib.suppress(Exception):  # best-effort cleanup
                self._copier.close()
            self._copier = None
        out = getattr(self, "_out", None)
        if out is not None:
            with contextlib.suppress(Exception):
                out.close()
        self._file.discard()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort()


def probe_output_codecs() -> list[str]:
    """The encoders from :data:`CODECS` this PyAV build actually has (for --help and errors)."""
    available = av.codec.codecs_available
    return [name for name in CODECS if name in available]
