"""Load PConv Model: a zoo name or a file from ``models/inpaint``."""

from __future__ import annotations

from comfy_api.latest import io

from . import model as models
from .common import CATEGORY, PConvModelType


class PConvModelLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="PConvModelLoader",
            display_name="Load PConv Model",
            category=CATEGORY,
            description=(
                "Loads a partial-convolution inpainting model: a zoo name (downloaded once into "
                "the Hugging Face cache) or a pconv .safetensors file from models/inpaint (other "
                "packs' models there are not listed)."
            ),
            inputs=[
                io.Combo.Input(
                    "model_name",
                    options=models.choices(),
                    tooltip=f"Zoo model ({', '.join(models.zoo_names())}) or a pconv "
                    ".safetensors file in models/inpaint.",
                ),
                io.Combo.Input(
                    "precision",
                    options=list(models.PRECISIONS),
                    default="auto",
                    optional=True,
                    tooltip="auto: what ComfyUI picks for this device (fp32 on the CPU). "
                    "Weights stay fp32; bf16/fp16 run under autocast.",
                ),
            ],
            outputs=[PConvModelType.Output("model", display_name="PCONV_MODEL")],
        )

    @classmethod
    def execute(cls, model_name: str, precision: str = "auto") -> io.NodeOutput:
        return io.NodeOutput(models.load(model_name, precision))
