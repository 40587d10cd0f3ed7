"""The training loop: the paper's two-phase schedule, mixed precision, checkpoints, DDP.

Phase 1 trains everything with Adam at ``lr`` (2e-4); phase 2 fine-tunes at ``finetune_lr``
(5e-5) with the encoder's BatchNorm frozen (statistics and affine parameters), as in the
paper. The optimiser is the same object across the switch (its moments carry over); only the
learning rate and the frozen parameters change.

Step ``s`` (0-based) is phase 1 while ``s < phase1_steps``. ``self.step`` counts completed
optimisation steps; a checkpoint taken at ``step`` resumes by running step ``step`` next.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import signal
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from pconv.checkpoint import load_weights
from pconv.errors import CheckpointError, PConvError
from pconv.losses import InpaintingLoss
from pconv.losses.inpainting import TERM_NAMES
from pconv.models import resolve_weights
from pconv.unet import PConvUNet, UNetConfig, add_smooth_prior
from pconv.training import export, state
from pconv.training.config import ConfigError, TrainConfig, with_model
from pconv.training.data import (
    StepSampler,
    TrainImages,
    find_images,
    load_valset,
    scan_images,
    single_threaded_opencv,
    split_holdout,
    worker_init,
)
from pconv.training.distributed import DistInfo, all_mean, barrier, replicas_agree
from pconv.training.holes import HoleSource
from pconv.training.logs import MetricLog
from pconv.training.validate import evaluate, save_grid

TERMS = ("total", *TERM_NAMES)
#: Validation images held out of the training folders when no --val is given: 5%, at most 32.
HOLDOUT_SHARE, HOLDOUT_MAX = 0.05, 32
BEST_DIR, FINAL_DIR, SAMPLES_DIR = "best", "final", "samples"


class TrainingDiverged(PConvError):
    """The loss or the gradients became NaN or infinite."""


@dataclass
class Summary:
    """What a call to :meth:`Trainer.run` did."""

    step: int
    finished: bool
    images_per_s: float
    losses: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    final: Path | None = None
    skipped: int = 0


def _amp_dtype(choice: str, device: torch.device) -> torch.dtype | None:
    if choice == "auto":
        if device.type != "cuda":
            return None  # CPU autocast is slower than fp32 on most CPUs
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "none": None}[choice]


class Trainer:
    """One training run in ``run_dir``: built from a resolved config, optionally resumed."""

    def __init__(
        self,
        config: TrainConfig,
        run_dir: str | Path,
        *,
        device: torch.device | str = "cpu",
        dist: DistInfo | None = None,
        resume: bool = False,
        command: str = "",
        log: Any = None,
    ) -> None:
        self.dist = dist or DistInfo()
        self.run_dir = Path(run_dir)
        self.device = torch.device(device)
        self.command = command
        quiet = not self.dist.main  # only rank 0 prints
        self.say = (lambda msg: None) if quiet else log or (lambda m: print(m, file=sys.stderr))
        self.started = time.time()
        loaded = self._find_resume_state() if resume else None
        if resume and loaded is None:
            raise CheckpointError(f"{self.run_dir}: no checkpoint to resume from")
        self._seed_everything(config.seed)
        self.model, config = self._build_model(config, loaded)
        self.config = config
        self._check_fresh_output(resume)
        self._setup_data()
        self.loss_fn = InpaintingLoss(
            config.loss_weight_values(), backbone=config.perceptual, offline=True
        ).to(self.device)
        self.loss_fn.requires_grad_(False)
        self.amp_dtype = _amp_dtype(config.amp, self.device)
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=self.amp_dtype == torch.float16
        )
        if config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.step = 0
        self.best: float | None = None
        self.skipped_decode: set[int] = set()
        self.elapsed_before = 0.0
        self.images_seen = 0
        self.last_metrics: dict[str, float] = {}
        if loaded is not None:
            self._restore(loaded)
        self._enter_phase(self.phase_of(self.step))
        self.logger: MetricLog | None = None
        if self.dist.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._write_run_files(resumed=loaded is not None)
        self._stop_requested = False

    # -- setup ---------------------------------------------------------------------------

    def _find_resume_state(self) -> state.LoadedState | None:
        if self.dist.main:
            removed = state.remove_stale_temporaries(self.run_dir)
            if removed:
                self.say(f"removed {removed} partial checkpoint file(s) of an interrupted write")
        return state.latest_state(self.run_dir)

    def _seed_everything(self, seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)

    def _build_model(
        self, config: TrainConfig, loaded: state.LoadedState | None
    ) -> tuple[PConvUNet, TrainConfig]:
        if loaded is not None and "model_config" in loaded.extra:
            # Resuming: the checkpoint's architecture (normalisation included) is the truth;
            # the --init weights are neither needed nor downloaded again.
            self.init_path = loaded.extra.get("init_path")
            c = UNetConfig.from_dict(loaded.extra["model_config"])
            config = with_model(config, c.depth, c.base_width, c.max_width_mult, c.resolution)
            return PConvUNet(c).to(self.device).train(), replace(config, prior=c.prior)
        if config.init:
            try:
                path = Path(config.init)
                if path.is_file() and state.is_state_file(path):  # another run's checkpoint
                    model = state.model_from_state(state.load_state(path))
                else:
                    path = resolve_weights(config.init)
                    model, _ = load_weights(path, device="cpu")
            except CheckpointError as exc:
                raise CheckpointError(f"--init {config.init}: {exc}") from None
            c = model.config
            config = with_model(config, c.depth, c.base_width, c.max_width_mult, c.resolution)
            model.config = replace(c, resolution=config.size)
            model = self._with_prior(model, config.prior)
            self.init_path = str(path)
        else:
            self.init_path = None
            model = PConvUNet(
                UNetConfig(
                    depth=config.depth,
                    base_width=config.base_width,
                    max_width_mult=config.max_width_mult,
                    resolution=config.size,
                    prior=config.prior or "none",
                )
            )
        return model.to(self.device).train(), replace(config, prior=model.config.prior)

    @staticmethod
    def _with_prior(model: PConvUNet, prior: str | None) -> PConvUNet:
        """The --init model, gated with the smooth fill if --prior asks for it."""
        if prior is None or prior == model.config.prior:
            return model
        if prior == "smooth":
            return add_smooth_prior(model)
        raise ConfigError(
            f"--prior {prior} contradicts the --init model (prior {model.config.prior}): "
            "a learned gate cannot be dropped"
        )

    def _check_fresh_output(self, resume: bool) -> None:
        if not resume and state.list_checkpoints(self.run_dir):
            raise PConvError(
                f"{self.run_dir} already holds a run: continue it with --resume {self.run_dir} "
                "or choose another --output"
            )

    def _setup_data(self) -> None:
        c = self.config
        scan = scan_images(find_images(c.data))
        if not scan.good:
            raise PConvError(f"none of the {len(scan.bad)} images in {', '.join(c.data)} opens")
        self.scan = scan
        holes = HoleSource(
            c.masks, c.size, border=c.border_rule(), buckets=c.buckets(), mask_dir=c.mask_dir
        )
        holes.draw(np.random.default_rng(c.seed))  # a mask setting that cannot work fails now
        self.holes = holes
        train_paths, val_paths = scan.good, []
        if c.val:
            val_scan = scan_images(find_images([c.val]))
            val_paths = val_scan.good
            self.val_description = f"{len(val_paths)} images of {c.val}"
        holdout = c.val_holdout
        if holdout is None and not c.val:
            holdout = min(HOLDOUT_MAX, int(len(train_paths) * HOLDOUT_SHARE))
        if holdout:
            train_paths, held = split_holdout(train_paths, holdout, c.seed)
            val_paths = val_paths + held
            self.val_description = f"{len(held)} images held out of the training folders" + (
                f" and {c.val}" if c.val else ""
            )
        if len(val_paths) > c.val_count:
            stride = len(val_paths) / c.val_count
            val_paths = [val_paths[int(i * stride)] for i in range(c.val_count)]
        self.train_set = TrainImages(train_paths, c.size, holes, c.crop, c.flip)
        # Only rank 0 validates, so only rank 0 decodes the validation images.
        keep_val = val_paths and self.dist.main
        self.valset = load_valset(val_paths, c.size, holes, c.seed) if keep_val else None
        if self.valset is not None:
            self.val_description = f"{len(self.valset)} validation images ({self.val_description})"

    def _restore(self, loaded: state.LoadedState) -> None:
        loaded.restore(self.model, self.optimizer, self.scaler)
        self.step = loaded.step
        extra = loaded.extra
        self.best = extra.get("best")
        self.skipped_decode = set(extra.get("skipped_decode", []))
        self.elapsed_before = float(extra.get("elapsed", 0.0))
        self.images_seen = int(extra.get("images_seen", 0))
        self.last_metrics = extra.get("metrics", {})
        self.say(f"resuming from {loaded.path} (step {self.step})")

    def _write_run_files(self, resumed: bool) -> None:
        from pconv.training.config import dump_toml

        self.run_dir.mkdir(parents=True, exist_ok=True)
        header = "Resolved settings of this run (python -m train --config this file)."
        (self.run_dir / "config.toml").write_text(dump_toml(self.config, header))
        if self.scan.bad:
            lines = [f"{path}\t{why}" for path, why in self.scan.bad]
            (self.run_dir / "skipped.txt").write_text("\n".join(lines) + "\n")
        sessions_path = self.run_dir / "run.json"
        sessions = []
        if resumed and sessions_path.is_file():
            sessions = json.loads(sessions_path.read_text())
        sessions.append(
            {
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "resumed_at": self.step if resumed else None,
                "command": self.command,
                "hardware": export.hardware(self.device, self.dist.world),
                "amp": str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else "fp32",
                "world": self.dist.world,
                "train_images": len(self.train_set),
                "val_images": len(self.valset) if self.valset else 0,
                "skipped_unreadable": [str(p) for p, _ in self.scan.bad],
                "pconv_train": "1",
            }
        )
        sessions_path.write_text(json.dumps(sessions, indent=2) + "\n")

    # -- schedule ----------------------------------------------------------------------------

    def phase_of(self, step: int) -> int:
        return 1 if step < self.config.phase1_steps else 2

    def _enter_phase(self, phase: int) -> None:
        self.phase = phase
        lr = self.config.lr if phase == 1 else self.config.finetune_lr
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.freeze_encoder_bn(phase == 2)
        self._wrap()

    def _wrap(self) -> None:
        """The module the loop calls: DDP (rebuilt when the trainable set changes) and/or
        ``torch.compile``; checkpoints and validation always use the plain model."""
        net: torch.nn.Module = self.model
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            net = DistributedDataParallel(net, device_ids=ids)
        if self.config.compile:
            # Graph breaks (the model checks masks on the host) make each U-Net block its own
            # frame, called at a different size per level: specialise every size rather than
            # trace symbolic shapes, and allow that many specialisations.
            dynamo_config = torch._dynamo.config
            key = (
                "recompile_limit"
                if hasattr(dynamo_config, "recompile_limit")
                else "cache_size_limit"
            )
            setattr(dynamo_config, key, max(getattr(dynamo_config, key), 64))  # older torch
            net = torch.compile(net, dynamic=False)
        self.net = net

    # -- one step ----------------------------------------------------------------------------

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def train_step(self, image: torch.Tensor, valid: torch.Tensor) -> dict[str, float]:
        """One optimisation step on a batch; returns the loss terms (mean over ranks)."""
        non_blocking = self.device.type == "cuda"
        image = image.to(self.device, non_blocking=non_blocking)
        valid = valid.to(self.device, non_blocking=non_blocking)
        if self.config.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
            valid = valid.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            out = self.net(image, valid)
            terms = self.loss_fn(out, image, valid)
        self.scaler.scale(terms["total"]).backward()
        self.scaler.unscale_(self.optimizer)
        params = [p for p in self.model.parameters() if p.grad is not None]
        max_norm = self.config.clip_grad if self.config.clip_grad > 0 else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        stop = 1.0 if self._stop_requested else 0.0
        packed = torch.stack(
            [terms[k].detach().float() for k in TERMS]
            + [grad_norm.detach().float().reshape(()), torch.tensor(stop, device=self.device)]
        )
        packed = all_mean(packed, self.dist).cpu()  # one sync: logging, NaN guard, stop flag
        values = {k: float(v) for k, v in zip(TERMS, packed[: len(TERMS)], strict=True)}
        values["grad_norm"] = float(packed[len(TERMS)])
        self._stop_requested = float(packed[-1]) > 0
        fp16 = self.scaler.is_enabled()
        if not math.isfinite(values["total"]) or (
            not fp16 and not math.isfinite(values["grad_norm"])
        ):
            self.optimizer.zero_grad(set_to_none=True)
            raise TrainingDiverged(self._diverged_message(values))
        self.scaler.step(self.optimizer)  # with fp16, steps with inf/NaN grads are skipped
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return values

    def _diverged_message(self, values: dict[str, float]) -> str:
        found = state.list_checkpoints(self.run_dir)
        where = f"last good checkpoint: {found[-1][1]}" if found else "no checkpoint was written"
        what = "loss" if not math.isfinite(values["total"]) else "gradient norm"
        return (
            f"the {what} became {values['total'] if what == 'loss' else values['grad_norm']} "
            f"in step {self.step + 1}; stopped without saving ({where}). Try a lower --lr, "
            "--clip-grad 1, or --amp none, then --resume"
        )

    # -- the loop ----------------------------------------------------------------------------

    def _loader(self) -> DataLoader:
        c = self.config
        sampler = StepSampler(
            len(self.train_set), c.batch_size, c.seed, self.step, c.steps,
            self.dist.rank, self.dist.world,
        )  # fmt: skip
        if c.workers:
            single_threaded_opencv()
        return DataLoader(
            self.train_set,
            batch_size=c.batch_size,
            sampler=sampler,
            num_workers=c.workers,
            pin_memory=self.device.type == "cuda",
            worker_init_fn=worker_init,
            persistent_workers=False,
            prefetch_factor=4 if c.workers else None,
        )

    def run(self, stop_at: int | None = None) -> Summary:
        """Train up to ``config.steps`` (or ``stop_at``), then checkpoint (and export when the
        schedule is complete). SIGINT / SIGTERM stop after the current step, with a checkpoint."""
        c = self.config
        end = c.steps if stop_at is None else min(stop_at, c.steps)
        previous = self._install_signal_handlers()
        bar = None
        window_images, window_start, window_steps = 0, time.time(), 0
        sums: dict[str, float] = {}
        rate = 0.0
        last_values: dict[str, float] = {}
        global_batch = c.batch_size * self.dist.world
        try:
            if self.dist.main:
                # Rows logged after this step (by an attempt killed before its next
                # checkpoint) are dropped: they are about to be trained and logged again.
                self.logger = MetricLog(self.run_dir, c.tensorboard, resume_step=self.step)
                bar = tqdm(
                    total=c.steps, initial=self.step, unit="step", dynamic_ncols=True,
                    disable=None, desc=f"phase {self.phase}",
                )  # fmt: skip
            loader = iter(self._loader()) if self.step < end else iter(())
            while self.step < end:
                phase = self.phase_of(self.step)
                if phase != self.phase:
                    self._enter_phase(phase)
                    self._note(
                        bar, f"step {self.step}: phase 2 (lr {c.finetune_lr}, encoder BN frozen)"
                    )
                batch = next(loader)
                self._count_failed(batch["failed"])
                last_values = self.train_step(batch["image"], batch["valid"])
                self.step += 1
                self.images_seen += global_batch
                window_images += global_batch
                window_steps += 1
                for k, v in last_values.items():
                    sums[k] = sums.get(k, 0.0) + v
                if self.step % c.log_every == 0 or self.step == end:
                    rate = window_images / max(time.time() - window_start, 1e-9)
                    means = {k: v / window_steps for k, v in sums.items()}
                    self._log_train(bar, means, rate)
                    sums, window_images, window_steps, window_start = {}, 0, 0, time.time()
                if bar is not None:
                    bar.update(1)
                paused = time.time()  # validation and checkpoints do not count in img/s
                if self.valset is not None and (
                    self.step % c.val_every == 0 or self.step == c.steps
                ):
                    self._validate()
                if self._stop_requested:
                    self._note(bar, f"stopping at step {self.step} as asked")
                    break
                if self.step % c.ckpt_every == 0 and self.step < end:
                    self._checkpoint()
                window_start += time.time() - paused
            self._checkpoint()
            finished = self.step >= c.steps
            final = self._export_final() if finished else None
            if not replicas_agree(self.model, self.dist):
                raise PConvError("the processes' weights differ at the end: DDP went out of sync")
            barrier(self.dist)
        finally:
            if bar is not None:
                bar.close()
            self._restore_signal_handlers(previous)
            if self.logger is not None:
                self.logger.close()
                self.logger = None
        return Summary(
            step=self.step,
            finished=finished,
            images_per_s=rate,
            losses=last_values,
            metrics=self.last_metrics,
            final=final,
            skipped=len(self.scan.bad) + len(self.skipped_decode),
        )

    def _count_failed(self, failed: torch.Tensor) -> None:
        for index in failed.tolist():
            if index >= 0 and index not in self.skipped_decode:
                self.skipped_decode.add(index)
                if self.dist.main:
                    path = self.train_set.paths[index]
                    self.say(f"skipped an unreadable image: {path}")
                    with open(self.run_dir / "skipped.txt", "a") as fh:
                        fh.write(f"{path}\tdecoding failed\n")

    def _note(self, bar: tqdm | None, message: str) -> None:
        if not self.dist.main:
            return
        if bar is not None and not bar.disable:
            bar.write(message, file=sys.stderr)
        else:
            self.say(message)

    def _log_train(self, bar: tqdm | None, means: dict[str, float], rate: float) -> None:
        if not self.dist.main:
            return
        lr = self.optimizer.param_groups[0]["lr"]
        scalars = {f"train/{k}": v for k, v in means.items()}
        scalars.update({"train/images_per_s": rate, "train/lr": lr, "train/phase": self.phase})
        self.logger.scalars(self.step, scalars)
        # The total and every term that counts in it (a zero-weight term is always 0).
        weights = self.loss_fn.weights.per_term()
        names = ("total", *(k for k in TERM_NAMES if weights[k]))
        shown = {k: f"{means[k]:.4g}" for k in names if k in means}
        shown["img/s"] = f"{rate:.1f}"
        if bar is not None and not bar.disable:
            bar.set_description(f"phase {self.phase}")
            bar.set_postfix(shown, refresh=False)
        else:
            text = " ".join(f"{k} {v}" for k, v in shown.items())
            self.say(f"step {self.step}/{self.config.steps} phase {self.phase} {text}")

    def _validate(self) -> None:
        if not self.dist.main:
            return
        scores, grid = evaluate(
            self.model, self.loss_fn, self.valset, self.device, self.config.batch_size,
            torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype else None,
        )  # fmt: skip
        self.last_metrics = scores
        self.logger.scalars(self.step, {f"val/{k}": v for k, v in scores.items()})
        self.logger.image(self.step, "val/samples", grid)
        save_grid(grid, self.run_dir / SAMPLES_DIR / f"step-{self.step:08d}.png")
        psnr = scores.get("psnr")
        if psnr is not None and (self.best is None or psnr > self.best):
            self.best = psnr
            folder = self.run_dir / BEST_DIR
            export.export(self.model, folder, self._metadata(scores))
            (folder / "metrics.json").write_text(
                json.dumps({"step": self.step, **scores}, indent=2) + "\n"
            )

    def _checkpoint(self) -> None:
        if not self.dist.main:
            return
        extra = {
            "best": self.best,
            "skipped_decode": sorted(self.skipped_decode),
            "elapsed": self.elapsed_before + time.time() - self.started,
            "images_seen": self.images_seen,
            "metrics": self.last_metrics,
            "world": self.dist.world,
            "model_config": json.loads(self.model.config.to_json()),
            "init_path": self.init_path,
        }
        path = state.checkpoint_path(self.run_dir, self.step)
        state.save_state(
            path, step=self.step, phase=self.phase_of(max(self.step - 1, 0)),
            model=self.model, optimizer=self.optimizer, scaler=self.scaler, extra=extra,
        )  # fmt: skip
        state.prune(self.run_dir, self.config.keep)

    # -- export --------------------------------------------------------------------------------

    def _metadata(self, metrics: dict[str, float]) -> dict[str, str]:
        c = self.config
        hours = (self.elapsed_before + time.time() - self.started) / 3600
        val = self.val_description if self.valset is not None else "none"
        protocol = (
            f"{c.size}x{c.size} centre crops (short side scaled to {c.size}), fixed masks "
            f"({c.masks}), output composited over the known pixels, 8-bit rounding, "
            "SSIM 11x11 Gaussian sigma 1.5"
        )
        training = {
            "data": list(c.data), "images": len(self.train_set),
            "skipped": len(self.scan.bad) + len(self.skipped_decode),
            "val": val, "val_protocol": protocol,
            "steps": self.step, "phase1_steps": min(self.step, c.phase1_steps),
            "phase2_steps": max(0, self.step - c.phase1_steps),
            "lr": c.lr, "finetune_lr": c.finetune_lr, "batch_size": c.batch_size,
            "world": self.dist.world, "crop": c.crop, "flip": c.flip,
            "masks": self._masks_text(), "init": self.init_path,
            "amp": str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else "fp32",
            "clip_grad": c.clip_grad, "seed": c.seed, "hours": hours,
            "images_seen": self.images_seen,
        }  # fmt: skip
        info = {
            "name": c.name or self.run_dir.resolve().name,
            "data": list(c.data),
            "images": len(self.train_set),
            "step": self.step,
            "size": c.size,
            "licence": c.licence,
            "metrics": metrics,
            "val_description": val,
            "val_protocol": protocol,
            "loss": self.loss_fn.describe(),
            "training": training,
            "command": self.command,
            "hardware": export.hardware(self.device, self.dist.world),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        return export.build_metadata(info)

    def _masks_text(self) -> str:
        c = self.config
        where = {"any": "anywhere", "clear": "clear of the border", "touch": "touching the border"}
        text = f"{c.masks} on the fly, holes {where[c.border]}"
        if c.mask_dir:
            text += f", folder masks from {c.mask_dir}"
        if c.mask_buckets:
            text += f", hole-ratio buckets {c.mask_buckets}"
        return text

    def _export_final(self) -> Path | None:
        if not self.dist.main:
            return None
        if self.valset is not None and not self.last_metrics:
            self._validate()
        folder = self.run_dir / FINAL_DIR
        meta = self._metadata(self.last_metrics)
        export.export(self.model, folder, meta)
        export.write_card(folder, meta, self.model)
        from pconv.training.config import dump_toml

        (folder / "config.toml").write_text(dump_toml(self.config, "Settings that trained it."))
        return folder

    # -- signals -------------------------------------------------------------------------------

    def _install_signal_handlers(self) -> dict[int, Any]:
        """First SIGINT/SIGTERM: finish the step, checkpoint, stop. A second one: now."""
        previous: dict[int, Any] = {}
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.getsignal(sig)
                signal.signal(sig, self._on_signal)
        except ValueError:  # not the main thread: leave signals alone
            return {}
        return previous

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._stop_requested:
            raise KeyboardInterrupt
        self._stop_requested = True

    def _restore_signal_handlers(self, previous: dict[int, Any]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
