"""Named pipeline presets (``pipelines/*.toml``): each setting's default is stated once, here."""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from vidcolor.errors import UsageError
from vidcolor.media.encode import CODECS
from vidcolor.names import PRECISIONS, RUNTIMES, shipped_dir
from vidcolor.temporal import (
    BACKWARD_CHECK_CHOICES,
    DIS_PRESET_CHOICES,
    FLOW_CHOICES,
    FLOW_DOWNSCALE_CHOICES,
    MODE_CHOICES,
    TemporalOptions,
)

DEFAULT_PIPELINE = "balanced"
_T = TemporalOptions()


@dataclass(frozen=True)
class PipelineSettings:
    """Everything a preset can set; a TOML preset names only what differs from these."""

    name: str = DEFAULT_PIPELINE
    description: str = ""
    working_short_side: int = field(default=224, metadata={
        "help": "short side, in pixels, at which the model runs", "flag": "--working-size"})
    batch_size: int = field(default=4, metadata={"help": "frames per model call",
                                                 "flag": "--batch-size"})
    flow: str = field(default=_T.flow, metadata={"help": "temporal stage flow backend",
                                                 "flag": "--flow"})
    temporal_mode: str = field(default=_T.mode, metadata={"help": "forward or bidirectional",
                                                          "flag": "--temporal-mode"})
    model_every: int = field(default=5, metadata={
        "help": "run the model on every n-th frame and carry its colour along the flow to the "
        "frames between, to save time (forward mode; bidirectional and --flow none model every "
        "frame; 1 = every frame)", "flag": "--model-every"})
    flow_downscale: int = field(default=2, metadata={
        "help": "compute the DIS flow and its occlusion test at 1/n of the working size "
        "(1 or 2; RAFT runs at the working size; the colour is still carried at it)"})
    backward_check: str = field(default="model", metadata={
        "help": "test flows against the reverse flow before carrying colour along them: all "
        "(every frame), model (frames with a fresh prediction) or none (forward mode; without "
        "it a frame needs one DIS flow instead of two, occlusions judged by the lightness after "
        "warping alone)"})
    dis_preset: str = field(default="ultrafast", metadata={
        "help": "OpenCV DIS preset: ultrafast, fast or medium"})
    temporal_strength: float = _T.strength
    temporal_window: int = _T.window
    cut_threshold: float = _T.cut_threshold
    codec: str = field(default="libx264", metadata={"help": "video encoder", "flag": "--codec"})
    crf: int = field(default=18, metadata={"help": "constant rate factor (x264/x265)",
                                           "flag": "--crf"})
    x264_preset: str = "veryfast"
    container: str = field(default="mp4", metadata={"help": "container of batch outputs"})
    saturation: float = field(default=1.0, metadata={
        "help": "chroma multiplier (1 = as trained)", "flag": "--saturation"})
    vivid: bool = field(default=False, metadata={
        "help": "film colour at the model's full strength, as a photo gets it, instead of "
        "fading what the model is unsure of toward grey (more colour, more wrong patches)",
        "flag": "--vivid"})
    precision: str = field(default="auto", metadata={
        "help": "model arithmetic: auto (bf16 where the CPU or GPU has it), bf16 or fp32",
        "flag": "--precision"})
    runtime: str = field(default="torch", metadata={
        "help": "model runtime of the film path: torch, or openvino (CPU; pip install "
        "'vidcolor[openvino]'; converted once per working size, then cached)",
        "flag": "--runtime"})
    auto_keyframes: bool = field(default=False, metadata={
        "help": "per shot, carry the frame the model is surest of through the shot",
        "flag": "--auto-keyframes"})

    def __post_init__(self) -> None:
        for f in fields(self):  # a TOML value of the wrong type: one line, not a Python error
            value, kind = getattr(self, f.name), type(f.default)
            ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                ok = True
            if not ok:
                what = {int: "whole number", float: "number", str: "text",
                        bool: "true or false"}[kind]
                raise UsageError(f"{setting_label(f.name)} must be a {what}, got {value!r}")
        if self.working_short_side < 32 or self.working_short_side % 8:
            raise UsageError(
                f"{setting_label('working_short_side')} must be a multiple of 8 and >= 32, "
                f"got {self.working_short_side}"
            )
        if self.model_every < 1:
            raise UsageError(f"{setting_label('model_every')} must be >= 1, got {self.model_every}")
        if self.flow_downscale not in FLOW_DOWNSCALE_CHOICES:
            raise UsageError(f"{setting_label('flow_downscale')} must be one of "
                             f"{', '.join(map(str, FLOW_DOWNSCALE_CHOICES))}, "
                             f"got {self.flow_downscale}")
        if self.batch_size < 1:
            raise UsageError(f"{setting_label('batch_size')} must be >= 1, got {self.batch_size}")
        for name, choices in (("flow", FLOW_CHOICES), ("temporal_mode", MODE_CHOICES),
                              ("codec", tuple(CODECS)), ("runtime", RUNTIMES),
                              ("precision", PRECISIONS), ("dis_preset", DIS_PRESET_CHOICES),
                              ("backward_check", BACKWARD_CHECK_CHOICES)):
            value = getattr(self, name)
            if value not in choices:
                raise UsageError(f"{setting_label(name)} must be one of {', '.join(choices)}, "
                                 f"got {value!r}")
        if not 0 <= self.crf <= 51:
            raise UsageError(f"{setting_label('crf')} must be in 0..51, got {self.crf}")
        if not 0.0 <= self.saturation <= 3.0:
            raise UsageError(f"{setting_label('saturation')} must be in [0, 3], "
                             f"got {self.saturation}")

    def temporal_options(
        self, *, device: str, flow_weights: Path | None = None, mode: str | None = None
    ) -> TemporalOptions:
        """The temporal stage's options from this preset (``mode`` in place of the preset's; the
        model runs on every frame where the stage is not forward)."""
        mode = mode or self.temporal_mode
        return TemporalOptions(
            flow=self.flow,
            mode=mode,
            strength=self.temporal_strength,
            model_every=self.model_every if mode == "forward" and self.flow != "none" else 1,
            window=self.temporal_window,
            cut_threshold=self.cut_threshold,
            flow_downscale=self.flow_downscale,
            backward_check=self.backward_check,
            dis_preset=self.dis_preset,
            flow_weights=flow_weights,
            device=device,
        )


def setting_label(name: str) -> str:
    """A setting as users meet it: its preset key and, if it has one, its command-line flag."""
    flag = {f.name: f.metadata.get("flag") for f in fields(PipelineSettings)}.get(name)
    return f"{flag} ({name} in a preset)" if flag else name


def pipelines_dir() -> Path:
    """Shipped presets: inside an installed wheel, else the repo's ``pipelines/``."""
    return shipped_dir("pipelines")


def available_pipelines() -> list[str]:
    """Names of the shipped presets."""
    return sorted(p.stem for p in pipelines_dir().glob("*.toml"))


def load_pipeline(
    name_or_path: str | Path = DEFAULT_PIPELINE, **overrides: Any
) -> PipelineSettings:
    """Read a preset by name or TOML path; keyword overrides (not None) win over the file."""
    p = Path(name_or_path)
    if p.suffix != ".toml":
        p = pipelines_dir() / f"{name_or_path}.toml"
        if not p.is_file():
            raise UsageError(
                f"unknown pipeline {str(name_or_path)!r}; shipped: "
                f"{', '.join(available_pipelines())}, or give a .toml file"
            )
    elif not p.is_file():
        raise UsageError(f"{p}: pipeline file not found")
    try:
        data = tomllib.loads(p.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{p}: not a valid pipeline TOML ({exc})") from exc
    known = {f.name for f in fields(PipelineSettings)}
    unknown = sorted(set(data) - known)
    if unknown:
        near = difflib.get_close_matches(unknown[0], sorted(known), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else f" (known: {', '.join(sorted(known))})"
        raise UsageError(f"{p}: unknown setting {unknown[0]!r}{hint}")
    data.setdefault("name", p.stem)
    try:
        settings = PipelineSettings(**data)
    except (TypeError, UsageError) as exc:
        raise UsageError(f"{p}: {exc}") from exc
    return replace(settings, **{k: v for k, v in overrides.items() if v is not None})
