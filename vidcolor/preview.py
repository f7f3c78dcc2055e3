"""``vidcolor preview``: a PNG contact sheet of a few frames, grey beside coloured, to judge a
model or preset in seconds before colouring a whole film. Film frames are coloured through the
film's own path (working size, temporal stage over a lead-in, guided upsampling at full
resolution), so the sheet shows what the film will look like."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from vidcolor import lab
from vidcolor.colorize import Colorizer, colorize_rgb_array
from vidcolor.errors import OutputError, UsageError
from vidcolor.media.atomic import check_output_path
from vidcolor.media.decode import (
    DecodedFrame,
    VideoInfo,
    iter_frames,
    luma_to_unit,
    probe_video,
    seek_frames,
)
from vidcolor.media.image import IMAGE_EXTENSIONS, is_image_path, load_image, write_image
from vidcolor.names import PREVIEW_COUNT
from vidcolor.pipeline import ColorizeOptions

log = logging.getLogger("vidcolor")

DEFAULT_COUNT = PREVIEW_COUNT
"""Frames on a sheet when neither ``at`` nor ``count`` is given."""
TILE_MAX = 640
"""Longest side of each picture on the sheet (larger frames are shrunk, never enlarged)."""
PAIRS_PER_ROW = 2
"""Grey/colour pairs side by side in one row of the grid."""
GAP = 4
"""Pixels between the grey and the colour picture of a pair."""
MARGIN = 12
"""Pixels around the sheet and between pairs."""
FONT_MIN, FONT_MAX = 10, 24
"""Label font size range in pixels (scaled with the pictures so labels stay readable)."""
BACKGROUND = (24, 24, 24)
TEXT_COLOUR = (235, 235, 235)


def parse_times(text: str) -> tuple[Fraction, ...]:
    """'1.5,0:02,1:02:03.25' -> seconds as Fractions; a bad or negative time is a UsageError."""
    return tuple(_as_time(part) for part in text.split(","))


def _as_time(value: object) -> Fraction:
    """One time (seconds, a Fraction, or '[H:]MM:SS[.s]' text) as a non-negative Fraction."""
    if isinstance(value, str):
        text = value.strip()
        try:
            parts = [Fraction(p) for p in text.split(":")]
        except (ValueError, ZeroDivisionError):
            raise UsageError(f"--at: not a time: {value!r} (use seconds or [H:]MM:SS)") from None
        if not text or len(parts) > 3:
            raise UsageError(f"--at: not a time: {value!r} (use seconds or [H:]MM:SS)")
        if any(p < 0 for p in parts):
            raise UsageError(f"--at: times must be >= 0, got {value!r}")
        seconds = Fraction(0)
        for p in parts:
            seconds = seconds * 60 + p
        value = seconds
    if isinstance(value, bool) or not isinstance(value, int | float | Fraction):
        raise UsageError(f"--at: not a time: {value!r} (use seconds or [H:]MM:SS)")
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"--at: not a time: {value!r}")
    t = Fraction(value)
    if t < 0:
        raise UsageError(f"--at: times must be >= 0, got {float(t):g} s")
    return t


@dataclass(frozen=True)
class PreviewOptions:
    """Options of ``vidcolor preview``: which frames (``at`` times or ``count`` evenly spaced)."""

    colorize: ColorizeOptions = field(default_factory=ColorizeOptions)
    at: tuple[Fraction, ...] | None = None
    """Film times in seconds; past the end means the last frame."""
    count: int | None = None
    """Evenly spaced frames over the film; None means DEFAULT_COUNT (when ``at`` is not given)."""
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.at is not None and self.count is not None:
            raise UsageError("give either --at or --count, not both")
        if self.at is not None:
            if isinstance(self.at, str):
                times = parse_times(self.at)
            elif isinstance(self.at, Iterable):
                times = tuple(_as_time(t) for t in self.at)
            else:
                times = (_as_time(self.at),)
            if not times:
                raise UsageError("--at: give at least one time")
            object.__setattr__(self, "at", times)
        if self.count is not None and (isinstance(self.count, bool) or self.count < 1):
            raise UsageError(f"--count must be >= 1, got {self.count}")

    @property
    def frame_count(self) -> int:
        """Frames to show when no ``at`` times are given."""
        return DEFAULT_COUNT if self.count is None else self.count


LEAD_FRAMES = 12
"""Frames before each previewed one that go through the temporal stage first, so the preview
shows the stabilised colour the film will have there (the stage resets at cuts, as in a run)."""


@dataclass
class _Shot:
    """One picture for the sheet: its grey version (uint8 RGB, upright) and its label; a film's
    frames also carry the frames that lead up to it (for the temporal stage)."""

    grey: np.ndarray
    label: str
    frames: list[DecodedFrame] = field(default_factory=list)


def format_time(t: Fraction | float) -> str:
    """Seconds -> 'H:MM:SS.mmm' (rounded to the millisecond)."""
    ms = round(Fraction(t) * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h}:{m:02d}:{s:02d}.{ms:03d}"


def even_times(duration: Fraction, count: int) -> list[Fraction]:
    """``count`` times at the middles of equal slices of [0, duration) (never the very end)."""
    return [duration * (2 * i + 1) / (2 * count) for i in range(count)]


def tile_size(width: int, height: int, limit: int = TILE_MAX) -> tuple[int, int]:
    """(width, height) scaled so the longest side is at most ``limit`` (never enlarged)."""
    scale = min(1.0, limit / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


@dataclass(frozen=True)
class SheetLayout:
    """Where each pair sits on the sheet; shared by drawing and tests."""

    size: tuple[int, int]
    """(width, height) of the whole sheet."""
    boxes: list[tuple[int, int]]
    """(x, y) of the top-left of each pair's grey picture; colour is at x + tile width + GAP."""
    tile: tuple[int, int]


def font_size(tile: tuple[int, int]) -> int:
    """Label font size for pictures of ``tile`` (w, h): about 1/22 of the height."""
    return min(FONT_MAX, max(FONT_MIN, round(tile[1] / 22)))


def label_height(tile: tuple[int, int]) -> int:
    """Pixels under each pair for its timestamp."""
    return font_size(tile) + 8


def sheet_layout(count: int, tile: tuple[int, int]) -> SheetLayout:
    """Grid of ``count`` pairs of ``tile``-sized (w, h) pictures, PAIRS_PER_ROW to a row."""
    w, h = tile
    cols = min(count, PAIRS_PER_ROW)
    rows = -(-count // cols)
    cell_w, cell_h = 2 * w + GAP, h + label_height(tile)
    size = (MARGIN + cols * (cell_w + MARGIN), MARGIN + rows * (cell_h + MARGIN))
    boxes = [
        (MARGIN + (i % cols) * (cell_w + MARGIN), MARGIN + (i // cols) * (cell_h + MARGIN))
        for i in range(count)
    ]
    return SheetLayout(size, boxes, tile)


def _upright(rgb: np.ndarray, info: VideoInfo) -> np.ndarray:
    """A coded frame turned by its display rotation (counter-clockwise degrees)."""
    k = (info.rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb


def _frame_grey(frame: DecodedFrame, info: VideoInfo, tile: tuple[int, int]) -> np.ndarray:
    """A frame's native luma as upright grey RGB at ``tile`` size (the pixels the model sees)."""
    y = luma_to_unit(frame.y, frame.bit_depth, frame.full_range)
    img = Image.fromarray(_upright(y, info).astype(np.float32), mode="F")
    if img.size != tile:  # also applies a non-square sample aspect ratio
        img = img.resize(tile, Image.Resampling.LANCZOS)
    grey = np.clip(np.asarray(img) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def _image_grey(rgb: np.ndarray, tile: tuple[int, int]) -> np.ndarray:
    """A still's Lab lightness as grey sRGB at ``tile`` size."""
    img = Image.fromarray(rgb)
    if img.size != tile:
        img = img.resize(tile, Image.Resampling.LANCZOS)
    t = torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].float() / 255.0
    grey = lab.l_to_grey(lab.rgb_to_l(t))[0, 0].numpy()
    grey8 = np.clip(grey * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(grey8[..., None], 3, axis=2)


def _last_time(info: VideoInfo) -> Fraction:
    """Film time of the last frame, decoding the film when the container does not say."""
    last = Fraction(0)
    with iter_frames(info) as reader:
        for frame in reader:
            last = frame.time
    return last


def _film_shots(info: VideoInfo, options: PreviewOptions) -> list[_Shot]:
    """Seek to the asked times (or evenly spaced ones) and read those frames' luma."""
    if options.at is not None:
        times = list(options.at)
    else:
        duration = info.duration
        if duration is None and info.frame_count and info.fps:
            duration = info.frame_count / info.fps
        if duration is None:
            duration = _last_time(info) + (1 / info.fps if info.fps else Fraction(1, 25))
        times = even_times(duration, options.frame_count)
    frames = seek_frames(info, times, keep_frames=False)
    if options.at is not None:
        for t, frame in zip(times, frames, strict=True):
            if frame.time < t:
                log.warning(
                    "%s: --at %s is past the end (last frame at %s); showing the last frame",
                    info.path, format_time(t), format_time(frame.time),
                )
    else:  # a short film can give the same frame twice: show it once
        seen: set[int] = set()
        unique = []
        for frame in frames:
            if frame.pts not in seen:
                seen.add(frame.pts)
                unique.append(frame)
        if len(unique) < len(frames):
            log.warning("%s: only %d distinct frames; showing %d, not %d",
                        info.path, len(unique), len(unique), len(frames))
        frames = unique
    tile = tile_size(*info.display_size)
    return [_Shot(_frame_grey(f, info, tile), format_time(f.time), _lead_in(info, f))
            for f in frames]


def _lead_in(info: VideoInfo, target: DecodedFrame) -> list[DecodedFrame]:
    """The LEAD_FRAMES frames before ``target`` and ``target`` itself, in order."""
    step = 1 / info.fps if info.fps else Fraction(1, 25)
    start = max(Fraction(0), target.time - LEAD_FRAMES * step)
    frames: list[DecodedFrame] = []
    with iter_frames(info, start=start) as reader:
        for frame in reader:
            if frame.time > target.time:
                break
            frames.append(frame)
    return frames[-(LEAD_FRAMES + 1):] or [target]


@torch.inference_mode()
def colour_film_frame(
    frames: list[DecodedFrame], info: VideoInfo, colorizer: Colorizer, settings, tile
) -> np.ndarray:
    """The last of ``frames`` coloured as ``vidcolor film`` colours it: the film's working
    size, the temporal stage over the lead-in, chroma upsampled guided by the full-resolution
    luma, then shown upright at ``tile`` size."""
    from vidcolor.colorize import frame_lightness, lab_to_rgb_keep_l, rotate
    from vidcolor.pipeline import frame_unit
    from vidcolor.temporal import make_temporal_stage
    from vidcolor.temporal.stabilize import run_stage_on_sequence
    from vidcolor.upsample import guided_upsample

    size = colorizer.size_for(info.height, info.width)
    units = [frame_unit(f) for f in frames]
    L = torch.cat([frame_lightness(u, size) for u in units])
    ab = torch.cat([
        rotate(colorizer.predict(rotate(L[i : i + 8], info.rotation)), info.rotation, undo=True)
        for i in range(0, L.shape[0], 8)
    ]).cpu() * settings.saturation
    if settings.flow != "none" and len(frames) > 1:
        stage = make_temporal_stage(settings.temporal_options(device="cpu"))
        first = round(frames[0].time * info.fps) if info.fps else 0  # the film's model frames
        ab = run_stage_on_sequence(stage, L, ab, start_index=first)
    L_full = lab.grey_to_l(units[-1])
    rgb = lab_to_rgb_keep_l(L_full, guided_upsample(ab[-1:], L[-1:], L_full))
    rgb8 = (rgb[0].permute(1, 2, 0) * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).numpy()
    img = Image.fromarray(_upright(rgb8, info))
    if img.size != tile:
        img = img.resize(tile, Image.Resampling.LANCZOS)
    return np.asarray(img)


def _fit(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont,
         width: int) -> str:
    """``text`` shortened with an ellipsis until it is at most ``width`` pixels wide."""
    if draw.textlength(text, font=font) <= width:
        return text
    while len(text) > 1 and draw.textlength(text + "\u2026", font=font) > width:
        text = text[:-1]
    return text + "\u2026"


def render_sheet(pairs: Sequence[tuple[np.ndarray, np.ndarray, str]]) -> np.ndarray:
    """Lay out (grey, colour, label) pairs of equal size on a grid; returns uint8 RGB."""
    h, w = pairs[0][0].shape[:2]
    layout = sheet_layout(len(pairs), (w, h))
    sheet = Image.new("RGB", layout.size, BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(font_size((w, h)))
    for (grey, colour, label), (x, y) in zip(pairs, layout.boxes, strict=True):
        sheet.paste(Image.fromarray(grey), (x, y))
        sheet.paste(Image.fromarray(colour), (x + w + GAP, y))
        label = _fit(draw, label, font, 2 * w + GAP)
        text_w = draw.textlength(label, font=font)
        tx = x + max(0.0, (2 * w + GAP - text_w) / 2)
        draw.text((tx, y + h + 4), label, fill=TEXT_COLOUR, font=font)
    return np.asarray(sheet)


def render_rows(rows: Sequence[tuple[Sequence[np.ndarray], str]]) -> np.ndarray:
    """One row of equal-height pictures per entry, each row labelled underneath; uint8 RGB."""
    tiles = []
    for pics, label in rows:
        resized = []
        for pic in pics:
            w, h = tile_size(pic.shape[1], pic.shape[0], limit=TILE_MAX // 2)
            img = Image.fromarray(pic)
            resized.append(np.asarray(img.resize((w, h), Image.Resampling.LANCZOS)
                                      if img.size != (w, h) else img))
        tiles.append((resized, label))
    h = tiles[0][0][0].shape[0]
    row_w = max(sum(p.shape[1] for p in pics) + GAP * (len(pics) - 1) for pics, _ in tiles)
    lh = label_height((row_w, h))
    size = (MARGIN * 2 + row_w, MARGIN + len(tiles) * (h + lh + MARGIN))
    sheet = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(font_size((row_w // 4, h)))
    y = MARGIN
    for pics, label in tiles:
        x = MARGIN
        for pic in pics:
            sheet.paste(Image.fromarray(pic), (x, y))
            x += pic.shape[1] + GAP
        draw.text((MARGIN, y + h + 4), _fit(draw, label, font, row_w), fill=TEXT_COLOUR,
                  font=font)
        y += h + lh + MARGIN
    return np.asarray(sheet)


def make_preview(
    src: Path | str,
    dest: Path | str,
    options: PreviewOptions = PreviewOptions(),
) -> Path:
    """Colour a few frames of a film (or one image) and write a grey|colour contact sheet."""
    src, dest = Path(src), Path(dest)
    if dest.suffix.lower() not in IMAGE_EXTENSIONS:
        exts = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise OutputError(f"{dest}: a contact sheet needs an image extension ({exts}), "
                          f"got '{dest.suffix}'")
    check_output_path(dest, inputs=[src], overwrite=options.overwrite)
    settings = options.colorize.settings()
    info = None
    if is_image_path(src):
        if options.at is not None or options.count not in (None, 1):
            log.warning("%s: an image has one frame; --at / --count ignored", src)
        rgb = load_image(src).rgb
        shots = [_Shot(_image_grey(rgb, tile_size(rgb.shape[1], rgb.shape[0])), src.name)]
    else:
        info = probe_video(src)
        shots = _film_shots(info, options)
    colorizer = Colorizer.load(
        options.colorize.model,
        device=options.colorize.device,
        working_short_side=settings.working_short_side,
        precision=settings.precision,
    )
    log.info("preview: %d frame(s) of %s with %s on %s", len(shots), src.name, colorizer.name,
             colorizer.device)
    colorizer.use_fade(info is not None and not settings.vivid)  # as the film would be
    pairs = []
    for s in shots:
        if info is None:  # a still: coloured as `vidcolor photo.jpg` colours it
            colour = colorize_rgb_array(colorizer, s.grey, saturation=settings.saturation)
        else:
            tile = (s.grey.shape[1], s.grey.shape[0])
            colour = colour_film_frame(s.frames, info, colorizer, settings, tile)
        pairs.append((s.grey, colour, s.label))
    out = write_image(dest, render_sheet(pairs), inputs=[src], overwrite=options.overwrite)
    log.info("contact sheet: %s", out)
    return out
