"""vidcolor.media: decode -> encode round trips keep frames, timestamps, audio, luma; errors."""

from __future__ import annotations

import errno
import logging
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import SUBTITLES, VFR_PTS, make_clip, packets_of
from PIL import Image

from vidcolor.errors import InputError, OutputError
from vidcolor.media import (
    VideoWriter,
    atomic_output,
    check_output_path,
    encode_chroma,
    frame_to_rgb,
    is_image_path,
    iter_frames,
    load_image,
    luma_to_unit,
    probe_video,
    read_image,
    seek_frames,
    write_image,
)
from vidcolor.media.atomic import translate_os_error

# -- helpers ---------------------------------------------------------------------------------


def transcode(
    src: Path,
    dest: Path,
    *,
    start: Fraction | None = None,
    duration: Fraction | None = None,
    **kwargs: object,
) -> Path:
    """Decode src, write its luma with constant non-neutral chroma (a blue-ish tint) to dest."""
    info = probe_video(src)
    one = 1 << (info.bit_depth - 8)
    writer = VideoWriter(dest, source=info, start=start, duration=duration, **kwargs)  # type: ignore[arg-type]
    with writer:
        for frame in iter_frames(info, start=start, duration=duration):
            u = np.full(writer.chroma_shape, 160 * one, frame.y.dtype)
            v = np.full(writer.chroma_shape, 100 * one, frame.y.dtype)
            writer.write_frame(frame, u, v)
    return dest


def frames_of(path: Path) -> list:
    return list(iter_frames(path))


def video_duration(path: Path) -> Fraction:
    """Last frame time + its duration (film time), from the decoded frames."""
    frames = frames_of(path)
    info = probe_video(path)
    last = frames[-1]
    return last.time + (last.duration or 0) * info.time_base


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if ".vidcolor-" in p.name]


# -- probing and decoding --------------------------------------------------------------------


def test_probe_clip_with_audio(clip_with_audio: Path) -> None:
    info = probe_video(clip_with_audio)
    assert (info.width, info.height, info.rotation) == (64, 48, 0)
    assert info.fps == 25 and info.frame_count == 25 and info.duration == 1
    assert (info.pix_fmt, info.bit_depth, info.color_matrix, info.full_range) == (
        "yuv420p",
        8,
        "bt601",
        False,
    )
    assert info.stream_index == 0 and not info.is_grey_source
    assert [a.codec for a in info.audio] == ["aac"] and not info.subtitles
    assert "aac" in info.describe()


def test_probe_grey_source(clip_grey: Path) -> None:
    assert probe_video(clip_grey).is_grey_source


def test_iter_frames_native_luma_and_exact_times(clip_with_audio: Path) -> None:
    frames = frames_of(clip_with_audio)
    assert len(frames) == 25
    assert [f.index for f in frames] == list(range(25))
    assert [f.time for f in frames] == [Fraction(i, 25) for i in range(25)]
    y = frames[3].y
    assert y.dtype == np.uint8 and y.shape == (48, 64) and y.flags.c_contiguous
    assert isinstance(frames[3].time, Fraction)
    unit = luma_to_unit(y, 8, False)
    assert unit.dtype == np.float32 and 0.0 <= unit.min() <= unit.max() <= 1.0


@pytest.mark.parametrize(("depth", "full_range"), [(8, False), (8, True), (10, False), (12, True)])
def test_luma_to_unit_table_is_the_arithmetic(depth: int, full_range: bool) -> None:
    # the table gives exactly the arithmetic's float32 values, clipping included
    dtype = np.uint8 if depth == 8 else np.uint16
    y = np.random.default_rng(depth).integers(0, np.iinfo(dtype).max + 1, (21, 33), dtype=dtype)
    y[0, :4] = [0, 16, 235, 255]
    scale, top = 1 << (depth - 8), float((1 << depth) - 1)
    yf = y.astype(np.float32)
    want = np.clip(yf / top if full_range else (yf - 16.0 * scale) / (219.0 * scale), 0.0, 1.0)
    got = luma_to_unit(y, depth, full_range)
    assert got.dtype == np.float32 and np.array_equal(got, want)
    assert np.array_equal(luma_to_unit(y[:, ::2], depth, full_range), want[:, ::2])


def test_iter_frames_start_and_duration(clip_with_audio: Path) -> None:
    frames = list(iter_frames(clip_with_audio, start=Fraction(1, 5), duration=Fraction(2, 5)))
    assert [f.time for f in frames] == [Fraction(i, 25) for i in range(5, 15)]
    assert [f.index for f in frames] == list(range(10))


def test_seek_frames_and_rgb(clip_with_audio: Path) -> None:
    got = seek_frames(clip_with_audio, [Fraction(0), Fraction(1, 2), Fraction(13, 25), Fraction(9)])
    assert [f.time for f in got] == [0, Fraction(13, 25), Fraction(13, 25), Fraction(24, 25)]
    rgb = frame_to_rgb(got[1])
    assert rgb.shape == (48, 64, 3) and rgb.dtype == np.float32
    assert float(np.abs(rgb[..., 0] - rgb[..., 2]).mean()) > 0.1  # colourful source
    with pytest.raises(ValueError, match="keep_frames"):
        frame_to_rgb(next(iter(iter_frames(clip_with_audio))))


def test_rgb_and_gray_images_decode_to_luma(tiny_image: Path, tmp_path: Path) -> None:
    frames = frames_of(tiny_image)  # PNG through FFmpeg's image2: rgb24 -> yuv
    assert len(frames) == 1 and frames[0].y.shape == (24, 32)
    grey = tmp_path / "grey.png"
    Image.new("L", (10, 6), 77).save(grey)
    info = probe_video(grey)
    assert info.is_grey_source and info.full_range
    assert int(frames_of(grey)[0].y[0, 0]) == 77


def test_truncated_clip_keeps_good_frames_and_counts_damage(truncated_clip: Path) -> None:
    reader = iter_frames(truncated_clip)
    frames = list(reader)
    assert 10 < len(frames) < 50
    assert reader.damaged >= 1
    times = [f.time for f in frames]
    assert times == sorted(set(times))


# -- round trips -------------------------------------------------------------------------------


def test_roundtrip_mp4_frames_times_duration_audio(clip_with_audio: Path, tmp_path: Path) -> None:
    out = transcode(clip_with_audio, tmp_path / "out.mp4")
    a, b = frames_of(clip_with_audio), frames_of(out)
    assert len(a) == len(b) == 25
    # mp4 keeps a time base that represents every source pts: times are exactly equal.
    assert [f.time for f in a] == [f.time for f in b]
    assert [f.pts * probe_video(clip_with_audio).time_base for f in a] == [
        f.pts * probe_video(out).time_base for f in b
    ]
    assert video_duration(out) == video_duration(clip_with_audio) == 1
    assert probe_video(out).duration == probe_video(clip_with_audio).duration
    src_audio = packets_of(clip_with_audio, "audio")
    assert src_audio and packets_of(out, "audio") == src_audio
    assert not probe_video(out).is_grey_source
    assert no_temp_files(tmp_path)


def test_audio_is_copied_in_step_with_video(clip_with_audio: Path, tmp_path: Path) -> None:
    info = probe_video(clip_with_audio)
    with VideoWriter(tmp_path / "o.mkv", source=info, codec="ffv1") as writer:
        for frame in iter_frames(info, duration=Fraction(1, 5)):
            neutral = np.full(writer.chroma_shape, 128, np.uint8)
            writer.write_frame(frame, neutral, neutral)
        copier = writer._copier
        assert copier is not None
        # 0.2 s of video written: about 0.2 s of AAC (1024-sample packets) copied, not all 48.
        assert 5 <= copier.muxed <= 0.2 * 48000 / 1024 + 3
    assert packets_of(tmp_path / "o.mkv", "audio") == packets_of(clip_with_audio, "audio")


def test_ffv1_luma_is_bit_identical(clip_with_audio: Path, tmp_path: Path) -> None:
    out = transcode(clip_with_audio, tmp_path / "out.mkv", codec="ffv1")
    a, b = frames_of(clip_with_audio), frames_of(out)
    assert len(a) == len(b)
    assert all(np.array_equal(x.y, y.y) for x, y in zip(a, b, strict=True))
    # Matroska forces a 1/1000 time base; 1/25 s steps are whole milliseconds, so still exact.
    assert probe_video(out).time_base == Fraction(1, 1000)
    assert [f.time for f in a] == [f.time for f in b]
    assert packets_of(out, "audio") == packets_of(clip_with_audio, "audio")


@pytest.mark.parametrize("ext", ["mp4", "mkv"])
def test_vfr_timestamps_preserved(clip_vfr: Path, tmp_path: Path, ext: str) -> None:
    out = transcode(clip_vfr, tmp_path / f"vfr.{ext}", codec="ffv1" if ext == "mkv" else "libx264")
    times = [f.time for f in frames_of(out)]
    assert times == [Fraction(p, 1000) for p in VFR_PTS]
    assert video_duration(out) == video_duration(clip_vfr) == Fraction(740, 1000)
    assert packets_of(out, "audio") == packets_of(clip_vfr, "audio")


def test_odd_sizes(clip_odd_size: Path, clip_odd_large: Path, tmp_path: Path) -> None:
    out = transcode(clip_odd_size, tmp_path / "odd.mkv", codec="ffv1")
    a, b = frames_of(clip_odd_size), frames_of(out)
    assert b[0].y.shape == (49, 65)
    assert all(np.array_equal(x.y, y.y) for x, y in zip(a, b, strict=True))
    info = probe_video(clip_odd_size)
    with VideoWriter(tmp_path / "odd_ffv1.mkv", source=info, codec="ffv1") as w:
        assert w.chroma_shape == (25, 33)  # ceil(h/2), ceil(w/2)
        w.write_frame(a[0], *(np.full(w.chroma_shape, 128, np.uint8),) * 2)
    # x264 needs even sizes for 4:2:0: odd width goes 4:4:4, keeping every pixel.
    out264 = transcode(clip_odd_large, tmp_path / "odd.mp4")
    info264 = probe_video(out264)
    assert (info264.width, info264.height, info264.pix_fmt) == (321, 241, "yuv444p")
    assert len(frames_of(out264)) == 4


def test_10bit_roundtrip(clip_10bit: Path, tmp_path: Path) -> None:
    out = transcode(clip_10bit, tmp_path / "ten.mkv", codec="ffv1")
    a, b = frames_of(clip_10bit), frames_of(out)
    assert a[0].y.dtype == np.uint16 and a[0].y.max() > 255
    assert probe_video(out).pix_fmt == "yuv420p10le"
    assert all(np.array_equal(x.y, y.y) for x, y in zip(a, b, strict=True))
    out264 = transcode(clip_10bit, tmp_path / "ten.mp4")
    assert probe_video(out264).pix_fmt == "yuv420p10le"
    assert packets_of(out264, "audio") == packets_of(clip_10bit, "audio")


def test_rotation_kept(clip_rotated: Path, tmp_path: Path) -> None:
    src = probe_video(clip_rotated)
    assert src.rotation == 90 and src.display_size == (48, 64)
    out = probe_video(transcode(clip_rotated, tmp_path / "rot.mp4"))
    assert out.rotation == 90 and out.display_size == (48, 64)


def test_subtitles_copied_or_dropped_with_warning(
    clip_with_subtitles: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src_subs = packets_of(clip_with_subtitles, "subtitle")
    assert [s.decode() for s in src_subs] == [text for _, _, text in SUBTITLES]
    out = transcode(clip_with_subtitles, tmp_path / "subs.mkv", codec="ffv1")
    assert packets_of(out, "subtitle") == src_subs
    assert packets_of(out, "audio") == packets_of(clip_with_subtitles, "audio")
    with caplog.at_level(logging.WARNING, logger="vidcolor"):
        out_mp4 = transcode(clip_with_subtitles, tmp_path / "subs.mp4")
    assert "dropping them" in caplog.text
    assert packets_of(out_mp4, "subtitle") == []
    assert packets_of(out_mp4, "audio") == packets_of(clip_with_subtitles, "audio")


def test_webm_reencodes_audio_with_warning(
    clip_with_audio: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="vidcolor"):
        out = transcode(clip_with_audio, tmp_path / "out.webm", codec="libvpx-vp9")
    assert "re-encoding" in caplog.text
    info = probe_video(out)
    assert [a.codec for a in info.audio] == ["opus"]
    assert [f.time for f in frames_of(out)] == [Fraction(i, 25) for i in range(25)]


def test_start_duration_cut_all_streams(clip_with_audio: Path, tmp_path: Path) -> None:
    start, duration = Fraction(1, 5), Fraction(2, 5)
    out = transcode(clip_with_audio, tmp_path / "cut.mkv", start=start, duration=duration)
    assert [f.time for f in frames_of(out)] == [Fraction(i, 25) for i in range(10)]
    with av.open(str(out)) as c:
        audio = [p for p in c.demux(audio=0) if p.size]
    times = [p.pts * p.time_base for p in audio]
    assert times and min(times) >= 0 and max(times) < duration
    assert abs(len(audio) - duration * 48000 / 1024) <= 2


def test_excerpt_deep_in_a_longer_clip(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "long.mp4", n=200, gop=25)  # 8 s, audio
    out = transcode(src, tmp_path / "cut.mp4", start=Fraction(6), duration=Fraction(1))
    assert [f.time for f in frames_of(out)] == [Fraction(i, 25) for i in range(25)]
    with av.open(str(out)) as c:
        times = [p.pts * p.time_base for p in c.demux(audio=0) if p.size]
    assert abs(len(times) - 48000 / 1024) <= 2 and min(times) >= 0 and max(times) < 1


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        ("not_media", "not a media file"),
        ("audio_only", "no video stream (streams: audio aac)"),
        ("clip_no_frames", "no decodable video frame"),
    ],
)
def test_bad_inputs(request: pytest.FixtureRequest, fixture: str, message: str) -> None:
    path = request.getfixturevalue(fixture)
    with pytest.raises(InputError, match=r"^.*" + message.replace("(", r"\(").replace(")", r"\)")):
        probe_video(path)
    with pytest.raises(InputError) as err:
        probe_video(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_missing_and_directory_inputs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        probe_video(tmp_path / "nope.mp4")
    with pytest.raises(InputError, match="is a directory"):
        probe_video(tmp_path)


def test_output_is_input_refused(clip_with_audio: Path, tmp_path: Path) -> None:
    info = probe_video(clip_with_audio)
    link = tmp_path / "link.mp4"
    link.symlink_to(clip_with_audio)
    hard = tmp_path / "hard.mp4"
    os.link(clip_with_audio, hard)
    dotted = clip_with_audio.parent / ".." / clip_with_audio.parent.name / clip_with_audio.name
    for dest in (clip_with_audio, link, hard, dotted):
        with pytest.raises(OutputError, match="is the input"):
            VideoWriter(dest, source=info, overwrite=True)
    assert probe_video(clip_with_audio).frame_count == 25  # untouched


def test_output_path_checks(clip_with_audio: Path, tmp_path: Path) -> None:
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"old")
    src = [clip_with_audio]
    with pytest.raises(OutputError, match="use --overwrite"):
        check_output_path(existing, inputs=src, overwrite=False)
    assert check_output_path(existing, inputs=src, overwrite=True) == existing
    with pytest.raises(OutputError, match="is a directory"):
        check_output_path(tmp_path, inputs=src, overwrite=True)
    with pytest.raises(OutputError, match="does not exist"):
        check_output_path(tmp_path / "missing" / "o.mp4", inputs=src, overwrite=False)
    with pytest.raises(OutputError, match="unknown output format"):
        VideoWriter(tmp_path / "o.xyz", source=probe_video(clip_with_audio))
    assert existing.read_bytes() == b"old" and no_temp_files(tmp_path)


def test_unwritable_directory(
    clip_with_audio: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() != 0:
        locked.chmod(0o500)
    else:  # root ignores permissions: simulate the check
        monkeypatch.setattr(os, "access", lambda *_a, **_k: False)
    try:
        with pytest.raises(OutputError, match="not writable"):
            check_output_path(locked / "o.mp4", inputs=[clip_with_audio], overwrite=False)
    finally:
        locked.chmod(0o700)


def test_os_errors_translated(tmp_path: Path) -> None:
    dest = tmp_path / "o.mp4"
    assert "disk full" in str(translate_os_error(OSError(errno.ENOSPC, "No space"), dest))
    assert str(tmp_path) in str(translate_os_error(PermissionError(errno.EACCES, "no"), dest))


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_interrupted_write_leaves_nothing(
    clip_with_audio: Path, tmp_path: Path, exc: type[BaseException]
) -> None:
    info = probe_video(clip_with_audio)
    dest = tmp_path / "out.mp4"
    with pytest.raises(exc), VideoWriter(dest, source=info) as writer:
        for frame in iter_frames(info):
            neutral = np.full(writer.chroma_shape, 128, np.uint8)
            writer.write_frame(frame, neutral, neutral)
            if frame.index == 5:
                raise exc()
    assert not dest.exists() and list(tmp_path.iterdir()) == []


def test_atomic_output(tmp_path: Path) -> None:
    dest = tmp_path / "a.txt"
    dest.write_text("old")
    with pytest.raises(SystemExit), atomic_output(dest) as tmp:
        assert tmp.parent == dest.parent and tmp.suffix == ".txt" and tmp.name.startswith(".a.")
        tmp.write_text("half")
        raise SystemExit(1)
    assert dest.read_text() == "old" and no_temp_files(tmp_path)
    with atomic_output(dest) as tmp:
        tmp.write_text("new")
    assert dest.read_text() == "new" and no_temp_files(tmp_path)


def test_writer_rejects_bad_planes(clip_with_audio: Path, tmp_path: Path) -> None:
    info = probe_video(clip_with_audio)
    frame = next(iter(iter_frames(info)))
    with VideoWriter(tmp_path / "o.mkv", source=info, codec="ffv1") as w:
        with pytest.raises(ValueError, match="shape"):
            w.write_frame(frame, np.zeros((48, 64), np.uint8), np.zeros((48, 64), np.uint8))
        good = np.full(w.chroma_shape, 128, np.uint8)
        w.write_frame(frame, good, good)
        with pytest.raises(ValueError, match="does not increase"):
            w.write_frame(frame, good, good)


def test_encode_chroma() -> None:
    zero = encode_chroma(np.zeros((5, 7)), subsampling=(2, 2), bit_depth=8, full_range=False)
    assert zero.shape == (3, 4) and zero.dtype == np.uint8 and (zero == 128).all()
    top = encode_chroma(np.full((4, 4), 0.5), subsampling=(1, 1), bit_depth=10, full_range=False)
    assert top.dtype == np.uint16 and (top == 960).all()


def test_encode_chroma_rounds_and_saturates_as_the_arithmetic_does() -> None:
    c = np.linspace(-0.7, 0.7, 6000, dtype=np.float32).reshape(3, -1)  # past both ends
    for depth in (8, 10):
        for full in (False, True):
            top = (1 << depth) - 1
            gain, offset = (top, 1 << (depth - 1)) if full else (224 << (depth - 8),
                                                                 128 << (depth - 8))
            exact = c.astype(np.float64) * gain + offset
            want = np.clip(np.rint(exact), 0, top)
            got = encode_chroma(c, subsampling=(1, 1), bit_depth=depth, full_range=full)
            assert got.dtype == (np.uint8 if depth == 8 else np.uint16)
            tie = np.abs(exact % 1.0 - 0.5) < 1e-4  # float32 rounding may take either side
            assert (got == want)[~tie].all() and (np.abs(got - want) <= 1).all(), (depth, full)
            assert got.min() == 0 and got.max() == top


# -- still images ------------------------------------------------------------------------------


def test_images(tiny_image: Path, tmp_path: Path) -> None:
    assert is_image_path("a.JPG") and is_image_path(tiny_image) and not is_image_path("a.mp4")
    rgb = read_image(tiny_image)
    assert rgb.shape == (24, 32, 3) and rgb.dtype == np.uint8
    out = write_image(tmp_path / "o.png", rgb, inputs=[tiny_image])
    assert np.array_equal(read_image(out), rgb)
    with pytest.raises(OutputError, match="is the input"):
        write_image(tiny_image, rgb, inputs=[tiny_image], overwrite=True)
    # alpha is returned apart and written back
    rgba = tmp_path / "rgba.png"
    Image.new("RGBA", (4, 3), (10, 20, 30, 40)).save(rgba)
    still = load_image(rgba)
    assert still.alpha is not None and int(still.alpha[0, 0]) == 40
    back = write_image(tmp_path / "rgba_out.png", still.rgb, alpha=still.alpha)
    assert Image.open(back).mode == "RGBA"
    # EXIF orientation 6 (rotate 90 cw) is applied
    exif_jpg = tmp_path / "exif.jpg"
    img = Image.new("RGB", (8, 4), (200, 10, 10))
    exif = img.getexif()
    exif[0x0112] = 6
    img.save(exif_jpg, exif=exif)
    assert read_image(exif_jpg).shape == (8, 4, 3)
    bad = tmp_path / "bad.png"
    bad.write_text("nope")
    with pytest.raises(InputError, match="not a readable image"):
        read_image(bad)


def test_make_clip_is_reusable(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "x.mkv", size=(32, 16), n=3, audio=False, codec="ffv1")
    assert len(frames_of(path)) == 3
