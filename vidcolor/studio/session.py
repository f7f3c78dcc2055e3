"""The studio's work, without any web framework: one film, its shot folder, the edits not yet
saved, previews of each shot and a render in the background. The server only translates
requests into calls of :class:`Studio`, as ``cli.py`` does for the commands."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import math
import os
import re
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from vidcolor import lab
from vidcolor.colorize import Colorizer, colorize_rgb_array, resize, rotate
from vidcolor.errors import InputError, OutputError, UsageError, VidcolorError
from vidcolor.media.atomic import check_output_path
from vidcolor.media.decode import frame_to_rgb, iter_frames, probe_video
from vidcolor.pipeline import ColorizeOptions, colorize_video
from vidcolor.preview import _upright, render_rows
from vidcolor.steer import make_steer_stage
from vidcolor.steer.engine import ShotSteer, SteerPlan
from vidcolor.steer.guides import (
    KEYFRAME_L_TOLERANCE,
    HintPoint,
    Hints,
    SteerImage,
    colour_ab,
    fit,
    lightness_distance,
    load_hints,
    load_steer_image,
)
from vidcolor.steer.manifest import (
    MANIFEST_NAME,
    KeyframeEntry,
    Manifest,
    ShotEntry,
    atomic_write_text,
    check_shots,
    read_manifest,
    write_manifest,
)
from vidcolor.steer.plan import build_plan, check_manifest_film, upright_size
from vidcolor.steer.shots import (
    KeyframeFiles,
    ShotsOptions,
    frame_name,
    grey_rgb,
    make_shots,
    render_steered,
)
from vidcolor.studio.frames import FilmFrames, scan_film, thumb_grey
from vidcolor.temporal import TemporalItem
from vidcolor.temporal.metrics import ReferenceFlow, warping_error_pair

log = logging.getLogger("vidcolor")

KINDS = ("grey", "auto", "steered")
STUDIO_HINTS = re.compile(r"^hints_f(\d{6,9})\.json$")
"""Hint files the studio writes and edits (one per frame); other hint files are the user's own
and are kept as they are."""
REFERENCE_DIR = "references"
STUDIO_DIR = "studio"
"""Under the shot folder: the last render's contact sheet and flicker figures."""
MAX_UPLOAD_BYTES = 25 * 2**20
MAX_UPLOAD_PIXELS = 40_000_000
UPLOAD_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp"}
RUN_FRAMES = 64
"""A shot's scrubber propagates over at most this many frames (every k-th frame of a longer
shot, which the flow and content matching still carry)."""
SCRUB_FRAMES = 7
FLICKER_SHORT_SIDE = 112
SHEET_FRAMES = 8
RENDER_CACHE = 32
THUMB_CACHE = 600
"""Strip thumbnails kept per kind (about 100 KB each)."""
RUN_CACHE = 6
"""Runs kept (working-size fp16 ab, about 22 MB each for 64 frames at 854x480)."""
RunKey = tuple[int, int, tuple[int, ...]]
"""(shot index, shot version, film frames propagated through)."""


class Lru:
    """A bounded cache (least recently used goes first): memory must not grow with the film."""

    def __init__(self, size: int, items: dict | None = None) -> None:
        self.size = size
        self._d: OrderedDict = OrderedDict(items or {})

    def get(self, key):
        value = self._d.get(key)
        if value is not None:
            self._d.move_to_end(key)
        return value

    def put(self, key, value):
        self._d[key] = value
        self._d.move_to_end(key)
        while len(self._d) > self.size:
            self._d.popitem(last=False)
        return value

    def clear(self) -> None:
        self._d.clear()


class Conflict(VidcolorError):
    """The request collides with something (a file changed on disk, a render running)."""

    exit_code = 4


@dataclass
class HintSpot:
    """A colour click on a frame: pixels of the upright frame, colour as '#rrggbb'."""

    x: float
    y: float
    color: str
    radius: float | None = None

    def to_json(self) -> dict[str, object]:
        d: dict[str, object] = {  # truncated, never rounded up past the frame's edge
            "x": math.floor(self.x * 10) / 10, "y": math.floor(self.y * 10) / 10,
            "color": self.color}
        if self.radius is not None:
            d["radius"] = self.radius
        return d


@dataclass
class ShotState:
    """One shot as the studio holds it: the manifest entry and the hints edited here."""

    entry: ShotEntry
    spots: dict[int, list[HintSpot]] = field(default_factory=dict)
    """Studio hints by film frame (saved as ``hints_fNNNNNN.json``)."""
    version: int = 0
    """Bumped by every edit: previews and runs are cached per version."""


@dataclass
class RenderStatus:
    state: str = "idle"
    """idle, running, measuring, done, failed or cancelled."""
    frames: int = 0
    total: int | None = None
    started: float = 0.0
    finished: float = 0.0
    message: str = ""
    output: str = ""
    sheet: bool = False
    flicker: list[float | None] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        elapsed = (self.finished or time.monotonic()) - self.started if self.started else 0.0
        fps = self.frames / elapsed if elapsed > 0 else 0.0
        eta = None
        if self.state == "running" and self.total and fps > 0:
            eta = max(0.0, (self.total - self.frames) / fps)
        return {"state": self.state, "frames": self.frames, "total": self.total,
                "fps": round(fps, 2), "eta": None if eta is None else round(eta, 1),
                "elapsed": round(elapsed, 1), "message": self.message, "output": self.output,
                "sheet": self.sheet, "has_flicker": bool(self.flicker)}


def _write_atomic(path: Path, data: bytes) -> None:
    """Write bytes to a temporary file beside ``path`` and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _css_colour(value: object) -> str:
    """A hint file's colour as the page shows it: [r, g, b] becomes '#rrggbb'."""
    if isinstance(value, list | tuple) and len(value) == 3:
        return "#" + "".join(f"{int(v):02x}" for v in value)
    return str(value)


def _sha(path: Path) -> str | None:
    try:
        return hashlib.sha1(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def png_bytes(rgb: np.ndarray) -> bytes:
    """uint8 RGB -> PNG, fast (level 1): previews are made often and looked at once."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def check_upload(data: bytes) -> str:
    """An uploaded picture's file extension if it is a readable image of sane size, else a
    one-line InputError (not an image, too big, a decompression bomb)."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise InputError(f"upload is {len(data) / 2**20:.1f} MB; the limit is "
                         f"{MAX_UPLOAD_BYTES // 2**20} MB")
    if not data:
        raise InputError("upload is empty")
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format or ""
            w, h = im.size
            if w * h > MAX_UPLOAD_PIXELS:
                raise InputError(f"upload is {w}x{h} pixels; the limit is "
                                 f"{MAX_UPLOAD_PIXELS // 1_000_000} megapixels")
            im.load()
    except InputError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise InputError("upload is not a readable image (PNG, JPEG, WebP, TIFF or BMP)") from None
    if fmt not in UPLOAD_FORMATS:
        raise InputError(f"upload is a {fmt or 'unknown'} image; give PNG, JPEG, WebP, TIFF or "
                         "BMP")
    if min(w, h) < 8:
        raise InputError(f"upload is {w}x{h}, too small")
    return UPLOAD_FORMATS[fmt]


class Studio:
    """A film and its shot folder, opened for steering. Thread-safe: the server calls it from
    several request threads; edits take ``lock``, model work takes ``compute``."""

    def __init__(
        self,
        film: Path | str,
        shots: Path | str,
        *,
        colorize: ColorizeOptions | None = None,
        output: Path | str,
    ) -> None:
        colorize = colorize or ColorizeOptions()
        self.film = Path(film)
        self.folder = Path(shots)
        self.output = Path(output)
        self.options = colorize
        self.info = probe_video(self.film)
        settings = colorize.settings()
        self.settings = settings
        if self.output.resolve() == self.film.resolve():
            raise OutputError(f"{self.output}: is the input film; give another output (-o)")
        if not (self.folder / MANIFEST_NAME).exists():
            log.info("no manifest in %s: finding the shots (as `vidcolor shots` does)",
                     self.folder)
            make_shots(self.film, self.folder, ShotsOptions(colorize=colorize))
        m = read_manifest(self.folder)
        check_manifest_film(m, self.info)
        self.auto = Colorizer.load(colorize.model, device=colorize.device,
                                   working_short_side=settings.working_short_side,
                                   precision=settings.precision)
        self.auto.use_fade(not settings.vivid)
        self.steer = Colorizer.load(colorize.steer_model, device=colorize.device,
                                    working_short_side=settings.working_short_side,
                                    precision=settings.precision)
        self.working = self.steer.size_for(self.info.height, self.info.width)
        want = {f for s in m.shots for f in (s.first, s.keyframe or s.first, s.last)}
        index = scan_film(self.info, self.working, want=want, quiet=colorize.quiet)
        if len(index.times) != m.frames:
            raise InputError(
                f"{m.path}: made for a film of {m.frames} frames ({m.film or 'unnamed'}), but "
                f"{self.film.name} has {len(index.times)}; pick that film's shot folder or "
                f"re-make it with `vidcolor shots {self.film.name} -o {self.folder}`"
            )
        if m.luma_hash and m.luma_hash != index.luma_hash:
            raise InputError(
                f"{m.path}: made for another film (its frames' luma hash is {m.luma_hash}, "
                f"{self.film.name}'s is {index.luma_hash}); pick that film's shot folder or "
                f"re-make it with `vidcolor shots {self.film.name} -o {self.folder}`"
            )
        self.frames = FilmFrames(self.info, index.times)
        self._thumb_grey = Lru(THUMB_CACHE, index.thumbs)
        self.meta = m
        self.upright = upright_size(self.info)
        self._place_unnumbered(m)
        self._hint_sha: dict[str, str | None] = {}
        """Hint files as the studio last read or wrote them: one changed since is not
        overwritten without asking."""
        self.shots = [self._state_of(s) for s in m.shots]
        self.lock = threading.RLock()
        self.compute = threading.Lock()
        self.dirty = False
        self._edits = 0
        self._saving = threading.Lock()
        self._render_lock = threading.Lock()
        self._disk_sha = _sha(m.path)
        self._images: dict[Path, SteerImage] = {}
        self._auto_full = Lru(RENDER_CACHE)
        self._auto_thumb = Lru(THUMB_CACHE)
        self._runs: OrderedDict[RunKey, dict[int, torch.Tensor]] = OrderedDict()
        self._run_locks: dict[RunKey, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._rgb = Lru(RENDER_CACHE)
        self._hint_files: dict[Path, tuple[int, Hints]] = {}
        self.render = RenderStatus(output=str(self.output))
        self._render_thread: threading.Thread | None = None
        self._cancel = threading.Event()

    # ------------------------------------------------------------------ opening
    def _place_unnumbered(self, m: Manifest) -> None:
        """Manifest keyframes without a frame number get theirs (found by lightness, once)."""
        if not any(k.frame is None for s in m.shots for k in s.keyframes):
            return
        plan = build_plan(self.info, shots=self.folder,
                          working_short_side=self.settings.working_short_side)
        assert plan is not None and plan.shots is not None
        for s, steer in zip(m.shots, plan.shots, strict=True):
            frames = {im.path.resolve(): f for im, f in steer.keyframes}
            for k in s.keyframes:
                if k.frame is None:
                    k.frame = frames.get(k.file.resolve())

    def _state_of(self, s: ShotEntry) -> ShotState:
        state = ShotState(entry=replace(s, keyframes=list(s.keyframes), hints=[]))
        for h in s.hints:
            if STUDIO_HINTS.match(h.name) and h.suffix == ".json":
                hints = load_hints(h, (self.upright[1], self.upright[0]))  # checks every point
                data = json.loads(h.read_text())
                points = data.get("points", []) if isinstance(data, dict) else data
                self._hint_sha[h.name] = _sha(h)
                frame = hints.frame if hints.frame is not None else self._key(s)
                state.spots[frame] = [
                    HintSpot(float(p["x"]), float(p["y"]), _css_colour(p["color"]),
                             p.get("radius"))
                    for p in points
                ]
            else:
                state.entry.hints.append(h)
        return state

    @staticmethod
    def _key(s: ShotEntry) -> int:
        return s.keyframe if s.keyframe is not None else (s.first + s.last) // 2

    # ------------------------------------------------------------------ reading
    def shot(self, i: int) -> ShotState:
        if not 0 <= i < len(self.shots):
            raise InputError(f"no shot {i}: the film has shots 0-{len(self.shots) - 1}")
        return self.shots[i]

    def describe(self) -> dict[str, object]:
        """The film and its shots as the page shows them."""
        with self.lock:
            shots = []
            for i, st in enumerate(self.shots):
                e = st.entry
                shots.append({
                    "index": i, "first": e.first, "last": e.last, "keyframe": self._key(e),
                    "start": float(self.frames.times[e.first]),
                    "end": float(self.frames.times[e.last]),
                    "saturation": e.saturation, "version": st.version,
                    "hints": {str(f): [p.to_json() for p in pts]
                              for f, pts in st.spots.items() if pts},
                    "hint_files": [h.name for h in e.hints],
                    "reference": e.reference.name if e.reference else "",
                    "keyframes": [{"file": k.file.name, "frame": k.frame} for k in e.keyframes],
                    "scrub": self.scrub_frames(i),
                })
            h, w = self.upright
            return {"film": self.film.name, "folder": str(self.folder), "frames": len(self.frames),
                    "width": w, "height": h, "fps": float(self.info.fps or 0),
                    "dirty": self.dirty, "output": str(self.output), "shots": shots,
                    "render": self.render.to_json()}

    def thumb_frame(self, i: int, which: str) -> int:
        """The frame of a shot's strip thumbnail: first, key(frame) or last."""
        with self.lock:
            e = self.shot(i).entry
            frames = {"first": e.first, "key": self._key(e), "last": e.last}
        if which not in frames:
            raise InputError(f"thumbnail must be first, key or last, got {which!r}")
        return frames[which]

    def scrub_frames(self, i: int) -> list[int]:
        """The handful of frames the scrubber shows: spread over the shot, keyframe included."""
        e = self.shots[i].entry
        n = e.last - e.first + 1
        picks = {e.first + round(k * (n - 1) / (SCRUB_FRAMES - 1)) for k in range(SCRUB_FRAMES)}
        return sorted(picks | {self._key(e)})

    def _units(self, frames: list[int]) -> dict[int, np.ndarray]:
        with self.compute:
            return self.frames.get(frames)

    def image(
        self, i: int, frame: int, kind: str, *, thumb: bool = False
    ) -> tuple[int, np.ndarray]:
        """Frame ``frame`` of shot ``i`` as uint8 RGB: grey, automatic or steered colour. Returns
        the frame shown: steered colour of a long shot is shown at the nearest frame its run
        propagated through (every k-th frame)."""
        if kind not in KINDS:
            raise InputError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        with self.lock:
            st = self.shot(i)
            e = st.entry
            if not e.first <= frame <= e.last:
                raise InputError(f"frame {frame} is not in shot {i} (frames {e.first}-{e.last})")
        if kind == "steered":
            shown, rgb = self._steered(i, frame)
            return shown, _shrink(rgb) if thumb else rgb
        if thumb:
            grey = self._thumb_grey.get(frame)
            if grey is None:
                grey = self._thumb_grey.put(frame, thumb_grey(self._units([frame])[frame],
                                                              self.info))
        else:
            grey = grey_rgb(_upright(self._units([frame])[frame], self.info))
        if kind == "grey":
            return frame, grey
        cache = self._auto_thumb if thumb else self._auto_full
        auto = cache.get(frame)
        if auto is None:
            with self.compute:
                auto = colorize_rgb_array(self.auto, grey, saturation=self.settings.saturation)
            cache.put(frame, auto)
        return frame, auto

    # ------------------------------------------------------------------ steering previews
    def _steered(self, i: int, frame: int) -> tuple[int, np.ndarray]:
        """Steered colour of one frame: the keyframe alone (the quick preview) until the shot's
        run exists; other frames come from the run, propagated through the shot."""
        with self.lock:
            st = self.shot(i)
            key = self._key(st.entry)
            run = self._run_key(i)
        quick = (i, st.version, (key,))
        k = quick if frame == key and run not in self._runs else run
        seq = k[2]
        shown = frame if frame in seq else min(seq, key=lambda f: abs(f - frame))
        cached = self._rgb.get((k, shown))
        if cached is not None:
            return shown, cached
        ab = self._run(i, k)[shown].float()
        unit = self._units([shown])[shown]
        with self.compute:
            L_work = lab.grey_to_l(resize(torch.from_numpy(unit)[None, None], self.working))
            rgb = render_steered(_upright(unit, self.info),
                                 rotate(ab[None], self.info.rotation)[0],
                                 rotate(L_work, self.info.rotation)[0])
        return shown, self._rgb.put((k, shown), rgb)

    def _run(self, i: int, k: RunKey) -> dict[int, torch.Tensor]:
        """The run ``k`` (computed once even when several requests want it at the same time)."""
        with self._locks_lock:
            lock = self._run_locks.setdefault(k, threading.Lock())
        with lock:
            got = self._runs.get(k)
            if got is None:
                got = self._propagate(i, list(k[2]))
                with self._locks_lock:
                    self._runs[k] = got
                    while len(self._runs) > RUN_CACHE:
                        old, _ = self._runs.popitem(last=False)
                        self._run_locks.pop(old, None)
        return got

    def _run_key(self, i: int) -> RunKey:
        """Shot ``i``'s run: every k-th frame (at most RUN_FRAMES), its last frame, and every
        frame something steers. Call with ``lock`` held."""
        st = self.shots[i]
        e = st.entry
        n = e.last - e.first + 1
        stride = max(1, math.ceil(n / RUN_FRAMES))
        seq = set(range(e.first, e.last + 1, stride)) | {e.last, self._key(e)}
        seq |= set(self.scrub_frames(i))
        seq |= {f for f in st.spots if st.spots[f]}
        seq |= {k.frame for k in e.keyframes if k.frame is not None}
        seq |= {self._hint_file(h, e).frame for h in e.hints}
        return (i, st.version, tuple(sorted(f for f in seq if e.first <= f <= e.last)))

    def _propagate(self, i: int, seq: list[int]) -> dict[int, torch.Tensor]:
        """Run the steering stage over ``seq`` (film frames of shot ``i``, in order) as the
        render would; returns each frame's working-size *ab* (coded orientation, fp16)."""
        with self.lock:
            plan = self._plan(i, seq)
        units = self._units(seq)
        temporal = self.settings.temporal_options(device="cpu",
                                                  flow_weights=self.options.flow_weights)
        if temporal.flow in ("auto", "none"):
            temporal = replace(temporal, flow="dis")
        with self.compute:
            L_work = torch.stack([
                lab.grey_to_l(resize(torch.from_numpy(units[f])[None, None], self.working))[0]
                for f in seq
            ])
            stage = make_steer_stage(temporal, plan=plan, colorizer=self.steer, info=self.info,
                                     batch_size=self.settings.batch_size,
                                     saturation=self.settings.saturation, automatic=self.auto)
            out = []
            for t in range(len(seq)):  # positions, not film frames: a strided run is consecutive
                out += stage.push(TemporalItem(t, Fraction(t, 25), L_work[t],
                                               L_work.new_zeros(2, *L_work.shape[-2:])))
            out += stage.flush()
        return {f: out[t].ab.cpu().half() for t, f in enumerate(seq)}

    def _image_of(self, path: Path, what: str) -> SteerImage:
        im = self._images.get(path)
        if im is None:
            im = load_steer_image(path, what=what)
            self._images[path] = im
        return im

    def _hint_file(self, path: Path, e: ShotEntry) -> Hints:
        """A hint file of the user's, read once (again if it changes), its frame filled in."""
        if not path.is_file():
            raise InputError(f"{path}: hint file not found")
        self._file_frame(path)
        hint = self._hint_files[path][1]
        if hint.frame is None:
            key = min((k.frame for k in e.keyframes if k.frame is not None), default=self._key(e))
            hint = replace(hint, frame=key)
        return hint

    def _plan(self, i: int, seq: list[int]) -> SteerPlan:
        """Shot ``i``'s steering, in sequence positions (0..len(seq)-1)."""
        e = self.shots[i].entry
        pos = {f: t for t, f in enumerate(seq)}
        steer = ShotSteer(first=0, last=len(seq) - 1, saturation=e.saturation)
        for k in e.keyframes:
            if k.frame in pos:
                steer.keyframes.append((self._image_of(k.file, "keyframe"), pos[k.frame]))
        if e.reference is not None:
            steer.references.append(self._image_of(e.reference, "reference"))
        for f, spots in self.shots[i].spots.items():
            if f in pos and spots:
                points = [HintPoint(p.x, p.y, colour_ab(p.color, "hint"), p.radius)
                          for p in spots]
                steer.hints.append(Hints(path=Path(f"hints_f{f:06d}.json"), frame=pos[f],
                                         points=points))
        for hp in e.hints:
            hint = self._hint_file(hp, e)
            if hint.frame in pos:
                steer.hints.append(replace(hint, frame=pos[hint.frame]))
        return SteerPlan(shots=[steer])

    # ------------------------------------------------------------------ edits
    def _touch(self, *shots: ShotState) -> None:
        """Mark an edit: each touched shot gets a new version, unique across shots (the page's
        picture URLs and the run cache are keyed by it)."""
        for st in shots:
            self._edits += 1
            st.version = self._edits
        self.dirty = True

    def set_hints(self, i: int, frame: int, points: list[dict[str, object]]) -> None:
        """Replace the hints on ``frame`` of shot ``i`` (the page sends the whole list)."""
        with self.lock:
            st = self.shot(i)
            e = st.entry
            if not e.first <= frame <= e.last:
                raise InputError(f"hints for frame {frame}: not in shot {i} ({e.first}-{e.last})")
            h, w = self.upright
            spots = []
            for n, p in enumerate(points, 1):
                where = f"hint {n}"
                if not isinstance(p, dict) or not {"x", "y", "color"} <= set(p):
                    raise InputError(f"{where}: needs x, y and color, got {p!r}")
                x, y, color = p["x"], p["y"], p["color"]
                if not all(isinstance(v, int | float) and not isinstance(v, bool)
                           for v in (x, y)) or not (0 <= x < w and 0 <= y < h):
                    raise InputError(f"{where} at ({x!r}, {y!r}) is off the {w}x{h} frame")
                colour_ab(color, where)  # a one-line error for a bad colour
                radius = p.get("radius")
                if radius is not None and not (isinstance(radius, int | float) and
                                               0 < radius <= 64):
                    raise InputError(f"{where}: radius must be in (0, 64] px, got {radius!r}")
                spots.append(HintSpot(float(x), float(y), str(color), radius))
            st.spots[frame] = spots
            self._touch(st)

    def set_saturation(self, i: int, value: float) -> None:
        with self.lock:
            if not isinstance(value, int | float) or isinstance(value, bool) or not (
                    0 <= value <= 3):
                raise InputError(f"saturation must be a number in [0, 3], got {value!r}")
            st = self.shot(i)
            st.entry.saturation = float(value)
            self._touch(st)

    def set_keyframe(self, i: int, frame: int) -> None:
        """'Use this frame as keyframe': the frame shown large, where new hints go, whose grey
        and automatic PNGs the folder holds."""
        with self.lock:
            st = self.shot(i)
            e = st.entry
            if not isinstance(frame, int) or not e.first <= frame <= e.last:
                raise InputError(f"keyframe {frame!r} is not in shot {i} ({e.first}-{e.last})")
            e.keyframe = frame
            e.grey = e.auto = ""  # written for the new frame on save
            self._touch(st)

    def add_image(self, i: int, data: bytes) -> dict[str, object]:
        """A picture dropped on shot ``i``: a copy of its keyframe (painted, exported from an
        editor) becomes a colour keyframe there; any other picture its reference photo. Stored
        under the shot folder, never over an existing file."""
        ext = check_upload(data)
        digest = hashlib.sha1(data).hexdigest()[:12]
        with self.lock:
            st = self.shot(i)
            key = self._key(st.entry)
        folder = self.folder / REFERENCE_DIR
        path = folder / f"upload_{digest}{ext}"
        if not path.exists():
            _write_atomic(path, data)
        image = load_steer_image(path, what="upload")
        self._images[path] = image
        as_key = self._is_frame(image, key)
        with self.lock:
            e = st.entry
            if i >= len(self.shots) or self.shots[i] is not st or not e.first <= key <= e.last:
                raise Conflict("the shots changed while the picture was uploading; drop it on "
                               f"the shot again (it is kept as {path})")
            if as_key:
                painted = self.folder / f"keyframe_f{key:06d}_{digest}{ext}"
                if not painted.exists():
                    _write_atomic(painted, data)
                self._images[painted] = image
                path = painted
                e.keyframes = [k for k in e.keyframes if k.frame != key]
                e.keyframes.append(KeyframeEntry(path, key))
            else:
                e.reference = path
            self._touch(st)
        kind = "keyframe" if as_key else "reference"
        log.info("shot %d: %s %s stored as %s", i + 1, kind, path.name, path)
        return {"kind": kind, "file": path.relative_to(self.folder).as_posix()}

    def _is_frame(self, image: SteerImage, frame: int) -> bool:
        h, w = image.size
        fh, fw = self.upright
        if abs((w / h) / (fw / fh) - 1.0) > 0.03:
            return False
        unit = _upright(self._units([frame])[frame], self.info)
        L = lab.grey_to_l(resize(torch.from_numpy(np.ascontiguousarray(unit))[None, None],
                                 self.working if not self.info.rotation % 180
                                 else self.working[::-1]))
        Li = fit(image, tuple(L.shape[-2:]))[0]
        return lightness_distance(Li, L) < KEYFRAME_L_TOLERANCE

    def clear_reference(self, i: int) -> None:
        with self.lock:
            st = self.shot(i)
            st.entry.reference = None
            self._touch(st)

    def clear_keyframes(self, i: int) -> None:
        """Forget the shot's colour keyframes (their files stay in the folder)."""
        with self.lock:
            st = self.shot(i)
            st.entry.keyframes = []
            self._touch(st)

    def edit_cut(self, op: str, i: int, frame: int | None = None) -> list[str]:
        """Move the cut after shot ``i`` to ``frame``, merge shot ``i`` with the next, or split
        shot ``i`` so a new shot starts at ``frame``. Steering follows the frames it is on;
        returns notes on what a merge could not keep."""
        notes: list[str] = []
        with self.lock:
            st = self.shot(i)
            e = st.entry
            if op == "merge":
                if i + 1 >= len(self.shots):
                    raise InputError(f"shot {i} is the last: nothing to merge it with")
                nxt = self.shots.pop(i + 1)
                ne = nxt.entry
                if e.reference and ne.reference and ne.reference != e.reference:
                    notes.append(f"shot {i + 2}'s reference {ne.reference.name} was dropped "
                                 f"(shot {i + 1} keeps {e.reference.name})")
                if ne.saturation != e.saturation:
                    notes.append(f"shot {i + 2}'s saturation {ne.saturation:g} was dropped "
                                 f"(shot {i + 1} keeps {e.saturation:g})")
                e.last = nxt.entry.last
                e.keyframes += nxt.entry.keyframes
                e.hints += nxt.entry.hints
                e.reference = e.reference or nxt.entry.reference
                st.spots.update(nxt.spots)
                changed = [st]
            elif op == "split":
                if not isinstance(frame, int) or not e.first < frame <= e.last:
                    raise InputError(f"split shot {i} at frame {frame!r}: give a frame in "
                                     f"{e.first + 1}-{e.last}")
                new = ShotState(entry=ShotEntry(first=frame, last=e.last, saturation=e.saturation,
                                                reference=e.reference))
                e.last = frame - 1
                self.shots.insert(i + 1, new)
                self._share(st, new)
                changed = [st, new]
            elif op == "move":
                if i + 1 >= len(self.shots):
                    raise InputError(f"shot {i} is the last: it has no cut after it")
                nxt = self.shots[i + 1]
                if not isinstance(frame, int) or not e.first < frame <= nxt.entry.last:
                    raise InputError(f"move the cut after shot {i} to frame {frame!r}: give a "
                                     f"frame in {e.first + 1}-{nxt.entry.last}")
                e.last, nxt.entry.first = frame - 1, frame
                self._share(st, nxt)
                changed = [st, nxt]
            else:
                raise InputError(f"cut edit must be move, merge or split, got {op!r}")
            for c in changed:
                ce = c.entry
                ce.start = float(self.frames.times[ce.first])
                ce.end = float(self.frames.times[ce.last])
                if ce.keyframe is None or not ce.first <= ce.keyframe <= ce.last:
                    ce.keyframe = (ce.first + ce.last) // 2
                    ce.grey = ce.auto = ""
            self._renumber()
            check_shots(self._manifest())
        return notes

    def _share(self, a: ShotState, b: ShotState) -> None:
        """Hand keyframes and hints between two neighbouring shots by the frames they are on;
        a hint file that names no frame stays with the shot it was listed under."""
        keys = a.entry.keyframes + b.entry.keyframes
        spots = {**a.spots, **b.spots}
        files = [(h, self._file_frame(h), st) for st in (a, b) for h in st.entry.hints]
        for st in (a, b):
            e = st.entry
            e.keyframes = [k for k in keys if k.frame is not None and e.first <= k.frame <= e.last]
            st.spots = {f: p for f, p in spots.items() if e.first <= f <= e.last}
            e.hints = [h for h, f, owner in files
                       if (e.first <= f <= e.last if f is not None else owner is st)]

    def _file_frame(self, path: Path) -> int | None:
        """The frame a hint file names (in its JSON or its name), None if none."""
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            return None
        got = self._hint_files.get(path)
        if got is None or got[0] != stamp:
            got = (stamp, load_hints(path, (self.upright[1], self.upright[0])))
            self._hint_files[path] = got
        return got[1].frame

    def _renumber(self) -> None:
        """Shots are numbered by position: every shot gets a new version after a cut edit."""
        self._touch(*self.shots)

    # ------------------------------------------------------------------ saving
    def _manifest(self) -> Manifest:
        m = replace(self.meta, shots=[])
        for st in self.shots:
            e = replace(st.entry, keyframes=list(st.entry.keyframes), hints=list(st.entry.hints))
            e.hints += [self.folder / f"hints_f{f:06d}.json" for f in sorted(st.spots)
                        if st.spots[f]]
            m.shots.append(e)
        return m

    def save(self, *, force: bool = False) -> dict[str, object]:
        """Write the manifest, hint files and new keyframe PNGs as ``vidcolor shots`` does,
        each atomically; one save at a time. A manifest or hint file changed on disk since the
        studio read or wrote it is not replaced unless ``force`` (then the disk's version is
        kept beside it as ``.bak``)."""
        with self._saving:
            path = self.folder / MANIFEST_NAME
            with self.lock:
                self._check_manifest_on_disk(force)
                try:
                    old = read_manifest(self.folder)
                except VidcolorError:
                    old = None
                files = KeyframeFiles(self.folder, old)
                todo = [(n, st, self._key(st.entry)) for n, st in enumerate(self.shots, 1)
                        if not self._has_pngs(st.entry)]
            made = []
            for n, st, key in todo:  # keyframe PNGs, outside the lock: the model runs
                grey = grey_rgb(_upright(self._units([key])[key], self.info))
                with self.compute:
                    auto = colorize_rgb_array(self.auto, grey,
                                              saturation=self.settings.saturation)
                names = {}
                for kind, rgb in (("grey", grey), ("auto", auto)):
                    names[kind] = frame_name(n, key, self.frames.times[key], kind)
                    files.write(names[kind], rgb)
                made.append((st, key, names))
            with self.lock:  # the state as it is now, edits made meanwhile included
                self._check_manifest_on_disk(force)
                hints = {self.folder / f"hints_f{f:06d}.json": {
                    "frame": f, "points": [p.to_json() for p in spots]}
                    for st in self.shots for f, spots in st.spots.items() if spots}
                changed = [hp for hp in hints if hp.exists() and _sha(hp) != self._hint_sha.get(
                    hp.name, files.index.get(hp.name))]
                if changed and not force:
                    raise Conflict(
                        f"{changed[0]} exists and was not written by the studio (or was changed "
                        "since); save anyway to replace it (it is kept as .bak), or rename it"
                    )
                for hp in changed:
                    _write_atomic(hp.with_name(hp.name + ".bak"), hp.read_bytes())
                    log.warning("%s changed on disk; replaced it, kept it as %s.bak", hp, hp.name)
                if path.exists() and _sha(path) != self._disk_sha:
                    _write_atomic(path.with_name(MANIFEST_NAME + ".bak"), path.read_bytes())
                    log.warning("%s changed on disk; replaced it, kept it as %s.bak", path,
                                MANIFEST_NAME)
                for st, key, names in made:
                    if any(st is s for s in self.shots) and self._key(st.entry) == key:
                        st.entry.keyframe = key
                        st.entry.grey, st.entry.auto = names["grey"], names["auto"]
                for hp, data in hints.items():
                    atomic_write_text(hp, json.dumps(data, indent=1))
                    self._hint_sha[hp.name] = files.index[hp.name] = _sha(hp)
                files.save_index()
                m = self._manifest()
                check_shots(m)
                write_manifest(m)
                self._disk_sha = _sha(path)
                # an edit made during the save is in the manifest; only a keyframe moved
                # meanwhile still lacks its PNGs (written by the next save)
                self.dirty = not all(self._has_pngs(st.entry) for st in self.shots)
        log.info("saved %s (%d shots)", path, len(m.shots))
        return {"manifest": str(path), "shots": len(m.shots), "kept": [p.name for p in files.kept]}

    def _has_pngs(self, e: ShotEntry) -> bool:
        return bool(e.grey and e.auto and f"_f{self._key(e):06d}_" in e.grey)

    def _check_manifest_on_disk(self, force: bool) -> None:
        path = self.folder / MANIFEST_NAME
        if _sha(path) != self._disk_sha and not force:
            raise Conflict(
                f"{path} was changed outside the studio since it was read (an editor, the CLI "
                "or another studio); save anyway to replace it (the other version is kept as "
                "shots.toml.bak)"
            )

    # ------------------------------------------------------------------ rendering
    def start_render(self, *, overwrite: bool = False) -> None:
        """Save, then colour the whole film with the real pipeline in a background thread."""
        with self._render_lock:  # not the edit lock: the page stays usable while it saves
            if self._render_thread is not None and self._render_thread.is_alive():
                raise Conflict("a render is already running; wait for it or cancel it")
            check_output_path(self.output, inputs=[self.film], overwrite=overwrite)
            if self.dirty:
                self.save()
            self._cancel.clear()
            self.render = RenderStatus(state="running", started=time.monotonic(),
                                       output=str(self.output))
            options = replace(self.options, shots=self.folder, overwrite=overwrite, quiet=True)
            self._render_thread = threading.Thread(target=self._render, args=(options,),
                                                   name="vidcolor-studio-render", daemon=True)
            self._render_thread.start()
        log.info("render started: %s -> %s", self.film, self.output)

    def _render(self, options: ColorizeOptions) -> None:
        status = self.render

        def progress(done: int, total: int | None) -> None:
            status.frames, status.total = done, total

        try:
            colorize_video(self.film, self.output, options, progress=progress,
                           cancel=self._cancel)
            status.state = "measuring"
            status.total = status.frames
            status.message = f"{self.output}: {status.frames} frames"
            try:
                self._after_render(status)
            except Exception as exc:  # the film is written; only its figures are missing
                log.exception("contact sheet or flicker of %s failed", self.output)
                status.message += f" (no contact sheet or flicker plot: {exc})"
            status.state = "done"
            log.info("render finished: %s", status.message)
        except VidcolorError as exc:
            cancelled = self._cancel.is_set()
            status.state = "cancelled" if cancelled else "failed"
            status.message = " ".join(str(exc).split())
            (log.info if cancelled else log.error)("render %s: %s", status.state, status.message)
        except Exception as exc:  # a bug: one line on the page, the traceback in the log
            status.state = "failed"
            status.message = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            log.exception("render failed")
        finally:
            status.finished = time.monotonic()

    def cancel_render(self) -> bool:
        """Ask the running render to stop; True if one was running."""
        thread = self._render_thread
        if thread is None or not thread.is_alive():
            return False
        self._cancel.set()
        return True

    def wait_render(self, timeout: float | None = None) -> None:
        if self._render_thread is not None:
            self._render_thread.join(timeout)

    def _after_render(self, status: RenderStatus) -> None:
        """The finished film's contact sheet and its flicker per frame (warping error of the
        output between frames of a shot, flow on its own luma: the original's)."""
        out = self.output
        info = probe_video(out)
        n = status.frames
        picks = {round(k * (n - 1) / (SHEET_FRAMES - 1)) for k in range(SHEET_FRAMES)}
        shots = [(st.entry.first, st.entry.last) for st in self.shots]
        starts = {a for a, _ in shots}
        flow = ReferenceFlow()
        values: list[float | None] = []
        pics: dict[int, np.ndarray] = {}
        prev = None
        with iter_frames(info, keep_frames=True) as reader:  # one pass: sheet and flicker
            for frame in reader:
                rgb_np = frame_to_rgb(frame, info=info)
                if frame.index in picks:
                    pics[frame.index] = _upright((rgb_np * 255.0 + 0.5).astype(np.uint8), info)
                rgb = torch.from_numpy(rgb_np).permute(2, 0, 1)[None]
                h, w = rgb.shape[-2:]
                s = FLICKER_SHORT_SIDE / min(h, w)
                small = resize(rgb, (max(2, round(h * s)), max(2, round(w * s)))).clamp(0, 1)
                if prev is None or frame.index in starts:
                    values.append(None)
                else:
                    f, mask = flow(prev, small)
                    values.append(warping_error_pair(prev, small, f, mask))
                prev = small
                if self._cancel.is_set():
                    break
        folder = self.folder / STUDIO_DIR
        folder.mkdir(parents=True, exist_ok=True)
        order = sorted(pics)
        rows = [([pics[p] for p in order[k : k + 4]],
                 ", ".join(f"frame {p}" for p in order[k : k + 4]))
                for k in range(0, len(order), 4)]
        if rows:
            blank = np.zeros_like(pics[order[0]])
            rows[-1] = (rows[-1][0] + [blank] * (4 - len(rows[-1][0])), rows[-1][1])
            _write_atomic(folder / "sheet.jpg", _jpeg(render_rows(rows)))
            status.sheet = True
        status.flicker = values
        atomic_write_text(folder / "flicker.json", json.dumps(
            {"film": str(out), "metric": "warping error per frame (RGB squared, 0..3)",
             "shots": shots, "values": values}))

    def sheet_path(self) -> Path:
        return self.folder / STUDIO_DIR / "sheet.jpg"

    def flicker(self) -> dict[str, object]:
        with self.lock:
            shots = [(st.entry.first, st.entry.last) for st in self.shots]
        return {"values": self.render.flicker, "shots": shots}

    def close(self) -> None:
        """Stop a running render (its partial output is discarded) and wait for it."""
        if self.cancel_render():
            log.info("stopping the render")
        with contextlib.suppress(RuntimeError):
            self.wait_render(30)


def _jpeg(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _shrink(rgb: np.ndarray, width: int = 240) -> np.ndarray:
    h = max(2, round(rgb.shape[0] * width / rgb.shape[1]))
    return np.asarray(Image.fromarray(rgb).resize((width, h), Image.Resampling.BILINEAR))


def default_paths(film: Path, shots: Path | None, output: Path | None) -> tuple[Path, Path]:
    """The shot folder and output the studio uses when not told: beside the film."""
    if film.suffix == "" and film.is_dir():
        raise UsageError(f"{film}: is a folder; give a film")
    shots = shots or film.with_name(film.stem + "_shots")
    output = output or film.with_name(film.stem + "_color.mp4")
    return shots, output
