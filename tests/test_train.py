"""Tests of training: data discovery and split, degradation, a tiny overfit, exact resume, atomic
checkpoints, Ctrl-C, CLI errors, every architecture end to end, and ``eval-images``.
Tiny networks, 32-64 px images, CPU only (run with OMP_NUM_THREADS=1)."""

from __future__ import annotations

import csv
import json
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from vidcolor import lab
from vidcolor.__main__ import main
from vidcolor.errors import DataError, ModelError, UsageError
from vidcolor.models import load_model
from vidcolor.train import trainer as trainer_mod
from vidcolor.train.data import (
    VAL_PERCENT,
    find_images,
    is_validation,
    load_image_set,
    load_rgb,
)
from vidcolor.train.degrade import NO_DEGRADATION, DegradeOptions, degrade_grey
from vidcolor.train.evaluate import EvalImagesOptions, degraded_l, eval_images, evaluate_one
from vidcolor.train.trainer import Trainer, TrainOptions, train

ALL_DEGRADATIONS = DegradeOptions(
    p_grain=1.0, p_blur=1.0, p_jpeg=1.0, p_tone=1.0, p_dust=1.0, p_scratch=1.0
)
CKPT_FILES = {"model.safetensors", "model.json", "train_state.safetensors", "train_state.json"}
N_TRAIN = 5


def colour_image(h: int, w: int, seed: int) -> np.ndarray:
    """uint8 RGB with structure (a tilted gradient and soft blobs) whose colour follows its
    lightness (dark blue to light orange), so a tiny network can learn L -> ab quickly."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    t = 0.5 + 0.35 * ((x / w - 0.5) * np.cos(angle) + (y / h - 0.5) * np.sin(angle))
    for _ in range(3):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(6, 14)
        t += rng.choice([-0.35, 0.35]) * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r))
    t = np.clip(t, 0, 1)
    rgb = np.stack([0.1 + 0.85 * t, 0.25 + 0.5 * t, 0.9 - 0.8 * t], -1)
    return (rgb * 255 + 0.5).astype(np.uint8)


def make_folder(root: Path, n_train: int = N_TRAIN, *, junk: bool = True) -> Path:
    """``n_train`` training images and one held-out one (names chosen by the split's hash),
    in a sub-folder to exercise recursion; with ``junk`` also broken, truncated, tiny and grey
    files that must be skipped and counted."""
    sub = root / "sub"
    sub.mkdir(parents=True)
    train_names, val_name = [], None
    for i in range(400):
        name = f"img{i:03d}.png"
        if is_validation(sub / name, root):
            val_name = val_name or name
        elif len(train_names) < n_train:
            train_names.append(name)
        if val_name and len(train_names) == n_train:
            break
    assert val_name is not None
    for i, name in enumerate([*train_names, val_name]):
        Image.fromarray(colour_image(80, 96, i)).save(sub / name)
    if junk:
        (root / "broken.jpg").write_bytes(b"\xff\xd8 this is not a JPEG" * 20)
        png = (sub / train_names[0]).read_bytes()
        (root / "truncated.png").write_bytes(png[: len(png) // 3])
        Image.fromarray(colour_image(5, 5, 9)).save(root / "tiny.png")  # under 8 px: unusable
        grey = np.repeat(np.linspace(0, 255, 96, dtype=np.uint8)[None, :, None], 80, 0)
        Image.fromarray(np.repeat(grey, 3, 2)).save(root / "grey.png")
        (root / "notes.txt").write_text("not an image: never looked at")
    return root


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six colour images (one held out for validation) and four unusable files."""
    return make_folder(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def still(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A colour still of an odd size to colour through the CLI."""
    path = tmp_path_factory.mktemp("still") / "still.png"
    Image.fromarray(colour_image(50, 70, 42)).save(path)
    return path


def opts(data: Path, out: Path, **kw: Any) -> TrainOptions:
    """Tiny, fast, CPU training options; ``kw`` overrides any of them."""
    base: dict[str, Any] = {
        "model": "unet", "steps": 6, "batch_size": 2, "image_size": 32, "workers": 0,
        "device": "cpu", "tiny": True, "warmup": 2, "val_every": 2, "ckpt_every": 3,
        "val_size": 64,
    }
    return TrainOptions(data=data, out=out, **{**base, **kw})


def losses_from_csv(run: Path) -> list[float]:
    """The per-step training loss logged in ``metrics.csv``."""
    with (run / "metrics.csv").open() as f:
        return [float(r["value"]) for r in csv.DictReader(f)
                if r["kind"] == "train" and r["name"] == "loss"]


def interrupt_at(monkeypatch: pytest.MonkeyPatch, step: int) -> None:
    """Make the real train_step raise KeyboardInterrupt (as Ctrl-C would) once ``step`` steps
    are done, i.e. after that step's checkpoint was written."""
    real = Trainer.train_step

    def step_or_interrupt(self: Trainer, *args: Any) -> dict[str, float]:
        if self.step >= step:
            raise KeyboardInterrupt
        return real(self, *args)

    monkeypatch.setattr(Trainer, "train_step", step_or_interrupt)


# ------------------------------------------------------------------ data


def test_broken_and_grey_files_are_skipped_and_counted(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = find_images(data_dir)
    assert len(files) == N_TRAIN + 1 + 4  # recursive; notes.txt is not an image
    assert load_rgb(data_dir / "broken.jpg", 64) is None
    assert load_rgb(data_dir / "truncated.png", 64) is None
    assert load_rgb(data_dir / "tiny.png", 64) is None
    assert load_rgb(data_dir / "grey.png", 64).size == 0  # the 'grey' marker
    kept = load_rgb(next((data_dir / "sub").glob("*.png")), 64)
    assert kept.dtype == np.uint8 and min(kept.shape[:2]) == 64 and kept.flags.writeable
    with caplog.at_level(logging.INFO, logger="vidcolor"):
        images = load_image_set(files, short_side=64, what="test images")
    assert len(images.images) == len(images.paths) == N_TRAIN + 1
    assert "test images: 6 kept, 3 broken skipped, 1 grey skipped" in caplog.text


def test_empty_or_unusable_folder_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: no images found"):
        find_images(tmp_path / "empty")
    with pytest.raises(DataError, match="nowhere: not a directory"):
        find_images(tmp_path / "nowhere")
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.jpg").write_bytes(b"garbage")
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(junk / "b.png")
    with pytest.raises(DataError, match=r"no usable colour images among 2 files \(1 broken, 1 gr"):
        load_image_set(find_images(junk), short_side=32)
    with pytest.raises(DataError, match="nowhere: no such folder"):
        train(opts(tmp_path / "nowhere", tmp_path / "run"))
    assert main(["train", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "r"),
                 "--tiny", "--model", "unet", "--steps", "1", "--workers", "0"]) == 8


def test_validation_split_is_deterministic(tmp_path: Path) -> None:
    names = [Path(f"d{i % 7}") / f"frame{i:05d}.jpg" for i in range(3000)]
    picks = [is_validation(tmp_path / n, tmp_path) for n in names]
    # Stable: the same answer again, and under another root (it hashes the relative path).
    assert picks == [is_validation(tmp_path / n, tmp_path) for n in names]
    other = tmp_path / "elsewhere" / "copy"
    assert picks == [is_validation(other / n, other) for n in names]
    share = 100 * sum(picks) / len(picks)
    assert VAL_PERCENT / 2 < share < VAL_PERCENT * 2


def test_degrade_grey() -> None:
    grey = (colour_image(48, 64, 1).mean(-1)).astype(np.uint8)
    a = degrade_grey(grey, np.random.default_rng(7), ALL_DEGRADATIONS)
    assert a.shape == grey.shape and a.dtype == np.uint8
    assert np.abs(a.astype(int) - grey).mean() > 2.0  # visibly changed
    assert np.array_equal(a, degrade_grey(grey, np.random.default_rng(7), ALL_DEGRADATIONS))
    assert not np.array_equal(a, degrade_grey(grey, np.random.default_rng(8), ALL_DEGRADATIONS))
    d = degrade_grey(grey, np.random.default_rng(7), DegradeOptions())
    assert d.shape == grey.shape and d.dtype == np.uint8
    assert np.array_equal(degrade_grey(grey, np.random.default_rng(7), NO_DEGRADATION), grey)


# ------------------------------------------------------------------ training


def test_tiny_overfit(tmp_path: Path) -> None:
    """A tiny U-Net on four images: the mean loss of the last 5 of 40 steps is at most 0.4x that
    of the first 5 (measured ratios are 0.1-0.25 across seeds)."""
    data = make_folder(tmp_path / "data", 4, junk=False)
    train(opts(data, tmp_path / "run", steps=40, batch_size=4, lr=3e-3, degrade=False,
               val_every=1000, ckpt_every=1000))
    loss = losses_from_csv(tmp_path / "run")
    assert len(loss) == 40 and all(np.isfinite(loss))
    first, last = np.mean(loss[:5]), np.mean(loss[-5:])
    assert last <= 0.4 * first, f"loss {first:.4f} -> {last:.4f}"


@pytest.mark.parametrize("arch", ["unet", "chromagan"])
def test_resume_is_exact(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, arch: str
) -> None:
    """6 steps straight == 3 steps, Ctrl-C, --resume, 3 more (validation and checkpoints on).
    ChromaGAN also carries a critic, its optimizer and the random gradient-penalty mix."""
    size = 64 if arch == "chromagan" else 32
    straight = train(opts(data_dir, tmp_path / "a", model=arch, image_size=size))
    interrupt_at(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        train(opts(data_dir, tmp_path / "b", model=arch, image_size=size))
    monkeypatch.undo()
    assert sorted(p.name for p in (tmp_path / "b").glob("ckpt-*")) == ["ckpt-0000003"]
    resumed = train(opts(data_dir, tmp_path / "b", model=arch, image_size=size, resume=True))
    a, b = load_file(str(straight)), load_file(str(resumed))
    assert a.keys() == b.keys()
    worst = max(float((a[k].double() - b[k].double()).abs().max()) for k in a)
    assert worst <= 1e-6, f"resumed weights differ by {worst}"
    if arch == "chromagan":
        sa = load_file(str(tmp_path / "a" / "ckpt-0000006" / "train_state.safetensors"))
        sb = load_file(str(tmp_path / "b" / "ckpt-0000006" / "train_state.safetensors"))
        critic = [k for k in sa if k.startswith("critic.")]
        assert critic and all(torch.allclose(sa[k], sb[k], atol=1e-6) for k in critic)
    # Validation ran in both (at steps 2, 4, 6) and gave the same numbers at the end.
    va = json.loads((tmp_path / "a" / "final" / "model.json").read_text())["metrics"]
    vb = json.loads((tmp_path / "b" / "final" / "model.json").read_text())["metrics"]
    assert va and va.keys() == vb.keys()
    assert all(abs(va[k] - vb[k]) < 1e-4 for k in va)


@pytest.mark.parametrize("arch", ["fusion", "autoencoder"])
def test_only_the_imagenet_prior_stays_frozen(tmp_path: Path, data_dir: Path, arch: str) -> None:
    """The fusion net's Lite0 encoder is frozen (weights and BN statistics); the autoencoder's
    own convolutional 'encoder' is no prior and must train (it used to be frozen too)."""
    size = 64 if arch == "fusion" else 32
    t = Trainer(opts(data_dir, tmp_path / "run", model=arch, image_size=size, steps=2))
    before = {k: v.clone() for k, v in t.model.state_dict().items()}
    t.run()
    after = t.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    enc = {k for k in before if k.startswith("encoder.")}
    if arch == "fusion":
        assert enc and not enc & changed
        assert any(k.startswith("decoder.") for k in changed)
    else:
        weights = {k for k in enc if k.endswith(".weight")}
        assert weights and weights <= changed


def test_unusable_validation_files_only_skip_validation(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """When every held-out file is broken, training runs on without validation (it used to
    stop with 'no usable colour images')."""
    data = make_folder(tmp_path / "data", 3, junk=False)
    for val in [p for p in data.rglob("*.png") if is_validation(p, data)]:
        val.write_bytes(b"broken")
    with caplog.at_level(logging.INFO, logger="vidcolor"):
        final = train(opts(data, tmp_path / "run", steps=2))
    assert "no usable validation images among 1 files" in caplog.text
    assert json.loads(final.with_suffix(".json").read_text())["metrics"] == {}
    assert not list((tmp_path / "run").glob("val-*.png"))


def test_checkpoints_are_atomic_and_pruned(tmp_path: Path, data_dir: Path) -> None:
    run = tmp_path / "run"
    final = train(opts(data_dir, run, steps=7, ckpt_every=2))
    assert final == run / "final" / "model.safetensors"
    assert not list(run.glob(".tmp-*"))
    # keep_checkpoints=2: steps 2 and 4 were pruned, 6 and the last step (7) kept.
    assert sorted(p.name for p in run.glob("ckpt-*")) == ["ckpt-0000006", "ckpt-0000007"]
    for d in run.glob("ckpt-*"):
        assert {p.name for p in d.iterdir()} == CKPT_FILES
    assert {p.name for p in (run / "final").iterdir()} == {"model.safetensors", "model.json"}
    _, cfg = load_model(run)  # a run folder resolves to final/
    assert cfg["step"] == 7 and cfg["arch"] == "unet" and cfg["train"]["tiny"] is True
    state = json.loads((run / "ckpt-0000007" / "train_state.json").read_text())
    assert state["step"] == 7 and "rng_python" in state
    # A fresh run must not reuse a folder with checkpoints (pruning would eat the new ones).
    with pytest.raises(UsageError, match=r"already holds checkpoints.*--resume"):
        train(opts(data_dir, run))


def test_seed_fixes_initial_weights(tmp_path: Path, data_dir: Path) -> None:
    t1 = Trainer(opts(data_dir, tmp_path / "a", seed=3))
    torch.rand(10)  # whatever ran before must not matter
    t2 = Trainer(opts(data_dir, tmp_path / "b", seed=3))
    t3 = Trainer(opts(data_dir, tmp_path / "c", seed=4))
    s1, s2, s3 = (t.model.state_dict() for t in (t1, t2, t3))
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert not all(torch.equal(s1[k], s3[k]) for k in s1)


def test_ctrl_c_keeps_the_last_complete_checkpoint(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    interrupt_at(monkeypatch, 5)
    with pytest.raises(KeyboardInterrupt):
        train(opts(data_dir, run, steps=10, ckpt_every=2))
    assert sorted(p.name for p in run.glob("ckpt-*")) == ["ckpt-0000002", "ckpt-0000004"]
    assert not (run / "final").exists() and not list(run.glob(".tmp-*"))
    model, cfg = load_model(run / "ckpt-0000004" / "model.safetensors")
    assert cfg["step"] == 4
    assert model(torch.full((1, 1, 32, 32), 50.0))["ab"].shape == (1, 2, 32, 32)
    # Ctrl-C in the middle of writing a checkpoint: the half-written folder is removed.
    monkeypatch.undo()
    real_save = trainer_mod.save_tensors

    def save_then_interrupt(path: Path, *args: Any, **kw: Any) -> None:
        real_save(path, *args, **kw)
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer_mod, "save_tensors", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        train(opts(data_dir, run, steps=10, ckpt_every=2, resume=True))
    assert sorted(p.name for p in run.glob("ckpt-*")) == ["ckpt-0000002", "ckpt-0000004"]
    assert not list(run.glob(".tmp-*"))
    monkeypatch.undo()
    assert train(opts(data_dir, run, steps=10, ckpt_every=2, resume=True)).is_file()


def test_usage_errors(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(UsageError, match="--image-size must be divisible by the fusion network's "
                                         "stride 32, got 48"):
        Trainer(opts(data_dir, tmp_path / "r", model="fusion", image_size=48))
    with pytest.raises(UsageError, match="unknown --model 'resnet'; choose one of fusion"):
        Trainer(opts(data_dir, tmp_path / "r", model="resnet"))
    with pytest.raises(UsageError, match="--resume: no checkpoint in"):
        train(opts(data_dir, tmp_path / "r", resume=True))
    with pytest.raises(UsageError, match=r"--init x\.safetensors starts a new run"):
        train(opts(data_dir, tmp_path / "r", resume=True, init=Path("x.safetensors")))
    base = ["train", "--data", str(data_dir), "--out", str(tmp_path / "cli"), "--tiny",
            "--steps", "1", "--workers", "0"]
    capsys.readouterr()
    assert main([*base, "--model", "unet", "--image-size", "62"]) == 2
    assert "stride 4, got 62" in capsys.readouterr().err
    assert main([*base, "--model", "resnet"]) == 2  # argparse refuses unknown choices itself
    assert "invalid choice: 'resnet'" in capsys.readouterr().err
    assert main([*base, "--model", "unet", "--resume"]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(r"vidcolor: error: --resume: no checkpoint in .*\n", err)
    assert not (tmp_path / "r").exists()  # nothing created by a refused run


def test_resume_into_a_different_network_is_a_model_error(tmp_path: Path, data_dir: Path) -> None:
    run = tmp_path / "run"
    train(opts(data_dir, run, steps=2, ckpt_every=2))
    with pytest.raises(ModelError, match=r"--resume: .*ckpt-0000002 does not fit this run"):
        train(opts(data_dir, run, steps=4, resume=True, model_overrides={"channels": (4, 8, 8)}))


# ------------------------------------------------------------------ end to end via the CLI


@pytest.mark.parametrize("arch", ["fusion", "chromagan", "unet", "autoencoder"])
def test_cli_train_then_colour(
    tmp_path: Path, data_dir: Path, still: Path, arch: str, capsys: pytest.CaptureFixture
) -> None:
    run = tmp_path / "run"
    code = main(["train", "--data", str(data_dir), "--out", str(run), "--model", arch, "--tiny",
                 "--steps", "2", "--batch-size", "2", "--image-size", "64", "--workers", "0",
                 "-q"])
    assert code == 0, capsys.readouterr().err
    ckpt = run / "final" / "model.safetensors"
    assert f"final model: {ckpt}" in capsys.readouterr().out
    out_png = tmp_path / "coloured.png"
    assert main([str(still), "-o", str(out_png), "--model", str(ckpt), "-q"]) == 0
    with Image.open(still) as im:
        src = np.array(im.convert("RGB"))
    with Image.open(out_png) as im:
        assert im.mode == "RGB"
        got = np.array(im)
    assert got.shape == src.shape

    def lightness(rgb: np.ndarray) -> torch.Tensor:
        return lab.rgb_to_l(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0)

    diff = (lightness(got) - lightness(src)).abs()
    assert diff.mean() < 1.5, f"L changed by {diff.mean():.2f} on average"


def test_eval_images(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    ckpt = train(opts(data_dir, run, steps=2, ckpt_every=2))
    report = tmp_path / "reports" / "eval.json"
    capsys.readouterr()
    assert main(["eval-images", str(data_dir), "--model", str(ckpt), "--size", "64",
                 "--json", str(report), "-q"]) == 0
    table = capsys.readouterr().out
    lines = table.strip().splitlines()
    assert "6 images (3 broken, 1 grey skipped)" in lines[0]
    for label in ("PSNR (dB)", "SSIM", "colorfulness", "colorfulness gap"):
        assert any(line.startswith(label) for line in lines[1:]), table
    assert len({len(line) for line in lines[2:4]}) == 1  # aligned columns
    data = json.loads(report.read_text())
    assert data["model"] == str(ckpt) and data["arch"] == "unet" and data["size"] == 64
    assert data["counts"] == {"found": 10, "evaluated": 6, "broken": 3, "grey": 1}
    assert len(data["images"]) == 6
    assert all(min(r["width"], r["height"]) == 64 for r in data["images"])
    means = data["means"]
    assert means["grey_colorfulness"] < 0.5 < means["colorfulness_truth"]
    assert means["grey_psnr"] > 10 and 0 < means["grey_ssim"] <= 1
    assert means["colorfulness_gap"] == pytest.approx(
        means["colorfulness"] - means["colorfulness_truth"], abs=1e-6
    )
    assert means["psnr"] == pytest.approx(np.mean([r["psnr"] for r in data["images"]]))
    assert not list(report.parent.glob(".*"))  # written atomically: no temp file left
    # --degrade: the model sees degraded grey, the scores still use the clean L and truth.
    clean = eval_images(data_dir, EvalImagesOptions(model=ckpt, device="cpu", size=64, limit=3))
    deg = eval_images(data_dir, EvalImagesOptions(model=ckpt, device="cpu", size=64, limit=3,
                                                  degrade=True))
    again = eval_images(data_dir, EvalImagesOptions(model=ckpt, device="cpu", size=64, limit=3,
                                                    degrade=True))
    assert clean.evaluated == deg.evaluated == 3
    assert clean.means["grey_psnr"] == deg.means["grey_psnr"]
    assert clean.means["psnr"] != deg.means["psnr"]
    assert deg.means == again.means  # the degradation is seeded per image
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: no images found"):
        eval_images(tmp_path / "empty", EvalImagesOptions(model=ckpt, device="cpu"))


class Oracle(torch.nn.Module):
    """A 'model' that always answers with the true ab and records the L it was shown."""

    stride = 1

    def __init__(self, ab: torch.Tensor) -> None:
        super().__init__()
        self.ab = ab
        self.seen: torch.Tensor | None = None

    def forward(self, L: torch.Tensor) -> dict[str, torch.Tensor]:
        self.seen = L
        return {"ab": self.ab}


def test_evaluate_one_scores_a_perfect_prediction() -> None:
    rgb = torch.from_numpy(colour_image(40, 48, 3)).permute(2, 0, 1)[None].float() / 255.0
    truth = lab.rgb_to_lab(rgb)
    oracle = Oracle(truth[:, 1:])
    m = evaluate_one(oracle, rgb)["metrics"]
    assert torch.equal(oracle.seen, truth[:, :1])
    assert m["psnr"] > 45 and m["ssim"] > 0.99
    assert abs(m["colorfulness_gap"]) < 0.5 and m["colorfulness_truth"] > 20
    assert m["grey_psnr"] < m["psnr"] - 10 and m["grey_colorfulness"] < 0.5
    # A degraded input reaches the model, but the colour is put back on the clean L.
    degraded = degraded_l(colour_image(40, 48, 3), "a.png", seed=0)
    assert not torch.equal(degraded, truth[:, :1])
    m2 = evaluate_one(oracle, rgb, degraded)["metrics"]
    assert torch.equal(oracle.seen, degraded)
    assert m2 == m
    assert torch.equal(degraded, degraded_l(colour_image(40, 48, 3), "a.png", seed=0))
    assert not torch.equal(degraded, degraded_l(colour_image(40, 48, 3), "b.png", seed=0))


def test_eval_images_errors(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["eval-images", str(tmp_path / "empty"), "--model", "unused", "-q"]) == 8
    assert "no images found" in capsys.readouterr().err
    junk = tmp_path / "junk"
    junk.mkdir()
    shutil.copy(data_dir / "broken.jpg", junk)
    shutil.copy(data_dir / "grey.png", junk)
    ckpt = train(opts(data_dir, tmp_path / "run", steps=1, ckpt_every=1))
    with pytest.raises(DataError, match=r"no usable colour images among 2 files \(1 broken, 1 gr"):
        eval_images(junk, EvalImagesOptions(model=ckpt, device="cpu"))
    with pytest.raises(UsageError, match="--size must be at least 32, got 8"):
        eval_images(data_dir, EvalImagesOptions(model=ckpt, size=8))
