"""Which colour lands where: the model's *ab* is read back from the written chroma planes.

The model is replaced by a fixed pattern (warm on the left of the picture as shown, cold on the
right), and each output is decoded plane by plane and converted back to Lab with the matrix and
range its tags declare. A Cb/Cr swap, a BT.601/709 or range mix-up, chroma rotated the wrong way
or a lost tag fails here; the fixtures cover B-frames with an open GOP, full range (yuvj),
BT.709 HD (tagged and by size), 10-bit, 12-bit HEVC and a rotated phone clip.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from vidcolor import lab
from vidcolor.__main__ import main
from vidcolor.colorize import Colorizer, rotate
from vidcolor.media.decode import probe_video

WARM = (30.0, 20.0)
"""a, b of the left half of the picture as displayed."""
COLD = (-8.0, -22.0)
"""a, b of the right half (both inside the sRGB gamut at the films' lightness)."""
KR_KB = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}


def fake_predict(self: Colorizer, L: torch.Tensor) -> torch.Tensor:
    """Warm left half, cold right half of the upright picture the model is shown."""
    b, _, h, w = L.shape
    ab = torch.empty(b, 2, h, w)
    ab[:, 0, :, : w // 2], ab[:, 1, :, : w // 2] = WARM
    ab[:, 0, :, w // 2 :], ab[:, 1, :, w // 2 :] = COLD
    return ab


def write_grey(path: Path, *, size=(96, 64), pix_fmt="yuv420p", colorspace=None, full=False,
               rotation=0, bframes=0, n=8, codec="libx264") -> Path:
    """A grey film (a mid-grey ramp over time, L 45-62) with the given coding and tags."""
    w, h = size
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=25)
        vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
        opts = {"preset": "ultrafast", "bf": str(bframes)} if codec == "libx264" else {
            "x265-params": "log-level=error"}
        if bframes:
            opts.update({"x264-params": "open-gop=1:keyint=4:min-keyint=4", "preset": "fast"})
        vs.options = opts
        if colorspace is not None:
            vs.codec_context.colorspace = colorspace
            vs.codec_context.color_primaries = colorspace
            vs.codec_context.color_trc = colorspace
        if full:
            vs.codec_context.color_range = 2
        if rotation:
            vs.set_display_rotation(rotation)
        for i in range(n):
            grey = np.full((h, w, 3), 110 + 6 * i, np.uint8)
            f = av.VideoFrame.from_ndarray(grey, format="rgb24").reformat(
                format=pix_fmt, dst_color_range=2 if full else 1
            )
            f.pts = i
            out.mux(vs.encode(f))
        out.mux(vs.encode(None))
    return path


def planes_to_lab(frame: av.VideoFrame, matrix: str, full: bool, depth: int) -> torch.Tensor:
    """Lab (1, 3, H, W) of a decoded 4:2:0 frame, converted by hand with ``matrix`` and range."""
    dtype = np.dtype("<u2") if depth > 8 else np.dtype(np.uint8)
    arrs = []
    for p in frame.planes[:3]:
        raw = np.frombuffer(p, dtype=dtype).reshape(p.height, p.line_size // dtype.itemsize)
        arrs.append(raw[:, : p.width].astype(np.float64))
    y, cb, cr = arrs
    cb = np.repeat(np.repeat(cb, 2, 0), 2, 1)[: y.shape[0], : y.shape[1]]
    cr = np.repeat(np.repeat(cr, 2, 0), 2, 1)[: y.shape[0], : y.shape[1]]
    s = 1 << (depth - 8)
    if full:
        top = (1 << depth) - 1
        yn, cbn, crn = y / top, (cb - 128 * s) / top, (cr - 128 * s) / top
    else:
        yn = (y - 16 * s) / (219 * s)
        cbn, crn = (cb - 128 * s) / (224 * s), (cr - 128 * s) / (224 * s)
    kr, kb = KR_KB[matrix]
    kg = 1 - kr - kb
    r = yn + 2 * (1 - kr) * crn
    b = yn + 2 * (1 - kb) * cbn
    g = (yn - kr * r - kb * b) / kg
    rgb = torch.from_numpy(np.stack([r, g, b])).float().clamp(0, 1)[None]
    return lab.rgb_to_lab(rgb)


CASES = {
    "sd-untagged-bt601": {},
    "b-frames-open-gop": {"bframes": 2, "n": 12},
    "full-range-yuvj": {"pix_fmt": "yuvj420p", "full": True},
    "hd-tagged-bt709": {"size": (128, 72), "colorspace": 1},
    "hd-by-size-bt709": {"size": (1280, 720), "n": 3},
    "10-bit": {"pix_fmt": "yuv420p10le"},
    "12-bit-hevc": {"pix_fmt": "yuv420p12le", "codec": "libx265"},  # x264 writes it as 10-bit
    "rotated-90": {"rotation": 90},
    "rotated-minus-90": {"rotation": -90, "size": (64, 96)},
}


@pytest.mark.parametrize("case", list(CASES))
def test_written_chroma_is_the_models(tmp_path: Path, tiny_model: Path, monkeypatch, capsys,
                                      case: str):
    monkeypatch.setattr(Colorizer, "predict", fake_predict)
    src = write_grey(tmp_path / "grey.mp4", **CASES[case])
    dest = tmp_path / "colour.mp4"
    code = main([str(src), "-o", str(dest), "--model", str(tiny_model), "--pipeline", "fast",
                 "--flow", "none"])
    assert code == 0, capsys.readouterr().err
    info_in, info = probe_video(src), probe_video(dest)
    # the tags that say how to read the planes are the source's
    assert (info.color_matrix, info.full_range, info.bit_depth, info.rotation) == (
        info_in.color_matrix, info_in.full_range, min(info_in.bit_depth, 10), info_in.rotation)
    assert info.color_matrix == ("bt709" if "bt709" in case else "bt601")
    with av.open(str(dest)) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == CASES[case].get("n", 8)
    for frame in frames[:: max(1, len(frames) // 3)]:
        Lab = planes_to_lab(frame, info.color_matrix, info.full_range, info.bit_depth)
        shown = rotate(Lab, info.rotation)  # coded -> as displayed
        w = shown.shape[-1]
        left = shown[0, 1:, :, : w // 2 - 4].mean((1, 2))
        right = shown[0, 1:, :, w // 2 + 4 :].mean((1, 2))
        for got, want in ((left, WARM), (right, COLD)):
            assert abs(float(got[0]) - want[0]) < 4 and abs(float(got[1]) - want[1]) < 4, (
                f"{case}: a, b read back {got.tolist()}, the model said {want}")


def test_luma_is_bit_exact_with_b_frames(tmp_path: Path, tiny_model: Path, capsys):
    """Open-GOP B-frames: every frame once, in order, with the source's luma and times."""
    src = write_grey(tmp_path / "grey.mp4", bframes=2, n=12)
    dest = tmp_path / "colour.mp4"
    assert main([str(src), "-o", str(dest), "--model", str(tiny_model), "--pipeline", "fast",
                 "--crf", "0"]) == 0, capsys.readouterr().err
    with av.open(str(src)) as a, av.open(str(dest)) as b:
        fa, fb = list(a.decode(video=0)), list(b.decode(video=0))
    assert len(fa) == len(fb) == 12
    assert [f.time for f in fa] == [f.time for f in fb]
    for x, y in zip(fa, fb, strict=True):
        assert np.array_equal(x.to_ndarray()[: x.height], y.to_ndarray()[: y.height])
    assert Fraction(fb[1].pts - fb[0].pts) * fb[0].time_base == Fraction(1, 25)
