"""`vidcolor studio`: the session library and its HTTP API (Starlette's test client), on a tiny
synthetic two-shot film with tiny random models. The page itself: test_studio_browser.py."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette", reason="the studio extra is not installed")
pytest.importorskip("httpx2", reason="Starlette's test client needs httpx2")

from starlette.testclient import TestClient
from test_steer import CUT, FRAMES, H, W, scene, write_film

from vidcolor.errors import Cancelled, InputError
from vidcolor.pipeline import ColorizeOptions, colorize_video
from vidcolor.steer.manifest import read_manifest, write_manifest
from vidcolor.steer.plan import build_plan
from vidcolor.studio import session as session_mod
from vidcolor.studio.server import is_loopback, make_app, url_for
from vidcolor.studio.session import Studio, check_upload

TOKEN = "t0ken"
AUTH = {"X-Vidcolor-Token": TOKEN}


@pytest.fixture(scope="module")
def film(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_film(tmp_path_factory.mktemp("studio") / "film.mkv", scene())


def options(tiny_model: Path, tiny_guided: Path) -> ColorizeOptions:
    return ColorizeOptions(model=str(tiny_model), steer_model=str(tiny_guided), quiet=True,
                           working_short_side=64)


@pytest.fixture
def studio(film: Path, tiny_model: Path, tiny_guided: Path, tmp_path: Path) -> Studio:
    s = Studio(film, tmp_path / "shots", colorize=options(tiny_model, tiny_guided),
               output=tmp_path / "color.mp4")
    yield s
    s.close()


@pytest.fixture
def client(studio: Studio) -> TestClient:
    return TestClient(make_app(studio, TOKEN))


def png_array(content: bytes) -> np.ndarray:
    return np.array(Image.open(io.BytesIO(content)).convert("RGB"))


def test_opening_makes_the_shots_like_the_cli(studio: Studio):
    m = read_manifest(studio.folder)
    assert [(s.first, s.last) for s in m.shots] == [(0, CUT - 1), (CUT, FRAMES - 1)]
    d = studio.describe()
    assert d["frames"] == FRAMES and (d["width"], d["height"]) == (W, H)
    assert [len(s["scrub"]) >= 5 for s in d["shots"]] == [True, True]
    assert all(s["keyframe"] in s["scrub"] for s in d["shots"])


def test_every_request_needs_the_token(client: TestClient):
    assert client.get("/api/film").status_code == 403
    assert client.get("/api/film?token=wrong").status_code == 403
    assert client.get("/static/studio.js").status_code == 403
    assert client.get("/api/film", headers=AUTH).status_code == 200
    page = client.get(f"/?token={TOKEN}")
    assert page.status_code == 200 and TOKEN in page.text
    assert client.get("/static/studio.js").status_code == 200  # the page's cookie
    assert client.get("/static/../session.py", headers=AUTH).status_code == 404
    assert client.get("/static/index.html", headers=AUTH).status_code == 404


def test_pictures_of_each_kind(client: TestClient, studio: Studio):
    key = studio.describe()["shots"][1]["keyframe"]
    for kind in ("grey", "auto", "steered"):
        r = client.get(f"/api/shot/1/frame/{key}?kind={kind}", headers=AUTH)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert png_array(r.content).shape == (H, W, 3)
        for which in ("first", "key", "last"):
            t = client.get(f"/api/shot/1/thumb/{which}?kind={kind}", headers=AUTH)
            assert t.status_code == 200
    grey = png_array(client.get(f"/api/shot/1/frame/{key}?kind=grey", headers=AUTH).content)
    assert np.abs(grey[..., 0].astype(int) - grey[..., 2]).max() == 0
    bad = client.get("/api/shot/1/frame/0?kind=grey", headers=AUTH)
    assert bad.status_code == 400 and "not in shot 1" in bad.json()["error"]
    assert client.get(f"/api/shot/1/frame/{key}?kind=sepia", headers=AUTH).status_code == 400
    assert client.get("/api/shot/7/thumb/key", headers=AUTH).status_code == 400


def test_a_hint_changes_the_preview_and_saves_like_the_cli(client: TestClient, studio: Studio):
    shot = studio.describe()["shots"][0]
    key = shot["keyframe"]
    before = png_array(client.get(f"/api/shot/0/frame/{key}?kind=steered", headers=AUTH).content)
    r = client.post("/api/shot/0/hints", headers=AUTH, json={
        "frame": key, "points": [{"x": 40, "y": 30, "color": "#ff2000", "radius": 12}]})
    assert r.status_code == 200 and r.json()["version"] == shot["version"] + 1
    after = png_array(client.get(f"/api/shot/0/frame/{key}?kind=steered", headers=AUTH).content)
    assert np.abs(after.astype(int) - before).mean() > 1.0
    assert after[30, 40, 0] > after[30, 40, 2] + 40  # red where it was clicked
    assert client.get("/api/film", headers=AUTH).json()["dirty"]
    saved = client.post("/api/save", headers=AUTH, json={})
    assert saved.status_code == 200
    m = read_manifest(studio.folder)
    hints = studio.folder / f"hints_f{key:06d}.json"
    assert m.shots[0].hints == [hints]
    assert json.loads(hints.read_text())["points"][0]["color"] == "#ff2000"
    for s in m.shots:
        assert (studio.folder / s.grey).is_file() and (studio.folder / s.auto).is_file()
    # the CLI reads what the page saved ...
    plan = build_plan(studio.info, shots=studio.folder)
    assert plan.shots[0].hints[0].frame == key and len(plan.shots[0].hints[0].points) == 1
    # ... and a new studio reads it back as editable hints
    again = Studio(studio.film, studio.folder, colorize=studio.options, output=studio.output)
    assert again.describe()["shots"][0]["hints"] == {str(key): [
        {"x": 40.0, "y": 30.0, "color": "#ff2000", "radius": 12}]}
    assert not again.describe()["dirty"]


def test_bad_hints_are_one_line_errors(client: TestClient, studio: Studio):
    key = studio.describe()["shots"][0]["keyframe"]
    for points, words in (
        ([{"x": 500, "y": 3, "color": "red"}], "off the 96x64 frame"),
        ([{"x": 5, "y": 3, "color": "nocolour"}], "is not '#rrggbb'"),
        ([{"x": 5, "y": 3}], "needs x, y and color"),
    ):
        r = client.post("/api/shot/0/hints", headers=AUTH, json={"frame": key, "points": points})
        assert r.status_code == 400 and words in r.json()["error"], r.json()
    r = client.post("/api/shot/0/hints", headers=AUTH, json={"frame": CUT + 1, "points": []})
    assert r.status_code == 400 and "not in shot 0" in r.json()["error"]
    r = client.post("/api/shot/0/hints", headers=AUTH, content=b"{not json")
    assert r.status_code == 400 and "not JSON" in r.json()["error"]


def test_saturation_and_keyframe(client: TestClient, studio: Studio):
    assert client.post("/api/shot/1/saturation", headers=AUTH,
                       json={"value": 0.0}).status_code == 200
    key = studio.describe()["shots"][1]["keyframe"]
    grey = client.get(f"/api/shot/1/frame/{key}?kind=steered", headers=AUTH)
    rgb = png_array(grey.content).astype(int)
    assert np.abs(rgb[..., 0] - rgb[..., 2]).max() <= 2  # saturation 0: grey
    assert client.post("/api/shot/1/saturation", headers=AUTH,
                       json={"value": 9}).status_code == 400
    r = client.post("/api/shot/1/keyframe", headers=AUTH, json={"frame": CUT + 2})
    assert r.status_code == 200
    assert client.post("/api/shot/1/keyframe", headers=AUTH, json={"frame": 2}).status_code == 400
    client.post("/api/save", headers=AUTH, json={})
    s = read_manifest(studio.folder).shots[1]
    assert s.keyframe == CUT + 2 and s.saturation == 0.0 and f"_f{CUT + 2:06d}_" in s.grey
    assert (studio.folder / s.grey).is_file()


def test_uploads(client: TestClient, studio: Studio, tmp_path: Path):
    r = client.put("/api/shot/0/image", headers=AUTH, content=b"GIF89a not really")
    assert r.status_code == 400 and "not a readable image" in r.json()["error"]
    r = client.put("/api/shot/0/image", headers=AUTH, content=b"x" * (26 * 2**20))
    assert r.status_code == 400 and "limit" in r.json()["error"]
    photo = io.BytesIO()
    Image.fromarray(np.tile(np.array([[[20, 120, 220]]], np.uint8), (50, 70, 1))).save(
        photo, format="JPEG")
    r = client.put("/api/shot/0/image", headers=AUTH, content=photo.getvalue())
    assert r.status_code == 200 and r.json()["kind"] == "reference", r.json()
    stored = studio.folder / r.json()["file"]
    assert stored.is_file() and stored.parent == studio.folder / "references"
    # a painted copy of the keyframe (its grey, tinted) becomes a colour keyframe
    key = studio.describe()["shots"][1]["keyframe"]
    grey = png_array(client.get(f"/api/shot/1/frame/{key}?kind=grey", headers=AUTH).content)
    painted = np.clip(grey.astype(int) + np.array([30, 0, -30]), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(painted).save(buf, format="PNG")
    r = client.put("/api/shot/1/image", headers=AUTH, content=buf.getvalue())
    assert r.status_code == 200 and r.json()["kind"] == "keyframe", r.json()
    client.post("/api/save", headers=AUTH, json={})
    m = read_manifest(studio.folder)
    assert m.shots[0].reference == stored
    assert [k.frame for k in m.shots[1].keyframes] == [key]
    assert build_plan(studio.info, shots=studio.folder).shots[1].keyframes[0][1] == key
    assert client.delete("/api/shot/0/image?what=reference", headers=AUTH).status_code == 200
    assert studio.describe()["shots"][0]["reference"] == "" and stored.is_file()


def test_check_upload_refuses_bombs():
    buf = io.BytesIO()
    Image.new("L", (8000, 6000)).save(buf, format="PNG")
    with pytest.raises(InputError, match="megapixels"):
        check_upload(buf.getvalue())
    with pytest.raises(InputError, match="empty"):
        check_upload(b"")


def test_cut_edits(client: TestClient, studio: Studio):
    r = client.post("/api/cuts", headers=AUTH, json={"op": "split", "shot": 1, "frame": 15})
    assert r.status_code == 200
    assert [(s["first"], s["last"]) for s in r.json()["shots"]] == [(0, 9), (10, 14), (15, 19)]
    r = client.post("/api/cuts", headers=AUTH, json={"op": "move", "shot": 0, "frame": 12})
    assert [(s["first"], s["last"]) for s in r.json()["shots"]] == [(0, 11), (12, 14), (15, 19)]
    r = client.post("/api/cuts", headers=AUTH, json={"op": "merge", "shot": 1})
    assert [(s["first"], s["last"]) for s in r.json()["shots"]] == [(0, 11), (12, 19)]
    for bad in ({"op": "split", "shot": 0, "frame": 0}, {"op": "merge", "shot": 1},
                {"op": "move", "shot": 0, "frame": 30}, {"op": "glue", "shot": 0}):
        r = client.post("/api/cuts", headers=AUTH, json=bad)
        assert r.status_code == 400, bad
    client.post("/api/save", headers=AUTH, json={})
    m = read_manifest(studio.folder)
    assert [(s.first, s.last) for s in m.shots] == [(0, 11), (12, 19)]
    assert all(s.first <= s.keyframe <= s.last for s in m.shots)


def test_save_never_overwrites_an_outside_edit_without_asking(client: TestClient,
                                                               studio: Studio):
    m = read_manifest(studio.folder)
    m.shots[0].saturation = 0.5  # the user edits the manifest by hand meanwhile
    write_manifest(m)
    client.post("/api/shot/1/saturation", headers=AUTH, json={"value": 1.5})
    r = client.post("/api/save", headers=AUTH, json={})
    assert r.status_code == 409 and "changed outside the studio" in r.json()["error"]
    assert read_manifest(studio.folder).shots[0].saturation == 0.5
    assert client.post("/api/save", headers=AUTH, json={"force": True}).status_code == 200
    assert read_manifest(studio.folder).shots[1].saturation == 1.5
    backup = studio.folder / "shots.toml.bak"
    assert "saturation = 0.5" in backup.read_text()


def test_two_saves_at_once_leave_a_whole_manifest(studio: Studio):
    studio.set_saturation(0, 1.25)
    errors: list[BaseException] = []

    def save() -> None:
        try:
            studio.save(force=True)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=save) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert read_manifest(studio.folder).shots[0].saturation == 1.25
    assert not list(studio.folder.glob(".shots*"))


def test_render_in_the_background(client: TestClient, studio: Studio):
    client.post("/api/shot/0/hints", headers=AUTH, json={
        "frame": 4, "points": [{"x": 40, "y": 30, "color": "#ff2000", "radius": 12}]})
    r = client.post("/api/render", headers=AUTH, json={})
    assert r.status_code == 200, r.json()
    studio.wait_render(120)
    status = client.get("/api/render", headers=AUTH).json()
    assert status["state"] == "done", status
    assert status["frames"] == FRAMES and studio.output.is_file()
    assert read_manifest(studio.folder).shots[0].hints  # saved before rendering
    video = client.get("/api/render/output", headers=AUTH)
    assert video.status_code == 200 and len(video.content) == studio.output.stat().st_size
    assert client.get("/api/render/sheet", headers=AUTH).headers["content-type"] == "image/jpeg"
    flicker = client.get("/api/render/flicker", headers=AUTH).json()
    values = flicker["values"]
    assert len(values) == FRAMES and values[0] is None and values[CUT] is None
    assert all(v is not None and v >= 0 for v in values[1:CUT])
    again = client.post("/api/render", headers=AUTH, json={})
    assert again.status_code == 409 and "exists" in again.json()["error"]
    assert client.post("/api/render", headers=AUTH, json={"overwrite": True}).status_code == 200
    studio.wait_render(120)
    assert studio.render.state == "done"


def test_render_twice_and_cancel(client: TestClient, studio: Studio, monkeypatch):
    started = threading.Event()
    real = session_mod.colorize_video

    def slow(*args, cancel, **kw):  # the real pipeline, started once cancel was pressed
        started.set()
        assert cancel.wait(30)
        return real(*args, cancel=cancel, **kw)

    monkeypatch.setattr(session_mod, "colorize_video", slow)
    assert client.post("/api/render", headers=AUTH, json={}).status_code == 200
    assert started.wait(30)
    second = client.post("/api/render", headers=AUTH, json={})
    assert second.status_code == 409 and "already running" in second.json()["error"]
    assert client.post("/api/render/cancel", headers=AUTH).json() == {"cancelled": True}
    studio.wait_render(60)
    assert studio.render.state == "cancelled" and "cancelled" in studio.render.message
    assert not studio.output.exists()
    assert not [p for p in studio.output.parent.iterdir() if p.name.startswith(".")]
    assert client.post("/api/render/cancel", headers=AUTH).json() == {"cancelled": False}


def test_pipeline_cancel_keeps_nothing(film: Path, tiny_model: Path, tmp_path: Path):
    stop = threading.Event()
    stop.set()
    dest = tmp_path / "out.mp4"
    with pytest.raises(Cancelled):
        colorize_video(film, dest, ColorizeOptions(model=str(tiny_model), quiet=True),
                       cancel=stop)
    assert not dest.exists() and list(tmp_path.iterdir()) == []
    seen: list[tuple[int, int | None]] = []
    colorize_video(film, dest, ColorizeOptions(model=str(tiny_model), quiet=True),
                   progress=lambda n, total: seen.append((n, total)))
    assert seen[-1][0] == FRAMES and [n for n, _ in seen] == list(range(1, FRAMES + 1))


def test_a_folder_from_another_film_is_refused(studio: Studio, tiny_model: Path,
                                               tiny_guided: Path, tmp_path: Path):
    other = write_film(tmp_path / "other.mkv", scene()[::-1])  # same length, other frames
    with pytest.raises(InputError, match="made for another film"):
        Studio(other, studio.folder, colorize=studio.options, output=tmp_path / "o.mp4")
    shorter = write_film(tmp_path / "short.mkv", scene(n=12, cut=None))
    with pytest.raises(InputError, match="12"):
        Studio(shorter, studio.folder, colorize=studio.options, output=tmp_path / "o.mp4")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 1000)
    with pytest.raises(InputError):
        Studio(broken, tmp_path / "b_shots", colorize=studio.options, output=tmp_path / "b.mp4")


def test_loopback_and_urls():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    assert url_for("127.0.0.1", 8123, "abc") == "http://127.0.0.1:8123/?token=abc"
    assert url_for("::1", 8123, "abc") == "http://[::1]:8123/?token=abc"


def vidcolor(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidcolor", *args], capture_output=True,
                          text=True, timeout=120, **kw)


def test_cli_errors_are_one_line(tmp_path: Path, film: Path):
    r = vidcolor("studio", str(tmp_path / "missing.mp4"), "--no-browser")
    assert r.returncode == 3 and r.stderr.count("\n") == 1 and "missing.mp4" in r.stderr
    r = vidcolor("studio", str(film), "--port", "70000", "--no-browser")
    assert r.returncode == 2 and "--port" in r.stderr


def test_cli_serves_until_ctrl_c(film: Path, tiny_model: Path, tiny_guided: Path,
                                 tmp_path: Path):
    from urllib.error import HTTPError
    from urllib.request import urlopen

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    p = subprocess.Popen(
        [sys.executable, "-m", "vidcolor", "studio", str(film), "--shots", str(tmp_path / "s"),
         "-o", str(tmp_path / "c.mp4"), "--no-browser", "--model", str(tiny_model),
         "--steer-model", str(tiny_guided), "--working-size", "64", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        url = ""
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not url:
            line = p.stdout.readline()
            if not line:
                break
            if line.startswith("open http://127.0.0.1:"):
                url = line.split()[1]
        assert url, p.stderr.read() if p.poll() is not None else "no URL printed"
        assert "?token=" in url
        with urlopen(url, timeout=30) as r:
            assert r.status == 200 and b"vidcolor studio" in r.read()
        with pytest.raises(HTTPError, match="403"):
            urlopen(url.split("?")[0] + "api/film", timeout=30)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
        assert "stopped" in out and "Traceback" not in err
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()


def test_a_hint_file_of_the_users_is_not_overwritten_without_asking(client: TestClient,
                                                                    studio: Studio):
    key = studio.describe()["shots"][0]["keyframe"]
    mine = studio.folder / f"hints_f{key:06d}.json"
    mine.write_text('{"frame": 4, "points": []}')  # made by hand, not listed anywhere
    client.post("/api/shot/0/hints", headers=AUTH, json={
        "frame": key, "points": [{"x": 4, "y": 4, "color": "blue"}]})
    r = client.post("/api/save", headers=AUTH, json={})
    assert r.status_code == 409 and "not written by the studio" in r.json()["error"]
    assert mine.read_text() == '{"frame": 4, "points": []}'
    assert client.post("/api/save", headers=AUTH, json={"force": True}).status_code == 200
    assert json.loads(mine.read_text())["points"][0]["color"] == "blue"
    client.post("/api/shot/0/hints", headers=AUTH, json={
        "frame": key, "points": [{"x": 5, "y": 4, "color": "blue"}]})
    assert client.post("/api/save", headers=AUTH, json={}).status_code == 200  # its own now


def test_changes_need_the_header_not_the_cookie(client: TestClient):
    client.get(f"/?token={TOKEN}")  # the page's cookie is set
    assert client.get("/api/film").status_code == 200  # reading with the cookie is fine
    r = client.post("/api/save", json={"force": True})  # another site's page could do this
    assert r.status_code == 403
    assert client.post(f"/api/save?token={TOKEN}", json={}).status_code == 403
    assert client.post("/api/save", headers=AUTH, json={}).status_code == 200


def test_users_hint_files_follow_their_frames_through_cut_edits(client: TestClient,
                                                               studio: Studio):
    mine = studio.folder / "my_clicks.json"  # the user's own file, in the JSON list form
    mine.write_text(json.dumps({"frame": 16, "points": [{"x": 3, "y": 3, "color": [0, 0, 255]}]}))
    listed = studio.folder / "hints_f000002.json"  # studio-named, written by hand as a list
    listed.write_text(json.dumps([{"x": 5, "y": 6, "color": [255, 0, 0]}]))
    m = read_manifest(studio.folder)
    m.shots[0].hints = [listed]
    m.shots[1].hints = [mine]
    write_manifest(m)
    again = Studio(studio.film, studio.folder, colorize=studio.options, output=studio.output)
    c = TestClient(make_app(again, TOKEN))
    shots = c.get("/api/film", headers=AUTH).json()["shots"]
    assert shots[0]["hints"] == {"2": [{"x": 5.0, "y": 6.0, "color": "#ff0000"}]}  # its name
    assert shots[1]["hint_files"] == ["my_clicks.json"]
    r = c.post("/api/cuts", headers=AUTH, json={"op": "split", "shot": 1, "frame": 15})
    assert [s["hint_files"] for s in r.json()["shots"]] == [[], [], ["my_clicks.json"]]
    r = c.post("/api/cuts", headers=AUTH, json={"op": "move", "shot": 1, "frame": 17})
    assert [s["hint_files"] for s in r.json()["shots"]] == [[], ["my_clicks.json"], []]
    assert c.post("/api/save", headers=AUTH, json={}).status_code == 200
    plan = build_plan(again.info, shots=again.folder)  # the CLI accepts what was saved
    assert [h.path.name for h in plan.shots[1].hints] == ["my_clicks.json"]
    again.close()


def test_merge_says_what_it_could_not_keep(client: TestClient, studio: Studio):
    client.post("/api/shot/1/saturation", headers=AUTH, json={"value": 0.5})
    r = client.post("/api/cuts", headers=AUTH, json={"op": "merge", "shot": 0})
    assert r.status_code == 200
    assert any("saturation 0.5 was dropped" in n for n in r.json()["notes"])


def test_a_long_shot_scrubs_at_its_propagated_frames(studio: Studio, monkeypatch):
    monkeypatch.setattr(session_mod, "RUN_FRAMES", 4)  # a 10-frame shot: every 3rd frame
    client = TestClient(make_app(studio, TOKEN))
    key = studio.describe()["shots"][0]["keyframe"]
    r = client.get(f"/api/shot/0/frame/{key}?kind=steered", headers=AUTH)
    assert r.headers["X-Frame"] == str(key)
    shown = [int(client.get(f"/api/shot/0/frame/{f}?kind=steered", headers=AUTH)
                 .headers["X-Frame"]) for f in range(CUT)]
    run = studio._run_key(0)[2]
    assert set(shown) <= set(run) and shown[0] == 0 and shown[CUT - 1] == CUT - 1
    assert all(abs(s - f) <= 2 for f, s in enumerate(shown))
    grey = client.get("/api/shot/0/frame/1?kind=grey", headers=AUTH)
    assert grey.headers["X-Frame"] == "1"
