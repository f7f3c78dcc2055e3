"""Build ``samples/sample.mp4``: a short grey film with sound, from public-domain photos shipped
inside scikit-image, so demos and docs need no download and anyone can rebuild it.

Usage: ``.venv/bin/python samples/make_sample.py [--out PATH] [--seconds S] [--overwrite]``.
Slow Ken Burns pans and zooms over four photos with hard cuts between them (so the shot-cut
detector has something to find), turned grey by Lab lightness, H.264 yuv420p with an AAC
44.1 kHz stereo track of synthesised piano-like notes. No randomness: the same library versions
give the same bytes.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image

if importlib.util.find_spec("vidcolor") is None:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vidcolor import lab
from vidcolor.errors import UsageError, VidcolorError
from vidcolor.media.atomic import atomic_output, check_output_path

FPS = 24
SIZE = (640, 360)
"""(width, height) of the film."""
SECONDS = 7.0
CRF = 23
GOP = 48
"""Frames between keyframes (2 s), so previews seek quickly."""
AUDIO_RATE = 44100
AUDIO_BITRATE = 96_000
DEFAULT_OUT = Path(__file__).resolve().parent / "sample.mp4"
# SMPTE 170M (BT.601) matrix, primaries and transfer, limited range: the usual SD video tags.
_SMPTE170M, _RANGE_LIMITED = 6, 1


@dataclass(frozen=True)
class Shot:
    """One photo and its camera move: (centre x, centre y, zoom) at the start and the end.

    Centres are fractions of the photo's width and height; zoom is the crop's width as a
    fraction of the widest 16:9 crop the photo allows (1 = widest, smaller = closer).
    """

    photo: str
    """Function name in ``skimage.data``."""
    start: tuple[float, float, float]
    end: tuple[float, float, float]


SHOTS = (
    Shot("astronaut", (0.50, 0.33, 1.00), (0.42, 0.24, 0.60)),  # zoom in to the face
    Shot("chelsea", (0.30, 0.55, 0.82), (0.66, 0.42, 0.82)),  # pan across to the eyes
    Shot("rocket", (0.50, 0.80, 0.55), (0.50, 0.36, 0.55)),  # tilt up the launch tower
    Shot("coffee", (0.47, 0.33, 0.60), (0.50, 0.50, 1.00)),  # pull back from the cup
)
"""The photos in film order (see samples/README.md for their sources and licences); the order
makes every cut change the lightness histogram enough for the shot-cut detector."""

CHORDS = (
    (48, 60, 64, 67, 72),  # C major: bass, then an arpeggio
    (45, 57, 60, 64, 69),  # A minor
    (41, 53, 57, 60, 65),  # F major
    (48, 60, 64, 67, 72),  # C major
)
"""MIDI notes played over each shot: the first as a bass note, the others spread across it."""


def grey_photo(name: str) -> Image.Image:
    """A scikit-image photo as its Lab lightness in grey sRGB levels (float 'F' image, 0..1)."""
    import skimage.data

    rgb = getattr(skimage.data, name)()
    t = torch.from_numpy(np.ascontiguousarray(rgb[..., :3])).permute(2, 0, 1)[None].float() / 255.0
    grey = lab.l_to_grey(lab.rgb_to_l(t))[0, 0].numpy().astype(np.float32)
    return Image.fromarray(grey, mode="F")


def _smoothstep(u: float) -> float:
    return u * u * (3.0 - 2.0 * u)


def crop_box(
    photo: tuple[int, int], view: tuple[float, float, float]
) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) of a 16:9 crop of a (width, height) photo, kept inside it."""
    pw, ph = photo
    cx, cy, zoom = view
    aspect = SIZE[0] / SIZE[1]
    w = min(pw, ph * aspect) * zoom
    h = w / aspect
    x0 = min(max(cx * pw - w / 2, 0.0), pw - w)
    y0 = min(max(cy * ph - h / 2, 0.0), ph - h)
    return (x0, y0, x0 + w, y0 + h)


def shot_lengths(frames: int, shots: int = len(SHOTS)) -> list[int]:
    """Frames per shot: as equal as possible, the first shots one frame longer."""
    base, extra = divmod(frames, shots)
    return [base + (i < extra) for i in range(shots)]


def video_frames(frames: int) -> Iterator[np.ndarray]:
    """The film's grey frames as uint8 Y' planes (H, W), limited range (16..235)."""
    for shot, n in zip(SHOTS, shot_lengths(frames), strict=True):
        photo = grey_photo(shot.photo)
        for i in range(n):
            s = _smoothstep(i / (n - 1)) if n > 1 else 0.0
            view = tuple(a + (b - a) * s for a, b in zip(shot.start, shot.end, strict=True))
            box = crop_box(photo.size, view)  # type: ignore[arg-type]
            img = photo.resize(SIZE, Image.Resampling.BICUBIC, box=box)
            v = np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)
            yield np.round(16.0 + 219.0 * v).astype(np.uint8)


def _note(midi: int, length: int, rate: int = AUDIO_RATE) -> np.ndarray:
    """A piano-like tone: a few slightly stretched harmonics, each decaying faster than the last."""
    t = np.arange(length, dtype=np.float64) / rate
    f0 = 440.0 * 2.0 ** ((midi - 69) / 12.0)
    wave = np.zeros(length)
    for k in range(1, 7):
        fk = f0 * k * math.sqrt(1.0 + 0.0004 * k * k)
        if fk > rate / 2.2:
            break
        wave += np.sin(2.0 * math.pi * fk * t) * np.exp(-t * (1.6 + 1.1 * k)) / k**1.3
    attack = np.minimum(1.0, t / 0.004)
    return wave * attack


def audio_track(frames: int, rate: int = AUDIO_RATE) -> np.ndarray:
    """Stereo float32 (2, samples) as long as the film: a chord per shot, a fade at the end."""
    total = round(Fraction(frames, FPS) * rate)
    mix = np.zeros((2, total))
    start = 0
    for chord, n in zip(CHORDS, shot_lengths(frames), strict=True):
        shot_samples = round(Fraction(n, FPS) * rate)
        bass, *arpeggio = chord
        events = [(0, bass, 0.45, 0.9)]  # (offset, note, pan 0 = left .. 1 = right, gain)
        for j, note in enumerate(arpeggio):
            events.append((shot_samples * j // len(arpeggio), note, 0.3 + 0.4 * j / 3, 0.55))
        for offset, note, pan, gain in events:
            a = start + offset
            if a >= total:
                continue
            tone = _note(note, total - a, rate) * gain
            mix[0, a:] += tone * math.cos(pan * math.pi / 2)
            mix[1, a:] += tone * math.sin(pan * math.pi / 2)
        start += shot_samples
    fade = min(total, rate // 5)
    mix[:, total - fade:] *= np.linspace(1.0, 0.0, fade)
    peak = float(np.abs(mix).max()) or 1.0
    return (mix * (0.5 / peak)).astype(np.float32)


def _audio_frames(samples: np.ndarray, frame_size: int) -> Iterator[av.AudioFrame]:
    """Chunks of the track as fltp frames with pts in samples (the last one may be short)."""
    for start in range(0, samples.shape[1], frame_size):
        chunk = np.ascontiguousarray(samples[:, start:start + frame_size])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
        frame.sample_rate = AUDIO_RATE
        frame.pts = start
        frame.time_base = Fraction(1, AUDIO_RATE)
        yield frame


def build_sample(out: Path, *, seconds: float = SECONDS, overwrite: bool = False) -> Path:
    """Write the sample film to ``out`` (atomically); refuses an existing file unless overwrite."""
    frames = round(seconds * FPS)
    if not math.isfinite(seconds) or frames < 2 * len(SHOTS):
        raise UsageError(f"--seconds must give at least {2 * len(SHOTS)} frames at {FPS} fps, "
                         f"got {seconds}")
    out = check_output_path(Path(out), inputs=[], overwrite=overwrite)
    tb = Fraction(1, FPS)
    width, height = SIZE
    chroma = np.full((height // 2, width), 128, dtype=np.uint8)  # U then V: neutral grey
    with atomic_output(out) as tmp, av.open(
        str(tmp), "w", options={"movflags": "+faststart"}
    ) as container:
        container.metadata["title"] = "vidcolor sample (grey)"
        container.metadata["comment"] = (
            "Photos: NASA, SpaceX (public domain); Pikolo Espresso Bar / Rachel Michetti, "
            "Stefan van der Walt (CC0); via scikit-image. Built by samples/make_sample.py."
        )
        vs = container.add_stream("libx264", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.time_base = tb
        vs.gop_size = GOP
        cc = vs.codec_context
        cc.time_base = tb
        cc.color_range = _RANGE_LIMITED
        cc.colorspace = cc.color_primaries = cc.color_trc = _SMPTE170M
        vs.options = {"crf": str(CRF), "preset": "slow", "threads": "1"}  # 1 thread: same bytes
        aus = container.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
        aus.bit_rate = AUDIO_BITRATE
        audio = _audio_frames(audio_track(frames), aus.codec_context.frame_size or 1024)
        pending = next(audio, None)
        for i, y in enumerate(video_frames(frames)):
            while pending is not None and Fraction(pending.pts, AUDIO_RATE) < (i + 1) * tb:
                container.mux(aus.encode(pending))
                pending = next(audio, None)
            frame = av.VideoFrame.from_ndarray(np.concatenate([y, chroma]), format="yuv420p")
            frame.pts, frame.time_base = i, tb
            container.mux(vs.encode(frame))
        while pending is not None:
            container.mux(aus.encode(pending))
            pending = next(audio, None)
        container.mux(vs.encode(None))
        container.mux(aus.encode(None))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; returns the exit code (errors as one line)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default: {DEFAULT_OUT}")
    p.add_argument("--seconds", type=float, default=SECONDS, help=f"default: {SECONDS}")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")
    args = p.parse_args(argv)
    try:
        path = build_sample(args.out, seconds=args.seconds, overwrite=args.overwrite)
    except VidcolorError as exc:
        print(f"make_sample: error: {exc}", file=sys.stderr)
        return exc.exit_code
    frames = round(args.seconds * FPS)
    print(f"wrote {path}: {frames} frames, {frames / FPS:.2f} s, {SIZE[0]}x{SIZE[1]}, "
          f"{path.stat().st_size / 1e3:.0f} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
