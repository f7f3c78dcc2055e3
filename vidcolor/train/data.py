"""Training images: recursive discovery, deterministic validation split, RAM cache, crops."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps

from vidcolor import lab
from vidcolor.errors import DataError
from vidcolor.train.degrade import NO_DEGRADATION, DegradeOptions, degrade_grey

log = logging.getLogger("vidcolor")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
GREY_THRESHOLD = 3.0
"""Mean |R-G| + |G-B| on a 64x64 thumbnail below which an image counts as grey."""
VAL_PERCENT = 3
"""Share of files (by file-name hash) held out for validation."""


def find_images(root: Path) -> list[Path]:
    """All image files under root, recursively, sorted (so runs are reproducible)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a directory of images")
    files = sorted(
        p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
    )
    if not files:
        raise DataError(f"{root}: no images found (looked for {', '.join(IMAGE_EXTENSIONS)})")
    return files


def is_validation(path: Path, root: Path) -> bool:
    """Deterministic split: a stable hash of the path relative to root."""
    rel = Path(path).relative_to(root).as_posix()
    return int(hashlib.sha1(rel.encode()).hexdigest()[:8], 16) % 100 < VAL_PERCENT


def load_rgb(path: Path, short_side: int | None) -> np.ndarray | None:
    """Read an image as uint8 RGB, resized to ``short_side``; None if broken or grey."""
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
            rgb = np.array(im)  # a writable copy (asarray of a PIL image is read-only)
    except Exception:  # any undecodable file is skipped and counted, never a crash
        return None
    if rgb.ndim != 3 or min(rgb.shape[:2]) < 8:
        return None
    thumb = cv2.resize(rgb, (64, 64), interpolation=cv2.INTER_AREA).astype(np.int16)
    chroma = np.abs(thumb[..., 0] - thumb[..., 1]) + np.abs(thumb[..., 1] - thumb[..., 2])
    if chroma.mean() < GREY_THRESHOLD:
        return np.zeros((0, 0, 3), np.uint8)  # marker: grey
    if short_side:
        h, w = rgb.shape[:2]
        s = short_side / min(h, w)
        if s < 1:
            size = (max(1, round(w * s)), max(1, round(h * s)))
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb)


def _load_one(args: tuple[str, int | None]) -> np.ndarray | None:
    return load_rgb(Path(args[0]), args[1])


@dataclass
class ImageSet:
    """Decoded images kept in RAM (uint8 RGB), with their paths."""

    images: list[np.ndarray]
    paths: list[Path]


def load_image_set(
    paths: list[Path], *, short_side: int | None, workers: int = 0, what: str = "images"
) -> ImageSet:
    """Decode images in worker processes; broken and grey files are skipped and counted."""
    workers = workers or max(1, min(4, os.cpu_count() or 1))
    jobs = [(str(p), short_side) for p in paths]
    if workers > 1 and len(jobs) > 64:
        with ProcessPoolExecutor(workers) as ex:
            results = list(ex.map(_load_one, jobs, chunksize=64))
    else:
        results = [_load_one(j) for j in jobs]
    images, kept = [], []
    broken = grey = 0
    for p, r in zip(paths, results, strict=True):
        if r is None:
            broken += 1
        elif r.size == 0:
            grey += 1
        else:
            images.append(r)
            kept.append(p)
    log.info("%s: %d kept, %d broken skipped, %d grey skipped", what, len(kept), broken, grey)
    if not images:
        raise DataError(
            f"no usable colour images among {len(paths)} files ({broken} broken, {grey} grey)"
        )
    return ImageSet(images, kept)


def random_crop(rgb: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Random resized crop (scale 0.35-1 of the area, aspect 3/4-4/3) and horizontal flip."""
    h, w = rgb.shape[:2]
    for _ in range(10):
        area = h * w * rng.uniform(0.35, 1.0)
        ratio = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        cw, ch = round(np.sqrt(area * ratio)), round(np.sqrt(area / ratio))
        if 0 < cw <= w and 0 < ch <= h:
            break
    else:
        cw = ch = min(h, w)
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    crop = rgb[y : y + ch, x : x + cw]
    interp = cv2.INTER_AREA if ch > size else cv2.INTER_LINEAR
    crop = cv2.resize(crop, (size, size), interpolation=interp)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(crop)


def rgb_to_grey_u8(rgb: np.ndarray) -> np.ndarray:
    """The grey picture a B&W film would show: the sRGB level whose Lab L matches the image's."""
    t = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
    grey = lab.l_to_grey(lab.rgb_to_l(t))[0, 0]
    return (grey * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).numpy()


class CropDataset(torch.utils.data.Dataset):
    """Item key (image index, seed) -> (degraded grey uint8 (1,S,S), clean RGB uint8 (3,S,S)).

    Every random choice comes from the key's seed, so batches depend only on the step: that
    makes ``--resume`` exact whatever the number of loader workers.
    """

    def __init__(self, images: ImageSet, size: int, degrade: DegradeOptions | None) -> None:
        self.images = images
        self.size = size
        self.degrade = degrade or NO_DEGRADATION

    def __len__(self) -> int:
        return len(self.images.images)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx, seed = key
        rng = np.random.default_rng(seed)
        rgb = random_crop(self.images.images[idx], self.size, rng)
        grey = degrade_grey(rgb_to_grey_u8(rgb), rng, self.degrade)
        return torch.from_numpy(grey)[None], torch.from_numpy(rgb).permute(2, 0, 1)


class StepBatchSampler(torch.utils.data.Sampler):
    """Yields the batch of (index, seed) keys for each step from ``start`` to ``steps``."""

    def __init__(self, n: int, batch_size: int, *, seed: int, start: int, steps: int) -> None:
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.start, self.steps = start, steps

    def __len__(self) -> int:
        return max(0, self.steps - self.start)

    def batch_for(self, step: int) -> list[tuple[int, int]]:
        """Keys of one step: a per-epoch permutation so every image is seen once an epoch."""
        per_epoch = max(1, self.n // self.batch_size)
        epoch, k = divmod(step, per_epoch)
        perm = np.random.default_rng([self.seed, epoch]).permutation(self.n)
        idx = perm[k * self.batch_size : (k + 1) * self.batch_size]
        return [(int(i), int(self.seed * 1_000_003 + step * 4099 + j)) for j, i in enumerate(idx)]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start, self.steps):
            yield self.batch_for(step)
