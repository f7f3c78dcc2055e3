"""The film path's model runtime: which one runs, OpenVINO's output against torch's, its disk
cache, and what happens when it is missing or fails."""

from __future__ import annotations

import logging
from pathlib import Path

import av
import pytest
import torch

from vidcolor.__main__ import main
from vidcolor.colorize import Colorizer
from vidcolor.errors import UsageError
from vidcolor.models import runtime
from vidcolor.models.runtime import OpenVinoModel, cache_dir, resolve_runtime
from vidcolor.presets import load_pipeline

needs_openvino = pytest.mark.skipif(not runtime.openvino_available(),
                                    reason="OpenVINO is not installed (vidcolor[openvino])")
CPU = torch.device("cpu")


def test_runtime_choice_is_checked(monkeypatch):
    assert resolve_runtime("torch", device=CPU) == "torch"
    monkeypatch.setattr(runtime, "openvino_available", lambda: True)
    assert resolve_runtime("openvino", device=CPU) == "openvino"
    with pytest.raises(UsageError, match="runs on the CPU"):
        resolve_runtime("openvino", device=torch.device("cuda"))
    monkeypatch.setattr(runtime, "openvino_available", lambda: False)
    with pytest.raises(UsageError, match=r"pip install 'vidcolor\[openvino\]'"):
        resolve_runtime("openvino", device=CPU)
    with pytest.raises(UsageError, match=r"--runtime \(runtime in a preset\) must be one of"):
        load_pipeline("balanced", runtime="tensorrt")


@needs_openvino
def test_openvino_computes_what_torch_computes(tiny_model: Path, caplog):
    """fp32 OpenVINO against fp32 torch on the tiny net; a short batch is padded; the second
    build reads the disk cache instead of converting again."""
    caplog.set_level(logging.INFO, logger="vidcolor")
    c = Colorizer.load(str(tiny_model), precision="fp32")
    ov_model = OpenVinoModel(c, (3, 1, 64, 96))
    assert "converted" in caplog.text
    assert list(cache_dir().glob("*.xml")) and list(cache_dir().glob("*.bin"))
    torch.manual_seed(0)
    L = torch.nn.functional.avg_pool2d(torch.rand(2, 1, 64, 96) * 100, 5, 1, 2)
    assert ov_model.accepts(L) and not ov_model.accepts(torch.zeros(4, 1, 64, 96))
    assert not ov_model.accepts(torch.zeros(1, 1, 64, 64))
    got, want = ov_model(L), c.predict(L)
    assert got.shape == want.shape == (2, 2, 64, 96)
    assert (got - want).abs().max() < 1e-2
    caplog.clear()
    c.accelerated = OpenVinoModel(c, (3, 1, 64, 96))
    assert "cached" in caplog.text
    net, c.model = c.model, None  # predict must go through it where the shape fits
    assert torch.allclose(c.predict(L), got, atol=1e-3)
    c.model = net


@needs_openvino
def test_openvino_computes_film_colour_with_the_cast_taken_off(tiny_model: Path):
    """Film fading with ``fade_cast`` (a per-frame mean, a norm, a cap) converts as well; a
    padded batch entry does not change the others' casts."""
    from dataclasses import replace

    c = Colorizer.load(str(tiny_model), precision="fp32")
    c.model.cfg = replace(c.model.cfg, fade_cast=0.25)
    c.use_fade(True)
    assert c.model.cfg.fade > 0 and c.model.cfg.fade_cast == 0.25
    ov_model = OpenVinoModel(c, (3, 1, 64, 96))
    torch.manual_seed(1)
    L = torch.nn.functional.avg_pool2d(torch.rand(2, 1, 64, 96) * 100, 5, 1, 2)
    got, want = ov_model(L), c.predict(L)
    assert float(want.abs().mean()) > 0.1  # some colour survives the fading
    assert (got - want).abs().max() < 1e-2
    c.model.cfg = replace(c.model.cfg, fade_cast=1.0)
    assert (c.predict(L) - want).abs().max() > 0.05  # and the cast removal changed it


@needs_openvino
def test_film_through_openvino(tmp_path: Path, tiny_model: Path, clip_grey: Path, capsys):
    dest = tmp_path / "out.mp4"
    code = main([str(clip_grey), "-o", str(dest), "--model", str(tiny_model), "--runtime",
                 "openvino", "--precision", "fp32"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "model runtime: openvino" in err
    with av.open(str(dest)) as c, av.open(str(clip_grey)) as s:
        assert len(list(c.decode(video=0))) == len(list(s.decode(video=0)))


def test_a_failed_conversion(tmp_path: Path, tiny_model: Path, clip_grey: Path, capsys,
                             monkeypatch):
    """OpenVINO failing inside its converter: exit 5 with the fix, no output left."""
    def broken(*_args, **_kwargs):
        raise RuntimeError("Check 'shape' failed")

    monkeypatch.setattr(runtime, "OpenVinoModel", broken)
    monkeypatch.setattr(runtime, "openvino_available", lambda: True)
    code = main([str(clip_grey), "-o", str(tmp_path / "a.mp4"), "--model", str(tiny_model),
                 "--runtime", "openvino"])
    err = capsys.readouterr().err
    assert code == 5 and "use --runtime torch" in err and "Traceback" not in err
    assert not (tmp_path / "a.mp4").exists()
