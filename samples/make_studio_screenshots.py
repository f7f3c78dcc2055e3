"""Screenshots of `vidcolor studio` for the README, made the way a user works: open the bundled
sample in the page (shipped models), click four hints on the astronaut's suit, save, render.

Needs the studio extra, playwright and a chromium (``/usr/bin/chromium`` on Debian)::

    .venv/bin/python samples/make_studio_screenshots.py   # writes samples/studio/*.png
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
if importlib.util.find_spec("vidcolor") is None:  # run from a checkout without installing
    sys.path.insert(0, str(HERE.parent))

from vidcolor.pipeline import ColorizeOptions  # noqa: E402
from vidcolor.studio.server import bind, make_app, url_for  # noqa: E402
from vidcolor.studio.session import Studio  # noqa: E402

OUT = HERE / "studio"
SUIT = [(90, 330), (160, 345), (450, 340), (110, 300)]
"""The clicks of samples/steer/hints_f000020.json (shot 1's keyframe, frame 20)."""
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> int:
    import uvicorn
    from playwright.sync_api import expect, sync_playwright

    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser_path is None:
        print("no chromium found (apt-get install chromium)", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="studio-shots-"))
    film = work / "sample.mp4"
    shutil.copy(HERE / "sample.mp4", film)
    studio = Studio(film, work / "sample_shots", colorize=ColorizeOptions(quiet=True),
                    output=work / "sample_color.mp4")
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(make_app(studio, "shots"), log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    OUT.mkdir(exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=browser_path, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url_for("127.0.0.1", sock.getsockname()[1], "shots"))
            expect(page.locator(".shot")).to_have_count(len(studio.shots))
            page.wait_for_function("document.getElementById('big').dataset.version === '0'",
                                   timeout=60_000)
            page.fill("#colour", "#e0662a")
            h, w = studio.upright
            for n, (x, y) in enumerate(SUIT, 1):
                box = page.locator("#big").bounding_box()
                page.mouse.click(box["x"] + box["width"] * x / w,
                                 box["y"] + box["height"] * y / h)
                page.wait_for_function(
                    f"document.getElementById('big').dataset.version === '{n}'",
                    timeout=60_000)
            page.click("input[name=strip-kind][value=steered]")
            page.wait_for_timeout(500)
            page.wait_for_load_state("networkidle", timeout=300_000)
            page.screenshot(path=str(OUT / "studio.png"))
            page.click("#save")
            expect(page.locator("#log")).to_contain_text("saved")
            page.click("#render")
            expect(page.locator("#result")).to_be_visible(timeout=600_000)
            page.wait_for_load_state("networkidle", timeout=60_000)
            page.locator("#panel").screenshot(path=str(OUT / "studio_render.png"))
            browser.close()
    finally:
        server.should_exit = True
        thread.join(30)
        studio.close()
    print(f"wrote {OUT / 'studio.png'} and {OUT / 'studio_render.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
