"""Archive-degradation augmentation for the network's grey input only: grain, blur, JPEG
blocking, contrast/gamma/flicker, dust and scratches, so clean photos teach old-film robustness."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class DegradeOptions:
    """Probability of each degradation and its strength range."""

    p_grain: float = 0.35
    grain_sigma: tuple[float, float] = (2.0, 12.0)
    p_blur: float = 0.3
    blur_sigma: tuple[float, float] = (0.4, 1.6)
    p_jpeg: float = 0.25
    jpeg_quality: tuple[int, int] = (15, 60)
    p_tone: float = 0.5
    contrast: tuple[float, float] = (0.7, 1.2)
    gamma: tuple[float, float] = (0.75, 1.35)
    flicker: tuple[float, float] = (-18.0, 18.0)
    p_dust: float = 0.25
    p_scratch: float = 0.2


NO_DEGRADATION = DegradeOptions(
    p_grain=0.0, p_blur=0.0, p_jpeg=0.0, p_tone=0.0, p_dust=0.0, p_scratch=0.0
)


def degrade_grey(grey: np.ndarray, rng: np.random.Generator, opt: DegradeOptions) -> np.ndarray:
    """Degrade a grey uint8 image (H, W) the way old film and telecine copies are degraded."""
    g = grey.astype(np.float32)
    h, w = g.shape
    if rng.random() < opt.p_blur:
        g = cv2.GaussianBlur(g, (0, 0), float(rng.uniform(*opt.blur_sigma)))
    if rng.random() < opt.p_tone:
        mean = float(g.mean())
        g = (g - mean) * rng.uniform(*opt.contrast) + mean + rng.uniform(*opt.flicker)
        g = 255.0 * (np.clip(g, 0, 255) / 255.0) ** rng.uniform(*opt.gamma)
    if rng.random() < opt.p_grain:
        sigma = rng.uniform(*opt.grain_sigma)
        noise = rng.normal(0.0, sigma, (h, w)).astype(np.float32)
        if rng.random() < 0.5:  # clumped film grain rather than sensor noise
            noise = cv2.GaussianBlur(noise, (0, 0), 0.7) * 1.8
        g = g + noise
    if rng.random() < opt.p_dust:
        for _ in range(int(rng.integers(1, 12))):
            y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
            r = int(rng.integers(1, 4))
            cv2.circle(g, (x, y), r, float(rng.choice([10.0, 245.0])), -1)
    if rng.random() < opt.p_scratch:
        for _ in range(int(rng.integers(1, 4))):
            x = int(rng.integers(0, w))
            val = float(rng.choice([20.0, 235.0]))
            cv2.line(g, (x, 0), (x + int(rng.integers(-3, 4)), h - 1), val, 1)
    out = np.clip(g, 0, 255).astype(np.uint8)
    if rng.random() < opt.p_jpeg:
        q = int(rng.integers(*opt.jpeg_quality))
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    return out
