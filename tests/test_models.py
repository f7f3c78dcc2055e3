"""Tests of the networks, their registry and checkpoints, the Lite0 ImageNet prior, the ab bins,
the Lab conversions and guided chroma upsampling. Tiny configs, 32-64 px, CPU only."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import nn

from vidcolor import lab
from vidcolor.colorize import resize
from vidcolor.errors import ModelError
from vidcolor.models import (
    ARCHITECTURES,
    TINY_CONFIGS,
    build_model,
    load_model,
    models_dir,
    resolve_checkpoint,
)
from vidcolor.models import bins as abbins
from vidcolor.models.checkpoint import (
    config_path,
    export_checkpoint,
    read_config,
    save_checkpoint,
)
from vidcolor.models.fuse import fusion_available
from vidcolor.models.fusion import LEGACY_DECODER_KEYS, upgrade_state_dict
from vidcolor.models.infer import pad_amounts, predict_ab
from vidcolor.models.lite0 import Lite0, SameConv2d, lite0
from vidcolor.upsample import guided_upsample, guided_upsample_cpu

# (test id, architecture, config): every architecture, the fusion net with each head.
VARIANTS = [
    ("fusion-regression", "fusion", {**TINY_CONFIGS["fusion"], "head": "regression"}),
    ("fusion-bins", "fusion", {**TINY_CONFIGS["fusion"], "head": "bins"}),
    ("fusion-both", "fusion", {**TINY_CONFIGS["fusion"], "head": "both"}),
    ("chromagan", "chromagan", dict(TINY_CONFIGS["chromagan"])),
    ("unet", "unet", dict(TINY_CONFIGS["unet"])),
    ("autoencoder", "autoencoder", dict(TINY_CONFIGS["autoencoder"])),
]
IMAGENET_CATS = range(281, 286)
"""ImageNet classes 281-285: tabby, tiger cat, Persian, Siamese, Egyptian cat."""


def tiny(arch: str, config: dict[str, Any] | None = None, seed: int = 0) -> nn.Module:
    """A tiny model with reproducible random weights, in eval mode."""
    torch.manual_seed(seed)
    return build_model(arch, TINY_CONFIGS[arch] if config is None else config).eval()


def structured_l(h: int, w: int, batch: int = 1) -> torch.Tensor:
    """Lightness with structure (gradient, disc, stripes) in [5, 95], (B, 1, H, W)."""
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    disc = ((x - 0.6) ** 2 + (y - 0.4) ** 2 < 0.08).float()
    L = 10 + 60 * x + 20 * disc + 5 * torch.sin(12 * y)
    return torch.stack([L + 3 * i for i in range(batch)])[:, None].clamp(5, 95)


def at(path: Path) -> str:
    """Regex matching a message that starts with ``path`` (escaped: tmp paths hold dots)."""
    return re.escape(str(path))


def save_tiny(path: Path, model: nn.Module, arch: str) -> Path:
    """Save a model as a checkpoint the way training does (weights + JSON config)."""
    save_checkpoint(path, model, {"arch": arch, "model": model.config(), "step": 0})
    return path


@pytest.fixture(scope="module")
def unet_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny U-Net checkpoint (cheap to copy and damage)."""
    return save_tiny(tmp_path_factory.mktemp("unet") / "unet.safetensors", tiny("unet"), "unet")


# ------------------------------------------------------------------ architectures


@pytest.mark.parametrize(
    ("arch", "config"), [v[1:] for v in VARIANTS], ids=[v[0] for v in VARIANTS]
)
def test_forward_backward(arch: str, config: dict[str, Any]) -> None:
    torch.manual_seed(0)
    model = build_model(arch, config).train()
    L = structured_l(64, 64, batch=2)
    out = model(L)
    assert out["ab"].shape == (2, 2, 64, 64)
    assert torch.isfinite(out["ab"]).all()
    assert out["ab"].abs().max() <= lab.AB_SCALE * 1.001  # tanh or a mean of in-range bins
    head = config.get("head")
    if arch in ("fusion", "chromagan"):
        q = int(model.bin_centers.shape[0]) if head != "regression" else 0
        assert ("logits" in out) == (head != "regression")
        assert ("ab_reg" in out) == (head != "bins")
        if q:
            assert out["logits"].shape == (2, q, 16, 16)  # the bin head works at stride 4
    if arch == "chromagan":
        assert out["class_logits"].shape == (2, 1000)
    loss = sum(v.float().square().mean() for k, v in out.items() if k != "embedding")
    loss.backward()
    # The encoder's ImageNet classifier is kept for loading strictly but not used.
    grads = {n: p.grad for n, p in model.named_parameters() if not n.startswith("encoder._fc.")}
    missing = [n for n, g in grads.items() if g is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"
    assert all(torch.isfinite(g).all() for g in grads.values())
    assert sum(float(g.abs().sum()) for g in grads.values()) > 0


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_builders_are_keyword_only(arch: str) -> None:
    builder = ARCHITECTURES[arch]
    with pytest.raises(TypeError):
        builder(TINY_CONFIGS[arch])  # a positional config is refused
    with pytest.raises(TypeError, match="no_such_option"):
        builder(no_such_option=1)
    with pytest.raises(ModelError, match=rf"bad config for architecture '{arch}'.*no_such_option"):
        build_model(arch, {**TINY_CONFIGS[arch], "no_such_option": 1})
    # Configs come back from JSON with lists; the rebuilt network has the same shapes.
    model = builder(**TINY_CONFIGS[arch])
    again = build_model(arch, json.loads(json.dumps(model.config())))
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert shapes == {k: v.shape for k, v in again.state_dict().items()}


def test_unknown_architecture() -> None:
    with pytest.raises(ModelError, match=r"unknown architecture 'resnet'.*fusion"):
        build_model("resnet")


@pytest.mark.parametrize(
    ("arch", "size", "stride"),
    [("fusion", (48, 64), 32), ("unet", (64, 62), 4), ("autoencoder", (36, 64), 8)],
)
def test_size_not_divisible_by_stride(arch: str, size: tuple[int, int], stride: int) -> None:
    model = tiny(arch)
    assert model.stride == stride
    h, w = size
    with pytest.raises(ValueError, match=f"divisible by {stride}, got {h}x{w}"):
        model(torch.full((1, 1, h, w), 50.0))


def test_autoencoder_stride_follows_levels() -> None:
    model = tiny("autoencoder", {"channels": (4, 4, 4, 4), "middle": 4})
    assert model.stride == 16
    assert model(torch.full((1, 1, 32, 48), 50.0))["ab"].shape == (1, 2, 32, 48)
    with pytest.raises(ValueError, match="divisible by 16, got 40x48"):
        model(torch.full((1, 1, 40, 48), 50.0))


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_predict_ab_any_size(arch: str) -> None:
    model = tiny(arch)
    with torch.no_grad():
        for h, w in ((45, 37), (20, 70)):  # reflect padding, then pads wider than the image
            ab = predict_ab(model, structured_l(h, w))
            assert ab.shape == (1, 2, h, w)
            assert torch.isfinite(ab).all()
        L = structured_l(64, 64)  # already a multiple: no padding, the plain forward pass
        assert torch.equal(predict_ab(model, L), model(L)["ab"])


def test_pad_amounts() -> None:
    assert pad_amounts(45, 37, 32) == (19, 27)
    assert pad_amounts(64, 32, 32) == (0, 0)


# ------------------------------------------------------------------ checkpoints


@pytest.mark.parametrize("arch", ["fusion", "unet"])
def test_checkpoint_round_trip(tmp_path: Path, arch: str) -> None:
    model = tiny(arch, seed=3)
    if arch == "fusion":  # buffers are part of the checkpoint too
        model.bin_weights.copy_(torch.linspace(0.5, 2.0, model.bin_weights.numel()))
    path = save_tiny(tmp_path / "m.safetensors", model, arch)
    loaded, cfg = load_model(path)
    assert cfg["arch"] == arch and not loaded.training
    assert type(loaded) is type(model)
    L = structured_l(64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(L)["ab"], model(L)["ab"])
    # fp16 export: about half the size, stored as fp16, loads strictly and predicts closely.
    half = tmp_path / "half.safetensors"
    export_checkpoint(path, half, note="shipped")
    assert read_config(half)["note"] == "shipped"
    assert half.stat().st_size < 0.6 * path.stat().st_size
    with safe_open(str(half), "pt") as f:
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}  # noqa: SIM118 - not a dict
    assert torch.float16 in dtypes and torch.float32 not in dtypes
    loaded16, _ = load_model(half)
    with torch.no_grad():
        diff = (loaded16(L)["ab"] - model(L)["ab"]).abs().max()
    assert diff < 1.0, f"fp16 export moved ab by {diff:.3f} Lab units"


def test_run_folder_resolves_to_newest(tmp_path: Path) -> None:
    model = tiny("unet")
    for step in (10, 20):
        (tmp_path / f"ckpt-{step:07d}").mkdir()
        save_tiny(tmp_path / f"ckpt-{step:07d}" / "model.safetensors", model, "unet")
    assert resolve_checkpoint(tmp_path) == tmp_path / "ckpt-0000020" / "model.safetensors"
    (tmp_path / "final").mkdir()
    save_tiny(tmp_path / "final" / "model.safetensors", model, "unet")
    assert resolve_checkpoint(tmp_path) == tmp_path / "final" / "model.safetensors"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"empty: folder holds no checkpoint"):
        resolve_checkpoint(tmp_path / "empty")


def _copy(src: Path, dest: Path) -> Path:
    """Copy a checkpoint (weights and config) to ``dest``."""
    dest.write_bytes(src.read_bytes())
    config_path(dest).write_bytes(config_path(src).read_bytes())
    return dest


def test_config_that_does_not_match_weights(tmp_path: Path, unet_ckpt: Path) -> None:
    path = _copy(unet_ckpt, tmp_path / "wide.safetensors")
    cfg = json.loads(config_path(path).read_text())
    cfg["model"]["channels"] = [8, 16, 32]  # the weights were trained with (8, 16, 16)
    config_path(path).write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match=at(path) + r": weights do not match.*wrong shape"):
        load_model(path)


def test_config_with_unknown_option_or_architecture(tmp_path: Path, unet_ckpt: Path) -> None:
    path = _copy(unet_ckpt, tmp_path / "odd.safetensors")
    cfg = json.loads(config_path(path).read_text())
    config_path(path).write_text(json.dumps({**cfg, "model": {**cfg["model"], "depth": 3}}))
    with pytest.raises(ModelError, match=at(path) + r": bad config for architecture 'unet'.*depth"):
        load_model(path)
    config_path(path).write_text(json.dumps({**cfg, "arch": "resnet"}))
    with pytest.raises(ModelError, match=at(path) + r": unknown architecture 'resnet'"):
        load_model(path)


def test_chromagan_config_keys_are_strict() -> None:
    """An unknown key used to be dropped silently for chromagan (but not for fusion)."""
    with pytest.raises(ModelError, match=r"bad config for architecture 'chromagan'.*colour_boost"):
        build_model("chromagan", {**TINY_CONFIGS["chromagan"], "colour_boost": 2.0})


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_damaged_weights(tmp_path: Path, unet_ckpt: Path, damage: str) -> None:
    path = _copy(unet_ckpt, tmp_path / f"{damage}.safetensors")
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00\x01not a safetensors file" * 10)
    else:
        path.write_bytes(b"")
    with pytest.raises(ModelError, match=at(path) + r": damaged or not a safetensors checkpoint"):
        load_model(path)


def test_missing_config_or_file(tmp_path: Path, unet_ckpt: Path) -> None:
    path = _copy(unet_ckpt, tmp_path / "alone.safetensors")
    config_path(path).unlink()
    with pytest.raises(ModelError, match=at(config_path(path)) + r": config missing"):
        load_model(path)
    gone = tmp_path / "gone.safetensors"
    with pytest.raises(ModelError, match=at(gone) + r": checkpoint not found"):
        load_model(gone)
    bad_json = _copy(unet_ckpt, tmp_path / "badjson.safetensors")
    config_path(bad_json).write_text("{not json")
    with pytest.raises(ModelError, match=at(config_path(bad_json)) + r": unreadable"):
        load_model(bad_json)


def test_unknown_model_name() -> None:
    with pytest.raises(ModelError, match="unknown model 'no-such-model'") as info:
        load_model("no-such-model")
    assert str(models_dir()) in str(info.value)
    assert "\n" not in str(info.value)


def test_legacy_decoder_names_are_upgraded() -> None:
    """Checkpoints from before the decoder became a list of levels still load strictly."""
    model = tiny("fusion")
    state = model.state_dict()
    legacy = {}
    for k, v in state.items():
        for old, new in LEGACY_DECODER_KEYS.items():
            if k.startswith(new):
                k = old + k[len(new) :]
        legacy[k] = v
    assert any(k.startswith("decoder.up16.") for k in legacy)
    upgraded = upgrade_state_dict(legacy)
    assert upgraded.keys() == state.keys()
    tiny("fusion", seed=1).load_state_dict(upgraded, strict=True)


# ------------------------------------------------------------------ Lite0 ImageNet prior


def test_lite0_imagenet_weights_classify_a_cat() -> None:
    """The packaged ImageNet weights load strictly into our Lite0 (TF 'SAME' padding, BN eps,
    input scaling) and see a cat in colour and in grey: the prior works on B&W film."""
    skimage_data = pytest.importorskip("skimage.data")
    model = lite0(pretrained=True).eval()
    rgb = torch.from_numpy(skimage_data.chelsea().copy()).permute(2, 0, 1)[None].float() / 255
    rgb = F.interpolate(rgb, size=(224, 224), mode="bilinear", antialias=True)
    grey = lab.l_to_grey(lab.rgb_to_l(rgb)).expand(-1, 3, -1, -1)
    with torch.no_grad():
        probs = model(Lite0.prepare(torch.cat([rgb, grey]))).softmax(1)
    top = probs.argmax(1).tolist()
    assert all(t in IMAGENET_CATS for t in top), f"top-1 classes {top}, expected 281-285"
    cat_mass = probs[:, 281:286].sum(1)
    assert (cat_mass > 0.8).all(), f"cat probability {cat_mass.tolist()}"
    skips, emb = model.features(Lite0.prepare(rgb))
    assert [s.shape[-1] for s in skips] == [112, 56, 28, 14, 7]  # strides 2..32
    assert emb.shape == (1, 1280)


def test_same_padding_matches_tensorflow() -> None:
    """TF 'SAME' with stride 2 on an even size pads only after (bottom/right), which is what
    the ported weights saw in training; symmetric or flipped padding shifts every feature."""
    conv = SameConv2d(1, 1, 3, stride=2, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    with torch.no_grad():
        y = conv(x)
        odd = conv(torch.ones(1, 1, 5, 5))  # odd size: pad 1 on each side
    assert y.shape == (1, 1, 2, 2)  # ceil(4 / 2)
    assert float(y[0, 0, 0, 0]) == float(x[0, 0, 0:3, 0:3].sum())  # no padding before
    assert float(y[0, 0, 1, 1]) == float(x[0, 0, 2:4, 2:4].sum())  # one zero row/col after
    assert float(odd[0, 0, 0, 0]) == 4.0 and float(odd[0, 0, 1, 1]) == 9.0


# ------------------------------------------------------------------ ab bins


def test_in_gamut_bins() -> None:
    centers = abbins.in_gamut_bins()
    assert centers.ndim == 2 and centers.shape[1] == 2
    assert 150 <= len(centers) <= 330
    assert (centers.remainder(abbins.GRID_STEP) == 0).all()  # on the 10-unit grid
    assert (centers.abs() <= 110).all()
    as_set = {tuple(c) for c in centers.tolist()}
    assert (0.0, 0.0) in as_set  # neutral grey
    assert (-110.0, -110.0) not in as_set  # saturated green-blue: no sRGB colour has it
    assert len(as_set) == len(centers)


def test_soft_encode() -> None:
    centers = abbins.in_gamut_bins()
    torch.manual_seed(0)
    idx = torch.randint(len(centers), (50,))
    ab = centers[idx] + (torch.rand(50, 2) - 0.5) * 9.0  # within a cell of a known centre
    ab_img = ab.T.reshape(1, 2, 5, 10)
    target, nearest = abbins.soft_encode(ab_img, centers)
    assert target.shape == (1, len(centers), 5, 10)
    assert torch.allclose(target.sum(1), torch.ones(1, 5, 10), atol=1e-5)
    assert ((target > 0).sum(1) == abbins.SOFT_NEIGHBOURS).all()
    true_nearest = torch.cdist(ab, centers).argmin(1).reshape(1, 5, 10)
    assert torch.equal(nearest, true_nearest)
    assert torch.equal(target.argmax(1), true_nearest)  # most weight on the nearest bin
    exact, _ = abbins.soft_encode(centers[idx[:4]].T.reshape(1, 2, 2, 2), centers)
    assert (exact.max(1).values > 0.5).all()  # a centre itself keeps the majority


def test_annealed_mean_and_confidence() -> None:
    centers = abbins.in_gamut_bins()
    q = int(torch.cdist(torch.tensor([[30.0, -20.0]]), centers).argmin())
    logits = torch.zeros(1, len(centers), 2, 3)
    logits[:, q] = 10.0  # one-hot
    ab = abbins.annealed_mean(logits, centers, temperature=0.1)
    assert ab.shape == (1, 2, 2, 3)
    assert torch.allclose(ab, centers[q][None, :, None, None].expand_as(ab), atol=1e-3)
    # T = 1 with flat logits is the plain mean of the centres.
    flat = abbins.annealed_mean(torch.zeros(1, len(centers), 1, 1), centers, 1.0)
    assert torch.allclose(flat[0, :, 0, 0], centers.mean(0), atol=1e-4)
    conf = abbins.confidence(torch.cat([logits * 3, torch.zeros_like(logits)]))
    assert conf[0].min() > 0.95 and conf[1].abs().max() < 1e-5


def test_rebalance_weights() -> None:
    torch.manual_seed(0)
    hist = torch.rand(40) ** 4 * 1000  # skewed: a few common bins, many rare ones
    w = abbins.rebalance_weights(hist)
    p = hist / hist.sum()
    assert torch.isclose((p * w).sum(), torch.tensor(1.0), atol=1e-5)  # E_p[w] = 1
    order = p.argsort()
    assert (w[order].diff() <= 1e-6).all(), "weights must fall as bins get more common"
    assert w[p.argmin()] > 1.0 > w[p.argmax()]
    smoothed = abbins.smoothed_histogram(torch.zeros(100, 2), abbins.in_gamut_bins())
    assert int(smoothed.argmax()) == int(abbins.in_gamut_bins().abs().sum(1).argmin())


# ------------------------------------------------------------------ Lab


def test_lab_round_trip() -> None:
    torch.manual_seed(0)
    rgb = torch.rand(2, 3, 16, 16)
    back = lab.lab_to_rgb(lab.rgb_to_lab(rgb))
    assert (back - rgb).abs().max() < 2e-3
    L = lab.rgb_to_l(rgb)
    assert L.shape == (2, 1, 16, 16) and L.min() >= 0 and L.max() <= 100


def test_grey_to_l_inverse() -> None:
    v = torch.linspace(0, 1, 257)
    L = lab.grey_to_l(v)
    assert (lab.l_to_grey(L) - v).abs().max() < 1e-4
    assert L.diff().min() > 0  # monotone
    rgb = v.reshape(1, 1, 1, -1).expand(1, 3, 1, -1)
    assert (lab.rgb_to_l(rgb)[0, 0, 0] - L).abs().max() < 0.05  # matches the full conversion
    assert torch.allclose(lab.grey_to_l(torch.tensor([0.0, 1.0])), torch.tensor([0.0, 100.0]),
                          atol=1e-3)


def test_grey_to_l_table_is_close() -> None:
    # the film's table: within 0.002 L units of the arithmetic, clamped outside [0, 1]
    edges = torch.tensor([-0.5, 0.0, 0.04045, 1.0, 2.0])
    v = torch.cat([torch.rand(1, 1, 40, 50).flatten(), edges])
    got = lab.grey_to_l_table(v)
    assert got.dtype == torch.float32 and got.shape == v.shape
    assert (got - lab.grey_to_l(v)).abs().max() < 2e-3
    want = lab.grey_to_l(edges.clamp(0.0, 1.0))
    assert (got[-5:] - want).abs().max() < 2e-3 and want[0] == 0.0 and want[-1] == 100.0


@pytest.mark.parametrize("shape", [(480, 854), (4, 4), (6, 10), (1080, 1920)])
def test_resize_halving_is_torchs_antialiased_resize(shape: tuple[int, int]) -> None:
    # the 4:2:0 chroma guide is halved in OpenCV: torch's filter, renormalised edges included
    torch.manual_seed(2)
    x = torch.rand(1, 1, *shape) * 100.0
    half = (shape[0] // 2, shape[1] // 2)
    want = F.interpolate(x, size=half, mode="bilinear", align_corners=False, antialias=True)
    got = resize(x, half)
    assert got.shape == want.shape and (got - want).abs().max() < 1e-4
    field = x[..., 1::2, :]  # a strided view (an interlaced field's lines)
    if field.shape[-2] >= 4 and field.shape[-2] % 2 == 0:
        size = (field.shape[-2] // 2, half[1])
        want = F.interpolate(field, size=size, mode="bilinear", align_corners=False,
                             antialias=True)
        assert (resize(field, size) - want).abs().max() < 1e-4


@pytest.mark.parametrize("matrix", sorted(lab.LUMA_COEFFS))
def test_ycbcr_inverse(matrix: str) -> None:
    torch.manual_seed(1)
    rgb = torch.rand(1, 3, 8, 8)
    ycc = lab.rgb_to_ycbcr(rgb, matrix)
    assert ycc[:, 1:].abs().max() <= 0.5 + 1e-6
    assert (lab.ycbcr_to_rgb(ycc, matrix) - rgb).abs().max() < 1e-5
    grey = torch.full((1, 3, 2, 2), 0.4)
    assert lab.rgb_to_ycbcr(grey, matrix)[:, 1:].abs().max() < 1e-6


def test_colorfulness() -> None:
    grey = torch.linspace(0, 1, 64).reshape(1, 1, 8, 8).expand(1, 3, 8, 8)
    assert lab.colorfulness(grey).abs().max() < 1e-4
    red = torch.zeros(1, 3, 8, 8)
    red[:, 0] = 1.0
    assert lab.colorfulness(red) > 50


# ------------------------------------------------------------------ guided upsampling


def test_guided_upsample_keeps_chroma_edges_sharp() -> None:
    """A chroma step at a luminance edge, upsampled 4x: the guided filter follows the
    full-resolution L edge, bilinear smears the colour over several pixels."""
    h = w = 64
    edge = w // 2 + 2  # not on the low-resolution grid: the low-res edge pixel is a mix
    L_hi = torch.full((1, 1, h, w), 30.0)
    L_hi[..., edge:] = 70.0
    ab_true = torch.full((1, 2, h, w), -40.0)
    ab_true[..., edge:] = 40.0
    L_lo = F.interpolate(L_hi, scale_factor=0.25, mode="area")
    ab_lo = F.interpolate(ab_true, scale_factor=0.25, mode="area")
    guided = guided_upsample(ab_lo, L_lo, L_hi)
    bilinear = F.interpolate(ab_lo, size=(h, w), mode="bilinear", align_corners=False)
    assert guided.shape == ab_true.shape
    err_g = (guided - ab_true).abs()
    err_b = (bilinear - ab_true).abs()
    assert err_g.mean() < 0.2 * err_b.mean(), (err_g.mean(), err_b.mean())
    bleed_g = int((err_g[0, 0, 0] > 5).sum())  # pixels off by more than 5 Lab units
    bleed_b = int((err_b[0, 0, 0] > 5).sum())
    assert bleed_g == 0 and bleed_b >= 4
    step = guided[0, 0, 0, edge] - guided[0, 0, 0, edge - 1]
    assert step > 0.9 * 80.0  # the whole step happens across one pixel


@pytest.mark.parametrize("matrix", ["bt601", "bt709"])
def test_cpu_chroma_path_matches_the_torch_one(matrix: str) -> None:
    """The film's OpenCV chroma path (guided filter, Lab -> Cb/Cr) is the torch path's
    arithmetic: within 1e-3 of full scale on saturated, partly out-of-gamut colour."""
    g = torch.Generator().manual_seed(3)
    L_hi = F.interpolate(torch.rand(1, 1, 12, 20, generator=g) * 100, size=(75, 133),
                         mode="bicubic", align_corners=False).clamp(0, 100)
    L_lo = F.interpolate(L_hi, size=(56, 100), mode="area")
    ab_lo = F.interpolate(torch.randn(1, 2, 7, 12, generator=g) * 60, size=(56, 100),
                          mode="bilinear", align_corners=False)
    up = guided_upsample_cpu(ab_lo[0].numpy(), L_lo[0, 0].numpy(), L_hi[0, 0].numpy())
    assert up.shape == (2, 75, 133)
    ref = guided_upsample(ab_lo, L_lo, L_hi)[0].numpy()
    assert np.abs(up - ref).max() < 1e-2  # Lab units
    cb, cr = lab.lab_to_cbcr_cpu(L_hi[0, 0].numpy(), ref, matrix)
    rgb = lab.lab_to_rgb(torch.cat([L_hi, torch.from_numpy(ref)[None]], 1))
    ycc = lab.rgb_to_ycbcr(rgb, matrix)
    for got, want in ((cb, ycc[0, 1].numpy()), (cr, ycc[0, 2].numpy())):
        assert np.abs(got - want).max() < 1e-3  # measured 3e-4, impossible colours included
    assert np.abs(cr).max() > 0.2  # the colour was strong, so the comparison means something


# -- head mixing: confidence by spread, smoothing, damping (the blotch controls) -------------


def _logits_for(centers: torch.Tensor, picks: list[list[int]], strength: float = 30.0):
    """Logits (1, Q, 1, N): pixel n puts its mass evenly on the bins listed in picks[n]."""
    q, n = centers.shape[0], len(picks)
    logits = torch.full((1, q, 1, n), -strength)
    for i, bins in enumerate(picks):
        for b in bins:
            logits[0, b, 0, i] = 0.0
    return logits


def test_spread_is_small_for_one_colour_and_large_for_two_far_apart():
    centers = abbins.in_gamut_bins()
    near = int(torch.cdist(centers[:1], centers)[0].argsort()[1])  # the neighbouring cell
    far = int(torch.cdist(centers[:1], centers)[0].argmax())
    s = abbins.spread(_logits_for(centers, [[0], [0, near], [0, far]]), centers)[0, 0, 0]
    dist = float((centers[0] - centers[far]).norm())
    assert float(s[0]) < 1.0 and float(s[1]) < 10.0
    assert abs(float(s[2]) - dist / 2) < 1.0  # two equal modes: half their distance


def test_mix_heads_defaults_are_v1_and_new_options_act():
    from dataclasses import replace

    from vidcolor.models.fusion import FusionConfig, mix_heads

    centers = abbins.in_gamut_bins()
    torch.manual_seed(0)
    logits = torch.randn(1, centers.shape[0], 4, 6) * 3
    ab_reg = torch.tanh(torch.randn(1, 2, 8, 12))
    v1 = FusionConfig(mix=1.0, mix_confidence=True)
    # v1's formula, written out: bin weight min(1, 2 x mix x (1 - normalised entropy))
    ab_bins = F.interpolate(abbins.annealed_mean(logits, centers, v1.temperature), size=(8, 12),
                            mode="bilinear", align_corners=False)
    conf = F.interpolate(abbins.confidence(logits), size=(8, 12), mode="bilinear",
                         align_corners=False)
    w = (2.0 * conf).clamp(0, 1)
    want = w * ab_bins + (1 - w) * lab.denormalize_ab(ab_reg)
    assert torch.allclose(mix_heads(ab_reg, logits, centers, v1, (8, 12)), want, atol=1e-5)
    # damp 1 fades everything by (1 - confidence); smoothing keeps the shape, changes values
    damped = mix_heads(ab_reg, logits, centers, replace(v1, damp=1.0), (8, 12))
    assert torch.allclose(damped, want * conf, atol=1e-5)
    smooth = mix_heads(ab_reg, logits, centers, replace(v1, smooth=1), (8, 12))
    assert smooth.shape == want.shape and not torch.allclose(smooth, want)
    spread = mix_heads(ab_reg, logits, centers, replace(v1, confidence="spread"), (8, 12))
    assert spread.shape == want.shape and not torch.allclose(spread, want)
    with pytest.raises(ModelError, match="confidence must be one of"):
        build_model("fusion", {**TINY_CONFIGS["fusion"], "confidence": "guess"})


def test_fade_keeps_sure_colour_and_greys_unsure_colour():
    """Film fading: the regression head's ab times min(1.5, (confidence / fade) ** power); a
    pixel whose bins are spread evenly goes grey, one that is sure keeps (or gains) colour."""
    from dataclasses import replace

    from vidcolor.models.fusion import FADE_GAIN_MAX, FusionConfig, mix_heads

    centers = abbins.in_gamut_bins()
    q = centers.shape[0]
    logits = torch.zeros(1, q, 1, 3)  # pixel 0: all bins alike (confidence 0)
    logits[0, :, 0, 1] = -30.0
    logits[0, 5, 0, 1] = 0.0  # pixel 1: one bin (confidence 1)
    logits[0, :, 0, 2] = torch.randn(q)  # pixel 2: in between
    ab_reg = torch.full((1, 2, 1, 3), 0.3)
    cfg = replace(FusionConfig(), fade=0.4, fade_power=1.2)
    out = mix_heads(ab_reg, logits, centers, cfg, (1, 3))
    reg = lab.denormalize_ab(ab_reg)
    conf = abbins.confidence(logits)
    want = reg * ((conf / 0.4) ** 1.2).clamp(max=FADE_GAIN_MAX)
    assert torch.allclose(out, want, atol=1e-5)
    assert float(out[0, :, 0, 0].abs().max()) < 1e-3  # unsure: grey
    assert torch.allclose(out[0, :, 0, 1], reg[0, :, 0, 1] * FADE_GAIN_MAX, atol=1e-4)
    off = mix_heads(ab_reg, logits, centers, replace(cfg, fade=0.0), (1, 3))
    assert not torch.allclose(off, out)  # fade 0 is the ordinary mix


def test_fade_cast_takes_the_cast_off_the_pixels_that_carry_it():
    """``fade_cast`` removes that share of the frame's mean ab from each pixel's component along
    it (at most the cast), per frame; neutral and opposite pixels keep their colour, photos (no
    fade) are untouched."""
    from dataclasses import replace

    from vidcolor.models.fusion import FusionConfig, mix_heads, remove_cast

    ab = torch.zeros(2, 2, 2, 2)
    ab[0, 0] = torch.tensor([[40.0, 40.0], [0.0, -8.0]])  # frame 0: a strong +a cast
    ab[0, 1, 1, 0] = 10.0  # a pixel across the cast (pure +b)
    ab[1, 1] = -20.0  # frame 1: a uniform -b cast
    out = remove_cast(ab, 0.5)
    cast0 = 18.0  # frame 0's mean a: (40 + 40 + 0 - 8) / 4; its mean b is 10 / 4
    unit = torch.tensor([cast0, 2.5]) / (cast0**2 + 2.5**2) ** 0.5
    size = (cast0**2 + 2.5**2) ** 0.5
    want = ab[0, :, 0, 0] - 0.5 * size * unit  # along the cast by more than the cast: capped
    assert torch.allclose(out[0, :, 0, 0], want, atol=1e-4)
    along = float(10.0 * unit[1])  # the +b pixel carries a little of the cast
    assert torch.allclose(out[0, :, 1, 0], ab[0, :, 1, 0] - 0.5 * along * unit, atol=1e-4)
    assert torch.equal(out[0, :, 1, 1], ab[0, :, 1, 1])  # opposite the cast: untouched
    assert torch.allclose(out[1], ab[1] * 0.5)  # a uniform cast halves, frame by frame
    assert torch.equal(remove_cast(torch.zeros(1, 2, 3, 3), 0.5), torch.zeros(1, 2, 3, 3))

    centers = abbins.in_gamut_bins()
    logits = torch.randn(2, centers.shape[0], 4, 6, generator=torch.Generator().manual_seed(0))
    ab_reg = torch.rand(2, 2, 8, 12, generator=torch.Generator().manual_seed(1)) * 0.6 - 0.1
    cfg = replace(FusionConfig(), fade=0.3)
    full = mix_heads(ab_reg, logits, centers, cfg, (8, 12))
    half = mix_heads(ab_reg, logits, centers, replace(cfg, fade_cast=0.5), (8, 12))
    assert torch.allclose(half, remove_cast(full, 0.5))
    photo = replace(FusionConfig(), fade_cast=0.5)  # no fade: the photo mix, no cast removal
    assert torch.equal(mix_heads(ab_reg, logits, centers, photo, (8, 12)),
                       mix_heads(ab_reg, logits, centers, FusionConfig(), (8, 12)))


def test_use_fade_switches_film_colour_and_restores_the_models_own(
    tiny_model: Path, tmp_path: Path
):
    from conftest import tiny_checkpoint

    from vidcolor.colorize import Colorizer

    c = Colorizer.load(tiny_model, device="cpu", working_short_side=64, precision="fp32")
    L = torch.linspace(10, 90, 64 * 96).reshape(1, 1, 64, 96)
    own = c.predict(L)
    c.accelerated = object()  # a runtime converted with the other setting must be dropped
    c.use_fade(True)
    assert c.model.cfg.fade == c.model.cfg.film_fade == 0.38 and c.accelerated is None
    film = c.predict(L)
    assert not torch.allclose(film, own)
    c.use_fade(False)
    assert c.model.cfg.fade == 0.0
    assert torch.allclose(c.predict(L), own)
    unet = Colorizer.load(tiny_checkpoint("unet", tmp_path / "unet.safetensors"), device="cpu",
                          working_short_side=64, precision="fp32")
    before = unet.predict(L)
    unet.use_fade(True)  # no bin head: nothing to fade by, nothing changes
    assert not unet.can_fade() and torch.equal(unet.predict(L), before)
    # a model whose film_fade is 0 (the ChromaGAN fine-tune ships so): films as photos
    gan = Colorizer.load(tiny_checkpoint("chromagan", tmp_path / "gan.safetensors"),
                         device="cpu", working_short_side=64, precision="fp32")
    assert gan.can_fade() and gan.model.cfg.film_fade == 0.0
    before, marker = gan.predict(L), object()
    gan.accelerated = marker
    gan.use_fade(True)
    assert gan.accelerated is marker and gan.model.cfg.fade == 0.0
    gan.accelerated = None
    assert torch.equal(gan.predict(L), before)


def test_new_inference_options_apply_to_an_old_checkpoint(tmp_path: Path):
    """A v1 config has no 'damp' or 'smooth': they still apply at load time (defaults = v1)."""
    model = tiny("fusion")
    path = save_tiny(tmp_path / "old.safetensors", model, "fusion")
    cfg = json.loads(path.with_suffix(".json").read_text())
    for k in ("damp", "smooth", "confidence", "spread_ref"):
        cfg["model"].pop(k, None)
    path.with_suffix(".json").write_text(json.dumps(cfg))
    plain, _ = load_model(path)
    damped, _ = load_model(path, overrides={"damp": 1.0, "smooth": 1})
    assert damped.cfg.damp == 1.0 and damped.cfg.smooth == 1 and plain.cfg.damp == 0.0


def test_precision_auto_bf16_and_fallback(tiny_model: Path, monkeypatch):
    import vidcolor.colorize as colorize
    from vidcolor.colorize import Colorizer, resolve_precision
    from vidcolor.errors import UsageError

    cpu = torch.device("cpu")
    monkeypatch.setattr(colorize, "cpu_has_bf16", lambda: False)
    assert resolve_precision("auto", cpu) == "fp32"  # no native bf16: the fallback
    monkeypatch.setattr(colorize, "cpu_has_bf16", lambda: True)
    assert resolve_precision("auto", cpu) == "bf16"
    assert resolve_precision("fp32", cpu) == "fp32"
    with pytest.raises(UsageError, match="precision must be one of"):
        resolve_precision("fp8", cpu)
    L = torch.rand(2, 1, 64, 96) * 100
    fp32 = Colorizer.load(tiny_model, device="cpu", precision="fp32").predict(L)
    bf16 = Colorizer.load(tiny_model, device="cpu", precision="bf16").predict(L)
    assert bf16.dtype == torch.float32 and bf16.shape == fp32.shape
    assert (bf16 - fp32).abs().mean() < 1.0  # ab units: bf16 rounding, not another result


def test_bf16_weights_cast_once_compute_what_autocast_computes(tiny_model: Path) -> None:
    # the CPU's bf16 path keeps a copy of the net with bf16 weights: bit for bit what autocast
    # gives with the fp32 weights, the fp32 model untouched, and film fading followed
    from vidcolor.colorize import Colorizer

    c = Colorizer.load(tiny_model, device="cpu", precision="bf16")
    L = (torch.rand(2, 1, 64, 96) * 100).contiguous(memory_format=torch.channels_last)
    for film in (False, True, False):
        c.use_fade(film)
        with torch.inference_mode(), c.autocast():
            want = c.model(L)["ab"].float()
        assert torch.equal(c.predict(L), want)
    assert c.cast is not None and c.cast.cfg is c.model.cfg
    assert {p.dtype for p in c.model.parameters()} == {torch.float32}
    assert torch.bfloat16 in {p.dtype for p in c.cast.parameters()}


@pytest.mark.parametrize(("name", "arch", "config"), VARIANTS, ids=[c[0] for c in VARIANTS])
def test_batchnorm_folding_keeps_the_function(name: str, arch: str, config: dict[str, Any]):
    """Folded batch norm (inference) computes what conv + batch norm computed, for every
    architecture; every batch norm after a convolution is gone."""
    from vidcolor.models.fold import fold_batchnorm

    torch.manual_seed(0)
    model = build_model(arch, config)
    for m in model.modules():  # statistics far from the identity, as after training
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    model.eval()
    L = torch.rand(2, 1, 64, 96) * 100
    with torch.no_grad():
        before = {k: v.clone() for k, v in model(L).items() if isinstance(v, torch.Tensor)}
        n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
        folded = fold_batchnorm(model)
        after = model(L)
    assert (folded > 0 or n_bn == 0) and folded == n_bn - sum(
        isinstance(m, nn.BatchNorm2d) for m in model.modules())
    for k, v in before.items():
        assert torch.allclose(after[k], v, atol=2e-3, rtol=1e-3), k
    with pytest.raises(ValueError, match="eval"):
        fold_batchnorm(model.train())


@pytest.mark.skipif(not fusion_available(), reason="this torch has no oneDNN fused convolution")
@pytest.mark.parametrize(("name", "arch", "config"), VARIANTS, ids=[c[0] for c in VARIANTS])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_activations_compute_the_same_numbers(
    name: str, arch: str, config: dict[str, Any], dtype: torch.dtype
) -> None:
    """Convolution and activation in one call (after folding) give the unfused network's
    output, in fp32 and in bf16 as the film path casts it: the same sums, at most in another
    order (bit for bit on this CPU)."""
    import copy

    from vidcolor.models.fold import fold_batchnorm
    from vidcolor.models.fuse import FusedConv2d, fuse_activations

    model = build_model(arch, config).eval()
    fold_batchnorm(model)
    model = model.to(dtype).to(memory_format=torch.channels_last)
    fused = copy.deepcopy(model)
    n = fuse_activations(fused)
    assert n == sum(isinstance(m, FusedConv2d) for m in fused.modules())
    assert n > 0 or arch != "fusion"
    L = (torch.rand(2, 1, 64, 96) * 100).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16,
                                                enabled=dtype == torch.bfloat16):
        want, got = model(L), fused(L)
    tol = 1e-5 if dtype == torch.float32 else 1e-2
    for k, v in want.items():
        if isinstance(v, torch.Tensor):
            assert torch.allclose(got[k].float(), v.float(), rtol=tol, atol=tol), k
    with pytest.raises(ValueError, match="eval"):
        fuse_activations(fused.train())


@pytest.mark.skipif(not fusion_available(), reason="this torch has no oneDNN fused convolution")
def test_fused_same_conv_pads_like_tensorflow_on_any_size() -> None:
    """A stride-2 'SAME' convolution fused with ReLU6: the shifted kernel on even sizes, the
    explicit padding on odd ones, both the convolution then the clamp (to float rounding: the
    kernel's extra zeros may change the order of the sums)."""
    from vidcolor.models.fuse import FusedConv2d

    torch.manual_seed(0)
    for k in (3, 5):
        for groups in (1, 4):
            conv = SameConv2d(4, 4, k, stride=2, groups=groups, bias=True).eval()
            fused = FusedConv2d(conv, nn.ReLU6())
            for size in ((12, 10), (13, 10), (12, 9), (7, 7)):
                x = torch.randn(1, 4, *size) * 4
                with torch.inference_mode():
                    want = F.relu6(conv(x))
                    got = fused(x)
                    assert got.shape == want.shape, (k, groups, size)
                    assert torch.allclose(got, want, rtol=1e-5, atol=1e-5), (k, groups, size)


def test_same_conv_stride_one_pads_like_tensorflow() -> None:
    """The stride-1 shortcut (the convolution pads) equals the explicit SAME padding."""
    torch.manual_seed(0)
    for k in (1, 3, 5):
        conv = SameConv2d(4, 4, k, groups=4, bias=False)
        x = torch.randn(1, 4, 13, 10)
        want = F.conv2d(F.pad(x, [k // 2] * 4), conv.weight, None, 1, 0, 1, 4)
        assert torch.allclose(conv(x), want, atol=1e-6)
