"""ChromaGAN (Vitoria et al. 2020) on our fusion generator: a class-distribution head trained
with KL against a frozen Lite0 teacher on the colour image, and a PatchGAN critic on (L, ab)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vidcolor import lab
from vidcolor.models.fusion import FusionColorizer, FusionConfig
from vidcolor.models.lite0 import HEAD_CHANNELS, NUM_CLASSES, lite0


class ChromaGANColorizer(FusionColorizer):
    """Fusion generator plus a class head on the fused embedding; outputs add 'class_logits'."""

    arch = "chromagan"

    def __init__(self, cfg: FusionConfig, *, pretrained_encoder: bool = False) -> None:
        super().__init__(cfg, encoder=lite0(pretrained=pretrained_encoder))
        self.class_head = nn.Sequential(
            nn.Linear(HEAD_CHANNELS, 512), nn.ReLU(inplace=True), nn.Linear(512, NUM_CLASSES)
        )

    def forward(self, L: torch.Tensor) -> dict[str, torch.Tensor]:
        out = super().forward(L)
        out["class_logits"] = self.class_head(out["embedding"])
        return out


class PatchCritic(nn.Module):
    """PatchGAN critic on (L, ab): a map of realness scores, no batch norm (WGAN-GP)."""

    def __init__(self, channels: tuple[int, ...] = (64, 128, 256, 256)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for i, ch in enumerate(channels):
            stride = 2 if i < len(channels) - 1 else 1
            layers += [nn.Conv2d(cin, ch, 4, stride=stride, padding=1), nn.LeakyReLU(0.2, True)]
            cin = ch
        layers.append(nn.Conv2d(cin, 1, 4, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        x = torch.cat([lab.normalize_l(L) - 0.5, lab.normalize_ab(ab)], 1)
        return self.net(x)


def gradient_penalty(
    critic: PatchCritic,
    L: torch.Tensor,
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP: (||grad critic(x_hat)|| - 1)^2 on random interpolates of real and fake ab.

    ``generator`` (on ``real``'s device) makes the interpolation weights reproducible.
    """
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, generator=generator)
    x = (eps * real + (1 - eps) * fake).requires_grad_(True)
    score = critic(L, x)
    (grad,) = torch.autograd.grad(score.sum(), x, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


def class_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) of the ImageNet class distributions, batch mean."""
    return F.kl_div(
        F.log_softmax(student_logits, 1), F.log_softmax(teacher_logits, 1), log_target=True,
        reduction="batchmean",
    )


def chromagan_colorizer(
    *, weights: dict[str, torch.Tensor] | None = None, pretrained_encoder: bool = False, **overrides
) -> ChromaGANColorizer:
    """Build the ChromaGAN generator; ``overrides`` are FusionConfig fields (unknown ones raise)."""
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    model = ChromaGANColorizer(FusionConfig(**overrides), pretrained_encoder=pretrained_encoder)
    if weights is not None:
        model.load_state_dict(weights, strict=True)
    return model
