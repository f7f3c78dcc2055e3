"""Units of batch work and how a worker runs them: any engine (in-process, process pool, Ray
actor) ships a :class:`Task` to :func:`execute` and gets a small :class:`TaskResult` back."""

from __future__ import annotations

import errno
import logging
import os
import socket
import time
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

from vidcolor.batch import shots
from vidcolor.colorize import Colorizer
from vidcolor.errors import VidcolorError
from vidcolor.media.atomic import translate_os_error
from vidcolor.pipeline import ColorizeOptions, colorize_image, colorize_video

log = logging.getLogger("vidcolor")

ITEM, SCAN, SEGMENT, JOIN = "item", "scan", "segment", "join"


@dataclass(frozen=True)
class Task:
    """One unit of work: a whole file, a scan window, a segment of a split film, or its join."""

    kind: str
    key: str
    src: Path
    dest: Path
    media: str = "video"
    part: int = 0
    """Scan window or segment number."""
    start: Fraction | None = None
    duration: Fraction | None = None
    plan: object = None
    """The film's :class:`~vidcolor.batch.shots.SplitPlan` (join tasks)."""
    threshold: float = 0.3
    """Cut threshold (scan tasks)."""


@dataclass
class TaskResult:
    """What a task did; ``retryable`` is False for errors that would recur (bad input)."""

    task: Task
    ok: bool
    frames: int = 0
    seconds: float = 0.0
    error: str | None = None
    retryable: bool = False
    scan: object = None
    """The :class:`~vidcolor.batch.shots.ScanResult` of a scan task."""
    worker: str = ""
    error_type: str | None = None
    """Class name of the error (e.g. 'JoinError', which the driver answers with a whole run)."""
    disk_full: bool = False
    """The output device ran out of space: the driver stops the batch."""


_COLORIZERS: dict[tuple, Colorizer] = {}
"""Models loaded by this worker process, kept for its next tasks."""


def get_colorizer(options: ColorizeOptions) -> Colorizer:
    """This process's Colorizer for the options' model and device (loaded once)."""
    key = (str(options.model), options.device)
    if key not in _COLORIZERS:
        settings = options.settings()
        _COLORIZERS[key] = Colorizer.load(
            options.model, device=options.device, working_short_side=settings.working_short_side,
            precision=settings.precision
        )
    return _COLORIZERS[key]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _disk_full(exc: BaseException) -> bool:
    """True if the error (or what caused it) is ENOSPC / EDQUOT."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        seen = seen.__cause__ or seen.__context__
    return "disk full" in str(exc)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    msg = text[0] if text else ""
    if isinstance(exc, VidcolorError):
        return msg or type(exc).__name__
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


_live = None
"""Frames written so far by this process's tasks, shared with the batch's progress bar (a
``multiprocessing.Value``; None: not counted)."""


def set_live_counter(counter) -> None:
    """Count the frames this process writes into ``counter`` (shared with the batch)."""
    global _live
    _live = counter


def _live_progress():
    """A ``colorize_video`` progress callback adding each new frame to the shared counter."""
    last = [0]

    def progress(done: int, total: int | None) -> None:
        if _live is not None:
            with _live.get_lock():
                _live.value += done - last[0]
        last[0] = done

    return progress


def execute(task: Task, options: ColorizeOptions) -> TaskResult:
    """Run one task in this process; failures come back as results, never as exceptions
    (except Ctrl-C), so one broken file cannot stop the batch."""
    t0 = time.perf_counter()
    opts = replace(options, overwrite=True, quiet=True)
    try:
        frames = 0
        scan = None
        try:
            task.dest.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise translate_os_error(e, task.dest) from e
        if task.kind == ITEM and task.media == "image":
            colorize_image(task.src, task.dest, opts, colorizer=get_colorizer(opts))
            frames = 1
        elif task.kind == ITEM:
            frames = colorize_video(task.src, task.dest, opts, colorizer=get_colorizer(opts),
                                    progress=_live_progress()).frames
        elif task.kind == SCAN:
            scan = shots.scan_window(task.src, task.start or Fraction(0), task.duration,
                                     threshold=task.threshold)
        elif task.kind == SEGMENT:
            seg_opts = replace(opts, start=task.start, duration=task.duration)
            frames = colorize_video(task.src, task.dest, seg_opts,
                                    colorizer=get_colorizer(opts), progress=_live_progress()).frames
        elif task.kind == JOIN:
            shots.join_segments(task.src, task.plan, task.dest)  # type: ignore[arg-type]
        else:
            raise ValueError(f"unknown task kind {task.kind!r}")
    except Exception as exc:
        if not isinstance(exc, VidcolorError):
            log.debug("%s: %s failed", task.key, task.kind, exc_info=True)
        return TaskResult(
            task, False, seconds=time.perf_counter() - t0, error=_one_line(exc),
            retryable=not isinstance(exc, VidcolorError) or exc.retryable, worker=worker_name(),
            error_type=type(exc).__name__, disk_full=_disk_full(exc),
        )
    return TaskResult(task, True, frames=frames, seconds=time.perf_counter() - t0, scan=scan,
                      worker=worker_name())
