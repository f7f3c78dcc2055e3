"""The film pipeline through the library: what a run keeps (luma, frames, timestamps, audio,
rotation, depth), what it refuses (bad inputs, outputs, models), and how it stops (errors,
interruption) without leaving files or threads behind. Tiny random model, tiny clips, CPU."""

from __future__ import annotations

import logging
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from conftest import VFR_PTS, colourfulness, leftovers, make_clip, make_image, packets_of
from PIL import Image

from vidcolor import lab
from vidcolor.colorize import Colorizer
from vidcolor.errors import FlowError, InputError, ModelError, OutputError, UsageError
from vidcolor.media import iter_frames, probe_video
from vidcolor.media.encode import VideoWriter
from vidcolor.pipeline import (
    ColorizeOptions,
    VideoResult,
    colorize_image,
    colorize_paths,
    colorize_video,
    pool_threads,
)

# -- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def colorizer(tiny_model: Path) -> Colorizer:
    return Colorizer.load(tiny_model, device="cpu")


@pytest.fixture
def opts(tiny_model: Path):
    """ColorizeOptions for the tiny model, quiet, with keyword overrides."""

    def make(**kw: object) -> ColorizeOptions:
        kw.setdefault("quiet", True)
        return ColorizeOptions(model=str(tiny_model), **kw)  # type: ignore[arg-type]

    return make


def vidcolor_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("vidcolor-")]


@pytest.fixture(autouse=True)
def no_stray_threads():
    """Every test here ends with the pipeline's threads joined, after errors too."""
    yield
    assert vidcolor_threads() == []


def frame_times(path: Path) -> list[Fraction]:
    """Presentation time (container clock, seconds) of every frame."""
    info = probe_video(path)
    return [f.pts * info.time_base for f in iter_frames(info)]


def video_duration(path: Path) -> Fraction:
    info = probe_video(path)
    last = list(iter_frames(info))[-1]
    return last.time + (last.duration or 0) * info.time_base


class FailingPredict:
    """Wraps a Colorizer's predict: raises ``exc`` on call number ``on`` (a mid-film failure)."""

    def __init__(self, colorizer: Colorizer, exc: BaseException, on: int = 3) -> None:
        self.inner = colorizer.predict
        self.exc = exc
        self.on = on
        self.calls = 0

    def __call__(self, L: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.on:
            raise self.exc
        return self.inner(L)


# -- what a run keeps ------------------------------------------------------------------------


def test_round_trip_keeps_frames_times_audio_and_luma(
    clip_with_audio: Path, tmp_path: Path, colorizer: Colorizer, opts
) -> None:
    dest = tmp_path / "out.mkv"
    result = colorize_video(clip_with_audio, dest, opts(codec="ffv1"), colorizer=colorizer)
    assert isinstance(result, VideoResult)
    src_frames, out_frames = list(iter_frames(clip_with_audio)), list(iter_frames(dest))
    assert result.frames == len(out_frames) == len(src_frames) == 25
    # Film time (from the first frame): Matroska cannot start the AAC priming before 0, so the
    # muxer shifts every stream alike by those 21 ms; the .mp4 test checks absolute times.
    assert [f.time for f in out_frames] == [f.time for f in src_frames]
    assert video_duration(dest) == video_duration(clip_with_audio) == 1
    src_audio = packets_of(clip_with_audio)
    assert src_audio and packets_of(dest) == src_audio
    for a, b in zip(src_frames, out_frames, strict=True):  # the encoder got the input's luma
        assert b.y.dtype == a.y.dtype and np.array_equal(a.y, b.y)
    assert colourfulness(dest) > 2.0
    assert leftovers(tmp_path) == []


def test_default_codec_mp4_keeps_duration_and_audio(
    clip_with_audio: Path, tmp_path: Path, colorizer: Colorizer, opts
) -> None:
    dest = tmp_path / "out.mp4"
    result = colorize_video(clip_with_audio, dest, opts(), colorizer=colorizer)
    assert result.frames == 25
    assert probe_video(dest).duration == probe_video(clip_with_audio).duration
    assert frame_times(dest) == frame_times(clip_with_audio)
    assert packets_of(dest) == packets_of(clip_with_audio)
    assert colourfulness(dest) > 2.0


def test_a_film_gives_back_the_thread_settings_it_changed(
    clip_with_audio: Path, tmp_path: Path, colorizer: Colorizer, opts
) -> None:
    # a film runs the model and OpenCV's pool on cores - 2 threads (1 on 2 cores); a library
    # caller's own settings come back once it ends
    import cv2

    torch_before, cv_before = torch.get_num_threads(), cv2.getNumThreads()
    cv2.setNumThreads(3)
    try:
        colorize_video(clip_with_audio, tmp_path / "out.mp4", opts(), colorizer=colorizer)
        assert (torch.get_num_threads(), cv2.getNumThreads()) == (torch_before, 3)
    finally:
        cv2.setNumThreads(cv_before)
    assert pool_threads(2) == 1 and pool_threads(1) == 1 and pool_threads(16) == 14


def test_vfr_keeps_irregular_timestamps(
    clip_vfr: Path, tmp_path: Path, colorizer: Colorizer, opts
) -> None:
    dest = tmp_path / "vfr.mp4"
    colorize_video(clip_vfr, dest, opts(), colorizer=colorizer)
    assert frame_times(dest) == [Fraction(p, 1000) for p in VFR_PTS]
    assert video_duration(dest) == video_duration(clip_vfr)


@pytest.mark.parametrize(
    ("size", "codec", "suffix", "pix_fmt"),
    [
        ((321, 241), "libx264", ".mp4", "yuv444p"),  # odd width: x264 must go 4:4:4
        ((64, 47), "libx264", ".mp4", "yuv422p"),  # odd height only: 4:2:2
        ((321, 241), "ffv1", ".mkv", "yuv420p"),  # ffv1 codes odd 4:2:0 (rounded-up chroma)
    ],
)
def test_odd_sizes(
    size: tuple[int, int],
    codec: str,
    suffix: str,
    pix_fmt: str,
    clip_odd_large: Path,
    tmp_path: Path,
    colorizer: Colorizer,
    opts,
) -> None:
    src = clip_odd_large if size == (321, 241) else make_clip(
        tmp_path / "odd.mp4", size=size, n=4, audio=False, pix_fmt="yuv444p"
    )
    dest = tmp_path / f"out{suffix}"
    result = colorize_video(src, dest, opts(codec=codec), colorizer=colorizer)
    info = probe_video(dest)
    assert (info.width, info.height) == size
    assert info.pix_fmt == pix_fmt
    assert result.frames == len(list(iter_frames(dest))) == 4
    assert colourfulness(dest) > 2.0
    if codec == "ffv1":
        for a, b in zip(iter_frames(src), iter_frames(dest), strict=True):
            assert np.array_equal(a.y, b.y)


def test_rotated_clip_keeps_rotation(
    clip_rotated: Path, tmp_path: Path, colorizer: Colorizer, opts
) -> None:
    dest = tmp_path / "rot.mkv"
    colorize_video(clip_rotated, dest, opts(codec="ffv1"), colorizer=colorizer)
    src, out = probe_video(clip_rotated), probe_video(dest)
    assert src.rotation == out.rotation == 90
    assert (out.width, out.height, out.display_size) == (src.width, src.height, src.display_size)
    for a, b in zip(iter_frames(src), iter_frames(out), strict=True):
        assert np.array_equal(a.y, b.y)


def test_model_sees_rotated_frames_upright(
    tmp_path: Path, colorizer: Colorizer, opts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 64x32 frame shown turned by 90 degrees is 32 wide and 64 high: so is the model input."""
    src = make_clip(tmp_path / "rot.mp4", size=(64, 32), n=3, audio=False, rotation=90)
    shapes = []
    inner = colorizer.predict

    def spy(L: torch.Tensor) -> torch.Tensor:
        shapes.append(tuple(L.shape[-2:]))
        return inner(L)

    monkeypatch.setattr(colorizer, "predict", spy)
    colorize_video(src, tmp_path / "out.mp4", opts(), colorizer=colorizer)
    assert shapes and set(shapes) == {(64, 32)}


def test_10bit_luma_bit_identical(
    clip_10bit: Path, tmp_path: Path, colorizer: Colorizer, opts
) -> None:
    dest = tmp_path / "out10.mkv"
    colorize_video(clip_10bit, dest, opts(codec="ffv1"), colorizer=colorizer)
    info = probe_video(dest)
    assert info.bit_depth == 10 and info.pix_fmt == "yuv420p10le"
    pairs = list(zip(iter_frames(clip_10bit), iter_frames(info), strict=True))
    assert len(pairs) == 10
    for a, b in pairs:
        assert b.y.dtype == np.uint16 and np.array_equal(a.y, b.y)
    assert packets_of(dest) == packets_of(clip_10bit)


def test_grey_and_colour_inputs(
    clip_grey: Path,
    clip_with_audio: Path,
    tmp_path: Path,
    colorizer: Colorizer,
    opts,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="vidcolor"):
        colorize_video(clip_grey, tmp_path / "grey.mp4", opts(), colorizer=colorizer)
    assert "already in colour" not in caplog.text
    assert colourfulness(clip_grey) < 1.0 < colourfulness(tmp_path / "grey.mp4")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="vidcolor"):
        colorize_video(clip_with_audio, tmp_path / "colour.mp4", opts(), colorizer=colorizer)
    assert f"{clip_with_audio.name} is already in colour" in caplog.text


def test_start_and_duration_select_frames(
    clip_with_audio: Path, tmp_path: Path, colorizer: Colorizer, opts
) -> None:
    start, duration = Fraction(1, 5), Fraction(2, 5)
    dest = tmp_path / "part.mkv"
    options = opts(codec="ffv1", start=start, duration=duration)
    result = colorize_video(clip_with_audio, dest, options, colorizer=colorizer)
    wanted = [f for f in iter_frames(clip_with_audio) if start <= f.time < start + duration]
    got = list(iter_frames(dest))
    assert result.frames == len(got) == len(wanted) == 10
    assert [f.time for f in got] == [f.time - start for f in wanted]
    for a, b in zip(wanted, got, strict=True):
        assert np.array_equal(a.y, b.y)


@pytest.mark.parametrize(("picture", "saturation"), [("tiny", 1.0), ("ramp", 1.0), ("ramp", 3.0)])
def test_still_image_keeps_size_and_lightness(
    picture: str,
    saturation: float,
    tiny_image: Path,
    tmp_path: Path,
    colorizer: Colorizer,
    opts,
) -> None:
    """Same size, same Lab L: also near black and white, where colour would leave the sRGB
    gamut and clipping RGB would change the lightness."""
    src = tiny_image
    if picture == "ramp":  # black to white, left to right
        ramp = np.linspace(0, 255, 48)[None, :, None].repeat(32, 0).repeat(3, 2)
        src = tmp_path / "ramp.png"
        Image.fromarray(ramp.astype(np.uint8)).save(src)
    dest = colorize_image(
        src, tmp_path / "out.png", opts(saturation=saturation), colorizer=colorizer
    )
    with Image.open(src) as a, Image.open(dest) as b:
        assert b.format == "PNG" and b.size == a.size
        rgb_in, rgb_out = np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB"))

    def lightness(rgb: np.ndarray) -> torch.Tensor:
        return lab.rgb_to_l(torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255)

    assert (lightness(rgb_in) - lightness(rgb_out)).abs().max() < 0.5  # 8-bit rounding
    spread = rgb_out.astype(int).max(-1) - rgb_out.astype(int).min(-1)
    assert spread.mean() > 2.0  # coloured, not grey


def test_several_inputs_into_folder_load_the_model_once(
    clip_with_audio: Path,
    clip_grey: Path,
    tiny_image: Path,
    tmp_path: Path,
    opts,
    model_loads: list[tuple],
) -> None:
    out = tmp_path / "new" / "folder"
    results = colorize_paths([clip_with_audio, clip_grey, tiny_image], f"{out}/", opts())
    assert len(model_loads) == 1
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [clip_with_audio.name, clip_grey.name, tiny_image.name]
    )
    assert [r.output if isinstance(r, VideoResult) else r for r in results] == [
        out / clip_with_audio.name, out / clip_grey.name, out / tiny_image.name
    ]


def test_single_input_with_trailing_slash_is_a_folder(
    clip_grey: Path, tmp_path: Path, opts
) -> None:
    colorize_paths([clip_grey], f"{tmp_path / 'made'}/", opts())
    assert (tmp_path / "made" / clip_grey.name).is_file()


@pytest.mark.parametrize(("flow", "name"), [("none", "none"), ("dis", "dis/forward")])
def test_flow_choices(
    flow: str, name: str, clip_grey: Path, tmp_path: Path, colorizer: Colorizer, opts
) -> None:
    result = colorize_video(clip_grey, tmp_path / "f.mp4", opts(flow=flow), colorizer=colorizer)
    assert result.temporal == name and result.frames == 10


@pytest.mark.parametrize(("kw", "modelled"), [
    ({}, 3),  # the preset's model_every 5: frames 0, 5 and 10
    ({"model_every": 2}, 6),
    ({"model_every": 1}, 12),
    ({"flow": "none"}, 12),  # nothing to carry colour along: every frame
    ({"temporal_mode": "bidirectional"}, 12),
])
def test_model_runs_on_every_nth_frame_and_the_rest_keep_colour(
    kw: dict, modelled: int, tmp_path: Path, colorizer: Colorizer, opts,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    src = make_clip(tmp_path / "in.mp4", n=12, audio=False)
    seen: list[int] = []
    inner = colorizer.predict

    def spy(L: torch.Tensor) -> torch.Tensor:
        seen.append(L.shape[0])
        return inner(L)

    monkeypatch.setattr(colorizer, "predict", spy)
    out = tmp_path / "out.mkv"
    result = colorize_video(src, out, opts(codec="ffv1", batch_size=2, **kw), colorizer=colorizer)
    assert result.frames == 12 and sum(seen) == modelled and max(seen) <= 2
    with av.open(str(out)) as c:  # every frame coloured, the skipped ones too
        spreads = [float(np.ptp(f.to_ndarray(format="rgb24").astype(np.int16), axis=-1).mean())
                   for f in c.decode(video=0)]
    assert len(spreads) == 12 and min(spreads) > 0.5 * max(spreads) > 0


def test_bidirectional_stage_returns_every_frame(
    clip_with_audio: Path, tmp_path: Path, colorizer: Colorizer, opts
) -> None:
    options = opts(pipeline="quality", batch_size=3, codec="ffv1")
    result = colorize_video(clip_with_audio, tmp_path / "q.mkv", options, colorizer=colorizer)
    assert result.temporal == "dis/bidirectional"
    pairs = list(zip(iter_frames(clip_with_audio), iter_frames(tmp_path / "q.mkv"), strict=True))
    assert len(pairs) == 25  # every frame back once, in order, with its own time and luma
    for a, b in pairs:
        assert a.time == b.time and np.array_equal(a.y, b.y)


def test_raft_without_weights_is_a_flow_error(
    clip_grey: Path, tmp_path: Path, opts, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("VIDCOLOR_OFFLINE", "1")
    with pytest.raises(FlowError, match="--flow-weights"):
        colorize_video(clip_grey, tmp_path / "r.mp4", opts(flow="raft"))
    assert not (tmp_path / "r.mp4").exists() and leftovers(tmp_path) == []


# -- what a run refuses ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("missing", "no such file"),
        ("folder", "is a directory"),
        ("not_media", "not a media file"),
        ("audio_only", "no video stream"),
        ("clip_no_frames", "no decodable video frame"),
    ],
)
def test_bad_inputs(
    which: str, message: str, request: pytest.FixtureRequest, tmp_path: Path, opts
) -> None:
    src = {"missing": tmp_path / "nope.mp4", "folder": tmp_path}.get(which) or (
        request.getfixturevalue(which)
    )
    dest = tmp_path / "out.mp4"
    with pytest.raises(InputError, match=message) as err:
        colorize_video(src, dest, opts())
    assert str(src) in str(err.value)
    with pytest.raises(InputError, match=message):
        colorize_paths([src], dest, opts())
    assert not dest.exists()


def test_input_errors_come_before_model_errors(not_media: Path, tmp_path: Path) -> None:
    """A bad film is reported as such even with a bad model (and without loading it)."""
    bad_model = ColorizeOptions(model=str(tmp_path / "missing.safetensors"), quiet=True)
    with pytest.raises(InputError):
        colorize_paths([not_media], tmp_path / "o.mp4", bad_model)
    with pytest.raises(InputError):
        colorize_video(not_media, tmp_path / "o.mp4", bad_model)


def test_every_input_checked_before_any_work(
    clip_grey: Path, not_media: Path, tmp_path: Path, opts
) -> None:
    out = tmp_path / "out"
    with pytest.raises(InputError, match="not a media file"):
        colorize_paths([clip_grey, not_media], f"{out}/", opts())
    assert not out.exists()  # no folder made, no first film coloured


def test_output_errors(clip_grey: Path, tmp_path: Path, colorizer: Colorizer, opts) -> None:
    (tmp_path / "sub").mkdir()
    link = tmp_path / "link.mp4"
    link.symlink_to(clip_grey)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    for dest in (
        clip_grey,
        link,
        tmp_path / "sub" / ".." / ".." / clip_grey.parent.name / clip_grey.name,
        tmp_path / "no" / "such" / "dir" / "out.mp4",
        a_file / "out.mp4",
        tmp_path / "out.png",  # an image name for a film
    ):
        with pytest.raises(OutputError, match=str(dest)):
            colorize_video(clip_grey, dest, opts(overwrite=True), colorizer=colorizer)
    assert leftovers(tmp_path) == [] and leftovers(clip_grey.parent) == []


def test_existing_output_needs_overwrite(
    clip_grey: Path, tmp_path: Path, colorizer: Colorizer, opts
) -> None:
    dest = tmp_path / "out.mp4"
    dest.write_bytes(b"old")
    with pytest.raises(OutputError, match="--overwrite"):
        colorize_video(clip_grey, dest, opts(), colorizer=colorizer)
    assert dest.read_bytes() == b"old"
    colorize_video(clip_grey, dest, opts(overwrite=True), colorizer=colorizer)
    assert len(list(iter_frames(dest))) == 10


@pytest.mark.parametrize("which", ["missing", "corrupt", "unknown"])
def test_bad_models(which: str, clip_grey: Path, tmp_path: Path, tiny_model: Path) -> None:
    model = {
        "missing": str(tmp_path / "missing.safetensors"),
        "corrupt": str(tmp_path / "corrupt.safetensors"),
        "unknown": "no-such-model",
    }[which]
    if which == "corrupt":
        (tmp_path / "corrupt.safetensors").write_bytes(np.random.default_rng(0).bytes(4096))
        (tmp_path / "corrupt.json").write_text(tiny_model.with_suffix(".json").read_text())
    with pytest.raises(ModelError, match=model) as err:
        colorize_video(clip_grey, tmp_path / "o.mp4", ColorizeOptions(model=model, quiet=True))
    assert "safetensors" in str(err.value)
    assert not (tmp_path / "o.mp4").exists() and leftovers(tmp_path) == []


def test_bad_time_range_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--duration"):
        ColorizeOptions(duration=Fraction(0))
    with pytest.raises(UsageError, match="--start"):
        ColorizeOptions(start=Fraction(-1))


def test_truncated_input_colours_what_decodes(
    truncated_clip: Path,
    tmp_path: Path,
    colorizer: Colorizer,
    opts,
    caplog: pytest.LogCaptureFixture,
) -> None:
    decodable = list(iter_frames(truncated_clip))
    dest = tmp_path / "t.mkv"
    with caplog.at_level(logging.WARNING, logger="vidcolor"):
        result = colorize_video(truncated_clip, dest, opts(codec="ffv1"), colorizer=colorizer)
    out = list(iter_frames(dest))
    assert 0 < result.frames == len(out) == len(decodable) < 50
    assert result.damaged > 0
    assert f"{result.damaged} damaged" in caplog.text and str(truncated_clip) in caplog.text
    for a, b in zip(decodable, out, strict=True):
        assert np.array_equal(a.y, b.y)


# -- how a run stops -------------------------------------------------------------------------


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_failure_mid_film_leaves_nothing(
    exc: BaseException,
    clip_with_audio: Path,
    tmp_path: Path,
    colorizer: Colorizer,
    opts,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    failing = FailingPredict(colorizer, exc, on=3)
    monkeypatch.setattr(colorizer, "predict", failing)
    dest = tmp_path / "out.mp4"
    with pytest.raises(type(exc)):
        colorize_video(clip_with_audio, dest, opts(batch_size=2), colorizer=colorizer)
    assert failing.calls == 3
    assert not dest.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("exc", [RuntimeError("flow broke"), KeyboardInterrupt()])
def test_failure_in_the_temporal_thread_stops_the_run(
    exc: BaseException, clip_with_audio: Path, tmp_path: Path, colorizer: Colorizer, opts,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The temporal stage runs in its own thread: its error reaches the caller, every thread
    is joined (the autouse fixture) and nothing is left behind."""
    from vidcolor.temporal import TemporalItem
    from vidcolor.temporal.stabilize import ForwardStage

    inner = ForwardStage.push
    calls = [0]

    def push(self: ForwardStage, item: TemporalItem) -> list[TemporalItem]:
        calls[0] += 1
        if calls[0] == 5:
            raise exc
        return inner(self, item)

    monkeypatch.setattr(ForwardStage, "push", push)
    dest = tmp_path / "out.mp4"
    with pytest.raises(type(exc)):
        colorize_video(clip_with_audio, dest, opts(batch_size=2), colorizer=colorizer)
    assert calls[0] == 5
    assert not dest.exists() and leftovers(tmp_path) == []


def test_failure_keeps_the_existing_output(
    clip_grey: Path,
    tmp_path: Path,
    colorizer: Colorizer,
    opts,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dest = tmp_path / "out.mp4"
    dest.write_bytes(b"previous result")
    monkeypatch.setattr(colorizer, "predict", FailingPredict(colorizer, RuntimeError("x"), on=2))
    with pytest.raises(RuntimeError):  # one model frame a call: the 2nd call comes mid-film
        colorize_video(clip_grey, dest, opts(overwrite=True, batch_size=1), colorizer=colorizer)
    assert dest.read_bytes() == b"previous result" and leftovers(tmp_path) == []


def test_encoder_failure_stops_the_run(
    clip_with_audio: Path,
    tmp_path: Path,
    colorizer: Colorizer,
    opts,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The disk filling up mid-film (the encoder thread dies) ends the run with its error,
    even when a model batch is larger than the hand-over queue (no hang)."""
    real_write = VideoWriter.write

    def write(self: VideoWriter, *args: object, **kwargs: object) -> None:
        if self.frames_written == 2:
            raise OutputError(f"{self.dest}: disk full while writing")
        real_write(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(VideoWriter, "write", write)
    dest = tmp_path / "out.mp4"
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            colorize_video(clip_with_audio, dest, opts(batch_size=25), colorizer=colorizer)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    runner.join(timeout=60)
    assert not runner.is_alive(), "the pipeline hung after its encoder died"
    assert isinstance(outcome[0], OutputError) and "disk full" in str(outcome[0])
    assert not dest.exists() and leftovers(tmp_path) == []


def test_memory_stays_flat(tmp_path: Path, colorizer: Colorizer, opts) -> None:
    """300 frames: resident memory after the last frame is within 8 MB of that after the
    first (measured: under 3 MB), once a short warm-up film has paid for the one-off
    allocations (libraries, allocator pools). Keeping each frame's working-size L and ab
    (48 kB) plus its planes would add about 16 MB over the film."""
    src = make_clip(tmp_path / "long.mp4", n=300, audio=False, gop=50)
    warm_up = opts(duration=Fraction(2))
    colorize_video(src, tmp_path / "warm_up.mp4", warm_up, colorizer=colorizer)
    result = colorize_video(src, tmp_path / "long_out.mp4", opts(), colorizer=colorizer)
    assert result.frames == 300
    samples = result.rss_mb
    assert [n for n, _ in samples] == [1, 251, 300]
    growth = samples[-1][1] - samples[0][1]
    assert growth < 8.0, f"memory grew by {growth:.1f} MB over 300 frames: {samples}"


def test_image_input_errors(tmp_path: Path, opts, tiny_image: Path) -> None:
    fake = tmp_path / "fake.png"
    fake.write_text("not an image")
    with pytest.raises(InputError, match="not a readable image"):
        colorize_paths([fake], tmp_path / "o.png", opts())
    with pytest.raises(InputError, match="not a readable image"):
        colorize_image(fake, tmp_path / "o.png", opts())
    with pytest.raises(OutputError, match="not an image file name"):
        colorize_paths([tiny_image], tmp_path / "o.mp4", opts())
    assert list(tmp_path.iterdir()) == [fake]


def test_image_in_rgba_keeps_alpha(tmp_path: Path, colorizer: Colorizer, opts) -> None:
    src = make_image(tmp_path / "a.png", mode="RGBA")
    dest = colorize_image(src, tmp_path / "b.png", opts(), colorizer=colorizer)
    with Image.open(src) as a, Image.open(dest) as b:
        assert b.mode == "RGBA" and np.array_equal(np.asarray(a)[..., 3], np.asarray(b)[..., 3])


def test_film_colour_is_faded_unless_vivid_and_a_still_keeps_the_models_own(
    clip_grey: Path, tiny_image: Path, tmp_path: Path, colorizer: Colorizer, opts
) -> None:
    """The film path fades what the model is unsure of (its ``film_fade``); ``vivid`` gives the
    model's own colour, which is what a still always gets, whatever film came before."""

    def rgb_frames(path: Path) -> np.ndarray:
        with av.open(str(path)) as c:
            return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])

    def still(name: str) -> np.ndarray:
        out = colorize_image(tiny_image, tmp_path / name, opts(), colorizer=colorizer)
        with Image.open(out) as im:
            return np.asarray(im.convert("RGB"))

    first = still("first.png")
    colorize_video(clip_grey, tmp_path / "faded.mkv", opts(codec="ffv1"), colorizer=colorizer)
    assert colorizer.model.cfg.fade == colorizer.model.cfg.film_fade > 0
    after_film = still("after-film.png")
    colorize_video(clip_grey, tmp_path / "vivid.mkv", opts(codec="ffv1", vivid=True),
                   colorizer=colorizer)
    assert colorizer.model.cfg.fade == 0.0
    faded, vivid = rgb_frames(tmp_path / "faded.mkv"), rgb_frames(tmp_path / "vivid.mkv")
    assert faded.shape == vivid.shape
    assert np.abs(faded.astype(int) - vivid.astype(int)).mean() > 1.0  # not the same colour
    assert colourfulness(tmp_path / "faded.mkv") > 2.0  # the tiny model is sure: colour stays
    assert np.array_equal(first, after_film)
    assert np.array_equal(first, still("after-vivid.png"))


_FAULTS_SCRIPT = """
import ctypes, platform, resource, sys, threading
ctypes.CDLL(None).prctl(41, 1, 0, 0, 0)  # PR_SET_THP_DISABLE: count 4 KB pages, not huge ones
import numpy as np
from vidcolor.pipeline import keep_freed_memory
if sys.argv[1] == "keep" and not keep_freed_memory():
    print("skip")
    raise SystemExit
def faults():  # three 12 MB buffers, then freed: a frame's worth of activations
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    bufs = [np.ones(3 << 20, np.float32) for _ in range(3)]
    del bufs
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
counts = []
worker = threading.Thread(target=lambda: counts.extend(faults() for _ in range(4)))
worker.start()
worker.join()
def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1e6
if sys.argv[1] == "keep":  # what was kept goes back at the end of a film
    from vidcolor.pipeline import release_freed_memory
    kept_mb = rss_mb()
    release_freed_memory()
    counts.append(round(kept_mb - rss_mb()))
print(" ".join(map(str, counts)))
"""


def test_freed_frame_buffers_are_reused_not_faulted_in_again() -> None:
    # in a fresh process: with the setting, the second frame's buffers fault in no new page,
    # and the kept memory goes back at the end of the film; without it, glibc hands the freed
    # memory back after every frame and every frame faults it in again
    import subprocess
    import sys

    def counts(mode: str) -> list[int] | None:
        out = subprocess.run([sys.executable, "-c", _FAULTS_SCRIPT, mode], check=True,
                             capture_output=True, text=True).stdout.split()
        return None if out == ["skip"] else [int(c) for c in out]

    kept = counts("keep")
    if kept is None:
        pytest.skip("not glibc on Linux: malloc is left as it is")
    assert kept[1:4] == [0, 0, 0], kept
    assert kept[4] >= 20, f"{kept[4]} MB handed back of the 36 MB kept"
    plain = counts("plain")
    assert plain is not None and min(plain[1:]) > 500, plain  # 9,216 pages a round at most
