"""Choose a model's film fading (``film_fade``, ``fade_power``, ``fade_cast``) on clips: every
6th of each clip's first 90 frames, made grey, through the photo path per frame (the network
once, only the cheap head mix redone per setting; no temporal stage, which ``eval_films.py``
adds for the final figures). Per setting: PSNR against grey (mean and worst clip), the output's
colourfulness against the truth's (mean of per-clip ratios) and the blotch share.

    .venv/bin/python benchmarks/tune_film.py ../shared/data/videos \\
        --json benchmarks/results/tune_film.json
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch
from eval_temporal import clips_in  # this folder's scripts
from tune_inference import raw_outputs, score

from vidcolor import lab
from vidcolor.colorize import Colorizer, resize
from vidcolor.models import DEFAULT_MODEL
from vidcolor.presets import PipelineSettings
from vidcolor.temporal.evaluate import read_clip
from vidcolor.train.metrics import colorfulness, psnr

SETTINGS = ([{"fade": 0.0}] + [{"fade": f, "fade_power": p} for p in (1.0, 1.2, 1.5)
                               for f in (0.3, 0.34, 0.38, 0.42)]
            + [{"fade": f, "fade_power": 1.2, "fade_cast": c} for c in (0.5, 0.25)
               for f in (0.26, 0.3, 0.34, 0.38)])
"""The shipped model's own mix first (what ``--vivid`` gives), then fading strengths, then
fading with the frame's mean colour (a guessed cast) partly removed."""


def clip_cache(clip: Path, colorizer: Colorizer, working: int, every: int) -> list[dict]:
    """The heads' raw outputs for every ``every``-th frame of the clip (frames over 854x480
    halved, as a film's chroma plane is about that size)."""
    frames, _ = read_clip(clip, max_frames=90)
    out = []
    for fr in frames[::every]:
        rgb = torch.from_numpy(np.array(fr)).permute(2, 0, 1)[None].float() / 255
        if rgb.shape[-1] * rgb.shape[-2] > 854 * 480:
            rgb = resize(rgb, (rgb.shape[-2] // 2, rgb.shape[-1] // 2))
        L = lab.rgb_to_l(rgb)
        grey = lab.lab_to_rgb(torch.cat([L, torch.zeros_like(L).expand(-1, 2, -1, -1)], 1))
        out.append({"L": L, "rgb": rgb, **raw_outputs(colorizer, L, working),
                    "grey": float(psnr((grey * 255).round() / 255, rgb)),
                    "truth_cf": float(colorfulness(rgb))})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--every", type=int, default=6)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    logging.getLogger("vidcolor").setLevel(logging.WARNING)
    torch.set_grad_enabled(False)
    working = PipelineSettings().working_short_side
    colorizer = Colorizer.load(a.model, device="cpu", working_short_side=working)
    own = {k: getattr(colorizer.model.cfg, k) for k in
           ("temperature", "mix", "mix_confidence", "confidence", "smooth", "damp", "saturation")}
    clips = [(c.name, clip_cache(c, colorizer, working, a.every)) for c in clips_in(a.folder)]
    print(f"{a.model}: {len(clips)} clips, every {a.every}th of 90 frames, working {working}")
    print(f"{'setting':<34}{'vs grey':>8}{'worst':>7}{'colourful':>10}{'blotch %':>9}  per clip")
    rows = []
    for setting in SETTINGS:
        per = []
        for name, cache in clips:
            m = score(colorizer.model, cache, {**own, **setting})
            per.append({"clip": name, "vs_grey": m["psnr"] - np.mean([c["grey"] for c in cache]),
                        "colorfulness_ratio": m["colorfulness"]
                        / np.mean([c["truth_cf"] for c in cache]), "blotch": m["blotch"]})
        d = [p["vs_grey"] for p in per]
        row = {"setting": setting, "mean_vs_grey_db": float(np.mean(d)),
               "worst_vs_grey_db": float(min(d)),
               "colorfulness_vs_truth": float(np.mean([p["colorfulness_ratio"] for p in per])),
               "blotch": float(np.mean([p["blotch"] for p in per])), "clips": per}
        rows.append(row)
        print(f"{json.dumps(setting):<34}{row['mean_vs_grey_db']:>+8.2f}"
              f"{row['worst_vs_grey_db']:>+7.2f}{row['colorfulness_vs_truth']:>10.2f}"
              f"{100 * row['blotch']:>9.2f}  " + " ".join(f"{x:+.1f}" for x in d), flush=True)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"model": a.model, "every": a.every, "rows": rows},
                                     indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
