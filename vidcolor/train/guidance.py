"""Random guidance drawn from the true colours, for training the guided (exemplar) colorizer.

Each training image gets one kind, so one network learns every way users steer colour:
none (automatic colours), sparse hints (a few clicked points), dense propagated colour (a
keyframe carried along the flow: shifted a little, partly missing, some of it wrong at low
confidence) and a reference matched by content (a mirrored, cropped view of the same image).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vidcolor.models.exemplar import guide_tensor
from vidcolor.steer.match import encoder_features, match_guidance, prepare_reference

KIND_WEIGHTS = {"none": 0.15, "hints": 0.3, "dense": 0.25, "reference": 0.3}
"""Share of training images given each kind of guidance."""
MAX_HINTS = 16
REFERENCE_CROP = (0.6, 1.0)
"""The reference view is a random crop of this share of each side, resized and mirrored."""


def _rand(gen: torch.Generator, *shape: int, device: torch.device) -> torch.Tensor:
    return torch.rand(*shape, generator=gen, device=gen.device).to(device)


def hint_guidance(
    ab: torch.Tensor, count: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` square hints (1-5 px) on one image ab (2, h, w): each the patch's mean colour."""
    _, h, w = ab.shape
    g_ab = torch.zeros_like(ab)
    conf = torch.zeros_like(ab[:1])
    for _ in range(count):
        r = int(torch.randint(0, 3, (1,), generator=gen, device=gen.device))
        y = int(torch.randint(r, max(r + 1, h - r), (1,), generator=gen, device=gen.device))
        x = int(torch.randint(r, max(r + 1, w - r), (1,), generator=gen, device=gen.device))
        patch = ab[:, y - r : y + r + 1, x - r : x + r + 1]
        g_ab[:, y - r : y + r + 1, x - r : x + r + 1] = patch.mean((1, 2), keepdim=True)
        conf[:, y - r : y + r + 1, x - r : x + r + 1] = 1.0
    return g_ab, conf


def blob_mask(h: int, w: int, cover: float, gen: torch.Generator, device) -> torch.Tensor:
    """(1, h, w) smooth random regions covering about ``cover`` of the image."""
    noise = _rand(gen, 1, 1, 4, 4, device=device)
    noise = F.interpolate(noise, size=(h, w), mode="bicubic", align_corners=False)[0]
    thresh = torch.quantile(noise.flatten(), 1.0 - cover)
    return (noise >= thresh).float()


def dense_guidance(
    ab: torch.Tensor, other: torch.Tensor, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Propagated-keyframe-like guidance: truth shifted by 0-3 px over most of the image at
    high confidence, and a wrong colour (another image's) in a patch at low confidence."""
    _, h, w = ab.shape
    dev = ab.device
    dy, dx = (int(v) for v in torch.randint(-3, 4, (2,), generator=gen, device=gen.device))
    shifted = torch.roll(ab, shifts=(dy, dx), dims=(1, 2))
    cover = 0.3 + 0.7 * float(_rand(gen, 1, device=dev))
    mask = blob_mask(h, w, cover, gen, dev)
    level = 0.5 + 0.5 * float(_rand(gen, 1, device=dev))
    conf = mask * level
    g_ab = shifted * mask
    wrong = blob_mask(h, w, 0.25, gen, dev) * (1.0 - mask)
    wrong_level = 0.3 * float(_rand(gen, 1, device=dev))
    g_ab = g_ab + other * wrong
    conf = conf + wrong * wrong_level
    return g_ab, conf


def reference_view(
    L: torch.Tensor, ab: torch.Tensor, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """A mirrored random crop of one image (L (1, h, w), ab (2, h, w)) at the same size."""
    _, h, w = L.shape
    lo, hi = REFERENCE_CROP
    s = lo + (hi - lo) * float(_rand(gen, 1, device=L.device))
    ch, cw = max(8, round(h * s)), max(8, round(w * s))
    y = int(torch.randint(0, h - ch + 1, (1,), generator=gen, device=gen.device))
    x = int(torch.randint(0, w - cw + 1, (1,), generator=gen, device=gen.device))
    lab_crop = torch.cat([L, ab], 0)[None, :, y : y + ch, x : x + cw]
    view = F.interpolate(lab_crop, size=(h, w), mode="bilinear", align_corners=False)
    view = torch.flip(view, dims=(-1,))
    return view[:, :1], view[:, 1:]


@torch.no_grad()
def sample_guidance(
    model: torch.nn.Module, L: torch.Tensor, ab: torch.Tensor, gen: torch.Generator
) -> torch.Tensor:
    """Guidance (B, 3, h, w) for a training batch L (B, 1, h, w), true ab (B, 2, h, w)."""
    B, _, h, w = L.shape
    kinds = list(KIND_WEIGHTS)
    probs = torch.tensor([KIND_WEIGHTS[k] for k in kinds])
    picks = torch.multinomial(probs, B, replacement=True, generator=torch.Generator().manual_seed(
        int(torch.randint(0, 2**31 - 1, (1,), generator=gen, device=gen.device))
    ))
    g_ab = torch.zeros_like(ab)
    conf = torch.zeros_like(L)
    ref_rows = [i for i in range(B) if kinds[int(picks[i])] == "reference"]
    if ref_rows:
        was_training = model.training
        model.eval()
        feats = encoder_features(model, L[ref_rows])
        for j, i in enumerate(ref_rows):
            L_r, ab_r = reference_view(L[i], ab[i], gen)
            target = prepare_reference(model, L_r, ab_r)
            m_ab, m_conf = match_guidance(feats[j : j + 1], target, (h, w))
            g_ab[i], conf[i] = m_ab[0], m_conf[0]
        model.train(was_training)
    for i in range(B):
        kind = kinds[int(picks[i])]
        if kind == "hints":
            count = int(torch.randint(1, MAX_HINTS + 1, (1,), generator=gen, device=gen.device))
            g_ab[i], conf[i] = hint_guidance(ab[i], count, gen)
        elif kind == "dense":
            other = ab[(i + 1) % B]
            g_ab[i], conf[i] = dense_guidance(ab[i], other, gen)
        elif kind == "reference" and float(_rand(gen, 1, device=L.device)) < 0.3:
            # references and hints combine: a few clicks on top of a matched reference
            h_ab, h_conf = hint_guidance(ab[i], 3, gen)
            g_ab[i] = torch.where(h_conf > 0, h_ab, g_ab[i])
            conf[i] = torch.maximum(conf[i], h_conf)
    return guide_tensor(g_ab, conf)
