"""Shot-parallel colouring of long films: find the shot cuts, colour runs of whole shots in
parallel, and join the coloured segments losslessly into one film.

1. :func:`scan_window` decodes one stretch of the film (windows run in parallel) and runs the
   temporal package's :class:`CutDetector` on a small copy of each frame's luma; it returns
   every frame's pts, so the plan knows the film frame by frame.
2. :func:`make_plan` cuts the film into segments of about ``target`` seconds, each starting at
   a shot cut where one is near (the temporal stage resets at cuts anyway, so there is no seam
   by construction); a stretch with no cut gets a fixed seam at its most abrupt frame change
   (the temporal stage restarts there, so colour may shift slightly; a discarded warm-up
   overlap would hide it but needs ``colorize_video`` support for frames coloured, not written).
3. Each segment is coloured with ``colorize_video(start=, duration=)`` into a hidden file
   (a fresh encode, so it starts with a keyframe).
4. :func:`join_segments` remuxes the segments' video packets, shifted back to their source
   timestamps, and copies the source's audio and subtitles packet for packet, exactly as a
   single-process run does: same frames, same timestamps, same sound.
"""

from __future__ import annotations

import contextlib
import logging
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error
import numpy as np
import torch

from vidcolor import lab
from vidcolor.errors import OutputError
from vidcolor.media.atomic import AtomicFile, check_output_path, translate_os_error
from vidcolor.media.decode import _short, iter_frames, luma_to_unit, probe_video
from vidcolor.media.encode import _StreamCopier
from vidcolor.temporal.cuts import CutDetector

log = logging.getLogger("vidcolor")

SCAN_WIDTH = 96
"""Approximate width of the luma copy the cut detector sees (enough for a histogram)."""
SCAN_PRIME = Fraction(1)
"""Seconds decoded before a scan window so a cut on its first frame is still seen."""
MIN_SCAN_SECONDS = 30.0
"""Shortest stretch worth a scan task of its own."""
CUT_MARGIN = 1.5
"""Only clear cuts (histogram distance >= this x the stage's threshold, at scan resolution)
become segment boundaries, so the temporal stage of a single run surely resets there too."""


class JoinError(OutputError):
    """Segments cannot be joined losslessly (the caller colours the film in one piece)."""


@dataclass(frozen=True)
class ScanResult:
    """Frames of one scanned stretch: pts (source time base), histogram distance to the previous
    frame, and which of them the detector calls cuts (indices into ``pts``)."""

    start_pts: int
    time_base: Fraction
    pts: tuple[int, ...]
    distances: tuple[float, ...]
    cuts: tuple[int, ...]
    clean: bool
    """No damaged packets and no repaired timestamps (else seeking might not see the same
    frames as a straight decode, so the film is not split)."""


@dataclass(frozen=True)
class Segment:
    """A run of frames coloured on its own: film time [start, start + duration)."""

    index: int
    start: Fraction
    duration: Fraction | None
    """None for the last segment (to the end of the film)."""
    frames: int
    first_pts: int
    at_cut: bool
    """Starts at a detected shot cut (False for the first segment and fixed seams)."""
    pts: tuple[int, ...] = ()
    """Source pts of its frames, in order (to restore them where a shift is not exact)."""


@dataclass(frozen=True)
class SplitPlan:
    """How a film is split: its segments in order, and counts for logs and checks."""

    segments: tuple[Segment, ...]
    frames: int
    cuts: int
    seams: int


def scan_windows(duration: Fraction, parts: int) -> list[tuple[Fraction, Fraction | None]]:
    """Film-time windows (start, duration; None = to the end) for ``parts`` parallel scans."""
    n = max(1, min(parts, int(float(duration) // MIN_SCAN_SECONDS)))
    step = Fraction(duration) / n
    return [(i * step, step if i < n - 1 else None) for i in range(n)]


def _small_l(y: np.ndarray, bit_depth: int, full_range: bool) -> torch.Tensor:
    """Lightness of a strided, roughly SCAN_WIDTH-wide copy of a luma plane."""
    step = max(1, y.shape[1] // SCAN_WIDTH)
    small = luma_to_unit(np.ascontiguousarray(y[::step, ::step]), bit_depth, full_range)
    return lab.grey_to_l(torch.from_numpy(small))


def scan_window(
    src: Path, start: Fraction, duration: Fraction | None, *, threshold: float
) -> ScanResult:
    """Decode film time [start, start + duration) and find its shot cuts."""
    info = probe_video(src)
    detector = CutDetector(threshold=min(1.0, threshold * CUT_MARGIN))
    first = max(Fraction(0), start - SCAN_PRIME)
    pts: list[int] = []
    dist: list[float] = []
    cuts: list[int] = []
    end = start + duration if duration is not None else None
    reader = iter_frames(info, start=first, duration=end - first if end is not None else None)
    with reader:
        for frame in reader:
            cut = detector.update(_small_l(frame.y, frame.bit_depth, frame.full_range))
            if frame.time < start:
                continue
            if cut:
                cuts.append(len(pts))
            pts.append(frame.pts)
            dist.append(detector.last_distance)
        clean = reader.damaged == 0 and reader.repaired_pts == 0 and reader.retimed == 0
    return ScanResult(info.start_pts, info.time_base, tuple(pts), tuple(dist), tuple(cuts), clean)


def merge_scans(scans: list[ScanResult]) -> ScanResult:
    """Concatenate the scans of consecutive windows (in film order) into one."""
    pts: list[int] = []
    dist: list[float] = []
    cuts: list[int] = []
    clean = True
    for s in scans:
        if pts and s.pts and s.pts[0] <= pts[-1]:
            clean = False  # windows overlap or disagree: do not trust the split
        cuts.extend(len(pts) + c for c in s.cuts)
        pts.extend(s.pts)
        dist.extend(s.distances)
        clean = clean and s.clean
    first = scans[0]
    return ScanResult(first.start_pts, first.time_base, tuple(pts), tuple(dist),
                      tuple(sorted(set(cuts))), clean)


def make_plan(scan: ScanResult, target: float) -> SplitPlan | None:
    """Segments of about ``target`` seconds, starting at shot cuts where there are any within
    half a target of the ideal boundary; None when the film is not worth splitting."""
    n = len(scan.pts)
    if n < 2 or not scan.clean or target <= 0:
        return None
    tb = scan.time_base
    times = [float((p - scan.start_pts) * tb) for p in scan.pts]
    cutset = list(scan.cuts)
    bounds: list[tuple[int, bool]] = [(0, False)]
    b = 0
    while times[-1] - times[b] >= 1.5 * target:
        tb0 = times[b]
        lo = bisect_left(times, tb0 + 0.5 * target, b + 1)
        hi = bisect_left(times, tb0 + 1.5 * target, b + 1)
        c0, c1 = bisect_left(cutset, lo), bisect_left(cutset, hi)
        if c0 < c1:
            nxt = min(cutset[c0:c1], key=lambda i: abs(times[i] - (tb0 + target)))
            at_cut = True
        else:
            j0 = max(b + 1, bisect_left(times, tb0 + 0.75 * target, b + 1))
            j1 = max(j0 + 1, bisect_left(times, tb0 + 1.25 * target, b + 1))
            window = range(j0, min(j1, n))
            if not window:
                break
            nxt = max(window, key=lambda i: scan.distances[i])
            at_cut = False
        bounds.append((nxt, at_cut))
        b = nxt
    if len(bounds) < 2:
        return None
    segments = []
    for k, (i, at_cut) in enumerate(bounds):
        j = bounds[k + 1][0] if k + 1 < len(bounds) else n
        start = (scan.pts[i] - scan.start_pts) * tb
        dur = (scan.pts[j] - scan.pts[i]) * tb if j < n else None
        segments.append(Segment(k, start, dur, j - i, scan.pts[i], at_cut, scan.pts[i:j]))
    seams = sum(1 for s in segments[1:] if not s.at_cut)
    return SplitPlan(tuple(segments), n, len(scan.cuts), seams)


def segment_path(dest: Path, index: int) -> Path:
    """Hidden file beside dest for one segment (removed after the join; a killed run's leftovers
    are cleaned as temp files)."""
    return dest.with_name(f".{dest.stem}.vidcolor-seg{index:04d}{dest.suffix}")


def _same_codec(a: av.VideoStream, b: av.VideoStream) -> bool:
    ca, cb = a.codec_context, b.codec_context
    return (ca.name, ca.width, ca.height, ca.format.name if ca.format else None,
            bytes(ca.extradata or b"")) == (cb.name, cb.width, cb.height,
                                             cb.format.name if cb.format else None,
                                             bytes(cb.extradata or b""))


def join_segments(src: Path, plan: SplitPlan, dest: Path) -> int:
    """Join coloured segments into dest: video packets remuxed with their source timestamps,
    the source's audio and subtitles copied as a single run copies them. Returns frames."""
    info = probe_video(src)
    check_output_path(dest, inputs=[src], overwrite=True)
    paths = [segment_path(dest, s.index) for s in plan.segments]
    for p in paths:
        if not p.is_file():
            raise JoinError(f"{dest}: segment file {p.name} is missing")
    out_file = AtomicFile(dest)
    inputs: list[av.container.InputContainer] = []
    copier: _StreamCopier | None = None
    try:
        try:
            out = av.open(str(out_file.tmp), "w")
        except OSError as e:
            raise translate_os_error(e, dest) from e
        inputs.append(out)  # closed with the inputs on failure
        first = av.open(str(paths[0]), metadata_errors="replace")
        inputs.append(first)
        template = first.streams.video[0]
        ovs = out.add_stream_from_template(template)
        if info.fps:  # becomes the stream's avg_frame_rate, as with VideoWriter's add_stream(rate=)
            ovs.codec_context.framerate = info.fps
        if info.rotation:
            ovs.set_display_rotation(info.rotation)
        if info.audio or info.subtitles:
            copier = _StreamCopier(info, out, dest, window=None, shift=Fraction(0))
        frames = 0
        last_dts: Fraction | None = None
        for seg, path in zip(plan.segments, paths, strict=True):
            with av.open(str(path), metadata_errors="replace") as inp:
                vs = inp.streams.video[0]
                if not _same_codec(vs, template):
                    raise JoinError(f"{dest}: segment {seg.index} was encoded with other codec "
                                    "parameters than segment 0")
                count = 0
                for pkt in _retimed(inp, path, seg, info.start_pts, info.time_base, dest):
                    dts = pkt.dts * Fraction(pkt.time_base)
                    if last_dts is not None and dts <= last_dts:
                        raise JoinError(f"{dest}: segment {seg.index} overlaps the previous one "
                                        f"in decode time ({float(dts):.3f} s)")
                    last_dts = dts
                    if copier is not None:
                        copier.mux_until(dts)
                    pkt.stream = ovs
                    out.mux(pkt)
                    count += 1
                if count != seg.frames:
                    raise JoinError(f"{dest}: segment {seg.index} holds {count} frames, "
                                    f"expected {seg.frames}")
                frames += count
        if copier is not None:
            copier.finish()
            copier = None
        out.close()
        inputs.remove(out)
    except OSError as e:
        _close_all(inputs, copier)
        out_file.discard()
        raise translate_os_error(e, dest) from e
    except av.error.FFmpegError as e:
        _close_all(inputs, copier)
        out_file.discard()
        raise JoinError(f"{dest}: joining segments failed ({_short(e)})") from e
    except BaseException:
        _close_all(inputs, copier)
        out_file.discard()
        raise
    _close_all(inputs, None)
    out_file.commit()
    remove_segments(dest, plan)
    return frames


def _video_packets(container: av.container.InputContainer) -> Iterator[av.Packet]:
    for pkt in container.demux(container.streams.video[0]):
        if pkt.size and pkt.dts is not None and pkt.pts is not None:
            yield pkt


def _retimed(
    inp: av.container.InputContainer,
    path: Path,
    seg: Segment,
    start_pts: int,
    src_tb: Fraction,
    dest: Path,
) -> Iterator[av.Packet]:
    """A segment's video packets with their source timestamps back.

    The segment was written shifted back by its start (VideoWriter ``start=``); shifting its
    packets forward is exact when the shift is a whole number of the file's ticks (mp4, mov,
    avi). Otherwise (Matroska's 1 ms at 23.976 fps) each frame gets its exact source pts from
    the plan, in the source time base, so the muxer rounds it as a single run's would.
    """
    tb = Fraction(inp.streams.video[0].time_base)
    shift = seg.first_pts - start_pts  # source ticks
    off = shift * src_tb / tb
    if off.denominator == 1:
        for pkt in _video_packets(inp):
            pkt.pts += int(off)
            pkt.dts += int(off)
            yield pkt
        return
    order = sorted(pkt.pts for pkt in _video_packets(inp))
    if len(order) != len(seg.pts):
        raise JoinError(f"{dest}: segment {seg.index} holds {len(order)} frames, "
                        f"expected {len(seg.pts)}")
    exact = dict(zip(order, seg.pts, strict=True))
    last: int | None = None
    with av.open(str(path), metadata_errors="replace") as again:
        for pkt in _video_packets(again):
            pts = exact[pkt.pts]
            dts = min(pts, round(pkt.dts * tb / src_tb) + shift)
            if last is not None and dts <= last:
                dts = last + 1
            last = dts
            duration = round(pkt.duration * tb / src_tb) if pkt.duration else 0
            pkt.time_base = src_tb
            pkt.pts, pkt.dts, pkt.duration = pts, dts, duration
            yield pkt


def _close_all(containers: list, copier: _StreamCopier | None) -> None:
    if copier is not None:
        with contextlib.suppress(Exception):
            copier.close()
    for c in containers:
        with contextlib.suppress(Exception):
            c.close()


def remove_segments(dest: Path, plan: SplitPlan) -> None:
    """Delete a film's segment files (after the join, or when the split is abandoned)."""
    for s in plan.segments:
        with contextlib.suppress(FileNotFoundError):
            segment_path(dest, s.index).unlink()
