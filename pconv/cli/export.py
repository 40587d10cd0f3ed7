"""``pconv export``: a model as a file for other runtimes.

    pconv export default --onnx pconv-default.onnx

The ONNX graph (:mod:`pconv.export`) takes ``image`` ``[B,3,H,W]`` in [0, 1] and ``mask``
``[B,1,H,W]`` (1 = fill), H and W any multiples of the model's input multiple, and returns
``filled``. A gated model's graph also returns ``prediction`` and ``gate``, to blend with a
thin-plate fill outside the graph (:mod:`pconv.export` says how).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pconv.architectures import input_multiple, is_gated
from pconv.errors import InputError
from pconv.export import MAX_BLOCKS, export_onnx
from pconv.loader import load_model


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="write a model as an ONNX file (onnxruntime, C++, mobile, browsers)",
        description=(
            "Write MODEL as one ONNX graph: inputs 'image' [B,3,H,W] float in [0,1] and 'mask' "
            "[B,1,H,W] (1 = fill), output 'filled' [B,3,H,W] (known pixels unchanged). H and W "
            "may be any multiples of the model's input multiple (printed); pad other sizes by "
            "reflection. A gated model's smooth fill is not in the graph: it also outputs "
            "'prediction' and 'gate', and the runtime computes where(mask, gate * prediction + "
            "(1 - gate) * smooth, image) with a thin-plate (biharmonic) fill. pconv inpaint's "
            "crops and working scale are not in it either: the graph runs the network at the "
            "size it is given. "
            "Needs the onnx and onnxscript packages."
        ),
    )
    p.add_argument(
        "model",
        help="zoo name (`python -m zoo list`), Hub repo id, folder or .safetensors file",
    )
    p.add_argument("--onnx", type=Path, required=True, metavar="OUT.onnx", help="file to write")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.onnx.suffix.lower() != ".onnx":
        raise InputError(f"{args.onnx}: the output file must end in .onnx")
    if args.onnx.is_dir():
        raise InputError(f"{args.onnx}: is a folder, not a file name")
    model = load_model(args.model)
    path = export_onnx(model, args.onnx)
    multiple = input_multiple(model)
    prior = (
        "; outputs filled, prediction and gate: blend with a thin-plate fill (pconv.export)"
        if is_gated(model)
        else ""
    )
    print(f"wrote {path}: H and W multiples of {multiple} up to {multiple * MAX_BLOCKS}{prior}")
    return 0
