"""``vidcolor shots``: find a film's shots and write, per shot, a full-resolution keyframe (grey,
and the automatic colour to start painting from) and one editable manifest; and
``vidcolor preview --shots``: grey | automatic | steered for each shot before a long render."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from vidcolor import lab
from vidcolor.colorize import Colorizer, colorize_rgb_array, lab_to_rgb_keep_l, resize, rotate
from vidcolor.errors import OutputError, UsageError, VidcolorError
from vidcolor.media.atomic import check_output_path
from vidcolor.media.decode import DecodedFrame, VideoInfo, iter_frames, luma_to_unit, probe_video
from vidcolor.media.image import write_image
from vidcolor.pipeline import ColorizeOptions
from vidcolor.preview import _upright, render_rows
from vidcolor.progress import progress_bar
from vidcolor.steer import make_steer_stage
from vidcolor.steer.manifest import (
    MANIFEST_NAME,
    Manifest,
    ShotEntry,
    atomic_write_text,
    read_manifest,
    write_manifest,
)
from vidcolor.steer.plan import build_plan, upright_size
from vidcolor.temporal import TemporalItem, make_temporal_stage
from vidcolor.temporal.api import TemporalOptions
from vidcolor.upsample import guided_upsample

log = logging.getLogger("vidcolor")

WRITTEN_INDEX = ".vidcolor-written.json"
"""Hashes of the files ``vidcolor shots`` wrote: a file whose hash differs was edited by the
user and is never overwritten."""
HASH_FRAMES = 8
"""Frames whose luma go into the manifest's ``luma_hash`` (film identity for the studio)."""


@dataclass(frozen=True)
class ShotsOptions:
    """Options of ``vidcolor shots``."""

    colorize: ColorizeOptions = field(default_factory=ColorizeOptions)
    overwrite: bool = False


@dataclass
class ShotsResult:
    manifest: Path
    shots: int
    frames: int
    written: list[Path]
    kept: list[Path]


def frame_name(shot: int, frame: int, time: Fraction, kind: str) -> str:
    """``shot003_f000120_00m04.800s_grey.png``: shot, frame number and time in the name."""
    t = float(time)
    m, s = divmod(t, 60.0)
    return f"shot{shot:03d}_f{frame:06d}_{int(m):02d}m{s:06.3f}s_{kind}.png"


def upright_unit(frame: DecodedFrame, info: VideoInfo) -> np.ndarray:
    """A frame's luma as upright float Y' in [0, 1] (H, W)."""
    return _upright(luma_to_unit(frame.y, frame.bit_depth, frame.full_range), info)


def grey_rgb(unit: np.ndarray) -> np.ndarray:
    """Y' in [0, 1] as a grey uint8 RGB picture: the pixels the model sees."""
    g = np.clip(unit * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=2)


def find_shots(
    info: VideoInfo, options: TemporalOptions, *, working: tuple[int, int], quiet: bool = False
) -> tuple[list[tuple[int, int, Fraction, Fraction]], str]:
    """(first, last, start time, end time) of each shot, by the temporal stage's cut tests
    (lightness histogram, or a frame the flow cannot explain), and a luma hash of the film."""
    stage = make_temporal_stage(options)
    digest = hashlib.sha1()
    times: list[Fraction] = []
    bar = progress_bar(total=info.frame_count, desc=f"shots {info.path.name}", quiet=quiet)
    try:
        with iter_frames(info) as reader:
            for frame in reader:
                unit = torch.from_numpy(luma_to_unit(frame.y, frame.bit_depth, frame.full_range))
                L = lab.grey_to_l(resize(unit[None, None], working))[0]
                if frame.index < HASH_FRAMES:
                    digest.update(luma_hash_bytes(L))
                stage.push(TemporalItem(frame.index, frame.time, L, L.new_zeros(2, *working)))
                times.append(frame.time)
                bar.update(1)
    finally:
        bar.close()
    stage.flush()
    starts = [0] + [i for i, _ in stage.cuts]
    ends = [s - 1 for s in starts[1:]] + [len(times) - 1]
    shots = [(a, b, times[a], times[b]) for a, b in zip(starts, ends, strict=True)]
    return shots, digest.hexdigest()[:16]


def luma_hash_bytes(L: torch.Tensor) -> bytes:
    """One frame's share of the manifest's ``luma_hash``: its working-size lightness, rounded."""
    return (L * 2).round().to(torch.uint8).numpy().tobytes()


class KeyframeFiles:
    """Writes keyframe PNGs into a shot folder, never over a file the user edited or listed in
    the manifest (the folder's hash index says which files vidcolor wrote)."""

    def __init__(self, folder: Path, old: Manifest | None) -> None:
        self.folder = folder
        self.index = _read_index(folder)
        self.users = _users_files(folder, old)
        self.written: list[Path] = []
        self.kept: list[Path] = []

    def write(self, name: str, rgb: np.ndarray) -> None:
        path = self.folder / name
        if path.exists() and (path.resolve() in self.users or self.index.get(name) != _sha(path)):
            self.kept.append(path)
            log.info("kept %s: edited by you or listed in your manifest", path)
            return
        write_image(path, rgb, overwrite=True)
        self.index[name] = _sha(path)
        self.written.append(path)

    def save_index(self) -> None:
        atomic_write_text(self.folder / WRITTEN_INDEX,
                          json.dumps(self.index, indent=1, sort_keys=True))


def _sha(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def _read_index(folder: Path) -> dict[str, str]:
    try:
        return json.loads((folder / WRITTEN_INDEX).read_text())
    except (OSError, ValueError):
        return {}


def _users_files(folder: Path, old: Manifest | None) -> set[Path]:
    """Files the user's manifest points at: keyframes, references, hints."""
    if old is None:
        return set()
    files: set[Path] = set()
    for s in old.shots:
        files |= {k.file.resolve() for k in s.keyframes}
        files |= {h.resolve() for h in s.hints}
        if s.reference is not None:
            files.add(s.reference.resolve())
    return files


def _carry_steering(new: ShotEntry, old: Manifest | None) -> None:
    """Keep what the user set on the old shot that overlaps this one most."""
    if old is None:
        return
    best, overlap = None, 0
    for s in old.shots:
        o = min(s.last, new.last) - max(s.first, new.first) + 1
        if o > overlap:
            best, overlap = s, o
    if best is None:
        return
    new.keyframes = [
        k for k in best.keyframes if k.frame is None or new.first <= k.frame <= new.last
    ]
    new.reference, new.hints, new.saturation = best.reference, list(best.hints), best.saturation


def make_shots(
    src: Path | str, out: Path | str, options: ShotsOptions = ShotsOptions()
) -> ShotsResult:
    """Write ``out/shots.toml`` and each shot's keyframe PNGs (grey and automatic colour)."""
    src, out = Path(src), Path(out)
    info = probe_video(src)
    settings = options.colorize.settings()
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder; give a folder for the shots")
    manifest_path = out / MANIFEST_NAME
    old = None
    if manifest_path.exists():
        if not options.overwrite:
            raise OutputError(
                f"{manifest_path}: exists; pass --overwrite to find the shots again (painted "
                "keyframes and steering entries are kept)"
            )
        try:
            old = read_manifest(out)
        except VidcolorError as exc:  # a broken manifest is replaced, but kept beside as .bak
            log.warning("%s: unreadable (%s); replacing it", manifest_path, exc)
        backup = out / (MANIFEST_NAME + ".bak")
        backup.write_bytes(manifest_path.read_bytes())
        log.info("previous manifest saved as %s", backup)
    if out.resolve() == src.resolve().parent and not manifest_path.exists():
        log.info("writing the shots beside the film, in %s", out)
    colorizer = Colorizer.load(options.colorize.model, device=options.colorize.device,
                               working_short_side=settings.working_short_side,
                               precision=settings.precision)
    colorizer.use_fade(not settings.vivid)  # the keyframes' "auto" is the film's colour
    working = colorizer.size_for(info.height, info.width)
    temporal = settings.temporal_options(device="cpu", flow_weights=options.colorize.flow_weights)
    if temporal.flow == "none":
        raise UsageError("finding shots uses the optical flow: drop --flow none")
    if temporal.flow == "auto":
        temporal = TemporalOptions(**{**temporal.__dict__, "flow": "dis"})
    spans, luma_hash = find_shots(info, temporal, working=working, quiet=options.colorize.quiet)
    frames = spans[-1][1] + 1
    out.mkdir(parents=True, exist_ok=True)
    upright = upright_size(info)
    m = Manifest(folder=out, film=src.name, frames=frames,
                 frame_rate=str(info.fps) if info.fps else "",
                 size=(upright[1], upright[0]), luma_hash=luma_hash)
    keys = {}
    for n, (first, last, t0, t1) in enumerate(spans, 1):
        shot = ShotEntry(first=first, last=last, start=float(t0), end=float(t1),
                         keyframe=(first + last) // 2)
        _carry_steering(shot, old)
        m.shots.append(shot)
        keys[shot.keyframe] = n
    files = KeyframeFiles(out, old)
    with iter_frames(info) as reader:
        for frame in reader:
            n = keys.get(frame.index)
            if n is None:
                continue
            shot = m.shots[n - 1]
            unit = upright_unit(frame, info)
            grey = grey_rgb(unit)
            images = {"grey": grey, "auto": colorize_rgb_array(
                colorizer, grey, saturation=settings.saturation)}
            for kind, rgb in images.items():
                name = frame_name(n, frame.index, frame.time, kind)
                setattr(shot, kind, name)
                files.write(name, rgb)
    files.save_index()
    write_manifest(m)
    return ShotsResult(manifest=m.path, shots=len(m.shots), frames=frames, written=files.written,
                       kept=files.kept)


def steered_frames(
    L_work: torch.Tensor,
    stage,
    *,
    first_index: int,
) -> torch.Tensor:
    """Run a steering stage over working-size L (T, 1, h, w) of consecutive film frames."""
    out = []
    for t in range(L_work.shape[0]):
        item = TemporalItem(first_index + t, Fraction(first_index + t, 25), L_work[t],
                            L_work.new_zeros(2, *L_work.shape[-2:]))
        out += stage.push(item)
    out += stage.flush()
    return torch.stack([o.ab for o in out])


def render_steered(unit: np.ndarray, ab_work: torch.Tensor, L_work: torch.Tensor) -> np.ndarray:
    """Upright full-size Y' and working-size ab (2, h, w) -> uint8 RGB, guided by the luma."""
    L = lab.grey_to_l(torch.from_numpy(unit)[None, None])
    ab = guided_upsample(ab_work[None], L_work[None], L)
    rgb = lab_to_rgb_keep_l(L, ab)
    return (rgb[0].permute(1, 2, 0) * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).numpy()


PREVIEW_SPAN = 48
"""Frames the preview propagates past (and before) the shot's keyframe: enough to see the
colour hold, bounded so a preview of a long shot stays quick."""


def preview_shots(
    src: Path | str, dest: Path | str, shots: Path | str, options: ColorizeOptions,
    *, overwrite: bool = False,
) -> Path:
    """A sheet with one row per shot: grey | automatic | steered at the keyframe, and steered
    at a frame later in the shot (after up to PREVIEW_SPAN frames of propagation)."""
    src, dest = Path(src), Path(dest)
    check_output_path(dest, inputs=[src], overwrite=overwrite)
    info = probe_video(src)
    settings = options.settings()
    plan = build_plan(info, shots=Path(shots), references=options.references,
                      hints=options.hints, auto_keyframes=settings.auto_keyframes,
                      working_short_side=settings.working_short_side)
    assert plan is not None and plan.shots is not None
    auto = Colorizer.load(options.model, device=options.device,
                          working_short_side=settings.working_short_side,
                          precision=settings.precision)
    auto.use_fade(not settings.vivid)
    steer = Colorizer.load(options.steer_model, device=options.device,
                           working_short_side=settings.working_short_side,
                           precision=settings.precision)
    working = steer.size_for(info.height, info.width)
    temporal = settings.temporal_options(device="cpu", flow_weights=options.flow_weights)
    spans = []
    for s in plan.shots:
        key = next((f for _, f in s.keyframes if f is not None), (s.first + s.last) // 2)
        for h in s.hints:
            key = h.frame if h.frame is not None else key
        start = max(s.first, key - PREVIEW_SPAN)
        late = min(s.last, key + PREVIEW_SPAN)
        spans.append((start, key, late))
    want = {f for span in spans for f in (span[1], span[2])}
    units: dict[int, np.ndarray] = {}
    Ls: dict[int, torch.Tensor] = {}
    with iter_frames(info) as reader:
        for frame in reader:
            if not any(a <= frame.index <= c for a, _, c in spans):
                continue
            y = luma_to_unit(frame.y, frame.bit_depth, frame.full_range)
            Ls[frame.index] = lab.grey_to_l(resize(torch.from_numpy(y)[None, None], working))[0]
            if frame.index in want:
                units[frame.index] = upright_unit(frame, info)
    rows = []
    for n, (start, key, late) in enumerate(spans, 1):
        L_work = torch.stack([Ls[i] for i in range(start, late + 1)])
        stage = make_steer_stage(temporal, plan=plan, colorizer=steer, info=info,
                                 batch_size=settings.batch_size, saturation=settings.saturation,
                                 automatic=auto)
        ab = steered_frames(L_work, stage, first_index=start)

        def upright_ab(i: int, ab=ab, L_work=L_work, start=start) -> tuple[torch.Tensor, ...]:
            t = i - start
            return (rotate(ab[t : t + 1], info.rotation)[0],
                    rotate(L_work[t : t + 1], info.rotation)[0])

        grey = grey_rgb(units[key])
        tiles = [grey, colorize_rgb_array(auto, grey, saturation=settings.saturation),
                 render_steered(units[key], *upright_ab(key)),
                 render_steered(units[late], *upright_ab(late))]
        label = (f"shot {n}: frame {key} grey | automatic | steered;  steered frame {late}")
        rows.append((tiles, label))
    sheet = render_rows(rows)
    out = write_image(dest, sheet, inputs=[src], overwrite=overwrite)
    log.info("shot sheet: %s", out)
    return out
