"""The studio's page in a real headless browser (Debian's chromium driven by Playwright): open a
tiny synthetic film, place a hint, see the preview change, save, render, find the output."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

pytest.importorskip("uvicorn", reason="the studio extra is not installed")
pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install "
                    "'vidcolor[dev]')")

from test_steer import FRAMES, scene, write_film

from vidcolor.pipeline import ColorizeOptions
from vidcolor.steer.manifest import read_manifest


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


BROWSER = chromium()
pytestmark = pytest.mark.skipif(
    BROWSER is None, reason="no chromium on this machine (.ci/run installs Debian's chromium)")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def start_server(studio, token: str) -> tuple[str, callable]:
    """Serve the studio on a free loopback port in a thread; returns (URL, stop)."""
    import uvicorn

    from vidcolor.studio.server import bind, make_app, url_for

    sock = bind("127.0.0.1", 0)
    config = uvicorn.Config(make_app(studio, token), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        threading.Event().wait(0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join(30)
        sock.close()

    return url_for("127.0.0.1", sock.getsockname()[1], token), stop


def launch(p):
    return p.chromium.launch(executable_path=BROWSER, headless=True, args=CHROMIUM_ARGS)


PIXELS = """() => { const img = document.getElementById('big');
  const c = document.createElement('canvas'); c.width = img.naturalWidth;
  c.height = img.naturalHeight; const g = c.getContext('2d'); g.drawImage(img, 0, 0);
  return Array.from(g.getImageData(0, 0, c.width, c.height).data); }"""


def test_hint_save_render_in_the_page(tmp_path: Path, tiny_model: Path, tiny_guided: Path):
    from playwright.sync_api import expect, sync_playwright

    from vidcolor.studio.session import Studio

    film = write_film(tmp_path / "film.mkv", scene())
    studio = Studio(film, tmp_path / "shots", output=tmp_path / "color.mp4",
                    colorize=ColorizeOptions(model=str(tiny_model), steer_model=str(tiny_guided),
                                             quiet=True, working_short_side=64))
    url, stop = start_server(studio, "browser-token")
    try:
        with sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            expect(page.locator(".shot")).to_have_count(2)
            expect(page.locator("#film-info")).to_contain_text(f"{FRAMES} frames")
            page.wait_for_function("document.getElementById('big').dataset.version === '0'")
            before = page.evaluate(PIXELS)
            box = page.locator("#big").bounding_box()
            page.mouse.click(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.5)
            expect(page.locator("#hint-list li")).to_have_count(1)
            expect(page.locator("#dirty")).to_be_visible()
            page.wait_for_function("document.getElementById('big').dataset.version === '1'")
            after = page.evaluate(PIXELS)
            assert len(after) == len(before)
            changed = sum(abs(a - b) for a, b in zip(after, before, strict=True)) / len(after)
            assert changed > 0.5, changed
            page.click("#save")
            expect(page.locator("#log")).to_contain_text("saved")
            expect(page.locator("#dirty")).to_be_hidden()
            m = read_manifest(tmp_path / "shots")
            assert [h.name for h in m.shots[0].hints] == [f"hints_f{m.shots[0].keyframe:06d}.json"]
            page.click("#render")
            expect(page.locator("#result")).to_be_visible(timeout=120_000)
            expect(page.locator("#render-state")).to_contain_text("done")
            expect(page.locator("#output-path")).to_contain_text("color.mp4")
            expect(page.locator("#flicker polyline")).to_have_count(1)
            assert (tmp_path / "color.mp4").is_file()
            page.screenshot(path=str(tmp_path / "page.png"))
            assert not errors, errors
            browser.close()
    finally:
        stop()
        studio.close()
