"""Convolution and activation in one oneDNN call, for CPU inference: a separate ReLU6 is one
more pass over each expanded map, and TensorFlow 'SAME' padding copies the map; fused, the same
numbers (clamping commutes with bf16 rounding) without either."""

from __future__ import annotations

import torch
from torch import nn

from vidcolor.models.lite0 import Lite0, MBConv, SameConv2d

ACTIVATIONS: dict[type, tuple[str, list[float]]] = {
    nn.ReLU: ("relu", []),
    nn.ReLU6: ("hardtanh", [0.0, 6.0]),
}
"""Activation modules oneDNN applies as the convolution's post-op: (its name, its scalars)."""

PAIRS: dict[type, tuple[tuple[str, str, str], ...]] = {
    Lite0: (("_conv_stem", "_bn0", "_act_stem"), ("_conv_head", "_bn1", "_act_head")),
    MBConv: (("_expand_conv", "_bn0", "_act0"), ("_depthwise_conv", "_bn1", "_act1")),
}
"""(conv, folded batch norm, activation) attributes of modules whose forward calls
act(bn(conv(x)))."""


def fusion_available() -> bool:
    """Whether this torch has oneDNN's fused convolution (x86 and most ARM CPU builds)."""
    return bool(torch.backends.mkldnn.is_available()) and hasattr(
        torch.ops.mkldnn, "_convolution_pointwise")


class FusedConv2d(nn.Module):
    """A convolution followed by its activation in one call. A stride-2 'SAME' convolution
    of an even-sized map (all of them at the working sizes) runs as the kernel with a zero
    row and column in front and symmetric padding: the same sums, with no padded copy."""

    def __init__(self, conv: nn.Conv2d, act: nn.Module) -> None:
        super().__init__()
        if isinstance(conv.padding, str):
            raise ValueError(f"cannot fuse a convolution with padding={conv.padding!r}")
        self.attr, self.scalars = ACTIVATIONS[type(act)]
        self.weight = conv.weight.detach()
        self.bias = None if conv.bias is None else conv.bias.detach()
        self.stride, self.dilation = list(conv.stride), list(conv.dilation)
        self.groups = conv.groups
        kh, kw = self.weight.shape[-2:]
        same = isinstance(conv, SameConv2d)
        self.same = same and not (self.stride == [1, 1] and kh % 2 and kw % 2)
        self.padding = [kh // 2, kw // 2] if same else list(conv.padding)
        self.shifted = None
        if self.same and self.stride == [2, 2] and kh % 2 and kw % 2 and conv.dilation == (1, 1):
            shifted = nn.functional.pad(self.weight, [1, 0, 1, 0])
            cl = self.weight.is_contiguous(memory_format=torch.channels_last)
            self.shifted = shifted.contiguous(memory_format=torch.channels_last) if cl else shifted
        self.conv = conv  # 'SAME' on odd-sized maps: its own padding, then the fused call

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, padding = self.weight, self.padding
        if x.dtype != weight.dtype:  # as autocast would cast it (the op is not on its lists)
            x = x.to(weight.dtype)
        if self.same:
            if self.shifted is not None and x.shape[-2] % 2 == 0 and x.shape[-1] % 2 == 0:
                weight = self.shifted
            else:
                x, padding = self.conv.pad_same(x), [0, 0]
        return torch.ops.mkldnn._convolution_pointwise(
            x, weight, self.bias, padding, self.stride, self.dilation, self.groups,
            self.attr, self.scalars, "")


def fuse_activations(model: nn.Module) -> int:
    """Give every convolution followed (after a folded batch norm) by a ReLU or ReLU6 its
    activation, in place: the pairs above, and Conv2d [Identity] ReLU inside an nn.Sequential.
    For inference after :func:`~vidcolor.models.fold.fold_batchnorm`; returns how many."""
    if model.training:
        raise ValueError("fuse_activations is for inference: call model.eval() first")
    fused = 0
    for module in list(model.modules()):
        for conv_name, bn_name, act_name in PAIRS.get(type(module), ()):
            conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
            act = getattr(module, act_name, None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.Identity) and type(
                    act) in ACTIVATIONS:
                setattr(module, conv_name, FusedConv2d(conv, act))
                setattr(module, act_name, nn.Identity())
                fused += 1
        if isinstance(module, nn.Sequential):
            names = list(module._modules)
            for i, name in enumerate(names):
                conv = module._modules[name]
                if not isinstance(conv, nn.Conv2d) or isinstance(conv.padding, str):
                    continue
                j = i + 1
                while j < len(names) and isinstance(module._modules[names[j]], nn.Identity):
                    j += 1
                if j < len(names) and type(module._modules[names[j]]) in ACTIVATIONS:
                    module._modules[name] = FusedConv2d(conv, module._modules[names[j]])
                    module._modules[names[j]] = nn.Identity()
                    fused += 1
    return fused
