"""Facts of the shipped models for the model card: parameters, file size, and the model
stage's CPU time per frame at the default working size (224x384, batch 4) in fp32, under
the default precision (bf16 autocast where the CPU has it), and so in a film (faded where the
model is unsure, for models that fade), timed in one run; freed memory kept as a film keeps
it (``keep_freed_memory``), on ``--threads`` intra-op threads (a film on 2 cores uses 1).

    .venv/bin/python benchmarks/model_facts.py --threads 1 | tee benchmarks/results/model_facts.txt
"""

from __future__ import annotations

import argparse
import logging
import time

import torch

from vidcolor.colorize import Colorizer
from vidcolor.models import load_model, resolve_checkpoint
from vidcolor.names import available_models
from vidcolor.pipeline import keep_freed_memory


def cpu_ms_per_frame(colorizer: Colorizer, batch: int, repeats: int) -> float:
    """Median process CPU time per frame of ``predict`` (robust to a busy machine)."""
    L = torch.rand(batch, 1, 224, 384) * 100
    colorizer.predict(L)  # warm-up
    times = []
    for _ in range(repeats):
        t = time.process_time()
        colorizer.predict(L)
        times.append((time.process_time() - t) * 1000 / batch)
    return sorted(times)[len(times) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=None)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="intra-op threads (default: "
                    "torch's, one a core)")
    a = ap.parse_args()
    logging.getLogger("vidcolor").setLevel(logging.WARNING)
    torch.set_grad_enabled(False)
    keep_freed_memory()
    if a.threads:
        torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'model':<22}{'params M':>9}{'file MB':>8}{'fp32 CPU-ms/frame':>19}"
          f"{'default':>9}{'CPU-ms/frame':>13}{'film CPU-ms/frame':>19}")
    for name in a.models or available_models():
        fp32 = Colorizer.load(name, device="cpu", precision="fp32")
        auto = Colorizer.load(name, device="cpu")
        # as trained and shipped (inference folds batch norm into the convolutions)
        net, _ = load_model(name, device=torch.device("cpu"))
        params = sum(p.numel() for p in net.parameters()) / 1e6
        size = resolve_checkpoint(name).stat().st_size / 1e6
        if fp32.config.get("arch") == "exemplar":  # a guided network: timed through steering
            print(f"{name:<22}{params:>9.2f}{size:>8.1f}{'-':>19}{auto.precision:>9}{'-':>13}"
                  f"{'-':>19}")
            continue
        ms32 = cpu_ms_per_frame(fp32, 4, a.repeats)
        ms = cpu_ms_per_frame(auto, 4, a.repeats)
        auto.use_fade(True)
        fades = getattr(getattr(auto.model, "cfg", None), "fade", 0.0) > 0
        film = f"{cpu_ms_per_frame(auto, 4, a.repeats):.1f}" if fades else "as default"
        print(f"{name:<22}{params:>9.2f}{size:>8.1f}{ms32:>19.1f}{auto.precision:>9}{ms:>13.1f}"
              f"{film:>19}")


if __name__ == "__main__":
    main()
