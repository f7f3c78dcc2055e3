"""CIE Lab constants and conversions, in one place (kornia, so they run on any device).

Conventions used everywhere in vidcolor:
- RGB tensors are sRGB in [0, 1], shape (B, 3, H, W).
- L is in [0, 100]; a and b are in Lab units (roughly [-110, 110]).
- Networks see ``L / L_SCALE`` and predict ``ab / AB_SCALE`` (see the normalise helpers).
"""

from __future__ import annotations

import functools

import cv2
import kornia.color as kc
import numpy as np
import torch

L_MAX = 100.0
L_SCALE = 100.0
"""Networks take L / L_SCALE in [0, 1]."""
AB_SCALE = 110.0
"""Networks predict ab / AB_SCALE, roughly in [-1, 1]."""
AB_RANGE = 110.0
"""Limit applied to predicted ab before conversion back to RGB."""

# ITU-R luma coefficients (Kr, Kb) for the YCbCr matrices of video.
LUMA_COEFFS = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722), "bt2020": (0.2627, 0.0593)}


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] (B, 3, H, W) to Lab (L in [0, 100])."""
    return kc.rgb_to_lab(rgb.clamp(0.0, 1.0))


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """Lab to sRGB in [0, 1], gamut-safe: ab limited to AB_RANGE, L to [0, 100], RGB clipped."""
    L = lab[:, :1].clamp(0.0, L_MAX)
    ab = lab[:, 1:].clamp(-AB_RANGE, AB_RANGE)
    return kc.lab_to_rgb(torch.cat([L, ab], dim=1), clip=True)


def rgb_to_l(rgb: torch.Tensor) -> torch.Tensor:
    """Lightness only (B, 1, H, W) of sRGB input."""
    return rgb_to_lab(rgb)[:, :1]


def _above(
    x: torch.Tensor, threshold: float, high: torch.Tensor, low: torch.Tensor
) -> torch.Tensor:
    """``torch.where(x > threshold, high, low)`` (both finite) by arithmetic, exactly: on a
    CPU, torch's bool tensors make ``where`` several times slower than a multiply."""
    m = (x - threshold).sign_().clamp_(min=0.0)
    return high * m + low * (1.0 - m)


def grey_to_l(grey: torch.Tensor) -> torch.Tensor:
    """Lightness of a grey sRGB level in [0, 1] (any shape): the L of RGB = (v, v, v)."""
    v = grey.clamp(0.0, 1.0)
    lin = _above(v, 0.04045, ((v + 0.055) / 1.055) ** 2.4, v / 12.92)
    f = _above(lin, 0.008856, lin.clamp_min(1e-12) ** (1.0 / 3.0), 7.787 * lin + 16.0 / 116.0)
    return 116.0 * f - 16.0


GREY_TABLE_LEVELS = 1 << 16
"""Levels of :func:`grey_to_l_table` (grey quantised to 1/65535: within 0.002 L units)."""


@functools.lru_cache(maxsize=1)
def _grey_l_table() -> np.ndarray:
    levels = torch.linspace(0.0, 1.0, GREY_TABLE_LEVELS, dtype=torch.float64)
    table = grey_to_l(levels).float().numpy()
    table.flags.writeable = False
    return table


def grey_to_l_table(grey: torch.Tensor) -> torch.Tensor:
    """:func:`grey_to_l` of a CPU tensor by table, within 0.002 L units: one look-up a pixel in
    place of two powers (the film's per-frame path). Other devices: the arithmetic."""
    if grey.device.type != "cpu":
        return grey_to_l(grey)
    v = grey.detach().float().numpy()
    codes = (np.clip(v, 0.0, 1.0) * np.float32(GREY_TABLE_LEVELS - 1) + np.float32(0.5))
    return torch.from_numpy(np.take(_grey_l_table(), codes.astype(np.uint16)))


def l_to_grey(L: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`grey_to_l`: the sRGB level in [0, 1] whose lightness is L."""
    fy = (L.clamp(0.0, L_MAX) + 16.0) / 116.0
    lin = _above(fy, 0.2068966, fy**3, (fy - 16.0 / 116.0) / 7.787)
    gamma = 1.055 * lin.clamp_min(1e-12) ** (1.0 / 2.4) - 0.055
    v = _above(lin, 0.0031308, gamma, 12.92 * lin)
    return v.clamp(0.0, 1.0)


def normalize_l(L: torch.Tensor) -> torch.Tensor:
    """L in [0, 100] to the network input range [0, 1]."""
    return L / L_SCALE


def normalize_ab(ab: torch.Tensor) -> torch.Tensor:
    """ab in Lab units to the network target range (about [-1, 1])."""
    return ab / AB_SCALE


def denormalize_ab(ab_n: torch.Tensor) -> torch.Tensor:
    """Network ab output back to Lab units."""
    return ab_n * AB_SCALE


def rgb_to_ycbcr(rgb: torch.Tensor, matrix: str = "bt601") -> torch.Tensor:
    """Gamma-encoded RGB in [0, 1] to full-range Y in [0, 1] and Cb, Cr in [-0.5, 0.5]."""
    kr, kb = LUMA_COEFFS[matrix]
    kg = 1.0 - kr - kb
    r, g, b = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
    y = kr * r + kg * g + kb * b
    cb = (b - y) / (2.0 * (1.0 - kb))
    cr = (r - y) / (2.0 * (1.0 - kr))
    return torch.cat([y, cb, cr], dim=1)


def lab_to_cbcr_cpu(
    L: np.ndarray, ab: np.ndarray, matrix: str = "bt601"
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`lab_to_rgb` then the Cb, Cr of :func:`rgb_to_ycbcr`, for one frame in OpenCV:
    L (H, W) and ab (2, H, W) float32 -> Cb, Cr (H, W) in [-0.5, 0.5] (the film's CPU path)."""
    L = np.clip(L, 0.0, L_MAX).astype(np.float32, copy=False)
    a, b = np.clip(ab, -AB_RANGE, AB_RANGE).astype(np.float32, copy=False)
    b = np.minimum(b, 200.0 * (L + 16.0) / 116.0)  # fz >= 0, as kornia clamps it
    rgb = cv2.cvtColor(cv2.merge([L, a, b]), cv2.COLOR_Lab2RGB)
    np.clip(rgb, 0.0, 1.0, out=rgb)
    # one pass, then planes; numpy's matmul is faster alone, but OpenBLAS's threads then spin
    # beside the film's workers (the default preset's CPU time per frame rose by half)
    cb, cr = cv2.split(cv2.transform(rgb, _cbcr_matrix(matrix)))
    return cb, cr


@functools.lru_cache(maxsize=4)
def _cbcr_matrix(matrix: str) -> np.ndarray:
    """Rows giving Cb and Cr from gamma-encoded RGB, as :func:`rgb_to_ycbcr` computes them."""
    kr, kb = LUMA_COEFFS[matrix]
    kg = 1.0 - kr - kb
    cb = [-kr / (2.0 * (1.0 - kb)), -kg / (2.0 * (1.0 - kb)), 0.5]
    cr = [0.5, -kg / (2.0 * (1.0 - kr)), -kb / (2.0 * (1.0 - kr))]
    return np.array([cb, cr], np.float32)


def ycbcr_to_rgb(ycc: torch.Tensor, matrix: str = "bt601") -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr` (full range), clipped to [0, 1]."""
    kr, kb = LUMA_COEFFS[matrix]
    kg = 1.0 - kr - kb
    y, cb, cr = ycc[:, 0:1], ycc[:, 1:2], ycc[:, 2:3]
    r = y + 2.0 * (1.0 - kr) * cr
    b = y + 2.0 * (1.0 - kb) * cb
    g = (y - kr * r - kb * b) / kg
    return torch.cat([r, g, b], dim=1).clamp(0.0, 1.0)


def colorfulness(rgb: torch.Tensor) -> torch.Tensor:
    """Hasler & Suesstrunk (2003) colorfulness per image, on the 0-255 scale; (B,) tensor."""
    x = rgb.clamp(0.0, 1.0) * 255.0
    rg = x[:, 0] - x[:, 1]
    yb = 0.5 * (x[:, 0] + x[:, 1]) - x[:, 2]
    std = torch.sqrt(rg.flatten(1).var(1, unbiased=False) + yb.flatten(1).var(1, unbiased=False))
    mean = torch.sqrt(rg.flatten(1).mean(1) ** 2 + yb.flatten(1).mean(1) ** 2)
    return std + 0.3 * mean
