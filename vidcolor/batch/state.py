"""Resume state of a batch: which inputs are finished, under which settings (a JSON file in the
output folder, replaced atomically), plus the lock and the clean-up of killed runs' temp files."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

from vidcolor import __version__
from vidcolor.errors import OutputError, UsageError
from vidcolor.media.atomic import translate_os_error
from vidcolor.models import resolve_checkpoint
from vidcolor.models.checkpoint import config_path
from vidcolor.pipeline import ColorizeOptions

log = logging.getLogger("vidcolor")

STATE_NAME = "vidcolor-batch.json"
LOCK_NAME = "vidcolor-batch.lock"
STATE_FORMAT = "vidcolor-batch/1"
HASH_BYTES = 1 << 20
"""Bytes hashed from each end of a file for its content fingerprint."""
SAVE_INTERVAL = 2.0
"""Seconds between state writes (a kill loses at most this much bookkeeping, never output)."""
TEMP_MARK = ".vidcolor-"
"""Temp files of atomic writes are named ``.<name>.vidcolor-<random><ext>`` (media.atomic)."""


def content_digest(path: Path, size: int | None = None) -> str:
    """SHA-256 prefix of the size and the first and last HASH_BYTES of a file."""
    size = path.stat().st_size if size is None else size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(HASH_BYTES))
        if size > HASH_BYTES:
            f.seek(max(HASH_BYTES, size - HASH_BYTES))
            h.update(f.read(HASH_BYTES))
    return h.hexdigest()[:20]


def fingerprint(path: Path) -> dict[str, Any]:
    """Size, mtime (ns) and content digest of an input, as stored in the state file."""
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "digest": content_digest(path, st.st_size)}


def unchanged(path: Path, recorded: dict[str, Any]) -> bool:
    """True if the file still has the recorded size, mtime and digest (stat first: cheap)."""
    try:
        st = path.stat()
        if st.st_size != recorded.get("size") or st.st_mtime_ns != recorded.get("mtime_ns"):
            return False
        return content_digest(path, st.st_size) == recorded.get("digest")
    except OSError:
        return False


def _jsonable(value: Any) -> Any:
    if isinstance(value, Fraction):
        return str(value)
    if isinstance(value, Path):
        return str(value)
    return value


def settings_identity(options: ColorizeOptions) -> dict[str, Any]:
    """Everything that changes the colours of an output: model (its weights' fingerprint),
    pipeline settings with overrides, flow weights, excerpt, and the vidcolor version."""
    weights = resolve_checkpoint(options.model)
    model: dict[str, Any] = {"name": str(options.model), "weights": fingerprint(weights)}
    cfg = config_path(weights)
    if cfg.is_file():
        model["config"] = content_digest(cfg)
    model["weights"].pop("mtime_ns")  # a copied checkpoint with the same bytes is the same
    flow_weights = None
    if options.flow_weights is not None:
        if not options.flow_weights.is_file():
            raise UsageError(f"{options.flow_weights}: flow weights file not found")
        flow_weights = content_digest(options.flow_weights)
    settings = {k: _jsonable(v) for k, v in dataclasses.asdict(options.settings()).items()}
    settings.pop("description", None)
    return {
        "vidcolor": __version__,
        "model": model,
        "pipeline": settings,
        "flow_weights": flow_weights,
        "start": _jsonable(options.start),
        "duration": _jsonable(options.duration),
    }


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temp file beside path, fsync it, and rename it over path."""
    tmp = path.with_name(f".{path.stem}{TEMP_MARK}{secrets.token_hex(4)}{path.suffix}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise translate_os_error(e, path) from e


class BatchState:
    """Finished items of one output folder; a settings change starts the record afresh."""

    def __init__(self, outdir: Path, settings: dict[str, Any]) -> None:
        self.path = outdir / STATE_NAME
        self.settings = settings
        self.items: dict[str, dict[str, Any]] = {}
        self.reset_reason: str | None = None
        self._dirty = False
        self._saved_at = 0.0
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("format") != STATE_FORMAT:
                raise ValueError(f"format {data.get('format')!r}")
            items = data["items"]
            old = data["settings"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            self.reset_reason = f"unreadable state file {self.path.name} ({e})"
            return
        if old != self.settings:
            keys = {*old, *self.settings}
            changed = sorted(k for k in keys if old.get(k) != self.settings.get(k))
            self.reset_reason = f"settings changed ({', '.join(changed)})"
            return
        self.items = items

    def finished(self, key: str, src: Path) -> dict[str, Any] | None:
        """The record of an item finished from this very input (same size, mtime, digest)."""
        rec = self.items.get(key)
        if rec is None or not unchanged(src, rec.get("input_fingerprint", {})):
            return None
        if not (self.path.parent / rec.get("output", "?")).is_file():
            return None
        return rec

    def record(self, key: str, entry: dict[str, Any]) -> None:
        """Mark an item finished (saved at the next :meth:`save`)."""
        self.items[key] = entry
        self._dirty = True

    def forget(self, key: str) -> None:
        """Drop an item's record (it is being redone)."""
        if self.items.pop(key, None) is not None:
            self._dirty = True

    def save(self, *, force: bool = False) -> None:
        """Write the state if it changed, at most every SAVE_INTERVAL seconds unless forced."""
        if not (self._dirty or force):
            return
        now = time.monotonic()
        if not force and now - self._saved_at < SAVE_INTERVAL:
            return
        write_json_atomic(
            self.path, {"format": STATE_FORMAT, "settings": self.settings, "items": self.items}
        )
        self._dirty = False
        self._saved_at = now


def remove_stale_temps(outdir: Path, keep: frozenset[Path] = frozenset()) -> int:
    """Delete temp files that killed runs left under outdir (``.<name>.vidcolor-*``)."""
    removed = 0
    for dirpath, _dirnames, filenames in os.walk(outdir):
        for name in filenames:
            if name.startswith(".") and TEMP_MARK in name:
                p = Path(dirpath) / name
                if p in keep:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
                    removed += 1
    return removed


@contextlib.contextmanager
def batch_lock(outdir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the output folder: two batches must not share one (each would
    delete the other's temp files). The OS releases it when the process dies, even by kill -9."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no locking
        yield
        return
    path = outdir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise translate_os_error(e, path) from e
    held = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise OutputError(
                f"{outdir}: another vidcolor batch (pid {other}) is writing to this folder"
            ) from None
        held = True
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        if held:  # removed while still held: no file naming a dead pid is left behind
            with contextlib.suppress(OSError):
                path.unlink()
        os.close(fd)
