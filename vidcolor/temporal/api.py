"""The temporal stage's data types: items in and out, options, and the stage protocol."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from vidcolor.errors import UsageError

if TYPE_CHECKING:  # torch only where tensors are made: `vidcolor --help` must not load it
    import torch

FLOW_CHOICES = ("auto", "raft", "raft_small", "raft_large", "dis", "none")
MODE_CHOICES = ("forward", "bidirectional")
DIS_PRESET_CHOICES = ("ultrafast", "fast", "medium")
FLOW_DOWNSCALE_CHOICES = (1, 2)
BACKWARD_CHECK_CHOICES = ("all", "model", "none")
DEFAULT_CUT_THRESHOLD = 0.3
"""Chi-square histogram distance (0 = same histogram, 1 = disjoint) that counts as a cut."""


@dataclass
class TemporalItem:
    """One frame through the stage; the stage replaces ``ab`` and passes the rest through."""

    index: int
    """Frame index in the film."""
    time: Fraction
    """Presentation time in seconds."""
    L: torch.Tensor
    """(1, h, w) lightness 0..100 at working resolution, float32, on the stage's device."""
    ab: torch.Tensor | None
    """(2, h, w) predicted ab in Lab units at working resolution; replaced by the stage. None on
    a frame the model skipped (``model_every``): the stage carries colour to it, or asks its
    ``predict`` for one where it cannot (a new shot)."""
    payload: object = None
    """Opaque, passed through untouched (the full-resolution frame)."""


@dataclass(frozen=True)
class TemporalOptions:
    """How the temporal stage runs; each default and help text lives here, once, for the CLI."""

    flow: str = field(
        default="auto",
        metadata={
            "help": "optical flow: auto (RAFT-small on CUDA with cached weights, else DIS), "
            "raft (= raft_small), raft_small, raft_large, dis, or none (no temporal stage)",
            "choices": FLOW_CHOICES,
        },
    )
    mode: str = field(
        default="forward",
        metadata={
            "help": "forward (no latency) or bidirectional (quality; latency of one window)",
            "choices": MODE_CHOICES,
        },
    )
    strength: float = field(
        default=0.95,
        metadata={"help": "0..1, how much to trust colour carried along the flow where confident"},
    )
    window: int = field(
        default=10,
        metadata={"help": "bidirectional window in frames (>= 2): latency and frames buffered"},
    )
    model_every: int = field(
        default=1,
        metadata={"help": "run the model on every n-th frame and carry its colour along the "
                  "flow to the frames between (forward mode; 1 = every frame)"},
    )
    flow_downscale: int = field(
        default=1,
        metadata={"help": "compute the DIS flow and its occlusion test at 1/n of the working "
                  "size (1 or 2; RAFT always runs at the working size); colour is still carried "
                  "at the full working size",
                  "choices": FLOW_DOWNSCALE_CHOICES},
    )
    backward_check: str = field(
        default="all",
        metadata={"help": "test flows against the reverse flow before carrying colour along "
                  "them: on every frame (all), only where a fresh prediction meets the carried "
                  "colour (model: a frame the model skipped blends two colours carried along "
                  "the same flow), or never (none); without it a frame needs one flow, not "
                  "two, and occlusions are judged by the lightness after warping alone "
                  "(forward mode)",
                  "choices": BACKWARD_CHECK_CHOICES},
    )
    dis_preset: str = field(
        default="fast",
        metadata={"help": "OpenCV DIS preset of the dis flow", "choices": DIS_PRESET_CHOICES},
    )
    cut_threshold: float = field(
        default=DEFAULT_CUT_THRESHOLD,
        metadata={"help": "shot-cut sensitivity: lightness-histogram chi-square distance (0..1]"},
    )
    flow_weights: Path | None = field(
        default=None,
        metadata={"help": "RAFT weights file (.pth state dict or .safetensors), not the cache"},
    )
    device: str = field(default="cpu", metadata={"help": "torch device of the stage's tensors"})

    def __post_init__(self) -> None:
        if self.flow not in FLOW_CHOICES:
            raise UsageError(f"flow must be one of {', '.join(FLOW_CHOICES)}, got {self.flow!r}")
        if self.mode not in MODE_CHOICES:
            raise UsageError(f"mode must be one of {', '.join(MODE_CHOICES)}, got {self.mode!r}")
        if not 0.0 <= self.strength <= 1.0:
            raise UsageError(f"strength must be in [0, 1], got {self.strength}")
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 2:
            raise UsageError(f"window must be an integer >= 2 frames, got {self.window!r}")
        every = self.model_every
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise UsageError(f"model_every must be a whole number >= 1, got {every!r}")
        if every > 1 and (self.mode != "forward" or self.flow == "none"):
            why = "a flow to carry colour along" if self.flow == "none" else "forward mode"
            raise UsageError(f"model_every {every} (skipping model frames) needs {why}; "
                             "set it to 1")
        if isinstance(self.flow_downscale, bool) or self.flow_downscale not in (
                FLOW_DOWNSCALE_CHOICES):
            raise UsageError(f"flow_downscale must be one of "
                             f"{', '.join(map(str, FLOW_DOWNSCALE_CHOICES))}, "
                             f"got {self.flow_downscale!r}")
        if self.backward_check not in BACKWARD_CHECK_CHOICES:
            raise UsageError(f"backward_check must be one of {', '.join(BACKWARD_CHECK_CHOICES)}, "
                             f"got {self.backward_check!r}")
        if self.dis_preset not in DIS_PRESET_CHOICES:
            raise UsageError(f"dis_preset must be one of {', '.join(DIS_PRESET_CHOICES)}, "
                             f"got {self.dis_preset!r}")
        if not 0.0 < self.cut_threshold <= 1.0:
            raise UsageError(f"cut threshold must be in (0, 1], got {self.cut_threshold}")
        if self.flow_weights is not None and not isinstance(self.flow_weights, Path):
            object.__setattr__(self, "flow_weights", Path(self.flow_weights))
        if self.device == "cpu":
            return
        import torch

        try:
            torch.device(self.device)
        except (RuntimeError, TypeError) as exc:
            raise UsageError(f"not a torch device: {self.device!r}") from exc


def option_default(name: str) -> object:
    """The default of a :class:`TemporalOptions` field (for CLI help text)."""
    for f in fields(TemporalOptions):
        if f.name == name:
            return None if f.default is MISSING else f.default
    raise KeyError(name)


def option_help(name: str) -> str:
    """Help text of a :class:`TemporalOptions` field, with its default appended."""
    for f in fields(TemporalOptions):
        if f.name == name:
            return f"{f.metadata.get('help', '')} (default: {f.default})"
    raise KeyError(name)


class TemporalStage(Protocol):
    """Streaming stabiliser: push items in film order, get finished items back in order."""

    name: str
    """Backend and mode actually used, e.g. 'dis/forward', 'raft_small/bidirectional', 'none'."""
    cuts: list[tuple[int, Fraction]]
    """Detected hard cuts: (index, time) of each frame that starts a new shot."""
    model_every: int
    """Items may come without ``ab`` except every ``model_every``-th (1: all need it)."""

    def push(self, item: TemporalItem) -> list[TemporalItem]:
        """Feed the next frame; returns the items now ready for output, in order."""
        ...

    def flush(self) -> list[TemporalItem]:
        """End of film: returns every item still buffered, in order, and resets the stage."""
        ...
