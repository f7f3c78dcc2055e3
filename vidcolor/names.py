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
PRECISIONS = ("auto", "bf16", "fp32")
RUNTIMES = ("torch", "openvino")
"""Model runtimes of the film path (``vidcolor.models.runtime``)."""
"""Training autocast choices (`vidcolor train --precision`)."""
PREVIEW_COUNT = 6
"""Frames of a contact sheet when neither ``--at`` nor ``--count`` is given."""


def shipped_dir(name: str) -> Path:
    """A folder shipped with vidcolor (``models``, ``pipelines``): inside an installed wheel
    (``vidcolor/_NAME``), else the repository's ``NAME/``."""
    here = Path(__file__).resolve().parent
    for candidate in (here / f"_{name}", here.parent / name):
        if candidate.is_dir():
            return candidate
    return here.parent / name


def models_dir() -> Path:
    """Where shipped checkpoints live."""
    return shipped_dir("models")


def available_models() -> list[str]:
    """Names of the shipped checkpoints."""
    return sorted(p.stem for p in models_dir().glob("*.safetensors"))
