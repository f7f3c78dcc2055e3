"""Real archives (issue 14, first classes): files with streams that carry no media (timecode
tracks, attachments), tags that are not UTF-8, and a batch written to ``../out``. Each fixture
is made at test time with PyAV, a few kilobytes."""

from __future__ import annotations

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
            rgb = np.full((48, 64, 3), 40 + i * 15, np.uint8)
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
