"""Shared fixtures: small synthetic media made with PyAV (session-scoped, built once per run).

The generator functions (``make_clip``, ``make_audio_only``, ``make_truncated``,
``make_undecodable``, ``make_image``, ``pattern_rgb``) are importable from test files
(``from conftest import make_clip``; pytest puts tests/ on sys.path) to build more variants.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

AUDIO_RATE = 48000
TONE_HZ = 440.0


def pattern_rgb(width: int, height: int, index: int, *, grey: bool = False) -> np.ndarray:
    """A moving coloured gradient (uint8 RGB, H x W x 3); ``grey`` makes R = G = B."""
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    shift = (index % 50) / 50.0
    r = (x + shift) % 1.0 + 0.0 * y
    g = 0.2 + 0.6 * y + 0.0 * x
    b = 1.0 - 0.5 * (x + y)
    rgb = np.stack([r, g, b], axis=-1)
    if grey:
        rgb = np.repeat(rgb.mean(axis=-1, keepdims=True), 3, axis=-1)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _tone_frames(stream: av.audio.stream.AudioStream, seconds: float) -> list[av.AudioFrame]:
    """A 440 Hz stereo sine as float-planar frames of the encoder's frame size."""
    frame_size = stream.codec_context.frame_size or 1024
    total = math.ceil(seconds * AUDIO_RATE)
    frames = []
    for start in range(0, total, frame_size):
        t = (np.arange(start, start + frame_size, dtype=np.float64)) / AUDIO_RATE
        wave = (0.3 * np.sin(2.0 * math.pi * TONE_HZ * t)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([wave, wave]), format="fltp", layout="stereo")
        frame.sample_rate = AUDIO_RATE
        frame.pts = start
        frame.time_base = Fraction(1, AUDIO_RATE)
        frames.append(frame)
    return frames


def make_clip(
    path: Path,
    *,
    size: tuple[int, int] = (64, 48),
    fps: int = 25,
    n: int = 25,
    audio: bool = True,
    pix_fmt: str = "yuv420p",
    codec: str = "libx264",
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    rotation: int = 0,
    grey: bool = False,
    subtitles: Sequence[tuple[Fraction, Fraction, str]] = (),
    gop: int = 12,
) -> Path:
    """Write a synthetic clip (moving colour gradient, optional AAC tone and SRT subtitles).

    ``size`` is (width, height); ``pts`` (in ``time_base``, default 1/fps) gives irregular
    timestamps for VFR clips; ``subtitles`` is a list of (start s, end s, text) for mkv.
    """
    width, height = size
    tb = time_base or (Fraction(1, 1000) if pts is not None else Fraction(1, fps))
    frame_pts = list(pts) if pts is not None else [round(Fraction(i, fps) / tb) for i in range(n)]
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height = width, height
        vs.pix_fmt = pix_fmt
        vs.time_base = tb
        vs.codec_context.time_base = tb
        vs.gop_size = gop
        if codec == "libx264":
            vs.options = {"preset": "ultrafast", "crf": "20", "bf": "0"}
        elif codec == "libx265":
            vs.options = {"preset": "ultrafast", "x265-params": "log-level=error"}
        if rotation:
            vs.set_display_rotation(rotation)
        aus = None
        if audio:
            aus = out.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
        ss = None
        if subtitles:
            ss = out.add_mux_stream("subrip", time_base=Fraction(1, 1000))
        seconds = float((frame_pts[-1] * tb) + Fraction(1, fps))
        audio_frames = _tone_frames(aus, seconds) if aus is not None else []
        events: list[tuple[Fraction, int, object]] = []
        for i, p in enumerate(frame_pts):
            events.append((p * tb, 0, (i, p)))
        for af in audio_frames:
            events.append((Fraction(af.pts, AUDIO_RATE), 1, af))
        for sub in subtitles:
            events.append((sub[0], 2, sub))
        events.sort(key=lambda e: (e[0], e[1]))
        for _t, kind, item in events:
            if kind == 0:
                i, p = item  # type: ignore[misc]
                frame = av.VideoFrame.from_ndarray(
                    pattern_rgb(width, height, i, grey=grey), format="rgb24"
                )
                frame = frame.reformat(format=pix_fmt)
                frame.pts = p
                frame.time_base = tb
                out.mux(vs.encode(frame))
            elif kind == 1:
                out.mux(aus.encode(item))  # type: ignore[union-attr, arg-type]
            else:
                start, end, text = item  # type: ignore[misc]
                pkt = av.Packet(text.encode())
                pkt.stream = ss
                pkt.time_base = Fraction(1, 1000)
                pkt.pts = pkt.dts = round(start * 1000)
                pkt.duration = round((end - start) * 1000)
                out.mux(pkt)
        out.mux(vs.encode(None))
        if aus is not None:
            out.mux(aus.encode(None))
    return path


def make_audio_only(path: Path, seconds: float = 1.0) -> Path:
    """An AAC tone in an .m4a/.mp4 container with no video stream."""
    with av.open(str(path), "w") as out:
        aus = out.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
        for af in _tone_frames(aus, seconds):
            out.mux(aus.encode(af))
        out.mux(aus.encode(None))
    return path


def make_truncated(src: Path, dest: Path, *, garbage: bool = True) -> Path:
    """Copy ``src`` with its middle damaged (overwritten with junk) and its tail cut off."""
    data = bytearray(src.read_bytes())
    n = len(data)
    if garbage:
        rng = np.random.default_rng(0)
        a, b = int(n * 0.40), int(n * 0.48)
        data[a:b] = rng.integers(0, 256, b - a, dtype=np.uint8).tobytes()
    dest.write_bytes(bytes(data[: int(n * 0.8)]))
    return dest


def make_undecodable(path: Path, n: int = 10) -> Path:
    """An .mkv whose one MPEG-4 video stream holds only random bytes: zero decodable frames."""
    rng = np.random.default_rng(1)
    tb = Fraction(1, 1000)
    with av.open(str(path), "w") as out:
        vs = out.add_mux_stream("mpeg4", width=64, height=48, time_base=tb)
        for i in range(n):
            pkt = av.Packet(rng.integers(0, 256, 500, dtype=np.uint8).tobytes())
            pkt.stream = vs
            pkt.time_base = tb
            pkt.pts = pkt.dts = i * 40
            pkt.duration = 40
            pkt.is_keyframe = True
            out.mux(pkt)
    return path


def packets_of(path: Path, kind: str = "audio") -> list[bytes]:
    """Bytes of every non-empty packet of the file's streams of one kind ('audio', 'subtitle')."""
    with av.open(str(path)) as c:
        streams = [s for s in c.streams if s.type == kind]
        return [bytes(p) for p in c.demux(streams) if p.size] if streams else []


def colourfulness(path: Path) -> float:
    """Mean spread between the RGB channels over every frame (0 for grey)."""
    with av.open(str(path)) as c:
        spreads = []
        for frame in c.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24").astype(np.int16)
            spreads.append(float((rgb.max(-1) - rgb.min(-1)).mean()))
    return float(np.mean(spreads))


def leftovers(folder: Path) -> list[str]:
    """Temp files of unfinished outputs (``.<name>.vidcolor-*``) anywhere under ``folder``."""
    return sorted(p.name for p in folder.rglob(".*") if ".vidcolor-" in p.name)


def make_image(path: Path, size: tuple[int, int] = (32, 24), mode: str = "RGB") -> Path:
    """A small still image (the gradient pattern) in the format given by the extension."""
    img = Image.fromarray(pattern_rgb(size[0], size[1], 3))
    if mode != "RGB":
        img = img.convert(mode)
    img.save(path)
    return path


VFR_PTS = [0, 40, 80, 100, 160, 200, 290, 300, 340, 400, 433, 500, 560, 600, 680, 700]
"""Irregular timestamps (ms) of :func:`clip_vfr`."""

SUBTITLES = [
    (Fraction(1, 10), Fraction(4, 10), "Hello"),
    (Fraction(5, 10), Fraction(9, 10), "World"),
]


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One temporary folder for all the session's synthetic media."""
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def clip_with_audio(media_dir: Path) -> Path:
    """mp4, h264 yuv420p 64x48, 25 fps, 25 frames, AAC stereo 440 Hz tone, colourful."""
    return make_clip(media_dir / "clip_audio.mp4")


@pytest.fixture(scope="session")
def clip_vfr(media_dir: Path) -> Path:
    """mp4, h264, 16 frames with irregular pts (ms, see ``VFR_PTS``), with audio."""
    return make_clip(media_dir / "clip_vfr.mp4", pts=VFR_PTS, time_base=Fraction(1, 1000))


@pytest.fixture(scope="session")
def clip_odd_size(media_dir: Path) -> Path:
    """mkv, ffv1 yuv420p 65x49 (odd width and height), 10 frames, no audio."""
    return make_clip(media_dir / "clip_odd.mkv", size=(65, 49), n=10, audio=False, codec="ffv1")


@pytest.fixture(scope="session")
def clip_odd_large(media_dir: Path) -> Path:
    """mp4, h264 yuv444p 321x241 (odd size; 4:2:0 cannot code it), 4 frames, no audio."""
    return make_clip(
        media_dir / "clip_odd_large.mp4", size=(321, 241), n=4, audio=False, pix_fmt="yuv444p"
    )


@pytest.fixture(scope="session")
def clip_rotated(media_dir: Path) -> Path:
    """mp4, h264 64x48 with a 90 degree display-matrix rotation, 10 frames, audio."""
    return make_clip(media_dir / "clip_rot.mp4", n=10, rotation=90)


@pytest.fixture(scope="session")
def clip_10bit(media_dir: Path) -> Path:
    """mkv, ffv1 yuv420p10le 64x48, 10 frames, with audio."""
    return make_clip(media_dir / "clip_10bit.mkv", n=10, pix_fmt="yuv420p10le", codec="ffv1")


@pytest.fixture(scope="session")
def clip_grey(media_dir: Path) -> Path:
    """mp4, h264 yuv420p with grey content (neutral chroma), 10 frames, no audio."""
    return make_clip(media_dir / "clip_grey.mp4", n=10, audio=False, grey=True)


@pytest.fixture(scope="session")
def clip_with_subtitles(media_dir: Path) -> Path:
    """mkv, h264 + AAC + SRT subtitle stream (two cues, see ``SUBTITLES``), 25 frames."""
    return make_clip(media_dir / "clip_subs.mkv", subtitles=SUBTITLES)


@pytest.fixture(scope="session")
def truncated_clip(media_dir: Path) -> Path:
    """mpegts h264 clip of 50 frames, its middle overwritten with junk and its tail cut."""
    src = make_clip(media_dir / "clip_for_trunc.ts", n=50, audio=False, gop=5)
    return make_truncated(src, media_dir / "clip_truncated.ts")


@pytest.fixture(scope="session")
def clip_no_frames(media_dir: Path) -> Path:
    """mkv with a video stream whose packets are all undecodable (zero frames)."""
    return make_undecodable(media_dir / "clip_no_frames.mkv")


@pytest.fixture(scope="session")
def not_media(media_dir: Path) -> Path:
    """A text file with a video extension."""
    path = media_dir / "not_media.mp4"
    path.write_text("this is not a video\n" * 20)
    return path


@pytest.fixture(scope="session")
def audio_only(media_dir: Path) -> Path:
    """An .m4a with one AAC stream and no video."""
    return make_audio_only(media_dir / "audio_only.m4a")


@pytest.fixture(scope="session")
def tiny_image(media_dir: Path) -> Path:
    """A 32x24 RGB png of the gradient pattern."""
    return make_image(media_dir / "tiny.png")


@pytest.fixture
def model_loads(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Counts ``Colorizer.load`` calls (each still loads for real): one per load, in order."""
    from vidcolor.colorize import Colorizer

    loads: list[tuple] = []
    real_load = Colorizer.load.__func__  # type: ignore[attr-defined]

    def counting_load(cls, *args, **kwargs):
        loads.append(args)
        return real_load(cls, *args, **kwargs)

    monkeypatch.setattr(Colorizer, "load", classmethod(counting_load))
    return loads


def tiny_checkpoint(arch: str, path: Path) -> Path:
    """A random tiny checkpoint of ``arch``, built from the current code so it always loads."""
    from dataclasses import replace

    import torch

    from vidcolor.models import TINY_CONFIGS, build_model
    from vidcolor.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    m = build_model(arch, TINY_CONFIGS[arch])
    if arch == "fusion":  # its films fade, as the shipped default's do; and it is sure of its
        m.cfg = replace(m.cfg, film_fade=0.38)  # bins, as a trained model is of most pixels,
        with torch.no_grad():  # so fading keeps its colour
            m.bin_head.bias.copy_(torch.randn(m.bin_head.bias.shape) * 6.0)
    save_checkpoint(path, m, {"arch": arch, "model": m.config(), "step": 0})
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny fusion checkpoint."""
    return tiny_checkpoint("fusion", tmp_path_factory.mktemp("tiny-model") / "tiny.safetensors")


@pytest.fixture(scope="session")
def tiny_guided(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny guided (exemplar) checkpoint, for steering."""
    return tiny_checkpoint("exemplar", tmp_path_factory.mktemp("guided") / "guided.safetensors")


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory):
    """Converted networks (``vidcolor.models.runtime``) go to a scratch folder, not ~/.cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("VIDCOLOR_CACHE", str(tmp_path_factory.mktemp("vidcolor-cache")))
    yield
    mp.undo()


@pytest.fixture(autouse=True, scope="session")
def _ctrl_c_deliverable():
    """Tests press Ctrl-C (in this process and in children). A shell starts background jobs
    with SIGINT ignored, which children inherit: give the session Python's own handler, so
    that SIGINT reaches this process and children start with the default again."""
    import signal

    previous = signal.getsignal(signal.SIGINT)
    if previous == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if previous == signal.SIG_IGN:
        signal.signal(signal.SIGINT, previous)
