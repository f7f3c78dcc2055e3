"""The studio's web server: a thin Starlette app that turns requests into :class:`Studio` calls.

Every request needs the session's token (``?token=``, the ``X-Vidcolor-Token`` header, or the
cookie the page gets on first visit). No path from the browser is ever opened: shots and frames
are numbers, files are the ones the studio itself names under the shot folder.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import socket
from importlib import resources

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from vidcolor.errors import InputError, OutputError, UsageError, VidcolorError
from vidcolor.studio.session import MAX_UPLOAD_BYTES, Conflict, Studio, png_bytes

log = logging.getLogger("vidcolor")

COOKIE = "vidcolor_token"
HEADER = "x-vidcolor-token"
STATIC = {"studio.js": "text/javascript", "studio.css": "text/css"}


def _status(exc: VidcolorError) -> int:
    if isinstance(exc, Conflict | OutputError):
        return 409
    if isinstance(exc, InputError | UsageError):
        return 400
    return 500


def _static(name: str) -> bytes:
    return resources.files("vidcolor.studio").joinpath("static", name).read_bytes()


def make_app(studio: Studio, token: str) -> Starlette:
    """The ASGI app serving one studio session, guarded by ``token``."""

    def authorised(request: Request) -> bool:
        """GET: the token in the URL, header or cookie. Anything that changes something needs
        the header, which another site's page cannot send (a cookie it could: sites ignore
        ports, so any page on 127.0.0.1 would do)."""
        given = request.headers.get(HEADER) or ""
        if request.method == "GET":
            given = given or request.query_params.get("token") or request.cookies.get(COOKIE, "")
        return secrets.compare_digest(given.encode(), token.encode())

    def guarded(handler):
        async def endpoint(request: Request) -> Response:
            if not authorised(request):
                log.warning("refused %s %s: no valid token", request.method, request.url.path)
                return JSONResponse({"error": "no valid access token: open the URL the studio "
                                     "printed (it ends in ?token=...)"}, status_code=403)
            try:
                return await handler(request)
            except VidcolorError as exc:
                message = " ".join(str(exc).split())
                log.warning("%s %s: %s", request.method, request.url.path, message)
                return JSONResponse({"error": message, "kind": type(exc).__name__},
                                    status_code=_status(exc))
            except (ValueError, KeyError, TypeError) as exc:
                message = f"bad request: {' '.join(str(exc).split()) or type(exc).__name__}"
                log.warning("%s %s: %s", request.method, request.url.path, message)
                return JSONResponse({"error": message}, status_code=400)
            except Exception as exc:  # a bug: one line to the page, the traceback in the log
                log.exception("%s %s failed", request.method, request.url.path)
                return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, status_code=500)

        return endpoint

    async def json_body(request: Request) -> dict:
        try:
            data = await request.json()
        except ValueError:
            raise InputError("request body is not JSON") from None
        if not isinstance(data, dict):
            raise InputError("request body must be a JSON object")
        return data

    def integer(value: object, what: str) -> int:
        try:
            return int(str(value))
        except ValueError:
            raise InputError(f"{what} must be a whole number, got {value!r}") from None

    async def index(request: Request) -> Response:
        html = _static("index.html").decode().replace("__TOKEN__", token)
        response = Response(html, media_type="text/html")
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        response.headers["Cache-Control"] = "no-store"
        return response

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return JSONResponse({"error": "not found"}, status_code=404)
        return Response(_static(name), media_type=STATIC[name])

    async def film(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(studio.describe))

    def png(rgb) -> Response:
        return Response(png_bytes(rgb), media_type="image/png",
                        headers={"Cache-Control": "private, max-age=3600"})

    async def thumb(request: Request) -> Response:
        i = integer(request.path_params["shot"], "shot")
        which = request.path_params["which"]
        kind = request.query_params.get("kind", "grey")
        frame = await run_in_threadpool(studio.thumb_frame, i, which)
        _, rgb = await run_in_threadpool(studio.image, i, frame, kind, thumb=True)
        return png(rgb)

    async def frame(request: Request) -> Response:
        i = integer(request.path_params["shot"], "shot")
        f = integer(request.path_params["frame"], "frame")
        kind = request.query_params.get("kind", "grey")
        shown, rgb = await run_in_threadpool(studio.image, i, f, kind)
        response = png(rgb)
        response.headers["X-Frame"] = str(shown)
        return response

    async def hints(request: Request) -> Response:
        i = integer(request.path_params["shot"], "shot")
        data = await json_body(request)
        points = data.get("points", [])
        if not isinstance(points, list):
            raise InputError("points must be a list")
        await run_in_threadpool(studio.set_hints, i, integer(data.get("frame"), "frame"), points)
        return JSONResponse({"version": studio.shot(i).version})

    async def saturation(request: Request) -> Response:
        i = integer(request.path_params["shot"], "shot")
        data = await json_body(request)
        await run_in_threadpool(studio.set_saturation, i, data.get("value"))
        return JSONResponse({"version": studio.shot(i).version})

    async def keyframe(request: Request) -> Response:
        i = integer(request.path_params["shot"], "shot")
        data = await json_body(request)
        await run_in_threadpool(studio.set_keyframe, i, integer(data.get("frame"), "frame"))
        return JSONResponse({"version": studio.shot(i).version})

    async def image(request: Request) -> Response:
        i = integer(request.path_params["shot"], "shot")
        if request.method == "DELETE":
            what = request.query_params.get("what", "reference")
            clear = studio.clear_keyframes if what == "keyframes" else studio.clear_reference
            await run_in_threadpool(clear, i)
            return JSONResponse({"version": studio.shot(i).version})
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > MAX_UPLOAD_BYTES:
            raise InputError(f"upload is {int(size) / 2**20:.1f} MB; the limit is "
                             f"{MAX_UPLOAD_BYTES // 2**20} MB")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_UPLOAD_BYTES:
                raise InputError(f"upload is over the {MAX_UPLOAD_BYTES // 2**20} MB limit")
        result = await run_in_threadpool(studio.add_image, i, bytes(body))
        return JSONResponse({**result, "version": studio.shot(i).version})

    async def cuts(request: Request) -> Response:
        data = await json_body(request)
        frame = data.get("frame")
        notes = await run_in_threadpool(
            studio.edit_cut, str(data.get("op")), integer(data.get("shot"), "shot"),
            None if frame is None else integer(frame, "frame"))
        return JSONResponse({**await run_in_threadpool(studio.describe), "notes": notes})

    async def save(request: Request) -> Response:
        data = await json_body(request)
        return JSONResponse(await run_in_threadpool(studio.save, force=bool(data.get("force"))))

    async def render(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse(studio.render.to_json())
        data = await json_body(request)
        await run_in_threadpool(studio.start_render, overwrite=bool(data.get("overwrite")))
        return JSONResponse(studio.render.to_json())

    async def cancel(request: Request) -> Response:
        return JSONResponse({"cancelled": studio.cancel_render()})

    async def output(request: Request) -> Response:
        if studio.render.state != "done" or not studio.output.is_file():
            raise InputError("no finished render yet")
        return FileResponse(studio.output, filename=studio.output.name)

    async def sheet(request: Request) -> Response:
        path = studio.sheet_path()
        if not path.is_file():
            raise InputError("no contact sheet yet: render first")
        return FileResponse(path, media_type="image/jpeg",
                            headers={"Cache-Control": "no-store"})

    async def flicker(request: Request) -> Response:
        return JSONResponse(studio.flicker())

    routes = [
        Route("/", guarded(index)),
        Route("/static/{name}", guarded(static)),
        Route("/api/film", guarded(film)),
        Route("/api/shot/{shot}/thumb/{which}", guarded(thumb)),
        Route("/api/shot/{shot}/frame/{frame}", guarded(frame)),
        Route("/api/shot/{shot}/hints", guarded(hints), methods=["POST"]),
        Route("/api/shot/{shot}/saturation", guarded(saturation), methods=["POST"]),
        Route("/api/shot/{shot}/keyframe", guarded(keyframe), methods=["POST"]),
        Route("/api/shot/{shot}/image", guarded(image), methods=["PUT", "DELETE"]),
        Route("/api/cuts", guarded(cuts), methods=["POST"]),
        Route("/api/save", guarded(save), methods=["POST"]),
        Route("/api/render", guarded(render), methods=["GET", "POST"]),
        Route("/api/render/cancel", guarded(cancel), methods=["POST"]),
        Route("/api/render/output", guarded(output)),
        Route("/api/render/sheet", guarded(sheet)),
        Route("/api/render/flicker", guarded(flicker)),
    ]
    return Starlette(routes=routes)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host`` (port 0: a free one), or a one-line OutputError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
                         "pick another --port or leave it out for a free one") from None
    sock.listen(64)
    sock.set_inheritable(True)
    return sock


def url_for(host: str, port: int, token: str) -> str:
    shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{port}/?token={token}"


def new_token() -> str:
    return secrets.token_urlsafe(24)
