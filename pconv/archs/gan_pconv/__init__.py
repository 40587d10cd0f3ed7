"""The generator of Jersch, Lundgren and Bolin, "Image Inpainting using GANs with Partial
Convolutions" (its Table 1): the network (:mod:`.model`), its reconstruction loss
(:mod:`.loss`), how it trains against a global and a local discriminator (:mod:`.recipe`,
``--arch gan-pconv``) and its registration here ("gan-pconv")."""

from __future__ import annotations

from pconv.architectures import Architecture, register_architecture
from pconv.archs.gan_pconv.model import MULTIPLE, GanPConvConfig, GanPConvGenerator, layer_table

__all__ = ["GAN_PCONV", "MULTIPLE", "GanPConvConfig", "GanPConvGenerator", "layer_table"]


def _describe(config: GanPConvConfig) -> str:
    return (
        "GAN with partial convolutions (Jersch, Lundgren, Bolin, Table 1): a "
        f"partial-convolution U-Net, encoder widths {config.encoder_widths}, nearest-neighbour "
        "upsampling, LeakyReLU, 1x1 sigmoid head"
    )


GAN_PCONV = register_architecture(
    Architecture(
        name="gan-pconv",
        config_type=GanPConvConfig,
        module_type=GanPConvGenerator,
        build=GanPConvGenerator,
        recognise=lambda meta: False,  # every file of it carries the "architecture" key
        multiple=lambda config: MULTIPLE,
        resolution=lambda config: config.resolution,
        describe=_describe,
        activation_bytes=lambda config, pixels: pixels * config.base_width * 4 * 24,
    )
)
