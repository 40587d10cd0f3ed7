"""PConv Inpaint: fill the masked region of IMAGE with a PConv model."""

from __future__ import annotations

import logging

import comfy.utils
import torch
from comfy import model_management
from comfy_api.latest import io

import pconv
from pconv.holes import composite, nothing_to_fill, refuse_full

from . import core
from .common import CATEGORY, PConvModelType, mask_inputs
from .model import PConvModel

log = logging.getLogger("pconv.comfyui")


class PConvInpaint(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="PConvInpaint",
            display_name="PConv Inpaint",
            category=CATEGORY,
            description=(
                "Fills the masked region (mask = 1: the region to change) with a partial-"
                "convolution model. Any image size; pixels outside the (grown) mask are returned "
                "unchanged."
            ),
            inputs=[
                PConvModelType.Input("model", display_name="PCONV_MODEL"),
                io.Image.Input("image"),
                io.Mask.Input(
                    "mask",
                    tooltip="1 = region to fill (ComfyUI's convention). One mask for the batch or "
                    "one per image; another size than the image is stretched to fit.",
                ),
                *mask_inputs(),
            ],
            outputs=[
                io.Image.Output("result", display_name="IMAGE"),
                io.Mask.Output(
                    "changed",
                    display_name="changed",
                    tooltip="How much of each pixel was replaced: 1 filled, 0 untouched, "
                    "in between on the feathered seam.",
                ),
            ],
        )

    @classmethod
    def execute(
        cls,
        model: PConvModel,
        image: torch.Tensor,
        mask: torch.Tensor,
        threshold: float = core.DEFAULT_THRESHOLD,
        grow: int = 0,
        feather: int = 0,
    ) -> io.NodeOutput:
        plan, holes, alpha, stretched = core.prepare(image, mask, threshold, grow, feather)
        if stretched:
            log.warning(
                "PConv Inpaint: mask is %dx%d, image is %dx%d; the mask was stretched to fit",
                mask.shape[-1],
                mask.shape[-2],
                image.shape[2],
                image.shape[1],
            )
        device = model_management.get_torch_device()
        amp = model.autocast_dtype(device)
        progress = comfy.utils.ProgressBar(len(plan))
        results, changed = [], []
        placed = False
        try:
            for n, (i, m) in enumerate(plan):
                model_management.throw_exception_if_processing_interrupted()
                original = image[i].to("cpu")
                hole = holes[m]
                if nothing_to_fill(hole):  # pconv.holes' policy, as everywhere
                    results.append(original)
                else:
                    refuse_full(hole, f"mask {m} (for image {n})")
                    if not placed:
                        model.to_device(device)
                        placed = True
                    filled = pconv.inpaint(
                        core.to_model_layout(original), hole, model.model, device=device, dtype=amp
                    )
                    filled = core.from_model_layout(filled, original)
                    results.append(composite(original, filled, alpha[m][..., None]))
                changed.append(alpha[m])
                progress.update(1)
        finally:
            if placed:
                model.offload()
        return io.NodeOutput(torch.stack(results), torch.stack(changed))
