"""CUDA paths (``-m gpu``; skipped with a reason on machines without a GPU)."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch

from vidcolor.colorize import Colorizer
from vidcolor.temporal import TemporalItem, TemporalOptions, make_temporal_stage

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_shipped_model_on_cuda_matches_cpu() -> None:
    """bf16/fp16 + channels-last on the GPU gives the CPU's colours within a few Lab units."""
    L = torch.rand(2, 1, 224, 384) * 100
    cpu = Colorizer.load(device="cpu").predict(L)
    gpu = Colorizer.load(device="cuda").predict(L).cpu()
    assert gpu.shape == cpu.shape == (2, 2, 224, 384)
    assert (gpu - cpu).abs().mean() < 2.0


def test_raft_stage_runs_on_cuda_with_random_weights() -> None:
    """The RAFT backend's shapes and device handling on the GPU (random weights, no download)."""
    from vidcolor.temporal import flow

    backend = flow.build_raft(variant="raft_small", pretrained=False, device="cuda")
    a, b = torch.rand(2, 1, 1, 130, 200).mul(100).cuda().unbind(0)
    f = backend(a, b)
    assert f.shape == (1, 2, 130, 200) and f.is_cuda
    stage = make_temporal_stage(TemporalOptions(flow="dis", device="cuda"))
    out = stage.push(
        TemporalItem(0, Fraction(0), a[0], torch.zeros(2, 130, 200, device="cuda"), None)
    )
    assert out[0].ab.is_cuda
