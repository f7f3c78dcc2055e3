"""The streaming film pipeline: decode -> colourize -> temporal stage -> encode.

Decoding and encoding run in their own threads, handing frames over bounded queues around the
batched model step in the calling thread, so memory stays flat whatever the film's length.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import itertools
import logging
import math
import os
import platform
import queue
import resource
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import torch
from PIL import Image, UnidentifiedImageError

from vidcolor.colorize import (
    Colorizer,
    chroma_from_lab,
    chroma_guide,
    colorize_rgb_array,
    frame_chroma,
    frame_lightness,
    pick_device,
    rotate,
)
from vidcolor.errors import Cancelled, InputError, OutputError, UsageError
from vidcolor.media.atomic import check_output_path, translate_os_error
from vidcolor.media.decode import DecodedFrame, VideoInfo, iter_frames, luma_to_unit, probe_video
from vidcolor.media.encode import VideoWriter, check_video_name, encode_chroma
from vidcolor.media.image import (
    ANIMATION_FORMATS,
    IMAGE_EXTENSIONS,
    animation_loop,
    is_animated,
    is_image_path,
    load_image,
    write_animation,
    write_image,
)
from vidcolor.models.runtime import accelerate, resolve_runtime
from vidcolor.options import ColorizeOptions
from vidcolor.presets import PipelineSettings
from vidcolor.progress import progress_bar
from vidcolor.steer import describe_plan, make_steer_stage
from vidcolor.steer.plan import build_plan
from vidcolor.temporal import TemporalItem, make_temporal_stage
from vidcolor.temporal.stabilize import ForwardStage

log = logging.getLogger("vidcolor")

QUEUE_FRAMES = 8
"""Frames held in each hand-over queue (decode -> model, model -> encode)."""


@dataclass
class StageTimes:
    """Seconds spent in each stage (decode and encode overlap the model in their threads)."""

    decode: float = 0.0
    colorize: float = 0.0
    temporal: float = 0.0
    upsample: float = 0.0
    encode: float = 0.0


@dataclass
class VideoResult:
    """What one film run did."""

    input: Path
    output: Path
    frames: int
    seconds: float
    temporal: str
    cuts: list[tuple[int, Fraction]] = field(default_factory=list)
    damaged: int = 0
    times: StageTimes = field(default_factory=StageTimes)
    rss_mb: list[tuple[int, float]] = field(default_factory=list)
    """(frames done, resident memory MB) samples, to show memory stays flat."""
    film_fps: Fraction | None = None
    """The film's own frame rate (None: variable or unknown)."""
    film_seconds: float = 0.0
    """Length of the coloured part of the film, in film time."""

    @property
    def fps(self) -> float:
        """Processing speed: frames coloured per second of wall time (not the film's rate,
        which is ``film_fps``)."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """One line saying what was done, for the end of a run."""
        rate = f" at {float(self.film_fps):.3g} fps" if self.film_fps else ""
        shots = len(self.cuts) + 1
        speed = self.film_seconds / self.seconds if self.seconds > 0 else 0.0
        return (f"wrote {self.output}: {self.frames} frames, {self.film_seconds:.1f} s of film"
                f"{rate}, {shots} shot{'s' if shots != 1 else ''}, coloured at "
                f"{self.fps:.1f} frames/s ({speed:.2f}x real time) in {self.seconds:.1f} s")


def rss_mb() -> float:
    """Current resident memory of this process in MB."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * resource.getpagesize() / 1e6
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


_END = object()


class _Worker(threading.Thread):
    """A thread that stores its exception for the main thread to re-raise."""

    def __init__(self, target: Callable[[], None], name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._fn = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._fn()
        except BaseException as exc:
            self.error = exc


def _put(
    q: queue.Queue, item: Any, stop: threading.Event, consumers: Sequence[_Worker] = ()
) -> bool:
    """Bounded put that gives up when the pipeline is stopping or its consumer has died."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            if any(not w.is_alive() for w in consumers):
                return False
    return False


def _get(q: queue.Queue, stop: threading.Event, workers: Sequence[_Worker]) -> Any:
    """Get that stops with the pipeline and notices a dead producer instead of waiting forever."""
    while not stop.is_set():
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if any(w.error is not None for w in workers):
                return _END
    return _END


STOP_GRACE = 5.0
"""Seconds a stopping pipeline waits for a worker blocked in I/O (a hung network mount)
before it leaves it behind (workers are daemon threads) and goes on with the clean-up."""


def _join_all(
    workers: Sequence[threading.Thread], stop: threading.Event | None = None
) -> None:
    """Join every started worker, even if Ctrl-C / SIGTERM arrives while waiting.

    Once ``stop`` is set (an error or an interrupt), a worker gets :data:`STOP_GRACE` seconds;
    one still blocked in a read or write after that, or after a second Ctrl-C, is left behind
    so that the run can end and clean up."""
    interrupted: BaseException | None = None
    stopping_since: float | None = None
    for w in workers:
        while w.is_alive():
            try:
                w.join(0.1)
            except KeyboardInterrupt as exc:  # the workers see ``stop`` within 0.1 s
                if interrupted is not None:  # a second Ctrl-C: do not wait any longer
                    stopping_since = -math.inf
                interrupted = exc
                if stop is not None:
                    stop.set()
            if stop is None or not stop.is_set():
                continue
            now = time.monotonic()
            stopping_since = now if stopping_since is None else stopping_since
            if now - stopping_since > STOP_GRACE:
                log.warning("%s is blocked (in I/O?) and does not stop; leaving it behind",
                            w.name)
                break
    if interrupted is not None:
        raise interrupted


def frame_unit(frame: DecodedFrame) -> torch.Tensor:
    """Native luma of a decoded frame -> (1, 1, H, W) Y' in [0, 1]."""
    y = luma_to_unit(frame.y, frame.bit_depth, frame.full_range)
    return torch.from_numpy(y)[None, None]


@dataclass(frozen=True)
class _Decoded:
    """A decoded frame, its lightness (1, 1, h, w) at working size, and what its chroma needs:
    the lightness guide at chroma size, or (interlaced: guided field by field) its Y'."""

    frame: DecodedFrame
    L: torch.Tensor
    guide: torch.Tensor | None
    unit: torch.Tensor | None


def _settings_log(info: VideoInfo, colorizer: Colorizer, settings: PipelineSettings, size) -> None:
    log.info("%s", info.describe())
    log.info(
        "model %s on %s, working size %dx%d, preset %s",
        colorizer.name, colorizer.device, size[1], size[0], settings.name,
    )
    if not info.is_grey_source:
        log.info("%s is already in colour: colouring it again from its luminance", info.path.name)


def colorize_video(
    src: Path | str,
    dest: Path | str,
    options: ColorizeOptions = ColorizeOptions(),
    *,
    colorizer: Colorizer | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    cancel: threading.Event | None = None,
) -> VideoResult:
    """Colour a film; the output keeps the input's luma, frames, timestamps, audio, subtitles.

    ``progress(frames written, expected total)`` is called after each frame (the studio's bar);
    setting ``cancel`` stops the work with :class:`Cancelled`, keeping no partial output.

    Every check that can fail fast runs before the slow work, in the order of the exit codes
    users see: options (2), input (3), output (4), device (7), temporal stage (6), model (5).
    """
    keep_freed_memory()
    try:
        return _colorize_video(src, dest, options, colorizer, progress, cancel)
    finally:
        release_freed_memory()  # the film's buffers, writer and stage are all gone by now


def _colorize_video(
    src: Path | str,
    dest: Path | str,
    options: ColorizeOptions,
    colorizer: Colorizer | None,
    progress: Callable[[int, int | None], None] | None,
    cancel: threading.Event | None,
) -> VideoResult:
    """:func:`colorize_video`'s work."""
    src, dest = Path(src), Path(dest)
    settings = options.settings()
    info = probe_video(src)
    check_output_path(dest, inputs=[src], overwrite=options.overwrite)
    _check_dest_kind(src, dest, image=False)
    device = colorizer.device if colorizer is not None else pick_device(options.device)
    plan = build_plan(
        info, shots=options.shots, references=options.references, hints=options.hints,
        auto_keyframes=settings.auto_keyframes, working_short_side=settings.working_short_side,
        start=options.start, duration=options.duration,
    )
    temporal = settings.temporal_options(device=str(device), flow_weights=options.flow_weights)
    stage = make_temporal_stage(temporal) if plan is None else None
    if plan is not None and temporal.flow == "none":
        raise UsageError("steering carries colour along the optical flow: drop --flow none")
    colorizer = _colorizer(options.model_for_film, options, settings, colorizer)
    colorizer.use_fade(not settings.vivid and not options.steered)  # guided colour stays as given
    if plan is not None:
        log.info("steering: %s", describe_plan(plan))
        automatic = None
        if options.steered and options.model != options.steer_model:  # for unsteered shots
            automatic = _colorizer(options.model, options, settings)
            automatic.use_fade(not settings.vivid)
        stage = make_steer_stage(
            temporal, plan=plan, colorizer=colorizer, info=info, batch_size=settings.batch_size,
            saturation=settings.saturation, automatic=automatic,
        )
    # Working size in the coded orientation: both sides scale alike, so turning the frame
    # upright for the model just swaps them.
    size = colorizer.size_for(info.height, info.width)
    _settings_log(info, colorizer, settings, size[::-1] if info.rotation % 180 else size)
    log.info("temporal stage: %s", stage.name)
    total = _expected_frames(info, options.start, options.duration)
    # the steering stage calls the (guided) network itself, with guidance: torch only
    runtime = resolve_runtime(settings.runtime if plan is None else "torch",
                              device=colorizer.device)
    upright = size[::-1] if info.rotation % 180 else size
    runtime = accelerate(colorizer, runtime, shape=(settings.batch_size, 1, *upright))
    if runtime != "torch":
        log.info("model runtime: %s", runtime)
    times = StageTimes()
    stop = threading.Event()
    q_in: queue.Queue = queue.Queue(QUEUE_FRAMES)
    q_mid: queue.Queue = queue.Queue(QUEUE_FRAMES)
    q_out: queue.Queue = queue.Queue(QUEUE_FRAMES)
    reader = iter_frames(info, start=options.start, duration=options.duration)
    samples: list[tuple[int, float]] = []
    written = [0]
    first_time: list[Fraction | None] = [None]
    last_time = [Fraction(0)]
    started: list[_Worker] = []

    def decode() -> None:  # each frame with the lightness the model and the chroma need
        _one_torch_thread()
        it = iter(reader)
        while not stop.is_set():
            t0 = time.perf_counter()
            frame = next(it, None)
            if frame is None:
                break
            unit = frame_unit(frame)
            guide = chroma_guide(unit, chroma_shape, interlaced=info.interlaced)
            item = _Decoded(frame, frame_lightness(unit, size), guide,
                            unit if guide is None else None)  # full-size Y' only if needed
            times.decode += time.perf_counter() - t0
            if not _put(q_in, item, stop):
                return
        _put(q_in, _END, stop)

    with VideoWriter(
        dest,
        source=info,
        codec=settings.codec,
        crf=settings.crf,
        preset=settings.x264_preset if settings.codec in ("libx264", "libx265") else None,
        overwrite=options.overwrite,
        start=options.start,
        duration=options.duration,
    ) as writer:
        chroma_shape = writer.chroma_shape
        depth = writer.source.bit_depth
        bar = progress_bar(total=total, desc=src.name, quiet=options.quiet)

        def encode() -> None:
            _one_torch_thread()
            while True:
                item = _get(q_out, stop, [decoder, temporal_worker])
                if item is _END:
                    return
                t0 = time.perf_counter()
                frame, guide, unit = item.payload
                ab, L = item.ab[None].cpu(), item.L[None].cpu()
                if guide is not None:  # computed while decoding
                    cb, cr = chroma_from_lab(guide, ab, L, chroma_shape, matrix=info.color_matrix)
                else:  # interlaced: guided field by field
                    cb, cr = frame_chroma(unit, ab, L, chroma_shape, matrix=info.color_matrix,
                                          interlaced=True)
                u = encode_chroma(cb[0].numpy(), subsampling=(1, 1), bit_depth=depth,
                                  full_range=info.full_range)
                v = encode_chroma(cr[0].numpy(), subsampling=(1, 1), bit_depth=depth,
                                  full_range=info.full_range)
                t1 = time.perf_counter()
                writer.write_frame(frame, u, v)
                times.upsample += t1 - t0
                times.encode += time.perf_counter() - t1
                written[0] += 1
                if first_time[0] is None:
                    first_time[0] = frame.time
                last_time[0] = frame.time
                bar.update(1)
                if progress is not None:
                    progress(written[0], total)
                if written[0] % 250 == 1:
                    samples.append((written[0], rss_mb()))

        def carry() -> None:  # the temporal stage, in its own thread beside the model's
            _one_torch_thread()
            while True:
                item = _get(q_mid, stop, [decoder])
                if stop.is_set():
                    return
                t0 = time.perf_counter()
                ready = stage.flush() if item is _END else stage.push(item)
                times.temporal += time.perf_counter() - t0
                for done in ready:
                    if not _put(q_out, done, stop, [encoder]):
                        return
                if item is _END:
                    _put(q_out, _END, stop, [encoder])
                    return

        decoder = _Worker(decode, "vidcolor-decode")
        temporal_worker = _Worker(carry, "vidcolor-temporal")
        encoder = _Worker(encode, "vidcolor-encode")
        workers = (decoder, temporal_worker, encoder)
        t_start = time.perf_counter()
        finished = False
        torch_threads = torch.get_num_threads()  # restored at the end; workers use one
        cv_threads = cv2.getNumThreads()
        if colorizer.device.type == "cpu":
            torch.set_num_threads(pool_threads(torch_threads))
        cv2.setNumThreads(pool_threads(cv_threads))  # 1 on 2 cores: its pool only spun
        try:
            predict = _predictor(colorizer, info, settings)
            if isinstance(stage, ForwardStage):  # frames the model skips that start a shot
                stage.predict = predict
            for worker in workers:
                worker.start()
                started.append(worker)
            frames_per_batch = settings.batch_size * stage.model_every
            for batch in _batches(q_in, stop, decoder, frames_per_batch):
                if cancel is not None and cancel.is_set():
                    raise Cancelled(f"{dest}: render cancelled; no partial output was kept")
                for item in _model_batch(batch, predict, stage, times):
                    if not _put(q_mid, item, stop, [temporal_worker]):
                        break
                _raise_worker_errors(*workers)
            _put(q_mid, _END, stop, [temporal_worker])
            _join_all([temporal_worker, encoder], stop)
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"{dest}: render cancelled; no partial output was kept")
            _raise_worker_errors(*workers)
            finished = True
        finally:
            stop.set()
            try:
                _join_all(started, stop)
            finally:
                torch.set_num_threads(torch_threads)  # the default for threads started later
                cv2.setNumThreads(cv_threads)
                colorizer.accelerated = None  # compiled for this film's shape only
                reader.close()
                if finished and bar.total != written[0]:  # the container's count was an estimate
                    bar.total = written[0]
                    bar.refresh()
                bar.close()
        if written[0] == 0:
            raise InputError(f"{src}: no decodable video frame in the selected range")
    seconds = time.perf_counter() - t_start
    samples.append((written[0], rss_mb()))
    if reader.damaged:
        log.warning(
            "%s: %d damaged packets skipped; %d frames coloured", src, reader.damaged, written[0]
        )
    if reader.retimed or reader.repaired_pts:
        log.warning(
            "%s: %d frames had damaged timestamps (jumping ahead and back) and were re-timed "
            "between their neighbours; %d had none or went backwards and got the next tick",
            src, reader.retimed, reader.repaired_pts,
        )
    for idx, t in stage.cuts:
        log.info("shot cut at frame %d (%.3f s)", idx, float(t))
    return VideoResult(
        src, dest, written[0], seconds, stage.name, list(stage.cuts), reader.damaged, times,
        samples, film_fps=info.fps,
        film_seconds=float(last_time[0] - (first_time[0] or 0) + (1 / info.fps if info.fps else 0)),
    )


def pool_threads(cores: int) -> int:
    """Intra-op threads for the model (and OpenCV's pool) in a film, of the ``cores`` threads
    torch (OpenCV) was given: decode, the temporal stage and encode (with x264's threads) keep
    two busy, so they get the rest, at least one: on 2 cores, a second intra-op thread would
    only spin against the other stages."""
    return max(1, cores - 2)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def release_freed_memory() -> None:
    """glibc: hand the memory kept by :func:`keep_freed_memory` back once a film is done, so a
    process colouring many films (batch, studio) holds no more than one film's worth."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


@functools.cache
def keep_freed_memory() -> bool:
    """glibc only, once per process: allocations up to 32 MB come from the heap, and freed
    memory is kept (trimmed past 1 GB). A film's per-frame buffers of several MB (frames, the
    model's activations) would otherwise be mapped afresh each frame, and every new page
    faulted in again. Memory stays flat: what is kept is what the next frame needs again, and
    it goes back when the film ends (:func:`release_freed_memory`). Returns whether it
    applied."""
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30))


def _one_torch_thread() -> None:
    """A worker's torch ops are one frame at working or chroma size: too small to gain from
    intra-op threads, whose hand-offs cost CPU. (Threads already running keep their count.)"""
    torch.set_num_threads(1)


def _raise_worker_errors(*workers: _Worker) -> None:
    for w in workers:
        if w.error is not None:
            raise w.error


def _expected_frames(
    info: VideoInfo, start: Fraction | None, duration: Fraction | None
) -> int | None:
    """Frame total for the progress bar (an estimate from the container; None if unknown)."""
    if not start and duration is None:
        return info.frame_count
    if not info.fps:
        return None
    begin = Fraction(start or 0)
    end = info.duration
    if duration is not None:
        end = begin + duration if end is None else min(end, begin + duration)
    if end is None:
        return None
    return max(0, round((end - begin) * info.fps))


def _batches(
    q_in: queue.Queue, stop: threading.Event, decoder: _Worker, batch_size: int
) -> Iterator[list[_Decoded]]:
    """Group decoded frames into model batches (the last one may be short)."""
    batch: list[_Decoded] = []
    while True:
        item = _get(q_in, stop, [decoder])
        if item is _END:
            break
        batch.append(item)
        if len(batch) == batch_size:
            yield batch
            batch = []
    _raise_worker_errors(decoder)
    if batch:
        yield batch


def _model_batch(
    batch: list[_Decoded],
    predict: Callable[[torch.Tensor], torch.Tensor],
    stage,
    times: StageTimes,
) -> list[TemporalItem]:
    """Model step on a batch: ab on the frames the stage needs it for (every
    ``stage.model_every``-th), handed on with each frame's working-size L."""
    t0 = time.perf_counter()
    L = torch.cat([d.L for d in batch])
    every = stage.model_every  # batches start at multiples of it: frame i is due if i % every == 0
    if getattr(stage, "predicts", False):  # the steering stage runs the (guided) model itself
        ab = L.new_zeros(L.shape[0], 2, *L.shape[-2:])
    else:
        ab = predict(L[::every] if every > 1 else L)
    L = L.to(ab.device)
    times.colorize += time.perf_counter() - t0
    return [
        TemporalItem(d.frame.index, d.frame.time, L[i],
                     ab[i // every] if i % every == 0 else None,
                     payload=(d.frame, d.guide, d.unit))
        for i, d in enumerate(batch)
    ]


def _predictor(
    colorizer: Colorizer, info: VideoInfo, settings: PipelineSettings
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model step on (B, 1, h, w) working-size L in the coded orientation -> (B, 2, h, w) ab:
    frames turned upright for the model and back, the preset's saturation applied. One call at
    a time: the temporal thread may ask for a frame while the model thread runs a batch."""
    lock = threading.Lock()

    def predict(L: torch.Tensor) -> torch.Tensor:
        with lock:
            ab = rotate(colorizer.predict(rotate(L, info.rotation)), info.rotation, undo=True)
        return ab * settings.saturation if settings.saturation != 1.0 else ab

    return predict


def _colorizer(model: str, options: ColorizeOptions, settings: PipelineSettings,
               given: Colorizer | None = None) -> Colorizer:
    """``given`` set to this preset's working size, else ``model`` loaded as the options say."""
    if given is not None:
        given.working_short_side = settings.working_short_side
        return given
    return Colorizer.load(model, device=options.device,
                          working_short_side=settings.working_short_side,
                          precision=settings.precision)


def colorize_image(
    src: Path | str,
    dest: Path | str,
    options: ColorizeOptions = ColorizeOptions(),
    *,
    colorizer: Colorizer | None = None,
) -> Path:
    """Colour a still image; same size, its Lab lightness kept."""
    src, dest = Path(src), Path(dest)
    settings = options.settings()
    image = load_image(src)
    _check_dest_kind(src, dest, image=True)
    check_output_path(dest, inputs=[src], overwrite=options.overwrite)
    colorizer = _colorizer(options.model, options, settings, colorizer)
    colorizer.use_fade(False)  # a still is judged alone: the model's own colour
    rgb = colorize_rgb_array(colorizer, image.rgb, saturation=settings.saturation)
    return write_image(dest, rgb, alpha=image.alpha, inputs=[src], overwrite=options.overwrite)


def colorize_animation(
    src: Path | str,
    dest: Path | str,
    options: ColorizeOptions = ColorizeOptions(),
    *,
    colorizer: Colorizer | None = None,
) -> VideoResult:
    """Colour an animated GIF, APNG or WebP back to an animated image: the film pipeline (so
    the temporal stage steadies it) into a lossless intermediate, then every frame with its
    own duration and the source's loop count."""
    src, dest = Path(src), Path(dest)
    check_output_path(dest, inputs=[src], overwrite=options.overwrite)
    _check_dest_kind(src, dest, image=False)
    try:
        tmp_dir = tempfile.TemporaryDirectory(prefix=".vidcolor-anim-", dir=dest.parent)
    except OSError as e:
        raise translate_os_error(e, dest) from e
    with tmp_dir as tmp:
        mid = Path(tmp) / "frames.mkv"
        lossless = dataclasses.replace(options, codec="libx264", crf=0, overwrite=True)
        result = colorize_video(src, mid, lossless, colorizer=colorizer)
        frames, times, last = [], [], Fraction(1, 10)
        with av.open(str(mid)) as container:
            for f in container.decode(video=0):
                frames.append(f.to_ndarray(format="rgb24"))
                times.append(Fraction(f.pts) * f.time_base)
                if f.duration:
                    last = Fraction(f.duration) * f.time_base
        steps = [b - a for a, b in itertools.pairwise(times)]
        durations = [round(1000 * d) for d in [*steps, last]]
        write_animation(dest, frames, durations, loop=animation_loop(src), inputs=[src],
                        overwrite=options.overwrite)
    return dataclasses.replace(result, output=dest)


def _check_dest_kind(src: Path, dest: Path, *, image: bool) -> None:
    """A film needs a video file name and a photo an image file name (checked before the model)."""
    if image and not is_image_path(dest):
        exts = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise OutputError(f"{dest}: not an image file name for the image {src} (use {exts})")
    if not image and dest.suffix.lower() in ANIMATION_FORMATS and is_animated(src):
        return  # an animation back to an animated image
    if not image and is_image_path(dest):
        raise OutputError(
            f"{dest}: an image file name for the film {src}; use .mp4, .mkv, .mov, .avi or .webm"
        )
    if not image:
        check_video_name(dest)


def _check_input(src: Path, options: ColorizeOptions | None = None) -> bool:
    """Fail fast on an unusable input (InputError), or a --start past a film's end; returns
    True for a still image."""
    if not src.exists():
        hint = " (broken symlink)" if src.is_symlink() else ""
        raise InputError(f"{src}: no such file{hint}")
    if src.is_dir():
        raise InputError(f"{src}: is a directory, not a film or image")
    if is_image_path(src) and not is_animated(src):
        try:
            with Image.open(src) as img:
                img.size  # noqa: B018 - the header alone tells a real image
        except PermissionError as e:
            raise InputError(f"{src}: permission denied reading the image") from e
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
            raise InputError(
                f"{src}: not a readable image ({src.stat().st_size} bytes; {e})"
            ) from e
        return True
    info = probe_video(src)
    start = options.start if options is not None else None
    if start is not None and info.duration is not None and start >= info.duration:
        raise InputError(f"{src}: --start {float(start):g} s is past the end of the film, which "
                         f"is {float(info.duration):.2f} s long")
    return False


def _names_folder(out: Path | str) -> bool:
    """True if ``out`` names a folder: an existing one, or a path written with a trailing slash."""
    return Path(out).is_dir() or str(out).endswith(("/", os.sep))


def output_for(src: Path, out: Path | str, *, many: bool) -> Path:
    """Destination of one input: ``out`` itself, or ``out/<input name>`` for a folder output."""
    if many or _names_folder(out):
        return Path(out) / src.name
    return Path(out)


def colorize_paths(
    inputs: Sequence[Path | str], out: Path | str, options: ColorizeOptions
) -> list[VideoResult | Path]:
    """Colour several files with one model load; ``out`` is a folder when there are several.

    ``out`` names a folder when it exists as one or ends with '/'; a missing folder is created.
    Every input and output is checked before the (slow) model load.
    """
    inputs = [Path(p) for p in inputs]
    settings = options.settings()
    if not inputs:
        raise UsageError("no input given")
    many = len(inputs) > 1
    folder = many or _names_folder(out)
    names = [p.name for p in inputs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if many and dupes:
        raise UsageError(f"two inputs share the file name {dupes[0]}: their outputs would collide")
    images = [_check_input(src, options) for src in inputs]
    create = folder and _check_new_folder(Path(out))
    for src, image in zip(inputs, images, strict=True):
        dest = output_for(src, out, many=many)
        if not create:  # a folder still to be made holds nothing to collide with
            check_output_path(dest, inputs=inputs, overwrite=options.overwrite)
        _check_dest_kind(src, dest, image=image)
    model = options.model_for_film if not all(images) else options.model
    colorizer = _colorizer(model, options, settings)
    if create:
        try:
            Path(out).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"{out}: cannot create the output folder ({e.strerror or e})") from e
    results: list[VideoResult | Path] = []
    for src, image in zip(inputs, images, strict=True):
        dest = output_for(src, out, many=many)
        if image:
            results.append(colorize_image(src, dest, options, colorizer=colorizer))
        elif dest.suffix.lower() in ANIMATION_FORMATS:
            results.append(colorize_animation(src, dest, options, colorizer=colorizer))
        else:
            results.append(colorize_video(src, dest, options, colorizer=colorizer))
    return results


def _check_new_folder(out: Path) -> bool:
    """Whether the output folder must be created; OutputError if it is no folder or cannot be."""
    if out.is_dir():
        return False
    if out.exists() or out.is_symlink():
        raise OutputError(f"{out}: not a folder (several inputs need -o DIR/)")
    base = out.absolute().parent
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir():
        raise OutputError(f"{out}: cannot create the output folder: {base} is not a directory")
    if not os.access(base, os.W_OK | os.X_OK):
        raise OutputError(
            f"{out}: cannot create the output folder: {base} is not writable (permission denied)"
        )
    return True
