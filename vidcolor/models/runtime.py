"""The model stage of a film through OpenVINO on a CPU (``--runtime openvino``, opt-in): alone,
about half the CPU time of torch's bf16 for the fusion net; inside the 2-core pipeline, ~7 %
more frames a second and no CPU saved (README). The network is converted from the loaded model
(the safetensors file stays the one source of the weights) once per weights, settings and
input shape (conversion traces sizes in) and cached on disk, so a later run only compiles it."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from vidcolor.errors import ModelError, UsageError

if TYPE_CHECKING:
    from vidcolor.colorize import Colorizer

log = logging.getLogger("vidcolor")

def openvino_available() -> bool:
    """Whether the optional OpenVINO runtime is installed (``pip install 'vidcolor[openvino]'``)."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_runtime(runtime: str, *, device: torch.device) -> str:
    """The runtime to use (a name the preset has checked): OpenVINO needs the CPU and the
    package."""
    if runtime == "openvino":
        if device.type != "cpu":
            raise UsageError(f"--runtime openvino runs on the CPU, not on {device.type}: "
                             "use --device cpu or --runtime torch")
        if not openvino_available():
            raise UsageError("--runtime openvino needs OpenVINO: pip install 'vidcolor[openvino]' "
                             "(or use --runtime torch)")
    return runtime


def cache_dir() -> Path:
    """Where converted networks are kept: $VIDCOLOR_CACHE, else the user's cache folder."""
    root = os.environ.get("VIDCOLOR_CACHE")
    if root:
        return Path(root) / "openvino"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vidcolor" / "openvino"


def _key(colorizer: Colorizer, shape: tuple[int, ...]) -> str:
    import openvino as ov

    h = hashlib.sha256()
    for name, t in colorizer.model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().to(torch.float32).contiguous().numpy().tobytes())
    h.update(json.dumps(colorizer.config, sort_keys=True, default=str).encode())
    h.update(repr(getattr(colorizer.model, "cfg", None)).encode())  # film fading and the like
    h.update(repr((shape, ov.__version__)).encode())
    return h.hexdigest()[:24]


class _AbOnly(torch.nn.Module):
    """The network with its ab output only (what the film path uses)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        return self.net(L)["ab"]


class OpenVinoModel:
    """The colorizer's network compiled by OpenVINO for one input shape (B, 1, h, w); a
    smaller batch is padded to B. Calls take and return torch tensors, as ``predict``."""

    def __init__(self, colorizer: Colorizer, shape: tuple[int, int, int, int]) -> None:
        import openvino as ov

        self.shape = shape
        core = ov.Core()
        path = cache_dir() / f"{_key(colorizer, shape)}.xml"
        t0 = time.perf_counter()
        if path.exists() and path.with_suffix(".bin").exists():
            model = core.read_model(str(path))
            how = "cached"
        else:
            log.info("converting the model for OpenVINO at %dx%d (once; cached in %s)",
                     shape[3], shape[2], path.parent)
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")  # tracer warnings: the sizes are fixed here
                model = ov.convert_model(_AbOnly(colorizer.model).eval(),
                                         example_input=torch.zeros(shape))
            try:
                _save(ov, model, path)
                how = "converted"
            except OSError as e:  # a read-only home: run from memory, convert again next time
                log.warning("%s: the converted model could not be cached (%s)", path.parent, e)
                how = "converted, not cached"
        hint = "bf16" if colorizer.precision == "bf16" else "f32"
        self._compiled = core.compile_model(model, "CPU", {
            "INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": torch.get_num_threads()})
        self._request = self._compiled.create_infer_request()
        log.info("model stage on OpenVINO (%s, %s) in %.1f s", hint, how,
                 time.perf_counter() - t0)

    def accepts(self, L: torch.Tensor) -> bool:
        """Whether ``L`` fits the compiled shape (same size, batch at most B)."""
        return (tuple(L.shape[1:]) == self.shape[1:] and L.shape[0] <= self.shape[0]
                and L.device.type == "cpu")

    def __call__(self, L: torch.Tensor) -> torch.Tensor:
        n = L.shape[0]
        x = np.zeros(self.shape, np.float32)
        x[:n] = L.detach().float().numpy()
        out = self._request.infer({0: x})[self._compiled.output(0)]
        return torch.from_numpy(np.array(out[:n], dtype=np.float32))


def _save(ov, model, path: Path) -> None:
    """Write the IR pair under temporary names, then rename: a crash leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".convert-") as tmp:
        tmp_xml = Path(tmp) / path.name
        ov.save_model(model, str(tmp_xml), compress_to_fp16=False)
        os.replace(tmp_xml.with_suffix(".bin"), path.with_suffix(".bin"))
        os.replace(tmp_xml, path)


def accelerate(colorizer: Colorizer, runtime: str, *, shape: tuple[int, int, int, int]) -> str:
    """Compile the colorizer's network for ``shape`` when ``runtime`` is 'openvino' (else
    detach any compiled one); what runs is returned. A failed conversion is a ModelError."""
    colorizer.accelerated = None
    if runtime != "openvino":
        return "torch"
    try:
        colorizer.accelerated = OpenVinoModel(colorizer, shape)
    except Exception as e:  # any failure inside OpenVINO's converter or compiler
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise ModelError(f"OpenVINO could not compile the model ({reason}); use "
                         "--runtime torch") from e
    return "openvino"
