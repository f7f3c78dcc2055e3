"""Wallner's "beta" colorization network: a plain convolutional encoder-decoder, no skips."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vidcolor import lab


@dataclass(frozen=True)
class AutoencoderConfig:
    """Encoder widths; three stride-2 convolutions, mirrored by the decoder."""

    channels: tuple[int, ...] = (64, 128, 256)
    middle: int = 256


class AutoencoderColorizer(nn.Module):
    """L in [0, 100] -> {'ab', 'ab_reg'}; H, W divisible by 2**levels (8 by default)."""

    arch = "autoencoder"

    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        # Each level halves the resolution, so the stride follows the number of levels.
        self.stride = 2 ** len(cfg.channels)
        layers: list[nn.Module] = []
        cin = 1
        for ch in cfg.channels:
            layers += [nn.Conv2d(cin, ch, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
            layers += [nn.Conv2d(ch, ch, 3, padding=1), nn.ReLU(inplace=True)]
            cin = ch
        layers += [nn.Conv2d(cin, cfg.middle, 3, padding=1), nn.ReLU(inplace=True)]
        self.encoder = nn.Sequential(*layers)
        dec: list[nn.Module] = []
        cin = cfg.middle
        for ch in reversed(cfg.channels):
            dec += [nn.Conv2d(cin, ch, 3, padding=1), nn.ReLU(inplace=True)]
            dec += [nn.Upsample(scale_factor=2, mode="nearest")]
            cin = ch
        dec += [nn.Conv2d(cin, 32, 3, padding=1), nn.ReLU(inplace=True)]
        dec += [nn.Conv2d(32, 2, 3, padding=1)]
        self.decoder = nn.Sequential(*dec)

    def config(self) -> dict:
        """Plain config that rebuilds this network."""
        return asdict(self.cfg)

    def forward(self, L: torch.Tensor) -> dict[str, torch.Tensor]:
        H, W = L.shape[-2:]
        if H % self.stride or W % self.stride:
            raise ValueError(f"expected H and W divisible by {self.stride}, got {H}x{W}")
        ab_reg = torch.tanh(self.decoder(self.encoder(lab.normalize_l(L) - 0.5)))
        ab_reg = F.interpolate(ab_reg, size=(H, W), mode="bilinear", align_corners=False)
        return {"ab": lab.denormalize_ab(ab_reg), "ab_reg": ab_reg}


def autoencoder_colorizer(
    *, weights: dict[str, torch.Tensor] | None = None, **overrides
) -> AutoencoderColorizer:
    """Build the autoencoder baseline; ``overrides`` are AutoencoderConfig fields."""
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    model = AutoencoderColorizer(AutoencoderConfig(**overrides))
    if weights is not None:
        model.load_state_dict(weights, strict=True)
    return model


TINY_AUTOENCODER = {"channels": (8, 16, 16), "middle": 16}
