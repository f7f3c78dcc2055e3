"""The steering stage: carry keyframe colour forward and backward through each shot, re-anchored
to the keyframe, and let the guided model fill what the flow loses.

Per shot (the manifest's, or found by the temporal stage's cut tests), with keyframes K:

1. *Propagated colour*: two chains, forward from the last keyframe before each frame and
   backward from the next one after it. Each step warps the chain along the frame-to-frame flow
   (trust: forward-backward consistency x lightness after warping), and is re-anchored by
   warping the keyframe itself straight onto the frame along a direct flow (so colour does not
   drift over a long shot). The two chains join by their confidences: ``prop``, ``acc``.
2. *Guidance* for the model: ``prop`` where ``acc`` is high; elsewhere the colour of the best
   content match in the shot's keyframes and reference photos (encoder features); the rest is
   the model's own colour.
3. *Output*: ``acc * prop + (1 - acc) * stab`` where ``stab`` is the guided prediction
   stabilised along the flow as the forward temporal stage does. Nothing crosses a cut.

Frames are buffered per shot (bounded: a long shot is processed in segments that pass their
state on), so memory does not grow with the film.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

import torch

from vidcolor.colorize import Colorizer, rotate
from vidcolor.errors import InputError, ModelError
from vidcolor.models import GUIDED_ARCHITECTURES
from vidcolor.models import bins as abbins
from vidcolor.models.exemplar import guide_tensor
from vidcolor.steer.guides import (
    Hints,
    SteerImage,
    check_aspect,
    fit,
    hint_guidance,
    spread_hints,
)
from vidcolor.steer.match import MatchTarget, features_from_skips, match_maps, prepare_reference
from vidcolor.temporal.api import TemporalItem
from vidcolor.temporal.cuts import MAX_UNEXPLAINED_FRACTION
from vidcolor.temporal.flow import FlowBackend
from vidcolor.temporal.stabilize import _FlowStage, _Link, blend
from vidcolor.temporal.warp import backward_warp

log = logging.getLogger("vidcolor")

CHAIN_DECAY = 0.995
"""Trust in chained colour is the weakest link's along its path (noise and interpolation do not
compound) times this per frame."""
TARGET_POOL = 2
"""Keyframes are matched on a grid twice as coarse as the frames' (a quarter of the cost)."""
ANCHOR_EVERY = 2
"""Re-anchor to the keyframe along a direct flow every this many frames (the chain carries the
anchored colour in between): half the cost of the direct flows, no measurable drift."""
ANCHOR_AGREEMENT = 8.0
"""ab difference (|da| + |db|) at which a fully confident chain cuts the anchor's trust to 1/e."""
BUFFER_BYTES = 2**30
"""Memory budget of a shot's buffered frames (working-resolution state and full frames)."""
MIN_BUFFER, MAX_BUFFER = 16, 300
_EPS = 1e-4


@dataclass
class ShotSteer:
    """What steers one shot (frames inclusive, film frame numbers)."""

    first: int
    last: int
    keyframes: list[tuple[SteerImage, int]] = field(default_factory=list)
    """Coloured frames and their frame numbers (``plan.build_plan`` finds missing ones)."""
    references: list[SteerImage] = field(default_factory=list)
    hints: list[Hints] = field(default_factory=list)
    saturation: float = 1.0


@dataclass
class SteerPlan:
    """Everything that steers a film: per-shot entries (from a manifest) and film-wide ones."""

    shots: list[ShotSteer] | None = None
    """None: shots are found by cut detection."""
    keyframes: list[tuple[SteerImage, int]] = field(default_factory=list)
    """Film-wide keyframes with their frame numbers (``--reference`` images that are a frame
    of the film): each steers only the shot that holds its frame."""
    references: list[SteerImage] = field(default_factory=list)
    """Film-wide reference photos (``--reference`` images that are no frame of the film):
    they lend their colours by content to every shot."""
    hints: list[Hints] = field(default_factory=list)
    auto_keyframes: bool = False
    """Shots without steering propagate their most confident frame (item 6)."""

    @property
    def needs_guidance(self) -> bool:
        per_shot = any(s.keyframes or s.references or s.hints for s in self.shots or [])
        return per_shot or bool(self.keyframes or self.references or self.hints)


@dataclass
class _Frame:
    item: TemporalItem
    L: torch.Tensor
    """(1, 1, h, w) on the stage device."""
    link: _Link | None = None
    """Flow and confidences from the previous frame of the shot (None at the shot's start)."""

    @property
    def f_cp(self) -> torch.Tensor | None:
        """Flow from this frame to the previous one."""
        return self.link.cur_to_prev if self.link is not None else None


@dataclass
class _Key:
    index: int
    """Film frame number of the keyframe."""
    L: torch.Tensor
    ab: torch.Tensor


@dataclass
class _Carry:
    """State a shot's next segment inherits from the one before."""

    out: torch.Tensor
    prop: torch.Tensor
    acc: torch.Tensor
    key: _Key | None
    shot: int
    L: torch.Tensor
    """Lightness of the segment's last frame (the next frame links to it)."""
    targets: list[MatchTarget]


class SteerStage(_FlowStage):
    """Temporal-stage protocol (push/flush, in order, each item once); it runs the model itself."""

    predicts = True
    """The pipeline hands over frames without a prediction: this stage runs the model."""

    def __init__(
        self,
        *,
        backend: FlowBackend,
        colorizer: Colorizer,
        plan: SteerPlan,
        strength: float,
        cut_threshold: float,
        device: torch.device,
        rotation: int = 0,
        frame_hw: tuple[int, int],
        batch_size: int = 4,
        saturation: float = 1.0,
        frame_bytes: int = 0,
        automatic: Colorizer | None = None,
    ) -> None:
        """``automatic``: the model for shots nothing steers (default: ``colorizer`` unguided)."""
        super().__init__(
            backend=backend, mode="steer", strength=strength, cut_threshold=cut_threshold,
            device=device,
        )
        guided = colorizer.config.get("arch") in GUIDED_ARCHITECTURES
        if plan.needs_guidance and not guided:
            raise ModelError(
                f"steering with keyframes, references or hints needs a guided model "
                f"(architecture {', '.join(GUIDED_ARCHITECTURES)}); {colorizer.name} is not one: "
                "use the shipped vidcolor-exemplar (--steer-model)"
            )
        self.colorizer = colorizer
        self.automatic = automatic
        self.guided = guided
        self.plan = plan
        self.rotation = rotation
        self.frame_hw = frame_hw
        """Upright (height, width) of the full frames, for guides' aspect checks."""
        self.batch_size = batch_size
        self.saturation = saturation
        self.frame_bytes = frame_bytes
        self._frames: list[_Frame] = []
        self._shot = 0
        self._carry: _Carry | None = None
        self._max_buffer: int | None = None
        self._targets: dict[tuple[int, int], list[MatchTarget]] = {}
        self._film_targets: list[MatchTarget] | None = None
        self._checked: set[int] = set()
        self.keyframes_used: list[tuple[int, str]] = []
        """(frame, what) of every keyframe the stage anchored to, for logs and tests."""

    # ------------------------------------------------------------------ protocol
    def push(self, item: TemporalItem) -> list[TemporalItem]:
        """Buffer ``item``; returns the frames of any shot (or segment) now complete."""
        L, _ = self._prepare(item)
        ready: list[TemporalItem] = []
        frame = _Frame(item=item, L=L)
        prev = self._frames[-1] if self._frames else None
        has_prev = prev is not None or self._carry is not None
        new_shot = self._boundary(item, L, has_prev=has_prev)
        if not new_shot and has_prev:
            L_prev = prev.L if prev is not None else self._carry.L
            link = self._link(L_prev, L_prev[:, :0], L, both=True, trust=True)
            if self.plan.shots is None and link.occluded > MAX_UNEXPLAINED_FRACTION:
                self._mark_cut(item)
                new_shot = True
            else:
                frame.link = link
        if new_shot:
            ready += self._process(final=True)
            self._shot += 1
            self._carry = None
        self._frames.append(frame)
        if len(self._frames) >= self._buffer_limit(L):
            ready += self._process(final=False)
        return ready

    def flush(self) -> list[TemporalItem]:
        """End of film: process what is buffered and reset."""
        ready = self._process(final=True)
        self._carry = None
        self._shot = 0
        self._reset()
        return ready

    # ------------------------------------------------------------------ shots
    def _boundary(self, item: TemporalItem, L: torch.Tensor, *, has_prev: bool) -> bool:
        """Does ``item`` start a new shot (manifest, or the histogram test)?"""
        if self.plan.shots is not None:
            shots = self.plan.shots
            if item.index > shots[-1].last:
                raise InputError(
                    f"frame {item.index} is past the manifest's last shot (ends at frame "
                    f"{shots[-1].last}): the manifest belongs to another film; re-make it with "
                    "`vidcolor shots`"
                )
            starts = any(s.first == item.index for s in shots) and item.index > 0
            if starts:
                self._mark_cut(item)
            return starts
        return self._starts_shot(item, L, has_prev=has_prev)

    def _shot_steer(self, first_index: int) -> ShotSteer:
        if self.plan.shots is not None:
            for s in self.plan.shots:
                if s.first <= first_index <= s.last:
                    return s
        return ShotSteer(first=first_index, last=first_index)

    def _buffer_limit(self, L: torch.Tensor) -> int:
        if self._max_buffer is None:
            per = int(L.numel()) * 4 * 16 + self.frame_bytes
            self._max_buffer = max(MIN_BUFFER, min(MAX_BUFFER, BUFFER_BYTES // max(1, per)))
        return self._max_buffer

    # ------------------------------------------------------------------ model
    def _predict(
        self,
        L: torch.Tensor,
        g_ab: torch.Tensor | None = None,
        g_conf: torch.Tensor | None = None,
        targets: list[MatchTarget] | None = None,
        *,
        with_confidence: bool = False,
        use_match: bool = False,
        model: Colorizer | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The model on coded-orientation L (B, 1, h, w) with optional guidance; returns ab and
        (if asked) the mean bin confidence of each frame. Where a reference matches with good
        confidence (and ``use_match``), its colour replaces the prediction in proportion."""
        net = (model or self.colorizer).model
        dev = (model or self.colorizer).device
        k = self.rotation
        Lu = rotate(L, k).to(dev)
        kwargs = {}
        found: list[tuple[torch.Tensor, torch.Tensor]] = []
        if self.guided and model is None and (g_ab is not None or targets):
            if g_ab is None:
                g_ab = L.new_zeros(L.shape[0], 2, *L.shape[-2:])
                g_conf = L.new_zeros(L.shape[0], 1, *L.shape[-2:])
            gu_ab, gu_conf = rotate(g_ab, k).to(dev), rotate(g_conf, k).to(dev)
            size = tuple(Lu.shape[-2:])

            def guide_fn(skips: list[torch.Tensor]) -> torch.Tensor:
                ab_, c_ = gu_ab, gu_conf
                if targets:
                    feats = features_from_skips(skips)
                    m_ab, m_c, m_sure = _best_match(feats, targets, size)
                    found.append((m_ab, m_sure))
                    c = c_ + (1.0 - c_) * m_c
                    ab_ = (c_ * ab_ + (1.0 - c_) * m_c * m_ab) / c.clamp_min(_EPS)
                    c_ = c
                return guide_tensor(ab_, c_)

            kwargs["guide_fn"] = guide_fn
        with torch.inference_mode():
            out = net(Lu, **kwargs)
        ab = out["ab"].float()
        if use_match and found:
            m_ab, m_sure = found[0]
            ab = ab + m_sure * (m_ab - ab)
        ab = rotate(ab, k, undo=True).to(self.device)
        conf = None
        if with_confidence and "logits" in out:
            conf = abbins.confidence(out["logits"].float()).mean((1, 2, 3))
        return ab, conf

    def _predict_batches(
        self, L: torch.Tensor, g_ab, g_conf, targets, *, model: Colorizer | None = None
    ) -> torch.Tensor:
        outs = []
        for i in range(0, L.shape[0], self.batch_size):
            sl = slice(i, i + self.batch_size)
            ab, _ = self._predict(
                L[sl], None if g_ab is None else g_ab[sl], None if g_conf is None else g_conf[sl],
                targets, use_match=True, model=model,
            )
            outs.append(ab)
        return torch.cat(outs)

    # ------------------------------------------------------------------ keyframes
    def _fit_image(self, image: SteerImage, size: tuple[int, int], *, what: str):
        """(L, ab, painted) of an upright picture at the coded working size."""
        if check_aspect(image, self.frame_hw, what=what) and id(image) not in self._checked:
            self._checked.add(id(image))
            log.info("%s: %s is %dx%d, the film %dx%d: rescaled", image.path, what,
                     image.size[1], image.size[0], self.frame_hw[1], self.frame_hw[0])
        upright = size[::-1] if self.rotation % 180 else size
        L, ab, painted = fit(image, upright)
        k = self.rotation
        return (rotate(L, k, undo=True), rotate(ab, k, undo=True), rotate(painted, k, undo=True))

    def _reference_target(self, image: SteerImage, size: tuple[int, int]) -> MatchTarget:
        """A reference photo at about the working size, upright, ready for matching."""
        h, w = image.size
        s = min(size) / min(h, w)
        rh, rw = max(32, round(h * s / 32) * 32), max(32, round(w * s / 32) * 32)
        L, ab, painted = fit(image, (rh, rw))
        with torch.inference_mode():
            return prepare_reference(
                self.colorizer.model, L.to(self.colorizer.device), ab.to(self.colorizer.device),
                painted.to(self.colorizer.device),
            )

    def _key_target(self, key: _Key) -> MatchTarget:
        k = self.rotation
        dev = self.colorizer.device
        with torch.inference_mode():
            return prepare_reference(
                self.colorizer.model, rotate(key.L, k).to(dev), rotate(key.ab, k).to(dev),
                pool=TARGET_POOL,
            )

    def _keys_for(
        self, frames: list[_Frame], steer: ShotSteer, targets: list[MatchTarget]
    ) -> list[_Key]:
        """Dense keyframes of this segment: painted frames, hint frames, matching --reference."""
        size = tuple(frames[0].L.shape[-2:])
        index0 = frames[0].item.index
        by_local: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        for (image, frame), what in [
            *((k, "keyframe") for k in steer.keyframes),
            *((k, "reference") for k in self.plan.keyframes),
        ]:
            local = frame - index0
            if 0 <= local < len(frames) and local not in by_local:
                _, ab, painted = self._fit_image(image, size, what=what)
                by_local[local] = (ab.to(self.device), painted.to(self.device))
        hints: dict[int, list[Hints]] = {}
        for h in [*steer.hints, *self.plan.hints]:
            if h.frame is None:
                raise InputError(f"{h.path}: hints name no frame")  # build_plan sets them
            if index0 <= h.frame < index0 + len(frames):
                hints.setdefault(h.frame - index0, []).append(h)
        keys = []
        for local in sorted(set(by_local) | set(hints)):
            L = frames[local].L
            ab, painted = by_local.get(local, (torch.zeros_like(L).expand(-1, 2, -1, -1), None))
            conf = painted if painted is not None else torch.zeros_like(L)
            if local in hints:  # a few clicks recolour the regions they fall in
                h_ab, h_conf = hint_guidance(hints[local], size, self._coded_hw())
                h_ab, h_conf = h_ab.to(self.device), h_conf.to(self.device)
                if painted is None and not targets:  # the automatic colours, clicks applied
                    base = self._predict(L, model=self.automatic)[0]
                else:
                    base = conf * ab + (1.0 - conf) * self._predict(L, ab, conf, targets)[0]
                s_ab, s_conf = spread_hints(L, base, h_ab, h_conf)
                ab = torch.where(h_conf > 0, h_ab, s_conf * s_ab + (1.0 - s_conf) * base)
                conf = torch.ones_like(conf)
            if float(conf.min()) < 1.0:  # partly painted, or hints: the model fills the rest
                filled, _ = self._predict(L, ab, conf, targets)
                ab = conf * ab + (1.0 - conf) * filled
            keys.append(_Key(frames[local].item.index, L, ab))
            what = "hints" if local in hints and local not in by_local else "keyframe"
            self.keyframes_used.append((frames[local].item.index, what))
        return keys

    def _coded_hw(self) -> tuple[int, int]:
        """Full frame (h, w) in the coded orientation (hints are given upright)."""
        return self.frame_hw[::-1] if self.rotation % 180 else self.frame_hw

    # ------------------------------------------------------------------ propagation
    def _anchor(self, key: _Key, frame: _Frame) -> tuple[torch.Tensor, torch.Tensor]:
        """The keyframe warped straight onto ``frame`` and the trust in it."""
        if key.L is frame.L:
            return key.ab, torch.ones_like(frame.L)
        link = self._link(key.L, key.ab, frame.L, both=False, trust=True)
        return link.ab_prev_warped, link.trust_cur

    def _chains(
        self, frames: list[_Frame], keys: list[_Key], carry: _Carry | None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Forward and backward chains from the keyframes, joined: (prop, acc) per frame."""
        n = len(frames)
        zero_ab = torch.zeros_like(frames[0].L).expand(-1, 2, -1, -1)
        zero_c = torch.zeros_like(frames[0].L)
        key_at = {k.index - frames[0].item.index: k for k in keys}
        fwd: list[tuple[torch.Tensor, torch.Tensor]] = []
        last_key = carry.key if carry is not None else None
        for t, f in enumerate(frames):
            if t in key_at:
                last_key = key_at[t]
                fwd.append((last_key.ab, torch.ones_like(zero_c)))
                continue
            prop, acc = zero_ab, zero_c
            src = fwd[t - 1] if t > 0 else ((carry.prop, carry.acc) if carry else None)
            if f.link is not None and src is not None and f.f_cp is not None:
                w = backward_warp(torch.cat([src[0], src[1]], 1), f.f_cp)
                prop, acc = w[:, :2], _carry(w[:, 2:], f.link.trust_cur)
            due = src is None or (
                last_key is not None and (f.item.index - last_key.index) % ANCHOR_EVERY == 0
            )
            if last_key is not None and due:
                anch, a = self._anchor(last_key, f)
                prop, acc = _join(anch, a, prop, acc)
            fwd.append((prop, acc))
        bwd: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * n
        next_key = None
        for t in range(n - 1, -1, -1):
            f = frames[t]
            if t in key_at:
                next_key = key_at[t]
                bwd[t] = (next_key.ab, torch.ones_like(zero_c))
                continue
            prop, acc = zero_ab, zero_c
            nxt = frames[t + 1] if t + 1 < n else None
            if nxt is not None and nxt.link is not None and bwd[t + 1] is not None:
                src = bwd[t + 1]
                w = backward_warp(torch.cat([src[0], src[1]], 1), nxt.link.prev_to_cur)
                conf = nxt.link.trust_prev if nxt.link.trust_prev is not None else zero_c
                prop, acc = w[:, :2], _carry(w[:, 2:], conf)
            due = nxt is None or (
                next_key is not None and (next_key.index - f.item.index) % ANCHOR_EVERY == 0
            )
            if next_key is not None and due:
                anch, a = self._anchor(next_key, f)
                prop, acc = _join(anch, a, prop, acc)
            bwd[t] = (prop, acc)
        props, accs = [], []
        for (pf, af), b in zip(fwd, bwd, strict=True):
            pb, ab_ = b if b is not None else (zero_ab, zero_c)
            acc = 1.0 - (1.0 - af) * (1.0 - ab_)
            prop = (af * pf + ab_ * pb) / (af + ab_).clamp_min(_EPS)
            props.append(prop)
            accs.append(acc)
        return props, accs

    # ------------------------------------------------------------------ a segment
    def _process(self, *, final: bool) -> list[TemporalItem]:
        frames = self._frames
        if not frames:
            return []
        self._frames = []
        steer = self._shot_steer(frames[0].item.index)
        size = tuple(frames[0].L.shape[-2:])
        targets = self._targets_for(steer, size)
        keys = self._keys_for(frames, steer, targets)
        carry = self._carry if self._carry is not None and self._carry.shot == self._shot else None
        L = torch.cat([f.L for f in frames])
        pred = None
        auto = (
            not keys and carry is None and not targets and self.plan.auto_keyframes
        )
        if auto:  # item 6: the frame the model is surest of becomes the shot's keyframe
            preds, confs = [], []
            for i in range(0, len(frames), self.batch_size):
                ab, c = self._predict(L[i : i + self.batch_size], with_confidence=True)
                preds.append(ab)
                confs.append(c if c is not None else torch.zeros(ab.shape[0]))
            pred = torch.cat(preds)
            best = int(torch.cat(confs).argmax())
            keys = [_Key(frames[best].item.index, frames[best].L, pred[best : best + 1])]
            self.keyframes_used.append((frames[best].item.index, "auto"))
        key_targets = [self._key_target(k) for k in keys] if self.guided else []
        if carry is not None and not keys:
            key_targets = carry.targets
        if keys or carry is not None:
            props, accs = self._chains(frames, keys, carry)
        else:
            props = accs = None
        if pred is None and props is None and not targets and not key_targets:
            pred = self._predict_batches(L, None, None, [], model=self.automatic)  # unsteered
        if pred is None:
            g_ab = torch.cat(props) if props is not None and self.guided else None
            g_conf = torch.cat(accs) if accs is not None and self.guided else None
            pred = self._predict_batches(L, g_ab, g_conf, targets + key_targets)
        out_items: list[TemporalItem] = []
        prev_out = carry.out if carry is not None else None
        sat = self.saturation * steer.saturation
        for t, f in enumerate(frames):
            p = pred[t : t + 1]
            if prev_out is not None and f.link is not None and f.f_cp is not None:
                chain = backward_warp(prev_out, f.f_cp)
                p = blend(chain, p, f.link.conf_cur * self.strength)
            if props is not None:
                p = accs[t] * props[t] + (1.0 - accs[t]) * p
            prev_out = p
            out_items.append(dataclasses.replace(f.item, ab=(p * sat)[0]))
        if not final:
            last_key = keys[-1] if keys else (carry.key if carry is not None else None)
            self._carry = _Carry(
                out=prev_out,
                prop=props[-1] if props is not None else prev_out,
                acc=accs[-1] if accs is not None else torch.zeros_like(frames[-1].L),
                key=last_key,
                shot=self._shot,
                L=frames[-1].L,
                targets=key_targets,
            )
        return out_items

    def _targets_for(self, steer: ShotSteer, size: tuple[int, int]) -> list[MatchTarget]:
        """Reference photos of this shot and of the film (prepared once)."""
        if not self.guided:
            return []
        key = (steer.first, steer.last)
        cached = self._targets.get(key)
        if cached is None:
            cached = [self._reference_target(r, size) for r in steer.references]
            self._targets[key] = cached
        if self._film_targets is None:
            self._film_targets = [self._reference_target(r, size) for r in self.plan.references]
        return cached + self._film_targets


def _carry(acc: torch.Tensor, trust: torch.Tensor) -> torch.Tensor:
    """Trust after one more step: the weakest link's along the path, times CHAIN_DECAY (taking
    the product instead, or fading edge colour carried into view, measured worse)."""
    return torch.minimum(acc, trust) * CHAIN_DECAY


def _join(
    anch: torch.Tensor, a: torch.Tensor, prop: torch.Tensor, acc: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Combine the anchored colour (trust ``a``) with the chained one (trust ``acc``).

    Where a confident chain disagrees with the anchor, the anchor's flow is the likelier to be
    wrong (a long jump): its trust falls with the colour difference (scale ANCHOR_AGREEMENT)."""
    diff = (anch - prop).abs().sum(1, keepdim=True)
    a = a * (1.0 - acc + acc * torch.exp(-diff / ANCHOR_AGREEMENT))
    rest = (1.0 - a) * acc
    total = a + rest
    return (a * anch + rest * prop) / total.clamp_min(_EPS), total


def _best_match(
    feats: torch.Tensor, targets: list[MatchTarget], size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per pixel, the most confident of several references' matches: (ab, guidance
    confidence, output confidence)."""
    best: list[torch.Tensor] | None = None
    for t in targets:
        maps = list(match_maps(feats, t, size))
        if best is None:
            best = maps
        else:
            better = maps[1] > best[1]
            best = [torch.where(better, new, old) for new, old in zip(maps, best, strict=True)]
    assert best is not None
    return best[0], best[1], best[2]


def describe_plan(plan: SteerPlan) -> str:
    """One line for the log: what steers the film."""
    parts = []
    if plan.shots is not None:
        n = sum(1 for s in plan.shots if s.keyframes or s.references or s.hints)
        parts.append(f"{len(plan.shots)} shots from the manifest, {n} steered")
    if plan.keyframes:
        frames = ", ".join(str(f) for _, f in plan.keyframes)
        parts.append(f"keyframe(s) at frame {frames}")
    if plan.references:
        parts.append(f"{len(plan.references)} reference photo(s)")
    if plan.hints:
        parts.append(f"{len(plan.hints)} hint file(s)")
    if plan.auto_keyframes:
        parts.append("automatic keyframes")
    return "; ".join(parts) or "nothing"
