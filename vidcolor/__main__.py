"""Entry point: maps known errors to one-line messages and exit codes (``--debug`` for tracebacks).

Exit codes: 0 ok, 1 other error, 2 usage, 3 input, 4 output, 5 model, 6 flow, 7 device,
8 training data, 130 interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import signal
import sys
import traceback

from vidcolor.errors import EXIT_INTERRUPTED, VidcolorError


def _sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns (and exits with) the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        from vidcolor import cli

        args = cli.parse(argv)
        cli.setup_logging(getattr(args, "quiet", False), debug)
        return cli.run(args)
    except VidcolorError as exc:
        if debug:
            traceback.print_exc()
        print(f"vidcolor: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("vidcolor: interrupted; no partial output was kept", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        print("vidcolor: error: out of memory; lower --batch-size or --working-size", file=sys.stderr)
        return 7
    except OSError as exc:
        if debug:
            traceback.print_exc()
        print(f"vidcolor: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
