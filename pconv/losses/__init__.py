"""Losses of Liu et al., "Image Inpainting for Irregular Holes Using Partial Convolutions".

``InpaintingLoss(weights, backbone)(out, gt, valid)`` gives each term and the total;
``describe()`` gives what to store with trained weights.
"""

from pconv.losses.backbones import (
    BACKBONE_CHOICES,
    BackboneInfo,
    BackboneUnavailableError,
    PerceptualBackbone,
    Vgg16Trunk,
    VggLayout,
    VggTrunk,
    load_stlpips_vgg16,
    load_timm_file,
    load_timm_vgg16_file,
    load_vgg16_from_hub,
    load_vgg19_from_hub,
    resolve_backbone,
)
from pconv.losses.inpainting import LOSS_VERSION, TERM_NAMES, InpaintingLoss, LossWeights
from pconv.losses.terms import (
    composite,
    dilated_hole_region,
    gram_matrix,
    hole_loss,
    perceptual_loss,
    ssim_loss,
    ssim_map,
    style_loss,
    tv_loss,
    valid_loss,
)

__all__ = [
    "BACKBONE_CHOICES",
    "LOSS_VERSION",
    "TERM_NAMES",
    "BackboneInfo",
    "BackboneUnavailableError",
    "InpaintingLoss",
    "LossWeights",
    "PerceptualBackbone",
    "Vgg16Trunk",
    "VggLayout",
    "VggTrunk",
    "composite",
    "dilated_hole_region",
    "gram_matrix",
    "hole_loss",
    "load_stlpips_vgg16",
    "load_timm_file",
    "load_timm_vgg16_file",
    "load_vgg16_from_hub",
    "load_vgg19_from_hub",
    "perceptual_loss",
    "resolve_backbone",
    "ssim_loss",
    "ssim_map",
    "style_loss",
    "tv_loss",
    "valid_loss",
]
