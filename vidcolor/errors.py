"""Known errors and their exit codes; ``__main__`` prints them as one line, never a traceback."""

from __future__ import annotations

import errno

IO_ERRNOS = frozenset({
    errno.EIO, errno.ENOMEM, errno.EMFILE, errno.ENFILE, errno.ENXIO, errno.ENODEV,
    errno.ESTALE, errno.ETIMEDOUT, errno.ECONNRESET, errno.EAGAIN, errno.EINTR,
})
"""errno values that say a file could not be read (disk, mount, memory), not that it is
damaged: such a read failure stops the run instead of being skipped as bad data."""


class VidcolorError(Exception):
    """Base of every error a user can cause; ``exit_code`` is what the CLI returns."""

    exit_code = 1
    retryable = False
    """Whether running again may succeed (a transient failure, not the input or options)."""


class UsageError(VidcolorError):
    """Bad option values or combinations (same code as argparse's own usage errors)."""

    exit_code = 2


class InputError(VidcolorError):
    """The input is missing, not media, has no video stream or no decodable frame."""

    exit_code = 3


class ReadError(InputError):
    """The input could not be read (an I/O failure such as EIO, ENOMEM or EMFILE, not damage):
    the run stops and keeps nothing; run it again once the disk or mount is back (batch retries)."""

    exit_code = 9
    retryable = True


class OutputError(VidcolorError):
    """The output path is refused (exists, is the input, unwritable, disk full)."""

    exit_code = 4


class ModelError(VidcolorError):
    """A model name, checkpoint file or its config is missing, damaged or mismatched."""

    exit_code = 5


class FlowError(VidcolorError):
    """The temporal stage cannot run as asked (e.g. RAFT weights unavailable offline)."""

    exit_code = 6


class DeviceError(VidcolorError):
    """The requested device is unavailable, or it ran out of memory."""

    exit_code = 7


class DataError(VidcolorError):
    """Training or evaluation data is unusable (empty folder, no images)."""

    exit_code = 8


class Cancelled(VidcolorError):
    """Work stopped on request (the studio's cancel button); nothing partial is kept."""

    exit_code = 130


EXIT_INTERRUPTED = 130
"""Exit code after Ctrl-C or SIGTERM (128 + SIGINT), as shells report it."""
