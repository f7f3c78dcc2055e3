"""``vidcolor studio``: a local web page to review a film shot by shot, steer its colour and
render it. :mod:`.session` does the work (library calls, as the CLI makes them), :mod:`.server`
is a thin Starlette app over it, the page is plain HTML/JS in ``static/``.

Needs the optional extra: ``pip install 'vidcolor[studio]'`` (Starlette and uvicorn).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import webbrowser
from dataclasses import dataclass, field
from pathlib import Path

from vidcolor.errors import UsageError
from vidcolor.pipeline import ColorizeOptions

log = logging.getLogger("vidcolor")


@dataclass(frozen=True)
class StudioOptions:
    """Options of ``vidcolor studio``."""

    film: Path
    shots: Path | None = None
    """Shot folder (default: ``FILM_shots`` beside the film; made if missing)."""
    output: Path | None = None
    """Rendered film (default: ``FILM_color.mp4`` beside the film)."""
    host: str = "127.0.0.1"
    port: int = 0
    """0: a free port."""
    open_browser: bool = True
    colorize: ColorizeOptions = field(default_factory=ColorizeOptions)


def _need_extra() -> None:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise UsageError(
            f"the studio needs its extra ({exc.name} is missing): pip install 'vidcolor[studio]'"
        ) from None


def _can_open_browser() -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def serve(options: StudioOptions) -> int:
    """Open the film, print the URL (with its access token) and serve until Ctrl-C (exit 0;
    a render still running is cancelled and leaves no partial file)."""
    _need_extra()
    import uvicorn

    from vidcolor.studio.server import bind, is_loopback, make_app, new_token, url_for
    from vidcolor.studio.session import Studio, default_paths

    shots, output = default_paths(options.film, options.shots, options.output)
    if not is_loopback(options.host):
        log.warning("listening on %s: anyone who can reach this machine and has the token can "
                    "use the studio and read its films' frames", options.host)
    sock = bind(options.host, options.port)  # before the slow open: a taken port fails fast
    studio = None
    try:
        studio = Studio(options.film, shots, colorize=options.colorize, output=output)
        port = sock.getsockname()[1]
        token = new_token()
        url = url_for(options.host, port, token)
        print(f"vidcolor studio: {options.film.name}, {len(studio.shots)} shots, folder {shots}")
        print(f"open {url}", flush=True)
        print("(Ctrl-C stops the studio)", flush=True)
        if options.open_browser and _can_open_browser():
            webbrowser.open(url)
        config = uvicorn.Config(make_app(studio, token), log_level="warning", lifespan="off",
                                access_log=False)
        # uvicorn shuts down gracefully on Ctrl-C, then re-raises it: stopping is the normal end
        with contextlib.suppress(KeyboardInterrupt):
            uvicorn.Server(config).run(sockets=[sock])
    finally:
        if studio is not None:
            studio.close()
        sock.close()
    print("vidcolor studio: stopped")
    return 0
