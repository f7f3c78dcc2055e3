"""Real archives (issue 14, second part): damaged timestamps, packets handed out twice, sound
the muxer refuses, audio with a channel count but no channel order (WMA), a stream that
appears mid-file, a first frame that is not a keyframe (with an edit list), cover pictures and
chapters. Each fixture is made at test time with PyAV's own muxers, a few kilobytes."""

from __future__ import annotations

import contextlib
import io
import itertools
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest

from vidcolor.__main__ import main
from vidcolor.media import decode
from vidcolor.media.decode import iter_frames, probe_video


def grey_frames(n: int, w: int = 64, h: int = 48, start: int = 0):
    for i in range(start, start + n):
        rgb = np.full((h, w, 3), 40 + (i * 7) % 180, np.uint8)
        rgb[:, (2 * i) % (w - 8):(2 * i) % (w - 8) + 8] = 230  # something moves
        yield i, av.VideoFrame.from_ndarray(rgb, format="rgb24")


def add_audio(out: av.container.OutputContainer, codec: str, rate: int = 48000):
    a = out.add_stream(codec, rate=rate)
    a.layout = "stereo"
    if codec == "wmav2":
        a.bit_rate = 64000
    return a


def write_audio(out, a, seconds: float, start: float = 0.0) -> None:
    rate = a.codec_context.sample_rate
    size = a.codec_context.frame_size or 1024
    rs = av.AudioResampler(format=a.codec_context.format.name, layout="stereo", rate=rate)
    t = round(start * rate)
    for _ in range(int(seconds * rate) // size):
        tone = (0.2 * np.sin(np.arange(t, t + size) * 0.05)).astype(np.float32)
        af = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
        af.sample_rate, af.pts = rate, t
        t += size
        for r in rs.resample(af):
            out.mux(a.encode(r))
    out.mux(a.encode(None))


def write_film(path: Path, *, codec: str = "libx264", fmt: str | None = None, n: int = 30,
               audio: str | None = None, start: int = 0, options: dict | None = None) -> Path:
    """A tiny film in ``fmt`` (by suffix if None), frames numbered from ``start``."""
    pix = "yuvj420p" if codec == "mjpeg" else "yuv420p"
    with av.open(str(path), "w", format=fmt) as out:
        vs = out.add_stream(codec, rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, pix
        vs.options = options or ({"preset": "ultrafast"} if codec == "libx264" else {})
        a = add_audio(out, audio) if audio else None
        for i, f in grey_frames(n, start=start):
            f = f.reformat(format=pix)
            f.pts = i
            out.mux(vs.encode(f))
        out.mux(vs.encode(None))
        if a is not None:
            write_audio(out, a, n / 25, start / 25)
    return path


def remux(src: Path, dest: Path, edit: Callable[[av.Packet, int], bool | None],
          fmt: str | None = None) -> Path:
    """Copy every packet of src into dest; ``edit(packet, n)`` (n: the stream's packet count
    so far) may change a packet, or return False to leave it out."""
    counts: dict[int, int] = {}
    with av.open(str(src)) as i, av.open(str(dest), "w", format=fmt) as o:
        streams = {s.index: o.add_stream_from_template(s) for s in i.streams}
        for p in i.demux():
            if not p.size:
                continue
            n = counts[p.stream.index] = counts.get(p.stream.index, 0) + 1
            if edit(p, n) is False:
                continue
            p.stream = streams[p.stream.index]
            o.mux(p)
    return dest


def plain_times(path: Path) -> list[Fraction]:
    """Frame times as a plain PyAV decode gives them (the reference: FFmpeg's own decode)."""
    times = []
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        for p in c.demux(vs):
            with contextlib.suppress(av.error.FFmpegError):
                times += [Fraction(f.pts) * vs.time_base for f in vs.decode(p)]
    return times


def out_times(path: Path) -> list[Fraction]:
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        return [Fraction(f.pts) * vs.time_base for f in c.decode(vs)]


def audio_packets(path: Path) -> tuple[int, str]:
    """(packets with data, codec) of the file's one audio stream."""
    with av.open(str(path)) as c:
        (a,) = c.streams.audio
        return sum(1 for p in c.demux(a) if p.size), a.codec_context.name


def colour(src: Path, dest: Path, model: Path, capsys, *extra: str) -> tuple[int, str]:
    code = main([str(src), "-o", str(dest), "--model", str(model), "--pipeline", "fast",
                 "--flow", "none", *extra])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_a_timestamp_that_jumps_ahead_is_retimed(tmp_path: Path, tiny_model: Path, capsys):
    """A damaged MPEG PES header puts one frame 3 s ahead: it is re-timed between its
    neighbours, and the film keeps its length instead of every later frame being pushed."""
    src = write_film(tmp_path / "clean.ts", codec="mpeg2video", n=30)

    def jump(p: av.Packet, n: int) -> None:
        if p.stream.type == "video" and n == 12:
            p.pts += round(3 / p.time_base)  # pts only: the dts (decode order) stays sound

    bad = remux(src, tmp_path / "jump.ts", jump, fmt="mpegts")
    ref = plain_times(src)
    assert max(plain_times(bad)) > ref[-1] + 2  # the damage is there
    code, err = colour(bad, tmp_path / "out.mp4", tiny_model, capsys)
    assert code == 0, err
    got = out_times(tmp_path / "out.mp4")
    assert len(got) == len(ref) == 30
    assert got == ref  # constant rate: the damaged frame lands back on its own time
    assert "1 frames had damaged timestamps" in err


def fake_source(frames: list[tuple[int | None, int | None]]) -> decode._FrameSource:
    src = decode._FrameSource.__new__(decode._FrameSource)
    src.default_step, src.repaired_pts, src.retimed, src.repeated_frames = 1, 0, 0, 0
    src.last_pts = None
    src._decoded = lambda: iter(SimpleNamespace(pts=p, dts=d) for p, d in frames)
    return src


@pytest.mark.parametrize(("raw", "want", "retimed", "repeated"), [
    ([0, 10, 20, 900, 40, 50], [0, 10, 20, 30, 40, 50], 1, 0),
    ([0, 10, 20, 900, 910, 50, 60], [0, 10, 20, 30, 40, 50, 60], 2, 0),
    ([0, 10, 10, 20, 30], [0, 10, 20, 30], 0, 1),  # the same packet twice
    ([0, 10, 900, 910, 920, 930, 940, 950, 960, 970], None, 0, 0),  # a real gap: kept
])
def test_frame_source_retimes_jumps_and_drops_repeats(raw, want, retimed, repeated):
    src = fake_source([(p, p) for p in raw])
    got = [pts for _, pts in src.frames()]
    assert got == (want or raw)
    assert (src.retimed, src.repeated_frames) == (retimed, repeated)


def test_two_pictures_at_one_time_are_both_kept():
    """A bad splice: same pts, another dts, so another picture: kept, in order."""
    src = fake_source([(0, 0), (10, 10), (20, 10), (20, 20), (30, 30)])
    got = [pts for _, pts in src.frames()]
    assert len(got) == 5 and all(a < b for a, b in itertools.pairwise(got))


def test_wma_sound_without_a_channel_order_is_reencoded(tmp_path: Path, tiny_model: Path,
                                                        capsys):
    """WMA decodes to "2 channels" with no order, which AAC refused ("libx264 encoding
    failed"): the sound is re-encoded with the standard layout for its channel count."""
    src = write_film(tmp_path / "tape.wmv", codec="wmv2", fmt="asf", audio="wmav2", n=25)
    with av.open(str(src)) as c:
        assert c.streams.audio[0].codec_context.layout.name == "2 channels"
    dest = tmp_path / "out.mp4"
    code, err = colour(src, dest, tiny_model, capsys)
    assert code == 0, err
    assert "re-encoding it to aac" in err
    packets, codec = audio_packets(dest)
    assert codec == "aac" and packets > 30
    with av.open(str(dest)) as c:
        assert c.streams.audio[0].codec_context.channels == 2
    assert len(out_times(dest)) == 25


def test_sound_packets_the_muxer_refuses_are_skipped(tmp_path: Path, tiny_model: Path, capsys):
    """Damaged MPEG sound whose times collide once rounded to the output's time base (the
    muxer said "non monotonically increasing dts"; the run failed): those packets are left
    out, counted in one line, and the rest of the sound is kept."""
    src = write_film(tmp_path / "clean.ts", codec="mpeg2video", fmt="mpegts", audio="mp2",
                     n=50)
    last: dict[str, int] = {}

    def squeeze(p: av.Packet, n: int) -> None:
        if p.stream.type == "audio":
            if 10 <= n < 16:  # six packets 1/90000 s apart: they round to one output tick
                p.pts = p.dts = last["dts"] + 1
            last["dts"] = p.dts

    bad = remux(src, tmp_path / "squeezed.ts", squeeze, fmt="mpegts")
    dest = tmp_path / "out.mp4"
    code, err = colour(bad, dest, tiny_model, capsys)
    assert code == 0, err
    assert "damaged audio/subtitle packets" in err
    (n_in, _), (n_out, _) = audio_packets(bad), audio_packets(dest)
    assert n_in - 6 <= n_out < n_in


def test_a_broken_adts_header_loses_a_packet_not_the_sound(tmp_path: Path, tiny_model: Path,
                                                          capsys):
    """AAC in MPEG-TS whose ADTS header is damaged: MP4's bitstream filter refuses that
    packet ("Invalid data found"; the run failed, 1 audio track in, 0 out). Now the packet is
    left out, counted, and the track is kept."""
    src = write_film(tmp_path / "clean.ts", codec="mpeg2video", fmt="mpegts", audio="aac",
                     n=50)

    def damage(p: av.Packet, n: int) -> None:
        if p.stream.type == "audio" and 10 <= n < 13:
            b = bytearray(bytes(p))
            b[1], b[3] = 0xF0, b[3] ^ 0x03  # the sync word stays, the header's fields break
            p.update(bytes(b))

    bad = remux(src, tmp_path / "damaged.ts", damage, fmt="mpegts")
    dest = tmp_path / "out.mp4"
    code, err = colour(bad, dest, tiny_model, capsys)
    assert code == 0, err
    assert "damaged audio/subtitle packets" in err
    assert audio_packets(dest)[0] > 60


def test_a_stream_that_appears_mid_file(tmp_path: Path, tiny_model: Path, capsys):
    """Two MPEG-TS recordings joined: the second brings a sound stream 8 s in, past FFmpeg's
    probing. Every frame is coloured; the sound is left out with the reason, in one line."""
    a = write_film(tmp_path / "a.ts", codec="mpeg2video", fmt="mpegts", n=200)
    b = write_film(tmp_path / "b.ts", codec="mpeg2video", fmt="mpegts", n=20, start=201,
                   audio="mp2")
    joined = tmp_path / "joined.ts"
    joined.write_bytes(a.read_bytes() + b.read_bytes())
    dest = tmp_path / "out.mp4"
    code, err = colour(joined, dest, tiny_model, capsys)
    assert code == 0, err
    assert len(out_times(dest)) == len(plain_times(joined)) == 220
    lines = [ln for ln in err.splitlines() if "audio stream #1" in ln]
    assert len(lines) == 1 and "left out" in lines[0], err
    main(["probe", str(joined)])
    assert "#1 audio" in capsys.readouterr().out


def test_a_packet_of_a_stream_pyav_does_not_know(tmp_path: Path, tiny_model: Path, capsys,
                                                 monkeypatch):
    """A damaged MPEG-TS can name a stream that appears nowhere in the header: PyAV's demux
    then raises IndexError for its packets (the run crashed). Those packets are not the
    film's: reading goes on and the film is coloured."""
    from tests.test_archives import _flaky

    src = write_film(tmp_path / "reel.mp4", n=30)
    _flaky(monkeypatch, 8, IndexError("list index out of range"))
    dest = tmp_path / "out.mp4"
    code, err = colour(src, dest, tiny_model, capsys)
    assert code == 0, err
    assert 20 <= len(out_times(dest)) < 30  # the packets that raised are lost, not the film


def test_first_frame_not_a_keyframe_keeps_its_times(tmp_path: Path, tiny_model: Path, capsys):
    """An MP4 cut mid-GOP, 3 s into its timeline (an edit list): every decodable frame once,
    at the input's presentation times (the first at 3.4 s), none invented for the cut GOP."""
    src = write_film(tmp_path / "gop.mp4", n=50, options={
        "preset": "fast", "bf": "2", "x264-params": "keyint=10:min-keyint=10:scenecut=0"})

    def cut(p: av.Packet, n: int) -> bool:
        p.pts += round(3 / p.time_base)
        p.dts += round(3 / p.time_base)
        return n > 3  # the first three packets (the keyframe among them) are gone

    bad = remux(src, tmp_path / "cut.mp4", cut)
    ref = plain_times(bad)
    assert len(ref) == 40 and ref[0] == Fraction(17, 5)
    dest = tmp_path / "out.mp4"
    code, err = colour(bad, dest, tiny_model, capsys)
    assert code == 0, err
    assert out_times(dest) == ref
    assert next(f.time for f in iter_frames(dest)) == 0  # film time starts at the first frame
    assert probe_video(dest).start_time == Fraction(17, 5)


def jpeg(colour=(200, 30, 30)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(buf, "JPEG")
    return buf.getvalue()


CHAPTERS = [("Reel one", 0, 500), ("Reel two", 500, 1000)]


def film_with_cover_and_chapters(path: Path, cover: bytes) -> Path:
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        cs = out.add_stream("mjpeg")
        cs.width, cs.height, cs.pix_fmt = 32, 32, "yuvj420p"
        cs.disposition = av.stream.Disposition.attached_pic
        out.set_chapters([{"id": k + 1, "start": s, "end": e, "time_base": Fraction(1, 1000),
                           "metadata": {"title": t}} for k, (t, s, e) in enumerate(CHAPTERS)])
        pk = av.Packet(cover)
        pk.stream, pk.pts, pk.dts, pk.is_keyframe = cs, 0, 0, True
        out.mux(pk)
        for i, f in grey_frames(25):
            f = f.reformat(format="yuv420p")
            f.pts = i
            out.mux(vs.encode(f))
        out.mux(vs.encode(None))
    return path


def chapters_of(path: Path) -> list[tuple[str, float, float]]:
    with av.open(str(path)) as c:
        return [(ch["metadata"].get("title"), round(float(ch["start"] * ch["time_base"]), 3),
                 round(float(ch["end"] * ch["time_base"]), 3)) for ch in c.chapters()]


def cover_of(path: Path) -> bytes | None:
    with av.open(str(path)) as c:
        for s in c.streams.video:
            if s.disposition & av.stream.Disposition.attached_pic:
                return next(bytes(p) for p in c.demux(s) if p.size)
    return None


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_cover_picture_and_chapters_are_kept(tmp_path: Path, tiny_model: Path, capsys,
                                             suffix: str):
    cover = jpeg()
    src = film_with_cover_and_chapters(tmp_path / "film.mp4", cover)
    dest = tmp_path / f"out{suffix}"
    code, err = colour(src, dest, tiny_model, capsys)
    assert code == 0, err
    assert "not copied" not in err
    assert cover_of(dest) == cover
    assert chapters_of(dest) == [(t, s / 1000, e / 1000) for t, s, e in CHAPTERS]
    assert len(out_times(dest)) == 25
    main(["probe", str(src), "--to", suffix])
    out = capsys.readouterr().out
    assert "2 chapters -> copied" in out and "#2 video mjpeg -> copied" in out


def test_chapters_follow_an_excerpt(tmp_path: Path, tiny_model: Path, capsys):
    src = film_with_cover_and_chapters(tmp_path / "film.mp4", jpeg())
    dest = tmp_path / "out.mp4"
    code, err = colour(src, dest, tiny_model, capsys, "--start", "0.4", "--duration", "0.4")
    assert code == 0, err
    assert chapters_of(dest) == [("Reel one", 0.0, 0.1), ("Reel two", 0.1, 0.4)]


def test_avi_says_what_it_cannot_hold(tmp_path: Path, tiny_model: Path, capsys):
    src = film_with_cover_and_chapters(tmp_path / "film.mp4", jpeg())
    code, err = colour(src, tmp_path / "out.avi", tiny_model, capsys)
    assert code == 0, err
    lines = [ln for ln in err.splitlines() if "not copied" in ln]
    assert len(lines) == 2, err
    assert "cover picture" in err and "2 chapters not copied" in err
