"""``vidcolor INPUT -o OUTPUT`` through ``vidcolor.__main__.main``: results on disk, exit codes,
and error output that is one line naming the file and the problem (a traceback only with
``--debug``). Tiny random model, tiny clips, CPU."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import colourfulness, leftovers, make_clip, packets_of
from PIL import Image

import vidcolor
from vidcolor import lab
from vidcolor.__main__ import main
from vidcolor.colorize import Colorizer
from vidcolor.errors import (
    EXIT_INTERRUPTED,
    DeviceError,
    FlowError,
    InputError,
    ModelError,
    OutputError,
    UsageError,
)
from vidcolor.media import iter_frames, probe_video

REPO = Path(vidcolor.__file__).resolve().parents[1]


@pytest.fixture
def cli(tiny_model: Path, capsys: pytest.CaptureFixture[str]):
    """Run ``vidcolor ARGS --model tiny`` in-process; returns (exit code, stderr)."""

    def run(*args: object, model: bool = True) -> tuple[int, str]:
        argv = [str(a) for a in args] + (["--model", str(tiny_model)] if model else [])
        capsys.readouterr()
        code = main(argv)
        return code, capsys.readouterr().err

    return run


@pytest.fixture(autouse=True)
def no_stray_threads():
    yield
    assert [t.name for t in threading.enumerate() if t.name.startswith("vidcolor-")] == []


def one_line_error(err: str, *needles: object) -> str:
    """The single stderr line of a failed run; it names each of ``needles``."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got:\n{err}"
    assert "Traceback" not in err
    line = lines[0]
    assert line.startswith("vidcolor: error: ")
    for needle in needles:
        assert str(needle) in line, f"{needle!r} not in {line!r}"
    return line


# -- runs that work --------------------------------------------------------------------------


def test_round_trip(clip_with_audio: Path, tmp_path: Path, cli) -> None:
    dest = tmp_path / "out.mkv"
    code, err = cli(clip_with_audio, "-o", dest, "--codec", "ffv1")
    assert code == 0, err
    src, out = list(iter_frames(clip_with_audio)), list(iter_frames(dest))
    assert len(out) == len(src) == 25
    assert [f.time for f in out] == [f.time for f in src]
    last_src, last_out = src[-1], out[-1]
    assert (
        last_out.time + last_out.duration * probe_video(dest).time_base
        == last_src.time + last_src.duration * probe_video(clip_with_audio).time_base
    )
    assert packets_of(dest) == packets_of(clip_with_audio) != []
    assert all(np.array_equal(a.y, b.y) for a, b in zip(src, out, strict=True))
    assert colourfulness(dest) > 2.0
    assert "already in colour" in err
    assert "25/25 frames" in err  # progress ends at the frames written
    assert leftovers(tmp_path) == []


def test_start_and_duration(clip_with_audio: Path, tmp_path: Path, cli) -> None:
    dest = tmp_path / "part.mkv"
    code, err = cli(clip_with_audio, "-o", dest, "--codec", "ffv1", "--start", "0:00.2",
                    "--duration", "0.4")
    assert code == 0, err
    wanted = [f for f in iter_frames(clip_with_audio) if Fraction(1, 5) <= f.time < Fraction(3, 5)]
    got = list(iter_frames(dest))
    assert len(got) == len(wanted) == 10
    assert all(np.array_equal(a.y, b.y) for a, b in zip(wanted, got, strict=True))
    assert "10/10" in err


def test_still_image(tiny_image: Path, tmp_path: Path, cli) -> None:
    dest = tmp_path / "photo.png"
    code, err = cli(tiny_image, "-o", dest, "-q")
    assert (code, err) == (0, "")
    with Image.open(tiny_image) as a, Image.open(dest) as b:
        assert b.format == "PNG" and b.size == a.size
        L_in, L_out = (
            lab.rgb_to_l(torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1)[None] / 255)
            for im in (a, b)
        )
    assert (L_in - L_out).abs().max() < 0.5


def test_several_inputs_into_a_folder(
    clip_with_audio: Path,
    clip_grey: Path,
    tiny_image: Path,
    tmp_path: Path,
    cli,
    model_loads: list[tuple],
) -> None:
    out = tmp_path / "coloured"
    code, err = cli(clip_with_audio, clip_grey, tiny_image, "-o", f"{out}/", "-q")
    assert code == 0, err
    assert len(model_loads) == 1
    assert sorted(p.name for p in out.iterdir()) == sorted(
        p.name for p in (clip_with_audio, clip_grey, tiny_image)
    )
    assert len(list(iter_frames(out / clip_grey.name))) == 10


def test_one_input_into_a_new_folder(clip_grey: Path, tmp_path: Path, cli) -> None:
    code, err = cli(clip_grey, "-o", f"{tmp_path / 'new'}/", "-q")
    assert code == 0, err
    assert (tmp_path / "new" / clip_grey.name).is_file()


@pytest.mark.parametrize("preset", ["fast", "balanced", "quality", "custom.toml"])
def test_pipeline_presets(preset: str, clip_grey: Path, tmp_path: Path, cli) -> None:
    dest = tmp_path / "out.mkv"
    if preset.endswith(".toml"):
        toml = tmp_path / preset
        toml.write_text(
            'codec = "ffv1"\nworking_short_side = 64\ntemporal_mode = "bidirectional"\n'
            "temporal_window = 3\nbatch_size = 3\n"
        )
        preset = str(toml)
    code, err = cli(clip_grey, "-o", dest, "--pipeline", preset, "-q")
    assert code == 0, err
    assert len(list(iter_frames(dest))) == 10
    if preset.endswith(".toml"):
        assert probe_video(dest).codec == "ffv1"


def test_vivid_flag_and_preset_setting(tmp_path: Path) -> None:
    """--vivid / --no-vivid reach the settings; a preset may say vivid = true."""
    from vidcolor.cli import colorize_options, colorize_parser

    def settings(*argv: str):
        return colorize_options(colorize_parser().parse_args(["in.mp4", "-o", "o.mp4", *argv]))

    assert settings().settings().vivid is False
    assert settings("--vivid").settings().vivid is True
    toml = tmp_path / "bright.toml"
    toml.write_text("vivid = true\n")
    assert settings("--pipeline", str(toml)).settings().vivid is True
    assert settings("--pipeline", str(toml), "--no-vivid").settings().vivid is False


def test_model_every_flag_presets_and_errors(cli, clip_grey: Path, tmp_path: Path) -> None:
    """--model-every reaches the temporal stage; bidirectional and --flow none model every
    frame; a bad value is one line and exit 2."""
    from vidcolor.cli import colorize_options, colorize_parser

    def temporal(*argv: str):
        options = colorize_options(colorize_parser().parse_args(["in.mp4", "-o", "o.mp4", *argv]))
        return options.settings().temporal_options(device="cpu")

    assert temporal().model_every == 5
    assert temporal("--model-every", "1").model_every == 1
    assert temporal("--pipeline", "fast").model_every == 6
    assert temporal("--pipeline", "quality").model_every == 1  # bidirectional
    assert temporal("--temporal-mode", "bidirectional").model_every == 1
    assert temporal("--flow", "none").model_every == 1
    # the lighter flow of the default reaches the stage; quality keeps the full-size flow
    assert (temporal().dis_preset, temporal().flow_downscale) == ("ultrafast", 2)
    quality = temporal("--pipeline", "quality")
    assert (quality.dis_preset, quality.flow_downscale) == ("fast", 1)
    code, err = cli(clip_grey, "-o", tmp_path / "o.mp4", "--model-every", "0", "-q")
    assert code == 2 and "--model-every (model_every in a preset) must be >= 1, got 0" in err
    assert "Traceback" not in err and not (tmp_path / "o.mp4").exists()
    bad = tmp_path / "bad.toml"
    bad.write_text('flow_downscale = 3\n')
    code, err = cli(clip_grey, "-o", tmp_path / "o.mp4", "--pipeline", bad, "-q")
    assert code == 2 and "flow_downscale must be one of 1, 2, got 3" in err, err
    bad.write_text('dis_preset = "slow"\n')
    code, err = cli(clip_grey, "-o", tmp_path / "o.mp4", "--pipeline", bad, "-q")
    assert code == 2 and "dis_preset must be one of ultrafast, fast, medium, got 'slow'" in err
    assert "Traceback" not in err and not (tmp_path / "o.mp4").exists()


def test_eval_video_scores_both_modes_with_the_default_preset(cli, tmp_path: Path) -> None:
    """eval-video's bidirectional row gets the model on every frame although the default
    (forward) preset skips frames."""
    clip = make_clip(tmp_path / "colour.mp4", n=8, audio=False)
    out = tmp_path / "scores.json"
    code, err = cli("eval-video", clip, "--modes", "forward,bidirectional", "--working-size",
                    "64", "--json", out, "-q")
    assert code == 0, err
    text = out.read_text()
    assert "dis/forward" in text and "dis/bidirectional" in text


@pytest.mark.parametrize("flow", ["none", "dis"])
def test_flow_choices(flow: str, clip_grey: Path, tmp_path: Path, cli) -> None:
    code, err = cli(clip_grey, "-o", tmp_path / "out.mp4", "--flow", flow)
    assert code == 0, err
    assert ("temporal stage: none" if flow == "none" else "temporal stage: dis/forward") in err


def test_raft_without_weights_offline(
    clip_grey: Path, tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    monkeypatch.setenv("VIDCOLOR_OFFLINE", "1")
    dest = tmp_path / "out.mp4"
    t0 = time.monotonic()
    code, err = cli(clip_grey, "-o", dest, "--flow", "raft")
    assert time.monotonic() - t0 < 30
    assert code == FlowError.exit_code == 6
    one_line_error(err, "raft_small", "--flow-weights", "--flow dis")
    assert not dest.exists() and leftovers(tmp_path) == []


# -- refused runs: one line, the right code --------------------------------------------------


@pytest.mark.parametrize(
    ("which", "problem"),
    [
        ("missing", "no such file"),
        ("folder", "is a directory"),
        ("not_media", "not a media file"),
        ("audio_only", "no video stream"),
        ("clip_no_frames", "no decodable video frame"),
    ],
)
def test_bad_input(
    which: str, problem: str, request: pytest.FixtureRequest, tmp_path: Path, cli
) -> None:
    src = {"missing": tmp_path / "nope.mp4", "folder": tmp_path / "dir"}.get(which) or (
        request.getfixturevalue(which)
    )
    if which == "folder":
        src.mkdir()
    code, err = cli(src, "-o", tmp_path / "out.mp4")
    assert code == InputError.exit_code == 3
    one_line_error(err, src, problem)
    assert not (tmp_path / "out.mp4").exists()


def test_bad_input_reported_before_a_bad_model(not_media: Path, tmp_path: Path, cli) -> None:
    code, err = cli(not_media, "-o", tmp_path / "o.mp4", "--model", tmp_path / "no.safetensors",
                    model=False)
    assert code == 3
    one_line_error(err, not_media)


def test_output_names_the_input(clip_grey: Path, tmp_path: Path, cli) -> None:
    link = tmp_path / "link.mp4"
    link.symlink_to(clip_grey)
    other_path = tmp_path / ".." / tmp_path.name / "link.mp4"
    before = clip_grey.read_bytes()
    for dest in (clip_grey, link, other_path):
        code, err = cli(clip_grey, "-o", dest, "--overwrite")
        assert code == OutputError.exit_code == 4
        one_line_error(err, dest, "is the input file")
    assert clip_grey.read_bytes() == before and link.is_symlink()


def test_existing_output(clip_grey: Path, tmp_path: Path, cli) -> None:
    dest = tmp_path / "out.mp4"
    dest.write_bytes(b"keep me")
    code, err = cli(clip_grey, "-o", dest)
    assert code == 4
    one_line_error(err, dest, "already exists", "--overwrite")
    assert dest.read_bytes() == b"keep me"
    code, err = cli(clip_grey, "-o", dest, "--overwrite", "-q")
    assert code == 0, err
    assert len(list(iter_frames(dest))) == 10


@pytest.mark.parametrize("where", ["missing dir", "parent is a file", "read-only dir"])
def test_unwritable_output(where: str, clip_grey: Path, tmp_path: Path, cli) -> None:
    if where == "missing dir":
        dest = tmp_path / "no" / "such" / "out.mp4"
    elif where == "parent is a file":
        (tmp_path / "file").write_text("x")
        dest = tmp_path / "file" / "out.mp4"
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        dest = ro / "out.mp4"
    code, err = cli(clip_grey, "-o", dest)
    assert code == 4
    one_line_error(err, dest)
    assert not dest.exists()


@pytest.mark.parametrize(
    ("which", "fix"),
    [
        ("missing", "give a .safetensors file or a model name"),
        ("corrupt", "restore the file"),
        ("unknown", "give a name or a path to a .safetensors checkpoint"),
    ],
)
def test_bad_model(which: str, fix: str, clip_grey: Path, tmp_path: Path, tiny_model: Path,
                   cli) -> None:
    model = "no-such-model" if which == "unknown" else tmp_path / f"{which}.safetensors"
    if isinstance(model, Path) and which == "corrupt":
        model.write_bytes(np.random.default_rng(1).bytes(4096))
        model.with_suffix(".json").write_text(tiny_model.with_suffix(".json").read_text())
    code, err = cli(clip_grey, "-o", tmp_path / "out.mp4", "--model", model, model=False)
    assert code == ModelError.exit_code == 5
    one_line_error(err, model, fix)
    assert not (tmp_path / "out.mp4").exists() and leftovers(tmp_path) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_gpu(clip_grey: Path, tmp_path: Path, cli) -> None:
    code, err = cli(clip_grey, "-o", tmp_path / "out.mp4", "--device", "cuda")
    assert code == DeviceError.exit_code == 7
    one_line_error(err, "--device cuda", "--device cpu")


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--pipeline", "no-such-preset"], "unknown pipeline 'no-such-preset'"),
        (["--pipeline", "missing.toml"], "missing.toml"),
        (["--duration", "0"], "--duration"),
        (["--batch-size", "0"], "batch_size"),
    ],
)
def test_usage_errors(args: list[str], problem: str, clip_grey: Path, tmp_path: Path,
                      cli) -> None:
    code, err = cli(clip_grey, "-o", tmp_path / "out.mp4", *args)
    assert code == UsageError.exit_code == 2
    one_line_error(err, problem)


def test_argparse_errors_return_2(clip_grey: Path, tmp_path: Path, cli) -> None:
    code, err = cli(clip_grey, "-o", tmp_path / "out.mp4", "--flow", "sideways")
    assert code == 2
    assert "invalid choice: 'sideways'" in err


def test_truncated_input(truncated_clip: Path, tmp_path: Path, cli) -> None:
    dest = tmp_path / "t.mkv"
    code, err = cli(truncated_clip, "-o", dest, "--codec", "ffv1")
    assert code == 0, err
    n = len(list(iter_frames(truncated_clip)))
    assert 0 < n == len(list(iter_frames(dest))) < 50
    warning = [line for line in err.splitlines() if "damaged" in line]
    assert len(warning) == 1 and str(truncated_clip) in warning[0]
    assert f"{n} frames coloured" in warning[0]
    assert f"{n}/{n}" in err  # the bar's total is corrected to what was really coloured


# -- errors with and without --debug; interruption -------------------------------------------


def test_debug_shows_the_traceback(not_media: Path, tmp_path: Path, cli) -> None:
    code, err = cli(not_media, "-o", tmp_path / "out.mp4", "--debug")
    assert code == 3
    assert "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1].startswith(f"vidcolor: error: {not_media}")


def test_unexpected_error_is_one_line_unless_debug(
    clip_grey: Path, tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Colorizer, L: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("model exploded")

    monkeypatch.setattr(Colorizer, "predict", broken)
    dest = tmp_path / "out.mp4"
    code, err = cli(clip_grey, "-o", dest, "-q")
    assert code == 1
    one_line_error(err, "model exploded", "--debug")
    code, err = cli(clip_grey, "-o", dest, "-q", "--debug")
    assert code == 1
    assert "Traceback" in err and "model exploded" in err
    assert not dest.exists() and leftovers(tmp_path) == []


def test_keyboard_interrupt_mid_film(
    clip_with_audio: Path, tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real_predict = Colorizer.predict

    def predict(self: Colorizer, L: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_predict(self, L)

    monkeypatch.setattr(Colorizer, "predict", predict)
    dest = tmp_path / "out.mp4"
    code, err = cli(clip_with_audio, "-o", dest, "--batch-size", "2")
    assert code == EXIT_INTERRUPTED == 130
    assert err.strip().splitlines()[-1] == "vidcolor: interrupted; no partial output was kept"
    assert "Traceback" not in err
    assert not dest.exists() and leftovers(tmp_path) == []


def test_sigterm_stops_cleanly(tmp_path: Path, tiny_model: Path) -> None:
    """A real SIGTERM to ``python -m vidcolor`` mid-film: exit 130, no output, no temp file."""
    src = make_clip(tmp_path / "long.mp4", n=75, audio=False)  # 3 s
    dest = tmp_path / "out" / "film.mp4"
    dest.parent.mkdir()
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [sys.executable, "-m", "vidcolor", str(src), "-o", str(dest), "--model",
           str(tiny_model), "--batch-size", "1", "-q"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 120
        while not leftovers(dest.parent):  # the writer has started: we are mid-film
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run never started writing"
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "interrupted" in err and "Traceback" not in err
    assert list(dest.parent.iterdir()) == []
