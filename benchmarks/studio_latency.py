"""How long the studio's page waits: the steered keyframe preview after each kind of edit, at
854x480, through the real HTTP API (Starlette's test client, in process, shipped models).

The film: three DAVIS clips of ``../shared/data/videos`` made grey (854x480, 40 frames each, so
three shots), or without them the bundled sample scaled to 854x480. Prints a table; writes
``benchmarks/results/studio_latency.{json,txt}``::

    .venv/bin/python benchmarks/studio_latency.py [--trials 8]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
VIDEOS = ROOT.parent / "shared" / "data" / "videos"
CLIPS = ("davis_dog", "davis_blackswan", "davis_car-roundabout")
SIZE = (854, 480)
PER_CLIP = 40


def grey_frames() -> tuple[list[np.ndarray], str]:
    if all((VIDEOS / c).is_dir() for c in CLIPS):
        frames = []
        for c in CLIPS:
            for p in sorted((VIDEOS / c).glob("*.jpg"))[:PER_CLIP]:
                im = Image.open(p).convert("L").resize(SIZE, Image.Resampling.BICUBIC)
                frames.append(np.array(im))
        return frames, f"{' + '.join(CLIPS)} (grey, first {PER_CLIP} frames each)"
    frames = []
    with av.open(str(ROOT / "samples" / "sample.mp4")) as c:
        for f in c.decode(video=0):
            im = f.to_image().convert("L").resize(SIZE, Image.Resampling.BICUBIC)
            frames.append(np.array(im))
    return frames, "samples/sample.mp4 scaled to 854x480 (no ../shared here)"


def write_grey(path: Path, frames: list[np.ndarray]) -> None:
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        vs.options = {"crf": "16", "preset": "veryfast"}
        for i, g in enumerate(frames):
            f = av.VideoFrame.from_ndarray(np.repeat(g[..., None], 3, 2), format="rgb24")
            f = f.reformat(format="yuv420p")
            f.pts = i
            out.mux(vs.encode(f))
        out.mux(vs.encode(None))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "studio_latency")
    args = ap.parse_args()
    from starlette.testclient import TestClient

    from vidcolor.pipeline import ColorizeOptions
    from vidcolor.studio.server import make_app
    from vidcolor.studio.session import Studio

    frames, source = grey_frames()
    work = Path(tempfile.mkdtemp(prefix="studio-latency-"))
    film = work / "film.mp4"
    write_grey(film, frames)
    cpu0, t0 = time.process_time(), time.perf_counter()
    studio = Studio(film, work / "shots", colorize=ColorizeOptions(quiet=True),
                    output=work / "color.mp4")
    open_s = time.perf_counter() - t0
    client = TestClient(make_app(studio, "t"))
    auth = {"X-Vidcolor-Token": "t"}
    shots = client.get("/api/film", headers=auth).json()["shots"]
    rows: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}

    class clock:  # books the wall and process CPU seconds of what it wraps
        def __init__(self, label: str) -> None:
            self.label = label

        def __enter__(self) -> None:
            self.t, self.c = time.perf_counter(), time.process_time()

        def __exit__(self, *exc: object) -> None:
            rows.setdefault(self.label, []).append(time.perf_counter() - self.t)
            cpus.setdefault(self.label, []).append(time.process_time() - self.c)

    def timed(label: str, path: str) -> None:
        with clock(label):
            r = client.get(path, headers=auth)
        assert r.status_code == 200, r.text

    rng = np.random.default_rng(0)
    for n in range(args.trials):
        s = shots[n % len(shots)]
        i, key = s["index"], s["keyframe"]
        timed("grey keyframe", f"/api/shot/{i}/frame/{key}?kind=grey")
        timed("automatic keyframe (first view)", f"/api/shot/{i}/frame/{key}?kind=auto&v={n}")
        studio._auto_full.clear()
        points = [{"x": float(rng.uniform(50, 800)), "y": float(rng.uniform(50, 430)),
                   "color": "#d05a28"} for _ in range(1 + n % 4)]
        with clock("steered preview after a hint click"):
            client.post(f"/api/shot/{i}/hints", headers=auth,
                        json={"frame": key, "points": points})
            r = client.get(f"/api/shot/{i}/frame/{key}?kind=steered&v={n}", headers=auth)
        assert r.status_code == 200
        with clock("steered preview after a saturation change"):
            client.post(f"/api/shot/{i}/saturation", headers=auth,
                        json={"value": 1.0 + 0.1 * n})
            client.get(f"/api/shot/{i}/frame/{key}?kind=steered&v=s{n}", headers=auth)
    photo = io.BytesIO()
    src = VIDEOS / "davis_kite-surf" / "00000.jpg"
    pic = (Image.open(src).convert("RGB") if src.is_file() else Image.open(
        ROOT / "samples" / "steer" / "keyframe_f000062.png").convert("RGB"))
    pic.save(photo, format="JPEG", quality=90)
    for n in range(min(args.trials, len(shots))):
        s = shots[n]
        with clock("steered preview after a reference photo drop"):
            client.put(f"/api/shot/{s['index']}/image", headers=auth, content=photo.getvalue())
            client.get(f"/api/shot/{s['index']}/frame/{s['keyframe']}?kind=steered&v=r{n}",
                       headers=auth)
    for s in shots:
        with clock("scrubber run (whole shot propagated)"):
            client.get(f"/api/shot/{s['index']}/frame/{s['first']}?kind=steered", headers=auth)
    cpu = time.process_time() - cpu0
    studio.close()
    result = {
        "film": source, "size": list(SIZE), "frames": len(frames), "shots": len(shots),
        "open_s": round(open_s, 2), "cpu_count": os.cpu_count(),
        "rows": {k: {"median_s": round(statistics.median(v), 3), "max_s": round(max(v), 3),
                     "median_cpu_s": round(statistics.median(cpus[k]), 3), "n": len(v)}
                 for k, v in rows.items()},
        "process_cpu_s": round(cpu, 1),
    }
    lines = [f"studio latency at {SIZE[0]}x{SIZE[1]}: {source}",
             f"{len(frames)} frames, {len(shots)} shots; opening the film (shots found, "
             f"models loaded, one decode pass): {open_s:.1f} s", "",
             f"{'what the page waits for':48s} {'median':>8s} {'max':>8s} {'CPU':>8s}  n"]
    for k, v in result["rows"].items():
        lines.append(f"{k:48s} {v['median_s']:7.2f}s {v['max_s']:7.2f}s "
                     f"{v['median_cpu_s']:7.2f}s  {v['n']}")
    lines.append("(wall seconds per request; CPU: process CPU seconds, all threads, median)")
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    args.out.with_suffix(".txt").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
