"""Entry point: maps known errors to one-line messages and exit codes (``--debug`` for tracebacks).

Exit codes: 0 ok, 1 other error, 2 usage, 3 input, 4 output, 5 model, 6 flow, 7 device,
8 training data, 130 interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import traceback

from vidcolor.errors import EXIT_INTERRUPTED, DeviceError, UsageError, VidcolorError


def _sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line (never empty)."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns (and exits with) the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    previous = None
    with contextlib.suppress(ValueError):  # only the main thread may set signal handlers
        previous = signal.signal(signal.SIGTERM, _sigterm)
    try:
        return _run(argv, debug)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(argv: list[str], debug: bool) -> int:
    try:
        from vidcolor import cli

        try:
            args = cli.parse(argv)
        except SystemExit as exc:  # argparse: --help, --version, or a usage error (printed)
            code = exc.code
            if code is None or isinstance(code, int):
                return code or 0
            print(f"vidcolor: error: {code}", file=sys.stderr)
            return UsageError.exit_code
        cli.setup_logging(getattr(args, "quiet", False), debug, getattr(args, "log_file", None))
        return cli.run(args)
    except VidcolorError as exc:
        if debug:
            traceback.print_exc()
        print(f"vidcolor: error: {_one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("vidcolor: interrupted; no partial output was kept", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        if debug:
            traceback.print_exc()
        print(
            "vidcolor: error: out of memory; lower --batch-size or --working-size", file=sys.stderr
        )
        return DeviceError.exit_code
    except Exception as exc:  # a bug or an unforeseen failure: one line unless --debug
        if debug:
            traceback.print_exc()
        if type(exc).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError (CUDA)
            print(
                "vidcolor: error: out of GPU memory; lower --batch-size or --working-size, "
                "or use --device cpu",
                file=sys.stderr,
            )
            return DeviceError.exit_code
        hint = "" if debug else " (run with --debug for the traceback)"
        kind = "" if isinstance(exc, OSError) else f"{type(exc).__name__}: "
        print(f"vidcolor: error: {kind}{_one_line(exc)}{hint}", file=sys.stderr)
        return 1


def entry() -> None:
    """The console script and ``python -m vidcolor``: exit with :func:`main`'s code. After an
    interrupt the process ends at once: a library cut off half-way through its import (torch)
    could otherwise end the interpreter's shut-down by the signal (-2) instead of 130."""
    code = main()
    if code == EXIT_INTERRUPTED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
