"""Score a fusion checkpoint's inference settings (head mix, confidence measure, temperature,
bin smoothing, saturation) on held-out photos, to choose the shipped defaults (PSNR,
colorfulness and the blotch share; SSIM is left to ``vidcolor eval-images``).

The network runs once per photo, through the same path as ``vidcolor photo.jpg`` (working size,
guided upsampling, the L-keeping conversion); only the cheap head mix is redone per setting.

    .venv/bin/python benchmarks/tune_inference.py --model runs/fusion-v2 --data .data/all \\
        --under train_more --json benchmarks/results/tune_inference.json
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vidcolor import lab
from vidcolor.colorize import Colorizer, lab_to_rgb_keep_l, resize, working_size
from vidcolor.models.fusion import FusionConfig, mix_heads
from vidcolor.presets import PipelineSettings
from vidcolor.train.data import find_images, is_validation, load_rgb
from vidcolor.train.metrics import blotch, colorfulness, psnr
from vidcolor.upsample import guided_upsample

SHIPPED = {"temperature": 0.38, "mix": 1.0, "mix_confidence": True, "confidence": "entropy",
           "smooth": 0, "damp": 0.0, "saturation": 1.0}
"""vidcolor-fusion v1's inference settings, the first row of every sweep."""
FADING = {f.name: f.default for f in fields(FusionConfig) if f.name.startswith("fade")}
"""Film fading off (the options' own defaults): where a setting names none, it starts from
these, not from the fading written into the model's config."""


def variants() -> list[tuple[str, dict[str, Any]]]:
    """The settings compared: the v1 defaults, each head alone, then one knob at a time."""
    out: list[tuple[str, dict[str, Any]]] = [
        ("v1 settings (mix 1 x entropy, T 0.38)", dict(SHIPPED)),
        ("regression head only", {**SHIPPED, "mix": 0.0}),
        ("bin head only, T 0.38", {**SHIPPED, "mix_confidence": False}),
    ]
    for mix in (0.5, 0.75, 1.5):
        out.append((f"mix {mix} x entropy", {**SHIPPED, "mix": mix}))
    for ref in (20.0, 30.0):
        for mix in (1.0, 1.5):
            out.append((f"mix {mix} x spread {ref:g}",
                        {**SHIPPED, "mix": mix, "confidence": "spread", "spread_ref": ref}))
    spread = {**SHIPPED, "mix": 1.5, "confidence": "spread", "spread_ref": 30.0}
    for name, base in (("mix 1 x entropy", SHIPPED), ("mix 1.5 x spread 30", spread)):
        out.append((f"{name}, smooth 2", {**base, "smooth": 2}))
        for damp in (0.5, 1.0):
            out.append((f"{name}, damp {damp}", {**base, "damp": damp}))
        out.append((f"{name}, damp 0.5, saturation 1.15",
                    {**base, "damp": 0.5, "saturation": 1.15}))
    out.append(("mix 1 x entropy, T 0.5", {**SHIPPED, "temperature": 0.5}))
    return out


@torch.inference_mode()
def raw_outputs(colorizer: Colorizer, L: torch.Tensor, working: int) -> dict[str, torch.Tensor]:
    """The heads' raw outputs for L at the working size (what every setting starts from), in
    the precision the CLI runs the model at."""
    model = colorizer.model
    size = working_size(*L.shape[-2:], working)
    L_lo = resize(L, size)
    with colorizer.autocast():
        skips, emb = model.encode(L_lo.contiguous(memory_format=torch.channels_last))
        x4, x2 = model.decoder(skips, emb)
        ab_reg, logits = torch.tanh(model.reg_head(x2)), model.bin_head(x4)
    return {"L_lo": L_lo, "ab_reg": ab_reg.float(), "logits": logits.half()}


def score(model, cache: list[dict[str, torch.Tensor]], overrides: dict[str, Any]) -> dict:
    """Mean metrics of one setting over the cached photos."""
    sat = overrides.get("saturation", 1.0)
    cfg = replace(model.cfg, **{**FADING, **{k: v for k, v in overrides.items()
                                             if k != "saturation"}})
    rows: dict[str, list[float]] = {}
    for c in cache:
        L_lo, rgb = c["L_lo"], c["rgb"]
        ab_lo = mix_heads(c["ab_reg"], c["logits"].float(), model.bin_centers, cfg,
                          c["ab_reg"].shape[-2:])
        ab_lo = F.interpolate(ab_lo, size=L_lo.shape[-2:], mode="bilinear", align_corners=False)
        L = c["L"]
        pred = lab_to_rgb_keep_l(L, guided_upsample(ab_lo * sat, L_lo, L))
        for k, v in (("psnr", psnr(pred, rgb)), ("colorfulness", colorfulness(pred)),
                     ("blotch", blotch(pred, rgb))):
            rows.setdefault(k, []).append(float(v))
    return {k: float(np.mean(v)) for k, v in rows.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--under", nargs="*", default=[], help="subfolders of --data to use")
    ap.add_argument("--split", default="val", choices=("val", "all"))
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--limit", type=int)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--setting", action="append", default=[], metavar="JSON",
                    help="score only these settings (JSON of options over the v1 settings); "
                    "repeatable")
    a = ap.parse_args()
    logging.getLogger("vidcolor").setLevel(logging.WARNING)
    torch.set_grad_enabled(False)
    working = PipelineSettings().working_short_side
    colorizer = Colorizer.load(a.model, device="cpu", working_short_side=working)
    model = colorizer.model
    files = find_images(a.data)
    if a.split == "val":
        files = [p for p in files if is_validation(p, a.data)]
    tops = tuple(u.strip("/") + "/" for u in a.under)
    if tops:
        files = [p for p in files if p.relative_to(a.data).as_posix().startswith(tops)]
    cache, truth_cf, grey_psnr = [], [], []
    t0 = time.perf_counter()
    for p in files[: a.limit]:
        rgb_u8 = load_rgb(p, a.size)
        if rgb_u8 is None or rgb_u8.size == 0:
            continue
        rgb = torch.from_numpy(rgb_u8).permute(2, 0, 1)[None].float() / 255.0
        L = lab.rgb_to_l(rgb)
        cache.append({"L": L, "rgb": rgb, **raw_outputs(colorizer, L, working)})
        grey = lab.lab_to_rgb(torch.cat([L, torch.zeros_like(L).expand(-1, 2, -1, -1)], 1))
        truth_cf.append(float(colorfulness(rgb)))
        grey_psnr.append(float(psnr(grey, rgb)))
    print(f"{a.model}: {len(cache)} photos ({', '.join(a.under) or 'all'}, {a.split} split) at "
          f"{a.size} px, working {working}, {colorizer.precision}; network pass "
          f"{time.perf_counter() - t0:.0f} s; "
          f"grey PSNR {np.mean(grey_psnr):.2f} dB, truth colorfulness {np.mean(truth_cf):.1f}")
    rows = []
    print(f"{'setting':<44}{'PSNR':>7}{'colorful':>9}{'blotch %':>9}")
    chosen = [(v, {**SHIPPED, **json.loads(v)}) for v in a.setting] or variants()
    for label, overrides in chosen:
        m = score(model, cache, overrides)
        rows.append({"setting": label, "overrides": overrides, **m})
        print(f"{label:<44}{m['psnr']:>7.2f}{m['colorfulness']:>9.1f}"
              f"{100 * m['blotch']:>9.2f}", flush=True)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({
            "model": str(a.model), "data": str(a.data), "under": a.under, "split": a.split,
            "photos": len(cache), "grey_psnr": float(np.mean(grey_psnr)),
            "truth_colorfulness": float(np.mean(truth_cf)), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
