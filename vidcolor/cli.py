"""Command line: parses arguments, builds one frozen options object, calls the library."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import fields
from fractions import Fraction
from pathlib import Path

from vidcolor import __version__
from vidcolor.errors import UsageError
from vidcolor.names import (
    ARCHITECTURE_NAMES,
    DEFAULT_MODEL,
    DEVICES,
    PRECISIONS,
    PREVIEW_COUNT,
    RUNTIMES,
    STEER_MODEL,
    available_models,
)
from vidcolor.options import BatchOptions, ColorizeOptions, TrainOptions
from vidcolor.presets import DEFAULT_PIPELINE, PipelineSettings, available_pipelines
from vidcolor.temporal.api import FLOW_CHOICES, MODE_CHOICES

COMMANDS = ("shots", "studio", "preview", "probe", "bench", "train", "eval-images", "eval-video",
            "batch")
_PRESET = {f.name: f for f in fields(PipelineSettings)}
_TRAIN = {f.name: f.default for f in fields(TrainOptions)}
_WORKING = PipelineSettings().working_short_side
_BATCH = {f.name: f.default for f in fields(BatchOptions)}


def parse_time(text: str) -> Fraction:
    """'90', '1.5', '01:30', '1:02:03.5' -> seconds as a Fraction."""
    try:
        parts = [Fraction(p) for p in text.strip().split(":")]
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (use seconds or [H:]MM:SS)"
        ) from None
    if len(parts) > 3 or any(p < 0 for p in parts):
        raise argparse.ArgumentTypeError(f"not a time: {text!r} (use seconds or [H:]MM:SS)")
    seconds = Fraction(0)
    for p in parts:
        seconds = seconds * 60 + p
    return seconds


def _preset_help(name: str) -> str:
    f = _PRESET[name]
    return f"{f.metadata.get('help', name)} (default: from the preset; built-in {f.default})"


def add_model_args(p: argparse.ArgumentParser) -> None:
    """--model and --device, shared by every command that colours."""
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"shipped model name ({', '.join(available_models()) or 'none yet'}) or a "
        f".safetensors checkpoint / training run folder (default: {DEFAULT_MODEL})",
    )
    p.add_argument(
        "--device", default="auto", choices=DEVICES, help="default: auto (CUDA if present)"
    )


def add_pipeline_args(p: argparse.ArgumentParser) -> None:
    """Preset choice and the per-setting overrides."""
    p.add_argument(
        "--pipeline",
        default=DEFAULT_PIPELINE,
        help=f"preset name ({', '.join(available_pipelines())}) or a .toml file "
        f"(default: {DEFAULT_PIPELINE})",
    )
    p.add_argument("--flow", choices=FLOW_CHOICES, help=_preset_help("flow"))
    p.add_argument("--temporal-mode", choices=MODE_CHOICES, help=_preset_help("temporal_mode"))
    p.add_argument("--flow-weights", type=Path, help="RAFT weights file, if not in torch's cache")
    p.add_argument("--batch-size", type=int, metavar="N", help=_preset_help("batch_size"))
    p.add_argument("--working-size", type=int, dest="working_short_side", metavar="PX",
                   help=_preset_help("working_short_side"))
    p.add_argument("--model-every", type=int, metavar="N", help=_preset_help("model_every"))
    p.add_argument("--saturation", type=float, metavar="X", help=_preset_help("saturation"))
    p.add_argument("--vivid", action=argparse.BooleanOptionalAction, default=None,
                   help=_preset_help("vivid"))
    p.add_argument("--precision", choices=PRECISIONS, help=_preset_help("precision"))
    p.add_argument("--runtime", choices=RUNTIMES, help=_preset_help("runtime"))


def add_steer_args(p: argparse.ArgumentParser) -> None:
    """Steering: a shot folder, reference images, hint files, the guided model."""
    p.add_argument("--shots", type=Path, metavar="DIR",
                   help="shot folder from `vidcolor shots` whose manifest steers each shot")
    p.add_argument("--reference", type=Path, action="append", default=[], metavar="IMAGE",
                   help="colour image: a frame of the film (found by lightness) becomes its "
                   "keyframe, any other picture lends its colours by content; repeatable")
    p.add_argument("--hints", type=Path, action="append", default=[], metavar="FILE",
                   help="colour hints: JSON {\"frame\": N, \"points\": [{\"x\", \"y\", "
                   "\"color\"}]} or a sparse PNG named ..._fNNNNNN; repeatable")
    p.add_argument("--auto-keyframes", action=argparse.BooleanOptionalAction, default=None,
                   help=_preset_help("auto_keyframes"))
    p.add_argument("--steer-model", default=STEER_MODEL,
                   help=f"guided model used when anything steers (default: {STEER_MODEL})")


def colorize_options(a: argparse.Namespace) -> ColorizeOptions:
    """Namespace -> ColorizeOptions (the only place the two meet)."""
    return ColorizeOptions(
        model=a.model,
        pipeline=a.pipeline,
        device=a.device,
        flow=a.flow,
        flow_weights=a.flow_weights,
        temporal_mode=a.temporal_mode,
        batch_size=a.batch_size,
        working_short_side=a.working_short_side,
        model_every=getattr(a, "model_every", None),
        codec=getattr(a, "codec", None),
        crf=getattr(a, "crf", None),
        saturation=a.saturation,
        vivid=getattr(a, "vivid", None),
        precision=getattr(a, "precision", None),
        runtime=getattr(a, "runtime", None),
        start=getattr(a, "start", None),
        duration=getattr(a, "duration", None),
        overwrite=getattr(a, "overwrite", False),
        quiet=a.quiet,
        shots=getattr(a, "shots", None),
        references=tuple(getattr(a, "reference", None) or ()),
        hints=tuple(getattr(a, "hints", None) or ()),
        auto_keyframes=getattr(a, "auto_keyframes", None),
        steer_model=getattr(a, "steer_model", STEER_MODEL),
    )


def common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or info logs")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    p.add_argument("--log-file", type=Path, metavar="FILE",
                   help="also append the log (info and up, debug with --debug) to FILE")


def colorize_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vidcolor",
        description="Colour black-and-white films and photos. Other commands: "
        + ", ".join(COMMANDS) + " (vidcolor COMMAND --help).",
    )
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="films or images")
    p.add_argument("-o", "--output", required=True,  # str: Path() would drop a trailing '/'
                   help="output file, or a folder (ending in /) for several inputs")
    add_model_args(p)
    add_pipeline_args(p)
    add_steer_args(p)
    p.add_argument("--codec", help=_preset_help("codec") + "; e.g. ffv1, prores_ks, libx265")
    p.add_argument("--crf", type=int, help=_preset_help("crf"))
    p.add_argument("--start", type=parse_time, help="start time (seconds or [H:]MM:SS)")
    p.add_argument("--duration", type=parse_time, help="length to colour (seconds or [H:]MM:SS)")
    p.add_argument("-y", "--overwrite", action="store_true",
                   help="replace an existing output (never the input)")
    p.add_argument("--version", action="version", version=f"vidcolor {__version__}")
    common(p)
    return p


def command_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vidcolor")
    sub = p.add_subparsers(dest="command", required=True)

    sh = _command(sub,
        "shots", help="find the shots; write keyframe PNGs and an editable manifest"
    )
    sh.add_argument("input", type=Path, help="the film")
    sh.add_argument("-o", "--output", type=Path, required=True, help="shot folder")
    sh.add_argument("-y", "--overwrite", action="store_true",
                    help="find the shots again in an existing folder (your files are kept)")
    add_model_args(sh)
    add_pipeline_args(sh)
    common(sh)

    st = _command(sub, "studio", help="local web page: review the shots, steer, render "
                        "(needs pip install 'vidcolor[studio]')")
    st.add_argument("input", type=Path, help="the film")
    st.add_argument("--shots", type=Path, metavar="DIR",
                    help="shot folder (default: FILM_shots beside the film; made if missing)")
    st.add_argument("-o", "--output", type=Path,
                    help="rendered film (default: FILM_color.mp4 beside the film)")
    st.add_argument("--host", default="127.0.0.1",
                    help="address to listen on (default: 127.0.0.1, this machine only)")
    st.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    st.add_argument("--no-browser", action="store_true", help="only print the URL")
    st.add_argument("--steer-model", default=STEER_MODEL,
                    help=f"guided model for steered shots (default: {STEER_MODEL})")
    add_model_args(st)
    add_pipeline_args(st)
    common(st)

    pv = _command(sub, "preview", help="contact sheet of a few coloured frames")
    pv.add_argument("input", type=Path, help="a film or an image")
    pv.add_argument("-o", "--output", type=Path, required=True, help="PNG contact sheet")
    g = pv.add_mutually_exclusive_group()
    g.add_argument("--at", help="comma-separated times (seconds or [H:]MM:SS)")
    g.add_argument(
        "--count", type=int, help=f"number of evenly spaced frames (default: {PREVIEW_COUNT})"
    )
    pv.add_argument("-y", "--overwrite", action="store_true",
                    help="replace an existing sheet")
    add_model_args(pv)
    add_pipeline_args(pv)
    add_steer_args(pv)
    common(pv)

    bn = _command(sub, "bench", help="time each stage of the pipeline on a film")
    bn.add_argument("input", type=Path, help="the film")
    bn.add_argument("--json", type=Path, help="also write the figures as JSON")
    bn.add_argument("--duration", type=parse_time, help="bench only this much of the film")
    add_model_args(bn)
    add_pipeline_args(bn)
    add_steer_args(bn)
    common(bn)

    tr = _command(sub, "train", help="train an image colorization model")
    tr.add_argument("--data", type=Path, required=True, help="folder of colour images (recursive)")
    tr.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, metrics)")
    tr.add_argument("--model", default=_TRAIN["model"], choices=list(ARCHITECTURE_NAMES),
                    help=f"architecture (default: {_TRAIN['model']})")
    for name, typ in (("steps", int), ("batch_size", int), ("image_size", int), ("lr", float),
                      ("val_every", int), ("ckpt_every", int), ("val_max", int), ("workers", int),
                      ("seed", int)):
        tr.add_argument(
            "--" + name.replace("_", "-"), type=typ, default=_TRAIN[name],
            help=f"default: {_TRAIN[name]}",
        )
    tr.add_argument("--device", default=_TRAIN["device"], choices=DEVICES)
    tr.add_argument(
        "--resume", action="store_true", help="continue from the last checkpoint in --out"
    )
    tr.add_argument("--init", type=Path, help="start from this checkpoint's weights")
    tr.add_argument("--unfreeze-at", type=int, help="step at which the ImageNet encoder trains too")
    tr.add_argument("--unfreeze-blocks", type=int, default=_TRAIN["unfreeze_blocks"],
                    help="only the encoder's last N blocks train after --unfreeze-at "
                    f"(default: {_TRAIN['unfreeze_blocks']}: all)")
    tr.add_argument("--precision", default=_TRAIN["precision"], choices=PRECISIONS,
                    help=f"autocast (default: {_TRAIN['precision']}: bf16 where the hardware has "
                    "it)")
    tr.add_argument("--val-folders", nargs="+", default=list(_TRAIN["val_folders"]),
                    metavar="SUBFOLDER",
                    help="validate on the held-out photos under these subfolders of --data only")
    tr.add_argument("--no-degrade", action="store_true", help="no archive-degradation augmentation")
    tr.add_argument("--tiny", action="store_true", help="tiny network (for smoke tests)")
    common(tr)

    ei = _command(sub,
        "eval-images", help="colour grey versions of colour photos and score them"
    )
    ei.add_argument("data", type=Path, help="folder of colour photos (recursive)")
    ei.add_argument(
        "--size", type=int, default=256, help="short side for evaluation (default: 256)"
    )
    ei.add_argument("--json", type=Path)
    ei.add_argument("--limit", type=int, help="evaluate at most this many images")
    ei.add_argument("--degrade", action="store_true", help="degrade the grey inputs like old film")
    ei.add_argument("--split", default="all", choices=("all", "val", "train"),
                    help="all images, or only a training run's deterministic val/train split")
    ei.add_argument("--under", nargs="+", default=[], metavar="SUBFOLDER",
                    help="only the photos under these subfolders of DATA")
    ei.add_argument("--working-size", type=int, default=_WORKING,
                    help=f"the model's working short side, as for a photo (default: {_WORKING}; "
                    "0: the image's own size)")
    ei.add_argument("--precision", choices=PRECISIONS,
                    help="model arithmetic (default: auto, as for a photo)")
    ei.add_argument("--temperature", type=float, help="bin head's annealed-mean temperature")
    ei.add_argument("--mix", type=float, help="weight of the bin head against regression (0-1)")
    ei.add_argument("--saturation", type=float, help="chroma multiplier (1 = as trained)")
    add_model_args(ei)
    common(ei)

    ev = _command(sub, "eval-video", help="score flicker and accuracy on a colour clip")
    ev.add_argument("clip", type=Path, help="colour video, or a folder of numbered frames")
    ev.add_argument("--modes", default="forward",
                    help="comma-separated temporal modes to compare (default: forward)")
    ev.add_argument("--json", type=Path)
    ev.add_argument("--plot", type=Path, help="PNG of per-frame flicker over time")
    ev.add_argument("--max-frames", type=int)
    ev.add_argument("--reference", metavar="first|middle|FRAME",
                    help="score steering instead: that frame's true colours as the reference "
                    "(automatic, keyframe propagation, naive chained baseline, grey)")
    ev.add_argument("--steer-model", default=STEER_MODEL,
                    help=f"guided model for --reference (default: {STEER_MODEL})")
    add_model_args(ev)
    add_pipeline_args(ev)
    common(ev)

    pr = _command(sub, "probe", help="say what vidcolor would do with files, without colouring")
    pr.add_argument("inputs", nargs="+", type=Path, metavar="FILE")
    pr.add_argument("--to", default=".mp4", metavar="SUFFIX",
                    help="the output container to plan for (default: .mp4)")
    common(pr)

    bt = _command(sub, "batch", help="colour a whole archive, resumably")
    bt.add_argument("src", type=Path, help="folder (recursive) or a text manifest of paths")
    bt.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    bt.add_argument("--engine", default=_BATCH["engine"], choices=("local", "ray"),
                    help=f"default: {_BATCH['engine']}")
    bt.add_argument("--workers", type=int, default=_BATCH["workers"],
                    help=f"parallel workers (Ray actors, one GPU each when present; "
                    f"default: {_BATCH['workers']})")
    bt.add_argument("--ray-address", help="join this Ray cluster (default: start a local one)")
    bt.add_argument("--pattern", help="only files matching this glob")
    bt.add_argument("--retry", type=int, default=_BATCH["retry"],
                    help=f"retries of a failed item (default: {_BATCH['retry']})")
    bt.add_argument("--split-seconds", type=float, default=_BATCH["split_seconds"],
                    help="films longer than this are split at shot cuts and coloured in "
                    f"parallel when --workers > 1 (default: {_BATCH['split_seconds']:g})")
    bt.add_argument("--chunk-seconds", type=float, default=_BATCH["chunk_seconds"],
                    help=f"target segment length (default: {_BATCH['chunk_seconds']:g})")
    bt.add_argument("--report", type=Path, help="JSON report")
    bt.add_argument("--dry-run", action="store_true",
                    help="say what would be done with every item (as `vidcolor probe`); colour "
                    "nothing")
    add_model_args(bt)
    add_pipeline_args(bt)
    common(bt)
    return p


def _command(sub, name: str, help: str) -> argparse.ArgumentParser:
    """A subcommand whose --help page starts with the line ``vidcolor --help`` shows for it."""
    text = help[0].upper() + help[1:] + "."
    return sub.add_parser(name, help=help, description=text)


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse either the default colour command or a named one."""
    if argv and argv[0] in COMMANDS:
        return command_parser().parse_args(argv)
    args = colorize_parser().parse_args(argv)
    args.command = "colorize"
    return args


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (so redirection and capture work)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("vidcolor: %(message)s"))

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


class _FileHandler(logging.FileHandler):
    """``--log-file``: every line with its time, appended."""


def setup_logging(quiet: bool, debug: bool, log_file: Path | None = None) -> None:
    """vidcolor's log lines on stderr, and in ``log_file`` if given (one handler of each,
    however often this is called)."""
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    logger = logging.getLogger("vidcolor")
    for h in [h for h in logger.handlers if isinstance(h, _StderrHandler | _FileHandler)]:
        logger.removeHandler(h)
        h.close()
    console = _StderrHandler()
    console.setLevel(level)
    logger.addHandler(console)
    file_level = logging.DEBUG if debug else logging.INFO
    if log_file is not None:
        try:
            handler = _FileHandler(log_file, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{log_file}: cannot write the log file "
                             f"({exc.strerror or exc})") from None
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        handler.setLevel(file_level)
        logger.addHandler(handler)
    logger.setLevel(min(level, file_level) if log_file is not None else level)


def run(args: argparse.Namespace) -> int:
    """Dispatch a parsed command to the library; returns the exit code."""
    cmd = args.command
    if cmd == "colorize":
        from vidcolor.pipeline import colorize_paths

        for result in colorize_paths(args.inputs, args.output, colorize_options(args)):
            print(f"vidcolor: {result.summary()}" if hasattr(result, "summary")
                  else f"vidcolor: wrote {result}")
        return 0
    if cmd == "shots":
        from vidcolor.steer.shots import ShotsOptions, make_shots

        result = make_shots(args.input, args.output, ShotsOptions(
            colorize=colorize_options(args), overwrite=args.overwrite))
        kept = f", kept {len(result.kept)} of your files" if result.kept else ""
        print(f"{result.manifest}: {result.shots} shots, {result.frames} frames, "
              f"{len(result.written)} keyframe PNGs written{kept}")
        return 0
    if cmd == "studio":
        from vidcolor.studio import StudioOptions, serve

        if not 0 <= args.port <= 65535:
            raise UsageError(f"--port must be 0-65535, got {args.port}")
        return serve(StudioOptions(
            film=args.input, shots=args.shots, output=args.output, host=args.host,
            port=args.port, open_browser=not args.no_browser,
            colorize=colorize_options(args)))
    if cmd == "preview" and args.shots is not None:
        from vidcolor.steer.shots import preview_shots

        if args.at is not None or args.count is not None:
            raise UsageError("--shots shows each shot's keyframe: drop --at / --count")
        preview_shots(args.input, args.output, args.shots, colorize_options(args),
                      overwrite=args.overwrite)
        return 0
    if cmd == "preview":
        from vidcolor.preview import PreviewOptions, make_preview, parse_times

        at = parse_times(args.at) if args.at is not None else None
        make_preview(args.input, args.output, PreviewOptions(
            colorize=colorize_options(args), at=tuple(at) if at is not None else None,
            count=args.count, overwrite=args.overwrite))
        return 0
    if cmd == "bench":
        from vidcolor.bench import BenchOptions, run_bench

        run_bench(args.input, BenchOptions(colorize=colorize_options(args), json=args.json,
                                          duration=args.duration))
        return 0
    if cmd == "train":
        from vidcolor.train.trainer import train

        if args.steps < 1 or args.batch_size < 1:
            raise UsageError(
                f"--steps and --batch-size must be >= 1, got {args.steps}, {args.batch_size}"
            )
        path = train(TrainOptions(
            data=args.data, out=args.out, model=args.model, steps=args.steps,
            batch_size=args.batch_size, image_size=args.image_size, lr=args.lr,
            val_every=args.val_every, ckpt_every=args.ckpt_every, val_max=args.val_max,
            workers=args.workers,
            seed=args.seed, device=args.device, resume=args.resume, init=args.init,
            unfreeze_at=args.unfreeze_at, unfreeze_blocks=args.unfreeze_blocks,
            precision=args.precision, val_folders=tuple(args.val_folders),
            degrade=not args.no_degrade, tiny=args.tiny,
        ))
        print(f"final model: {path}")
        return 0
    if cmd == "eval-images":
        from vidcolor.train.evaluate import EvalImagesOptions, eval_images

        eval_images(args.data, EvalImagesOptions(
            model=args.model, device=args.device, size=args.size, json=args.json,
            limit=args.limit, degrade=args.degrade, split=args.split, under=tuple(args.under),
            working_short_side=args.working_size or None,
            **({"precision": args.precision} if args.precision else {}),
            overrides={k: v for k, v in (("temperature", args.temperature), ("mix", args.mix),
                                         ("saturation", args.saturation)) if v is not None}))
        return 0
    if cmd == "eval-video":
        from vidcolor.evalvideo import EvalVideoOptions, eval_video

        eval_video(args.clip, EvalVideoOptions(
            colorize=colorize_options(args), modes=tuple(args.modes.split(",")),
            json=args.json, plot=args.plot, max_frames=args.max_frames,
            reference=args.reference))
        return 0
    if cmd == "probe":
        from vidcolor.media.probe import probe_paths

        suffix = args.to if args.to.startswith(".") else "." + args.to
        return probe_paths(args.inputs, suffix)
    if cmd == "batch":
        from vidcolor.batch import run_batch

        return run_batch(args.src, args.output, BatchOptions(
            colorize=colorize_options(args), engine=args.engine, workers=args.workers,
            ray_address=args.ray_address, pattern=args.pattern, retry=args.retry,
            split_seconds=args.split_seconds, chunk_seconds=args.chunk_seconds,
            report=args.report, dry_run=args.dry_run))
    raise UsageError(f"unknown command {cmd!r}")
