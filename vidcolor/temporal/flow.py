"""Optical-flow backends behind one interface, computed on lightness at working resolution.

Every backend is called as ``backend(L_a, L_b)`` with (B, 1, h, w) lightness in [0, 100] and
returns the (B, 2, h, w) flow a -> b in pixels (see :mod:`vidcolor.temporal.warp`), on the
device of the input.

- ``raft_small`` / ``raft_large``: torchvision RAFT with its pretrained weights (GPU preset).
- ``dis``: OpenCV DIS, the CPU fallback, no weights.
- ``farneback``: OpenCV Farneback, only for evaluation metrics (independent of the stage's flow).
"""

from __future__ import annotations

import os
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np
import torch

if TYPE_CHECKING:
    from torchvision.models import WeightsEnum

from vidcolor.errors import FlowError, UsageError
from vidcolor.temporal.padding import InputPadder

RAFT_VARIANTS = ("raft_small", "raft_large")
OFFLINE_ENV = "VIDCOLOR_OFFLINE"
"""Set to 1 to never attempt a weights download (cached file or ``--flow-weights`` only)."""
DOWNLOAD_TIMEOUT_S = 10.0
RAFT_MIN_SIZE = 128
"""RAFT's correlation pyramid needs feature maps of at least 16 (x 8 pixels) per side."""


class FlowBackend(Protocol):
    """A dense optical-flow estimator on lightness."""

    name: str

    def __call__(self, L_a: torch.Tensor, L_b: torch.Tensor) -> torch.Tensor: ...


def _check_pair(L_a: torch.Tensor, L_b: torch.Tensor) -> None:
    if L_a.dim() != 4 or L_a.shape[1] != 1 or L_a.shape != L_b.shape:
        raise ValueError(
            f"expected two (B, 1, h, w) lightness tensors of equal shape, "
            f"got {tuple(L_a.shape)} and {tuple(L_b.shape)}"
        )


def flow_pair(
    backend: FlowBackend, L_a: torch.Tensor, L_b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flows a -> b and b -> a in one batched call (the pair the occlusion test needs)."""
    both = backend(torch.cat([L_a, L_b]), torch.cat([L_b, L_a]))
    n = L_a.shape[0]
    return both[:n], both[n:]


def _to_uint8(L: torch.Tensor) -> np.ndarray:
    """(B, 1, h, w) lightness 0..100 to a (B, h, w) uint8 array for OpenCV."""
    return (L[:, 0].detach().float() * 2.55).round().clamp(0, 255).to(torch.uint8).cpu().numpy()


class _OpenCVFlow:
    """Shared batching and conversion for OpenCV's per-image flow functions."""

    name = "opencv"

    def _one(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, L_a: torch.Tensor, L_b: torch.Tensor) -> torch.Tensor:
        _check_pair(L_a, L_b)
        h, w = L_a.shape[-2:]
        if min(h, w) < 16:
            raise UsageError(f"{self.name} flow needs images of at least 16x16, got {h}x{w}")
        a8, b8 = _to_uint8(L_a), _to_uint8(L_b)
        flows = np.stack([self._one(a, b) for a, b in zip(a8, b8, strict=True)])
        return torch.from_numpy(flows).permute(0, 3, 1, 2).to(L_a.device)


DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


class DisFlow(_OpenCVFlow):
    """OpenCV DIS optical flow (Kroeger et al. 2016): fast on CPU, no weights.

    ``input_scale`` n says the frames come at 1/n of the size the preset is meant for (the
    stage's ``flow_downscale``): the finest pyramid level moves log2(n) steps down, so the
    patches cover the same part of the scene and the scale schedule stays the same."""

    name = "dis"

    def __init__(self, *, preset: str = "fast", input_scale: int = 1) -> None:
        if preset not in DIS_PRESETS:
            raise UsageError(f"DIS preset must be one of {sorted(DIS_PRESETS)}, got {preset!r}")
        if input_scale not in (1, 2, 4):
            raise UsageError(f"DIS input scale must be 1, 2 or 4, got {input_scale!r}")
        self.preset = preset
        self._dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])
        steps = input_scale.bit_length() - 1
        self._dis.setFinestScale(max(0, self._dis.getFinestScale() - steps))

    def _one(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self._dis.calc(a, b, None)


class FarnebackFlow(_OpenCVFlow):
    """OpenCV Farneback flow; used by the evaluation metrics, never by the stage itself."""

    name = "farneback"

    def _one(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 4, 15, 3, 5, 1.2, 0)


class RaftFlow:
    """torchvision RAFT on grey 3-channel input in [-1, 1], padded to multiples of 8."""

    def __init__(self, model: torch.nn.Module, *, name: str, num_flow_updates: int = 12) -> None:
        self.model = model.eval()
        self.name = name
        self.num_flow_updates = num_flow_updates

    def __call__(self, L_a: torch.Tensor, L_b: torch.Tensor) -> torch.Tensor:
        _check_pair(L_a, L_b)
        padder = InputPadder(tuple(L_a.shape[-2:]), multiple=8, min_size=RAFT_MIN_SIZE)
        device = next(self.model.parameters()).device
        a = padder.pad((L_a.to(device) / 50.0 - 1.0).expand(-1, 3, -1, -1))
        b = padder.pad((L_b.to(device) / 50.0 - 1.0).expand(-1, 3, -1, -1))
        with torch.inference_mode():
            flows = self.model(a, b, num_flow_updates=self.num_flow_updates)
        return padder.unpad(flows[-1]).to(L_a.device)


def _raft_parts(variant: str) -> tuple[Callable[..., torch.nn.Module], WeightsEnum]:
    # torchvision.models costs ~2 s of start-up (it imports torch._dynamo); only RAFT needs it
    from torchvision.models import optical_flow as tv_flow
    if variant == "raft_small":
        return tv_flow.raft_small, tv_flow.Raft_Small_Weights.DEFAULT
    if variant == "raft_large":
        return tv_flow.raft_large, tv_flow.Raft_Large_Weights.DEFAULT
    raise UsageError(f"RAFT variant must be one of {RAFT_VARIANTS}, got {variant!r}")


def raft_cache_path(variant: str = "raft_small") -> Path:
    """Where torch hub caches the variant's weights: ``torch.hub.get_dir()/checkpoints/<file>``."""
    _, weights = _raft_parts(variant)
    filename = Path(urllib.parse.urlparse(weights.url).path).name
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def fetch_checkpoint(url: str, dst: Path, *, timeout_s: float = DOWNLOAD_TIMEOUT_S) -> None:
    """Download ``url`` to ``dst`` (atomically, via a temporary file); FlowError on any failure."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dst.parent, suffix=".partial")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout_s) as resp:
            while chunk := resp.read(1 << 20):
                out.write(chunk)
        tmp.replace(dst)
    except (OSError, ValueError) as exc:
        raise FlowError(f"could not download {url} to {dst}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def _load_file(path: Path) -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling and format errors have no common base class
        raise FlowError(f"could not read flow weights {path}: {exc}") from exc
    if not isinstance(state, dict):
        raise FlowError(f"expected a state dict in {path}, got {type(state).__name__}")
    return state


def _missing_weights_error(path: Path, variant: str, reason: str) -> FlowError:
    return FlowError(
        f"{variant} weights are not in the torch hub cache ({path}) and {reason}; fix: run once "
        f"with network access to cache them, or pass --flow-weights FILE, or use --flow dis"
    )


def load_raft_state_dict(
    variant: str = "raft_small",
    *,
    weights_file: Path | None = None,
    download: bool = True,
    timeout_s: float = DOWNLOAD_TIMEOUT_S,
) -> dict[str, torch.Tensor]:
    """The variant's pretrained weights from ``weights_file``, the hub cache, or a short download.

    Never hangs offline: the cache is checked first and a download is tried only with a timeout
    (and not at all when ``download`` is false or ``VIDCOLOR_OFFLINE=1``).
    """
    if weights_file is not None:
        path = Path(weights_file)
        if not path.is_file():
            raise FlowError(f"flow weights file not found: {path}")
        return _load_file(path)
    _, weights = _raft_parts(variant)
    path = raft_cache_path(variant)
    if not path.is_file():
        if not download or os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
            raise _missing_weights_error(path, variant, "downloads are disabled")
        try:
            fetch_checkpoint(weights.url, path, timeout_s=timeout_s)
        except FlowError as exc:
            raise _missing_weights_error(path, variant, f"the download failed ({exc})") from exc
    return _load_file(path)


def build_raft(
    *,
    variant: str = "raft_small",
    weights_file: Path | None = None,
    pretrained: bool = True,
    device: str | torch.device = "cpu",
    download: bool = True,
    num_flow_updates: int = 12,
) -> RaftFlow:
    """A RAFT backend; ``pretrained=False`` gives random weights (tests, benchmarks of cost)."""
    factory, _ = _raft_parts(variant)
    model = factory(weights=None, progress=False)
    if pretrained:
        state = load_raft_state_dict(variant, weights_file=weights_file, download=download)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            source = weights_file or raft_cache_path(variant)
            raise FlowError(f"{source} does not hold {variant} weights: {exc}") from exc
    return RaftFlow(model.to(device), name=variant, num_flow_updates=num_flow_updates)


def raft_weights_available(variant: str = "raft_small", weights_file: Path | None = None) -> bool:
    """Whether RAFT weights can be loaded without network."""
    if weights_file is not None:
        return Path(weights_file).is_file()
    return raft_cache_path(variant).is_file()


def resolve_flow_name(flow: str, *, device: str, weights_file: Path | None = None) -> str:
    """The concrete backend for a ``--flow`` value: 'auto' is RAFT-small on CUDA with weights
    present, else DIS; 'raft' means 'raft_small'."""
    if flow == "auto":
        on_cuda = torch.device(device).type == "cuda" and torch.cuda.is_available()
        use_raft = on_cuda and raft_weights_available("raft_small", weights_file)
        return "raft_small" if use_raft else "dis"
    return "raft_small" if flow == "raft" else flow


def make_flow(
    name: str,
    *,
    device: str = "cpu",
    weights_file: Path | None = None,
    dis_preset: str = "fast",
    input_scale: int = 1,
) -> FlowBackend:
    """Build a concrete backend by name ('raft_small', 'raft_large', 'dis', 'farneback');
    ``dis_preset`` and ``input_scale`` (frames at 1/n of the working size) tune DIS."""
    if name in RAFT_VARIANTS:
        return build_raft(variant=name, weights_file=weights_file, device=device)
    if name == "dis":
        return DisFlow(preset=dis_preset, input_scale=input_scale)
    if name == "farneback":
        return FarnebackFlow()
    raise UsageError(f"unknown flow backend {name!r}; expected one of raft_small, raft_large, dis")
