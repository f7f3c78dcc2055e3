"""Ray engine: a pool of actors, one per GPU (or CPU) worker, each holding a loaded model;
tasks go to idle actors and results stream back with ``ray.wait`` as they finish.

Without an address a private local Ray instance is started (``num_cpus=workers``) and shut
down at the end; with one, the batch joins that cluster. On a cluster every node needs
vidcolor installed and the source and output folders at the same paths (shared storage).
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any

import vidcolor
from vidcolor.batch.local import init_worker
from vidcolor.batch.tasks import Task, TaskResult, execute, worker_name
from vidcolor.errors import UsageError
from vidcolor.pipeline import ColorizeOptions

log = logging.getLogger("vidcolor")

CONNECT_TIMEOUT = 5.0
"""Seconds to wait for a TCP answer from --ray-address (Ray itself retries for minutes)."""
MAX_CPUS_PER_GPU = 8
"""CPUs reserved per GPU actor, for decoding, optical flow and encoding beside the model."""


def require_ray() -> Any:
    """The ray module, or a UsageError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UsageError(
            "--engine ray needs Ray, which is not installed: pip install 'vidcolor[ray]'"
        ) from None
    return ray


def check_reachable(address: str) -> None:
    """Fail fast, in one line, when nothing answers at a host:port Ray address."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--ray-address must be host:port (or ray://host:port), got {address!r}")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise UsageError(
            f"cannot reach a Ray cluster at {address} ({reason}); check --ray-address, "
            "or start one with 'ray start --head'"
        ) from None


class _Actor:
    """One worker: keeps its model between tasks (see ``tasks.get_colorizer``)."""

    def __init__(self, options: ColorizeOptions, level: int) -> None:
        init_worker(None, level)
        self.options = options

    def run(self, task: Task) -> TaskResult:
        return execute(task, self.options)

    def name(self) -> str:
        return worker_name()


class RayEngine:
    """Actor pool on a Ray cluster (joined) or a local instance (started and stopped here)."""

    name = "ray"

    def __init__(
        self, options: ColorizeOptions, workers: int, *, address: str | None, retry: int
    ) -> None:
        ray = require_ray()
        self.ray = ray
        self.options = options
        self._owns = False
        level = logging.getLogger("vidcolor").getEffectiveLevel()
        if not ray.is_initialized():
            quiet = logging.WARNING if level > logging.DEBUG else logging.INFO
            try:
                if address:
                    check_reachable(address)
                    ray.init(address=address, logging_level=quiet)
                else:
                    pkg_root = str(Path(vidcolor.__file__).resolve().parent.parent)
                    path = os.pathsep.join(p for p in (pkg_root, os.environ.get("PYTHONPATH"))
                                           if p)
                    ray.init(num_cpus=workers, include_dashboard=False, logging_level=quiet,
                             runtime_env={"env_vars": {"PYTHONPATH": path}})
                    self._owns = True
            except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
                where = address or "a local Ray instance"
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise UsageError(f"cannot start Ray on {where}: {first}") from None
        res = ray.cluster_resources()
        gpus, cpus = int(res.get("GPU", 0)), int(res.get("CPU", 0))
        if gpus:
            n = min(workers, gpus)
            if n < workers:
                log.warning("--workers %d but the cluster has %d GPUs: using %d", workers, gpus, n)
            per = {"num_gpus": 1, "num_cpus": max(1, min(MAX_CPUS_PER_GPU, cpus // gpus))}
        else:
            n = min(workers, cpus) if cpus else workers
            if n < workers:
                log.warning("--workers %d but the cluster has %d CPUs: using %d", workers, cpus, n)
            per = {"num_cpus": 1}
        self._actor_cls = ray.remote(_Actor).options(
            **per, max_restarts=retry, max_task_retries=retry
        )
        self._level = level
        self.capacity = max(1, n)
        self._idle = [self._new_actor() for _ in range(self.capacity)]
        self._inflight: dict[Any, tuple[Any, Task]] = {}
        log.info("Ray: %d actor(s), each with %s", self.capacity,
                 ", ".join(f"{k}={v}" for k, v in per.items()))

    def _new_actor(self) -> Any:
        return self._actor_cls.remote(self.options, self._level)

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    def submit(self, task: Task) -> None:
        """Hand a task to an idle actor."""
        actor = self._idle.pop()
        self._inflight[actor.run.remote(task)] = (actor, task)

    def wait(self) -> list[TaskResult]:
        """Block until at least one task finishes; return the finished ones."""
        ray = self.ray
        ready, _ = ray.wait(list(self._inflight), num_returns=1)
        results = []
        for ref in ready:
            actor, task = self._inflight.pop(ref)
            try:
                results.append(ray.get(ref))
            except ray.exceptions.RayActorError as e:  # worker lost beyond its retries
                results.append(TaskResult(task, False, error=f"Ray worker lost ({_first(e)})",
                                          retryable=True))
                actor = self._new_actor()
            except ray.exceptions.RayError as e:
                results.append(TaskResult(task, False, error=f"Ray task failed ({_first(e)})",
                                          retryable=True))
            self._idle.append(actor)
        return results

    def close(self, *, interrupted: bool = False) -> None:
        """Stop the actors; shut the local instance down if this engine started it."""
        for actor in [*self._idle, *(a for a, _ in self._inflight.values())]:
            try:
                self.ray.kill(actor)
            except Exception as e:
                log.debug("ray.kill: %s", e)
        self._idle.clear()
        self._inflight.clear()
        if self._owns:
            self.ray.shutdown()


def _first(e: BaseException) -> str:
    lines = [s for s in str(e).strip().splitlines() if s.strip()]
    return lines[0][:200] if lines else type(e).__name__
