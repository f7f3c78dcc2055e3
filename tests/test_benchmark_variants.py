"""The speed benchmark's variants: a preset named with settings only a preset has keeps its
own settings (it once fell back to the default preset's, silently measuring the wrong thing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidcolor.presets import load_pipeline

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def variant_options(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from real_footage import variant_options

    return variant_options


def test_named_preset_keeps_its_settings_beside_preset_only_ones(variant_options, tmp_path):
    options = variant_options("pipeline=fast,model_every=8,backward_check=none",
                              tmp_path / "v.toml")
    assert options["model_every"] == 8
    settings = load_pipeline(options["pipeline"])
    fast = load_pipeline("fast")
    assert settings.backward_check == "none"
    assert (settings.x264_preset, settings.working_short_side) == (
        fast.x264_preset, fast.working_short_side)


def test_preset_only_settings_start_from_the_default_preset(variant_options, tmp_path):
    options = variant_options("dis_preset=fast", tmp_path / "v.toml")
    settings = load_pipeline(options["pipeline"])
    default = load_pipeline()
    assert settings.dis_preset == "fast"
    assert settings.x264_preset == default.x264_preset
    assert settings.working_short_side == default.working_short_side


def test_command_options_alone_need_no_preset_file(variant_options, tmp_path):
    assert variant_options("pipeline=fast", tmp_path / "v.toml") == {"pipeline": "fast"}
    assert not (tmp_path / "v.toml").exists()
