"""Random access to a film's frames by number, for the studio: one decode pass at open records
every frame's time (and the film's identity), later reads seek to the frame they need."""

from __future__ import annotations

import bisect
import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from vidcolor import lab
from vidcolor.colorize import resize
from vidcolor.errors import InputError
from vidcolor.media.decode import FrameReader, VideoInfo, iter_frames, luma_to_unit
from vidcolor.preview import _upright
from vidcolor.progress import progress_bar
from vidcolor.steer.shots import HASH_FRAMES, luma_hash_bytes

CACHE_FRAMES = 48
"""Full-size frames kept in memory (about 80 MB at 854x480): a shot's scrubber and keyframes."""
SEEK_GAP = 48
"""Wanted frames closer than this are read on from the last one rather than sought afresh."""
THUMB_WIDTH = 240


@dataclass
class FilmIndex:
    """What one pass over the film learns: frame times, count and ``luma_hash``."""

    times: list[Fraction]
    luma_hash: str
    thumbs: dict[int, np.ndarray]
    """Small upright grey uint8 frames asked for during the pass."""


def thumb_grey(unit: np.ndarray, info: VideoInfo, width: int = THUMB_WIDTH) -> np.ndarray:
    """Coded-orientation Y' in [0, 1] -> an upright grey uint8 RGB thumbnail ``width`` wide."""
    up = _upright(unit, info)
    h = max(2, round(up.shape[0] * width / up.shape[1]))
    small = resize(torch.from_numpy(np.ascontiguousarray(up))[None, None], (h, width))[0, 0]
    g = (small.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).numpy()
    return np.repeat(g[..., None], 3, axis=2)


def scan_film(
    info: VideoInfo, working: tuple[int, int], *, want: set[int], quiet: bool = True
) -> FilmIndex:
    """Decode the film once: each frame's time, the luma hash ``vidcolor shots`` writes, and
    grey thumbnails of the frames in ``want``."""
    digest = hashlib.sha1()
    times: list[Fraction] = []
    thumbs: dict[int, np.ndarray] = {}
    bar = progress_bar(total=info.frame_count, desc=f"reading {info.path.name}", quiet=quiet)
    try:
        with iter_frames(info) as reader:
            for frame in reader:
                if frame.index < HASH_FRAMES or frame.index in want:
                    unit = luma_to_unit(frame.y, frame.bit_depth, frame.full_range)
                    if frame.index < HASH_FRAMES:
                        L = lab.grey_to_l(resize(torch.from_numpy(unit)[None, None], working))[0]
                        digest.update(luma_hash_bytes(L))
                    if frame.index in want:
                        thumbs[frame.index] = thumb_grey(unit, info)
                times.append(frame.time)
                bar.update(1)
    finally:
        bar.close()
    if not times:
        raise InputError(f"{info.path}: no decodable video frame")
    return FilmIndex(times=times, luma_hash=digest.hexdigest()[:16], thumbs=thumbs)


class FilmFrames:
    """Frames by number as coded-orientation Y' in [0, 1] (H, W) float32, with a small cache."""

    def __init__(self, info: VideoInfo, times: list[Fraction]) -> None:
        self.info = info
        self.times = times
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self.times)

    def get(self, indices: list[int] | set[int]) -> dict[int, np.ndarray]:
        """The frames asked for (seeking to runs of nearby frames; cached ones are not read)."""
        wanted = sorted(set(indices))
        for i in wanted:
            if not 0 <= i < len(self.times):
                raise InputError(f"frame {i} is not in the film (0-{len(self.times) - 1})")
        out = {i: self._cache[i] for i in wanted if i in self._cache}
        missing = [i for i in wanted if i not in out]
        while missing:
            run = [missing[0]]
            for i in missing[1:]:
                if i - run[-1] > SEEK_GAP:
                    break
                run.append(i)
            missing = missing[len(run):]
            out.update(self._read_run(run))
        for i in wanted:
            self._cache[i] = out[i]
            self._cache.move_to_end(i)
        while len(self._cache) > CACHE_FRAMES:
            self._cache.popitem(last=False)
        return out

    def _read_run(self, run: list[int]) -> dict[int, np.ndarray]:
        got: dict[int, np.ndarray] = {}
        want = set(run)
        with FrameReader(self.info, start=self.times[run[0]]) as reader:
            for frame in reader:
                i = bisect.bisect_left(self.times, frame.time)
                if i in want:
                    got[i] = luma_to_unit(frame.y, frame.bit_depth, frame.full_range)
                if i >= run[-1]:
                    break
        if len(got) != len(want):
            lost = sorted(want - set(got))
            raise InputError(f"{self.info.path}: frames {lost[:5]} could not be read again "
                             "(a damaged or unseekable file?)")
        return got
