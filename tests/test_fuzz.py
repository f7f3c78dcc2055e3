"""Bounded fuzzing of the input contract: mutated headers, flipped bytes and truncations of
small fixtures (a fixed seed). Whatever the damage: no traceback, a documented exit code, no
temporary file left behind, the input untouched, and a film only when the exit code says so."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_clip
from tests.test_archives import write_animation_file, write_film
from vidcolor.__main__ import main

CASES = 160
SEED = 14
DOCUMENTED = {0, 3, 9}
"""Done, bad input, read error: what any input file may earn (the options are all valid)."""


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One of: truncation, flipped bytes in the header, a zeroed run, a duplicated block."""
    b = bytearray(data)
    kind = int(rng.integers(4))
    if kind == 0:  # truncated anywhere, the header too
        return bytes(b[: int(rng.integers(0, len(b)))])
    if kind == 1:  # the first kilobyte (container headers, codec config) hit by a few flips
        for _ in range(int(rng.integers(1, 12))):
            i = int(rng.integers(0, min(len(b), 1024)))
            b[i] ^= 1 << int(rng.integers(8))
        return bytes(b)
    if kind == 2:  # a run of zeroes somewhere (a bad sector)
        i = int(rng.integers(0, len(b)))
        n = int(rng.integers(1, 512))
        b[i : i + n] = bytes(len(b[i : i + n]))
        return bytes(b)
    i, j = sorted(int(x) for x in rng.integers(0, len(b), 2))  # a block repeated (bad splice)
    return bytes(b[:j] + b[i:j] + b[j:])


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, bytes]]:
    d = tmp_path_factory.mktemp("fuzz-seeds")
    files = [
        make_clip(d / "clip.mp4", n=8, size=(48, 32)),
        make_clip(d / "clip.mkv", n=8, size=(48, 32), gop=4),
        write_film(d / "camera.mov", timecode=True, n=6),
        write_film(d / "reel.mkv", attachment=True, n=6),
        write_animation_file(d / "anim.gif", n=4),
    ]
    return [(p.suffix, p.read_bytes()) for p in files]


def test_fuzzed_inputs_keep_the_contract(tmp_path: Path, tiny_model: Path, seeds, capsys):
    rng = np.random.default_rng(SEED)
    codes: dict[int, int] = {}
    for case in range(CASES):
        suffix, data = seeds[case % len(seeds)]
        work = tmp_path / f"case{case:03d}"
        work.mkdir()
        src = work / f"input{suffix}"
        src.write_bytes(mutate(data, rng))
        digest = hashlib.sha256(src.read_bytes()).hexdigest()
        dest = work / "out.mp4"
        code = main([str(src), "-o", str(dest), "--model", str(tiny_model), "--pipeline", "fast",
                     "--flow", "none", "-q"])
        err = capsys.readouterr().err
        assert code in DOCUMENTED, f"case {case} ({suffix}): exit {code}: {err}"
        assert "Traceback" not in err, f"case {case}: {err}"
        assert hashlib.sha256(src.read_bytes()).hexdigest() == digest
        left = sorted(p.name for p in work.iterdir())
        assert left == (["input" + suffix, "out.mp4"] if code == 0 else ["input" + suffix]), (
            f"case {case}: exit {code}, files {left}")
        if code != 0:
            assert len([ln for ln in err.splitlines() if ln.strip()]) <= 2, err
        codes[code] = codes.get(code, 0) + 1
    assert codes.get(0, 0) > 0 and codes.get(3, 0) > 0  # both outcomes were exercised
