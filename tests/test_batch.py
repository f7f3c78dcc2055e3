"""``vidcolor batch``: mirrored outputs, failure isolation, resume, kill -9 safety, shot-parallel
split-and-join, and the Ray engine (``-m slow``), all on tiny clips and a tiny random model."""

from __future__ import annotations

import errno
import itertools
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import AUDIO_RATE, leftovers, make_clip, make_image, pattern_rgb

from vidcolor.__main__ import main
from vidcolor.batch import BatchOptions, run_batch, shots
from vidcolor.batch.items import discover
from vidcolor.batch.ray_engine import check_reachable
from vidcolor.batch.state import STATE_NAME, batch_lock
from vidcolor.errors import OutputError, UsageError
from vidcolor.media.atomic import translate_os_error
from vidcolor.pipeline import ColorizeOptions, colorize_video

REPO = Path(__file__).resolve().parent.parent


# -- helpers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exact_preset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Lossless FFV1 in Matroska: reproducible to the bit (libx264 with threads is not)."""
    path = tmp_path_factory.mktemp("preset") / "exact.toml"
    path.write_text('codec = "ffv1"\ncontainer = "mkv"\n')
    return path


def colorize_opts(model: Path, **kw) -> ColorizeOptions:
    return ColorizeOptions(model=str(model), device="cpu", quiet=True, **kw)


def batch_opts(model: Path, colorize: dict | None = None, **kw) -> BatchOptions:
    return BatchOptions(colorize=colorize_opts(model, **(colorize or {})), **kw)


def make_tree(root: Path, *, broken: bool = True) -> Path:
    """src/a/clip1.mp4 (audio), src/b/c/clip2.mkv, src/img.png, src/broken/bad.mp4, notes."""
    src = root / "src"
    (src / "a").mkdir(parents=True)
    (src / "b" / "c").mkdir(parents=True)
    make_clip(src / "a" / "clip1.mp4", n=6)
    make_clip(src / "b" / "c" / "clip2.mkv", n=5, audio=False)
    make_image(src / "img.png")
    (src / "notes.txt").write_text("not media: ignored by the folder walk\n")
    if broken:
        (src / "broken").mkdir()
        (src / "broken" / "bad.mp4").write_text("this is not a video\n" * 20)
    return src


def read_report(path: Path) -> dict[str, dict]:
    """Report items by input file name."""
    return {Path(it["input"]).name: it for it in json.loads(path.read_text())["items"]}


def frame_count(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def packets(path: Path, kind: str) -> list[tuple[Fraction, Fraction, bytes]]:
    """(pts s, dts s, bytes) of every packet of the first stream of a kind, in file order."""
    with av.open(str(path)) as c:
        stream = getattr(c.streams, kind)[0]
        tb = Fraction(stream.time_base)
        return [(p.pts * tb, p.dts * tb, bytes(p)) for p in c.demux(stream) if p.size]


def decoded(path: Path) -> list[tuple[int, bytes]]:
    """(pts, YUV 4:4:4 pixels) of every decoded frame."""
    with av.open(str(path)) as c:
        return [(f.pts, f.to_ndarray(format="yuv444p").tobytes()) for f in c.decode(video=0)]


def video_times(path: Path) -> list[Fraction]:
    """Presentation times (s) of every video packet, in order."""
    return sorted(p[0] for p in packets(path, "video"))


def stream_dump(path: Path) -> dict[tuple, list[tuple]]:
    """Every packet of every stream with its timestamps, stream by stream: equal dumps mean
    identical streams (the muxer may interleave them differently)."""
    with av.open(str(path)) as c:
        dump: dict[tuple, list[tuple]] = {
            (s.index, s.type, s.codec_context.name, bytes(s.codec_context.extradata or b"")): []
            for s in c.streams
        }
        keys = list(dump)
        for p in c.demux():
            if p.size:
                dump[keys[p.stream.index]].append((p.pts, p.dts, p.duration, bytes(p)))
        return dump


def make_shots_clip(path: Path, *, n: int = 75, fps: int = 25, cuts=(25, 50),
                    size=(64, 48)) -> Path:
    """A clip of three visibly different shots (hard cuts at frames ``cuts``) with AAC audio."""
    w, h = size
    tb = Fraction(1, fps)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.time_base = vs.codec_context.time_base = tb
        vs.gop_size = 12
        vs.options = {"preset": "ultrafast", "crf": "20", "bf": "0"}
        aus = out.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
        frame_size = aus.codec_context.frame_size or 1024
        samples = math.ceil(n / fps * AUDIO_RATE)
        events: list[tuple[Fraction, int, int]] = [(i * tb, 0, i) for i in range(n)]
        events += [(Fraction(s, AUDIO_RATE), 1, s) for s in range(0, samples, frame_size)]
        for _t, kind, i in sorted(events):
            if kind == 0:
                shot = sum(i >= c for c in cuts) % 3
                rgb = pattern_rgb(w, h, i).astype(np.float32)
                rgb = (rgb * 0.25, 255 - rgb * 0.25, rgb * 0.5 + 64)[shot]
                frame = av.VideoFrame.from_ndarray(rgb.clip(0, 255).astype(np.uint8), "rgb24")
                frame = frame.reformat(format="yuv420p")
                frame.pts, frame.time_base = i, tb
                out.mux(vs.encode(frame))
            else:
                t = np.arange(i, i + frame_size) / AUDIO_RATE
                wave = (0.3 * np.sin(2 * math.pi * 440.0 * t)).astype(np.float32)
                af = av.AudioFrame.from_ndarray(np.stack([wave, wave]), format="fltp",
                                                layout="stereo")
                af.sample_rate, af.pts, af.time_base = AUDIO_RATE, i, Fraction(1, AUDIO_RATE)
                out.mux(aus.encode(af))
        out.mux(vs.encode(None))
        out.mux(aus.encode(None))
    return path


# -- local engine ----------------------------------------------------------------------------


def test_tree_mirrored_and_broken_file_reported(tmp_path: Path, tiny_model: Path) -> None:
    src = make_tree(tmp_path)
    out, rep = tmp_path / "out", tmp_path / "report.json"
    assert run_batch(src, out, batch_opts(tiny_model, report=rep)) == 1
    assert (out / "a" / "clip1.mp4").is_file()
    assert (out / "b" / "c" / "clip2.mp4").is_file()  # films take the preset's container
    assert (out / "img.png").is_file()  # images keep their format
    assert not (out / "broken" / "bad.mp4").exists()
    assert not (out / "notes.txt").exists()
    assert leftovers(out) == []
    items = read_report(rep)
    assert set(items) == {"clip1.mp4", "clip2.mkv", "img.png", "bad.mp4"}
    assert items["bad.mp4"]["status"] == "failed"
    assert "not a media file" in items["bad.mp4"]["error"]
    assert items["clip1.mp4"]["status"] == items["img.png"]["status"] == "ok"
    assert items["clip1.mp4"]["frames"] == frame_count(out / "a" / "clip1.mp4") == 6
    assert items["clip2.mkv"]["frames"] == frame_count(out / "b" / "c" / "clip2.mp4") == 5
    assert packets(out / "a" / "clip1.mp4", "audio") == packets(src / "a" / "clip1.mp4", "audio")
    with av.open(str(out / "img.png")) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (32, 24)


def test_cli_exit_code_and_summary(tmp_path: Path, tiny_model: Path, capsys) -> None:
    src = make_tree(tmp_path)
    code = main(["batch", str(src), "-o", str(tmp_path / "out"), "--model", str(tiny_model),
                 "--device", "cpu", "-q"])
    assert code == 1
    err = capsys.readouterr().err
    assert "3 coloured" in err and "1 failed" in err
    assert "failed: " in err and "bad.mp4" in err


def test_resume_skips_finished_and_redoes_changed(tmp_path: Path, tiny_model: Path) -> None:
    src = make_tree(tmp_path, broken=False)
    out, rep = tmp_path / "out", tmp_path / "report.json"
    opts = batch_opts(tiny_model, report=rep)
    assert run_batch(src, out, opts) == 0
    outputs = [out / "a" / "clip1.mp4", out / "b" / "c" / "clip2.mp4", out / "img.png"]
    stamps = [p.stat().st_mtime_ns for p in outputs]

    t0 = time.perf_counter()
    assert run_batch(src, out, opts) == 0
    assert time.perf_counter() - t0 < 5.0
    assert {it["status"] for it in read_report(rep).values()} == {"skipped"}
    assert [p.stat().st_mtime_ns for p in outputs] == stamps

    make_clip(src / "a" / "clip1.mp4", n=9)  # changed content
    img = src / "img.png"
    os.utime(img, ns=(img.stat().st_atime_ns, img.stat().st_mtime_ns + 10**9))  # touched
    (out / "b" / "c" / "clip2.mp4").unlink()  # output lost
    assert run_batch(src, out, opts) == 0
    items = read_report(rep)
    assert {k: v["status"] for k, v in items.items()} == {
        "clip1.mp4": "ok", "img.png": "ok", "clip2.mkv": "ok"}
    assert frame_count(out / "a" / "clip1.mp4") == 9

    assert run_batch(src, out, opts) == 0
    assert {it["status"] for it in read_report(rep).values()} == {"skipped"}

    changed = batch_opts(tiny_model, {"saturation": 0.5}, report=rep)  # new settings: redo all
    assert run_batch(src, out, changed) == 0
    assert {it["status"] for it in read_report(rep).values()} == {"ok"}
    state = json.loads((out / STATE_NAME).read_text())
    assert state["settings"]["pipeline"]["saturation"] == 0.5
    assert set(state["items"]) == {"a/clip1.mp4", "b/c/clip2.mkv", "img.png"}


def test_kill_9_mid_item_then_resume(tmp_path: Path, tiny_model: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    make_clip(src / "long.mp4", n=80, audio=False)
    make_image(src / "img.png")
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "vidcolor", "batch", str(src), "-o", str(out),
           "--model", str(tiny_model), "--device", "cpu", "-q"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob(".long.vidcolor-*")):  # the film's temp output is being written
            assert proc.poll() is None, proc.stderr.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the batch never started the film"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
        proc.stderr.close()  # type: ignore[union-attr]
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "long.mp4").exists()  # no partial output at the final name
    assert leftovers(out)  # the killed run's temp file

    rep = tmp_path / "report.json"
    assert run_batch(src, out, batch_opts(tiny_model, report=rep)) == 0
    assert leftovers(out) == []
    assert frame_count(out / "long.mp4") == 80
    assert read_report(rep)["long.mp4"]["status"] == "ok"


def test_outdir_inside_source_refused(tmp_path: Path, tiny_model: Path, capsys) -> None:
    src = make_tree(tmp_path, broken=False)
    code = main(["batch", str(src), "-o", str(src / "colour"), "--model", str(tiny_model),
                 "--device", "cpu", "-q"])
    assert code == 2
    assert "inside the source folder" in capsys.readouterr().err
    assert not (src / "colour").exists()
    with pytest.raises(UsageError):
        run_batch(src, src, batch_opts(tiny_model))


def test_manifest_with_missing_file(tmp_path: Path, tiny_model: Path) -> None:
    src = make_tree(tmp_path, broken=False)
    manifest = tmp_path / "list.txt"
    manifest.write_text(
        "# films to colour\n\n"
        "src/a/clip1.mp4\n"
        f"{src / 'img.png'}\n"
        "src/gone/missing.mp4\n"
        "  # indented comment\n"
    )
    out, rep = tmp_path / "out", tmp_path / "report.json"
    assert run_batch(manifest, out, batch_opts(tiny_model, report=rep)) == 1
    items = read_report(rep)
    assert items["missing.mp4"]["status"] == "failed"
    assert "no such file" in items["missing.mp4"]["error"]
    assert items["clip1.mp4"]["status"] == items["img.png"]["status"] == "ok"
    assert (out / "a" / "clip1.mp4").is_file()  # mirrored relative to the listed files' root
    assert (out / "img.png").is_file()
    assert "clip2.mkv" not in items


def test_pattern_filter(tmp_path: Path, tiny_model: Path) -> None:
    src = make_tree(tmp_path)
    out, rep = tmp_path / "out", tmp_path / "report.json"
    assert run_batch(src, out, batch_opts(tiny_model, pattern="*.png", report=rep)) == 0
    assert set(read_report(rep)) == {"img.png"}


def test_discover_names(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "x").mkdir(parents=True)
    (src / ".hidden").mkdir()
    for name in ("x/a.avi", "x/a.mov", "x/b.MKV", "c.jpg", ".hidden/d.mp4", "x/.e.mp4"):
        (src / name).write_bytes(b"")
    _root, items = discover(src, tmp_path / "out", container="mp4")
    names = {it.key: it.dest.relative_to(tmp_path / "out").as_posix() for it in items}
    assert names == {"x/a.avi": "x/a.avi.mp4", "x/a.mov": "x/a.mov.mp4", "x/b.MKV": "x/b.mp4",
                     "c.jpg": "c.jpg"}


def test_lock_and_stale_temp_files(tmp_path: Path, tiny_model: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    make_image(src / "img.png")
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    stale = [out / ".img.vidcolor-0badc0de.png", out / "sub" / ".film.vidcolor-seg0003.mp4"]
    for p in stale:
        p.write_bytes(b"half")
    with batch_lock(out), pytest.raises(OutputError, match="another vidcolor batch"):
        run_batch(src, out, batch_opts(tiny_model))
    assert run_batch(src, out, batch_opts(tiny_model)) == 0
    assert not any(p.exists() for p in stale)


def test_disk_full_stops_the_batch(tmp_path: Path, tiny_model: Path, monkeypatch) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        make_image(src / name)

    def no_space(src_path, dest, *a, **kw):
        raise translate_os_error(OSError(errno.ENOSPC, "No space left on device"), Path(dest))

    monkeypatch.setattr("vidcolor.batch.tasks.colorize_image", no_space)
    rep = tmp_path / "report.json"
    with pytest.raises(OutputError, match="no space left"):
        run_batch(src, tmp_path / "out", batch_opts(tiny_model, report=rep))
    statuses = sorted(it["status"] for it in read_report(rep).values())
    assert statuses == ["failed", "pending", "pending"]  # stopped after the first failure


def test_transient_failure_retried(tmp_path: Path, tiny_model: Path, monkeypatch) -> None:
    from vidcolor.batch import tasks

    src = tmp_path / "src"
    src.mkdir()
    make_image(src / "img.png")
    real, calls = tasks.colorize_image, []

    def flaky(*a, **kw):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("CUDA error: unspecified launch failure")
        return real(*a, **kw)

    monkeypatch.setattr(tasks, "colorize_image", flaky)
    rep = tmp_path / "report.json"
    assert run_batch(src, tmp_path / "out", batch_opts(tiny_model, report=rep)) == 0
    assert read_report(rep)["img.png"]["status"] == "ok"
    calls.clear()
    rep0 = tmp_path / "report0.json"
    assert run_batch(src, tmp_path / "out0", batch_opts(tiny_model, retry=0, report=rep0)) == 1
    assert "RuntimeError: CUDA error" in read_report(rep0)["img.png"]["error"]


def test_ray_not_installed(tmp_path: Path, tiny_model: Path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    src = make_tree(tmp_path, broken=False)
    with pytest.raises(UsageError, match=r"pip install 'vidcolor\[ray\]'"):
        run_batch(src, tmp_path / "out", batch_opts(tiny_model, engine="ray"))
    assert not (tmp_path / "out").exists()
    assert main(["batch", str(src), "-o", str(tmp_path / "out"), "--engine", "ray",
                 "--model", str(tiny_model), "-q"]) == 2


def test_unreachable_ray_address() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    with pytest.raises(UsageError, match=f"cannot reach a Ray cluster at 127.0.0.1:{port}"):
        check_reachable(f"127.0.0.1:{port}")
    assert time.perf_counter() - t0 < 10
    with pytest.raises(UsageError, match="host:port"):
        check_reachable("no-port-here")


# -- shot-parallel films ---------------------------------------------------------------------


def _scan(n: int, cuts: tuple[int, ...], peak: int | None = None) -> shots.ScanResult:
    dist = [0.01] * n
    if peak is not None:
        dist[peak] = 0.2
    for c in cuts:
        dist[c] = 1.0
    return shots.ScanResult(0, Fraction(1, 25), tuple(range(n)), tuple(dist), cuts, True)


def test_plan_prefers_cuts_then_abrupt_frames() -> None:
    plan = shots.make_plan(_scan(100, (30, 70), peak=55), target=1.0)
    assert plan is not None
    starts = [s.first_pts for s in plan.segments]
    assert starts == [0, 30, 55, 70]
    assert [s.at_cut for s in plan.segments] == [False, True, False, True]
    assert plan.seams == 1 and plan.frames == 100
    assert sum(s.frames for s in plan.segments) == 100
    assert plan.segments[1].start == Fraction(30, 25)
    assert plan.segments[1].duration == Fraction(25, 25)
    assert plan.segments[-1].duration is None
    assert shots.make_plan(_scan(30, ()), target=1.0) is None  # too short to split
    unclean = shots.ScanResult(0, Fraction(1, 25), tuple(range(100)), (0.0,) * 100, (), False)
    assert shots.make_plan(unclean, target=1.0) is None


def test_scan_windows_partition() -> None:
    windows = shots.scan_windows(Fraction(100), 8)
    assert len(windows) == 3  # at least MIN_SCAN_SECONDS each
    assert windows[0][0] == 0 and windows[-1][1] is None
    for (s0, d0), (s1, _) in itertools.pairwise(windows):
        assert s0 + d0 == s1
    assert shots.scan_windows(Fraction(10), 4) == [(Fraction(0), None)]


def test_split_and_join_matches_single_run(tmp_path: Path, tiny_model: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    film = make_shots_clip(src / "shots.mp4")
    out, rep = tmp_path / "out", tmp_path / "report.json"
    opts = batch_opts(tiny_model, workers=2, split_seconds=1.0, chunk_seconds=1.0, report=rep)
    assert run_batch(src, out, opts) == 0
    item = read_report(rep)["shots.mp4"]
    assert item["segments"] == 3 and item["frames"] == 75
    joined = out / "shots.mp4"
    assert leftovers(out) == []

    single = tmp_path / "single.mp4"
    colorize_video(film, single, colorize_opts(tiny_model))
    assert frame_count(joined) == frame_count(single) == 75
    assert video_times(joined) == video_times(single) == video_times(film)
    assert packets(joined, "audio") == packets(single, "audio") == packets(film, "audio")
    with av.open(str(joined)) as c:  # each segment is a fresh encode: a keyframe at each cut
        keys = [p.pts * Fraction(p.time_base) for p in c.demux(video=0) if p.is_keyframe]
    assert Fraction(1) in keys and Fraction(2) in keys


def descendants(pid: int) -> list[int]:
    """Every process below pid (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """True while pid exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


# -- Ray -------------------------------------------------------------------------------------


def _ray():
    return pytest.importorskip("ray", reason="Ray is not installed (pip install 'vidcolor[ray]')")


@pytest.mark.slow
def test_ray_engine_same_outputs_as_local(tmp_path: Path, tiny_model: Path,
                                          exact_preset: Path) -> None:
    ray = _ray()
    src = make_tree(tmp_path)
    (src / "shots").mkdir()
    make_shots_clip(src / "shots" / "long.mp4")
    c = {"pipeline": str(exact_preset)}
    local_rep, ray_rep = tmp_path / "local.json", tmp_path / "ray.json"
    assert run_batch(src, tmp_path / "local", batch_opts(tiny_model, c, report=local_rep)) == 1
    opts = batch_opts(tiny_model, c, engine="ray", workers=2, split_seconds=1.0,
                      chunk_seconds=1.0, report=ray_rep)
    assert run_batch(src, tmp_path / "ray", opts) == 1
    assert not ray.is_initialized()  # the local instance it started is shut down
    local, remote = read_report(local_rep), read_report(ray_rep)
    assert {k: v["status"] for k, v in local.items()} == {k: v["status"] for k, v in remote.items()}
    assert remote["long.mp4"]["segments"] == 3
    assert remote["bad.mp4"]["status"] == "failed"
    for rel in ("a/clip1.mkv", "b/c/clip2.mkv"):  # coloured whole by both engines
        assert stream_dump(tmp_path / "ray" / rel) == stream_dump(tmp_path / "local" / rel), rel
    # Split at its cuts by Ray, whole by local: the very same pictures, timestamps and sound
    # (the bytes differ only because each segment starts with a fresh FFV1 keyframe).
    joined = tmp_path / "ray" / "shots" / "long.mkv"
    whole = tmp_path / "local" / "shots" / "long.mkv"
    assert decoded(joined) == decoded(whole)
    assert packets(joined, "audio") == packets(whole, "audio")
    png = [(tmp_path / d / "img.png").read_bytes() for d in ("ray", "local")]
    assert png[0] == png[1]
    assert leftovers(tmp_path / "ray") == []


@pytest.mark.slow
def test_ray_split_film_matches_single_run(tmp_path: Path, tiny_model: Path) -> None:
    _ray()
    src = tmp_path / "src"
    src.mkdir()
    film = make_shots_clip(src / "shots.mp4")
    rep = tmp_path / "report.json"
    opts = batch_opts(tiny_model, engine="ray", workers=2, split_seconds=1.0, chunk_seconds=1.0,
                      report=rep)
    assert run_batch(src, tmp_path / "out", opts) == 0
    assert read_report(rep)["shots.mp4"]["segments"] == 3
    joined = tmp_path / "out" / "shots.mp4"
    assert frame_count(joined) == 75
    assert video_times(joined) == video_times(film)
    assert packets(joined, "audio") == packets(film, "audio")


@pytest.mark.slow
def test_kill_9_during_parallel_split_then_resume(tmp_path: Path, tiny_model: Path) -> None:
    """The pool's workers die with the batch (no orphan writes), and a rerun completes."""
    src = tmp_path / "src"
    src.mkdir()
    make_shots_clip(src / "film.mp4", n=150, cuts=(50, 100))
    out = tmp_path / "out"
    code = (
        "import sys; from pathlib import Path\n"
        "from vidcolor.batch import BatchOptions, run_batch\n"
        "from vidcolor.pipeline import ColorizeOptions\n"
        "if __name__ == '__main__':\n"
        f"    c = ColorizeOptions(model={str(tiny_model)!r}, device='cpu', quiet=True)\n"
        "    o = BatchOptions(colorize=c, workers=2, split_seconds=1.0, chunk_seconds=1.0)\n"
        "    run_batch(Path(sys.argv[1]), Path(sys.argv[2]), o)\n"
    )
    script = tmp_path / "run.py"
    script.write_text(code)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, str(script), str(src), str(out)], env=env)
    try:
        deadline = time.monotonic() + 180
        while not list(out.glob(".film.vidcolor-seg*")):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        helpers = descendants(proc.pid)  # forkserver, resource tracker, pool workers
        assert len(helpers) >= 3
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    deadline = time.monotonic() + 10
    while any(alive(p) for p in helpers):  # every helper process goes with the batch
        assert time.monotonic() < deadline, [p for p in helpers if alive(p)]
        time.sleep(0.05)
    assert not (out / "film.mp4").exists()
    assert run_batch(src, out, batch_opts(tiny_model, workers=2, split_seconds=1.0,
                                          chunk_seconds=1.0)) == 0
    assert frame_count(out / "film.mp4") == 150
    assert leftovers(out) == []


def test_split_ntsc_rate_into_matroska_keeps_exact_times(tmp_path: Path, tiny_model: Path) -> None:
    """23.976 fps into Matroska (1 ms ticks): segment shifts are not whole ticks, so the join
    restores each frame's exact source pts; rotation is kept too."""
    src = tmp_path / "src"
    src.mkdir()
    film = make_clip(src / "ntsc.mp4", n=30, fps=24, time_base=Fraction(1001, 24000),
                     rotation=90, gop=6)
    preset = tmp_path / "mkv.toml"
    preset.write_text('container = "mkv"\n')
    rep = tmp_path / "report.json"
    opts = batch_opts(tiny_model, {"pipeline": str(preset)}, workers=2, split_seconds=0.3,
                      chunk_seconds=0.4, report=rep)
    assert run_batch(src, tmp_path / "out", opts) == 0
    assert read_report(rep)["ntsc.mp4"]["segments"] >= 3
    joined = tmp_path / "out" / "ntsc.mkv"
    single = tmp_path / "single.mkv"
    colorize_video(film, single, colorize_opts(tiny_model, pipeline=str(preset)))
    assert video_times(joined) == video_times(single)
    assert packets(joined, "audio") == packets(single, "audio")
    from vidcolor.media.decode import probe_video

    assert probe_video(joined).rotation == probe_video(single).rotation == 90


def test_join_failure_falls_back_to_whole_run(tmp_path: Path, tiny_model: Path,
                                              monkeypatch) -> None:
    from vidcolor.batch import local

    real_engine = local.LocalEngine
    monkeypatch.setattr(local, "LocalEngine", lambda opts, workers: real_engine(opts, 1))

    def refuse(src, plan, dest):
        raise shots.JoinError(f"{dest}: segment 1 was encoded with other codec parameters")

    monkeypatch.setattr(shots, "join_segments", refuse)  # tasks run in this process
    src = tmp_path / "src"
    src.mkdir()
    make_shots_clip(src / "shots.mp4", n=50, cuts=(25,))
    rep, out = tmp_path / "report.json", tmp_path / "out"
    opts = batch_opts(tiny_model, workers=2, split_seconds=1.0, chunk_seconds=1.0, report=rep)
    assert run_batch(src, out, opts) == 0
    item = read_report(rep)["shots.mp4"]
    assert item["status"] == "ok" and item["segments"] is None and item["frames"] == 50
    assert frame_count(out / "shots.mp4") == 50
    assert leftovers(out) == []


def test_frames_counted_live_and_no_lock_left(tmp_path: Path, tiny_model: Path) -> None:
    """The bar's frame count moves while a film runs (not only when it is done), and a
    finished batch leaves no lock file naming a dead process."""
    from vidcolor.batch.local import LocalEngine
    from vidcolor.batch.state import LOCK_NAME
    from vidcolor.batch.tasks import ITEM, Task, _live_progress

    engine = LocalEngine(colorize_opts(tiny_model), 1)
    seen: list[int] = []
    cb = _live_progress()
    for n in (1, 2, 5):
        cb(n, 5)
        seen.append(engine.live_frames)
    assert seen == [1, 2, 5]
    src = make_clip(tmp_path / "clip.mp4", n=7, audio=False)
    engine.submit(Task(kind=ITEM, key="k", src=src, dest=tmp_path / "o" / "c.mp4"))
    [res] = engine.wait()
    assert res.ok and engine.live_frames == 5 + 7 and engine.running == []
    engine.close()
    src_dir = make_tree(tmp_path / "tree", broken=False)
    out = tmp_path / "out"
    assert run_batch(src_dir, out, batch_opts(tiny_model)) == 0
    assert not (out / LOCK_NAME).exists()


def test_the_bar_names_the_file_being_coloured(tmp_path: Path, tiny_model: Path,
                                               monkeypatch) -> None:
    from vidcolor.batch import local
    from vidcolor.batch.tasks import ITEM, Task

    engine = local.LocalEngine(colorize_opts(tiny_model), 1)
    seen = []
    monkeypatch.setattr(local, "execute", lambda task, opts: seen.append(engine.running))
    engine.submit(Task(kind=ITEM, key="k", src=tmp_path / "reel1.mp4", dest=tmp_path / "o.mp4"))
    engine.wait()
    assert seen == [["reel1.mp4"]] and engine.running == []
    engine.close()
