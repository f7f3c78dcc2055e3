"""``vidcolor batch SRC -o OUTDIR``: colour a whole archive, resumably, on this machine or Ray.

Outputs mirror the source tree (images keep their format; films take the preset's container).
Every item runs in isolation: a broken file is reported and the batch goes on. A state file in
OUTDIR records finished items with their input's size, mtime and content digest, plus the
settings, so a rerun skips them and redoes changed or interrupted ones (all of them when the
settings change). Films longer than ``split_seconds`` are split at shot cuts, the segments
coloured in parallel and joined losslessly (see :mod:`vidcolor.batch.shots`).

Engines: ``local`` (this process, or a pool of ``workers`` processes) and ``ray``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from vidcolor.batch import shots
from vidcolor.batch.items import Item, discover, probe_length
from vidcolor.batch.state import (
    BatchState,
    batch_lock,
    fingerprint,
    remove_stale_temps,
    settings_identity,
    write_json_atomic,
)
from vidcolor.batch.tasks import ITEM, JOIN, SCAN, SEGMENT, Task, TaskResult
from vidcolor.errors import OutputError
from vidcolor.options import ENGINES, BatchOptions
from vidcolor.progress import PLAIN_EVERY, interactive

log = logging.getLogger("vidcolor")

@dataclass
class ItemReport:
    """One line of the report."""

    input: str
    output: str
    status: str = "pending"
    """ok | failed | skipped (finished by an earlier run) | pending (the batch was stopped)."""
    frames: int = 0
    seconds: float = 0.0
    """Worker seconds spent on the item (summed over its tasks when it was split)."""
    error: str | None = None
    segments: int | None = None
    """Segments the film was split into (None: coloured in one piece)."""


@dataclass
class _Work:
    """Driver-side progress of one item."""

    item: Item
    report: ItemReport
    length: Fraction | None = None
    est_frames: int = 1
    fingerprint: dict[str, Any] | None = None
    attempts: dict[tuple[str, int], int] = field(default_factory=dict)
    scans: dict[int, shots.ScanResult] = field(default_factory=dict)
    n_scans: int = 0
    plan: shots.SplitPlan | None = None
    segments_left: int = 0


def run_batch(src: Path | str, outdir: Path | str, options: BatchOptions = BatchOptions()) -> int:
    """Colour every media file of ``src`` into ``outdir``; returns the exit code (1 if any
    item failed, else 0)."""
    # normalised once (``../out``, symlinks in the middle): every output is named from these
    src, outdir = Path(os.path.abspath(src)), Path(os.path.abspath(outdir))
    copts = options.colorize
    settings = copts.settings()
    if outdir.exists() and not outdir.is_dir():
        raise OutputError(f"{outdir}: exists and is not a folder")
    root, items = discover(src, outdir, container=settings.container, pattern=options.pattern)
    if options.dry_run:
        return _dry_run(items, settings.container)
    identity = settings_identity(copts)  # a bad --model fails here, before any work
    if options.engine == "ray":  # fail fast: Ray missing, or nothing at the address
        from vidcolor.batch.ray_engine import check_reachable, require_ray

        ray = require_ray()
        if options.ray_address and not ray.is_initialized():
            check_reachable(options.ray_address)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{outdir}: cannot create the output folder ({e.strerror})") from e
    with batch_lock(outdir):
        return _Batch(root, outdir, items, identity, options).run()


def _dry_run(items: list[Item], container: str) -> int:
    """``batch --dry-run``: every item's plan (as ``vidcolor probe``) and where it would go."""
    from vidcolor.media.probe import probe_file

    bad = 0
    for it in items:
        plan = probe_file(it.src, "." + container)
        print(plan.format() + ("" if plan.error else f"\n  -> {it.dest}"))
        bad += plan.error is not None
    print(f"{len(items)} items: {len(items) - bad} would be coloured, {bad} cannot be")
    return 1 if bad else 0


class _Batch:
    """The driver: decides what to do, feeds the engine, records results."""

    def __init__(self, root: Path, outdir: Path, items: list[Item], identity: dict[str, Any],
                 options: BatchOptions) -> None:
        self.root, self.outdir, self.items, self.options = root, outdir, items, options
        self.copts = options.colorize
        self.identity = identity
        self.state = BatchState(outdir, identity)
        self.reports = [ItemReport(str(it.src), str(it.dest)) for it in items]
        self.ready: deque[Task] = deque()
        self.works: dict[str, _Work] = {}
        self.frames_done = 0
        self.frames_total = 0
        self.n_closed = 0
        self.n_failed = 0
        self.fatal: str | None = None
        self.t0 = time.perf_counter()

    # -- set-up ----------------------------------------------------------------------------

    def _prepare(self) -> list[_Work]:
        removed = remove_stale_temps(self.outdir)
        if removed:
            log.info("removed %d temp file(s) left by an interrupted run", removed)
        if self.state.reset_reason and self.state.path.exists():
            log.warning("%s: %s; redoing every item", self.state.path, self.state.reset_reason)
        todo: list[_Work] = []
        for item, rep in zip(self.items, self.reports, strict=True):
            rec = self.state.finished(item.key, item.src)
            if rec is not None:
                rep.status, rep.frames = "skipped", int(rec.get("frames", 0))
                continue
            self.state.forget(item.key)
            work = _Work(item, rep)
            self.works[item.key] = work
            if not item.src.is_file():
                why = "is a directory" if item.src.is_dir() else "no such file"
                self._fail(work, f"{item.src}: {why}")
                continue
            try:
                work.fingerprint = fingerprint(item.src)
            except OSError as e:
                self._fail(work, f"{item.src}: cannot read ({e.strerror})")
                continue
            if item.media == "video":
                work.length, frames = probe_length(item.src)
                work.est_frames = frames or 0
            todo.append(work)
        self.frames_total = sum(w.est_frames for w in todo)
        return todo

    def _split_worthy(self, work: _Work) -> bool:
        o = self.options
        return (
            work.item.media == "video"
            and o.workers > 1
            and self.copts.start is None
            and self.copts.duration is None
            and work.length is not None
            and work.length > Fraction(o.split_seconds)
        )

    def _first_tasks(self, work: _Work) -> list[Task]:
        it = work.item
        if not self._split_worthy(work):
            return [Task(ITEM, it.key, it.src, it.dest, it.media)]
        assert work.length is not None
        windows = shots.scan_windows(work.length, self.options.workers)
        work.n_scans = len(windows)
        thr = self.copts.settings().cut_threshold
        return [Task(SCAN, it.key, it.src, it.dest, part=i, start=s, duration=d, threshold=thr)
                for i, (s, d) in enumerate(windows)]

    # -- main loop -------------------------------------------------------------------------

    def run(self) -> int:
        todo = self._prepare()
        skipped = sum(r.status == "skipped" for r in self.reports)
        if skipped:
            log.info("%d of %d item(s) already done (state in %s)", skipped, len(self.items),
                     self.state.path.name)
        if not self.items:
            log.warning("%s: no images or films found", self.root)
        interrupted = False
        engine = None
        try:
            if todo:
                engine = self._engine()
                for work in todo:
                    self.ready.extend(self._first_tasks(work))
                with _redirect_logs(), tqdm(
                    total=len(todo), unit="item", desc="batch", dynamic_ncols=True,
                    disable=self.copts.quiet or not interactive(), file=sys.stderr,
                ) as bar, _ticking(bar, lambda: self._postfix(engine), plain=None if (
                        self.copts.quiet or interactive()) else (
                        lambda: f"batch: {self.n_closed}/{len(todo)} items, "
                        f"{self._postfix(engine)}")):
                    self._loop(engine, bar)
        except BaseException:
            interrupted = True
            raise
        finally:
            if engine is not None:
                engine.close(interrupted=interrupted)
            for work in self.works.values():
                if work.plan is not None and work.report.status != "ok":
                    shots.remove_segments(work.item.dest, work.plan)
            self.state.save(force=True)
            self._write_report(interrupted)
        if self.fatal:
            raise OutputError(self.fatal)
        return self._summary()

    def _engine(self):  # -> LocalEngine | RayEngine
        o = self.options
        if o.engine == "ray":
            from vidcolor.batch.ray_engine import RayEngine

            return RayEngine(self.copts, o.workers, address=o.ray_address, retry=o.retry)
        from vidcolor.batch.local import LocalEngine

        return LocalEngine(self.copts, o.workers)

    def _loop(self, engine, bar: tqdm) -> None:
        while (self.ready and not self.fatal) or engine.in_flight:
            while self.ready and not self.fatal and engine.in_flight < engine.capacity:
                task = self.ready.popleft()
                if self.works[task.key].report.status != "failed":
                    engine.submit(task)
            if not engine.in_flight:
                break
            for result in engine.wait():
                closed = self.n_closed
                self._on_result(result)
                if self.n_closed > closed:
                    bar.update(self.n_closed - closed)
                bar.set_postfix_str(self._postfix(engine), refresh=False)
                self.state.save()

    def _postfix(self, engine=None) -> str:
        """Files are the bar; frames (counted live, while films are running), speed, ETA."""
        elapsed = time.perf_counter() - self.t0
        done = max(self.frames_done, getattr(engine, "live_frames", 0))
        done = min(done, self.frames_total) if self.frames_total else done
        fps = done / elapsed if elapsed > 0 else 0.0
        text = f"{done}/{self.frames_total} frames, {fps:.1f} fps"
        left = self.frames_total - done
        if fps > 0 and left > 0:
            text += f", ETA {_clock(left / fps)}"
        now = getattr(engine, "running", [])
        if now:
            text += f", now {', '.join(now[:3])}" + (f" +{len(now) - 3}" if len(now) > 3 else "")
        return text + (f", {self.n_failed} failed" if self.n_failed else "")

    # -- results ---------------------------------------------------------------------------

    def _on_result(self, res: TaskResult) -> None:
        task = res.task
        work = self.works[task.key]
        work.report.seconds += res.seconds
        if work.report.status == "failed":
            return  # another part of this film already failed
        if not res.ok:
            self._on_failure(work, res)
            return
        self.frames_done += res.frames
        if task.kind == ITEM:
            work.report.frames = res.frames
            self._succeed(work)
        elif task.kind == SCAN:
            work.scans[task.part] = res.scan  # type: ignore[assignment]
            if len(work.scans) == work.n_scans:
                self._plan(work)
        elif task.kind == SEGMENT:
            work.report.frames += res.frames
            work.segments_left -= 1
            if work.segments_left == 0:
                it = work.item
                self.ready.appendleft(Task(JOIN, it.key, it.src, it.dest, plan=work.plan))
        elif task.kind == JOIN:
            self._succeed(work)

    def _plan(self, work: _Work) -> None:
        it = work.item
        merged = shots.merge_scans([work.scans[i] for i in range(work.n_scans)])
        work.scans.clear()
        assert work.length is not None
        target = min(self.options.chunk_seconds, float(work.length) / self.options.workers)
        plan = shots.make_plan(merged, target)
        if plan is None:
            log.info("%s: not split (%s)", it.key, "damaged or irregular timestamps"
                     if not merged.clean else "too short")
            self.ready.appendleft(Task(ITEM, it.key, it.src, it.dest, it.media))
            return
        work.plan = plan
        work.report.segments = len(plan.segments)
        work.segments_left = len(plan.segments)
        self.frames_total += len(merged.pts) - work.est_frames  # exact count now
        work.est_frames = len(merged.pts)
        log.info("%s: %d frames in %d segments (%d at shot cuts, %d fixed seams)", it.key,
                 plan.frames, len(plan.segments), len(plan.segments) - 1 - plan.seams, plan.seams)
        if plan.seams:
            log.warning("%s: %d segment boundaries fall inside shots (no cut near); colour may "
                        "change slightly there", it.key, plan.seams)
        self.ready.extendleft(reversed([
            Task(SEGMENT, it.key, it.src, shots.segment_path(it.dest, s.index), part=s.index,
                 start=s.start, duration=s.duration)
            for s in plan.segments
        ]))

    def _on_failure(self, work: _Work, res: TaskResult) -> None:
        task, it = res.task, work.item
        if task.kind == JOIN and res.error_type == "JoinError":
            log.warning("%s: %s; colouring it in one piece", it.key, res.error)
            if work.plan is not None:
                shots.remove_segments(it.dest, work.plan)
            self.frames_done -= work.report.frames
            work.plan, work.report.segments, work.report.frames = None, None, 0
            self.ready.appendleft(Task(ITEM, it.key, it.src, it.dest, it.media))
            return
        if res.disk_full:
            self.fatal = (f"{self.outdir}: no space left on the device ({res.error}); stopped; "
                          "free some space and rerun to resume")
        n = work.attempts.get((task.kind, task.part), 0)
        if res.retryable and n < self.options.retry and not self.fatal:
            work.attempts[(task.kind, task.part)] = n + 1
            log.warning("%s: %s (attempt %d of %d); retrying", it.key, res.error, n + 1,
                        self.options.retry + 1)
            self.ready.appendleft(task)
            return
        self._fail(work, res.error or "failed")

    def _succeed(self, work: _Work) -> None:
        rep, it = work.report, work.item
        rep.status = "ok"
        self.n_closed += 1
        self.state.record(it.key, {
            "input": str(it.src),
            "output": it.dest.relative_to(self.outdir.absolute()).as_posix(),
            "input_fingerprint": work.fingerprint,
            "frames": rep.frames,
            "seconds": round(rep.seconds, 3),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        })

    def _fail(self, work: _Work, error: str) -> None:
        work.report.status, work.report.error = "failed", error
        self.n_closed += 1
        self.n_failed += 1
        log.error("%s", _with_path(str(work.item.src), error))

    # -- end -------------------------------------------------------------------------------

    def _summary(self) -> int:
        counts = {s: sum(r.status == s for r in self.reports) for s in ("ok", "skipped", "failed")}
        frames = sum(r.frames for r in self.reports if r.status == "ok")
        elapsed = time.perf_counter() - self.t0
        line = (f"batch: {counts['ok']} coloured ({frames} frames), {counts['skipped']} already "
                f"done, {counts['failed']} failed in {_clock(elapsed)}; outputs in {self.outdir}")
        if counts["failed"]:
            log.warning("%s", line)
            for r in self.reports:
                if r.status == "failed":
                    log.warning("  failed: %s", _with_path(r.input, r.error))
            return 1
        log.info("%s", line)
        return 0

    def _write_report(self, interrupted: bool) -> None:
        path = self.options.report
        if path is None:
            return
        data = {
            "source": str(self.root),
            "output": str(self.outdir),
            "engine": self.options.engine,
            "workers": self.options.workers,
            "interrupted": interrupted,
            "seconds": round(time.perf_counter() - self.t0, 3),
            "settings": self.identity,
            "counts": {s: sum(r.status == s for r in self.reports)
                       for s in ("ok", "skipped", "failed", "pending")},
            "items": [{**r.__dict__, "seconds": round(r.seconds, 3)} for r in self.reports],
        }
        try:
            write_json_atomic(path, data)
        except OutputError as e:
            log.error("report not written: %s", e)


def _redirect_logs() -> contextlib.AbstractContextManager:
    """Route vidcolor's console log lines around the progress bar (if they go to a console)."""
    logger = logging.getLogger("vidcolor")
    console = any(isinstance(h, logging.StreamHandler) and h.stream in (sys.stderr, sys.stdout)
                  for h in logger.handlers)
    return logging_redirect_tqdm(loggers=[logger]) if console else contextlib.nullcontext()


def _with_path(path: str, error: str | None) -> str:
    """The error, prefixed with the path unless it already names it."""
    error = error or "failed"
    return error if path in error else f"{path}: {error}"


@contextlib.contextmanager
def _ticking(bar: tqdm, text, *, plain=None, every: float = 1.0):
    """Refresh the bar's frames and ETA every second while a film runs (results arrive only
    when a whole film or segment is done); off a terminal, log ``plain()`` now and then."""
    stop = threading.Event()

    def tick() -> None:
        last = time.monotonic()
        while not stop.wait(every):
            bar.set_postfix_str(text(), refresh=True)
            if plain is not None and time.monotonic() - last >= PLAIN_EVERY:
                last = time.monotonic()
                log.info("%s", plain())

    thread = threading.Thread(target=tick, name="vidcolor-batch-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _clock(seconds: float) -> str:
    s = int(seconds + 0.5)
    if s >= 3600:
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


__all__ = ["ENGINES", "BatchOptions", "ItemReport", "run_batch"]
