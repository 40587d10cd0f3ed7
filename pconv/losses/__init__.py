"""What the networks' losses are built from: the loss terms (:mod:`.terms`: pixel, perceptual,
style, TV, SSIM) and the perceptual networks (:mod:`.backbones`: VGG trunks and their weights).

Each network's own loss lives in its folder (``pconv.archs.<name>.loss``) and combines these.
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
    "BackboneInfo",
    "BackboneUnavailableError",
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
