"""Hard-cut detection: lightness-histogram distance between consecutive frames, or flow failure.

At a cut the stabiliser resets, so no colour is carried from one shot into the next.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from vidcolor.errors import UsageError
from vidcolor.lab import L_MAX
from vidcolor.temporal.api import DEFAULT_CUT_THRESHOLD

HIST_BINS = 64
MAX_UNEXPLAINED_FRACTION = 0.35
"""A frame is a cut when more of its pixels than this both fail the flow's forward-backward test
and stay off in lightness after warping: the previous frame cannot explain it. (Requiring both
keeps flat, textureless shots, where flow is ambiguous but harmless, from counting as cuts.)"""


_BELOW_MAX = np.float32(L_MAX) - np.float32(1e-4)
"""Where L = 100 goes for OpenCV, whose top bin, unlike ``histc``'s, leaves out its upper edge."""


def l_histogram(L: torch.Tensor, *, bins: int = HIST_BINS) -> torch.Tensor:
    """Normalised histogram (bins,) of a lightness tensor of any shape in [0, 100] (values
    outside are left out); on a CPU by OpenCV's histogram: the same counts as ``histc`` where
    the bin width is exact in float32, as for the 64 bins used."""
    x = L.detach().float()
    if x.device.type != "cpu" or x.numel() == 0:
        hist = torch.histc(x.flatten(), bins=bins, min=0.0, max=L_MAX)
    else:
        flat = x.reshape(1, -1).numpy()
        counts = cv2.calcHist([cv2.min(flat, float(_BELOW_MAX))], [0], None, [bins],
                              [0.0, L_MAX]).reshape(bins)
        if flat.max() > L_MAX:  # those went into the top bin with L = 100: take them out
            counts[-1] -= np.count_nonzero(flat > L_MAX)
        hist = torch.from_numpy(counts)
    return hist / hist.sum().clamp_min(1.0)


def chi_square_distance(p: torch.Tensor, q: torch.Tensor) -> float:
    """Symmetric chi-square distance 0.5 * sum((p - q)^2 / (p + q)) of two normalised histograms.

    In [0, 1]: 0 for equal histograms, 1 for histograms with no bin in common.
    """
    den = p + q
    terms = torch.where(den > 0, (p - q).square() / den.clamp_min(1e-12), torch.zeros_like(den))
    return float(0.5 * terms.sum())


class CutDetector:
    """Stateful detector fed one lightness frame at a time; ``update`` says if it starts a shot."""

    def __init__(self, *, threshold: float = DEFAULT_CUT_THRESHOLD) -> None:
        if not 0.0 < threshold <= 1.0:
            raise UsageError(f"cut threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        self._prev_hist: torch.Tensor | None = None
        self.last_distance = 0.0

    def update(self, L: torch.Tensor) -> bool:
        """True when ``L`` differs from the previous frame by more than the threshold."""
        hist = l_histogram(L)
        prev, self._prev_hist = self._prev_hist, hist
        if prev is None:
            self.last_distance = 0.0
            return False
        self.last_distance = chi_square_distance(prev, hist)
        return self.last_distance > self.threshold

    def reset(self) -> None:
        """Forget the previous frame (start of a new film)."""
        self._prev_hist = None
