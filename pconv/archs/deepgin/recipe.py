"""How DeepGIN trains (``--arch deepgin``): a warm-up on its L1 terms alone, then every term of
its loss (:mod:`.loss`) against ``--adversarial multiscale-patch``'s two PatchGANs, with the
learning rates decaying over the second half; every image paired with a rectangle, a free-form
and a cellular mask (``--masks deepgin --mask-pairing each``)."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from pconv.architectures import Architecture
from pconv.archs.deepgin.loss import DEEPGIN_TERMS, DeepGINLoss, DeepGINLossWeights
from pconv.archs.deepgin.model import DeepGINConfig
from pconv.losses.backbones import no_backbone, resolve_backbone
from pconv.training.recipes import Preset, Recipe, TrainingLoss, register_recipe, size_multiple

if TYPE_CHECKING:
    from pconv.training.config import TrainConfig

#: The network the paper's perceptual and style terms run on (recorded beside the one used).
PAPER_BACKBONE = "ImageNet VGG-19 conv1_1..conv5_1"
#: --perceptual values that are that network.
FAITHFUL = ("vgg19", "vgg19-file")
#: What the progress line shows of DeepGIN's terms (all are logged).
SHOWN = ("out_valid", "out_hole", "perceptual", "style", "tv")


def _config(c: TrainConfig) -> dict[str, Any]:
    # each preset names its DeepGINConfig preset (an --init file or a checkpoint its own)
    preset = DEEPGIN.presets.get(c.preset or "", DEEPGIN.presets[DEEPGIN.default_preset])
    variant = getattr(DeepGINConfig, preset.network.get("variant", "paper"))
    return {**json.loads(variant().to_json()), "resolution": c.size}


def _loss(c: TrainConfig) -> TrainingLoss:
    """Eq. (1)-(7) but the hinge term: the main stage's weights, and L1 alone for the warm-up
    (:meth:`DeepGINLossWeights.warmup`), both on one feature extractor. Without one
    (``--perceptual none``) the perceptual and style weights are 0, and the record says so."""
    requested = c.loss_weight_values()
    if requested.needs_features():
        backbone = resolve_backbone(c.perceptual, offline=True)
    else:
        backbone = no_backbone("not needed: perceptual and style weights are 0")
    trunk = backbone.trunk
    weights = requested if trunk is not None else replace(requested, perceptual=0.0, style=0.0)
    loss = DeepGINLoss(features=trunk, weights=weights)
    info = backbone.info.as_dict()
    # "faithful" is to this network's paper, whose terms run on VGG-19 (not the U-Net's VGG16)
    info["faithful"] = info["name"] in FAITHFUL
    record = {
        "backbone": info,
        "paper_backbone": PAPER_BACKBONE,
        "features": list(trunk.feature_names) if trunk is not None else [],
        "requested_weights": asdict(requested),
        "warmup_steps": c.warmup_steps,
    }
    shown = tuple(k for k in SHOWN if weights.per_term()[k])
    return TrainingLoss(
        loss,
        DEEPGIN_TERMS,
        shown,
        None,
        warmup=loss.with_weights(DeepGINLossWeights.warmup()),
        record=record,
    )


def _check(c: TrainConfig, arch: Architecture) -> None:
    size_multiple(c, arch, DEEPGIN)


DEEPGIN = register_recipe(
    Recipe(
        name="deepgin",
        title="DeepGIN (Li et al., AIM 2020)",
        summary="DeepGIN of Li et al. and its two PatchGANs",
        architecture="deepgin",
        presets={
            "deepgin-256": Preset(
                "DeepGIN as its paper builds it (42.9 M parameters) at 256 px, batch 4 images "
                "x 3 masks",
                size=256,
                batch_size=4,
                steps=200_000,
                phase2_steps=0,
                network={"variant": "paper"},
            ),
            "deepgin-compact": Preset(
                "a compact DeepGIN for CPUs (1.29 M parameters) at 256 px, batch 4 images x 3 "
                "masks",
                size=256,
                batch_size=4,
                steps=20_000,
                phase2_steps=0,
                network={"variant": "compact"},
            ),
        },
        default_preset="deepgin-256",
        settings={},
        model_keys=(),
        model_config=_config,
        settings_of=lambda mc: {"size": mc.resolution},
        loss=_loss,
        loss_weights=DeepGINLossWeights,
        # warm-up on the L1 terms (its loss's warm-up weights, no discriminator), then the
        # main stage: every term and both PatchGANs (hinge; lr 1e-4 / 4e-4 and beta1 0.5 are
        # the multiscale-patch design's own defaults), the learning rates constant, then
        # linearly to zero over the second half of the steps. Its data recipe: rectangles,
        # free-form strokes and cellular-automata masks, every image paired with one of each.
        # Its perceptual terms: VGG-19 with --perceptual vgg19 (the paper's, from the Hub
        # cache), else the offline ST-LPIPS VGG16 trunk (recorded as such).
        defaults={
            "adversarial": "multiscale-patch",
            "adv_warmup": 0.1,
            "lr_decay": 0.5,
            "masks": "deepgin",
            "mask_pairing": "each",
            "perceptual": "stlpips-vgg16",
        },
        train_method="forward_train",
        check=_check,
        order=2,
    )
)
