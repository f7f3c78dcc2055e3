"""Checkpoints: ``.safetensors`` weights beside a plain JSON config (never a pickled object)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from vidcolor.errors import IO_ERRNOS, ModelError

FORMAT_VERSION = 1


def _publish(tmp: str | Path, path: Path) -> None:
    """Give a temp file normal permissions (mkstemp makes it private) and rename it into place."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def config_path(weights: Path) -> Path:
    """The JSON config that sits beside a weights file (``x.safetensors`` -> ``x.json``)."""
    return Path(weights).with_suffix(".json")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file via a temporary file in the same folder and an atomic rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        _publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_tensors(
    path: Path, tensors: dict[str, torch.Tensor], dtype: torch.dtype | None = None
) -> None:
    """Save tensors atomically as safetensors (optionally casting floating tensors)."""
    out = {}
    for k, v in tensors.items():
        v = v.detach().cpu()
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        out[k] = v.contiguous()
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        save_file(out, tmp)
        _publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(
    weights: Path, model: torch.nn.Module, config: dict[str, Any], *, half: bool = False
) -> None:
    """Write ``weights`` (.safetensors) and its JSON config; ``half`` stores fp16 weights."""
    cfg = {"format": FORMAT_VERSION, **config}
    save_tensors(weights, model.state_dict(), torch.float16 if half else None)
    atomic_write_bytes(config_path(weights), json.dumps(cfg, indent=2, sort_keys=True).encode())


def read_config(weights: Path) -> dict[str, Any]:
    """Read and check the JSON config of a checkpoint."""
    cpath = config_path(weights)
    if not cpath.is_file():
        raise ModelError(
            f"{cpath}: config missing for checkpoint {weights}; a checkpoint is a .safetensors "
            "file with its .json beside it, as written by 'vidcolor train'"
        )
    try:
        cfg = json.loads(cpath.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{cpath}: unreadable checkpoint config ({exc})") from exc
    if not isinstance(cfg, dict) or "arch" not in cfg:
        raise ModelError(f"{cpath}: not a vidcolor checkpoint config (no 'arch' key)")
    return cfg


def read_weights(weights: Path) -> dict[str, torch.Tensor]:
    """Load a safetensors file to CPU float32; a damaged file is a clear ModelError."""
    weights = Path(weights)
    if not weights.is_file():
        raise ModelError(f"{weights}: checkpoint not found")
    try:
        state = load_file(str(weights), device="cpu")
    except PermissionError as exc:
        raise ModelError(f"{weights}: permission denied reading the checkpoint") from exc
    except OSError as exc:
        if getattr(exc, "errno", None) in IO_ERRNOS:
            raise ModelError(
                f"{weights}: read error ({exc.strerror or exc}): the disk or mount, not a damaged "
                "file; try again once it reads"
            ) from exc
        raise ModelError(
            f"{weights}: damaged or not a safetensors checkpoint ({exc}); re-export it with "
            "'vidcolor train' or restore the file"
        ) from exc
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise ModelError(
            f"{weights}: damaged or not a safetensors checkpoint ({exc}); re-export it with "
            "'vidcolor train' or restore the file"
        ) from exc
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def export_checkpoint(
    src: Path,
    dest: Path,
    *,
    half: bool = True,
    inference: dict[str, Any] | None = None,
    **extra: Any,
) -> None:
    """Copy a training checkpoint for shipping: fp16 weights, config without optimizer state;
    ``inference`` sets the model's inference options (e.g. the tuned bin/regression mix)."""
    cfg = read_config(src)
    cfg.update(extra)
    if inference:
        cfg["model"] = {**cfg.get("model", {}), **inference}
    state = read_weights(src)
    save_tensors(dest, state, torch.float16 if half else None)
    atomic_write_bytes(config_path(dest), json.dumps(cfg, indent=2, sort_keys=True).encode())
