"""DeepGIN of Li et al., "DeepGIN: Deep Generative Inpainting Network for Extreme Image
Inpainting" (AIM 2020): the two generators (:mod:`.model`), its reconstruction loss (:mod:`.loss`,
eq. 1-7 but the adversarial term), how it trains against two PatchGANs (:mod:`.recipe`,
``--arch deepgin``) and its registration here ("deepgin")."""

from __future__ import annotations

from pconv.architectures import Architecture, register_architecture
from pconv.archs.deepgin.model import DeepGIN, DeepGINConfig, downsample4

__all__ = ["DEEPGIN", "DeepGIN", "DeepGINConfig", "downsample4"]


def _describe(config: DeepGINConfig) -> str:
    w = config.base_width
    return (
        f"DeepGIN (Li et al., AIM 2020): coarse G1 with {config.coarse_blocks} SPD blocks at "
        f"{4 * w} ch, rates {list(config.coarse_rates)}; refinement G2 with "
        f"{config.refine_blocks} SPD blocks at {8 * w} ch, rates {list(config.refine_rates)}, "
        f"self-attention at 1/16, 1/8, 1/4 (reduction {config.attention_reduction}), "
        f"back projection at 1/4; no normalisation; {config.resolution} px"
        + ("; images in [0, 1], holes white" if config.encoding == "unit-white" else "")
        + ("; align_corners resampling" if config.resampling == "corners" else "")
    )


DEEPGIN = register_architecture(
    Architecture(
        name="deepgin",
        config_type=DeepGINConfig,
        module_type=DeepGIN,
        build=DeepGIN,
        recognise=lambda meta: False,  # every file of it carries the "architecture" key
        multiple=lambda config: config.multiple,
        resolution=lambda config: config.resolution,
        describe=_describe,
        strategy=lambda config: config.strategy,
        # bf16/fp16: autocast everywhere but the attention, which runs in fp32.
        precisions=("fp32", "bf16", "fp16"),
        activation_bytes=lambda config, pixels: pixels * config.base_width * 4 * 24,
    )
)
