"""Pad images to a multiple of a size (replicate) and crop back, in one place."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vidcolor.errors import UsageError


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


class InputPadder:
    """Replicate-pads (B, C, h, w) tensors so h and w divide ``multiple`` (and reach ``min_size``).

    Padding is split evenly between the two sides (extra pixel right/bottom); ``unpad`` undoes it.
    """

    def __init__(self, size: tuple[int, int], *, multiple: int = 8, min_size: int = 0) -> None:
        if multiple < 1:
            raise UsageError(f"padding multiple must be >= 1, got {multiple}")
        h, w = size
        if h < 1 or w < 1:
            raise UsageError(f"expected a positive image size, got {h}x{w}")
        floor = _round_up(min_size, multiple)
        pad_h = max(_round_up(h, multiple), floor) - h
        pad_w = max(_round_up(w, multiple), floor) - w
        self.size = (h, w)
        self.multiple = multiple
        # F.pad order: (left, right, top, bottom)
        self.pads = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)

    @property
    def padded_size(self) -> tuple[int, int]:
        """(h, w) after padding."""
        left, right, top, bottom = self.pads
        return self.size[0] + top + bottom, self.size[1] + left + right

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """Replicate-pad a (B, C, h, w) tensor of the size given at construction."""
        if tuple(x.shape[-2:]) != self.size:
            h, w = self.size
            raise ValueError(f"expected a {h}x{w} tensor to pad, got {x.shape[-2]}x{x.shape[-1]}")
        if not any(self.pads):
            return x
        return F.pad(x, self.pads, mode="replicate")

    def unpad(self, x: torch.Tensor) -> torch.Tensor:
        """Crop a padded (..., H, W) tensor back to the original size."""
        left, _, top, _ = self.pads
        h, w = self.size
        return x[..., top : top + h, left : left + w]
