"""onnxruntime (CPU) beside torch eager and compiled, on the graph `pconv export --onnx` writes.

    python benchmarks/bench_onnx.py [--models default,paper512] [--size 512] [--no-compile]

Each model is exported (:func:`pconv.export.export_onnx`) and the same computation
(:class:`pconv.export.FillGraph`: the network and the composite; a gated model's smooth fill is
outside the graph, so outside every variant here) is timed three ways on one 512x512 photo with
an 18 % hole, interleaved, median; the outputs are compared.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, too

from bench_core import ROOT, interleaved

from pconv import PConvUNet, UNetConfig
from pconv.export import FillGraph, export_onnx
from pconv.loader import load_model


def _model(name: str) -> torch.nn.Module:
    if name == "default":
        return load_model(ROOT / "zoo" / "weights" / "default.safetensors")
    if name == "paper512":
        torch.manual_seed(0)
        return PConvUNet(UNetConfig.paper512()).eval()
    raise SystemExit(f"unknown model {name!r} (default, paper512)")


def main() -> None:
    import onnxruntime as ort
    from skimage.data import astronaut

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="default,paper512")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    args = parser.parse_args()
    s = args.size
    photo = torch.from_numpy(astronaut()[:s, :s].copy()).permute(2, 0, 1)[None].float() / 255
    mask = torch.zeros(1, 1, s, s)
    mask[..., s // 4 : s * 5 // 8, s * 5 // 16 : s * 25 // 32] = 1
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, onnxruntime {ort.__version__}, CPU, {threads} threads")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    for name in args.models.split(","):
        graph = FillGraph(_model(name)).eval()
        with tempfile.TemporaryDirectory() as tmp:
            path = export_onnx(graph.model, Path(tmp) / f"{name}.onnx")
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {"image": photo.numpy(), "mask": mask.numpy()}
        fns = {"eager": lambda g=graph: g(photo, mask)}
        if args.compile:
            compiled = torch.compile(graph, fullgraph=True)
            fns["compiled"] = lambda c=compiled: c(photo, mask)
        fns["onnxruntime"] = lambda s=session, f=feed: s.run(None, f)
        with torch.no_grad():
            reference = graph(photo, mask)
            reference = reference if isinstance(reference, torch.Tensor) else reference[0]
            gap = float(np.abs(session.run(None, feed)[0] - reference.numpy()).max())
            t = interleaved(fns, args.repeats, torch.device("cpu"))
        base = t["eager"]
        line = ", ".join(f"{k} {v * 1e3:.0f} ms ({base / v:.2f}x eager)" for k, v in t.items())
        print(f"{name} at {s}x{s}: {line}; max |onnxruntime - torch| {gap:.1e}")


if __name__ == "__main__":
    main()
