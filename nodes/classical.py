"""PConv Fill (classical): fill the mask without a model (biharmonic, Telea, Navier-Stokes)."""

from __future__ import annotations

import comfy.utils
import torch
from comfy import model_management
from comfy_api.latest import io

from pconv.holes import composite, nothing_to_fill, refuse_full

from . import core
from .common import CATEGORY, mask_inputs
from .fill import METHODS, fill


class PConvFill(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="PConvFill",
            display_name="PConv Fill (classical)",
            category=CATEGORY,
            description=(
                "Fills the masked region without a model: a quick pre-fill for diffusion "
                "inpainting. biharmonic is a smooth thin-plate fill; telea and navier-stokes are "
                "OpenCV's (they need an OpenCV wheel in ComfyUI's environment)."
            ),
            inputs=[
                io.Image.Input("image"),
                io.Mask.Input("mask", tooltip="1 = region to fill."),
                io.Combo.Input("method", options=list(METHODS), default="biharmonic"),
                *mask_inputs(),
            ],
            outputs=[
                io.Image.Output("result", display_name="IMAGE"),
                io.Mask.Output("changed", display_name="changed"),
            ],
        )

    @classmethod
    def execute(
        cls,
        image: torch.Tensor,
        mask: torch.Tensor,
        method: str = "biharmonic",
        threshold: float = core.DEFAULT_THRESHOLD,
        grow: int = 0,
        feather: int = 0,
    ) -> io.NodeOutput:
        plan, holes, alpha, _stretched = core.prepare(image, mask, threshold, grow, feather)
        progress = comfy.utils.ProgressBar(len(plan))
        results, changed = [], []
        for n, (i, m) in enumerate(plan):
            model_management.throw_exception_if_processing_interrupted()
            original = image[i].to("cpu")
            hole = holes[m]
            if nothing_to_fill(hole):
                results.append(original)
            else:
                refuse_full(hole, f"mask {m} (for image {n})")
                filled = fill(core.to_model_layout(original), hole, method)
                filled = core.from_model_layout(filled, original)
                results.append(composite(original, filled, alpha[m][..., None]))
            changed.append(alpha[m])
            progress.update(1)
        return io.NodeOutput(torch.stack(results), torch.stack(changed))
