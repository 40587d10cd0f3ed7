"""The PConv U-Net of Liu et al., "Image Inpainting for Irregular Holes Using Partial
Convolutions" (ECCV 2018): the network (:mod:`.model`), its loss (:mod:`.loss`, the paper's
eq. 1-7), how it trains (:mod:`.recipe`, ``--arch unet``) and its registration here."""

from __future__ import annotations

import json

from pconv.architectures import Architecture, register_architecture
from pconv.archs.unet.model import (
    HEADS,
    PRIORS,
    DecoderBlock,
    EncoderBlock,
    PConvUNet,
    UNetConfig,
    add_smooth_prior,
)

__all__ = [
    "HEADS",
    "PRIORS",
    "UNET",
    "DecoderBlock",
    "EncoderBlock",
    "PConvUNet",
    "UNetConfig",
    "add_smooth_prior",
]


def _describe(config: UNetConfig) -> str:
    parts = [
        f"PConv U-Net (Liu et al., ECCV 2018), {config.depth} levels, widths {config.widths}, "
        "nearest-neighbour upsampling, decoder input [upsampled, skip]"
    ]
    if config.prior != "none":
        parts.append(f"{config.prior} prior (a learned gate to pconv.smooth's thin-plate fill)")
    if config.head != "none":
        parts.append(f"{config.head} output head (LeakyReLU -> 1x1 conv -> sigmoid)")
    return "; ".join(parts)


def _recognise(meta: dict[str, str]) -> bool:
    """Files without the "architecture" key (the packaged default model, the zoo's converted
    U-Nets) hold PConv U-Nets: their config has a ``depth``."""
    try:
        return "depth" in json.loads(meta.get("config", ""))
    except ValueError:
        return False


UNET = register_architecture(
    Architecture(
        name="pconv-unet",
        config_type=UNetConfig,
        module_type=PConvUNet,
        build=PConvUNet,
        recognise=_recognise,
        multiple=lambda config: config.multiple,
        resolution=lambda config: config.resolution,
        describe=_describe,
        gated=lambda config: config.prior != "none",
        activation_bytes=lambda config, pixels: pixels * config.base_width * 4 * 24,
    )
)
