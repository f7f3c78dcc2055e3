"""What a new user meets first: instant help, Ctrl-C at any moment, messages in the user's terms,
checks before the model loads, a closing summary line, plain progress off a terminal, and the
conventions (-y, --log-file, python -m vidcolor)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import make_clip

from vidcolor.errors import EXIT_INTERRUPTED, ModelError, UsageError
from vidcolor.presets import load_pipeline
from vidcolor.progress import PlainProgress, progress_bar

REPO = Path(__file__).resolve().parent.parent


def vidcolor(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidcolor", *args], capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("front") / "film.mp4", n=12, audio=False)


def test_help_and_version_import_no_torch():
    code = ("import sys, contextlib, io\nfrom vidcolor.__main__ import main\n"
            "for argv in (['--help'], ['--version'], ['studio', '--help'], ['train', '--help']):\n"
            "    with contextlib.redirect_stdout(io.StringIO()):\n"
            "        assert main(argv) == 0, argv\n"
            "print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_subcommand_help_has_a_description_and_helps_every_argument():
    r = vidcolor("preview", "--help")
    assert r.returncode == 0
    assert "Contact sheet of a few coloured frames." in r.stdout
    assert "a film or an image" in r.stdout and "replace an existing sheet" in r.stdout
    assert "--working-size PX" in r.stdout and "WORKING_SHORT_SIDE" not in r.stdout
    assert vidcolor("--version").stdout.startswith("vidcolor ")


def _wait_for_torch_loading(p: subprocess.Popen) -> None:
    """Until torch's library is mapped into ``p`` (its import has begun and has most of a
    second to go); a fixed sleep lost the race on a fast machine, where a tiny film was done."""
    maps = Path(f"/proc/{p.pid}/maps")
    if not maps.exists():
        time.sleep(1.5)
        return
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and p.poll() is None:
        try:
            if "libtorch" in maps.read_text():
                return
        except OSError:
            return
        time.sleep(0.005)


def test_ctrl_c_at_start_is_one_line_and_130(clip: Path, tmp_path: Path):
    """SIGINT while the heavy libraries are still importing: no traceback."""
    p = subprocess.Popen([sys.executable, "-m", "vidcolor", str(clip), "-o",
                          str(tmp_path / "o.mp4")], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    _wait_for_torch_loading(p)  # the interpreter is up, torch still importing
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == EXIT_INTERRUPTED, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("vidcolor: ")
    assert not (tmp_path / "o.mp4").exists()


def test_preset_values_of_the_wrong_type(tmp_path: Path):
    bad = tmp_path / "big.toml"
    bad.write_text('working_short_side = "big"\n')
    with pytest.raises(UsageError, match=r"working_short_side in a preset\) must be a whole "
                       r"number, got 'big'"):
        load_pipeline(bad)
    typo = tmp_path / "typo.toml"
    typo.write_text("working_size = 256\n")
    with pytest.raises(UsageError, match="unknown setting 'working_size'; did you mean "
                       "'working_short_side'"):
        load_pipeline(typo)
    with pytest.raises(UsageError, match=r"^--working-size \(working_short_side"):
        load_pipeline("balanced", working_short_side=0)


def test_cli_messages_name_what_the_user_typed(clip: Path, tmp_path: Path):
    r = vidcolor(str(clip), "-o", str(tmp_path / "o.mp4"), "--working-size", "0")
    assert r.returncode == 2 and "--working-size" in r.stderr
    notes = tmp_path / "notes.txt"
    notes.write_text("{}")
    r = vidcolor(str(clip), "-o", str(tmp_path / "o.mp4"), "--model", str(notes))
    assert r.returncode == ModelError.exit_code
    assert "not a .safetensors checkpoint" in r.stderr and r.stderr.count("\n") == 1


def test_output_and_range_checked_before_the_model(clip: Path, tmp_path: Path):
    """With a missing model too, the output name (4) and the range (3) are reported: they are
    checked before any model loads."""
    missing = str(tmp_path / "none.safetensors")
    r = vidcolor(str(clip), "-o", str(tmp_path / "out.xyz"), "--model", missing)
    assert r.returncode == 4 and "unknown output format '.xyz'" in r.stderr
    r = vidcolor(str(clip), "-o", str(tmp_path / "o.mp4"), "--start", "10", "--model", missing)
    assert r.returncode == 3 and "past the end of the film, which is 0.48 s long" in r.stderr


def test_a_run_ends_with_a_summary_and_y_overwrites(clip: Path, tiny_model: Path,
                                                     tmp_path: Path):
    out = tmp_path / "o.mp4"
    log = tmp_path / "run.log"
    r = vidcolor(str(clip), "-o", str(out), "--model", str(tiny_model), "--log-file", str(log))
    assert r.returncode == 0, r.stderr
    assert f"wrote {out}: 12 frames, 0.5 s of film at 25 fps, 1 shot" in r.stdout
    assert "temporal stage" in log.read_text()
    assert vidcolor(str(clip), "-o", str(out), "--model", str(tiny_model)).returncode == 4
    r = vidcolor(str(clip), "-o", str(out), "--model", str(tiny_model), "-y", "-q")
    assert r.returncode == 0 and "wrote" in r.stdout and r.stderr == ""


def test_video_result_says_which_fps_is_which(clip: Path, tiny_model: Path, tmp_path: Path):
    from vidcolor import ColorizeOptions, colorize_video

    result = colorize_video(clip, tmp_path / "o.mp4",
                            ColorizeOptions(model=str(tiny_model), quiet=True))
    assert result.film_fps == 25 and abs(result.film_seconds - 12 / 25) < 1e-6
    assert result.fps == result.frames / result.seconds  # the processing speed


def test_progress_off_a_terminal_is_plain_log_lines(monkeypatch, caplog):
    monkeypatch.setattr("vidcolor.progress.PLAIN_EVERY", 0.0)
    bar = progress_bar(total=10, desc="film.mp4")  # pytest's stderr is no terminal
    assert isinstance(bar, PlainProgress)
    with caplog.at_level(logging.INFO, logger="vidcolor"):
        bar.update(5)
    assert "film.mp4: 5/10 frames" in caplog.text and "ETA" in caplog.text
    monkeypatch.setenv("NO_COLOR", "1")
    assert isinstance(progress_bar(total=1, desc="x"), PlainProgress)
    assert progress_bar(total=1, desc="x", quiet=True).disable


def test_python_dash_m_and_the_console_script_agree():
    script = Path(sys.executable).with_name("vidcolor")
    if not script.exists():
        pytest.skip("no console script next to this Python (not installed with pip -e)")
    a = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert a.stdout == vidcolor("--version").stdout and a.returncode == 0
    assert os.access(script, os.X_OK)
