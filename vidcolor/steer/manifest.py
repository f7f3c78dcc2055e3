"""The shot manifest (``shots/shots.toml``): one editable file listing a film's shots, their
keyframes and what steers each one; written by ``vidcolor shots``, read by ``--shots``."""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from vidcolor.errors import InputError

MANIFEST_NAME = "shots.toml"
SHOT_KEYS = {
    "first", "last", "start", "end", "keyframe", "grey", "auto", "keyframes", "reference",
    "hints", "saturation",
}
HEADER = """\
# vidcolor shot manifest. Edit it by hand (or in `vidcolor studio`), then
#   vidcolor {film} -o color.mp4 --shots {folder}
# Shots must cover the film in order, each starting on the frame after the last one ends:
# move a cut by changing `last` of one shot and `first` of the next; merge two shots by deleting
# the second's block and extending `last`; split one by adding a [[shot]] block.
# Per shot (file names relative to this folder):
#   keyframes  = ["painted.png"] or [{{ file = "painted.png", frame = 24 }}]: colour frames of the
#                shot; without a frame number (or _fNNNNNN in the name) the frame is found by
#                lightness. Transparent or exactly grey pixels count as unpainted.
#   reference  = "photo.jpg": a colour photo whose colours go where its content matches.
#   hints      = ["clicks.json"]: colour hints ({{"frame": N, "points": [{{"x", "y", "color"}}]}})
#                or a sparse PNG; on the shot's keyframe unless the file names a frame.
#   saturation = 1.0: chroma multiplier of the shot.
"""


@dataclass
class KeyframeEntry:
    file: Path
    frame: int | None = None


@dataclass
class ShotEntry:
    """One shot as the manifest says (frames inclusive)."""

    first: int
    last: int
    start: float | None = None
    end: float | None = None
    keyframe: int | None = None
    grey: str = ""
    auto: str = ""
    keyframes: list[KeyframeEntry] = field(default_factory=list)
    reference: Path | None = None
    hints: list[Path] = field(default_factory=list)
    saturation: float = 1.0
    line: int = 0
    """Line of its [[shot]] header in the file (for messages)."""


@dataclass
class Manifest:
    """A film's shots; ``folder`` is where the relative file names point."""

    folder: Path
    film: str
    frames: int
    frame_rate: str = ""
    size: tuple[int, int] = (0, 0)
    """Width, height of the upright frames."""
    luma_hash: str = ""
    shots: list[ShotEntry] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.folder / MANIFEST_NAME

    def shot_of(self, frame: int) -> int:
        """Index of the shot holding ``frame``."""
        for i, s in enumerate(self.shots):
            if s.first <= frame <= s.last:
                return i
        raise InputError(f"{self.path}: frame {frame} lies in no shot (the film is longer?)")


def _where(path: Path, shot: ShotEntry) -> str:
    return f"{path}:{shot.line}" if shot.line else str(path)


def _int(value: object, what: str, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InputError(f"{where}: {what} must be a whole frame number, got {value!r}")
    return value


def _shot_lines(text: str) -> list[int]:
    return [i for i, ln in enumerate(text.splitlines(), 1) if ln.strip().startswith("[[shot]]")]


def read_manifest(folder: Path | str) -> Manifest:
    """Read and check ``folder/shots.toml``; every problem is one line naming file, line, fix."""
    folder = Path(folder)
    path = folder / MANIFEST_NAME if folder.is_dir() or not folder.suffix else folder
    folder = path.parent
    if not path.is_file():
        raise InputError(
            f"{path}: no shot manifest; make one with `vidcolor shots FILM -o {folder}`"
        )
    try:
        text = path.read_text()
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{path}: not a valid TOML manifest ({exc})") from exc
    lines = _shot_lines(text)
    frames = data.get("frames")
    if not isinstance(frames, int) or frames < 1:
        raise InputError(f"{path}: 'frames' (the film's frame count) must be a number >= 1")
    size = data.get("size", [0, 0])
    m = Manifest(
        folder=folder,
        film=str(data.get("film", "")),
        frames=frames,
        frame_rate=str(data.get("frame_rate", "")),
        size=(int(size[0]), int(size[1])) if isinstance(size, list) and len(size) == 2 else (0, 0),
        luma_hash=str(data.get("luma_hash", "")),
    )
    raw = data.get("shot", [])
    if not isinstance(raw, list) or not raw:
        raise InputError(f"{path}: no [[shot]] blocks; re-make it with `vidcolor shots`")
    for i, s in enumerate(raw):
        line = lines[i] if i < len(lines) else 0
        where = f"{path}:{line}" if line else str(path)
        unknown = sorted(set(s) - SHOT_KEYS)
        if unknown:
            raise InputError(
                f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(SHOT_KEYS))})"
            )
        if "first" not in s or "last" not in s:
            raise InputError(f"{where}: a shot needs 'first' and 'last' frame numbers")
        shot = ShotEntry(
            first=_int(s["first"], "'first'", where), last=_int(s["last"], "'last'", where),
            start=s.get("start"), end=s.get("end"), grey=str(s.get("grey", "")),
            auto=str(s.get("auto", "")), line=line,
        )
        if "keyframe" in s:
            shot.keyframe = _int(s["keyframe"], "'keyframe'", where)
        kfs = s.get("keyframes", [])
        if isinstance(kfs, str | dict):
            kfs = [kfs]
        if not isinstance(kfs, list):
            raise InputError(f"{where}: 'keyframes' must be a list of file names")
        for k in kfs:
            if isinstance(k, str) and k:
                shot.keyframes.append(KeyframeEntry(folder / k))
            elif isinstance(k, dict) and isinstance(k.get("file"), str):
                frame = k.get("frame")
                if frame is not None:
                    frame = _int(frame, "keyframe 'frame'", where)
                shot.keyframes.append(KeyframeEntry(folder / k["file"], frame))
            elif k:
                raise InputError(
                    f"{where}: keyframe {k!r} must be a file name or "
                    "{ file = \"x.png\", frame = N }"
                )
        ref = s.get("reference", "")
        if not isinstance(ref, str):
            raise InputError(f"{where}: 'reference' must be a file name, got {ref!r}")
        shot.reference = folder / ref if ref else None
        hints = s.get("hints", [])
        if isinstance(hints, str):
            hints = [hints] if hints else []
        if not isinstance(hints, list) or not all(isinstance(h, str) for h in hints):
            raise InputError(f"{where}: 'hints' must be a list of file names")
        shot.hints = [folder / h for h in hints if h]
        sat = s.get("saturation", 1.0)
        if not isinstance(sat, int | float) or isinstance(sat, bool) or not 0 <= sat <= 3:
            raise InputError(f"{where}: saturation must be a number in [0, 3], got {sat!r}")
        shot.saturation = float(sat)
        m.shots.append(shot)
    check_shots(m)
    return m


def check_shots(m: Manifest) -> None:
    """Shots must tile frames 0..frames-1 in order, without overlaps or gaps."""
    expected = 0
    for shot in m.shots:
        where = _where(m.path, shot)
        if shot.last < shot.first:
            raise InputError(f"{where}: shot ends (last = {shot.last}) before it starts "
                             f"(first = {shot.first})")
        if shot.first > expected:
            raise InputError(f"{where}: frames {expected}-{shot.first - 1} are in no shot (a gap); "
                             f"set first = {expected} or extend the shot before")
        if shot.first < expected:
            raise InputError(f"{where}: shot starts at frame {shot.first}, inside the shot before "
                             f"(which ends at {expected - 1}); set first = {expected}")
        if shot.last >= m.frames:
            raise InputError(f"{where}: last = {shot.last} is past the film's last frame "
                             f"{m.frames - 1}")
        for k in shot.keyframes:
            if k.frame is not None and not shot.first <= k.frame <= shot.last:
                raise InputError(f"{where}: keyframe {k.file.name} names frame {k.frame}, "
                                 f"outside the shot's frames {shot.first}-{shot.last}")
        expected = shot.last + 1
    if expected != m.frames:
        raise InputError(f"{_where(m.path, m.shots[-1])}: the shots end at frame {expected - 1} "
                         f"but the film has {m.frames} frames; set last = {m.frames - 1}")


def _toml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def format_manifest(m: Manifest) -> str:
    """The manifest as TOML, with a header saying how to edit it."""
    out = [HEADER.format(film=m.film or "FILM", folder=m.folder), ""]
    out.append(f"film = {_toml_str(m.film)}")
    out.append(f"frames = {m.frames}")
    out.append(f"frame_rate = {_toml_str(m.frame_rate)}")
    out.append(f"size = [{m.size[0]}, {m.size[1]}]")
    out.append(f"luma_hash = {_toml_str(m.luma_hash)}")
    for i, s in enumerate(m.shots, 1):
        out += ["", f"[[shot]]  # shot {i}", f"first = {s.first}", f"last = {s.last}"]
        if s.start is not None:
            out.append(f"start = {float(s.start):.3f}")
        if s.end is not None:
            out.append(f"end = {float(s.end):.3f}")
        if s.keyframe is not None:
            out.append(f"keyframe = {s.keyframe}")
        if s.grey:
            out.append(f"grey = {_toml_str(s.grey)}")
        if s.auto:
            out.append(f"auto = {_toml_str(s.auto)}")
        kfs = []
        for k in s.keyframes:
            name = _toml_str(_rel(k.file, m.folder))
            kfs.append(name if k.frame is None else f"{{ file = {name}, frame = {k.frame} }}")
        out.append(f"keyframes = [{', '.join(kfs)}]")
        ref = _rel(s.reference, m.folder) if s.reference else ""
        out.append(f"reference = {_toml_str(ref)}")
        out.append(f"hints = [{', '.join(_toml_str(_rel(h, m.folder)) for h in s.hints)}]")
        out.append(f"saturation = {s.saturation:g}")
    return "\n".join(out) + "\n"


def _rel(p: Path, folder: Path) -> str:
    try:
        return Path(p).relative_to(folder).as_posix()
    except ValueError:
        return str(p)


def atomic_write_text(path: Path, text: str) -> Path:
    """Write a text file atomically (a temporary file beside it, renamed over it): a reader, or
    a second writer, sees the old file or the new one, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.stem + ".", suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_manifest(m: Manifest) -> Path:
    """Write the manifest atomically (a temporary file renamed over it)."""
    return atomic_write_text(m.path, format_manifest(m))
