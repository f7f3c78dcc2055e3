"""The colourize stage: a loaded model at a working resolution, and the frame arithmetic around
it (native luma -> L for the model; predicted ab -> chroma planes at the output's resolution)."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import kornia.color as kc
import numpy as np
import torch
import torch.nn.functional as F

from vidcolor import lab
from vidcolor.errors import DeviceError, UsageError
from vidcolor.models import DEFAULT_MODEL, load_model
from vidcolor.models.fold import fold_batchnorm
from vidcolor.models.fuse import fuse_activations, fusion_available
from vidcolor.names import DEVICES, PRECISIONS
from vidcolor.upsample import guided_upsample, guided_upsample_cpu, halve_cpu

log = logging.getLogger("vidcolor")

MODEL_MULTIPLE = 32
"""Working sizes are rounded to this multiple (the encoder's stride), so no padding is needed."""


def pick_device(name: str) -> torch.device:
    """'auto' -> CUDA if present, else CPU; 'cuda' without a GPU is a clear DeviceError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(
                "--device cuda asked for, but no CUDA GPU is available; use --device cpu"
            )
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise UsageError(f"--device must be one of {', '.join(DEVICES)}, got {name!r}")


def working_size(
    h: int, w: int, short_side: int, multiple: int = MODEL_MULTIPLE
) -> tuple[int, int]:
    """(h, w) scaled so the short side is ``short_side`` (never upscaled past the frame),
    each rounded to ``multiple`` (the aspect ratio moves by at most half a multiple)."""
    s = min(1.0, short_side / min(h, w)) if min(h, w) >= multiple else multiple / min(h, w)
    return (
        max(multiple, round(h * s / multiple) * multiple),
        max(multiple, round(w * s / multiple) * multiple),
    )


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Anti-aliased bilinear resize of (B, C, H, W) (area-correct when shrinking)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    h, w = x.shape[-2:]
    if (x.device.type == "cpu" and x.dtype == torch.float32 and x.shape[0] * x.shape[1] == 1
            and h == 2 * size[0] and w == 2 * size[1] and min(size) >= 2):
        # an exact halving (a 4:2:0 chroma guide): the same filter, in OpenCV's kernels
        return torch.from_numpy(halve_cpu(x[0, 0].detach().numpy()))[None, None]
    shrink = size[0] < h or size[1] < w
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def frame_lightness(unit: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Lightness (B, 1, *size) of Y' (B, 1, H, W) in [0, 1]: resized (anti-aliased), then L by
    table (within 0.002 L units; the film's per-frame path, shared by its preview)."""
    return lab.grey_to_l_table(resize(unit, size))


def cpu_has_bf16() -> bool:
    """Whether this CPU runs bf16 natively (AVX-512 BF16 or AMX), where autocast pays."""
    try:
        return bool(torch.backends.mkldnn.is_available()) and bool(
            torch.ops.mkldnn._is_mkldnn_bf16_supported()
        )
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' -> 'bf16' on a GPU or a CPU with native bf16, else 'fp32'."""
    if precision not in PRECISIONS:
        raise UsageError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    return "bf16" if device.type == "cuda" or cpu_has_bf16() else "fp32"


@dataclass
class Colorizer:
    """A model on a device, run in batches at a working resolution: channels-last, and under
    bf16 autocast where the hardware has it (``precision`` 'fp32' turns that off)."""

    model: torch.nn.Module
    config: dict[str, Any]
    device: torch.device
    working_short_side: int
    precision: str = "fp32"
    """'fp32' or 'bf16' (resolved; see :func:`resolve_precision`)."""
    accelerated: Any = None
    """A compiled stand-in for the network at one input shape (``models.runtime``), used by
    :meth:`predict` where the shape fits; set for one film at a time."""
    own_fade: float | None = None
    """The model's own ``fade`` (what photos get; None: read from the model), restored by
    :meth:`use_fade` (False)."""
    cast: torch.nn.Module | None = None
    """The network with its convolution and linear weights stored in bf16, for bf16 on a CPU
    (built at the first such :meth:`predict`; the weights are fixed once loaded): the same
    arithmetic as autocasting the fp32 weights, which re-casts every weight on every call."""

    def __post_init__(self) -> None:
        if self.own_fade is None:
            self.own_fade = float(getattr(getattr(self.model, "cfg", None), "fade", 0.0))

    @classmethod
    def load(
        cls,
        model: str | Path = DEFAULT_MODEL,
        *,
        device: str = "auto",
        working_short_side: int = 224,
        overrides: dict[str, Any] | None = None,
        precision: str = "auto",
    ) -> Colorizer:
        """Load a shipped model by name or a checkpoint by path onto the device."""
        dev = pick_device(device)
        resolved = resolve_precision(precision, dev)
        net, cfg = load_model(model, device=dev, overrides=overrides)
        fold_batchnorm(net.eval())
        net = net.to(memory_format=torch.channels_last)
        return cls(net, cfg, dev, working_short_side, resolved)

    def can_fade(self) -> bool:
        """Whether the network has the two heads film fading needs (regression and bins)."""
        m = self.model
        return (hasattr(getattr(m, "cfg", None), "fade") and getattr(m, "bin_head", None)
                is not None and getattr(m, "reg_head", None) is not None)

    def use_fade(self, film: bool) -> None:
        """Film colour (``film``): the regression head faded where the bins are unsure (the
        model's ``film_fade``), so a wrong guess goes grey, not a patch; else its own colour."""
        if not self.can_fade():
            return
        film_fade = self.model.cfg.film_fade  # 0: this model's films are not faded
        want = film_fade if film and film_fade > 0 else self.own_fade
        if self.model.cfg.fade != want:
            self.model.cfg = replace(self.model.cfg, fade=want)
            self.accelerated = None  # converted with the other setting

    def autocast(self) -> torch.autocast:
        """The autocast context the model runs under (disabled for fp32)."""
        if self.device.type == "cuda":
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return torch.autocast("cuda", dtype=dtype, enabled=self.precision != "fp32")
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16")

    @property
    def name(self) -> str:
        """Architecture and training step, for logs."""
        return f"{self.config.get('arch')}@{self.config.get('step', '?')}"

    def size_for(self, h: int, w: int) -> tuple[int, int]:
        """Working (h, w) for a frame of (h, w)."""
        return working_size(h, w, self.working_short_side)

    @torch.inference_mode()
    def predict(self, L: torch.Tensor) -> torch.Tensor:
        """L (B, 1, h, w) in 0..100, h and w multiples of 32 -> ab (B, 2, h, w) float32."""
        if self.accelerated is not None and self.accelerated.accepts(L):
            return self.accelerated(L)
        L = L.to(self.device, non_blocking=True)
        net = self._bf16_net() if self.precision == "bf16" and self.device.type == "cpu" else None
        with self.autocast():
            ab = (net or self.model)(L.contiguous(memory_format=torch.channels_last))["ab"]
        return ab.float()

    def _bf16_net(self) -> torch.nn.Module:
        """:attr:`cast`, built on first use; it shares the model's settings (``cfg``)."""
        if self.cast is None:
            self.cast = copy.deepcopy(self.model)
            for m in self.cast.modules():
                if isinstance(m, torch.nn.Conv2d | torch.nn.Linear):
                    m.weight.data = m.weight.data.to(torch.bfloat16)
                    if m.bias is not None:
                        m.bias.data = m.bias.data.to(torch.bfloat16)
            if fusion_available():
                fuse_activations(self.cast)
        if hasattr(self.model, "cfg"):
            self.cast.cfg = self.model.cfg  # film fading and the like follow the model
        return self.cast


def unit_to_tensor(y_unit: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(H, W) float Y' in [0, 1] -> (1, 1, H, W) tensor."""
    t = torch.as_tensor(y_unit, dtype=torch.float32)
    return t[None, None]


def rotate(x: torch.Tensor, rotation: int, *, undo: bool = False) -> torch.Tensor:
    """Turn coded frames upright for the model (``rotation`` is counter-clockwise degrees)."""
    k = (rotation // 90) % 4
    if k == 0:
        return x
    return torch.rot90(x, -k if undo else k, dims=(-2, -1))


def chroma_from_lab(
    L_hi: torch.Tensor,
    ab_lo: torch.Tensor,
    L_lo: torch.Tensor,
    size: tuple[int, int],
    *,
    matrix: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Working-res ab -> Cb, Cr in [-0.5, 0.5] at ``size`` (the output's chroma resolution),
    upsampled guided by lightness at that size so colour stops at the original edges."""
    L_c = resize(L_hi, size)
    if L_c.shape[0] == 1 and all(t.device.type == "cpu" for t in (L_c, ab_lo, L_lo)):
        L_n = L_c[0, 0].float().numpy()
        ab_n = guided_upsample_cpu(ab_lo[0].float().numpy(), L_lo[0, 0].float().numpy(), L_n)
        cb, cr = lab.lab_to_cbcr_cpu(L_n, ab_n, matrix)
        return torch.from_numpy(cb)[None], torch.from_numpy(cr)[None]
    ab = guided_upsample(ab_lo, L_lo, L_c)
    rgb = lab.lab_to_rgb(torch.cat([L_c, ab], 1))
    ycc = lab.rgb_to_ycbcr(rgb, matrix)
    return ycc[:, 1], ycc[:, 2]


def chroma_guide(
    unit: torch.Tensor, size: tuple[int, int], *, interlaced: bool = False
) -> torch.Tensor | None:
    """The lightness (1, 1, *size) that guides a progressive frame's chroma, from its Y'
    (1, 1, H, W); None where :func:`frame_chroma` guides each field by its own lines."""
    if not interlaced or size[0] < 2 or unit.shape[-2] < 2:
        return frame_lightness(unit, size)
    return None


def frame_chroma(
    unit: torch.Tensor,
    ab_lo: torch.Tensor,
    L_lo: torch.Tensor,
    size: tuple[int, int],
    *,
    matrix: str,
    interlaced: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cb, Cr (1, *size) of one frame from its full-resolution Y' ``unit`` (1, 1, H, W).

    Interlaced: each field's chroma rows (every other row, as interlaced 4:2:0 lays them out)
    are upsampled guided by that field's own lines, so colour follows each field's edges and
    does not comb where the two fields differ (motion)."""
    guide = chroma_guide(unit, size, interlaced=interlaced)
    if guide is not None:
        return chroma_from_lab(guide, ab_lo, L_lo, size, matrix=matrix)

    cb = torch.empty(1, *size)
    cr = torch.empty(1, *size)
    for parity in (0, 1):
        rows = len(range(parity, size[0], 2))
        field = unit[..., parity::2, :]
        L_f = frame_lightness(field, (rows, size[1]))
        cb[:, parity::2], cr[:, parity::2] = chroma_from_lab(
            L_f, ab_lo, L_lo, (rows, size[1]), matrix=matrix)
    return cb, cr


GAMUT_STEPS = 10
"""Bisection steps of :func:`lab_to_rgb_keep_l` (chroma scale found to 1/1024)."""


def lab_to_rgb_keep_l(
    L: torch.Tensor, ab: torch.Tensor, *, steps: int = GAMUT_STEPS
) -> torch.Tensor:
    """Lab (B, 1, H, W) + (B, 2, H, W) -> sRGB in [0, 1] that keeps L.

    Clipping RGB channels of an out-of-gamut colour changes its lightness (saturated colours
    near black or white); here each such pixel's chroma is scaled down (bisection) until the
    colour fits the sRGB gamut, so only the chroma gives way.
    """
    L = L.clamp(0.0, lab.L_MAX)
    ab = ab.clamp(-lab.AB_RANGE, lab.AB_RANGE)
    rgb = kc.lab_to_rgb(torch.cat([L, ab], 1), clip=False)
    bad = ((rgb < 0.0) | (rgb > 1.0)).any(1)  # (B, H, W)
    if not bool(bad.any()):
        return rgb
    idx = bad.nonzero(as_tuple=True)
    L_o = L[:, 0][idx][None, None, None]  # (1, 1, 1, N)
    ab_o = ab.permute(0, 2, 3, 1)[idx].T[None, :, None]  # (1, 2, 1, N)
    lo = torch.zeros_like(L_o)
    hi = torch.ones_like(L_o)
    for _ in range(steps):
        mid = (lo + hi) / 2.0
        trial = kc.lab_to_rgb(torch.cat([L_o, ab_o * mid], 1), clip=False)
        fits = ((trial >= 0.0) & (trial <= 1.0)).all(1, keepdim=True)
        lo = torch.where(fits, mid, lo)
        hi = torch.where(fits, hi, mid)
    fixed = kc.lab_to_rgb(torch.cat([L_o, ab_o * lo], 1), clip=True)  # (1, 3, 1, N)
    rgb = rgb.permute(0, 2, 3, 1).clone()
    rgb[idx] = fixed[0, :, 0].T
    return rgb.permute(0, 3, 1, 2).clamp(0.0, 1.0)


def photo_ab(colorizer: Colorizer, L: torch.Tensor, *, saturation: float = 1.0) -> torch.Tensor:
    """ab (1, 2, H, W) of a still's L (1, 1, H, W): the model at the working size, chroma
    upsampled guided by the full L (the photo path, shared by ``eval-images``)."""
    L_lo = resize(L, colorizer.size_for(*L.shape[-2:]))
    ab_lo = colorizer.predict(L_lo).cpu() * saturation
    return guided_upsample(ab_lo, L_lo, L)


def colorize_rgb_array(
    colorizer: Colorizer, rgb: np.ndarray, *, saturation: float = 1.0
) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> uint8 RGB of the same size whose Lab L is the input's."""
    t = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0
    L = lab.rgb_to_l(t)
    out = lab_to_rgb_keep_l(L, photo_ab(colorizer, L, saturation=saturation))
    return (out[0].permute(1, 2, 0) * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).numpy()
