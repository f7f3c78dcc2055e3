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
from vidcolor.models.exemplar import TINY_EXEMPLAR, exemplar_colorizer
from vidcolor.models.fusion import TINY_FUSION, fusion_colorizer, upgrade_state_dict
from vidcolor.models.unet import TINY_UNET, unet_colorizer
from vidcolor.names import (
    ARCHITECTURE_NAMES,
    DEFAULT_MODEL,
    available_models,
    models_dir,
)
from vidcolor.names import (
    STEER_MODEL as STEER_MODEL,
)

log = logging.getLogger("vidcolor")

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "fusion": fusion_colorizer,
    "chromagan": chromagan_colorizer,
    "unet": unet_colorizer,
    "autoencoder": autoencoder_colorizer,
    "exemplar": exemplar_colorizer,
}
TINY_CONFIGS: dict[str, dict[str, Any]] = {
    "fusion": TINY_FUSION,
    "chromagan": TINY_FUSION,
    "unet": TINY_UNET,
    "autoencoder": TINY_AUTOENCODER,
    "exemplar": TINY_EXEMPLAR,
}
"""Small configs for tests and smoke runs."""
PRIOR_ARCHITECTURES = ("fusion", "chromagan", "exemplar")
"""Architectures whose encoder starts from the ImageNet Lite0 weights."""
if tuple(ARCHITECTURES) != ARCHITECTURE_NAMES:  # the CLI's list (no torch) must agree
    raise ImportError(f"vidcolor.names.ARCHITECTURE_NAMES is {ARCHITECTURE_NAMES}, "
                      f"but the builders are {tuple(ARCHITECTURES)}")
GUIDED_ARCHITECTURES = ("exemplar",)
"""Architectures that take a guidance input (``model(L, guide)``)."""
INFERENCE_OPTIONS = (
    "temperature", "mix", "mix_confidence", "saturation", "confidence", "spread_ref", "smooth",
    "damp", "fade", "fade_power", "fade_cast", "film_fade",
)
"""Config fields that may be changed at load time without changing the weights' shapes."""


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
    except TypeError as exc:  # only a config that names unknown fields is the user's checkpoint
        if "unexpected keyword argument" not in str(exc):
            raise
        raise ModelError(f"bad config for architecture {arch!r}: {exc}") from exc
    except ValueError as exc:
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
        if p.suffix != ".safetensors":
            raise ModelError(
                f"{p}: not a .safetensors checkpoint; --model takes a shipped model name "
                f"({', '.join(available_models()) or 'none'}), a .safetensors file (its .json "
                "beside it) or a training run folder"
            )
        return p
    shipped = models_dir() / f"{name_or_path}.safetensors"
    if not shipped.is_file():
        names = ", ".join(available_models()) or "none"
        raise ModelError(
            f"unknown model {str(name_or_path)!r} (shipped models: {names}; "
            f"looked in {models_dir()}); give a name or a path to a .safetensors checkpoint"
        )
    return shipped


def check_state_dict(model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """Strict key and shape check with a short message (first names and counts, not all)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and own[k].shape != state[k].shape]
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if keys:
            more = f" and {len(keys) - 2} more" if len(keys) > 2 else ""
            problems.append(f"{len(keys)} {label} ({', '.join(keys[:2])}{more})")
    if problems:
        raise ModelError(
            f"{path}: weights do not match its config: {'; '.join(problems)}; "
            "use the .json written with these weights, or retrain/re-export the checkpoint"
        )


def load_model(
    name_or_path: str | Path = DEFAULT_MODEL,
    *,
    device: str | torch.device = "cpu",
    overrides: dict[str, Any] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Load a checkpoint strictly; returns the model in eval mode and its config dict."""
    path = resolve_checkpoint(name_or_path)
    cfg = read_config(path)
    if not isinstance(cfg.get("model", {}), dict):
        raise ModelError(f"{path}: config field 'model' must be a mapping, got {cfg['model']!r}")
    model_cfg = dict(cfg.get("model", {}))
    for k, v in (overrides or {}).items():
        if v is not None:
            known = k in model_cfg or cfg.get("arch") in PRIOR_ARCHITECTURES  # newer options
            if k not in INFERENCE_OPTIONS or not known:
                raise ModelError(f"option {k!r} does not apply to model {path.name}")
            model_cfg[k] = v
    try:
        model = build_model(cfg["arch"], model_cfg)
    except ModelError as exc:  # name the file: the message alone does not say which checkpoint
        raise ModelError(f"{path}: {exc}") from exc
    state = read_weights(path)
    if cfg["arch"] in PRIOR_ARCHITECTURES:
        state = upgrade_state_dict(state)
    check_state_dict(model, state, path)
    model.load_state_dict(state, strict=True)
    log.debug("loaded %s (%s)", path, cfg["arch"])
    return model.to(device).eval(), cfg
