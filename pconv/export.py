"""A model as one ONNX graph, for runtimes without Python (onnxruntime in C++, mobile, browsers).

What the file computes is what a user means by "fill this": inputs ``image [B,3,H,W]`` in
``[0, 1]`` and ``mask [B,1,H,W]`` with **1 = fill** (as everywhere a user touches a mask),
output ``filled [B,3,H,W]``: the model's prediction in the holes, the input bit for bit
elsewhere.

A gated model's smooth prior is *not* in the graph: the thin-plate fill is an iterative solve
whose work depends on the image (coarse-to-fine levels by size, a sparse system over the hole
pixels), and unrolled into a graph it makes thousands of nodes that take longer to export than
is reasonable. Such a graph has two more outputs, ``prediction [B,3,H,W]`` and ``gate
[B,1,H,W]``, and ``filled`` is the prediction alone; the runtime computes the blend::

    filled = where(mask, gate * prediction + (1 - gate) * smooth, image)

with ``smooth`` the image's thin-plate (biharmonic) fill of the same holes:
:func:`pconv.smooth.smooth_fill` is the reference, and any biharmonic inpainting with mirrored
edges (scikit-image's ``inpaint_biharmonic`` is close) will do.

Height and width are dynamic, in multiples of the model's input multiple (pad other sizes by
reflection, as :func:`pconv.inpaint` does). What the graph does not do is :func:`pconv.inpaint`'s
work around the network: crops around the holes, the working scale (the training resolution),
padding. It is the network at the size it is given.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from pconv.architectures import input_multiple, is_gated, unwrap
from pconv.errors import PConvError
from pconv.files import atomic_path
from pconv.holes import composite

#: Largest side the exported graph accepts, in input multiples (a bound torch.export needs).
MAX_BLOCKS = 64


class FillGraph(nn.Module):
    """``(image, mask: 1 = fill) -> filled`` (and ``prediction, gate`` for a gated model):
    the computation an ONNX export holds."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = unwrap(model)
        self.gated = is_gated(self.model)

    def forward(self, image: Tensor, mask: Tensor) -> Tensor | tuple[Tensor, Tensor, Tensor]:
        hole = mask > 0.5
        pred, gate = self.model.predict(image, (~hole).to(image.dtype))
        pred = pred.clamp(0, 1).to(image.dtype)
        filled = composite(image, pred, hole)
        return filled if gate is None else (filled, pred, gate)


def export_onnx(model: nn.Module, path: str | os.PathLike[str]) -> Path:
    """Write ``model`` as an ONNX file at ``path`` (atomically) and return the path.

    Needs the ``onnx`` and ``onnxscript`` packages (torch's exporter is built on them).
    """
    for package in ("onnx", "onnxscript"):
        try:
            __import__(package)
        except ImportError:
            raise PConvError(
                f"ONNX export needs the {package} package (pip install onnx onnxscript)"
            ) from None
    graph = FillGraph(model).eval().float().cpu()
    multiple = input_multiple(graph.model)
    # Example sizes other than 1 and each other, so that no dimension is specialised.
    image = torch.rand(2, 3, 2 * multiple, 3 * multiple)
    mask = torch.zeros(2, 1, 2 * multiple, 3 * multiple)
    mask[..., multiple // 2 : multiple, multiple : 2 * multiple] = 1
    batch = torch.export.Dim("batch", min=1, max=1024)
    rows = torch.export.Dim("height_blocks", min=1, max=MAX_BLOCKS)
    cols = torch.export.Dim("width_blocks", min=1, max=MAX_BLOCKS)
    shape = {0: batch, 2: multiple * rows, 3: multiple * cols}
    path = Path(path)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's own progress notes
        program = torch.onnx.export(
            graph,
            (image, mask),
            dynamo=True,
            dynamic_shapes={"image": shape, "mask": shape},
            input_names=["image", "mask"],
            output_names=["filled", "prediction", "gate"] if graph.gated else ["filled"],
            verbose=False,
        )
        program.save(str(tmp))
    return path
