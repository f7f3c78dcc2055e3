"""Still images (Pillow): read as uint8 RGB with EXIF orientation applied, write atomically."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from vidcolor.errors import InputError, OutputError
from vidcolor.media.atomic import atomic_output, check_output_path, translate_os_error

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})

_PIL_FORMAT = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
_HAS_ALPHA = {".png", ".webp", ".tif", ".tiff"}
ANIMATION_FORMATS = {".gif": "GIF", ".png": "PNG", ".apng": "PNG", ".webp": "WEBP"}
"""Animated-image outputs (an animated source may go back to one of these, frame by frame)."""
ANIMATED_INPUTS = (".gif", ".png", ".apng")
"""Animated images coloured as films (their frames decoded by FFmpeg)."""


def is_image_path(path: Path | str) -> bool:
    """True if the extension is a still-image format vidcolor handles (decides image vs video)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


@dataclass
class StillImage:
    """A decoded still: RGB uint8 (H, W, 3) and, if the file had one, its alpha (H, W) uint8."""

    rgb: np.ndarray
    alpha: np.ndarray | None
    path: Path


def load_image(path: Path | str) -> StillImage:
    """Read an image as RGB (EXIF orientation applied; grey/palette converted; alpha kept apart)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not an image")
    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img) or img
            alpha = None
            has_alpha = img.mode in ("RGBA", "LA", "PA") or (
                img.mode == "P" and "transparency" in img.info
            )
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr16 = np.asarray(img, dtype=np.float64)
                top = 65535.0 if arr16.max() > 255 else 255.0
                img = Image.fromarray(np.clip(arr16 / top * 255.0 + 0.5, 0, 255).astype(np.uint8))
            if has_alpha:
                rgba = img.convert("RGBA")
                alpha = np.asarray(rgba)[..., 3].copy()
                rgb = np.asarray(rgba.convert("RGB")).copy()
            else:
                rgb = np.asarray(img.convert("RGB")).copy()
    except PermissionError as e:
        raise InputError(f"{path}: permission denied reading the image") from e
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        size = path.stat().st_size
        raise InputError(f"{path}: not a readable image ({size} bytes; {e})") from e
    return StillImage(rgb=rgb, alpha=alpha, path=path)


def read_image(path: Path | str) -> np.ndarray:
    """Read an image as uint8 RGB (H, W, 3), EXIF orientation applied; see :func:`load_image`."""
    return load_image(path).rgb


def write_image(
    path: Path | str,
    rgb: np.ndarray,
    *,
    alpha: np.ndarray | None = None,
    inputs: list[Path] | None = None,
    overwrite: bool = False,
    quality: int = 95,
) -> Path:
    """Write uint8 RGB (H, W, 3) atomically in the format of the extension (alpha if it fits).

    The output path is checked like videos (never an input, --overwrite to replace).
    """
    path = Path(path)
    fmt = _PIL_FORMAT.get(path.suffix.lower())
    if fmt is None:
        exts = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise OutputError(f"{path}: unknown image extension '{path.suffix}' (use {exts})")
    check_output_path(path, inputs=inputs or [], overwrite=overwrite)
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")
    img = Image.fromarray(rgb, "RGB")
    if alpha is not None and path.suffix.lower() in _HAS_ALPHA:
        img.putalpha(Image.fromarray(np.asarray(alpha, dtype=np.uint8), "L"))
    options: dict[str, object] = {}
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = quality
    try:
        with atomic_output(path) as tmp:
            img.save(tmp, format=fmt, **options)
    except OSError as e:
        raise translate_os_error(e, path) from e
    return path


def is_animated(path: Path | str) -> bool:
    """True for a GIF or APNG with more than one frame: vidcolor colours it as a film (FFmpeg
    decodes those; an animated WebP it cannot, so that one stays a still: its first frame)."""
    path = Path(path)
    if path.suffix.lower() not in ANIMATED_INPUTS:
        return False
    try:
        with Image.open(path) as img:
            return int(getattr(img, "n_frames", 1)) > 1
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return False


def animation_loop(path: Path | str) -> int:
    """The loop count an animated image asks for (0: forever, the usual)."""
    try:
        with Image.open(path) as img:
            return int(img.info.get("loop", 0))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return 0


def write_animation(
    path: Path | str,
    frames: list[np.ndarray],
    durations_ms: list[int],
    *,
    loop: int = 0,
    inputs: list[Path] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write uint8 RGB frames as an animated GIF, APNG or WebP (by the extension), atomically,
    each frame shown for its own duration."""
    path = Path(path)
    fmt = ANIMATION_FORMATS.get(path.suffix.lower())
    if fmt is None:
        exts = ", ".join(sorted(ANIMATION_FORMATS))
        raise OutputError(f"{path}: not an animated-image extension '{path.suffix}' (use {exts})")
    if not frames:
        raise OutputError(f"{path}: no frame to write")
    check_output_path(path, inputs=inputs or [], overwrite=overwrite)
    images = [Image.fromarray(np.asarray(f, dtype=np.uint8), "RGB") for f in frames]
    options: dict[str, object] = {"save_all": True, "append_images": images[1:],
                                  "duration": [max(1, int(d)) for d in durations_ms], "loop": loop}
    if fmt == "WEBP":
        options["lossless"] = True
    try:
        with atomic_output(path) as tmp:
            images[0].save(tmp, format=fmt, **options)
    except OSError as e:
        raise translate_os_error(e, path) from e
    return path
