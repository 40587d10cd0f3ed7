"""The training engine: setup, one training step, the loop, and the hooks it calls.

What differs per network (``--arch``) is its recipe (:mod:`pconv.training.recipes`): how the
model is built, its loss, its training outputs and what phase 2 does to it. Phase 1 trains
everything with Adam at ``lr`` (2e-4); phase 2 fine-tunes at ``finetune_lr`` (5e-5), for the
U-Net with the encoder's BatchNorm frozen (statistics and affine parameters), as in the
paper. The optimiser is the same object across the switch (its moments carry over); only the
learning rate and the frozen parameters change.

Step ``s`` (0-based) is phase 1 while ``s < phase1_steps``. ``Trainer.step`` counts completed
optimisation steps; a checkpoint taken at ``step`` resumes by running step ``step`` next.

The shape, so that a new piece does not touch the loop: :meth:`Trainer.__init__` builds
everything (every attribute is set while it runs); :meth:`Trainer.train_step` is one optimisation
step and returns its named losses; :meth:`Trainer.run` is the loop; everything around the
steps is a hook (:mod:`pconv.training.hooks`); what a checkpoint saves is the registry
``Trainer.states`` of named state holders. The discriminators of ``--adversarial``
(:mod:`pconv.training.adversarial`) are built that way: three more entries in the registry,
their loss terms more names in the step's dict (and in ``shown_terms``), their update a
second part of the step function; with ``adversarial = "none"`` none of it runs.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from pconv.architectures import architecture_of
from pconv.checkpoint import load_weights
from pconv.errors import CheckpointError, PConvError
from pconv.loader import resolve_weights
from pconv.precision import autocast_dtype, precision_name
from pconv.training import export, state
from pconv.training.adversarial import ADV_TERMS, Adversary
from pconv.training.config import TrainConfig, dump_toml, with_model
from pconv.training.data import (
    Scan,
    StepSampler,
    TrainImages,
    ValSet,
    collate,
    find_images,
    load_crop,
    load_valset,
    scan_images,
    single_threaded_opencv,
    split_holdout,
    training_masks,
    worker_init,
)
from pconv.training.distributed import DistInfo, all_mean, barrier, replicas_agree
from pconv.training.errors import ConfigError, InitError, Setting, TrainingDiverged
from pconv.training.hooks import (
    Checkpoints,
    FinalExport,
    Hook,
    NanGuard,
    Progress,
    Signals,
    Validation,
)
from pconv.training.logs import MetricLog
from pconv.training.recipes import Recipe, as_outputs, get_recipe

__all__ = ["Summary", "Trainer", "TrainingDiverged", "autocast_dtype"]

#: Validation images held out of the training folders when no ``val`` is given: 5%, at most 32.
HOLDOUT_SHARE, HOLDOUT_MAX = 0.05, 32


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


@dataclass
class _Data:
    scan: Scan
    train_set: TrainImages
    valset: ValSet | None
    val_description: str


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
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.dist = dist or DistInfo()
        self.run_dir = Path(run_dir)
        self.device = torch.device(device)
        self.command = command
        quiet = not self.dist.main  # only rank 0 prints
        self.say = (lambda msg: None) if quiet else log or (lambda m: print(m, file=sys.stderr))
        self.started = time.time()
        loaded = _find_resume_state(self) if resume else None
        if resume and loaded is None:
            raise CheckpointError(f"{self.run_dir}: no checkpoint to resume from")
        _seed_everything(config.seed)
        #: How this architecture trains (pconv.training.recipes): model, loss, phase 2.
        self.recipe: Recipe = get_recipe(config.arch)
        self.model, self.config, self.init_path = _build_model(
            self.recipe, config, loaded, self.device
        )
        if not resume and state.list_checkpoints(self.run_dir):
            raise ConfigError(
                f"{self.run_dir} already holds a run: continue it with ", Setting("resume"),
                f" {self.run_dir} or choose another ", Setting("output"),
            )  # fmt: skip
        data = _build_data(self.config, self.dist)
        self.scan, self.train_set, self.valset = data.scan, data.train_set, data.valset
        self.val_description = data.val_description
        c = self.config
        self._build_optimisation()
        #: The discriminators (``--adversarial``), or None: their losses join the step's dict
        #: and the progress line, their state the registry.
        self.adversary: Adversary | None = self._build_adversary()
        self.adversarial_phase = ""  # the one the progress line last announced
        self.loss_stage = ""  # the same for the recipe's warm-up / main loss
        self.global_batch = c.batch_size * self.dist.world
        self.end = c.steps  # the last step of the current run() call
        self.stop_requested = False
        self.logger: MetricLog | None = None  # opened by the Progress hook for a run()
        # bookkeeping a checkpoint carries over
        self.step = 0
        self.best: float | None = None
        self.skipped_decode: set[int] = set()
        self.elapsed_before = 0.0
        self.images_seen = 0
        self.last_metrics: dict[str, float] = {}
        if loaded is not None:
            _restore(self, loaded)
        self.phase = self.phase_of(self.step)
        self.net: torch.nn.Module = self.model
        self._enter_phase(self.phase)
        # the hooks, in the order the loop calls them
        self.progress = Progress()
        self.validation = Validation()
        self.checkpoints = Checkpoints()
        self.final_export = FinalExport(self.validation)
        self.hooks: list[Hook] = [
            self.progress, self.validation, Signals(), NanGuard(), self.checkpoints,
            self.final_export,
        ]  # fmt: skip
        if self.dist.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_run_files(self, resumed=loaded is not None)

    def _build_optimisation(self) -> None:
        """The loss, precision, grad scaler, optimiser and the registry of state holders."""
        c = self.config
        self.loss_fn = self.recipe.loss(c).to(self.device)
        self.loss_fn.requires_grad_(False)
        #: The step's loss entries: the total and every term of the recipe's loss.
        self.terms = ("total", *self.loss_fn.terms)
        #: The progress line: the total and every term that counts in it.
        self.shown_terms = ("total", *self.loss_fn.shown)
        self.amp_dtype = autocast_dtype(c.precision, self.device)
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=self.amp_dtype == torch.float16
        )
        if c.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=c.lr, betas=(c.adam_beta1 or 0.9, 0.999)
        )
        #: What a checkpoint saves and a resume restores, by name (see pconv.training.state).
        self.states: dict[str, Any] = {
            "model": self.model,
            "optimizer": self.optimizer,
            "scaler": self.scaler,
        }

    def _build_adversary(self) -> Adversary | None:
        """The discriminators of ``--adversarial``, their terms shown and their state in the
        registry; None without."""
        if self.config.adversarial == "none":
            return None
        adversary = Adversary(self.config, self.device, self.dist, self.scaler.is_enabled())
        self.shown_terms = (*self.shown_terms, "g_adv", "d_loss")
        self.states.update(
            discriminator=adversary.d, d_optimizer=adversary.optimizer, d_scaler=adversary.scaler
        )
        return adversary

    # -- the loop -------------------------------------------------------------------------

    def run(self, stop_at: int | None = None) -> Summary:
        """Train up to ``config.steps`` (or ``stop_at``), then checkpoint (and export when the
        schedule is complete). SIGINT / SIGTERM stop after the current step, with a checkpoint."""
        self.end = self.config.steps if stop_at is None else min(stop_at, self.config.steps)
        losses: dict[str, float] = {}
        try:
            self._call("run_start")
            loader = batches(self)
            while self.step < self.end and not self.stop_requested:
                self._call("step_start")
                self._apply_schedule()
                batch = next(loader)
                self._record_unreadable(batch["failed"])
                losses = self.train_step(batch["image"], batch["valid"])
                self.step += 1
                self.images_seen += self.global_batch
                self._call("step_end", losses)
            self._call("run_end")
            trained = [self.model] + ([self.adversary.d] if self.adversary else [])
            if not all(replicas_agree(module, self.dist) for module in trained):
                raise PConvError("the processes' weights differ at the end: DDP went out of sync")
            barrier(self.dist)
        finally:
            self._call("close")
            if self.logger is not None:
                self.logger.close()
                self.logger = None
        return Summary(
            step=self.step,
            finished=self.step >= self.config.steps,
            images_per_s=self.progress.rate,
            losses=losses,
            metrics=self.last_metrics,
            final=self.final_export.folder,
            skipped=len(self.scan.bad) + len(self.skipped_decode),
        )

    def _call(self, point: str, *args: Any) -> None:
        for hook in self.hooks:
            getattr(hook, point)(self, *args)

    # -- one step ---------------------------------------------------------------------------

    def train_step(self, image: torch.Tensor, valid: torch.Tensor) -> dict[str, float]:
        """One optimisation step on a batch; returns its named losses (mean over ranks):
        the loss terms and ``grad_norm``."""
        non_blocking = self.device.type == "cuda"
        image = image.to(self.device, non_blocking=non_blocking)
        valid = valid.to(self.device, non_blocking=non_blocking)
        if self.config.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
            valid = valid.contiguous(memory_format=torch.channels_last)
        adv = self.adversary
        # Between the reconstruction warm-up and the joint phase the generator only predicts.
        train_g = adv is None or adv.trains_generator(self.step)
        adv_g = adv is not None and train_g and adv.trains_discriminator(self.step)
        with self.autocast(), contextlib.nullcontext() if train_g else torch.no_grad():
            outputs = as_outputs(self.net(image, valid))
            terms = self.loss_fn(outputs, image, valid)
            out = outputs["output"]
            if adv is not None:
                zero = terms["total"].new_zeros(())
                terms["g_adv"] = adv.generator_term(out, image, valid) if adv_g else zero
                terms["total"] = terms["total"] + adv.weight * terms["g_adv"]
        if train_g:
            self.scaler.scale(terms["total"]).backward()
            self.scaler.unscale_(self.optimizer)
            params = [p for p in self.model.parameters() if p.grad is not None]
            max_norm = self.config.clip_grad if self.config.clip_grad > 0 else math.inf
            grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        else:
            grad_norm = torch.zeros((), device=self.device)
        names = self.terms
        if adv is not None:
            names = (*self.terms, *ADV_TERMS)
            zero = torch.zeros((), device=self.device)
            d_terms = dict.fromkeys(ADV_TERMS[1:], zero)
            if adv.trains_discriminator(self.step):
                d_terms = adv.discriminator_backward(out, image, valid, self.autocast())
            terms.update(d_terms)
        stop = 1.0 if self.stop_requested else 0.0
        packed = torch.stack(
            [terms[k].detach().float().reshape(()) for k in names]
            + [grad_norm.detach().float().reshape(()), torch.tensor(stop, device=self.device)]
        )
        packed = all_mean(packed, self.dist).cpu()  # one sync: logging, NaN guard, stop flag
        losses = {k: float(v) for k, v in zip(names, packed[: len(names)], strict=True)}
        losses["grad_norm"] = float(packed[len(names)])
        self.stop_requested = float(packed[-1]) > 0
        self._call("after_backward", losses)
        if train_g:
            self.scaler.step(self.optimizer)  # with fp16, steps with inf/NaN grads are skipped
            self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if adv is not None and adv.trains_discriminator(self.step):
            adv.step()
        return losses

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    # -- schedule ---------------------------------------------------------------------------

    def phase_of(self, step: int) -> int:
        return 1 if step < self.config.phase1_steps else 2

    def _apply_schedule(self) -> None:
        # The recipe's warm-up loss (if it has one) for the first adv_warmup share of the steps
        self.loss_fn.warming_up = self.step < self.config.warmup_steps  # from the step alone
        stage = "warm-up" if self.loss_fn.warming_up else "main"
        if self.loss_fn.warmup is not None and stage != self.loss_stage:
            self.loss_stage = stage
            self.progress.note(self, f"step {self.step}: loss: {stage} stage")
        if self.adversary is not None:
            name = self.adversary.phase_name(self.step)
            if name != self.adversarial_phase:  # the first step of a Trainer, then changes
                self.adversarial_phase = name
                self.progress.note(self, f"step {self.step}: adversarial phase: {name}")
        phase = self.phase_of(self.step)
        if self.config.lr_decay:
            self._decay_lr(phase)
        if phase != self.phase:
            self._enter_phase(phase)
            self.progress.note(
                self,
                f"step {self.step}: phase 2 (lr {self.config.finetune_lr}"
                + (", encoder BN frozen)" if self.recipe.freeze is not None else ")"),
            )

    def lr_factor(self, step: int) -> float:
        """The learning rates' factor at ``step`` (0-based): 1, then over the last
        ``lr_decay`` share of the steps linearly down to 1/n at the last of those n steps."""
        steps = self.config.steps
        n = round(self.config.lr_decay * steps)
        return 1.0 if step < steps - n or n == 0 else (steps - step) / n

    def _decay_lr(self, phase: int) -> None:
        """Set every optimiser's learning rate for this step (``lr_decay``; a function of the
        step alone, so a resumed run continues the same schedule)."""
        factor = self.lr_factor(self.step)
        base = self.config.lr if phase == 1 else self.config.finetune_lr
        for group in self.optimizer.param_groups:
            group["lr"] = base * factor
        if self.adversary is not None:
            for group in self.adversary.optimizer.param_groups:
                group["lr"] = self.adversary.lr * factor

    def _enter_phase(self, phase: int) -> None:
        self.phase = phase
        lr = self.config.lr if phase == 1 else self.config.finetune_lr
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        if self.recipe.freeze is not None:
            self.recipe.freeze(self.model, phase == 2)
        self.net = wrap_for_step(self.recipe.wrap(self.model), self.config, self.dist, self.device)

    # -- data -------------------------------------------------------------------------------

    def _record_unreadable(self, failed: torch.Tensor) -> None:
        for index in failed.tolist():
            if index >= 0 and index not in self.skipped_decode:
                self.skipped_decode.add(index)
                if self.dist.main:
                    path = self.train_set.paths[index]
                    self.say(f"skipped an unreadable image: {path}")
                    with open(self.run_dir / "skipped.txt", "a") as fh:
                        fh.write(f"{path}\tdecoding failed\n")

    # -- resume and the run's files ---------------------------------------------------------

    def elapsed(self) -> float:
        """Seconds of training in this run, over every session."""
        return self.elapsed_before + time.time() - self.started

    def metadata(self, metrics: dict[str, float]) -> dict[str, str]:
        """What the exported weights say about this run (:func:`export.run_metadata`)."""
        return export.run_metadata(self, metrics)


# -- setup, piece by piece ------------------------------------------------------------------------


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _build_model(
    recipe: Recipe, config: TrainConfig, loaded: state.LoadedState | None, device: torch.device
) -> tuple[nn.Module, TrainConfig, str | None]:
    """(model in training mode on ``device``, the config with the model's keys, init path)."""
    settle = recipe.settle or (lambda c, model: c)
    if loaded is not None and "model_config" in loaded.extra:
        # Resuming: the checkpoint's architecture (normalisation included) is the truth;
        # the init weights are neither needed nor downloaded again.
        arch, c = state.model_architecture(loaded)
        _check_architecture(recipe, arch.name, Setting("resume"), f" {loaded.path}")
        config = with_model(config, recipe.settings_of(c))
        model = arch.build(c).to(device).train()
        return model, settle(config, model), loaded.extra.get("init_path")
    init_path = None
    if config.init:
        try:
            path = Path(config.init)
            if path.is_file() and state.is_state_file(path):  # another run's checkpoint
                model = state.model_from_state(state.load_state(path))
            else:
                path = resolve_weights(config.init)
                model, _ = load_weights(path, device="cpu")
        except CheckpointError as exc:
            raise InitError(Setting("init"), f" {config.init}: {exc}") from None
        _check_architecture(recipe, architecture_of(model).name, Setting("init"), f" {config.init}")
        config = with_model(config, recipe.settings_of(model.config))
        model = recipe.adapt_init(model, config)
        init_path = str(path)
    else:
        model = recipe.build(config)
    return model.to(device).train(), settle(config, model), init_path


def _check_architecture(recipe: Recipe, name: str, *where: str | Setting) -> None:
    """The weights a run starts from must be of the network its ``arch`` trains."""
    if name != recipe.architecture:
        raise InitError(
            *where, f": a {name} model; the trainer trains {recipe.architecture} models with ",
            Setting("arch"), f" {recipe.name}",
        )  # fmt: skip


def _decodes(path: Path, c: TrainConfig) -> bool:
    try:
        load_crop(path, c.size, c.crop, False, np.random.default_rng(0))
    except Exception:  # whatever a broken file makes the decoder raise
        return False
    return True


def _build_data(c: TrainConfig, dist: DistInfo) -> _Data:
    """The training images, the masks, and the fixed validation set (rank 0 only)."""
    scan = scan_images(find_images(c.data))
    if not scan.good:
        raise PConvError(f"none of the {len(scan.bad)} images in {', '.join(c.data)} opens")
    # Opening reads headers only; a truncated file opens and then fails to decode. Workers skip
    # such files, but with none left they could only fail (and a DataLoader worker's error can
    # leave the others waiting): find one that decodes here, before any run file is written.
    if not any(_decodes(path, c) for path in scan.good):  # stops at the first that does
        found, opened = len(scan.good) + len(scan.bad), len(scan.good)
        unopened = f", {len(scan.bad)} do not open at all" if scan.bad else ""
        raise PConvError(
            f"none of the {found} images in {', '.join(c.data)} decodes ({opened} open, but "
            f"their pixel data is truncated or corrupt{unopened})"
        )
    masks = training_masks(
        c.masks, c.size, border=c.border_rule(), buckets=c.buckets(), mask_dir=c.mask_dir
    )
    masks.draw(np.random.default_rng(c.seed))  # a mask setting that cannot work fails now
    train_paths, val_paths = scan.good, []
    description = ""
    if c.val:
        val_paths = scan_images(find_images([c.val])).good
        description = f"{len(val_paths)} images of {c.val}"
    holdout = c.val_holdout
    if holdout is None and not c.val:
        holdout = min(HOLDOUT_MAX, int(len(train_paths) * HOLDOUT_SHARE))
    if holdout:
        train_paths, held = split_holdout(train_paths, holdout, c.seed)
        val_paths = val_paths + held
        description = f"{len(held)} images held out of the training folders" + (
            f" and {c.val}" if c.val else ""
        )
    if len(val_paths) > c.val_count:
        stride = len(val_paths) / c.val_count
        val_paths = [val_paths[int(i * stride)] for i in range(c.val_count)]
    train_set = TrainImages(train_paths, c.size, masks, c.crop, c.flip, c.mask_pairing)
    # Only rank 0 validates, so only rank 0 decodes the validation images.
    keep_val = val_paths and dist.main
    valset = load_valset(val_paths, c.size, masks, c.seed) if keep_val else None
    if valset is not None:
        description = f"{len(valset)} validation images ({description})"
    return _Data(scan, train_set, valset, description)


def wrap_for_step(
    net: nn.Module, config: TrainConfig, dist: DistInfo, device: torch.device
) -> nn.Module:
    """The module the step calls: ``net`` (the recipe's training view of the model) in DDP
    (rebuilt when the trainable set changes) and/or ``torch.compile``; checkpoints and
    validation always use the plain model."""
    if dist.enabled:
        ids = [device.index] if device.type == "cuda" else None
        net = DistributedDataParallel(net, device_ids=ids)
    if config.compile:
        # Graph breaks (the model checks masks on the host) make each U-Net block its own
        # frame, called at a different size per level: specialise every size rather than
        # trace symbolic shapes, and allow that many specialisations.
        dynamo_config = torch._dynamo.config
        key = "recompile_limit" if hasattr(dynamo_config, "recompile_limit") else "cache_size_limit"
        setattr(dynamo_config, key, max(getattr(dynamo_config, key), 64))  # older torch
        net = torch.compile(net, dynamic=False)
    return net


def _find_resume_state(trainer: Trainer) -> state.LoadedState | None:
    if trainer.dist.main:
        removed = state.remove_stale_temporaries(trainer.run_dir)
        if removed:
            trainer.say(f"removed {removed} partial checkpoint file(s) of an interrupted write")
    return state.latest_state(trainer.run_dir)


def _restore(trainer: Trainer, loaded: state.LoadedState) -> None:
    """The bookkeeping a checkpoint carried over, and every state holder."""
    loaded.restore(trainer.states)
    trainer.step = loaded.step
    extra = loaded.extra
    trainer.best = extra.get("best")
    trainer.skipped_decode = set(extra.get("skipped_decode", []))
    trainer.elapsed_before = float(extra.get("elapsed", 0.0))
    trainer.images_seen = int(extra.get("images_seen", 0))
    trainer.last_metrics = extra.get("metrics", {})
    trainer.say(f"resuming from {loaded.path} (step {trainer.step})")


def write_run_files(trainer: Trainer, resumed: bool) -> None:
    """``config.toml``, ``skipped.txt`` and this session's entry in ``run.json``."""
    header = "Resolved settings of this run (python -m train --config this file)."
    (trainer.run_dir / "config.toml").write_text(dump_toml(trainer.config, header))
    if trainer.scan.bad:
        lines = [f"{path}\t{why}" for path, why in trainer.scan.bad]
        (trainer.run_dir / "skipped.txt").write_text("\n".join(lines) + "\n")
    sessions_path = trainer.run_dir / "run.json"
    sessions = []
    if resumed and sessions_path.is_file():
        sessions = json.loads(sessions_path.read_text())
    sessions.append(
        {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "resumed_at": trainer.step if resumed else None,
            "command": trainer.command,
            "hardware": export.hardware(trainer.device, trainer.dist.world),
            "precision": precision_name(trainer.amp_dtype),
            "world": trainer.dist.world,
            "train_images": len(trainer.train_set),
            "val_images": len(trainer.valset) if trainer.valset else 0,
            "skipped_unreadable": [str(p) for p, _ in trainer.scan.bad],
            "pconv_train": "1",
        }
    )
    sessions_path.write_text(json.dumps(sessions, indent=2) + "\n")


def batches(trainer: Trainer) -> Iterator[dict[str, torch.Tensor]]:
    """The batches of steps ``step..end-1`` (nothing to load when there are none)."""
    if trainer.step >= trainer.end:
        return iter(())
    c = trainer.config
    sampler = StepSampler(
        len(trainer.train_set), c.batch_size, c.seed, trainer.step, c.steps,
        trainer.dist.rank, trainer.dist.world,
    )  # fmt: skip
    if c.workers:
        single_threaded_opencv()
    return iter(
        DataLoader(
            trainer.train_set,
            batch_size=c.batch_size,
            sampler=sampler,
            num_workers=c.workers,
            pin_memory=trainer.device.type == "cuda",
            worker_init_fn=worker_init,
            collate_fn=collate,
            persistent_workers=False,
            prefetch_factor=4 if c.workers else None,
        )
    )
