"""Real archives (issue 14, first classes): files with streams that carry no media (timecode
tracks, attachments), tags that are not UTF-8, and a batch written to ``../out``. Each fixture
is made at test time with PyAV, a few kilobytes."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import av
import numpy as np
import pytest

from vidcolor.__main__ import main
from vidcolor.media.decode import iter_frames, probe_video


def write_film(path: Path, *, timecode: bool = False, attachment: bool = False,
               tags: dict[str, str] | None = None, n: int = 10) -> Path:
    """A tiny grey-ramp film; ``timecode`` adds a MOV tmcd (data) track, ``attachment`` a
    Matroska attachment, ``tags`` container and stream metadata."""
    with av.open(str(path), "w") as out:
        for k, v in (tags or {}).items():
            out.metadata[k] = v
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        if timecode:
            vs.metadata["timecode"] = "01:00:00:00"  # the MOV muxer writes a timecode track
        for k, v in (tags or {}).items():
            vs.metadata[k] = v
        if attachment:
            out.add_attachment("notes.txt", "text/plain", b"telecine notes")
        for i in range(n):
            rgb = np.full((48, 64, 3), 40 + (i * 15) % 200, np.uint8)
            f = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            f.pts = i
            out.mux(vs.encode(f))
        out.mux(vs.encode(None))
    return path


def not_utf8(path: Path) -> Path:
    """Re-spell every 'é' of the file's tags in Latin-1 (same length: the file stays valid)."""
    data = path.read_bytes()
    assert "\u00e9".encode() in data
    path.write_bytes(data.replace("\u00e9".encode(), b"\xe9 "))
    return path


def colour(src: Path, dest: Path, model: Path, capsys) -> tuple[int, str]:
    code = main([str(src), "-o", str(dest), "--model", str(model), "--pipeline", "fast"])
    return code, capsys.readouterr().err


def test_timecode_track_is_no_crash(tmp_path: Path, tiny_model: Path, capsys):
    src = write_film(tmp_path / "camera.mov", timecode=True)
    assert any(s.type == "data" for s in av.open(str(src)).streams)
    code, err = colour(src, tmp_path / "out.mp4", tiny_model, capsys)
    assert code == 0, err
    warnings = [ln for ln in err.splitlines() if "not copied" in ln]
    assert len(warnings) == 1 and "#1 data" in warnings[0]
    assert len(list(iter_frames(tmp_path / "out.mp4"))) == 10


@pytest.mark.parametrize(("suffix", "kept"), [(".mkv", True), (".mp4", False)])
def test_attachment_copied_or_dropped_with_one_line(tmp_path: Path, tiny_model: Path, capsys,
                                                    suffix: str, kept: bool):
    src = write_film(tmp_path / "reel.mkv", attachment=True)
    dest = tmp_path / f"out{suffix}"
    code, err = colour(src, dest, tiny_model, capsys)
    assert code == 0, err
    types = [s.type for s in av.open(str(dest)).streams]
    assert ("attachment" in types) is kept
    assert ("not copied" in err) is not kept


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_tags_that_are_not_utf8(tmp_path: Path, tiny_model: Path, capsys, suffix: str):
    src = not_utf8(write_film(tmp_path / f"latin1{suffix}",
                              tags={"title": "caf\u00e9", "comment": "r\u00e9el"}))
    with pytest.raises(UnicodeDecodeError):  # what a strict reader does with it
        av.open(str(src))
    assert probe_video(src).frame_count == 10
    code, err = colour(src, tmp_path / "out.mp4", tiny_model, capsys)
    assert code == 0, err


def test_batch_to_a_parent_relative_folder(tmp_path: Path, tiny_model: Path, capsys,
                                           monkeypatch):
    work = tmp_path / "work"
    (work / "src").mkdir(parents=True)
    write_film(work / "src" / "a.mov", timecode=True)
    monkeypatch.chdir(work)
    args = ["batch", "src", "-o", "../out", "--model", str(tiny_model), "--pipeline", "fast"]
    assert main(args) == 0, capsys.readouterr().err
    assert (tmp_path / "out" / "a.mp4").is_file()
    assert main(args) == 0  # the rerun finds it done
    assert "1 already done" in capsys.readouterr().err
    assert os.listdir(tmp_path / "out")


def write_size_change(path: Path) -> Path:
    """Raw H.264 whose frame size changes mid-stream (two streams back to back, as a capture
    or broadcast recording that switches resolution): 6 frames at 64x48, then 6 at 96x64."""
    chunks = []
    for k, (w, h) in enumerate(((64, 48), (96, 64))):
        part = path.with_name(f"part{k}.h264")
        with av.open(str(part), "w", format="h264") as out:
            vs = out.add_stream("libx264", rate=25)
            vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
            for i in range(6):
                rgb = np.full((h, w, 3), 40 + (6 * k + i) * 12, np.uint8)
                f = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
                f.pts = i
                out.mux(vs.encode(f))
            out.mux(vs.encode(None))
        chunks.append(part.read_bytes())
        part.unlink()
    path.write_bytes(b"".join(chunks))
    return path


def test_frame_size_change_is_scaled_to_the_first(tmp_path: Path, tiny_model: Path, capsys):
    src = write_size_change(tmp_path / "switch.h264")
    code, err = colour(src, tmp_path / "out.mp4", tiny_model, capsys)
    assert code == 0, err
    assert sum("size changes mid-stream" in ln for ln in err.splitlines()) == 1
    frames = list(iter_frames(tmp_path / "out.mp4"))
    assert len(frames) == 12
    assert {f.y.shape for f in frames} == {(48, 64)}
    # the luma of the scaled frames is the source's, scaled: the ramp goes on past the switch
    means = [float(f.y.mean()) for f in frames]
    assert all(b > a for a, b in itertools.pairwise(means))


def write_animation_file(path: Path, n: int = 6) -> Path:
    """An animated GIF/APNG (by the suffix) of a brightening grey, one frame held longer."""
    from PIL import Image

    frames = [Image.fromarray(np.full((32, 48, 3), 30 + 30 * i, np.uint8)) for i in range(n)]
    durations = [100] * n
    durations[2] = 300
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return path


@pytest.mark.parametrize("suffix", [".png", ".gif"])
def test_animated_image_is_a_film(tmp_path: Path, tiny_model: Path, capsys, suffix: str):
    src = write_animation_file(tmp_path / f"anim{suffix}")
    code, err = colour(src, tmp_path / "out.mp4", tiny_model, capsys)
    assert code == 0, err
    frames = list(iter_frames(tmp_path / "out.mp4"))
    assert len(frames) == 6
    assert [round(float(f.time), 2) for f in frames] == [0.0, 0.1, 0.2, 0.5, 0.6, 0.7]


@pytest.mark.parametrize(("suffix", "out"), [(".png", ".png"), (".gif", ".gif"), (".png", ".webp")])
def test_animated_image_back_to_an_animation(tmp_path: Path, tiny_model: Path, capsys,
                                             suffix: str, out: str):
    from PIL import Image

    src = write_animation_file(tmp_path / f"anim{suffix}")
    dest = tmp_path / f"colour{out}"
    code, err = colour(src, dest, tiny_model, capsys)
    assert code == 0, err
    with Image.open(dest) as img:
        assert img.n_frames == 6
        if out == ".webp":  # Pillow reads no per-frame duration back from WebP
            return
        durations = []
        for i in range(img.n_frames):
            img.seek(i)
            durations.append(img.info.get("duration"))
    assert durations == [100, 100, 300, 100, 100, 100]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".vidcolor")]


class _FlakyContainer:
    """A container whose demuxer fails like a flaky network mount after ``good`` packets."""

    def __init__(self, real, good: int, error: BaseException) -> None:
        self._real, self._good, self._error = real, good, error

    def __getattr__(self, name):
        return getattr(self._real, name)

    def demux(self, *args, **kwargs):
        for i, packet in enumerate(self._real.demux(*args, **kwargs)):
            if i >= self._good:
                raise self._error
            yield packet


def _flaky(monkeypatch, good: int, error: BaseException) -> None:
    import vidcolor.media.decode as decode

    real_init = decode._FrameSource.__init__

    def init(self, container, *args, **kwargs):
        real_init(self, _FlakyContainer(container, good, error), *args, **kwargs)

    monkeypatch.setattr(decode._FrameSource, "__init__", init)


def test_io_error_is_not_damage(tmp_path: Path, tiny_model: Path, capsys, monkeypatch):
    """EIO half-way: exit 9, one line, no output (a truncated film is never a success)."""
    import errno

    src = write_film(tmp_path / "reel.mp4", n=40)
    _flaky(monkeypatch, 20, av.error.OSError(errno.EIO, "Input/output error"))
    dest = tmp_path / "out.mp4"
    code, err = colour(src, dest, tiny_model, capsys)
    assert code == 9, err
    lines = [ln for ln in err.splitlines() if "read error" in ln]
    assert len(lines) == 1 and "Input/output error" in lines[0] and "Traceback" not in err
    assert not dest.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reel.mp4"]


def test_damaged_packets_are_still_skipped(tmp_path: Path, tiny_model: Path, capsys, monkeypatch):
    """Damage (invalid data) is skipped and counted, as before: the film still finishes."""
    src = write_film(tmp_path / "reel.mp4", n=20)
    _flaky(monkeypatch, 15, av.error.InvalidDataError(1094995529, "Invalid data"))
    code, err = colour(src, tmp_path / "out.mp4", tiny_model, capsys)
    assert code == 0, err
    assert "damaged" in err and "read error" not in err
    assert 15 <= len(list(iter_frames(tmp_path / "out.mp4"))) <= 20  # reading resumed


def test_probe_says_what_happens_to_each_stream(tmp_path: Path, capsys):
    from tests.conftest import make_clip

    mov = write_film(tmp_path / "camera.mov", timecode=True)
    mkv = write_film(tmp_path / "reel.mkv", attachment=True)
    clip = make_clip(tmp_path / "tone.mp4", n=5)
    junk = tmp_path / "notes.mp4"
    junk.write_text("not a film")
    assert main(["probe", str(mov), str(mkv)]) == 0
    out = capsys.readouterr().out
    assert "camera.mov: film" in out and "64x48" in out and "25 fps" in out
    assert "data" in out and "left out: carries no picture or sound" in out
    assert "attachment" in out and "cannot hold attachments (use .mkv)" in out
    assert "scan: progressive" in out
    assert main(["probe", str(mkv), "--to", "mkv"]) == 0
    assert "attachment" in (o := capsys.readouterr().out) and "-> copied" in o
    assert main(["probe", str(clip), "--to", ".webm"]) == 0
    assert "audio aac" in (o := capsys.readouterr().out) and "re-encoded to opus" in o
    assert main(["probe", str(clip), str(junk)]) == 3
    captured = capsys.readouterr()
    assert "notes.mp4: cannot be coloured: not a media file" in captured.out
    assert "1 of 2 files cannot be coloured" in captured.err


def test_batch_dry_run_colours_nothing(tmp_path: Path, tiny_model: Path, capsys):
    src = tmp_path / "archive"
    src.mkdir()
    write_film(src / "a.mov", timecode=True)
    write_animation_file(src / "b.gif")
    (src / "c.mp4").write_bytes(b"\x00" * 64)
    out = tmp_path / "out"
    code = main(["batch", str(src), "-o", str(out), "--dry-run", "--model", str(tiny_model)])
    printed = capsys.readouterr().out
    assert code == 1
    assert "a.mov: film" in printed and "b.gif: animated image" in printed
    assert "c.mp4: cannot be coloured" in printed
    assert "3 items: 2 would be coloured, 1 cannot be" in printed
    assert not out.exists()


def write_interlaced(path: Path, *, tff: bool = True, n: int = 6) -> Path:
    """Field-coded H.264 (x264 tff/bff): a bright bar whose two fields end 16 px apart, as a
    moving object does in a 576i/480i transfer."""
    w, h = 96, 64
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"preset": "ultrafast", "qp": "0", "flags": "+ildct+ilme",
                      "x264-params": "tff=1" if tff else "bff=1"}
        vs.codec_context.field_order = 2 if tff else 3
        for i in range(n):
            grey = np.full((h, w, 3), 40, np.uint8)
            grey[0::2, : 32 + 2 * i] = 200  # top field
            grey[1::2, : 48 + 2 * i] = 200  # bottom field: further on
            f = av.VideoFrame.from_ndarray(grey, format="rgb24").reformat(format="yuv420p")
            f.pts = i
            out.mux(vs.encode(f))
        out.mux(vs.encode(None))
    return path


def lightness_predict(self, L):
    """A stand-in model whose colour follows lightness: a = 0.6 (L - 50), b = 0."""
    import torch

    return torch.cat([0.6 * (L - 50.0), torch.zeros_like(L)], 1)


@pytest.mark.parametrize("tff", [True, False])
def test_interlaced_keeps_fields_and_does_not_comb(tmp_path: Path, tiny_model: Path, capsys,
                                                  monkeypatch, tff: bool):
    from vidcolor.colorize import Colorizer

    monkeypatch.setattr(Colorizer, "predict", lightness_predict)
    src = write_interlaced(tmp_path / "576i.mp4", tff=tff)
    info_in = probe_video(src)
    assert info_in.interlaced and info_in.top_field_first is tff
    dest = tmp_path / "out.mp4"
    code = main([str(src), "-o", str(dest), "--model", str(tiny_model), "--pipeline", "fast",
                 "--flow", "none", "--crf", "0"])
    assert code == 0, capsys.readouterr().err
    info = probe_video(dest)
    assert info.interlaced and info.field_order == info_in.field_order
    with av.open(str(src)) as a, av.open(str(dest)) as b:
        fa, fb = list(a.decode(video=0)), list(b.decode(video=0))
    assert len(fa) == len(fb) == 6 and all(f.interlaced_frame for f in fb)
    for x, y in zip(fa, fb, strict=True):  # luma bit-exact
        assert np.array_equal(x.to_ndarray()[: x.height], y.to_ndarray()[: y.height])
    # where the fields differ (x 36-46 on frame 0: top field dark, bottom bright), the chroma
    # rows of each field follow that field: Cr alternates row by row instead of averaging
    cr = np.frombuffer(fb[0].planes[2], np.uint8).reshape(fb[0].planes[2].height, -1)
    zone = cr[2:-2, 18:23].astype(float)
    assert zone[1::2].mean() - zone[0::2].mean() > 20


def test_ctrl_c_ends_a_run_whose_reader_is_blocked(tmp_path: Path, tiny_model: Path,
                                                   monkeypatch):
    """A read that never returns (a hung network mount): Ctrl-C still ends the run, after a
    short grace, with no output and no temporary file."""
    import _thread
    import signal
    import threading
    import time

    import vidcolor.pipeline as pipeline
    from vidcolor.media.decode import FrameReader
    from vidcolor.pipeline import ColorizeOptions, colorize_video

    src = write_film(tmp_path / "reel.mp4", n=20)
    real_next = FrameReader.__next__
    hang = threading.Event()

    reached, done = threading.Event(), threading.Event()

    def blocking_next(self):
        if self.frames_read >= 3:
            reached.set()
            hang.wait(60)  # blocked in "I/O" (released at the end of the test)
        return real_next(self)

    def ctrl_c() -> None:  # once the reader hangs, so the interrupt lands in the run itself
        if reached.wait(60):
            time.sleep(0.3)
            if not done.is_set():
                _thread.interrupt_main()

    monkeypatch.setattr(FrameReader, "__next__", blocking_next)
    monkeypatch.setattr(pipeline, "STOP_GRACE", 0.5)
    # A shell starts background jobs with SIGINT ignored, and interrupt_main then does nothing:
    # give this test Python's own Ctrl-C handler, whatever launched it.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Thread(target=ctrl_c, daemon=True)
    timer.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            colorize_video(src, tmp_path / "out.mp4",
                           ColorizeOptions(model=str(tiny_model), pipeline="fast", quiet=True))
        assert time.monotonic() - t0 < 20  # model load included: a loaded machine is slow
        assert sorted(p.name for p in tmp_path.iterdir()) == ["reel.mp4"]
    finally:
        done.set()
        hang.set()
        signal.signal(signal.SIGINT, previous)
