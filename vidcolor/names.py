"""Names and defaults the command line needs before anything heavy loads (`vidcolor --help`
imports no torch): shipped model names, devices, architectures, preview count."""

from __future__ import annotations

from pathlib import Path

DEFAULT_MODEL = "vidcolor-fusion"
"""Name of the shipped default model (``models/<name>.safetensors``)."""
STEER_MODEL = "vidcolor-exemplar"
"""Name of the shipped guided model that steering (references, keyframes, hints) uses."""
ARCHITECTURE_NAMES = ("fusion", "chromagan", "unet", "autoencoder", "exemplar")
"""Every architecture ``vidcolor train --model`` builds (``vidcolor.models.ARCHITECTURES``)."""
DEVICES = ("auto", "cpu", "cuda")
PREVIEW_COUNT = 6
"""Frames of a contact sheet when neither ``--at`` nor ``--count`` is given."""


def models_dir() -> Path:
    """Where shipped checkpoints live: inside an installed wheel, else the repo's ``models/``."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_models", here.parent / "models"):
        if candidate.is_dir():
            return candidate
    return here.parent / "models"


def available_models() -> list[str]:
    """Names of the shipped checkpoints."""
    return sorted(p.stem for p in models_dir().glob("*.safetensors"))
