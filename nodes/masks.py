"""PConv Mask Preview: see exactly which pixels PConv Inpaint will change, before it runs."""

from __future__ import annotations

import torch
from comfy_api.latest import io, ui

from . import core
from .common import CATEGORY, mask_inputs

COLOURS = {
    "red": (1.0, 0.0, 0.0),
    "green": (0.0, 1.0, 0.0),
    "blue": (0.0, 0.3, 1.0),
    "magenta": (1.0, 0.0, 1.0),
}


class PConvMaskPreview(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="PConvMaskPreview",
            display_name="PConv Mask Preview",
            category=CATEGORY,
            description=(
                "Shows the mask as PConv Inpaint will use it (threshold, stretch to the image "
                "size, grow, feather) over the image."
            ),
            inputs=[
                io.Image.Input("image"),
                io.Mask.Input("mask", tooltip="1 = region to fill."),
                *mask_inputs(),
                io.Combo.Input("colour", options=list(COLOURS), default="red", optional=True),
            ],
            outputs=[
                io.Image.Output("preview", display_name="preview"),
                io.Mask.Output(
                    "changed",
                    display_name="changed",
                    tooltip="1 where PConv Inpaint replaces the pixel, in between on the "
                    "feathered seam, 0 where it leaves it alone.",
                ),
            ],
            is_output_node=True,
        )

    @classmethod
    def execute(
        cls,
        image: torch.Tensor,
        mask: torch.Tensor,
        threshold: float = core.DEFAULT_THRESHOLD,
        grow: int = 0,
        feather: int = 0,
        colour: str = "red",
    ) -> io.NodeOutput:
        plan, _holes, alpha, _stretched = core.prepare(image, mask, threshold, grow, feather)
        tint = COLOURS.get(colour, COLOURS["red"])
        previews = torch.stack([core.overlay(image[i].cpu(), alpha[m], tint) for i, m in plan])
        changed = torch.stack([alpha[m] for _i, m in plan])
        return io.NodeOutput(previews, changed, ui=ui.PreviewImage(previews, cls=cls))
