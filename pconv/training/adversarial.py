"""Adversarial training (``--adversarial``): the discriminators, their optimiser and scaler,
the generator's adversarial term and the discriminators' update, for one trainer.

The trainer's step stays one step: the generator's loss gains ``adv_weight * g_adv`` (Jersch
et al.: ``-log D``; Li et al.: the hinge ``-D``), and after the generator's backward the
discriminators take theirs on the same batch (real: the photo; fake: the detached composite).
The NaN guard sees both before either optimiser steps. Everything a resume needs is in the
trainer's registry of state holders (``discriminator``, ``d_optimizer``, ``d_scaler``); the
exported weights are the generator's only.

Phases (global-local by default, Jersch et al.'s after Iizuka et al.): steps ``[0, warmup)`` train
the generator on its reconstruction loss alone, ``[warmup, d_end)`` the discriminators alone
(the generator only predicts), then both. The shares are of ``steps``: extending a run with a
larger ``--steps`` moves the boundaries with it.

DDP: the discriminators' update goes through their own DistributedDataParallel (real and
fake in one batch: one forward per backward, as DDP wants). The generator's adversarial term
uses the plain module with its parameters frozen: the gradient only has to reach the
generator (whose DDP averages it), and the discriminators' copies are the same on every rank.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel

from pconv.discriminators import (
    GlobalLocalDiscriminator,
    build_discriminator,
    hinge_d_loss,
    hinge_g_loss,
    hole_boxes,
    log_d_loss,
    log_g_loss,
    parameter_count,
)
from pconv.losses.terms import composite

if TYPE_CHECKING:
    from pconv.training.config import TrainConfig
    from pconv.training.distributed import DistInfo

#: The adversarial entries of ``train_step()``'s dict: the generator's term (before its
#: weight), the discriminators' loss and its real and fake parts, their gradient norm.
ADV_TERMS = ("g_adv", "d_loss", "d_real", "d_fake", "d_grad_norm")


class Adversary:
    """The discriminators of one run and how they train (see the module docstring)."""

    def __init__(
        self, config: TrainConfig, device: torch.device, dist: DistInfo, amp_fp16: bool
    ) -> None:
        c = config
        self.kind = c.adversarial
        self.weight = float(c.adv_weight or 0.0)
        self.clip = c.clip_grad if c.clip_grad > 0 else math.inf
        steps = int(c.steps or 0)
        self.warmup = c.warmup_steps  # round(adv_warmup * steps)
        self.d_end = self.warmup + round((c.adv_d_only or 0.0) * steps)
        self.d = build_discriminator(self.kind, int(c.size or 0)).to(device).train()
        self.lr = float(c.d_lr)  # the discriminators' base learning rate
        self.optimizer = torch.optim.Adam(
            self.d.parameters(), lr=c.d_lr, betas=(c.adam_beta1 or 0.9, 0.999)
        )
        self.scaler = torch.amp.GradScaler(device.type, enabled=amp_fp16)
        self.net: torch.nn.Module = self.d
        if dist.enabled:
            ids = [device.index] if device.type == "cuda" else None
            self.net = DistributedDataParallel(self.d, device_ids=ids)
        if self.kind == "global-local":
            self.d_loss, self.g_loss = log_d_loss, log_g_loss
        else:
            self.d_loss, self.g_loss = hinge_d_loss, hinge_g_loss

    # -- the schedule --------------------------------------------------------------------

    def trains_generator(self, step: int) -> bool:
        return not self.warmup <= step < self.d_end

    def trains_discriminator(self, step: int) -> bool:
        return step >= self.warmup

    def phase_name(self, step: int) -> str:
        if step < self.warmup:
            return "reconstruction only"
        return "discriminators only" if step < self.d_end else "generator and discriminators"

    # -- the two halves of a step --------------------------------------------------------

    def _inputs(self, image: Tensor, valid: Tensor, completed: Tensor) -> tuple[Tensor, Any]:
        if isinstance(self.d, GlobalLocalDiscriminator):
            return completed, hole_boxes(valid, self.d.local_size)
        return image * valid, completed

    def generator_term(self, out: Tensor, image: Tensor, valid: Tensor) -> Tensor:
        """``g_adv`` of the composite, differentiable in ``out`` only (run under autocast)."""
        comp = composite(out, image.detach(), valid.detach())
        self.d.requires_grad_(False)
        try:
            return self.g_loss(self.d(*self._inputs(image, valid, comp)))
        finally:
            self.d.requires_grad_(True)

    def discriminator_backward(
        self, out: Tensor, image: Tensor, valid: Tensor, autocast: Any
    ) -> dict[str, Tensor]:
        """The discriminators' loss on real and (detached) fake, its backward and gradient
        norm; the optimiser steps later (:meth:`step`), after the NaN guard has looked."""
        comp = composite(out.detach(), image, valid).to(image.dtype)
        a_real, b_real = self._inputs(image, valid, image)
        a_fake, b_fake = self._inputs(image, valid, comp)
        n = image.shape[0]
        with autocast:
            logits = self.net(torch.cat([a_real, a_fake]), torch.cat([b_real, b_fake]))
            parts = logits if isinstance(logits, list) else [logits]
            real, fake = self.d_loss([t[:n] for t in parts], [t[n:] for t in parts])
            loss = real + fake
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        params = [p for p in self.d.parameters() if p.grad is not None]
        grad_norm = torch.nn.utils.clip_grad_norm_(params, self.clip)
        return {"d_loss": loss, "d_real": real, "d_fake": fake, "d_grad_norm": grad_norm}

    def step(self) -> None:
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.zero_grad()

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    # -- records ----------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """What the exported weights' training record says about their adversaries."""
        return {
            "discriminator": type(self.d).__name__,
            "parameters": parameter_count(self.d),
            "loss": "log (-log D)" if self.kind == "global-local" else "hinge",
            "weight": self.weight,
            "d_lr": self.lr,
            "betas": list(self.optimizer.param_groups[0]["betas"]),
            "reconstruction_only_steps": self.warmup,
            "discriminator_only_steps": self.d_end - self.warmup,
        }
