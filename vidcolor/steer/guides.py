"""What users steer with, read from files: coloured keyframes, reference photos and colour hints
(a JSON list of clicked points or a sparse PNG), turned into *ab* and a confidence per pixel."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageColor, UnidentifiedImageError

from vidcolor import lab
from vidcolor.colorize import resize
from vidcolor.errors import InputError

UNPAINTED_CHROMA = 0.5
"""Keyframe pixels left exactly grey (chroma below this, in ab units) count as unpainted: the
model colours them. Transparent pixels (alpha < 0.5) are unpainted too."""
KEYFRAME_L_TOLERANCE = 6.0
"""Mean |L difference| (0..100) at working resolution under which an image *is* a frame of the
film (a keyframe, painted or not) rather than a reference photo."""
MANIFEST_L_TOLERANCE = 3 * KEYFRAME_L_TOLERANCE
"""Lightness drift allowed for a manifest keyframe without a frame number: the manifest says it
is a frame of its shot, so the best match within the shot under this is taken."""
ASPECT_TOLERANCE = 0.03
"""A keyframe may be a scaled copy of the frame; its aspect ratio must agree within 3 %."""
HINT_RADIUS = 0.012
"""Default hint radius, as a share of the frame's short side (about 6 px at 480 lines)."""
MAX_HINT_RADIUS = 64
FRAME_IN_NAME = re.compile(r"_f(\d{1,9})(?:\D|$)")
"""Frame number in a file name, as ``vidcolor shots`` writes them: ``shot001_f000024_...``."""


@dataclass
class SteerImage:
    """A colour picture given by the user, upright, at its own size, in Lab."""

    path: Path
    L: torch.Tensor
    """(1, 1, H, W) lightness 0..100."""
    ab: torch.Tensor
    """(1, 2, H, W) Lab units."""
    painted: torch.Tensor
    """(1, 1, H, W) 1 where the picture gives a colour (opaque, not left exactly grey)."""

    @property
    def size(self) -> tuple[int, int]:
        return int(self.L.shape[-2]), int(self.L.shape[-1])


def frame_from_name(path: Path | str) -> int | None:
    """The ``_fNNNNNN`` frame number in a file name, if any."""
    m = FRAME_IN_NAME.search(Path(path).name)
    return int(m.group(1)) if m else None


def load_steer_image(path: Path | str, *, what: str = "keyframe") -> SteerImage:
    """Read a colour image (any format Pillow reads, alpha kept) or raise a one-line InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: {what} not found" + (" (a directory)" if path.is_dir() else ""))
    try:
        with Image.open(path) as im:
            im.load()
            rgba = np.array(im.convert("RGBA"))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"{path}: {what} is not a readable image ({exc})") from exc
    if min(rgba.shape[:2]) < 8:
        raise InputError(f"{path}: {what} is {rgba.shape[1]}x{rgba.shape[0]}, too small")
    return steer_image_from_array(rgba, path)


def steer_image_from_array(rgb: np.ndarray, path: Path | str = "<array>") -> SteerImage:
    """A uint8 RGB (H, W, 3) or RGBA (H, W, 4) picture in memory as a :class:`SteerImage`."""
    if rgb.shape[2] == 3:
        rgb = np.concatenate([rgb, np.full_like(rgb[..., :1], 255)], 2)
    rgba = np.ascontiguousarray(rgb)
    t = torch.from_numpy(rgba).permute(2, 0, 1)[None].float() / 255.0
    Lab = lab.rgb_to_lab(t[:, :3])
    ab = Lab[:, 1:]
    alpha = t[:, 3:]
    chroma = ab.square().sum(1, keepdim=True).sqrt()
    painted = ((alpha >= 0.5) & (chroma >= UNPAINTED_CHROMA)).float()
    return SteerImage(path=Path(path), L=Lab[:, :1], ab=ab, painted=painted)


def check_aspect(image: SteerImage, frame_hw: tuple[int, int], *, what: str) -> bool:
    """True if ``image`` is the frame's size or a scaled copy; else a one-line InputError."""
    h, w = image.size
    fh, fw = frame_hw
    if (h, w) == (fh, fw):
        return False
    if abs((w / h) / (fw / fh) - 1.0) > ASPECT_TOLERANCE:
        raise InputError(
            f"{image.path}: {what} is {w}x{h} but the film's frames are {fw}x{fh}; "
            "give the whole frame (a scaled copy is fine), not a crop"
        )
    return True


def fit(
    image: SteerImage, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(L, ab, painted) of the image resized to ``size`` (h, w); painted stays binary-ish."""
    L = resize(image.L, size)
    painted = resize(image.painted, size)
    ab = resize(image.ab * image.painted, size) / painted.clamp_min(1e-3)
    return L, ab * (painted > 0.5), (painted > 0.5).float()


def lightness_distance(L_image: torch.Tensor, L_frame: torch.Tensor) -> float:
    """Mean |L difference| between two lightness maps of the same size, after matching their
    means (an editor's export may shift the lightness a little)."""
    d = (L_image - L_image.mean()) - (L_frame - L_frame.mean())
    return float(d.abs().mean())


@dataclass
class HintPoint:
    """One clicked colour: position in pixels of the upright frame, colour as Lab ab."""

    x: float
    y: float
    ab: tuple[float, float]
    radius: float | None = None


@dataclass
class Hints:
    """Colour hints on one frame, from a JSON file or a sparse PNG."""

    path: Path
    frame: int | None
    points: list[HintPoint] = field(default_factory=list)
    image: SteerImage | None = None
    """A sparse PNG: its opaque, coloured pixels are the hints."""


def colour_ab(value: object, where: str) -> tuple[float, float]:
    """'#rrggbb', a CSS colour name or [r, g, b] (0-255) -> Lab ab."""
    try:
        if isinstance(value, str):
            rgb = ImageColor.getrgb(value)[:3]
        elif isinstance(value, list | tuple) and len(value) == 3:
            rgb = tuple(int(v) for v in value)
            if any(not 0 <= v <= 255 for v in rgb):
                raise ValueError
        else:
            raise ValueError
    except (ValueError, TypeError):
        raise InputError(
            f"{where}: colour {value!r} is not '#rrggbb', a colour name or [r, g, b] (0-255)"
        ) from None
    t = torch.tensor(rgb, dtype=torch.float32).view(1, 3, 1, 1) / 255.0
    ab = lab.rgb_to_lab(t)[0, 1:, 0, 0]
    return float(ab[0]), float(ab[1])


def load_hints(path: Path | str, frame_wh: tuple[int, int]) -> Hints:
    """Read a hint file: JSON ``{"frame": N, "points": [{"x", "y", "color", "radius"?}]}`` in
    pixels of the upright frame (``frame_wh`` = width, height), or a sparse PNG of the frame."""
    path = Path(path)
    fw, fh = frame_wh
    if path.suffix.lower() != ".json":
        image = load_steer_image(path, what="hint image")
        check_aspect(image, (fh, fw), what="hint image")
        if float(image.painted.sum()) == 0:
            raise InputError(f"{path}: hint image has no coloured, opaque pixel")
        return Hints(path=path, frame=frame_from_name(path), image=image)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: hint file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a JSON hint file ({exc})") from exc
    points_raw = data.get("points") if isinstance(data, dict) else data
    if not isinstance(points_raw, list):
        raise InputError(
            f"{path}: expected {{\"frame\": N, \"points\": [...]}} or a list of points"
        )
    frame = data.get("frame") if isinstance(data, dict) else None
    if frame is not None and (not isinstance(frame, int) or isinstance(frame, bool) or frame < 0):
        raise InputError(f"{path}: \"frame\" must be a frame number >= 0, got {frame!r}")
    points = []
    for i, p in enumerate(points_raw, 1):
        where = f"{path}: hint {i}"
        if not isinstance(p, dict) or not {"x", "y", "color"} <= set(p):
            raise InputError(f"{where}: needs \"x\", \"y\" (pixels) and \"color\", got {p!r}")
        x, y = p["x"], p["y"]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (x, y)):
            raise InputError(f"{where}: x and y must be numbers of pixels, got {x!r}, {y!r}")
        if not (0 <= x < fw and 0 <= y < fh):
            raise InputError(
                f"{where} at ({x}, {y}) is off the {fw}x{fh} frame; x runs 0..{fw - 1} "
                f"and y 0..{fh - 1}"
            )
        radius = p.get("radius")
        if radius is not None and (
            not isinstance(radius, int | float) or not 0 < radius <= MAX_HINT_RADIUS
        ):
            raise InputError(
                f"{where}: radius must be in (0, {MAX_HINT_RADIUS}] px, got {radius!r}"
            )
        points.append(HintPoint(float(x), float(y), colour_ab(p["color"], where), radius))
    if frame is None:
        frame = frame_from_name(path)
    return Hints(path=path, frame=frame, points=points)


def hint_guidance(
    hints: list[Hints], size: tuple[int, int], frame_hw: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hints rendered at working size (h, w): (ab (1, 2, h, w), confidence (1, 1, h, w))."""
    h, w = size
    fh, fw = frame_hw
    ab = torch.zeros(1, 2, h, w)
    conf = torch.zeros(1, 1, h, w)
    sy, sx = h / fh, w / fw
    ys = torch.arange(h).view(h, 1).float() + 0.5
    xs = torch.arange(w).view(1, w).float() + 0.5
    for hint in hints:
        if hint.image is not None:
            _, h_ab, h_p = fit(hint.image, size)
            ab = torch.where(h_p > 0, h_ab, ab)
            conf = torch.maximum(conf, h_p)
        for p in hint.points:
            r_full = p.radius if p.radius is not None else HINT_RADIUS * min(fh, fw)
            r = max(1.0, r_full * min(sy, sx))
            disk = ((xs - p.x * sx).square() + (ys - p.y * sy).square()) <= r * r
            if not bool(disk.any()):  # a tiny radius between pixel centres: the nearest pixel
                disk = torch.zeros(h, w, dtype=torch.bool)
                disk[min(h - 1, int(p.y * sy)), min(w - 1, int(p.x * sx))] = True
            ab[0, 0][disk], ab[0, 1][disk] = p.ab[0], p.ab[1]
            conf[0, 0][disk] = 1.0
    return ab, conf


class ReferencePlacer:
    """Finds which frame of a film each image *is* (by lightness, scaled copies included), fed
    one working-size frame at a time. ``ranges`` limits an image to a span of frames (a
    manifest keyframe to its shot), ``tolerances`` sets each one's allowed lightness drift."""

    def __init__(
        self,
        images: list[SteerImage],
        frame_hw: tuple[int, int],
        *,
        ranges: list[tuple[int, int] | None] | None = None,
        tolerances: list[float] | None = None,
    ) -> None:
        self.images = images
        self.frame_hw = frame_hw
        self.ranges = ranges or [None] * len(images)
        tols = tolerances or [KEYFRAME_L_TOLERANCE] * len(images)
        self._fitted: dict[tuple[int, int], list[torch.Tensor | None]] = {}
        self.best: list[tuple[float, int | None]] = [(t, None) for t in tols]

    def _at(self, size: tuple[int, int]) -> list[torch.Tensor | None]:
        fitted = self._fitted.get(size)
        if fitted is None:
            fitted = []
            for im in self.images:
                h, w = im.size
                fh, fw = self.frame_hw
                same_shape = abs((w / h) / (fw / fh) - 1.0) <= ASPECT_TOLERANCE
                fitted.append(fit(im, size)[0] if same_shape else None)
            self._fitted[size] = fitted
        return fitted

    def update(self, index: int, L: torch.Tensor) -> None:
        """Compare one frame's lightness (1, 1, h, w) at working size with every image."""
        for i, Li in enumerate(self._at(tuple(L.shape[-2:]))):
            span = self.ranges[i]
            if Li is None or (span is not None and not span[0] <= index <= span[1]):
                continue
            d = lightness_distance(Li, L)
            if d < self.best[i][0]:
                self.best[i] = (d, index)

    def frames(self) -> list[int | None]:
        """The frame each image is, or None where none matched."""
        return [frame for _, frame in self.best]

    def result(self) -> tuple[list[tuple[SteerImage, int]], list[SteerImage]]:
        """(keyframes with their frame numbers, reference photos)."""
        keys, photos = [], []
        for im, frame in zip(self.images, self.frames(), strict=True):
            if frame is None:
                photos.append(im)
            else:
                keys.append((im, frame))
        return keys, photos


SPREAD_DISTANCE = 0.15
"""A hint's colour spreads over about this share of the frame's short side (Gaussian sigma)..."""
SPREAD_AB = 6.0
SPREAD_L = 10.0
"""...to pixels whose automatic colour and lightness are close to the hinted pixel's (sigmas in
Lab units): the object the model painted one way gets the hint's colour as a whole."""
MAX_SPREAD_SAMPLES = 64


def spread_hints(
    L: torch.Tensor, auto_ab: torch.Tensor, h_ab: torch.Tensor, h_conf: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hints (ab, confidence (1, 1, h, w)) grown over the regions they fall in: each hinted pixel
    shifts the automatic colour of pixels alike in automatic colour, lightness and place.
    Returns dense guidance (ab, confidence), exact on the hints themselves."""
    idx = (h_conf[0, 0] > 0.5).nonzero()
    if len(idx) == 0:
        return h_ab, h_conf
    if len(idx) > MAX_SPREAD_SAMPLES:
        idx = idx[torch.linspace(0, len(idx) - 1, MAX_SPREAD_SAMPLES).round().long()]
    h, w = L.shape[-2:]
    ys = torch.arange(h, dtype=torch.float32).view(1, h, 1)
    xs = torch.arange(w, dtype=torch.float32).view(1, 1, w)
    sy, sx = idx[:, 0].float().view(-1, 1, 1), idx[:, 1].float().view(-1, 1, 1)
    sigma_d = SPREAD_DISTANCE * min(h, w)
    d2 = ((ys - sy).square() + (xs - sx).square()) / sigma_d**2
    a_s = auto_ab[0][:, idx[:, 0], idx[:, 1]].T.reshape(-1, 2, 1, 1)  # (S, 2, 1, 1)
    L_s = L[0, 0][idx[:, 0], idx[:, 1]].view(-1, 1, 1)
    c2 = (auto_ab[0][None] - a_s).square().sum(1) / SPREAD_AB**2  # (S, h, w)
    l2 = (L[0, 0][None] - L_s).square() / SPREAD_L**2
    wts = torch.exp(-0.5 * (d2 + c2 + l2))  # (S, h, w)
    delta = h_ab[0][:, idx[:, 0], idx[:, 1]].T.reshape(-1, 2, 1, 1) - a_s  # (S, 2, 1, 1)
    shift = (wts[:, None] * delta).sum(0) / wts.sum(0).clamp_min(1e-6)[None]
    conf = wts.amax(0)[None, None]
    ab = auto_ab + shift[None]
    ab = torch.where(h_conf > 0, h_ab, ab)
    return ab, torch.maximum(conf, h_conf)
