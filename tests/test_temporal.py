"""Tests of the temporal stage: padding, warping, occlusion, flow backends, cuts, stabiliser,
metrics and the evaluation library. Small sizes, CPU only."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidcolor.errors import FlowError, InputError, UsageError
from vidcolor.lab import lab_to_rgb
from vidcolor.temporal import (
    TemporalItem,
    TemporalOptions,
    make_temporal_stage,
    option_help,
    run_stage_on_sequence,
)
from vidcolor.temporal.cuts import CutDetector, chi_square_distance, l_histogram
from vidcolor.temporal.evaluate import (
    GREY_LABEL,
    ORIGINAL_LABEL,
    evaluate_frames,
    plot_flicker,
    read_clip,
    working_size,
)
from vidcolor.temporal.flow import (
    DisFlow,
    FarnebackFlow,
    build_raft,
    fetch_checkpoint,
    load_raft_state_dict,
    raft_cache_path,
)
from vidcolor.temporal.metrics import cdc, js_divergence, warping_error
from vidcolor.temporal.padding import InputPadder
from vidcolor.temporal.stabilize import enlarge_flow, shrink
from vidcolor.temporal.warp import (
    backward_warp,
    consistency_mask,
    motion_boundary_mask,
    remap_warp,
)


def texture(h: int, w: int, *, seed: int = 0, channels: int = 1) -> torch.Tensor:
    """Smooth random texture (1, C, h, w) in [0, 1]: trackable by optical flow."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, channels, max(h // 6, 2), max(w // 6, 2), generator=g)
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


def moving_sequence(
    frames: int, h: int, w: int, *, step: int = 2, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """L (T, 1, h, w) and true ab (T, 2, h, w) of a texture panning left by ``step`` px/frame."""
    big = texture(h, w + step * frames, seed=seed, channels=2)
    crops = torch.stack([big[0, :, :, step * t : step * t + w] for t in range(frames)])
    L = crops[:, :1] * 70.0 + 15.0
    ab = torch.cat([crops[:, :1] * 60.0 - 30.0, crops[:, 1:] * 50.0 - 25.0], dim=1)
    return L, ab


def items(L: torch.Tensor, ab: torch.Tensor) -> list[TemporalItem]:
    return [
        TemporalItem(index=t, time=Fraction(t, 25), L=L[t], ab=ab[t], payload=("frame", t))
        for t in range(L.shape[0])
    ]


# --- padding -----------------------------------------------------------------------------------


def test_padder_pads_odd_sizes_to_multiple_and_unpads_exactly() -> None:
    x = torch.rand(2, 3, 37, 53)
    padder = InputPadder((37, 53), multiple=8)
    padded = padder.pad(x)
    assert padded.shape[-2:] == (40, 56) == padder.padded_size
    assert torch.equal(padder.unpad(padded), x)
    # replicate padding: the padded border repeats the edge pixels
    assert torch.equal(padded[..., -1, 20], padded[..., -2, 20])


def test_padder_min_size_and_errors() -> None:
    padder = InputPadder((37, 200), multiple=8, min_size=128)
    assert padder.padded_size == (128, 200)
    with pytest.raises(ValueError, match="expected a 37x200 tensor to pad, got 36x200"):
        padder.pad(torch.zeros(1, 1, 36, 200))


# --- warping and occlusion ---------------------------------------------------------------------


def test_integer_shift_is_undone_exactly_in_the_interior() -> None:
    base = texture(40, 60, seed=1, channels=2)
    shifted = torch.roll(base, shifts=(2, -3), dims=(2, 3))  # shifted(p) = base(p - (-3, 2))
    # to align shifted with base, sample shifted at p + (-3, +2)
    flow = torch.zeros(1, 2, 40, 60)
    flow[:, 0], flow[:, 1] = -3.0, 2.0
    aligned = backward_warp(shifted, flow)
    assert torch.allclose(aligned[..., 5:-5, 5:-5], base[..., 5:-5, 5:-5], atol=1e-5)


def test_remap_warp_matches_grid_sample() -> None:
    # OpenCV's remap rounds positions to 1/32 pixel: a smooth texture under a smooth, fractional
    # flow (in and out of the frame) stays within what that rounding moves, far below a level
    x = F.avg_pool2d(texture(36, 52, seed=3, channels=3) * 100.0, 5, 1, 2)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 36), torch.linspace(-1, 1, 52), indexing="ij")
    flow = torch.stack([3.3 * xx + 1.7 * yy.square() - 0.4, 2.1 * yy - 1.1 * xx]).unsqueeze(0)
    want, got = backward_warp(x, flow), remap_warp(x[:, :1], x[:, 1:], flow=flow)
    slope = x.diff(dim=-1).abs().max() + x.diff(dim=-2).abs().max()
    assert got.shape == want.shape and got.dtype == torch.float32
    assert (got - want).abs().max() <= slope / 32
    assert (got - want).abs().mean() < 0.1 * slope / 32
    # integer shifts move whole pixels, and other dtypes go to grid_sample
    shift = torch.zeros(1, 2, 36, 52)
    shift[:, 0], shift[:, 1] = -3.0, 2.0
    assert torch.equal(remap_warp(x, flow=shift)[..., 4:-4, 4:-4], x[..., 6:-2, 1:-7])
    assert torch.equal(remap_warp(x.double(), flow=flow.double()),
                       backward_warp(x.double(), flow.double()))


def test_consistency_marks_the_disoccluded_band() -> None:
    # a square x in [10, 20) in frame A moves to [14, 24) in frame B over a static background
    h, w = 32, 40
    ab_flow = torch.zeros(1, 2, h, w)
    ab_flow[:, 0, 8:24, 10:20] = 4.0
    ba_flow = torch.zeros(1, 2, h, w)
    ba_flow[:, 0, 8:24, 14:24] = -4.0
    mask_b = consistency_mask(ba_flow, ab_flow)[0, 0]  # pixels of B traced back to A
    expected = torch.ones(h, w)
    expected[8:24, 10:14] = 0.0  # background uncovered behind the square: hidden in A
    assert torch.equal(mask_b, expected)


def test_consistency_marks_pixels_whose_flow_leaves_the_frame() -> None:
    flow = torch.zeros(1, 2, 16, 24)
    flow[:, 0] = -3.0  # everything moved 3 px right: the left 3 columns came from outside
    mask = consistency_mask(flow, -flow)[0, 0]
    assert torch.all(mask[:, :3] == 0)
    assert torch.all(mask[:, 3:] == 1)


def test_motion_boundary_mask_drops_the_edges_of_a_moving_object_only() -> None:
    # Lai et al.'s second occlusion test: a square moving 4 px over a static background
    flow = torch.zeros(1, 2, 32, 40)
    flow[:, 0, 8:24, 10:20] = 4.0
    mask = motion_boundary_mask(flow)[0, 0]
    edge = torch.zeros(32, 40, dtype=torch.bool)
    edge[8:24, 9] = edge[8:24, 19] = True  # forward differences: the column before each jump
    edge[7, 10:20] = edge[23, 10:20] = True  # and the row before each jump
    assert torch.all(mask[edge] == 0)
    assert torch.all(mask[~edge] == 1)
    # a smooth zoom (gradient 0.05 px/px, well within 0.01 |w|^2 + 0.002 away from the centre)
    ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(40.0), indexing="ij")
    zoom = torch.stack([(xs - 20) * 0.05, (ys - 16) * 0.05])[None]
    assert motion_boundary_mask(zoom).mean() > 0.5


# --- flow backends -----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", [DisFlow(), FarnebackFlow()], ids=["dis", "farneback"])
def test_opencv_backends_recover_a_known_shift(backend: DisFlow | FarnebackFlow) -> None:
    big = texture(60, 80, seed=2) * 80.0 + 10.0
    a = torch.cat([big[..., 5:42, 4:57], big[..., 6:43, 6:59]])  # batch of 2, odd size 37x53
    b = torch.cat([big[..., 5:42, 7:60], big[..., 4:41, 6:59]])
    flow = backend(a, b)
    assert flow.shape == (2, 2, 37, 53) and flow.dtype == torch.float32
    interior = flow[..., 8:-8, 8:-8].mean(dim=(2, 3))
    # a(p) = b(p + f): a[x] = big[x + 4] = b[x - 3]; a[y] = big[y + 6] = b[y + 2]
    assert torch.allclose(interior, torch.tensor([[-3.0, 0.0], [0.0, 2.0]]), atol=0.5)


def test_opencv_backend_rejects_mismatched_inputs() -> None:
    with pytest.raises(ValueError, match=r"got \(1, 1, 20, 20\) and \(1, 1, 20, 24\)"):
        DisFlow()(torch.zeros(1, 1, 20, 20), torch.zeros(1, 1, 20, 24))


def test_raft_random_weights_shapes_odd_sizes_and_batching() -> None:
    torch.manual_seed(0)
    raft = build_raft(variant="raft_small", pretrained=False, num_flow_updates=2)
    a = texture(37, 45, seed=3) * 80.0
    b = texture(37, 45, seed=4) * 80.0
    pair = raft(torch.cat([a, b]), torch.cat([b, a]))
    assert pair.shape == (2, 2, 37, 45)
    assert torch.isfinite(pair).all()
    single = raft(a, b)
    assert torch.allclose(pair[:1], single, atol=1e-4)  # batch items are independent


def test_raft_without_cached_weights_offline_is_a_flow_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("VIDCOLOR_OFFLINE", "1")
    expected = tmp_path / "hub" / "checkpoints" / "raft_small_C_T_V2-01064c6d.pth"
    assert raft_cache_path("raft_small") == expected
    with pytest.raises(FlowError) as info:
        make_temporal_stage(TemporalOptions(flow="raft"))
    message = str(info.value)
    assert str(expected) in message
    assert "--flow-weights FILE" in message and "--flow dis" in message


def test_failed_download_becomes_flow_error_and_leaves_no_file(tmp_path: Path) -> None:
    dst = tmp_path / "checkpoints" / "raft.pth"
    with pytest.raises(FlowError, match=r"could not download http://127\.0\.0\.1:9/raft\.pth"):
        fetch_checkpoint("http://127.0.0.1:9/raft.pth", dst, timeout_s=2.0)
    assert list(dst.parent.iterdir()) == []


def test_raft_loads_weights_file_strictly(tmp_path: Path) -> None:
    from safetensors.torch import save_file
    from torchvision.models.optical_flow import raft_small

    state = raft_small(weights=None).state_dict()
    pth, st = tmp_path / "small.pth", tmp_path / "small.safetensors"
    torch.save(state, pth)
    save_file({k: v.contiguous() for k, v in state.items()}, str(st))
    for path in (pth, st):
        loaded = load_raft_state_dict("raft_small", weights_file=path)
        assert loaded.keys() == state.keys()
        assert all(torch.equal(loaded[k], v) for k, v in state.items())
    stage = make_temporal_stage(TemporalOptions(flow="raft", flow_weights=pth))
    assert stage.name == "raft_small/forward"
    with pytest.raises(FlowError, match="does not hold raft_large weights"):
        make_temporal_stage(TemporalOptions(flow="raft_large", flow_weights=pth))


def test_auto_on_cpu_chooses_dis() -> None:
    assert make_temporal_stage(TemporalOptions(flow="auto")).name == "dis/forward"
    bidi = make_temporal_stage(TemporalOptions(flow="auto", mode="bidirectional"))
    assert bidi.name == "dis/bidirectional"


# --- options -----------------------------------------------------------------------------------


def test_options_validate_with_actual_values() -> None:
    with pytest.raises(UsageError, match=r"strength must be in \[0, 1\], got 1\.5"):
        TemporalOptions(strength=1.5)
    with pytest.raises(UsageError, match="window must be an integer >= 2 frames, got 1"):
        TemporalOptions(window=1)
    with pytest.raises(UsageError, match="got 'flownet'"):
        TemporalOptions(flow="flownet")
    assert "(default: forward)" in option_help("mode")


# --- stages ------------------------------------------------------------------------------------


def test_none_is_identity() -> None:
    L, ab = moving_sequence(4, 24, 32)
    stage = make_temporal_stage(TemporalOptions(flow="none"))
    assert stage.name == "none"
    for item in items(L, ab):
        assert stage.push(item) == [item]
        assert torch.equal(item.ab, ab[item.index])
    assert stage.flush() == [] and stage.cuts == []


def test_zero_strength_keeps_the_prediction() -> None:
    L, ab = moving_sequence(5, 32, 48)
    noisy = ab + torch.randn(5, 2, 1, 1, generator=torch.Generator().manual_seed(0)) * 10
    for mode in ("forward", "bidirectional"):
        stage = make_temporal_stage(TemporalOptions(flow="dis", mode=mode, strength=0.0, window=3))
        assert torch.allclose(run_stage_on_sequence(stage, L, noisy), noisy, atol=1e-4)


def test_stabiliser_lowers_warping_error_of_a_flickering_prediction() -> None:
    frames, h, w = 10, 64, 96
    L, ab_true = moving_sequence(frames, h, w, step=2, seed=5)
    g = torch.Generator().manual_seed(1)
    noisy = (
        ab_true
        + torch.randn(frames, 2, 1, 1, generator=g) * 8
        + torch.randn(frames, 2, h, w, generator=g)
    )
    originals = lab_to_rgb(torch.cat([L, ab_true], dim=1))

    def render(ab: torch.Tensor) -> torch.Tensor:
        return lab_to_rgb(torch.cat([L, ab], dim=1))

    baseline, _ = warping_error(render(noisy), originals)
    for mode in ("forward", "bidirectional"):
        stage = make_temporal_stage(TemporalOptions(flow="dis", mode=mode, window=4))
        out = run_stage_on_sequence(stage, L, noisy)
        stabilised, per_frame = warping_error(render(out), originals)
        assert len(per_frame) == frames - 1
        assert stabilised <= 0.3 * baseline, (mode, stabilised, baseline)  # measured ~0.1
        # the prediction keeps correcting: no drift away from the true colours
        assert F.mse_loss(out, ab_true) < F.mse_loss(noisy, ab_true)
        assert stage.cuts == []


def test_bidirectional_windows_join_without_a_colour_jump() -> None:
    # A static shot whose prediction jumps frame to frame: with full strength the first colour
    # must hold through every window (a backward track restarted from each window's last raw
    # prediction would jump every window // 2 frames).
    frames = 14
    L = (texture(40, 56, seed=3) * 70.0 + 15.0).expand(frames, 1, 40, 56).clone()
    g = torch.Generator().manual_seed(2)
    ab = (torch.randn(frames, 2, 1, 1, generator=g) * 10).expand(frames, 2, 40, 56).clone()
    stage = make_temporal_stage(
        TemporalOptions(flow="dis", mode="bidirectional", strength=1.0, window=4)
    )
    out = run_stage_on_sequence(stage, L, ab)
    assert (out - out[:1]).abs().max() < 0.5, (out - out[:1]).abs().amax(dim=(1, 2, 3))


@pytest.mark.parametrize("mode", ["forward", "bidirectional"])
@pytest.mark.parametrize("signal", ["histogram", "flow"])
def test_a_cut_resets_propagation(mode: str, signal: str) -> None:
    L1, _ = moving_sequence(5, 48, 64, seed=6)
    if signal == "histogram":  # a much brighter new shot
        L = torch.cat([L1 * 0.5, (texture(48, 64, seed=7) * 30.0 + 65.0).expand(5, 1, 48, 64)])
    else:  # same lightness statistics (histogram distance ~0.03): only the flow fails
        L = torch.cat([L1, moving_sequence(5, 48, 64, seed=11)[0]])
    ab = torch.cat([torch.full((5, 2, 48, 64), 30.0), torch.full((5, 2, 48, 64), -30.0)])
    stage = make_temporal_stage(TemporalOptions(flow="dis", mode=mode, window=4))
    out = run_stage_on_sequence(stage, L, ab)
    assert stage.cuts == [(5, Fraction(5, 25))]
    # no colour crosses the cut, in either direction
    assert torch.allclose(out[:5], ab[:5], atol=1e-3)
    assert torch.allclose(out[5:], ab[5:], atol=1e-3)


def test_model_every_options_are_checked() -> None:
    with pytest.raises(UsageError, match="model_every must be a whole number >= 1, got 0"):
        TemporalOptions(model_every=0)
    with pytest.raises(UsageError, match=r"model_every 2 .* needs forward mode"):
        TemporalOptions(model_every=2, mode="bidirectional")
    with pytest.raises(UsageError, match=r"model_every 3 .* needs a flow"):
        TemporalOptions(model_every=3, flow="none")


@pytest.mark.parametrize("every", [2, 3])
def test_skipped_frames_get_the_colour_carried_along_the_flow(every: int) -> None:
    """The model sees every n-th frame of a pan; the frames between get its colour moved with
    the picture, far closer to the truth than holding the last prediction in place."""
    frames, h, w = 9, 64, 96
    L, ab = moving_sequence(frames, h, w, step=3, seed=4)
    stage = make_temporal_stage(TemporalOptions(flow="dis", model_every=every))
    assert stage.model_every == every
    returned = []
    for t, item in enumerate(items(L, ab)):
        if t % every:
            item.ab = None
        returned += stage.push(item)
    assert [it.index for it in returned] == list(range(frames))
    out = torch.stack([it.ab for it in returned])
    held = torch.stack([ab[t - t % every] for t in range(frames)])
    skipped = [t for t in range(frames) if t % every]
    inner = (skipped, slice(None), slice(8, -8), slice(12, -12))  # away from the edges
    err = (out - ab)[inner].abs().mean()
    assert err < 0.3 * (held - ab)[inner].abs().mean(), err  # measured 0.12-0.13
    assert err < 1.5  # Lab units


def test_a_cut_on_a_skipped_frame_asks_for_its_prediction() -> None:
    L1, _ = moving_sequence(5, 48, 64, seed=6)
    L = torch.cat([L1 * 0.5, (texture(48, 64, seed=7) * 30.0 + 65.0).expand(4, 1, 48, 64)])
    ab = torch.cat([torch.full((5, 2, 48, 64), 30.0), torch.full((4, 2, 48, 64), -30.0)])
    asked: list[float] = []

    def predict(L_one: torch.Tensor) -> torch.Tensor:
        asked.append(float(L_one.mean()))
        return torch.full((1, 2, *L_one.shape[-2:]), -30.0)

    stage = make_temporal_stage(TemporalOptions(flow="dis", model_every=2), predict=predict)
    out = [stage.push(TemporalItem(t, Fraction(t, 25), L[t], ab[t] if t % 2 == 0 else None))[0]
           for t in range(9)]
    assert stage.cuts == [(5, Fraction(5, 25))]
    assert asked == [pytest.approx(float(L[5].mean()))]  # frame 5 only: the others had ab or
    out_ab = torch.stack([it.ab for it in out])  # colour to carry
    assert torch.allclose(out_ab[:5], ab[:5], atol=1e-3)
    assert torch.allclose(out_ab[5:], ab[5:], atol=1e-3)
    stage.flush()
    stage.predict = None
    stage.push(TemporalItem(0, Fraction(0), L[0], ab[0]))
    with pytest.raises(ValueError, match="frame 5 starts a shot but came without ab"):
        stage.push(TemporalItem(5, Fraction(5, 25), L[5], None))
    every_frame = make_temporal_stage(TemporalOptions(flow="dis"))
    with pytest.raises(ValueError, match="frame 3: no ab given"):
        every_frame.push(TemporalItem(3, Fraction(3, 25), L[3], None))


def test_flow_downscale_options_are_checked() -> None:
    with pytest.raises(UsageError, match="flow_downscale must be one of 1, 2, got 3"):
        TemporalOptions(flow_downscale=3)
    with pytest.raises(UsageError, match=r"dis_preset must be one of .*, got 'slow'"):
        TemporalOptions(dis_preset="slow")
    with pytest.raises(UsageError, match="DIS input scale must be 1, 2 or 4, got 3"):
        DisFlow(input_scale=3)
    # the finest level moves down one step per halving: the same patches of the scene
    assert DisFlow(input_scale=2)._dis.getFinestScale() == DisFlow()._dis.getFinestScale() - 1


def test_enlarged_flow_is_in_the_pixels_of_the_large_frame() -> None:
    small = torch.stack([torch.full((12, 20), 1.5), torch.full((12, 20), -0.5)])[None]
    big = enlarge_flow(small, (24, 40))
    assert big.shape == (1, 2, 24, 40)
    assert torch.allclose(big[0, 0], torch.full((24, 40), 3.0))
    assert torch.allclose(big[0, 1], torch.full((24, 40), -1.0))
    assert shrink(torch.ones(1, 1, 25, 39), 2).shape == (1, 1, 13, 20)


@pytest.mark.parametrize("mode", ["forward", "bidirectional"])
def test_flow_at_half_size_carries_colour_as_the_full_size_flow_does(mode: str) -> None:
    """Flow and occlusion test on lightness shrunk twice: on a pan the output stays within a
    fraction of a Lab unit of the full-size flow's, and a cut still resets."""
    frames, h, w = 10, 64, 96
    L, ab_true = moving_sequence(frames, h, w, step=2, seed=5)
    g = torch.Generator().manual_seed(1)
    noisy = ab_true + torch.randn(frames, 2, 1, 1, generator=g) * 8
    outs = {}
    for n in (1, 2):
        stage = make_temporal_stage(
            TemporalOptions(flow="dis", mode=mode, window=4, flow_downscale=n))
        outs[n] = run_stage_on_sequence(stage, L, noisy)
        assert stage.cuts == []
        assert F.mse_loss(outs[n], ab_true) < F.mse_loss(noisy, ab_true)
    inner = (slice(None), slice(None), slice(8, -8), slice(8, -8))
    change = (outs[1] - noisy)[inner].abs().mean()  # what the stage does to the prediction
    assert (outs[2] - outs[1])[inner].abs().mean() < 0.1 * change  # measured ~0.025
    L_cut = torch.cat([L[:5] * 0.5, (texture(h, w, seed=7) * 30.0 + 65.0).expand(5, 1, h, w)])
    stage = make_temporal_stage(TemporalOptions(flow="dis", mode=mode, window=4, flow_downscale=2))
    ab = torch.cat([torch.full((5, 2, h, w), 30.0), torch.full((5, 2, h, w), -30.0)])
    out = run_stage_on_sequence(stage, L_cut, ab)
    assert stage.cuts == [(5, Fraction(5, 25))]
    assert torch.allclose(out, ab, atol=1e-3)


@pytest.mark.parametrize("n", [1, 2])
def test_one_way_flow_carries_colour_as_the_checked_flow_does(n: int) -> None:
    """Without the reverse flow (``backward_check`` off) a pan is carried as with it, and both
    kinds of cut still reset the colour."""
    frames, h, w = 10, 64, 96
    L, ab_true = moving_sequence(frames, h, w, step=2, seed=5)
    g = torch.Generator().manual_seed(1)
    noisy = ab_true + torch.randn(frames, 2, 1, 1, generator=g) * 8
    outs = {}
    for check in ("all", "none"):
        stage = make_temporal_stage(TemporalOptions(
            flow="dis", flow_downscale=n, backward_check=check))
        outs[check] = run_stage_on_sequence(stage, L, noisy)
        assert stage.cuts == []
        assert F.mse_loss(outs[check], ab_true) < F.mse_loss(noisy, ab_true)
    inner = (slice(None), slice(None), slice(8, -8), slice(8, -8))
    change = (outs["all"] - noisy)[inner].abs().mean()
    # on a clean pan the reverse flow rejects nothing: measured ~1e-8 apart
    assert (outs["none"] - outs["all"])[inner].abs().mean() < 0.01 * change
    L1 = L[:5] * 0.5
    ab = torch.cat([torch.full((5, 2, h, w), 30.0), torch.full((5, 2, h, w), -30.0)])
    for second in ((texture(h, w, seed=7) * 30.0 + 65.0).expand(5, 1, h, w),  # histogram
                   moving_sequence(5, h, w, seed=11)[0] * 0.5):  # flow only
        stage = make_temporal_stage(TemporalOptions(
            flow="dis", flow_downscale=n, backward_check="none"))
        out = run_stage_on_sequence(stage, torch.cat([L1, second]), ab)
        assert stage.cuts == [(5, Fraction(5, 25))]
        assert torch.allclose(out, ab, atol=1e-3)


@pytest.mark.parametrize(("check", "pairs"), [("all", 8), ("model", 2), ("none", 0)])
def test_the_reverse_flow_is_computed_where_the_check_asks(check: str, pairs: int) -> None:
    """backward_check 'model': the reverse flow only on frames with their own prediction (3
    and 6 of 9, the model on every 3rd); the others take one flow."""
    L, ab = moving_sequence(9, 48, 64, step=2, seed=5)
    stage = make_temporal_stage(TemporalOptions(flow="dis", model_every=3,
                                                backward_check=check))
    calls: list[int] = []
    backend = stage.backend

    def counting(L_a: torch.Tensor, L_b: torch.Tensor) -> torch.Tensor:
        calls.append(L_a.shape[0])
        return backend(L_a, L_b)

    stage.backend = counting
    run_stage_on_sequence(stage, L, ab)
    assert calls.count(2) == pairs and calls.count(1) == 8 - pairs
    with pytest.raises(UsageError, match="backward_check must be one of all, model, none, "
                                         "got 'yes'"):
        TemporalOptions(backward_check="yes")


@pytest.mark.parametrize("check", ["all", "none"])
def test_a_uniform_change_of_lightness_is_no_cut(check: str) -> None:
    """A fade or a flash (every pixel 9 L brighter from one frame to the next, more than the
    cut test's 8) keeps the shot: one-way, the test discounts the frame's mean change."""
    frames, h, w = 8, 64, 96
    L, _ = moving_sequence(frames, h, w, step=2, seed=5)
    L = L * 0.8 + torch.tensor([0.0] * 4 + [9.0] * 4)[:, None, None, None]
    ab = torch.full((frames, 2, h, w), 20.0)
    stage = make_temporal_stage(TemporalOptions(flow="dis", flow_downscale=2,
                                                backward_check=check))
    run_stage_on_sequence(stage, L, ab)
    assert stage.cuts == []


def test_bidirectional_returns_each_frame_once_in_order_with_bounded_buffer() -> None:
    frames, window = 23, 6
    L, ab = moving_sequence(frames, 24, 32)
    stage = make_temporal_stage(TemporalOptions(flow="dis", mode="bidirectional", window=window))
    pushed = list(items(L, ab))
    returned: list[TemporalItem] = []
    for item in pushed:
        returned += stage.push(item)
        assert item.index + 1 - len(returned) <= window  # frames held never exceed the window
        assert item.index - len(returned) < window  # latency below the window
    returned += stage.flush()
    assert [it.index for it in returned] == list(range(frames))
    assert all(out.payload is src.payload for out, src in zip(returned, pushed, strict=True))
    assert all(out.L is src.L for out, src in zip(returned, pushed, strict=True))
    assert stage.flush() == []


def test_stage_rejects_size_change_with_sizes() -> None:
    stage = make_temporal_stage(TemporalOptions(flow="dis"))
    stage.push(TemporalItem(0, Fraction(0), torch.zeros(1, 24, 32), torch.zeros(2, 24, 32), None))
    with pytest.raises(ValueError, match="frame 1 is 24x30, earlier frames were 24x32"):
        stage.push(
            TemporalItem(1, Fraction(1, 25), torch.zeros(1, 24, 30), torch.zeros(2, 24, 30), None)
        )


# --- cuts --------------------------------------------------------------------------------------


def test_histogram_distance_bounds_and_detector() -> None:
    dark, bright = torch.full((1, 8, 8), 10.0), torch.full((1, 8, 8), 90.0)
    assert chi_square_distance(l_histogram(dark), l_histogram(dark)) == 0.0
    assert chi_square_distance(l_histogram(dark), l_histogram(bright)) == pytest.approx(1.0)
    detector = CutDetector(threshold=0.3)
    assert [detector.update(x) for x in (dark, dark, bright, bright)] == [False, False, True, False]


def test_histogram_is_histc_edges_included() -> None:
    # OpenCV's histogram on a CPU: the same counts as torch.histc, L = 100 in the top bin, values
    # outside [0, 100] left out, bin edges exact
    torch.manual_seed(4)
    edges = torch.arange(65) * (100.0 / 64)
    for L in (torch.rand(1, 1, 30, 41) * 100.0, edges, torch.tensor([-1.0, 0.0, 100.0, 101.0]),
              torch.full((3, 4), 100.0)):
        want = torch.histc(L.flatten(), bins=64, min=0.0, max=100.0)
        assert torch.equal(l_histogram(L), want / want.sum().clamp_min(1.0))


# --- metrics -----------------------------------------------------------------------------------


def test_metrics_of_identical_frames_are_zero() -> None:
    frame = (texture(40, 56, seed=8, channels=3) * 255).round().byte()[0].permute(1, 2, 0)
    frames = np.stack([frame.numpy()] * 4)  # uint8 (T, H, W, 3)
    error, per_frame = warping_error(frames, frames)
    assert len(per_frame) == 3
    # Farneback returns up to ~0.1 px of flow on identical frames, hence the tolerance
    assert error < 1e-4
    assert cdc(frames)[0] == 0.0


def test_metrics_known_values_for_alternating_colours() -> None:
    originals = texture(32, 48, seed=9, channels=3).expand(6, 3, 32, 48)
    a, b = torch.tensor([0.2, 0.4, 0.6]), torch.tensor([0.3, 0.1, 0.9])
    outputs = torch.stack(
        [(a if t % 2 == 0 else b).view(3, 1, 1).expand(3, 32, 48) for t in range(6)]
    )
    error, per_frame = warping_error(outputs, originals)
    expected = float((a - b).square().sum())  # squared RGB distance of the two colours
    assert error == pytest.approx(expected, rel=1e-4)
    assert per_frame == pytest.approx([expected] * 5, rel=1e-4)
    value, frame_values = cdc(outputs)
    # d=1 pairs differ completely (JS = ln 2), d=2 and d=4 pairs are equal (JS = 0)
    assert value == pytest.approx(math.log(2) / 3)
    assert frame_values[0] == pytest.approx(math.log(2) / 3)  # frame 0 has d = 1, 2, 4
    assert js_divergence(np.array([1.0, 0.0]), np.array([0.5, 0.5])) == pytest.approx(
        0.5 * math.log(4 / 3) + 0.25 * math.log(2 / 3) + 0.25 * math.log(2)
    )


# --- evaluation --------------------------------------------------------------------------------


def test_evaluate_frames_table_json_and_plot(tmp_path: Path) -> None:
    from PIL import Image

    L, ab_true = moving_sequence(8, 48, 80, step=2, seed=10)
    rgb = lab_to_rgb(torch.cat([L, ab_true], dim=1))
    for t, frame in enumerate(rgb):
        image = (frame.permute(1, 2, 0) * 255).round().byte().numpy()
        Image.fromarray(image).save(tmp_path / f"{t:05d}.png")
    frames, rate = read_clip(tmp_path, max_frames=6)
    assert len(frames) == 6 and frames[0].shape == (48, 80, 3) and rate == 25

    counter = iter(range(1000))

    def colorize(L_batch: torch.Tensor) -> torch.Tensor:
        g = torch.Generator().manual_seed(next(counter))
        flick = torch.randn(L_batch.shape[0], 2, 1, 1, generator=g) * 10
        return torch.cat([L_batch - 50.0, 50.0 - L_batch], dim=1) * 0.3 + flick

    result = evaluate_frames(
        frames,
        colorize_fn=colorize,
        working_short_side=32,
        options_list=[
            TemporalOptions(flow="dis"),
            TemporalOptions(flow="dis", mode="bidirectional"),
        ],
    )
    assert result.working_size == (32, 64)  # the film pipeline's rounding (multiples of 32)
    assert [v.label for v in result.variants] == [
        "per-frame", "dis/forward", "dis/bidirectional", GREY_LABEL, ORIGINAL_LABEL
    ]
    original = result.variants[-1]
    assert math.isnan(original.psnr) and original.warping_error < base_floor_bound(result)
    base, forward = result.variants[0], result.variants[1]
    assert forward.warping_error < base.warping_error
    # steady (zero) chroma is the floor: below the stabilised output, with a real PSNR
    grey = result.variant(GREY_LABEL)
    assert grey.warping_error < forward.warping_error and not math.isnan(grey.psnr)
    ratios = result.ratios("dis/forward")
    assert ratios["warping_error"] == pytest.approx(forward.warping_error / base.warping_error)
    assert 0.0 < ratios["excess_warping_error"] < ratios["warping_error"] < 1.0
    assert result.ratios("per-frame")["excess_warping_error"] == pytest.approx(1.0)
    assert result.ratios(GREY_LABEL)["excess_warping_error"] == pytest.approx(0.0, abs=1e-9)
    assert len(forward.per_frame_warping_error) == 5 and len(forward.per_frame_psnr) == 6
    table = result.format_table()
    assert "dis/forward" in table and "warp err" in table
    assert result.to_dict()["variants"][1]["label"] == "dis/forward"
    plot = tmp_path / "flicker.png"
    plot_flicker(result, plot)
    assert Image.open(plot).size[0] > 0
    # rows named by the caller: two presets' forward stages side by side
    named = evaluate_frames(frames[:3], colorize_fn=colorize, working_short_side=32,
                            options_list=[TemporalOptions(flow="dis"),
                                          TemporalOptions(flow="dis", flow_downscale=2)],
                            labels=["dis/forward", "dis/forward (half-size flow)"])
    assert [v.label for v in named.variants][1:3] == ["dis/forward", "dis/forward (half-size flow)"]
    with pytest.raises(ValueError, match="got 1 labels for 2 options"):
        evaluate_frames(frames[:3], colorize_fn=colorize, working_short_side=32,
                        options_list=[TemporalOptions(), TemporalOptions()], labels=["one"])


def base_floor_bound(result) -> float:
    """The original clip flickers less than the per-frame colouring with random colour jumps."""
    return result.variants[0].warping_error


def test_read_clip_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"clip not found: .*missing\.mp4"):
        read_clip(tmp_path / "missing.mp4")
    with pytest.raises(InputError, match="no frames could be read from"):
        read_clip(tmp_path)
    assert working_size((1080, 1920), 224) == (224, 384)


def test_read_clip_decodes_a_video_file(tmp_path: Path) -> None:
    from conftest import make_clip

    clip = make_clip(tmp_path / "clip.mp4", size=(64, 48), n=10, audio=False)
    frames, rate = read_clip(clip, max_frames=7)
    assert len(frames) == 7 and rate == 25
    assert frames[0].shape == (48, 64, 3) and frames[0].dtype == np.uint8
