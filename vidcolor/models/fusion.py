"""Fusion colorizer: Lite0 encoder on L, U-Net decoder, the classifier embedding fused at the
bottleneck (Deep Koalarization), with a regression head, a quantised-bin head, or both."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from vidcolor import lab
from vidcolor.models import bins as abbins
from vidcolor.models.lite0 import FEATURE_CHANNELS, HEAD_CHANNELS, Lite0, lite0

HEADS = ("regression", "bins", "both")
FADE_GAIN_MAX = 1.5
"""The most :attr:`FusionConfig.fade` strengthens colour the bins are sure of."""
CONFIDENCES = ("entropy", "spread")


@dataclass(frozen=True)
class FusionConfig:
    """Shape-defining options of the fusion network (stored in every checkpoint)."""

    decoder_channels: tuple[int, ...] = (192, 96, 64, 32)
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
    confidence: str = "entropy"
    """What ``mix_confidence`` measures: 'entropy' (1 - normalised entropy of the bins) or
    'spread' (1 - the posterior's ab standard deviation / ``spread_ref``: low where the bins
    are split between distant colours, the cause of blotches)."""
    spread_ref: float = 30.0
    """With confidence='spread': posterior ab standard deviation at which confidence is 0."""
    smooth: int = 0
    """Radius in stride-4 cells over which the bin logits are averaged before decoding
    (0: none), so that neighbouring pixels agree on one colour."""
    damp: float = 0.0
    """Quiet where unsure: the mixed ab is scaled by 1 - damp x (1 - confidence), so colour
    the network is unsure of fades toward grey instead of becoming a wrong patch (0: off)."""
    fade: float = 0.0
    """Film colour (0: off): the regression head's ab times (confidence / fade) ** fade_power,
    at most ``FADE_GAIN_MAX``, confidence always by entropy (the measure it was tuned on): kept
    where the bins' confidence is ``fade``, toward grey below."""
    fade_power: float = 1.2
    """How fast colour fades below ``fade`` (1: in proportion to the confidence)."""
    fade_cast: float = 1.0
    """With ``fade``: the share of the frame's mean ab (a guessed colour cast over the whole
    picture, wrong on every pixel when wrong) kept by the pixels that carry it (1: all;
    :func:`remove_cast`)."""
    film_fade: float = 0.0
    """The ``fade`` films get (``Colorizer.use_fade``), chosen per model because it depends on
    how its heads were trained (0: films get a photo's colour)."""


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
    """Decoder from the stride-32 features (with the fused embedding) up to stride 4 or 2.

    ``decoder_channels`` has one width for the bottleneck and one per upsampling level
    (strides 16, 8, 4 and optionally 2): four widths end at stride 4, five at stride 2.
    """

    def __init__(self, cfg: FusionConfig, skip_channels: tuple[int, ...]) -> None:
        super().__init__()
        d = cfg.decoder_channels
        if len(d) not in (4, 5):
            raise ValueError(f"decoder_channels needs 4 or 5 widths, got {len(d)}: {d}")
        s2, s4, s8, s16, s32 = skip_channels
        self.fuse_embed = nn.Linear(HEAD_CHANNELS, cfg.fusion_channels)
        self.bottleneck = conv_bn_relu(s32 + cfg.fusion_channels, d[0])
        skips = (s16, s8, s4, s2)
        self.ups = nn.ModuleList(
            UpBlock(d[i], skips[i], d[i + 1]) for i in range(len(d) - 1)
        )

    def forward(
        self,
        skips: list[torch.Tensor],
        emb: torch.Tensor,
        extra: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the stride-4 feature map and the last (stride-4 or stride-2) one.

        ``extra`` (guided variants): one tensor per upsampling level, added to its output."""
        s2, s4, s8, s16, s32 = skips
        e = F.relu(self.fuse_embed(emb))[:, :, None, None].expand(-1, -1, *s32.shape[-2:])
        x = self.bottleneck(torch.cat([s32, e], 1))
        x4 = x
        for i, (up, skip) in enumerate(zip(self.ups, (s16, s8, s4, s2), strict=False)):
            x = up(x, skip)
            if extra is not None:
                x = x + extra[i]
            if skip is s4:
                x4 = x
        return x4, x


LEGACY_DECODER_KEYS = {
    "decoder.up16.": "decoder.ups.0.",
    "decoder.up8.": "decoder.ups.1.",
    "decoder.up4.": "decoder.ups.2.",
    "decoder.up2.": "decoder.ups.3.",
}
"""Decoder weight names of checkpoints written before the decoder became a list of levels."""


def upgrade_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename legacy decoder keys (``decoder.up16.*`` ...) so older checkpoints still load."""
    out = {}
    for k, v in state.items():
        for old, new in LEGACY_DECODER_KEYS.items():
            if k.startswith(old):
                k = new + k[len(old) :]
                break
        out[k] = v
    return out


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
        if cfg.confidence not in CONFIDENCES:
            raise ValueError(f"confidence must be one of {CONFIDENCES}, got {cfg.confidence!r}")
        self.cfg = cfg
        self.encoder = encoder if encoder is not None else lite0()
        # The bin head reads stride 4: a bins-only net builds no (unused) stride-2 level.
        d = cfg.decoder_channels[:4] if cfg.head == "bins" else cfg.decoder_channels
        self.decoder = FusionDecoder(replace(cfg, decoder_channels=d), FEATURE_CHANNELS)
        d = cfg.decoder_channels
        self.reg_head = nn.Conv2d(d[-1], 2, 3, padding=1) if cfg.head != "bins" else None
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
        return self.heads(x4, x2, emb, (H, W))

    def heads(
        self, x4: torch.Tensor, x2: torch.Tensor, emb: torch.Tensor, size: tuple[int, int]
    ) -> dict[str, torch.Tensor]:
        """Regression and/or bin heads on the decoder's features -> outputs at ``size``."""
        out: dict[str, torch.Tensor] = {"embedding": emb}
        if self.reg_head is not None:
            out["ab_reg"] = torch.tanh(self.reg_head(x2))
        if self.bin_head is not None:
            out["logits"] = self.bin_head(x4)
        centers = self.bin_centers if self.bin_head is not None else None
        ab = mix_heads(out.get("ab_reg"), out.get("logits"), centers, self.cfg, x2.shape[-2:])
        # planar: torch's channels-last resize is the slow path for two channels
        ab = F.interpolate(ab.contiguous(), size=size, mode="bilinear", align_corners=False)
        out["ab"] = ab * self.cfg.saturation
        return out


def mix_heads(
    ab_reg: torch.Tensor | None,
    logits: torch.Tensor | None,
    centers: torch.Tensor | None,
    cfg: FusionConfig,
    size: tuple[int, int],
) -> torch.Tensor:
    """ab (B, 2, *size) in Lab units from the heads' raw outputs (normalised regression at
    ``size``, stride-4 bin logits), mixed as ``cfg`` says; apart so tuning can reuse outputs."""
    ab = lab.denormalize_ab(ab_reg) if ab_reg is not None else None
    if logits is None or centers is None:
        assert ab is not None
        return ab
    if cfg.smooth > 0:
        k = 2 * cfg.smooth + 1
        logits = F.avg_pool2d(logits, k, stride=1, padding=cfg.smooth, count_include_pad=False)
    if cfg.fade > 0 and ab is not None:  # the regression head, faded by the bins' doubt
        conf = F.interpolate(abbins.confidence(logits), size=size, mode="bilinear",
                             align_corners=False)
        ab = ab * ((conf / cfg.fade) ** cfg.fade_power).clamp(max=FADE_GAIN_MAX)
        return remove_cast(ab, 1.0 - cfg.fade_cast) if cfg.fade_cast < 1.0 else ab
    ab_bins = abbins.annealed_mean(logits, centers, cfg.temperature)
    ab_bins = F.interpolate(ab_bins, size=size, mode="bilinear", align_corners=False)
    if ab is None:
        return ab_bins
    w = torch.full_like(ab[:, :1], cfg.mix)
    conf = None
    if cfg.mix_confidence or cfg.damp > 0:
        if cfg.confidence == "spread":
            conf = (1.0 - abbins.spread(logits, centers) / cfg.spread_ref).clamp(0.0, 1.0)
        else:
            conf = abbins.confidence(logits)
        conf = F.interpolate(conf, size=size, mode="bilinear", align_corners=False)
    if cfg.mix_confidence:
        w = (w * 2.0 * conf).clamp(0.0, 1.0)
    ab = w * ab_bins + (1.0 - w) * ab
    if cfg.damp > 0:
        ab = ab * (1.0 - cfg.damp * (1.0 - conf))
    return ab


def remove_cast(ab: torch.Tensor, share: float) -> torch.Tensor:
    """Take ``share`` of each frame's mean ab (its colour cast) off the pixels that carry it:
    their component along the cast, at most the cast's size, so that neutral and opposite
    colours keep theirs and a white dog on green grass does not turn pink."""
    cast = ab.mean((-2, -1), keepdim=True)
    size = cast.norm(dim=1, keepdim=True)
    unit = cast / size.clamp_min(1e-6)
    along = (ab * unit).sum(1, keepdim=True).clamp_min(0.0).minimum(size)
    return ab - share * along * unit


def build_on_lite0(
    model_cls: type, config_cls: type, *, weights: dict[str, torch.Tensor] | None,
    pretrained_encoder: bool, overrides: dict,
):
    """A fusion-family network: config from ``overrides`` (lists become tuples), a Lite0
    encoder, and strictly loaded ``weights`` if given."""
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    model = model_cls(config_cls(**overrides), encoder=lite0(pretrained=pretrained_encoder))
    if weights is not None:
        model.load_state_dict(weights, strict=True)
    return model


def fusion_colorizer(
    *, weights: dict[str, torch.Tensor] | None = None, pretrained_encoder: bool = False, **overrides
) -> FusionColorizer:
    """Build the fusion colorizer; ``overrides`` are FusionConfig fields (lists become tuples)."""
    return build_on_lite0(FusionColorizer, FusionConfig, weights=weights,
                          pretrained_encoder=pretrained_encoder, overrides=overrides)


TINY_FUSION = {"decoder_channels": (16, 16, 16, 8, 8), "fusion_channels": 8}
"""A tiny decoder for tests (the encoder is always Lite0)."""
