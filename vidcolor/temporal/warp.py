"""Backward warping along optical flow, occlusion and luminance-constancy confidences.

Flow convention throughout vidcolor.temporal: ``flow(a -> b)`` is a (B, 2, h, w) tensor in
pixels (x then y) such that ``a(p) ~ b(p + flow(p))``. Backward warping ``warp(b, flow)`` then
samples ``b`` at ``p + flow(p)`` and so aligns ``b`` with ``a``.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

_GRID_CACHE: dict[tuple[int, int, str, torch.dtype], torch.Tensor] = {}


def _base_grid(h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """grid_sample coordinates (1, h, w, 2) in [-1, 1] of every pixel, cached per size/device."""
    key = (h, w, str(device), dtype)
    grid = _GRID_CACHE.get(key)
    if grid is None:
        ys = torch.linspace(-1.0, 1.0, h, device=device, dtype=dtype)
        xs = torch.linspace(-1.0, 1.0, w, device=device, dtype=dtype)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        grid = torch.stack([gx, gy], dim=-1).unsqueeze(0)
        if len(_GRID_CACHE) > 16:
            _GRID_CACHE.clear()
        _GRID_CACHE[key] = grid
    return grid


def _check_flow(x: torch.Tensor, flow: torch.Tensor) -> None:
    if flow.dim() != 4 or flow.shape[1] != 2:
        raise ValueError(f"expected flow of shape (B, 2, h, w), got {tuple(flow.shape)}")
    if x.dim() != 4 or x.shape[0] != flow.shape[0] or x.shape[-2:] != flow.shape[-2:]:
        raise ValueError(
            f"expected a (B, C, h, w) tensor matching flow {tuple(flow.shape)}, "
            f"got {tuple(x.shape)}"
        )


def sample_grid(flow: torch.Tensor) -> torch.Tensor:
    """Normalised (B, h, w, 2) grid_sample positions ``p + flow(p)`` (align_corners=True)."""
    h, w = flow.shape[-2:]
    scale = flow.new_tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)])
    return _base_grid(h, w, flow.device, flow.dtype) + flow.permute(0, 2, 3, 1) * scale


def backward_warp(x: torch.Tensor, flow: torch.Tensor, *, mode: str = "bilinear") -> torch.Tensor:
    """Sample ``x`` (B, C, h, w) at ``p + flow(p)``; outside the frame the border is repeated.

    Warp several things along one flow in a single call by concatenating them on channels.
    """
    _check_flow(x, flow)
    return F.grid_sample(x, sample_grid(flow), mode=mode, padding_mode="border", align_corners=True)


def remap_warp(*xs: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """:func:`backward_warp` (bilinear, border repeated) of the tensors ``xs``, concatenated
    on channels, in OpenCV's ``remap`` for CPU float32 tensors, a plane at a time: positions
    are rounded to 1/32 pixel (the film stabiliser's path, cheaper than ``grid_sample`` on a
    CPU). Other tensors: ``backward_warp`` of their concatenation."""
    for x in xs:
        _check_flow(x, flow)
    on_cpu = all(t.device.type == "cpu" and t.dtype == torch.float32 for t in (*xs, flow))
    if not on_cpu:
        return backward_warp(torch.cat(xs, dim=1) if len(xs) > 1 else xs[0], flow)
    h, w = flow.shape[-2:]
    cols = np.arange(w, dtype=np.float32)[None]
    rows = np.arange(h, dtype=np.float32)[:, None]
    fl = flow.detach().numpy()
    out = np.empty((flow.shape[0], sum(x.shape[1] for x in xs), h, w), np.float32)
    for b in range(out.shape[0]):
        map_x, map_y = cols + fl[b, 0], rows + fl[b, 1]
        planes = (plane for x in xs for plane in x[b].detach().numpy())
        for c, plane in enumerate(planes):
            out[b, c] = cv2.remap(np.ascontiguousarray(plane), map_x, map_y, cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)
    return torch.from_numpy(out)


def inside_mask(flow: torch.Tensor) -> torch.Tensor:
    """1 where ``p + flow(p)`` lands inside the frame, else 0; (B, 1, h, w) float."""
    h, w = flow.shape[-2:]
    ys = torch.arange(h, device=flow.device, dtype=flow.dtype)[:, None]
    xs = torch.arange(w, device=flow.device, dtype=flow.dtype)
    x, y = flow[:, :1] + xs, flow[:, 1:] + ys  # the pixel each position samples
    tol_x, tol_y = 0.5e-6 * max(w - 1, 1), 0.5e-6 * max(h - 1, 1)  # sample_grid's 1e-6
    margin = torch.minimum(torch.minimum(x + tol_x, (w - 1 + tol_x) - x),
                           torch.minimum(y + tol_y, (h - 1 + tol_y) - y))
    return non_negative(margin)


def positive(x: torch.Tensor) -> torch.Tensor:
    """1.0 where ``x > 0``, else 0.0, by arithmetic: on a CPU, torch makes the bool tensors
    of a comparison (and floats of them) several times slower than an add."""
    return x.sign().clamp_(min=0.0)


def non_negative(x: torch.Tensor) -> torch.Tensor:
    """1.0 where ``x >= 0``, else 0.0 (see :func:`positive`)."""
    return x.sign().add_(1.0).clamp_(max=1.0)


def _sq_norm(v: torch.Tensor) -> torch.Tensor:
    """|v|^2 of (B, 2, h, w) vectors -> (B, 1, h, w) (plain adds: a 2-wide reduction is slow)."""
    sq = v.square()
    return sq[:, :1] + sq[:, 1:]


def consistency_from_warped(flow_ab: torch.Tensor, warped_ba: torch.Tensor) -> torch.Tensor:
    """:func:`consistency_mask` given ``warped_ba = backward_warp(flow_ba, flow_ab)``."""
    diff = _sq_norm(flow_ab + warped_ba)
    bound = 0.01 * (_sq_norm(flow_ab) + _sq_norm(warped_ba))
    return positive(bound + 0.5 - diff) * inside_mask(flow_ab)


def consistency_mask(flow_ab: torch.Tensor, flow_ba: torch.Tensor) -> torch.Tensor:
    """Forward-backward check (Sundaram et al. 2010, Lai et al. 2018) for pixels of frame a.

    1 where ``|f + b(p + f)|^2 < 0.01 (|f|^2 + |b(p + f)|^2) + 0.5`` and ``p + f`` stays in the
    frame; 0 marks occluded, disoccluded or out-of-view pixels. Returns (B, 1, h, w) float.
    """
    return consistency_from_warped(flow_ab, backward_warp(flow_ba, flow_ab))


def motion_boundary_mask(flow: torch.Tensor) -> torch.Tensor:
    """0 on motion boundaries, as in Lai et al.'s ``detect_occlusion`` (after Sundaram et al.):
    ``|grad u|^2 + |grad v|^2 > 0.01 |flow|^2 + 0.002`` with forward differences (zero at the
    last row and column). Returns (B, 1, h, w) float, 1 where the flow is smooth."""
    du = torch.zeros_like(flow)
    dv = torch.zeros_like(flow)
    du[..., :, :-1] = flow[..., :, :-1] - flow[..., :, 1:]
    dv[..., :-1, :] = flow[..., :-1, :] - flow[..., 1:, :]
    grad = (du.square() + dv.square()).sum(1, keepdim=True)
    bound = 0.01 * flow.square().sum(1, keepdim=True) + 0.002
    return (grad <= bound).to(flow.dtype)


def luminance_confidence(
    L: torch.Tensor, L_warped: torch.Tensor, *, sigma: float = 5.0
) -> torch.Tensor:
    """``exp(-|L - L_warped| / sigma)``: how well the warp explains the lightness (L units)."""
    return torch.exp(-(L - L_warped).abs() / sigma)
