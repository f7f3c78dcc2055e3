"""The options of each command, one frozen dataclass per command, each default stated once.
No torch here: the command line builds its parsers from these before anything heavy loads."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from vidcolor.errors import UsageError
from vidcolor.names import DEFAULT_MODEL, STEER_MODEL
from vidcolor.presets import DEFAULT_PIPELINE, PipelineSettings, load_pipeline


@dataclass(frozen=True)
class ColorizeOptions:
    """Options of ``vidcolor INPUT -o OUTPUT``; None means 'as the pipeline preset says'."""

    model: str = DEFAULT_MODEL
    pipeline: str = DEFAULT_PIPELINE
    device: str = "auto"
    flow: str | None = None
    flow_weights: Path | None = None
    temporal_mode: str | None = None
    batch_size: int | None = None
    working_short_side: int | None = None
    model_every: int | None = None
    codec: str | None = None
    crf: int | None = None
    saturation: float | None = None
    vivid: bool | None = None
    precision: str | None = None
    runtime: str | None = None
    start: Fraction | None = None
    duration: Fraction | None = None
    overwrite: bool = False
    quiet: bool = False
    shots: Path | None = None
    """A shot folder (``vidcolor shots``) whose manifest steers each shot."""
    references: tuple[Path, ...] = ()
    """Film-wide reference images: a frame of the film becomes its keyframe, others photos."""
    hints: tuple[Path, ...] = ()
    """Colour hint files (JSON with a frame number, or a sparse PNG named ``..._fNNNNNN``)."""
    auto_keyframes: bool | None = None
    steer_model: str = STEER_MODEL
    """The guided model used when anything steers the colour."""

    @property
    def steered(self) -> bool:
        """Whether keyframes, references or hints steer the colour."""
        return self.shots is not None or bool(self.references) or bool(self.hints)

    @property
    def model_for_film(self) -> str:
        """The guided steering model when anything steers, else ``model``."""
        return self.steer_model if self.steered else self.model

    def __post_init__(self) -> None:
        if self.start is not None and self.start < 0:
            raise UsageError(f"--start must be >= 0, got {float(self.start):g} s")
        if self.duration is not None and self.duration <= 0:
            raise UsageError(f"--duration must be > 0, got {float(self.duration):g} s")
        if self.shots is not None and (self.start is not None or self.duration is not None):
            raise UsageError(
                "--shots numbers the whole film's frames: drop --start/--duration (or use "
                "--reference, which finds its frame by lightness)"
            )

    def settings(self) -> PipelineSettings:
        """The preset with this command's overrides applied."""
        return load_pipeline(
            self.pipeline,
            flow=self.flow,
            temporal_mode=self.temporal_mode,
            batch_size=self.batch_size,
            working_short_side=self.working_short_side,
            model_every=self.model_every,
            codec=self.codec,
            crf=self.crf,
            saturation=self.saturation,
            vivid=self.vivid,
            auto_keyframes=self.auto_keyframes,
            precision=self.precision,
            runtime=self.runtime,
        )


ENGINES = ("local", "ray")


@dataclass(frozen=True)
class BatchOptions:
    """Options of ``vidcolor batch``; each default is stated here, once."""

    colorize: ColorizeOptions = field(default_factory=ColorizeOptions)
    engine: str = "local"
    workers: int = 1
    """Parallel workers: processes (local), or actors, one per GPU where there are GPUs (ray)."""
    ray_address: str | None = None
    """Ray cluster to join (host:port, ray://host:port or 'auto'); None starts a local one."""
    pattern: str | None = None
    """Only inputs whose source-relative path matches this glob (from the right)."""
    retry: int = 1
    """Extra attempts for a task that failed for a transient reason (worker lost, crash)."""
    report: Path | None = None
    """JSON report of every item (input, output, status, frames, seconds, error)."""
    split_seconds: float = 600.0
    """With several workers, films longer than this are split at shot cuts and coloured in
    parallel."""
    chunk_seconds: float = 60.0
    """Target length of a split film's segments (shorter when the film has few per worker)."""
    dry_run: bool = False
    """Only say what each item would be (``vidcolor probe`` of every input); colour nothing."""

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise UsageError(f"--engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.workers < 1:
            raise UsageError(f"--workers must be >= 1, got {self.workers}")
        if self.retry < 0:
            raise UsageError(f"--retry must be >= 0, got {self.retry}")
        if self.split_seconds <= 0 or self.chunk_seconds <= 0:
            raise UsageError(f"split_seconds and chunk_seconds must be > 0, got "
                             f"{self.split_seconds} and {self.chunk_seconds}")


@dataclass(frozen=True)
class TrainOptions:
    """Everything ``vidcolor train`` does, with each default stated once."""

    data: Path
    out: Path
    model: str = "fusion"
    steps: int = 2000
    batch_size: int = 16
    image_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup: int = 100
    device: str = "auto"
    resume: bool = False
    init: Path | None = None
    seed: int = 0
    workers: int = 1
    val_every: int = 500
    ckpt_every: int = 250
    val_size: int = 256
    val_max: int = 64
    keep_checkpoints: int = 2
    huber_weight: float = 1.0
    blur_loss: bool = True
    bins_weight: float = 0.05
    kl_weight: float = 0.003
    gan_weight: float = 0.01
    gp_weight: float = 10.0
    unfreeze_at: int | None = None
    """Step at which the ImageNet encoder starts training (None: stays frozen)."""
    encoder_lr_scale: float = 0.1
    unfreeze_blocks: int = 0
    """How many of the encoder's last MBConv blocks train from ``unfreeze_at`` (0: all of it);
    its batch-norm statistics stay frozen either way (batches are small)."""
    precision: str = "auto"
    """Autocast: "bf16", "fp32", or "auto" (bf16 on a GPU and on CPUs with native bf16)."""
    val_folders: tuple[str, ...] = ()
    """Subfolders of ``data`` whose held-out photos the run validates on (empty: all)."""
    degrade: bool = True
    tiny: bool = False
    model_overrides: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain dict of the options (paths as strings)."""
        d = asdict(self)
        return {k: str(v) if isinstance(v, Path) else v for k, v in d.items()}
