"""The stabiliser: carry earlier (and, bidirectionally, later) chroma along optical flow.

Forward mode, per frame t of a shot (no latency):
    f = flow(t -> t-1), b = flow(t-1 -> t)            on lightness at working resolution
    c = consistency(f, b) * exp(-|L_t - warp(L_{t-1}, f)| / sigma)
    ab_t = c*s * warp(ab_{t-1}, f) + (1 - c*s) * pred_t   with ab_{t-1} the previous *output*
Colour accumulates over time (less flicker) while the prediction keeps pulling it back (no drift).
``backward_check`` says where b and the consistency test are computed: on every frame ('all'),
on frames with their own prediction ('model'), or nowhere ('none'); elsewhere c is the
lightness term alone, and one flow a frame is enough.
With ``flow_downscale`` 2 the flows and the consistency test run on lightness shrunk twice and
are enlarged; the warps, the lightness term and the blend stay at working resolution.

Bidirectional mode runs that forward recursion plus the same recursion backwards in time from the
end of a window of W frames (starting from the forward track there), and combines the two tracks
per pixel by their confidences. Windows
overlap by W//2 frames: only the first W - W//2 frames of a full window are emitted, so every
emitted frame had at least W//2 frames of look-ahead, and the forward track runs on unbroken
across windows (no seam). Latency: up to W - 1 frames; at most W items are buffered.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.errors import DeviceError
from vidcolor.temporal.api import TemporalItem, TemporalOptions, TemporalStage
from vidcolor.temporal.cuts import MAX_UNEXPLAINED_FRACTION, CutDetector
from vidcolor.temporal.flow import FlowBackend, flow_pair, make_flow, resolve_flow_name
from vidcolor.temporal.warp import (
    backward_warp,
    consistency_from_warped,
    inside_mask,
    luminance_confidence,
    positive,
    remap_warp,
)

LUMA_SIGMA = 12.0
"""Lightness difference (L units) after warping at which confidence falls to 1/e; chosen with
``benchmarks/tune_temporal.py`` (6 left more flicker at no gain in PSNR)."""
BORDER_TRUST = 0.7
"""Trust in the edge colour for pixels that enter the frame (camera pans and zooms out)."""
LUMA_SLACK = 3.0
"""Lightness error (L units) that long-range carrying (steering) forgives at each step."""
CUT_LUMA_ERROR = 8.0
"""Lightness error (L units) after warping above which a pixel counts as unexplained."""
_EPS = 1e-3


@dataclass
class _Link:
    """Flows and confidences between a frame (cur) and the one before it (prev)."""

    prev_to_cur: torch.Tensor | None
    """The flow from prev to cur (None from the forward stage's shrunk flow, which needs none)."""
    conf_cur: torch.Tensor
    """(1, 1, h, w): trust in prev's colour warped onto cur."""
    conf_prev: torch.Tensor | None
    """(1, 1, h, w): trust in cur's colour warped onto prev (bidirectional only)."""
    ab_prev_warped: torch.Tensor
    """(1, 2, h, w): prev's ab (output or forward track) warped onto cur."""
    occluded: float
    """Fraction of cur's pixels the flow cannot explain: failing the forward-backward test
    *and* off in lightness after warping (flat, textureless areas fail only the first)."""
    cur_to_prev: torch.Tensor | None = None
    """The flow from cur to prev (what warps prev's colour onto cur)."""
    trust_cur: torch.Tensor | None = None
    """Like ``conf_cur`` but forgiving lightness errors up to LUMA_SLACK (noise, blur): the
    trust that colour carried over many frames (steering) survives this step."""
    trust_prev: torch.Tensor | None = None


def _cv2_resize(x: torch.Tensor, size: tuple[int, int], interpolation: int) -> torch.Tensor:
    """OpenCV's resize of a CPU (B, C, h, w) float32 tensor, a channel at a time: for one
    frame it is several times faster than torch's interpolate on a CPU."""
    src = x.detach().numpy()
    out = np.empty((*src.shape[:2], *size), np.float32)
    for b, c in np.ndindex(*src.shape[:2]):
        plane = np.ascontiguousarray(src[b, c])
        out[b, c] = cv2.resize(plane, (size[1], size[0]), interpolation=interpolation)
    return torch.from_numpy(out)


def shrink(L: torch.Tensor, n: int) -> torch.Tensor:
    """(B, C, h, w) averaged over n x n blocks to (ceil(h / n), ceil(w / n)) (area resize)."""
    h, w = L.shape[-2:]
    size = (max(1, -(-h // n)), max(1, -(-w // n)))
    if L.device.type == "cpu" and L.dtype == torch.float32:
        return _cv2_resize(L, size, cv2.INTER_AREA)
    return F.interpolate(L, size=size, mode="area")


def enlarge(x: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Bilinear (half-pixel) resize of (B, C, h', w') to ``size``."""
    size = (int(size[0]), int(size[1]))
    if x.device.type == "cpu" and x.dtype == torch.float32:
        return _cv2_resize(x, size, cv2.INTER_LINEAR)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def enlarge_flow(flow: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """A flow in pixels of a shrunk frame, resized to ``size`` and rescaled to its pixels."""
    h, w = flow.shape[-2:]
    scale = flow.new_tensor([size[1] / w, size[0] / h])  # half-pixel grids: sizes in ratio
    return enlarge(flow, size) * scale[None, :, None, None]


def blend(warped: torch.Tensor, pred: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``weight * warped + (1 - weight) * pred``."""
    return pred + weight * (warped - pred)


Predictor = Callable[[torch.Tensor], torch.Tensor]
"""The model on one frame: L (1, 1, h, w) -> ab (1, 2, h, w), for frames it skipped."""


class IdentityStage:
    """``flow='none'``: every item comes back at once, unchanged."""

    name = "none"
    model_every = 1

    def __init__(self) -> None:
        self.cuts: list[tuple[int, Fraction]] = []

    def push(self, item: TemporalItem) -> list[TemporalItem]:
        """Returns ``[item]`` untouched."""
        return [item]

    def flush(self) -> list[TemporalItem]:
        """Nothing is ever buffered."""
        return []


class _FlowStage:
    """Shared parts of the flow-based stages: input checks, cut detection, linking frames."""

    def __init__(
        self,
        *,
        backend: FlowBackend,
        mode: str,
        strength: float,
        cut_threshold: float,
        device: torch.device,
        luma_sigma: float = LUMA_SIGMA,
        flow_downscale: int = 1,
        backward_check: str = "all",
    ) -> None:
        self.backend = backend
        self.backward_check = backward_check
        self.luma_sigma = luma_sigma
        self.flow_downscale = flow_downscale
        self.name = f"{backend.name}/{mode}"
        self.strength = strength
        self.device = device
        self.cuts: list[tuple[int, Fraction]] = []
        self._detector = CutDetector(threshold=cut_threshold)
        self._size: tuple[int, int] | None = None
        self.model_every = 1

    def _prepare(self, item: TemporalItem) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Checks the item; returns its L (1, 1, h, w) and ab (1, 2, h, w, or None where the
        model skipped it) on the stage device."""
        L, ab = item.L, item.ab
        if ab is None and self.model_every == 1:
            raise ValueError(f"frame {item.index}: no ab given, and this stage needs every one")
        got = f"got {tuple(L.shape)} and {None if ab is None else tuple(ab.shape)}"
        bad_ab = ab is not None and (ab.dim() != 3 or ab.shape[0] != 2)
        if L.dim() != 3 or L.shape[0] != 1 or bad_ab:
            raise ValueError(f"frame {item.index}: expected L (1, h, w) and ab (2, h, w), {got}")
        if ab is not None and L.shape[1:] != ab.shape[1:]:
            raise ValueError(
                f"frame {item.index}: L is {L.shape[1]}x{L.shape[2]} but ab is "
                f"{ab.shape[1]}x{ab.shape[2]}"
            )
        size = (int(L.shape[1]), int(L.shape[2]))
        if self._size is not None and size != self._size:
            raise ValueError(
                f"frame {item.index} is {size[0]}x{size[1]}, earlier frames were "
                f"{self._size[0]}x{self._size[1]}; the working size must not change"
            )
        self._size = size
        dev, f32 = self.device, torch.float32
        pred = None if ab is None else ab.to(dev, f32).unsqueeze(0)
        return L.to(dev, f32).unsqueeze(0), pred

    def _starts_shot(self, item: TemporalItem, L: torch.Tensor, *, has_prev: bool) -> bool:
        """Histogram test against the previous frame (always run, to track it); records a cut."""
        cut = self._detector.update(L) and has_prev
        if cut:
            self.cuts.append((item.index, item.time))
        return cut

    def _mark_cut(self, item: TemporalItem) -> None:
        self.cuts.append((item.index, item.time))

    def _link(
        self,
        L_prev: torch.Tensor,
        ab_prev: torch.Tensor,
        L_cur: torch.Tensor,
        *,
        both: bool,
        trust: bool = False,
        fresh: bool = True,
    ) -> _Link:
        """Flows between consecutive frames, the confidence of warping along them, and
        ``ab_prev`` warped onto the current frame (one warp per direction);
        ``trust`` also fills the long-range trusts that steering carries colour by;
        ``fresh`` says the current frame has its own prediction (see ``backward_check``).

        With ``flow_downscale`` n > 1 the flows and their forward-backward test run on
        lightness shrunk n times; flows and test are then enlarged, and the colour is warped
        and the lightness compared at the full working size."""
        n = self.flow_downscale
        check = self.backward_check == "all" or (self.backward_check == "model" and fresh)
        if not (check or both or trust):
            return self._link_one_way(L_prev, ab_prev, L_cur)
        if n == 1:
            f_cp, f_pc = flow_pair(self.backend, L_cur, L_prev)
            onto_cur = remap_warp(f_pc, L_prev, ab_prev, flow=f_cp)
            valid = consistency_from_warped(f_cp, onto_cur[:, :2])
            L_onto_cur, ab_warped = onto_cur[:, 2:3], onto_cur[:, 3:]
            unexplained = positive((L_cur - L_onto_cur).abs() - CUT_LUMA_ERROR)
            occluded = float(((1.0 - valid) * unexplained).mean())
        else:
            Lc, Lp = shrink(L_cur, n), shrink(L_prev, n)
            f_cp_s, f_pc_s = flow_pair(self.backend, Lc, Lp)
            check = remap_warp(f_pc_s, Lp, flow=f_cp_s)
            valid_s = consistency_from_warped(f_cp_s, check[:, :2])
            unexplained = positive((Lc - check[:, 2:3]).abs() - CUT_LUMA_ERROR)
            occluded = float(((1.0 - valid_s) * unexplained).mean())
            size = L_cur.shape[-2:]
            f_cp = enlarge_flow(f_cp_s, size)
            f_pc = enlarge_flow(f_pc_s, size) if both or trust else None  # unused otherwise
            onto_cur = remap_warp(L_prev, ab_prev, flow=f_cp)
            L_onto_cur, ab_warped = onto_cur[:, :1], onto_cur[:, 1:]
            valid = enlarge(valid_s, size)
        conf_cur = valid * luminance_confidence(L_cur, L_onto_cur, sigma=self.luma_sigma)
        trust_cur = conf_prev = trust_prev = None
        if trust:
            trust_cur = self._carry_valid(valid, f_cp) * self._trust(L_cur, L_onto_cur)
        if both:
            if n == 1:
                onto_prev = remap_warp(f_cp, L_cur, flow=f_pc)
                valid_prev = consistency_from_warped(f_pc, onto_prev[:, :2])
                L_onto_prev = onto_prev[:, 2:3]
            else:
                check = remap_warp(f_cp_s, flow=f_pc_s)
                valid_prev = enlarge(consistency_from_warped(f_pc_s, check), size)
                L_onto_prev = remap_warp(L_cur, flow=f_pc)
            lum_prev = luminance_confidence(L_prev, L_onto_prev, sigma=self.luma_sigma)
            conf_prev = valid_prev * lum_prev
            if trust:
                trust_prev = self._carry_valid(valid_prev, f_pc) * self._trust(
                    L_prev, L_onto_prev
                )
        return _Link(
            prev_to_cur=f_pc,
            conf_cur=conf_cur,
            conf_prev=conf_prev,
            ab_prev_warped=ab_warped,
            occluded=occluded,
            cur_to_prev=f_cp,
            trust_cur=trust_cur,
            trust_prev=trust_prev,
        )

    def _link_one_way(
        self, L_prev: torch.Tensor, ab_prev: torch.Tensor, L_cur: torch.Tensor
    ) -> _Link:
        """:meth:`_link` without the reverse flow (``backward_check``): a pixel is
        trusted by its lightness after warping alone, and counts as unexplained (for the cut
        test) when that lightness is off by more than CUT_LUMA_ERROR beyond the frame's mean
        change, so that a fade or a flash is not taken for a cut."""
        n = self.flow_downscale
        if n == 1:
            f_cp = self.backend(L_cur, L_prev)
            inside = inside_mask(f_cp)
        else:
            f_cp_s = self.backend(shrink(L_cur, n), shrink(L_prev, n))
            f_cp = enlarge_flow(f_cp_s, L_cur.shape[-2:])
            inside = enlarge(inside_mask(f_cp_s), L_cur.shape[-2:])
        onto_cur = remap_warp(L_prev, ab_prev, flow=f_cp)
        L_onto_cur = onto_cur[:, :1]
        diff = L_cur - L_onto_cur
        unexplained = positive((diff - diff.mean()).abs_() - CUT_LUMA_ERROR)
        lightness = luminance_confidence(L_cur, L_onto_cur, sigma=self.luma_sigma)
        return _Link(
            prev_to_cur=None,
            conf_cur=inside * lightness,
            conf_prev=None,
            ab_prev_warped=onto_cur[:, 1:],
            occluded=float(unexplained.mean()),
            cur_to_prev=f_cp,
        )

    @staticmethod
    def _carry_valid(valid: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        """Consistency for long-range carrying: a pixel the camera brings into view (its flow
        leaves the frame) keeps BORDER_TRUST of the colour at the frame's edge."""
        return valid + (1.0 - inside_mask(flow)) * BORDER_TRUST

    def _trust(self, L: torch.Tensor, L_warped: torch.Tensor) -> torch.Tensor:
        """``exp(-max(0, |L - L_warped| - LUMA_SLACK) / sigma)``."""
        return torch.exp(-((L - L_warped).abs() - LUMA_SLACK).clamp_min(0.0) / self.luma_sigma)

    def _reset(self) -> None:
        self._detector.reset()
        self._size = None


class ForwardStage(_FlowStage):
    """Causal stabiliser: each item is returned as soon as it is pushed.

    With ``model_every`` n > 1 only every n-th item needs a prediction: the others get the last
    prediction carried along the flow, and ``predict`` is called for one that starts a shot."""

    def __init__(
        self, *, model_every: int = 1, predict: Predictor | None = None, **kwargs: object
    ) -> None:
        super().__init__(mode="forward", **kwargs)  # type: ignore[arg-type]
        self.model_every = model_every
        self.predict = predict
        self._prev: tuple[torch.Tensor, torch.Tensor] | None = None
        self._pred: torch.Tensor | None = None
        """The latest prediction, or the one carried to the latest frame (model_every > 1)."""

    def push(self, item: TemporalItem) -> list[TemporalItem]:
        """Stabilise ``item`` against the previous output and return it."""
        L, pred = self._prepare(item)
        out = None
        new_shot = self._starts_shot(item, L, has_prev=self._prev is not None)
        if self._prev is not None and not new_shot:
            L_prev, ab_prev = self._prev
            carry = pred is None and self._pred is not None
            # one warp takes the previous output and its prediction along the flow
            link = self._link(L_prev, torch.cat([ab_prev, self._pred], 1) if carry else ab_prev,
                              L, both=False, fresh=pred is not None)
            if link.occluded > MAX_UNEXPLAINED_FRACTION:
                self._mark_cut(item)
            else:
                warped = link.ab_prev_warped[:, :2]
                if pred is None:
                    pred = link.ab_prev_warped[:, 2:]
                out = blend(warped, pred, link.conf_cur * self.strength)
        if out is None:
            out = pred = pred if pred is not None else self._predict(item, L)
        self._prev = (L, out)
        self._pred = pred
        return [dataclasses.replace(item, ab=out[0])]

    def _predict(self, item: TemporalItem, L: torch.Tensor) -> torch.Tensor:
        """The model's ab for a skipped frame that starts a shot (nothing to carry to it)."""
        if self.predict is None:
            raise ValueError(f"frame {item.index} starts a shot but came without ab, and the "
                             "stage has no predict function")
        return self.predict(L).to(self.device, torch.float32)

    def flush(self) -> list[TemporalItem]:
        """Nothing is buffered; resets the state for a new film."""
        self._prev = self._pred = None
        self._reset()
        return []


@dataclass
class _Slot:
    """A buffered frame of the bidirectional stage."""

    item: TemporalItem
    L: torch.Tensor
    pred: torch.Tensor
    fwd: torch.Tensor
    """Forward-track ab (1, 2, h, w)."""
    fwd_conf: torch.Tensor | None = None
    to_next: torch.Tensor | None = None
    """Flow to the next frame of the same shot, once it has arrived."""
    bwd_conf: torch.Tensor | None = None


class BidirectionalStage(_FlowStage):
    """Forward and backward tracks over overlapping windows of ``window`` frames."""

    def __init__(self, *, window: int, **kwargs: object) -> None:
        super().__init__(mode="bidirectional", **kwargs)  # type: ignore[arg-type]
        self.window = window
        self.overlap = window // 2
        self._slots: list[_Slot] = []

    def push(self, item: TemporalItem) -> list[TemporalItem]:
        """Buffer ``item``; returns the frames whose window is complete."""
        L, pred = self._prepare(item)
        ready: list[TemporalItem] = []
        slot = _Slot(item=item, L=L, pred=pred, fwd=pred)
        if self._starts_shot(item, L, has_prev=bool(self._slots)):
            ready += self._emit(len(self._slots))
        elif self._slots:
            prev = self._slots[-1]
            link = self._link(prev.L, prev.fwd, L, both=True)
            if link.occluded > MAX_UNEXPLAINED_FRACTION:
                self._mark_cut(item)
                ready += self._emit(len(self._slots))
            else:
                prev.to_next, prev.bwd_conf = link.prev_to_cur, link.conf_prev
                slot.fwd_conf = link.conf_cur
                slot.fwd = blend(link.ab_prev_warped, pred, link.conf_cur * self.strength)
        self._slots.append(slot)
        if len(self._slots) >= self.window:
            ready += self._emit(len(self._slots) - self.overlap)
        return ready

    def flush(self) -> list[TemporalItem]:
        """Emit every buffered frame (no look-ahead left) and reset for a new film."""
        ready = self._emit(len(self._slots))
        self._reset()
        return ready

    def _emit(self, count: int) -> list[TemporalItem]:
        """Backward pass over the buffer, then combine and release the first ``count`` slots."""
        slots = self._slots
        if not slots:
            return []
        # The backward track starts from the newest frame's forward track, not its raw
        # prediction: a raw start would let one frame's colour dominate each window, and the
        # colour would then jump from window to window.
        bwd = slots[-1].fwd
        tracks = [bwd]
        for slot in reversed(slots[:-1]):
            if slot.to_next is None or slot.bwd_conf is None:
                bwd = slot.pred
            else:
                warped = backward_warp(bwd, slot.to_next)
                bwd = blend(warped, slot.pred, slot.bwd_conf * self.strength)
            tracks.append(bwd)
        tracks.reverse()
        ready = []
        for slot, bwd in zip(slots[:count], tracks[:count], strict=True):
            ready.append(dataclasses.replace(slot.item, ab=self._combine(slot, bwd)[0]))
        del slots[:count]
        return ready

    def _combine(self, slot: _Slot, bwd: torch.Tensor) -> torch.Tensor:
        """Per-pixel mean of the two tracks weighted by their confidences (prediction if none)."""
        zero = torch.zeros_like(slot.pred[:, :1])
        cf = slot.fwd_conf if slot.fwd_conf is not None else zero
        cb = slot.bwd_conf if slot.bwd_conf is not None else zero
        return (cf * slot.fwd + cb * bwd + _EPS * slot.pred) / (cf + cb + _EPS)


def make_temporal_stage(
    options: TemporalOptions, *, predict: Predictor | None = None
) -> TemporalStage:
    """Build the stage ``options`` ask for; 'auto' resolves here and ``stage.name`` says to what.

    ``predict`` colours a frame the model skipped (``options.model_every`` > 1) that starts a
    shot; the stage then needs ``ab`` only on every ``model_every``-th item."""
    if options.flow == "none":
        return IdentityStage()
    device = torch.device(options.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"temporal stage device is {options.device!r} but CUDA is unavailable")
    name = resolve_flow_name(options.flow, device=options.device, weights_file=options.flow_weights)
    downscale = options.flow_downscale if name == "dis" else 1  # RAFT: tuned at full size
    backend = make_flow(name, device=options.device, weights_file=options.flow_weights,
                        dis_preset=options.dis_preset, input_scale=downscale)
    common = {
        "backend": backend,
        "strength": options.strength,
        "cut_threshold": options.cut_threshold,
        "device": device,
        "flow_downscale": downscale,
        "backward_check": options.backward_check,
    }
    if options.mode == "bidirectional":
        return BidirectionalStage(window=options.window, **common)
    return ForwardStage(model_every=options.model_every, predict=predict, **common)


def run_stage_on_sequence(
    stage: TemporalStage, L_seq: torch.Tensor, ab_seq: torch.Tensor, *, start_index: int = 0
) -> torch.Tensor:
    """Run a stage over a whole (T, 1, h, w) / (T, 2, h, w) sequence; returns (T, 2, h, w) ab.

    As the film pipeline does, a stage with ``model_every`` n gets ``ab`` only on frames whose
    index (from ``start_index``) is a multiple of n, and asks for others where it must. Times
    are taken as index / 25 s. Checks the stage returns every frame exactly once, in order.
    """
    if L_seq.shape[0] != ab_seq.shape[0]:
        raise ValueError(f"got {L_seq.shape[0]} L frames but {ab_seq.shape[0]} ab frames")
    every = getattr(stage, "model_every", 1)
    out: list[TemporalItem] = []
    for t in range(L_seq.shape[0]):
        index = start_index + t
        given = ab_seq[t] if index % every == 0 else None
        if given is None:
            stage.predict = lambda L, t=t: ab_seq[t : t + 1]  # type: ignore[attr-defined]
        item = TemporalItem(index=index, time=Fraction(index, 25), L=L_seq[t], ab=given)
        out += stage.push(item)
    out += stage.flush()
    indices = [it.index for it in out]
    expected = list(range(start_index, start_index + L_seq.shape[0]))
    if indices != expected:
        raise RuntimeError(f"stage {stage.name} returned frames {indices}, expected {expected}")
    return torch.stack([it.ab for it in out]) if out else ab_seq.new_zeros(ab_seq.shape)
