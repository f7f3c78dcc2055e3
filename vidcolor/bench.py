"""``vidcolor bench``: time each stage of the real pipeline on a film (or a folder of frames), so
speed and memory claims come from a measured run rather than guesses."""

from __future__ import annotations

import json
import logging
import os
import re
import resource
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from vidcolor import lab
from vidcolor.colorize import Colorizer
from vidcolor.errors import InputError, UsageError
from vidcolor.media.atomic import atomic_output, check_output_path, translate_os_error
from vidcolor.media.decode import VideoInfo, probe_video
from vidcolor.media.image import IMAGE_EXTENSIONS, load_image
from vidcolor.pipeline import ColorizeOptions, StageTimes, colorize_video

log = logging.getLogger("vidcolor")

FOLDER_FPS = 24
"""Frame rate given to a folder of numbered frames when it is assembled into a clip."""
FOLDER_CRF = 10
"""x264 quality of that clip: near-lossless, so decoding it costs what a real film costs."""
OVERLAP_NOTE = "stages overlap: decode, the temporal stage and encode run in threads"
_STAGES = (
    ("decode", "decode"),
    ("colourize", "colorize"),
    ("temporal", "temporal"),
    ("upsample+chroma", "upsample"),
    ("encode", "encode"),
)
"""(name in the table, StageTimes field) in pipeline order."""


@dataclass(frozen=True)
class BenchOptions:
    """Options of ``vidcolor bench``: the colour options, a JSON report path, a length limit."""

    colorize: ColorizeOptions = field(default_factory=ColorizeOptions)
    json: Path | None = None
    duration: Fraction | None = None
    """Bench only this many seconds of the film (None: the whole film)."""

    def __post_init__(self) -> None:
        if self.duration is not None and self.duration <= 0:
            raise UsageError(f"--duration must be > 0 seconds, got {float(self.duration):g}")


@dataclass
class StageFigure:
    """One stage's time: seconds, per frame, and its share of the summed stage seconds."""

    name: str
    seconds: float
    ms_per_frame: float
    share: float


@dataclass
class BenchResult:
    """Everything ``vidcolor bench`` measured (what the table and the JSON show)."""

    input: str
    frames: int
    wall_seconds: float
    fps: float
    stages: list[StageFigure]
    load_seconds: float
    """Model load and one warm-up batch, before the timed run (not in the stages)."""
    input_size: tuple[int, int]
    """(width, height) as coded."""
    working_size: tuple[int, int]
    """(width, height) at which the model runs, upright."""
    rotation: int
    model: str
    pipeline: str
    codec: str
    temporal: str
    cuts: list[tuple[int, Fraction]]
    peak_rss_mb: float
    rss_mb: list[tuple[int, float]]
    """(frames done, resident MB) samples taken during the run."""
    torch_threads: int
    device: str
    cpu_count: int
    gpu: str | None
    assembled_from_frames: bool = False
    """True when the input was a folder of frames, assembled into a clip first (not timed)."""
    torch_version: str = torch.__version__

    @property
    def stage_seconds(self) -> float:
        """Sum of the stage seconds (exceeds the wall time when the threads overlap)."""
        return sum(s.seconds for s in self.stages)

    def to_json(self) -> dict[str, object]:
        """The figures as JSON-ready values (times as float seconds)."""
        data = asdict(self)
        data["cuts"] = [
            {"frame": i, "time": float(t), "time_exact": str(t)} for i, t in self.cuts
        ]
        data["rss_mb"] = [{"frames": n, "mb": round(mb, 1)} for n, mb in self.rss_mb]
        data["stage_seconds"] = self.stage_seconds
        data["note"] = OVERLAP_NOTE
        return data

    def table(self) -> str:
        """The human-readable report printed by ``vidcolor bench``."""
        n = max(self.frames, 1)
        w, h = self.input_size
        ww, wh = self.working_size
        rot = f", rotated {self.rotation} deg" if self.rotation else ""
        rows = [
            f"vidcolor bench: {self.input}"
            + (f" (frames assembled at {FOLDER_FPS} fps)" if self.assembled_from_frames else ""),
            f"{self.frames} frames, {w}x{h}{rot} -> working size {ww}x{wh}; model {self.model} "
            f"on {self.device}; pipeline {self.pipeline}; codec {self.codec}",
            "",
            f"{'stage':<22}{'seconds':>9}{'ms/frame':>10}{'share':>9}",
        ]
        for s in self.stages:
            rows.append(f"{s.name:<22}{s.seconds:>9.2f}{s.ms_per_frame:>10.1f}{s.share:>8.1%}")
        total = self.stage_seconds
        rows += [
            f"{'sum of stages':<22}{total:>9.2f}{1000 * total / n:>10.1f}{1:>8.1%}",
            f"{'end to end (wall)':<22}{self.wall_seconds:>9.2f}"
            f"{1000 * self.wall_seconds / n:>10.1f}   {self.fps:.2f} fps",
            f"{'model load + warm-up':<22}{self.load_seconds:>9.2f}   (not in the run)",
            "",
            f"temporal: {self.temporal}; shot cuts: "
            + (", ".join(f"frame {i} ({_clock(t)})" for i, t in self.cuts) or "none"),
        ]
        first, last = (self.rss_mb[0], self.rss_mb[-1]) if self.rss_mb else ((0, 0.0), (0, 0.0))
        rows.append(
            f"memory: peak RSS {self.peak_rss_mb:.0f} MB; resident {first[1]:.0f} MB at frame "
            f"{first[0]} -> {last[1]:.0f} MB at frame {last[0]} ({len(self.rss_mb)} samples)"
        )
        gpu = f", GPU {self.gpu}" if self.gpu else ""
        rows.append(
            f"torch {self.torch_version}, torch threads {self.torch_threads}, "
            f"device {self.device}, CPUs {self.cpu_count}{gpu}"
        )
        rows.append(f"{OVERLAP_NOTE} (upsample+chroma in the encode thread), so stage seconds "
                    "can sum past the wall time")
        return "\n".join(rows)


def _clock(t: Fraction) -> str:
    """Seconds -> 'H:MM:SS.mmm'."""
    ms = round(t * 1000)
    return f"{ms // 3_600_000}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (getrusage)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6


def _natural_key(path: Path) -> tuple[tuple[int, ...], str]:
    """Sort key: the numbers in the name, then the name ('frame2' before 'frame10')."""
    return tuple(int(d) for d in re.findall(r"\d+", path.stem)), path.name


def numbered_frames(folder: Path) -> list[Path]:
    """The image files of a folder in frame order, or an InputError if there are none."""
    files = [
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
    ]
    if not files:
        exts = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise InputError(f"{folder}: no image files ({exts}) to bench as frames")
    return sorted(files, key=_natural_key)


def frames_to_clip(folder: Path, dest: Path, fps: int = FOLDER_FPS) -> Path:
    """Assemble numbered frames into a near-lossless H.264 clip at ``fps`` (4:4:4 if odd-sized)."""
    files = numbered_frames(folder)
    first = load_image(files[0]).rgb
    height, width = first.shape[:2]
    pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    tb = Fraction(1, fps)
    with av.open(str(dest), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, pix_fmt
        vs.time_base = tb
        vs.codec_context.time_base = tb
        vs.codec_context.color_range = 1  # limited, as swscale writes it
        vs.codec_context.colorspace = 6  # SMPTE 170M (BT.601), swscale's default matrix
        vs.options = {"crf": str(FOLDER_CRF), "preset": "veryfast"}
        for i, path in enumerate(files):
            rgb = first if i == 0 else load_image(path).rgb
            if rgb.shape != first.shape:
                raise InputError(
                    f"{path}: frame size {rgb.shape[1]}x{rgb.shape[0]} differs from "
                    f"{width}x{height} of {files[0].name}"
                )
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)
            frame.pts, frame.time_base = i, tb
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
    log.info("assembled %d frames of %s into a %d fps clip", len(files), folder, fps)
    return dest


def _upright_working_size(colorizer: Colorizer, info: VideoInfo) -> tuple[int, int]:
    """(width, height) the model runs at, the frame turned upright."""
    h, w = (info.width, info.height) if info.rotation % 180 else (info.height, info.width)
    wh, ww = colorizer.size_for(h, w)
    return ww, wh


def _stage_figures(times: StageTimes, frames: int) -> list[StageFigure]:
    """StageTimes -> figures with per-frame times and shares of the summed stage seconds."""
    secs = [(name, float(getattr(times, attr))) for name, attr in _STAGES]
    total = sum(s for _, s in secs) or 1.0
    n = max(frames, 1)
    return [StageFigure(name, s, 1000.0 * s / n, s / total) for name, s in secs]


def _cpu_count() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _temp_suffix(codec: str) -> str:
    """A container that holds the output codec (and copies the usual audio)."""
    return ".mp4" if codec in ("libx264", "libx265") else ".mkv"


def run_bench(src: Path | str, options: BenchOptions = BenchOptions()) -> BenchResult:
    """Run the real pipeline on ``src`` to a temporary file, print the timing table, return it."""
    src = Path(src)
    if not src.exists():
        raise InputError(f"{src}: no such file or folder")
    if options.json is not None:
        check_output_path(options.json, inputs=[src], overwrite=True)
    copts = replace(
        options.colorize,
        duration=options.duration if options.duration is not None else options.colorize.duration,
        overwrite=True,
    )
    settings = copts.settings()
    with tempfile.TemporaryDirectory(prefix="vidcolor-bench-") as tmp:
        video = frames_to_clip(src, Path(tmp) / "frames.mp4") if src.is_dir() else src
        info = probe_video(video)
        t0 = time.perf_counter()
        colorizer = Colorizer.load(
            copts.model_for_film, device=copts.device,
            working_short_side=settings.working_short_side,
            precision=settings.precision,
        )
        ww, wh = _upright_working_size(colorizer, info)
        colorizer.predict(lab.grey_to_l(torch.full((1, 1, wh, ww), 0.5)))  # warm-up, not timed
        load_seconds = time.perf_counter() - t0
        dest = Path(tmp) / f"bench{_temp_suffix(settings.codec)}"
        result = colorize_video(video, dest, copts, colorizer=colorizer)
    dev = colorizer.device
    bench = BenchResult(
        input=str(src),
        frames=result.frames,
        wall_seconds=result.seconds,
        fps=result.fps,
        stages=_stage_figures(result.times, result.frames),
        load_seconds=load_seconds,
        input_size=(info.width, info.height),
        working_size=(ww, wh),
        rotation=info.rotation,
        model=f"{copts.model_for_film} ({colorizer.name})",
        pipeline=settings.name,
        codec=settings.codec,
        temporal=result.temporal,
        cuts=list(result.cuts),
        peak_rss_mb=peak_rss_mb(),
        rss_mb=list(result.rss_mb),
        torch_threads=torch.get_num_threads(),
        device=str(dev),
        cpu_count=_cpu_count(),
        gpu=torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
        assembled_from_frames=src.is_dir(),
    )
    print(bench.table())
    if options.json is not None:
        _write_json(options.json, bench)
    return bench


def _write_json(path: Path, bench: BenchResult) -> None:
    """Write the figures as indented JSON, atomically."""
    text = json.dumps(bench.to_json(), indent=2, default=_jsonable) + "\n"
    try:
        with atomic_output(path) as tmp:
            tmp.write_text(text)
    except OSError as e:
        raise translate_os_error(e, path) from e
    log.info("bench figures: %s", path)


def _jsonable(value: object) -> object:
    """Fractions, paths and numpy scalars for json.dumps."""
    if isinstance(value, Fraction):
        return float(value)
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
