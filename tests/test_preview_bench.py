"""vidcolor preview, vidcolor bench and samples/make_sample.py on tiny synthetic media."""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
import tempfile
from fractions import Fraction
from pathlib import Path
from types import ModuleType

import av
import numpy as np
import pytest
from conftest import pattern_rgb
from PIL import Image

from vidcolor.__main__ import main as cli_main
from vidcolor.bench import BenchOptions, numbered_frames, run_bench
from vidcolor.errors import OutputError, UsageError
from vidcolor.media import probe_video
from vidcolor.pipeline import ColorizeOptions
from vidcolor.preview import (
    DEFAULT_COUNT,
    GAP,
    PreviewOptions,
    format_time,
    make_preview,
    parse_times,
    sheet_layout,
)

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"


@pytest.fixture(scope="module")
def copts(tiny_model: Path) -> ColorizeOptions:
    return ColorizeOptions(model=str(tiny_model), device="cpu", quiet=True)


def pairs(sheet: Path, count: int, tile: tuple[int, int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(grey, colour) pictures cut out of a sheet, checking its size on the way."""
    layout = sheet_layout(count, tile)
    img = np.asarray(Image.open(sheet).convert("RGB")).astype(np.int16)
    assert (img.shape[1], img.shape[0]) == layout.size
    w, h = tile
    return [
        (img[y:y + h, x:x + w], img[y:y + h, x + w + GAP:x + 2 * w + GAP])
        for x, y in layout.boxes
    ]


def chroma(rgb: np.ndarray) -> float:
    """Mean |R - G| + |G - B|: 0 for grey."""
    return float(np.mean(np.abs(rgb[..., 0] - rgb[..., 1]) + np.abs(rgb[..., 1] - rgb[..., 2])))


# -- preview ---------------------------------------------------------------------------------


def test_preview_count(clip_with_audio: Path, tmp_path: Path, copts: ColorizeOptions) -> None:
    out = make_preview(clip_with_audio, tmp_path / "s.png", PreviewOptions(copts, count=3))
    found = pairs(out, 3, (64, 48))
    for grey, colour in found:
        assert chroma(grey) == 0.0
        assert chroma(colour) > 2.0
    assert not np.array_equal(found[0][0], found[2][0])  # different moments of the film


def test_preview_default_count(clip_with_audio: Path, tmp_path: Path, copts) -> None:
    assert PreviewOptions().frame_count == DEFAULT_COUNT
    out = make_preview(clip_with_audio, tmp_path / "s.png", PreviewOptions(copts))
    assert len(pairs(out, DEFAULT_COUNT, (64, 48))) == DEFAULT_COUNT


def test_preview_at_and_past_end(
    clip_with_audio: Path, tmp_path: Path, copts: ColorizeOptions, caplog
) -> None:
    at = (Fraction(0), Fraction(24, 25), Fraction(99))  # first, last (0.96 s), past the end
    with caplog.at_level(logging.WARNING, logger="vidcolor"):
        out = make_preview(clip_with_audio, tmp_path / "s.png", PreviewOptions(copts, at=at))
    found = pairs(out, 3, (64, 48))
    assert np.array_equal(found[1][0], found[2][0])  # past the end shows the last frame
    assert not np.array_equal(found[0][0], found[1][0])
    assert "past the end" in caplog.text and "0:01:39.000" in caplog.text


def test_preview_rotated_is_upright(clip_rotated: Path, tmp_path: Path, copts) -> None:
    out = make_preview(clip_rotated, tmp_path / "s.png", PreviewOptions(copts, count=2))
    pairs(out, 2, (48, 64))  # 64x48 coded, 90 degrees: shown 48 wide, 64 tall


def test_preview_shows_the_film_output(clip_with_audio: Path, tmp_path: Path,
                                       copts: ColorizeOptions) -> None:
    """The sheet's colour frame is the film's own frame at that time (same working size,
    temporal stage over the lead-in, guided upsampling), up to the film's lossy encode."""
    from vidcolor.media.decode import frame_to_rgb, seek_frames
    from vidcolor.pipeline import colorize_video
    from vidcolor.preview import LEAD_FRAMES, tile_size

    film = tmp_path / "film.mp4"
    colorize_video(clip_with_audio, film, ColorizeOptions(model=copts.model, device="cpu",
                                                          quiet=True, crf=0))
    t = Fraction(8, 25)
    assert LEAD_FRAMES >= 8  # the lead-in reaches back to frame 0: the same history as the film
    sheet = make_preview(clip_with_audio, tmp_path / "s.png", PreviewOptions(colorize=copts,
                                                                           at=(t,)))
    info = probe_video(clip_with_audio)
    tile = tile_size(*info.display_size)
    [(_, colour)] = pairs(sheet, 1, tile)
    frame = seek_frames(film, [t])[0]
    want = np.asarray(Image.fromarray((frame_to_rgb(frame) * 255).round().astype(np.uint8))
                      .resize(tile, Image.Resampling.LANCZOS)).astype(np.int16)
    assert np.abs(colour - want).mean() < 3.0


def test_preview_image(tiny_image: Path, tmp_path: Path, copts: ColorizeOptions) -> None:
    out = make_preview(tiny_image, tmp_path / "s.png", PreviewOptions(copts))
    [(grey, colour)] = pairs(out, 1, (32, 24))
    assert chroma(grey) == 0.0 and chroma(colour) > 2.0


def test_preview_refuses_existing_output_and_input(
    clip_with_audio: Path, tmp_path: Path, copts: ColorizeOptions
) -> None:
    dest = tmp_path / "s.png"
    dest.write_bytes(b"keep")
    with pytest.raises(OutputError, match="already exists"):
        make_preview(clip_with_audio, dest, PreviewOptions(copts, count=1))
    assert dest.read_bytes() == b"keep"
    make_preview(clip_with_audio, dest, PreviewOptions(copts, count=1, overwrite=True))
    assert Image.open(dest).size == sheet_layout(1, (64, 48)).size
    with pytest.raises(OutputError, match="is the input"):
        make_preview(dest, dest, PreviewOptions(copts, overwrite=True))
    with pytest.raises(OutputError, match="image extension"):
        make_preview(clip_with_audio, tmp_path / "s.mp4", PreviewOptions(copts))


def test_preview_times() -> None:
    assert parse_times("1:30, 2.5,0") == (Fraction(90), Fraction(5, 2), Fraction(0))
    assert PreviewOptions(at=("0:01", 2)).at == (Fraction(1), Fraction(2))
    assert format_time(Fraction(3723) + Fraction(1, 2)) == "1:02:03.500"
    for bad in ("-1", "1,x", "1,,2", "1:2:3:4", "1:-30"):
        with pytest.raises(UsageError):
            parse_times(bad)
    with pytest.raises(UsageError, match=">= 0"):
        PreviewOptions(at=(Fraction(-1),))
    with pytest.raises(UsageError, match="--count"):
        PreviewOptions(count=0)
    with pytest.raises(UsageError, match="not both"):
        PreviewOptions(at=(Fraction(1),), count=2)


def test_preview_cli(clip_with_audio: Path, tmp_path: Path, tiny_model: Path) -> None:
    out = tmp_path / "s.png"
    args = ["preview", str(clip_with_audio), "-o", str(out), "--model", str(tiny_model),
            "--device", "cpu", "-q"]
    assert cli_main([*args, "--at", "0.2,0:00.6"]) == 0
    assert Image.open(out).size == sheet_layout(2, (64, 48)).size
    assert cli_main([*args, "--count", "1"]) == 4  # exists, no --overwrite


# -- bench -----------------------------------------------------------------------------------


def test_bench_clip(
    clip_with_audio: Path, tmp_path: Path, copts: ColorizeOptions, capsys, monkeypatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    report = tmp_path / "bench.json"
    result = run_bench(clip_with_audio, BenchOptions(colorize=copts, json=report))
    assert result.frames == probe_video(clip_with_audio).frame_count == 25
    assert [s.name for s in result.stages] == [
        "decode", "colourize", "temporal", "upsample+chroma", "encode"
    ]
    assert all(s.seconds > 0 and s.ms_per_frame > 0 for s in result.stages)
    assert sum(s.share for s in result.stages) == pytest.approx(1.0)
    assert result.wall_seconds > 0 and result.fps > 0 and result.peak_rss_mb > 0
    assert result.input_size == (64, 48) and result.working_size == (64, 64)
    assert result.rss_mb and result.rss_mb[-1][0] == 25
    assert result.torch_threads >= 1 and result.cpu_count >= 1 and result.device == "cpu"
    assert result.temporal
    assert list(scratch.iterdir()) == []  # the temporary output is gone
    data = json.loads(report.read_text())
    assert data["frames"] == 25 and data["fps"] > 0 and len(data["stages"]) == 5
    assert data["note"].startswith("stages overlap")
    table = capsys.readouterr().out
    assert "ms/frame" in table and "fps" in table and "stages overlap" in table


def test_bench_folder_with_duration(tmp_path: Path, copts: ColorizeOptions) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(1, 13):  # frame1 .. frame12: natural order, not text order
        Image.fromarray(pattern_rgb(66, 50, i)).save(frames / f"frame{i}.jpg")
    (frames / "notes.txt").write_text("not a frame")
    assert [p.name for p in numbered_frames(frames)][:3] == ["frame1.jpg", "frame2.jpg",
                                                              "frame3.jpg"]
    result = run_bench(frames, BenchOptions(colorize=copts))
    assert result.frames == 12 and result.assembled_from_frames
    assert result.input_size == (66, 50)
    short = run_bench(frames, BenchOptions(colorize=copts, duration=Fraction(1, 4)))
    assert short.frames == 6  # 24 fps
    with pytest.raises(UsageError, match="--duration"):
        BenchOptions(duration=Fraction(0))


def test_bench_cut_is_reported(tmp_path: Path, copts: ColorizeOptions) -> None:
    frames = tmp_path / "cut"
    frames.mkdir()
    for i in range(6):  # a still grey gradient, then a hard cut to near black
        Image.fromarray(pattern_rgb(64, 48, 0, grey=True)).save(frames / f"{i:03d}.png")
    for i in range(6, 12):
        Image.new("RGB", (64, 48), (10, 10, 10)).save(frames / f"{i:03d}.png")
    result = run_bench(frames, BenchOptions(colorize=copts))
    assert [i for i, _ in result.cuts] == [6]
    assert result.cuts[0][1] == Fraction(6, 24)


# -- the sample film -------------------------------------------------------------------------


def _load_make_sample(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """samples/make_sample.py as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("make_sample", SAMPLES / "make_sample.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "make_sample", module)  # dataclasses look it up
    spec.loader.exec_module(module)
    return module


def _check_grey_with_audio(path: Path, seconds: float) -> None:
    info = probe_video(path)
    assert info.is_grey_source and (info.width, info.height) == (640, 360)
    assert [a.codec for a in info.audio] == ["aac"]
    assert info.duration == pytest.approx(seconds, abs=0.05)
    with av.open(str(path)) as c:
        audio = c.streams.audio[0]
        assert audio.rate == 44100 and audio.layout.nb_channels == 2
        samples = sum(f.samples for f in c.decode(audio))
    assert samples == pytest.approx(seconds * 44100, abs=2048)  # AAC pads its last frame
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            uv = frame.to_ndarray(format="yuv420p")[360:]
            assert np.all(uv == 128)


def test_make_sample_short(tmp_path: Path, capsys, monkeypatch) -> None:
    ms = _load_make_sample(monkeypatch)
    out = tmp_path / "short.mp4"
    assert ms.main(["--out", str(out), "--seconds", "1"]) == 0
    assert probe_video(out).frame_count == 24
    _check_grey_with_audio(out, 1.0)
    before = out.read_bytes()
    assert ms.main(["--out", str(out), "--seconds", "1"]) == OutputError.exit_code
    assert out.read_bytes() == before
    assert ms.main(["--out", str(out), "--seconds", "0.1"]) == UsageError.exit_code
    assert "error" in capsys.readouterr().err


def test_shipped_sample() -> None:
    path = SAMPLES / "sample.mp4"
    assert path.stat().st_size < 1_500_000
    _check_grey_with_audio(path, 7.0)
    assert probe_video(path).frame_count == 168
