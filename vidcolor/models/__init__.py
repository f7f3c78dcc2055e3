"""Model registry: architectures by name, shipped checkpoints, and loading by name or path."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidcolor.errors import ModelError
from vidcolor.models.autoencoder import TINY_AUTOENCODER, autoencoder_colorizer
from vidcolor.models.checkpoint import read_config, read_weights
from vidcolor.models.chromagan import chromagan_colorizer
from vidcolor.models.fusion import TINY_FUSION, fusion_colorizer
from vidcolor.models.unet import TINY_UNET, unet_colorizer

log = logging.getLogger("vidcolor")

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "fusion": fusion_colorizer,
    "chromagan": chromagan_colorizer,
    "unet": unet_colorizer,
    "autoencoder": autoencoder_colorizer,
}
TINY_CONFIGS: dict[str, dict[str, Any]] = {
    "fusion": TINY_FUSION,
    "chromagan": TINY_FUSION,
    "unet": TINY_UNET,
    "autoencoder": TINY_AUTOENCODER,
}
"""Small configs for tests and smoke runs."""
PRIOR_ARCHITECTURES = ("fusion", "chromagan")
"""Architectures whose encoder starts from the ImageNet Lite0 weights."""
DEFAULT_MODEL = "vidcolor-fusion"
"""Name of the shipped default model (``models/<name>.safetensors``)."""
INFERENCE_OPTIONS = ("temperature", "mix", "mix_confidence", "saturation")
"""Config fields that may be changed at load time without changing the weights' shapes."""


def models_dir() -> Path:
    """Where shipped checkpoints live: inside an installed wheel, else the repo's ``models/``."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_models", here.parent / "models"):
        if candidate.is_dir():
            return candidate
    return here.parent / "models"


def available_models() -> list[str]:
    """Names of the shipped checkpoints."""
    return sorted(p.stem for p in models_dir().glob("*.safetensors"))


def build_model(
    arch: str, config: dict[str, Any] | None = None, *, pretrained_encoder: bool = False
) -> nn.Module:
    """Build an architecture by name from a plain config dict."""
    if arch not in ARCHITECTURES:
        raise ModelError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    kwargs = dict(config or {})
    if arch in PRIOR_ARCHITECTURES:
        kwargs["pretrained_encoder"] = pretrained_encoder
    try:
        return ARCHITECTURES[arch](**kwargs)
    except TypeError as exc:
        raise ModelError(f"bad config for architecture {arch!r}: {exc}") from exc


def resolve_checkpoint(name_or_path: str | Path) -> Path:
    """A model name, a ``.safetensors`` file or a training run folder -> the weights file."""
    p = Path(name_or_path)
    if p.is_dir():
        ckpts = sorted(p.glob("ckpt-*/model.safetensors"))
        for cand in (p / "final" / "model.safetensors", *reversed(ckpts), p / "model.safetensors"):
            if cand.is_file():
                return cand
        raise ModelError(f"{p}: folder holds no checkpoint (expected ckpt-*/model.safetensors)")
    if p.suffix == ".safetensors" or p.exists() or "/" in str(name_or_path):
        if not p.is_file():
            raise ModelError(f"{p}: checkpoint not found; give a .safetensors file or a model name")
        return p
    shipped = models_dir() / f"{name_or_path}.safetensors"
    if not shipped.is_file():
        names = ", ".join(available_models()) or "none"
        raise ModelError(
            f"unknown model {str(name_or_path)!r} (shipped models: {names}; "
            f"looked in {models_dir()}); give a name or a path to a .safetensors checkpoint"
        )
    return shipped


def load_model(
    name_or_path: str | Path = DEFAULT_MODEL,
    *,
    device: str | torch.device = "cpu",
    overrides: dict[str, Any] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Load a checkpoint strictly; returns the model in eval mode and its config dict."""
    path = resolve_checkpoint(name_or_path)
    cfg = read_config(path)
    model_cfg = dict(cfg.get("model", {}))
    for k, v in (overrides or {}).items():
        if v is not None:
            if k not in INFERENCE_OPTIONS or k not in model_cfg:
                raise ModelError(f"option {k!r} does not apply to model {path.name}")
            model_cfg[k] = v
    model = build_model(cfg["arch"], model_cfg)
    state = read_weights(path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise ModelError(
            f"{path}: weights do not match its config ({cfg['arch']}): "
            f"{first[1].strip() if len(first) > 1 else first[0]}"
        ) from exc
    log.debug("loaded %s (%s)", path, cfg["arch"])
    return model.to(device).eval(), cfg
