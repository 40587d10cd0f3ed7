"""How the PConv U-Net trains (``--arch unet``, the default): Liu et al.'s two phases, the
second with the encoder's BatchNorm frozen, on the paper's loss (:mod:`.loss`)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from torch import nn

from pconv.architectures import Architecture
from pconv.archs.unet.loss import TERM_NAMES, InpaintingLoss, LossWeights
from pconv.archs.unet.model import PRIORS, add_smooth_prior
from pconv.training.errors import ConfigError, Setting
from pconv.training.recipes import Preset, Recipe, TrainingLoss, at_size, register_recipe
from pconv.training.settings import MODEL, setting

if TYPE_CHECKING:
    from pconv.training.config import TrainConfig

#: The U-Net's training settings (TrainConfig fields; ``None``: the preset's or the init's).
SETTINGS = {
    "depth": setting(
        None,
        "U-Net encoder levels (paper: 8 at 512, 7 at 256)",
        group=MODEL,
        unset="the preset's",
        type="int | None",
    ),
    "base_width": setting(
        None,
        "channels of the first layer (paper: 64)",
        group=MODEL,
        unset="the preset's",
        type="int | None",
    ),
    "max_width_mult": setting(
        None,
        "U-Net widest layer = base x this (paper: 8)",
        group=MODEL,
        unset="the preset's",
        type="int | None",
    ),
    "prior": setting(
        None,
        "smooth (U-Net): a learned gate blends the prediction with a thin-plate fill (not in "
        "the paper; added to an --init model with its gate at 0.5)",
        group=MODEL,
        choices=PRIORS,
        unset="the --init model's, else none",
        type="str | None",
    ),
}


def _config(c: TrainConfig) -> dict[str, Any]:
    return {
        "depth": c.depth,
        "base_width": c.base_width,
        "max_width_mult": c.max_width_mult,
        "resolution": c.size,
        "prior": c.prior or "none",
    }


def _settings(mc: Any) -> dict[str, Any]:
    return {
        "depth": mc.depth,
        "base_width": mc.base_width,
        "max_width_mult": mc.max_width_mult,
        "size": mc.resolution,
    }


def _loss(c: TrainConfig) -> TrainingLoss:
    loss = InpaintingLoss(c.loss_weight_values(), backbone=c.perceptual, offline=True)
    weights = loss.weights.per_term()
    return TrainingLoss(loss, TERM_NAMES, tuple(k for k in TERM_NAMES if weights[k]), "output")


def _adapt_init(model: nn.Module, c: TrainConfig) -> nn.Module:
    """The init model at the run's resolution, gated with the smooth fill if ``prior`` asks."""
    model = at_size(model, c)
    if c.prior is None or c.prior == model.config.prior:
        return model
    if c.prior == "smooth":
        return add_smooth_prior(model)
    raise ConfigError(
        Setting("prior"), f" {c.prior} contradicts the ", Setting("init"),
        f" model (prior {model.config.prior}): a learned gate cannot be dropped",
    )  # fmt: skip


def _check(c: TrainConfig, arch: Architecture) -> None:
    if c.depth is not None and not 1 <= c.depth <= 10:
        raise ConfigError(Setting("depth"), f" must be 1..10, got {c.depth}")
    for key in ("base_width", "max_width_mult"):
        value = getattr(c, key)
        if value is not None and value < 1:
            raise ConfigError(Setting(key), f" must be >= 1, got {value}")
    if c.size is not None and c.depth is not None and c.size % 2**c.depth:
        raise ConfigError(
            Setting("size"), f" {c.size} is not a multiple of 2**depth = {2**c.depth}"
        )


PRESETS = {
    "paper-512": Preset(
        "the paper's U-Net at 512 px: 8 levels, 64..512 channels, batch 6",
        size=512,
        batch_size=6,
        steps=200_000,
        phase2_steps=50_000,
        model={"depth": 8, "base_width": 64, "max_width_mult": 8},
    ),
    "paper-256": Preset(
        "the paper's U-Net at 256 px (7 levels, as the zoo's places2 model), batch 6",
        size=256,
        batch_size=6,
        steps=200_000,
        phase2_steps=50_000,
        model={"depth": 7, "base_width": 64, "max_width_mult": 8},
    ),
    "compact-256": Preset(
        "a quarter of the paper's parameters at 256 px: 7 levels, 32..256 channels, batch 8",
        size=256,
        batch_size=8,
        steps=100_000,
        phase2_steps=25_000,
        model={"depth": 7, "base_width": 32, "max_width_mult": 8},
    ),
    "compact-128": Preset(
        "a small model for quick experiments and CPUs: 128 px, 6 levels, 16..128 channels",
        size=128,
        batch_size=8,
        steps=20_000,
        phase2_steps=5_000,
        model={"depth": 6, "base_width": 16, "max_width_mult": 8},
    ),
}

UNET = register_recipe(
    Recipe(
        name="unet",
        title="PConv U-Net",
        summary="the PConv U-Net of Liu et al.",
        architecture="pconv-unet",
        presets=PRESETS,
        default_preset="paper-256",
        settings=SETTINGS,
        model_keys=("depth", "base_width", "max_width_mult"),
        model_config=_config,
        settings_of=_settings,
        loss=_loss,
        loss_weights=LossWeights,
        freeze=lambda model, frozen: model.freeze_encoder_bn(frozen),
        adapt_init=_adapt_init,
        settle=lambda c, model: replace(c, prior=model.config.prior),
        check=_check,
        order=0,
        default=True,
    )
)
