"""The pack's custom link type and shared constants."""

from __future__ import annotations

from comfy_api.latest import io

CATEGORY = "inpaint/pconv"

#: A loaded PConv U-Net (a :class:`nodes.model.PConvModel` travels along the link).
PConvModelType = io.Custom("PCONV_MODEL")


def mask_inputs() -> list[io.Input]:
    """The mask options shared by PConv Inpaint and PConv Mask Preview."""
    return [
        io.Float.Input(
            "threshold",
            default=0.5,
            min=0.01,
            max=1.0,
            step=0.01,
            optional=True,
            tooltip="Soft masks are binarised: a pixel is filled where mask >= threshold.",
        ),
        io.Int.Input(
            "grow",
            default=0,
            min=0,
            max=256,
            optional=True,
            tooltip="Grow the mask by this many pixels before filling (covers halos and "
            "edges around an object).",
        ),
        io.Int.Input(
            "feather",
            default=0,
            min=0,
            max=256,
            optional=True,
            tooltip="Blend the outer pixels of the grown band into the original for a soft "
            "seam; at most 'grow' (the mask itself is always fully replaced).",
        ),
    ]
