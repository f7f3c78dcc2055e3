"""Progress of long work: a tqdm bar on a terminal; on a pipe, a log file or with ``NO_COLOR``
set, a plain log line now and then (no bar noise in logs, still frames, speed and ETA)."""

from __future__ import annotations

import logging
import os
import sys
import time

from tqdm import tqdm

log = logging.getLogger("vidcolor")

PLAIN_EVERY = 10.0
"""Seconds between plain progress lines."""


def interactive() -> bool:
    """Whether stderr is a terminal that wants a live bar."""
    stream = sys.stderr
    return (hasattr(stream, "isatty") and stream.isatty() and "NO_COLOR" not in os.environ
            and os.environ.get("TERM") != "dumb")


class PlainProgress:
    """The part of tqdm's interface vidcolor uses, as an occasional log line."""

    def __init__(self, *, total: int | None, desc: str, unit: str, initial: int = 0) -> None:
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self._start = self._last = time.monotonic()
        self._initial = initial
        self._closed = False

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self._last >= PLAIN_EVERY:
            self._last = now
            log.info("%s", self._line(now))

    def _line(self, now: float) -> str:
        rate = (self.n - self._initial) / max(1e-6, now - self._start)
        done = f"{self.n}/{self.total}" if self.total else str(self.n)
        eta = ""
        if self.total and rate > 0 and self.n < self.total:
            m, s = divmod(int((self.total - self.n) / rate), 60)
            eta = f", ETA {m}:{s:02d}"
        return f"{self.desc}: {done} {self.unit}s, {rate:.1f} {self.unit}/s{eta}"

    def set_postfix(self, **kw: object) -> None:
        pass

    def write(self, text: str) -> None:
        log.info("%s", text)

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        """The last line: where the work ended (the total corrected to what was done)."""
        if self.n > self._initial and not self._closed:
            log.info("%s", self._line(time.monotonic()).split(", ETA")[0])
        self._closed = True


def progress_bar(
    *, total: int | None, desc: str, unit: str = "frame", quiet: bool = False, initial: int = 0
) -> tqdm | PlainProgress:
    """A live bar on a terminal, plain lines elsewhere, nothing when ``quiet``."""
    if quiet:
        return tqdm(total=total, disable=True)
    if interactive():
        return tqdm(total=total, desc=desc, unit=unit, initial=initial, dynamic_ncols=True)
    return PlainProgress(total=total, desc=desc, unit=unit, initial=initial)
