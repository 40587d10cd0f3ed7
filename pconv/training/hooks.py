"""What happens around the training steps, one job per hook, called by the loop at fixed points.

The points, in the order a run meets them (see :meth:`~pconv.training.engine.Trainer.run`):

``run_start``      before the first step (open logs, install signal handlers)
``step_start``     before a step draws its batch
``after_backward`` inside the step, once the gradients and losses are known and before any
                   optimiser steps (the NaN guard may stop the run here)
``step_end``       after a step, with its named losses (log, validate, checkpoint)
``run_end``        after the last step of this call (final checkpoint, export)
``close``          always, even after an error (close files, restore signal handlers)

A hook reads the trainer's state and may write only what it owns (the validation hook owns
``best`` and ``last_metrics``; the signal hook ``stop_requested``). Only rank 0 writes files
or prints. A new piece (a discriminator's losses, an EMA copy, a scheduler) is a new hook, or
one more entry in the trainer's registry of state holders, not a change to the loop.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from pconv.architectures import architecture_of
from pconv.training import export, state
from pconv.training.config import dump_toml
from pconv.training.errors import Setting, TrainingDiverged
from pconv.training.logs import MetricLog
from pconv.training.validate import evaluate, save_grid

if TYPE_CHECKING:
    from pconv.training.engine import Trainer

BEST_DIR, FINAL_DIR, SAMPLES_DIR = "best", "final", "samples"


class Hook:
    """Does nothing at every point; a hook overrides the points it cares about."""

    def run_start(self, trainer: Trainer) -> None:
        pass

    def step_start(self, trainer: Trainer) -> None:
        pass

    def after_backward(self, trainer: Trainer, losses: dict[str, float]) -> None:
        pass

    def step_end(self, trainer: Trainer, losses: dict[str, float]) -> None:
        pass

    def run_end(self, trainer: Trainer) -> None:
        pass

    def close(self, trainer: Trainer) -> None:
        pass


class Progress(Hook):
    """The metrics log (``metrics.csv``, TensorBoard), the progress bar or line, and img/s.

    Every ``log_every`` steps: the mean of each named loss over the window as ``train/NAME``,
    and the progress line shows ``total`` and the trainer's ``shown_terms``. Time spent in
    the hooks after this one (validation, checkpoints) does not count in img/s.
    """

    def __init__(self) -> None:
        self.bar: tqdm | None = None
        self.rate = 0.0
        self._sums: dict[str, float] = {}
        self._images = 0
        self._steps = 0
        self._start = time.time()
        self._paused: float | None = None

    def run_start(self, trainer: Trainer) -> None:
        self._sums, self._images, self._steps, self._start = {}, 0, 0, time.time()
        if not trainer.dist.main:
            return
        # Rows logged after this step (by an attempt killed before its next checkpoint)
        # are dropped: they are about to be trained and logged again.
        trainer.logger = MetricLog(trainer.run_dir, trainer.config.tensorboard, trainer.step)
        self.bar = tqdm(
            total=trainer.config.steps, initial=trainer.step, unit="step", dynamic_ncols=True,
            disable=None, desc=f"phase {trainer.phase}",
        )  # fmt: skip

    def step_start(self, trainer: Trainer) -> None:
        if self._paused is not None:  # the hooks after this one ran since
            self._start += time.time() - self._paused
            self._paused = None

    def step_end(self, trainer: Trainer, losses: dict[str, float]) -> None:
        self._images += trainer.global_batch
        self._steps += 1
        for k, v in losses.items():
            self._sums[k] = self._sums.get(k, 0.0) + v
        if trainer.step % trainer.config.log_every == 0 or trainer.step == trainer.end:
            self.rate = self._images / max(time.time() - self._start, 1e-9)
            self._log(trainer, {k: v / self._steps for k, v in self._sums.items()})
            self._sums, self._images, self._steps, self._start = {}, 0, 0, time.time()
        if self.bar is not None:
            self.bar.update(1)
        self._paused = time.time()

    def _log(self, trainer: Trainer, means: dict[str, float]) -> None:
        if not trainer.dist.main:
            return
        lr = trainer.optimizer.param_groups[0]["lr"]
        scalars = {f"train/{k}": v for k, v in means.items()}
        scalars.update(
            {"train/images_per_s": self.rate, "train/lr": lr, "train/phase": trainer.phase}
        )
        trainer.logger.scalars(trainer.step, scalars)
        shown = {k: f"{means[k]:.4g}" for k in trainer.shown_terms if k in means}
        shown["img/s"] = f"{self.rate:.1f}"
        if self.bar is not None and not self.bar.disable:
            self.bar.set_description(f"phase {trainer.phase}")
            self.bar.set_postfix(shown, refresh=False)
        else:
            text = " ".join(f"{k} {v}" for k, v in shown.items())
            trainer.say(f"step {trainer.step}/{trainer.config.steps} phase {trainer.phase} {text}")

    def note(self, trainer: Trainer, message: str) -> None:
        """A line of news that does not break the progress bar."""
        if not trainer.dist.main:
            return
        if self.bar is not None and not self.bar.disable:
            self.bar.write(message, file=sys.stderr)
        else:
            trainer.say(message)

    def close(self, trainer: Trainer) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Validation(Hook):
    """Every ``val_every`` steps and at the last step of the schedule: metrics and loss on
    the fixed validation set, a sample grid, and ``best/`` when PSNR improves."""

    def step_end(self, trainer: Trainer, losses: dict[str, float]) -> None:
        c = trainer.config
        if trainer.valset is not None and (
            trainer.step % c.val_every == 0 or trainer.step == c.steps
        ):
            self.validate(trainer)

    def validate(self, trainer: Trainer) -> None:
        if not trainer.dist.main or trainer.valset is None:
            return
        scores, grid = evaluate(
            trainer.model, trainer.loss_fn, trainer.valset, trainer.device,
            trainer.config.batch_size, trainer.autocast() if trainer.amp_dtype else None,
            trainer.recipe.outputs,
        )  # fmt: skip
        trainer.last_metrics = scores
        trainer.logger.scalars(trainer.step, {f"val/{k}": v for k, v in scores.items()})
        trainer.logger.image(trainer.step, "val/samples", grid)
        save_grid(grid, trainer.run_dir / SAMPLES_DIR / f"step-{trainer.step:08d}.png")
        psnr = scores.get("psnr")
        if psnr is not None and (trainer.best is None or psnr > trainer.best):
            trainer.best = psnr
            folder = trainer.run_dir / BEST_DIR
            export.export(trainer.model, folder, trainer.metadata(scores))
            (folder / "metrics.json").write_text(
                json.dumps({"step": trainer.step, **scores}, indent=2) + "\n"
            )


class Signals(Hook):
    """First SIGINT/SIGTERM: finish the step, checkpoint, stop. A second one: now.

    The flag is shared by all ranks in the step's one all-reduce, so they stop together.
    """

    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}
        self._trainer: Trainer | None = None

    def run_start(self, trainer: Trainer) -> None:
        self._trainer = trainer
        self._previous = {}
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.getsignal(sig)
                signal.signal(sig, self._on_signal)
        except ValueError:  # not the main thread: leave signals alone
            self._previous = {}

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._trainer is None or self._trainer.stop_requested:
            raise KeyboardInterrupt
        self._trainer.stop_requested = True

    def step_end(self, trainer: Trainer, losses: dict[str, float]) -> None:
        if trainer.stop_requested:
            trainer.progress.note(trainer, f"stopping at step {trainer.step} as asked")

    def close(self, trainer: Trainer) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous, self._trainer = {}, None


class NanGuard(Hook):
    """Stops the run, without an optimiser step and without saving, when the loss (or, without
    a grad scaler, the gradient norm) is not finite: the last checkpoint stays the good one.
    With fp16 the scaler itself skips steps with inf/NaN gradients."""

    #: (loss key, gradient-norm key, what the message calls them): the generator's, then the
    #: discriminators' when the run has them.
    CHECKS = (("total", "grad_norm", ""), ("d_loss", "d_grad_norm", "discriminator "))

    def after_backward(self, trainer: Trainer, losses: dict[str, float]) -> None:
        fp16 = trainer.scaler.is_enabled()
        failed = []  # every one, so that a diverging discriminator is named as well
        for loss_key, grad_key, who in self.CHECKS:
            if loss_key not in losses:
                continue
            loss = not math.isfinite(losses[loss_key])
            if loss or not (fp16 or math.isfinite(losses[grad_key])):
                key = loss_key if loss else grad_key
                failed.append(f"{who}{'loss' if loss else 'gradient norm'} became {losses[key]}")
        if failed:
            self._stop(trainer, " and the ".join(failed))

    def _stop(self, trainer: Trainer, what: str) -> None:
        trainer.optimizer.zero_grad(set_to_none=True)
        if trainer.adversary is not None:
            trainer.adversary.zero_grad()
        found = state.list_checkpoints(trainer.run_dir)
        where = f"last good checkpoint: {found[-1][1]}" if found else "no checkpoint was written"
        raise TrainingDiverged(
            f"the {what} in step {trainer.step + 1}; "
            f"stopped without saving ({where}). Try a lower ", Setting("lr"), ", ",
            Setting("clip_grad"), " 1, or ", Setting("precision"), " fp32, then resume",
        )  # fmt: skip


class Checkpoints(Hook):
    """Every ``ckpt_every`` steps (not at the last step of this call, nor when stopping: the
    end of the run writes that one) and at the end: the registry of state holders, the step
    and the trainer's bookkeeping; then only the newest ``keep`` are kept."""

    def step_end(self, trainer: Trainer, losses: dict[str, float]) -> None:
        if trainer.stop_requested:
            return
        if trainer.step % trainer.config.ckpt_every == 0 and trainer.step < trainer.end:
            self.save(trainer)

    def run_end(self, trainer: Trainer) -> None:
        self.save(trainer)

    def save(self, trainer: Trainer) -> None:
        if not trainer.dist.main:
            return
        extra = {
            "best": trainer.best,
            "skipped_decode": sorted(trainer.skipped_decode),
            "elapsed": trainer.elapsed(),
            "images_seen": trainer.images_seen,
            "metrics": trainer.last_metrics,
            "world": trainer.dist.world,
            "model_architecture": architecture_of(trainer.model).name,
            "model_config": json.loads(trainer.model.config.to_json()),
            "init_path": trainer.init_path,
        }
        path = state.checkpoint_path(trainer.run_dir, trainer.step)
        state.save_state(
            path, step=trainer.step, phase=trainer.phase_of(max(trainer.step - 1, 0)),
            holders=trainer.states, extra=extra,
        )  # fmt: skip
        state.prune(trainer.run_dir, trainer.config.keep)


class FinalExport(Hook):
    """When the schedule is complete: ``final/`` with the weights in the zoo's format, a model
    card draft and the settings (validating first if the run never did)."""

    def __init__(self, validation: Validation) -> None:
        self.validation = validation
        self.folder: Path | None = None

    def run_end(self, trainer: Trainer) -> None:
        if trainer.step < trainer.config.steps or not trainer.dist.main:
            return
        if trainer.valset is not None and not trainer.last_metrics:
            self.validation.validate(trainer)
        folder = trainer.run_dir / FINAL_DIR
        meta = trainer.metadata(trainer.last_metrics)
        export.export(trainer.model, folder, meta)
        export.write_card(folder)
        (folder / "config.toml").write_text(dump_toml(trainer.config, "Settings that trained it."))
        self.folder = folder
