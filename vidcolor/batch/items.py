"""What a batch colours: the media files under a folder or named by a manifest, each with the
output path that mirrors it under the output folder."""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path, PurePosixPath

import av
import av.error

from vidcolor.errors import InputError, UsageError
from vidcolor.media.image import IMAGE_EXTENSIONS, is_animated, is_image_path

log = logging.getLogger("vidcolor")

VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".m2v", ".ts", ".mts",
    ".m2ts", ".mxf", ".flv", ".wmv", ".asf", ".3gp", ".ogv", ".vob", ".dv", ".y4m", ".nut",
    ".gif", ".apng",
})
"""Extensions a folder walk takes as films (a manifest may name any file); an animated PNG is
one too, found by its content."""

MANIFEST_MAX_BYTES = 64 << 20
"""A manifest larger than this is surely not a text list of paths."""


@dataclass(frozen=True)
class Item:
    """One input file and where its colour version goes."""

    key: str
    """Path relative to the batch root (POSIX): the item's identity in the state file."""
    src: Path
    dest: Path
    media: str
    """'image' or 'video' (by extension, as the single-file command decides)."""


def is_media_path(path: Path) -> bool:
    """True for the extensions a folder walk picks up (still images and films)."""
    suffix = path.suffix.lower()
    return suffix in IMAGE_EXTENSIONS or suffix in VIDEO_EXTENSIONS


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _walk(root: Path) -> list[Path]:
    """Media files under root, recursively, in sorted order; hidden files and folders skipped."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if not name.startswith(".") and is_media_path(p):
                found.append(p)
    return found


def read_manifest(path: Path) -> list[Path]:
    """Paths listed one per line (blank lines and lines starting with '#' skipped); relative
    paths are taken relative to the manifest's folder. Duplicates are dropped."""
    if path.stat().st_size > MANIFEST_MAX_BYTES:
        raise UsageError(f"{path}: {path.stat().st_size} bytes is too large for a manifest")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(
            f"{path}: neither a folder nor a text manifest (one path per line)"
        ) from None
    except OSError as e:
        raise InputError(f"{path}: cannot read the manifest ({e.strerror})") from e
    seen: dict[Path, None] = {}
    for line in text.splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        p = Path(os.path.expanduser(entry))
        p = p if p.is_absolute() else path.parent / p
        seen.setdefault(Path(os.path.abspath(p)), None)
    return list(seen)


def output_name(rel: PurePosixPath, media: str, container: str) -> PurePosixPath:
    """Images keep their name and format; films take the preset's container."""
    return rel if media == "image" else rel.with_suffix("." + container)


def discover(
    src: Path, outdir: Path, *, container: str, pattern: str | None = None
) -> tuple[Path, list[Item]]:
    """The batch root and its items; refuses an output folder inside the source tree.

    ``src`` is a folder (walked recursively), a manifest, or one media file. ``pattern`` is a
    glob matched against each path relative to the root (from the right, like ``Path.match``).
    """
    if not src.exists():
        raise InputError(f"{src}: no such folder or manifest")
    src_abs, out_abs = Path(os.path.abspath(src)), Path(os.path.abspath(outdir))
    if src.is_dir():
        root = src_abs
        if _inside(out_abs, root) or _inside(out_abs.resolve(), root.resolve()):
            raise UsageError(
                f"output folder {outdir} is inside the source folder {src}: outputs would be "
                "read back as inputs; choose an output folder outside it"
            )
        paths = _walk(root)
    elif is_media_path(src):
        root, paths = src_abs.parent, [src_abs]
    else:
        paths = read_manifest(src)
        if not paths:
            return src_abs.parent, []
        root = Path(os.path.commonpath([p.parent for p in paths]))
    items: list[Item] = []
    for p in paths:
        rel = PurePosixPath(p.relative_to(root).as_posix())
        if pattern and not rel.match(pattern):
            continue
        media = "image" if is_image_path(p) and not is_animated(p) else "video"
        items.append(Item(rel.as_posix(), p, out_abs / output_name(rel, media, container), media))
    return root, _resolve_collisions(items, container)


def _resolve_collisions(items: list[Item], container: str) -> list[Item]:
    """Films whose outputs would share a name (a.avi, a.mov -> a.mp4) keep their extension
    in the output name (a.avi.mp4, a.mov.mp4); outputs that would land on an input are refused."""
    counts = Counter(it.dest for it in items)
    fixed = []
    for it in items:
        if counts[it.dest] > 1 and it.media == "video":
            dest = it.dest.with_name(f"{it.src.name}.{container}")
            log.warning("%s and another input both map to %s: writing %s", it.key,
                        it.dest.name, dest.name)
            it = Item(it.key, it.src, dest, it.media)
        fixed.append(it)
    inputs = {it.src.resolve() for it in fixed}
    for it in fixed:
        if it.dest.resolve() in inputs:
            raise UsageError(
                f"output {it.dest} would overwrite the input {it.dest}; "
                "choose an output folder outside the source tree"
            )
    dupes = [d for d, n in Counter(it.dest for it in fixed).items() if n > 1]
    if dupes:
        raise UsageError(f"two inputs would both be written to {dupes[0]}; rename one of them")
    return fixed


def probe_length(path: Path) -> tuple[Fraction | None, int | None]:
    """A film's duration (s) and frame count from its container header, without decoding
    (for progress and the split decision); (None, None) when unknown or unreadable."""
    try:
        with av.open(str(path), metadata_errors="replace") as c:
            vs = next((s for s in c.streams.video
                       if not s.disposition & av.stream.Disposition.attached_pic), None)
            if vs is None:
                return None, None
            duration = None
            if vs.duration and vs.time_base:
                duration = vs.duration * Fraction(vs.time_base)
            elif c.duration:
                duration = Fraction(c.duration, av.time_base)
            frames = vs.frames or None
            rate = vs.average_rate or vs.guessed_rate
            if frames is None and duration is not None and rate:
                frames = max(1, round(duration * Fraction(rate)))
            return duration, frames
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        return None, None
