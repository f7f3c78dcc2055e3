"""Output-path safety: never overwrite an input, never leave a half-written file at dest."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path

from vidcolor.errors import OutputError


def _same_file(a: Path, b: Path) -> bool:
    """True if a and b are the same file (symlinks, '..', hard links); False if either is absent."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def check_output_path(dest: Path | str, *, inputs: Sequence[Path | str], overwrite: bool) -> Path:
    """Refuse an output path that would destroy an input or cannot be written; returns dest.

    Raises a one-line OutputError naming the path and the fix.
    """
    dest = Path(dest)
    for src in inputs:
        if _same_file(dest, Path(src)):
            raise OutputError(f"{dest}: is the input file {src}; choose a different output path")
    if dest.is_dir():
        raise OutputError(f"{dest}: is a directory; give an output file name")
    if dest.exists() or dest.is_symlink():
        if not overwrite:
            raise OutputError(f"{dest}: already exists; use --overwrite to replace it")
        if not dest.is_file():
            raise OutputError(f"{dest}: exists and is not a regular file; refusing to replace it")
    parent = dest.parent if str(dest.parent) else Path(".")
    if not parent.exists():
        raise OutputError(f"{dest}: directory {parent} does not exist; create it first")
    if not parent.is_dir():
        raise OutputError(f"{dest}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{dest}: directory {parent} is not writable (permission denied)")
    return dest


def temp_path_for(dest: Path) -> Path:
    """A fresh hidden temp name beside dest with the same extension (so FFmpeg picks the format)."""
    return dest.with_name(f".{dest.stem}.vidcolor-{secrets.token_hex(4)}{dest.suffix}")


def translate_os_error(e: OSError, dest: Path) -> OutputError:
    """An OSError during writing as a one-line OutputError (disk full, permission, other)."""
    code = getattr(e, "errno", None)
    if code in (errno.ENOSPC, errno.EDQUOT):
        return OutputError(f"{dest}: disk full while writing (no space left on {dest.parent})")
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputError(f"{dest}: directory {dest.parent} is not writable ({e.strerror})")
    return OutputError(f"{dest}: cannot write ({e.strerror or e})")


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
        path.unlink()


class AtomicFile:
    """A temp file beside dest that becomes dest on :meth:`commit` or vanishes on :meth:`discard`.

    For writers whose lifetime spans several calls; :func:`atomic_output` wraps it for ``with``.
    """

    def __init__(self, dest: Path | str) -> None:
        self.dest = Path(dest)
        self.tmp = temp_path_for(self.dest)
        self.done = False

    def commit(self) -> Path:
        """Atomically rename the finished temp file onto dest (same directory, os.replace)."""
        if self.done:
            raise RuntimeError(f"{self.dest}: output already committed or discarded")
        self.done = True
        try:
            os.replace(self.tmp, self.dest)
        except OSError as e:
            _remove_quietly(self.tmp)
            raise translate_os_error(e, self.dest) from e
        return self.dest

    def discard(self) -> None:
        """Delete the temp file (if any); dest is left untouched. Safe to call twice."""
        self.done = True
        _remove_quietly(self.tmp)


@contextlib.contextmanager
def atomic_output(dest: Path | str) -> Iterator[Path]:
    """Yield a temp path beside dest; on success rename it onto dest, on any failure delete it.

    KeyboardInterrupt and SystemExit also remove the temp file; dest is never left half written.
    """
    out = AtomicFile(dest)
    try:
        yield out.tmp
    except BaseException:
        out.discard()
        raise
    out.commit()
