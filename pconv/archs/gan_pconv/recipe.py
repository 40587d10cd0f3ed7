"""How Jersch et al.'s generator trains (``--arch gan-pconv``): its MSE reconstruction loss
(:mod:`.loss`), then ``--adversarial global-local``'s three phases (reconstruction, the global
and local discriminators alone, both), the adversarial design's own defaults."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pconv.architectures import Architecture
from pconv.archs.gan_pconv.loss import TERM_NAMES, GanPConvLoss
from pconv.training.errors import ConfigError, Setting
from pconv.training.recipes import Preset, Recipe, TrainingLoss, register_recipe, size_multiple
from pconv.training.settings import MODEL, setting

if TYPE_CHECKING:
    from pconv.training.config import TrainConfig

SETTINGS = {
    "base_width": setting(
        None,
        "channels of the first layer (Jersch et al.: 64)",
        group=MODEL,
        unset="the preset's",
        type="int | None",
    ),
}


def _loss(c: TrainConfig) -> TrainingLoss:
    return TrainingLoss(GanPConvLoss(), TERM_NAMES, TERM_NAMES, "output")


def _check(c: TrainConfig, arch: Architecture) -> None:
    if c.base_width is not None and c.base_width < 1:
        raise ConfigError(Setting("base_width"), f" must be >= 1, got {c.base_width}")
    if c.base_width is not None:
        size_multiple(c, arch, GAN_PCONV)


GAN_PCONV = register_recipe(
    Recipe(
        name="gan-pconv",
        title="GAN with partial convolutions (Jersch et al.)",
        summary="the GAN with partial convolutions of Jersch et al. and its global and local "
        "discriminators",
        architecture="gan-pconv",
        presets={
            "gan-pconv-128": Preset(
                "Jersch et al.'s generator at 128 px, 64..256 channels, global + local D, batch 16",
                size=128,
                batch_size=16,
                steps=100_000,
                phase2_steps=0,
                model={"base_width": 64},
            ),
        },
        default_preset="gan-pconv-128",
        settings=SETTINGS,
        model_keys=("base_width",),
        model_config=lambda c: {"base_width": c.base_width, "resolution": c.size},
        settings_of=lambda mc: {"base_width": mc.base_width, "size": mc.resolution},
        loss=_loss,
        # L_G = L_MSE - 1/2000 log D, reconstruction / discriminators alone / joint: the
        # global-local design's own defaults (pconv.training.config.ADVERSARIAL_DEFAULTS)
        defaults={"adversarial": "global-local"},
        check=_check,
        order=1,
    )
)
