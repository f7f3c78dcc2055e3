"""``vidcolor train``: AdamW + warm-up/cosine, exact resume, atomic checkpoints, validation."""

from __future__ import annotations

import ast
import csv
import json
import logging
import math
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from vidcolor import lab
from vidcolor.colorize import pick_device
from vidcolor.errors import DataError, DeviceError, ModelError, UsageError
from vidcolor.models import (
    ARCHITECTURES,
    GUIDED_ARCHITECTURES,
    PRIOR_ARCHITECTURES,
    TINY_CONFIGS,
    build_model,
    resolve_checkpoint,
)
from vidcolor.models.checkpoint import (
    atomic_write_bytes,
    read_config,
    read_weights,
    save_checkpoint,
    save_tensors,
)
from vidcolor.models.chromagan import PatchCritic, class_kl, gradient_penalty
from vidcolor.models.fusion import upgrade_state_dict
from vidcolor.models.lite0 import lite0
from vidcolor.names import PRECISIONS
from vidcolor.options import TrainOptions
from vidcolor.progress import progress_bar
from vidcolor.train import losses
from vidcolor.train.data import (
    CropDataset,
    ImageSet,
    StepBatchSampler,
    find_images,
    is_validation,
    load_image_set,
)
from vidcolor.train.degrade import DegradeOptions
from vidcolor.train.evaluate import evaluate_one
from vidcolor.train.guidance import sample_guidance

log = logging.getLogger("vidcolor")

TINY_CRITIC = (16, 32, 32, 32)
"""PatchCritic channels with ``tiny`` (the full critic is most of a tiny run's cost)."""


def use_bf16(precision: str, device: torch.device) -> bool:
    """Whether training autocasts to bf16: asked for, or "auto" on hardware that has it."""
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return True
    return device.type == "cpu" and bool(torch.backends.mkldnn.is_available()) and bool(
        torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )


def lr_factor(step: int, *, warmup: int, steps: int) -> float:
    """Linear warm-up then cosine decay to 2% of the peak."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    t = (step - warmup) / max(1, steps - warmup)
    return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def batch_to_lab(grey_u8: torch.Tensor, rgb_u8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Loader batch -> (input L from the degraded grey, target ab from the clean colour)."""
    L_in = lab.grey_to_l(grey_u8.float() / 255.0)
    target = lab.rgb_to_lab(rgb_u8.float() / 255.0)
    return L_in, target[:, 1:]


def _optimizer_tensors(opt: torch.optim.Optimizer, prefix: str) -> tuple[dict, dict]:
    """Split an optimizer state dict into tensors (safetensors) and plain JSON."""
    sd = opt.state_dict()
    tensors, plain = {}, {"param_groups": sd["param_groups"], "state_keys": {}}
    for pid, st in sd["state"].items():
        plain["state_keys"][str(pid)] = list(st)
        for k, v in st.items():
            tensors[f"{prefix}.{pid}.{k}"] = v if torch.is_tensor(v) else torch.tensor(v)
    return tensors, plain


def _optimizer_from(tensors: dict, plain: dict, prefix: str) -> dict:
    """Inverse of :func:`_optimizer_tensors`: a state dict for ``load_state_dict``."""
    state = {
        int(pid): {k: tensors[f"{prefix}.{pid}.{k}"] for k in keys}
        for pid, keys in plain["state_keys"].items()
    }
    return {"state": state, "param_groups": plain["param_groups"]}


class Trainer:
    """Owns the model, optimizers, data and run folder of one training run."""

    def __init__(self, opt: TrainOptions) -> None:
        if opt.model not in ARCHITECTURES:
            raise UsageError(
                f"unknown --model {opt.model!r}; choose one of {', '.join(ARCHITECTURES)}"
            )
        if opt.steps < 1 or opt.batch_size < 1:
            raise UsageError(
                f"--steps and --batch-size must be >= 1, got {opt.steps}, {opt.batch_size}"
            )
        if opt.resume and opt.init is not None:
            raise UsageError(
                f"--init {opt.init} starts a new run from those weights; --resume continues the "
                "run in --out: give one of them"
            )
        if opt.precision not in PRECISIONS:
            raise UsageError(
                f"unknown precision {opt.precision!r}; choose one of {', '.join(PRECISIONS)}"
            )
        if opt.unfreeze_blocks < 0:
            raise UsageError(f"--unfreeze-blocks must be >= 0, got {opt.unfreeze_blocks}")
        if opt.keep_checkpoints < 1 or opt.ckpt_every < 1 or opt.val_every < 1:
            raise UsageError(
                "keep_checkpoints, --ckpt-every and --val-every must be >= 1, got "
                f"{opt.keep_checkpoints}, {opt.ckpt_every}, {opt.val_every}"
            )
        self.opt = opt
        self.device = pick_device(opt.device)
        self.out = Path(opt.out)
        # Seed before anything is built, so --seed fixes the initial weights too.
        torch.manual_seed(opt.seed)
        np.random.seed(opt.seed)
        random.seed(opt.seed)
        cfg = dict(TINY_CONFIGS[opt.model]) if opt.tiny else self._init_config()
        cfg.update(opt.model_overrides)
        self.model = build_model(opt.model, cfg, pretrained_encoder=not opt.tiny)
        stride = int(getattr(self.model, "stride", 32))
        if opt.image_size % stride:
            raise UsageError(
                f"--image-size must be divisible by the {opt.model} network's stride {stride}, "
                f"got {opt.image_size}"
            )
        self.model.to(self.device)
        self.is_gan = opt.model == "chromagan"
        self.guided = opt.model in GUIDED_ARCHITECTURES
        # The frozen ImageNet prior; the autoencoder's own 'encoder' is no prior and must train.
        self.encoder = self.model.encoder if opt.model in PRIOR_ARCHITECTURES else None
        if self.encoder is not None:
            self.encoder.requires_grad_(False)
        critic = (PatchCritic(TINY_CRITIC) if opt.tiny else PatchCritic()) if self.is_gan else None
        self.critic = critic.to(self.device) if critic is not None else None
        self.teacher = None
        if self.is_gan:  # frozen ImageNet classifier whose class distribution the generator learns
            self.teacher = lite0(pretrained=not opt.tiny).to(self.device).eval()
            self.teacher.requires_grad_(False)
        self.optim = self._make_optimizer()
        self.critic_optim = (
            torch.optim.AdamW(self.critic.parameters(), lr=opt.lr, betas=(0.5, 0.9))
            if self.critic is not None
            else None
        )
        self.step = 0
        self.amp = use_bf16(opt.precision, self.device)

    def _init_config(self) -> dict[str, Any]:
        """Network config inherited from --init (same architecture, or fusion weights for a
        guided network built on them), so its widths and inference options carry over."""
        if self.opt.init is None:
            return {}
        src = read_config(resolve_checkpoint(self.opt.init))
        same = src.get("arch") == self.opt.model
        if same or (self.opt.model in GUIDED_ARCHITECTURES and src.get("arch") == "fusion"):
            return dict(src.get("model", {}))
        return {}

    def _make_optimizer(self) -> torch.optim.Optimizer:
        enc = set(map(id, self.encoder.parameters())) if self.encoder is not None else set()
        rest = [p for p in self.model.parameters() if id(p) not in enc]
        groups = [{"params": rest, "lr": self.opt.lr, "name": "decoder"}]
        if self.encoder is not None:
            groups.append(
                {"params": list(self.encoder.parameters()), "lr": 0.0, "name": "encoder"}
            )
        return torch.optim.AdamW(groups, lr=self.opt.lr, weight_decay=self.opt.weight_decay)

    # ---------------------------------------------------------------- data
    def load_data(self) -> tuple[ImageSet, ImageSet | None]:
        """Find, split and cache the images in RAM."""
        root = Path(self.opt.data)
        files = find_images(root)
        train = [p for p in files if not is_validation(p, root)]
        val = [p for p in files if is_validation(p, root)]
        if self.opt.val_folders:
            tops = {Path(f).as_posix().strip("/") for f in self.opt.val_folders}
            val = [p for p in val if any(
                p.relative_to(root).as_posix().startswith(t + "/") for t in tops
            )]
            if not val:
                raise DataError(
                    f"no held-out photos under {', '.join(sorted(tops))} in {root}; "
                    "--val-folders takes subfolders of --data"
                )
        val = val[: self.opt.val_max]
        if not train:
            train, val = files, []
        cache = round(self.opt.image_size * 1.15)
        train_set = load_image_set(train, short_side=cache, what="training images")
        val_set = None
        if val:
            try:
                val_set = load_image_set(
                    val, short_side=self.opt.val_size, what="validation images"
                )
            except DataError:  # the held-out files are all broken or grey: train without
                log.warning("no usable validation images among %d files; validation skipped",
                            len(val))
        return train_set, val_set

    def fit_rebalancing(self, images: ImageSet) -> None:
        """Set the bin head's rebalancing weights from the training set's ab histogram."""
        if getattr(self.model, "bin_head", None) is None:
            return
        from vidcolor.models import bins as abbins

        rng = np.random.default_rng(self.opt.seed)
        picks = rng.choice(len(images.images), min(2000, len(images.images)), replace=False)
        samples = []
        for i in picks:
            img = torch.from_numpy(images.images[i]).permute(2, 0, 1)[None].float() / 255
            small = torch.nn.functional.interpolate(img, size=(24, 24), mode="area")
            samples.append(lab.rgb_to_lab(small)[0, 1:].flatten(1).T)
        centers = self.model.bin_centers.cpu()
        hist = abbins.smoothed_histogram(torch.cat(samples), centers)
        self.model.bin_weights.copy_(abbins.rebalance_weights(hist).to(self.device))

    # ---------------------------------------------------------------- steps
    def set_lr(self) -> None:
        f = lr_factor(self.step, warmup=self.opt.warmup, steps=self.opt.steps)
        unfrozen = self.encoder_trainable()
        if self.encoder is not None and unfrozen:
            for part in self.trainable_encoder_parts():
                part.requires_grad_(True)
        for g in self.optim.param_groups:
            if g.get("name") == "encoder":
                scale = self.opt.encoder_lr_scale if unfrozen else 0.0
            else:
                scale = 1.0
            g["lr"] = self.opt.lr * f * scale
        if self.critic_optim is not None:
            for g in self.critic_optim.param_groups:
                g["lr"] = self.opt.lr * f

    def generator_loss(
        self, out: dict[str, torch.Tensor], ab: torch.Tensor, rgb: torch.Tensor, L: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Sum of the active losses, and their values for logging."""
        o, parts = self.opt, {}
        total = torch.zeros((), device=ab.device)
        target_n = lab.normalize_ab(ab)
        if "ab_reg" in out:
            fn = losses.blur_averaged_ab if o.blur_loss else losses.huber_ab
            parts["reg"] = fn(out["ab_reg"].float(), target_n)
            total = total + o.huber_weight * parts["reg"]
        if "logits" in out:
            parts["bins"] = losses.rebalanced_bins_ce(
                out["logits"].float(), ab, self.model.bin_centers, self.model.bin_weights
            )
            total = total + o.bins_weight * parts["bins"]
        if self.is_gan:
            with torch.no_grad():
                teacher = self.teacher(self.teacher.prepare(rgb))
            parts["kl"] = class_kl(out["class_logits"].float(), teacher.float())
            parts["gan"] = -self.critic(L, out["ab"]).mean()
            total = total + o.kl_weight * parts["kl"] + o.gan_weight * parts["gan"]
        return total, {k: float(v.detach()) for k, v in parts.items()}

    def train_step(self, grey: torch.Tensor, rgb_u8: torch.Tensor) -> dict[str, float]:
        """One optimisation step (and one critic step for ChromaGAN)."""
        self.model.train()
        if self.encoder is not None:  # frozen batch-norm statistics even when it trains
            self.encoder.eval()
        grey, rgb_u8 = grey.to(self.device), rgb_u8.to(self.device)
        L, ab = batch_to_lab(grey, rgb_u8)
        rgb = rgb_u8.float() / 255.0
        self.set_lr()
        logs: dict[str, float] = {}
        if self.critic is not None:
            amp = torch.autocast(self.device.type, torch.bfloat16, enabled=self.amp)
            with torch.no_grad(), amp:
                fake = self.model(L)["ab"].float()
            d_loss = self.critic(L, fake).mean() - self.critic(L, ab).mean()
            # The interpolation weights come from the step alone: exact on resume, any device.
            gen = torch.Generator(self.device).manual_seed(self.opt.seed * 1_000_003 + self.step)
            gp = gradient_penalty(self.critic, L, ab, fake, generator=gen)
            self.critic_optim.zero_grad(set_to_none=True)
            (d_loss + self.opt.gp_weight * gp).backward()
            self.critic_optim.step()
            logs.update(critic=float(d_loss.detach()), gp=float(gp.detach()))
        guide = None
        if self.guided:  # guidance from the truth, drawn from the step alone (exact on resume)
            gen = torch.Generator(self.device).manual_seed(self.opt.seed * 1_000_033 + self.step)
            guide = sample_guidance(self.model, L, ab, gen)
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.amp):
            out = self.model(L) if guide is None else self.model(L, guide)
        loss, parts = self.generator_loss(out, ab, rgb, L)
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
        self.optim.step()
        self.step += 1
        logs.update(parts, loss=float(loss.detach()))
        return logs

    def encoder_trainable(self) -> bool:
        """Whether the ImageNet encoder trains at the current step (``unfreeze_at`` reached)."""
        return self.opt.unfreeze_at is not None and self.step >= self.opt.unfreeze_at

    def trainable_encoder_parts(self) -> list[torch.nn.Module]:
        """The encoder modules that train once unfrozen: all, or the last N blocks and head."""
        n = self.opt.unfreeze_blocks
        blocks = getattr(self.encoder, "_blocks", None)
        if not n or blocks is None:
            return [self.encoder]
        head = [getattr(self.encoder, k) for k in ("_conv_head", "_bn1")
                if hasattr(self.encoder, k)]
        return [*list(blocks)[-n:], *head]

    # ---------------------------------------------------------------- validation
    @torch.no_grad()
    def validate(self, val: ImageSet) -> dict[str, float]:
        """PSNR, SSIM and colorfulness of predictions and of the grey baseline; a PNG grid."""
        self.model.eval()
        sums: dict[str, list[float]] = {}
        grid = []
        for i, img in enumerate(val.images):
            rgb = torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].to(self.device) / 255.0
            m = evaluate_one(self.model, rgb)
            for k, v in m["metrics"].items():
                sums.setdefault(k, []).append(v)
            if i < 6:
                grid.append((m["grey"], m["pred"], rgb))
        metrics = {k: float(np.mean(v)) for k, v in sums.items()}
        if grid:
            save_grid(self.out / f"val-{self.step:07d}.png", grid)
        return metrics

    # ---------------------------------------------------------------- checkpoints
    def model_config(self, metrics: dict[str, float] | None = None) -> dict[str, Any]:
        """The checkpoint's JSON config: architecture, network config, step, metrics, options."""
        return {
            "arch": self.opt.model,
            "model": self.model.config(),
            "step": self.step,
            "metrics": metrics or {},
            "train": self.opt.to_json(),
        }

    def save(self, metrics: dict[str, float] | None = None, *, final: bool = False) -> Path:
        """Write ckpt-<step>/ (or final/) atomically: a temp folder renamed when complete."""
        name = "final" if final else f"ckpt-{self.step:07d}"
        tmp = self.out / f".tmp-{name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            save_checkpoint(tmp / "model.safetensors", self.model, self.model_config(metrics))
            if not final:
                tensors, plain = self._train_state()
                save_tensors(tmp / "train_state.safetensors", tensors)
                atomic_write_bytes(tmp / "train_state.json", json.dumps(plain).encode())
            dest = self.out / name
            if dest.exists():  # only 'final' (or a re-save of the same step) is ever replaced
                trash = self.out / f".tmp-old-{name}-{os.getpid()}"
                os.replace(dest, trash)
                shutil.rmtree(trash, ignore_errors=True)
            os.replace(tmp, dest)
        except BaseException:  # Ctrl-C or a full disk: no half-written folder stays behind
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if not final:
            for old in sorted(self.out.glob("ckpt-*"))[: -self.opt.keep_checkpoints]:
                shutil.rmtree(old, ignore_errors=True)
        return dest / "model.safetensors"

    def _train_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Optimizer, critic and RNG state for an exact resume: (tensors, plain JSON)."""
        tensors, plain = _optimizer_tensors(self.optim, "optim")
        if self.critic is not None:
            t2, p2 = _optimizer_tensors(self.critic_optim, "critic_optim")
            tensors.update(t2)
            plain["critic_optim"] = p2
            tensors.update({f"critic.{k}": v for k, v in self.critic.state_dict().items()})
        tensors["rng.torch"] = torch.get_rng_state()
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        _, keys, pos, has_gauss, cached = np.random.get_state()
        plain["rng_numpy"] = keys.tolist()
        plain["rng_numpy_pos"] = int(pos)
        plain["rng_numpy_gauss"] = [int(has_gauss), float(cached)]
        plain["rng_python"] = repr(random.getstate())
        plain["step"] = self.step
        return tensors, plain

    def check_fresh_out(self) -> None:
        """A fresh run must not share a folder with older checkpoints: the pruning of old
        checkpoints would delete the new run's lower-numbered ones, and --resume pick the old."""
        old = sorted(self.out.glob("ckpt-*")) + sorted(self.out.glob("final"))
        if old:
            raise UsageError(
                f"{self.out} already holds checkpoints ({old[-1].name}); pass --resume to "
                "continue that run or choose a new --out"
            )

    def resume_dir(self) -> Path:
        """The newest complete checkpoint folder (ckpt-*/ with its train state)."""
        ckpts = sorted(self.out.glob("ckpt-*/train_state.json"))
        if not ckpts:
            raise UsageError(f"--resume: no checkpoint in {self.out} (expected ckpt-*/)")
        return ckpts[-1].parent

    def load_resume(self) -> None:
        """Continue exactly from the newest complete checkpoint in the run folder."""
        d = self.resume_dir()
        wpath = d / "model.safetensors"
        cfg = read_config(wpath)
        if cfg["arch"] != self.opt.model:
            raise UsageError(f"--resume: {d} holds a {cfg['arch']} model, not {self.opt.model}")
        try:
            self.model.load_state_dict(upgrade_state_dict(read_weights(wpath)), strict=True)
            plain = json.loads((d / "train_state.json").read_text())
            tensors = load_file(str(d / "train_state.safetensors"))
            self.optim.load_state_dict(_optimizer_from(tensors, plain, "optim"))
            if self.critic is not None:
                self.critic_optim.load_state_dict(
                    _optimizer_from(tensors, plain["critic_optim"], "critic_optim")
                )
                n = len("critic.")
                self.critic.load_state_dict(
                    {k[n:]: v for k, v in tensors.items() if k.startswith("critic.")}
                )
        except (RuntimeError, ValueError, KeyError, OSError, SafetensorError) as exc:
            raise ModelError(
                f"--resume: {d} does not fit this run (same --model, --tiny and options?): "
                f"{_first_line(exc)}"
            ) from exc
        torch.set_rng_state(tensors["rng.torch"])
        if "rng.cuda" in tensors and self.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        has_gauss, cached = plain.get("rng_numpy_gauss", (0, 0.0))
        keys = np.array(plain["rng_numpy"], dtype=np.uint32)
        np.random.set_state(("MT19937", keys, plain["rng_numpy_pos"], has_gauss, cached))
        random.setstate(ast.literal_eval(plain["rng_python"]))
        self.step = int(plain["step"])
        log.info("resumed from %s at step %d", d, self.step)

    def load_init(self, path: Path) -> None:
        """Start from another checkpoint's weights (same architecture, strict)."""
        wpath = resolve_checkpoint(path)
        cfg = read_config(wpath)
        state = upgrade_state_dict(read_weights(wpath))
        try:
            self.model.load_state_dict(state, strict=self.opt.model == cfg["arch"])
        except RuntimeError as exc:
            raise ModelError(
                f"{wpath}: --init weights do not fit {self.opt.model}: {_first_line(exc)}"
            ) from exc

    # ---------------------------------------------------------------- loop
    def run(self) -> Path:
        """Train to ``steps``; returns the final model's weights path."""
        opt = self.opt
        if opt.resume:
            self.resume_dir()  # fail before the (slow) data loading
        else:
            self.check_fresh_out()
        self.out.mkdir(parents=True, exist_ok=True)
        for stale in self.out.glob(".tmp-*"):  # left by a run killed while saving
            shutil.rmtree(stale, ignore_errors=True)
        torch.manual_seed(opt.seed)
        np.random.seed(opt.seed)
        random.seed(opt.seed)
        train_set, val_set = self.load_data()
        if opt.resume:
            self.load_resume()
        else:
            if opt.init is not None:
                self.load_init(Path(opt.init))
            self.fit_rebalancing(train_set)
        dataset = CropDataset(train_set, opt.image_size, DegradeOptions() if opt.degrade else None)
        sampler = StepBatchSampler(
            len(dataset), min(opt.batch_size, len(dataset)), seed=opt.seed, start=self.step,
            steps=opt.steps,
        )
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_sampler=sampler,
            num_workers=opt.workers,
            prefetch_factor=4 if opt.workers else None,
            pin_memory=self.device.type == "cuda",
            # Its own generator: the loader must not draw from the global RNG that checkpoints
            # save, or a resumed run would continue from a different RNG state.
            generator=torch.Generator().manual_seed(opt.seed),
        )
        writer = _tensorboard(self.out)
        csv_path = self.out / "metrics.csv"
        metrics: dict[str, float] = {}
        bar = progress_bar(total=opt.steps, initial=self.step, desc="train", unit="step")
        t0, seen = time.perf_counter(), 0
        try:
            for grey, rgb in loader:
                try:
                    logs = self.train_step(grey, rgb)
                except torch.cuda.OutOfMemoryError as exc:
                    raise DeviceError(
                        f"out of GPU memory at batch size {opt.batch_size}, image size "
                        f"{opt.image_size}; lower --batch-size or --image-size"
                    ) from exc
                seen += grey.shape[0]
                ips = seen / max(1e-6, time.perf_counter() - t0)
                bar.update(1)
                bar.set_postfix(loss=f"{logs['loss']:.4f}", img_s=f"{ips:.1f}")
                _log_row(csv_path, self.step, "train", {**logs, "img_per_s": ips})
                if writer is not None:
                    for k, v in logs.items():
                        writer.add_scalar(f"train/{k}", v, self.step)
                last = self.step >= opt.steps
                if val_set is not None and (self.step % opt.val_every == 0 or last):
                    metrics = self.validate(val_set)
                    _log_row(csv_path, self.step, "val", metrics)
                    if writer is not None:
                        for k, v in metrics.items():
                            writer.add_scalar(f"val/{k}", v, self.step)
                    shown = ", ".join(f"{k} {v:.3f}" for k, v in metrics.items())
                    bar.write(f"step {self.step}: {shown}")
                if self.step % opt.ckpt_every == 0 or last:
                    self.save(metrics)
        finally:
            bar.close()
            if writer is not None:
                writer.close()
        return self.save(metrics, final=True)


def _first_line(exc: BaseException) -> str:
    """The informative line of a (often multi-line) torch error, for one-line messages."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    # load_state_dict says "Error(s) in loading state_dict for X:" first; the detail is next.
    return lines[1] if len(lines) > 1 and lines[0].startswith("Error(s)") else lines[0]


def save_grid(path: Path, rows: list[tuple[torch.Tensor, ...]], height: int = 128) -> None:
    """PNG grid, one row per image: grey | prediction | truth."""
    from PIL import Image

    tiles = []
    for row in rows:
        ims = []
        for t in row:
            t = torch.nn.functional.interpolate(
                t.float().cpu(), size=(height, max(1, round(t.shape[-1] * height / t.shape[-2]))),
                mode="bilinear", antialias=True,
            )
            ims.append((t[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).astype(np.uint8))
        tiles.append(np.concatenate(ims, 1))
    width = max(t.shape[1] for t in tiles)
    tiles = [np.pad(t, ((0, 0), (0, width - t.shape[1]), (0, 0))) for t in tiles]
    img = Image.fromarray(np.concatenate(tiles, 0))
    tmp = path.with_name(f".{path.name}.tmp.png")
    img.save(tmp)
    os.replace(tmp, path)


def _log_row(path: Path, step: int, kind: str, values: dict[str, float]) -> None:
    """Append one step's values to the long-format metrics CSV."""
    new = not path.exists()
    with path.open("a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(["step", "kind", "name", "value"])
        for k, v in values.items():
            w.writerow([step, kind, k, f"{v:.6g}"])


def _tensorboard(out: Path) -> Any:
    """A SummaryWriter in ``out/tb``, or None without tensorboard (an optional dependency)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.info("tensorboard not installed: metrics go to metrics.csv only")
        return None
    return SummaryWriter(str(out / "tb"))


def train(opt: TrainOptions) -> Path:
    """Run ``vidcolor train``; returns the final weights path."""
    if not Path(opt.data).exists():
        raise DataError(f"{opt.data}: no such folder")
    return Trainer(opt).run()


__all__ = ["PRIOR_ARCHITECTURES", "TrainOptions", "train"]
