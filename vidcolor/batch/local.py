"""Local engine: tasks run in this process (one worker) or in a pool of worker processes, each
loading the model once; a worker that dies fails only the tasks it held (they are retried).
Workers exit with the batch process, so a killed batch leaves no orphan writing."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import select
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from vidcolor.batch.tasks import Task, TaskResult, execute, set_live_counter
from vidcolor.pipeline import ColorizeOptions

log = logging.getLogger("vidcolor")


def _exit_with(pid: int) -> None:
    """End this worker the moment process ``pid`` (the batch) ends, even by kill -9: no orphan
    keeps writing into the output folder or holding a model. (A forkserver worker's parent is
    the server, which in turn waits for its workers, so the parent's death is not enough.)"""
    try:
        fd: int | None = os.pidfd_open(pid)  # Linux >= 5.3: readable once pid has exited
    except ProcessLookupError:
        os._exit(1)
    except (AttributeError, OSError):
        fd = None

    def watch() -> None:
        if fd is not None:
            select.select([fd], [], [])
        else:
            while True:
                time.sleep(0.5)
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                except PermissionError:
                    continue
        os._exit(1)

    threading.Thread(target=watch, name="vidcolor-batch-watch", daemon=True).start()


def init_worker(
    threads: int | None, level: int, batch_pid: int | None = None, live=None
) -> None:
    """Worker process set-up: exit with the batch, torch threads (cores shared between
    workers), logging, and the shared count of frames written (the batch's progress)."""
    if batch_pid is not None:
        _exit_with(batch_pid)
    if live is not None:
        set_live_counter(live)
    if threads is not None and "OMP_NUM_THREADS" not in os.environ:
        import torch

        torch.set_num_threads(threads)
    logger = logging.getLogger("vidcolor")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("vidcolor: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(max(level, logging.WARNING) if level > logging.DEBUG else level)


def _context() -> multiprocessing.context.BaseContext:
    """Forkserver where there is one: a clean single-threaded server imports torch and vidcolor
    once and forks each worker from that (fast; no fork of this threaded process). Else spawn.

    Either way, a script that calls :func:`run_batch` with several workers needs the usual
    ``if __name__ == "__main__":`` guard.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["vidcolor.batch.tasks"])  # no effect once the server runs
    return ctx


class LocalEngine:
    """Runs tasks here (``workers == 1``) or in a pool of ``workers`` processes."""

    name = "local"

    def __init__(self, options: ColorizeOptions, workers: int) -> None:
        self.options = options
        self.capacity = workers
        self._queue: deque[Task] = deque()
        self._futures: dict[Future, Task] = {}
        self._current = ""
        self.live = _context().Value("q", 0)
        """Frames written by every task so far, finished or not (for the progress bar)."""
        if workers == 1:
            set_live_counter(self.live)
        self._pool: ProcessPoolExecutor | None = self._new_pool() if workers > 1 else None

    @property
    def live_frames(self) -> int:
        return int(self.live.value)

    @property
    def running(self) -> list[str]:
        """Names of the files being worked on now (for the progress bar)."""
        if self._pool is None:
            return [self._current] if self._current else []
        return [t.src.name for f, t in self._futures.items() if f.running()]

    def _new_pool(self) -> ProcessPoolExecutor:
        threads = max(1, (os.cpu_count() or 1) // self.capacity)
        return ProcessPoolExecutor(
            self.capacity,
            mp_context=_context(),
            initializer=init_worker,
            initargs=(threads, logging.getLogger("vidcolor").getEffectiveLevel(), os.getpid(),
                      self.live),
        )

    @property
    def in_flight(self) -> int:
        """Tasks submitted and not yet returned by :meth:`wait`."""
        return len(self._queue) + len(self._futures)

    def submit(self, task: Task) -> None:
        """Start a task (in-process tasks start when :meth:`wait` is called)."""
        if self._pool is None:
            self._queue.append(task)
        else:
            self._futures[self._pool.submit(execute, task, self.options)] = task

    def wait(self) -> list[TaskResult]:
        """Block until at least one task finishes; return the finished ones."""
        if self._pool is None:
            logger = logging.getLogger("vidcolor")
            level = logger.level
            if logger.getEffectiveLevel() == logging.INFO:  # per-film details: the bar says it
                logger.setLevel(logging.WARNING)
            task = self._queue.popleft()
            self._current = task.src.name
            try:
                return [execute(task, self.options)]
            finally:
                self._current = ""
                logger.setLevel(level)
        done, _ = wait(self._futures, return_when=FIRST_COMPLETED)
        results: list[TaskResult] = []
        broken = False
        for fut in done:
            task = self._futures.pop(fut)
            try:
                results.append(fut.result())
            except BrokenProcessPool:
                broken = True
                results.append(_lost(task))
        if broken:  # every task still in the pool is lost with it; start a fresh pool
            results.extend(_lost(t) for t in self._futures.values())
            self._futures.clear()
            self._shutdown(kill=True)
            self._pool = self._new_pool()
        return results

    def _shutdown(self, *, kill: bool) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if kill:  # our own worker processes, by pid
            for proc in list(getattr(pool, "_processes", {}).values()):
                with contextlib.suppress(Exception):
                    proc.kill()
        pool.shutdown(wait=not kill, cancel_futures=True)

    def close(self, *, interrupted: bool = False) -> None:
        """Stop the workers (killed at once when interrupted; their temp files are removed
        by the next run)."""
        self._shutdown(kill=interrupted)


def _lost(task: Task) -> TaskResult:
    return TaskResult(task, False, error="worker process died (killed, or out of memory)",
                      retryable=True)
