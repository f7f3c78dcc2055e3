"""Fusion colorizer: Lite0 encoder on L, U-Net decoder, the classifier embedding fused at the
bottleneck (Deep Koalarization), with a regression head, a quantised-bin head, or both."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vidcolor import lab
from vidcolor.models import bins as abbins
from vidcolor.models.lite0 import FEATURE_CHANNELS, HEAD_CHANNELS, Lite0, lite0

HEADS = ("regression", "bins", "both")


@dataclass(frozen=True)
class FusionConfig:
    """Shape-defining options of the fusion network (stored in every checkpoint)."""

    decoder_channels: tuple[int, ...] = (256, 128, 64, 48, 32)
    fusion_channels: int = 256
    head: str = "both"
    num_bins: int = 0
    """Number of ab bins; 0 means the in-gamut grid computed at build time."""
    temperature: float = abbins.DEFAULT_TEMPERATURE
    mix: float = 0.5
    """With head='both': weight of the bin head's annealed mean against the regression output."""
    mix_confidence: bool = True
    """Scale ``mix`` per pixel by the bin distribution's confidence (normalised 1 - entropy)."""
    saturation: float = 1.0
    """Multiplier on the final ab (a user-visible vividness knob, 1 = as trained)."""


def conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    """3x3 conv, batch norm, ReLU: the decoder's unit."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class UpBlock(nn.Module):
    """Upsample by 2, concatenate the skip, two conv units."""

    def __init__(self, cin: int, cskip: int, cout: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn_relu(cin + cskip, cout), conv_bn_relu(cout, cout))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.body(torch.cat([x, skip], 1))


class FusionDecoder(nn.Module):
    """Decoder from the stride-32 features (with the fused embedding) up to stride 2."""

    def __init__(self, cfg: FusionConfig, skip_channels: tuple[int, ...]) -> None:
        super().__init__()
        d = cfg.decoder_channels
        s2, s4, s8, s16, s32 = skip_channels
        self.fuse_embed = nn.Linear(HEAD_CHANNELS, cfg.fusion_channels)
        self.bottleneck = conv_bn_relu(s32 + cfg.fusion_channels, d[0])
        self.up16 = UpBlock(d[0], s16, d[1])
        self.up8 = UpBlock(d[1], s8, d[2])
        self.up4 = UpBlock(d[2], s4, d[3])
        self.up2 = UpBlock(d[3], s2, d[4])

    def forward(
        self, skips: list[torch.Tensor], emb: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the stride-4 and stride-2 feature maps."""
        s2, s4, s8, s16, s32 = skips
        e = F.relu(self.fuse_embed(emb))[:, :, None, None].expand(-1, -1, *s32.shape[-2:])
        x = self.bottleneck(torch.cat([s32, e], 1))
        x = self.up16(x, s16)
        x = self.up8(x, s8)
        x4 = self.up4(x, s4)
        return x4, self.up2(x4, s2)


class FusionColorizer(nn.Module):
    """L in [0, 100] (B, 1, H, W), H and W divisible by 32 -> dict with 'ab' in Lab units.

    Training outputs also hold 'ab_reg' (normalised regression) and 'logits' (stride-4 bins).
    """

    stride = 32
    arch = "fusion"

    def __init__(self, cfg: FusionConfig, *, encoder: Lite0 | None = None) -> None:
        super().__init__()
        if cfg.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {cfg.head!r}")
        self.cfg = cfg
        self.encoder = encoder if encoder is not None else lite0()
        self.decoder = FusionDecoder(cfg, FEATURE_CHANNELS)
        d = cfg.decoder_channels
        self.reg_head = nn.Conv2d(d[4], 2, 3, padding=1) if cfg.head != "bins" else None
        centers = abbins.in_gamut_bins() if cfg.num_bins == 0 else torch.zeros(cfg.num_bins, 2)
        if cfg.head != "regression":
            self.bin_head = nn.Conv2d(d[3], len(centers), 1)
            self.register_buffer("bin_centers", centers)
            self.register_buffer("bin_weights", torch.ones(len(centers)))
        else:
            self.bin_head = None

    def config(self) -> dict:
        """Plain, JSON-able config that rebuilds this network."""
        cfg = asdict(self.cfg)
        if self.bin_head is not None:
            cfg["num_bins"] = int(self.bin_centers.shape[0])
        return cfg

    def encode(self, L: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Run the (ImageNet) encoder on L shown as a grey sRGB picture."""
        grey = lab.l_to_grey(L).expand(-1, 3, -1, -1)
        return self.encoder.features(self.encoder.prepare(grey))

    def forward(self, L: torch.Tensor) -> dict[str, torch.Tensor]:
        H, W = L.shape[-2:]
        if H % self.stride or W % self.stride:
            raise ValueError(f"expected H and W divisible by {self.stride}, got {H}x{W}")
        skips, emb = self.encode(L)
        x4, x2 = self.decoder(skips, emb)
        out: dict[str, torch.Tensor] = {"embedding": emb}
        ab = None
        if self.reg_head is not None:
            ab_reg = torch.tanh(self.reg_head(x2))
            out["ab_reg"] = ab_reg
            ab = lab.denormalize_ab(ab_reg)
        if self.bin_head is not None:
            logits = self.bin_head(x4)
            out["logits"] = logits
            ab_bins = abbins.annealed_mean(logits, self.bin_centers, self.cfg.temperature)
            ab_bins = F.interpolate(ab_bins, size=x2.shape[-2:], mode="bilinear", align_corners=False)
            if ab is None:
                ab = ab_bins
            else:
                w = torch.full_like(ab[:, :1], self.cfg.mix)
                if self.cfg.mix_confidence:
                    conf = abbins.confidence(logits)
                    conf = F.interpolate(conf, size=x2.shape[-2:], mode="bilinear")
                    w = (w * 2.0 * conf).clamp(0.0, 1.0)
                ab = w * ab_bins + (1.0 - w) * ab
        assert ab is not None
        ab = F.interpolate(ab, size=(H, W), mode="bilinear", align_corners=False)
        out["ab"] = ab * self.cfg.saturation
        return out


def fusion_colorizer(
    *, weights: dict[str, torch.Tensor] | None = None, pretrained_encoder: bool = False, **overrides
) -> FusionColorizer:
    """Build the fusion colorizer; ``overrides`` are FusionConfig fields (lists become tuples)."""
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    cfg = FusionConfig(**overrides)
    model = FusionColorizer(cfg, encoder=lite0(pretrained=pretrained_encoder))
    if weights is not None:
        model.load_state_dict(weights, strict=True)
    return model


TINY_FUSION = {"decoder_channels": (16, 16, 16, 8, 8), "fusion_channels": 8}
"""A tiny decoder for tests (the encoder is always Lite0)."""
