"""One script for a GPU machine's few minutes (and the same figures on a CPU), as ratios.

    python benchmarks/bench_gpu.py [--device cuda|cpu] [--quick] [--no-compile]

1. The paper's 512 U-Net at 512x512: latency and images/s for fp32, bf16 and fp16 (autocast),
   eager and ``torch.compile(fullgraph=True)``, batch 1 and 16, with the peak memory of each;
   every figure is also given against eager fp32 at the same batch.
2. Training images/s of the paper's 256 preset (forward, l1 loss, backward, Adam) against the
   same network written the reference way (a C_out x C_in ones-kernel mask convolution per
   layer over channel-wide masks, as NVIDIA's implementation does).

On a CPU it skips what a CPU cannot do (fp16 autocast); ``--quick`` runs batch 1 and 4 with
fewer repeats. Runs are interleaved (A, B, A, B, ...) and the median reported, so drift hits
every variant alike (``bench_core.interleaved``).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, too

from bench_core import interleaved

from pconv import PConvUNet, UNetConfig
from pconv.layer import PartialConv2d

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def _inputs(batch: int, size: int, device: torch.device) -> tuple[Tensor, Tensor]:
    torch.manual_seed(0)
    image = torch.rand(batch, 3, size, size, device=device)
    valid = torch.ones(batch, 1, size, size, device=device)
    valid[..., size // 4 : size * 5 // 8, size * 5 // 16 : size * 25 // 32] = 0  # an 18% hole
    return image, valid


def _runs_in(dtype: str, device: torch.device) -> bool:
    if device.type == "cpu":
        return dtype != "fp16"  # CPU autocast has no fast fp16 convolutions
    return dtype != "bf16" or torch.cuda.is_bf16_supported()


def _autocast(dtype: str, device: torch.device) -> contextlib.AbstractContextManager:
    if DTYPES[dtype] is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[dtype])


def _peak(fn: Callable[[], object], device: torch.device) -> float | None:
    """Peak memory of one call beyond what was allocated before, MiB (CUDA only)."""
    if device.type != "cuda":
        return None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def bench_inference(args: argparse.Namespace, device: torch.device) -> None:
    model = PConvUNet(UNetConfig.paper512()).to(device).eval()
    compiled = torch.compile(model, fullgraph=True) if args.compile else None
    batches = (1, 4) if args.quick else (1, 16)
    repeats = 3 if args.quick else 10
    print(f"1. PConvUNet paper 512 inference at 512x512 ({'quick' if args.quick else 'full'})")
    for batch in batches:
        image, valid = _inputs(batch, 512, device)
        fns: dict[str, Callable[[], object]] = {}
        for dtype in DTYPES:
            if not _runs_in(dtype, device):
                continue
            for mode, net in (("eager", model), ("compiled", compiled)):
                if net is None:
                    continue

                def run(net=net, dtype=dtype, image=image, valid=valid) -> Tensor:
                    with torch.no_grad(), _autocast(dtype, device):
                        return net(image, valid)

                fns[f"{dtype} {mode}"] = run
        start = time.perf_counter()
        for fn in fns.values():  # compiles (and warms) every variant before timing any
            fn()
        warm = time.perf_counter() - start
        times = interleaved(fns, repeats, device)
        base = times["fp32 eager"]
        print(f"   batch {batch} (compiling and warming all variants took {warm:.0f} s):")
        for name, t in times.items():
            peak = _peak(fns[name], device)
            memory = "" if peak is None else f", peak {peak:.0f} MiB"
            print(
                f"     {name:<14} {t * 1e3:8.1f} ms  {batch / t:7.2f} img/s  "
                f"{base / t:5.2f}x eager fp32{memory}"
            )


def reference_forward(model: PConvUNet, image: Tensor, valid: Tensor) -> Tensor:
    """``model``'s network computed the reference way: per layer, the mask is as wide as the
    features and its window sums come from a C_out x C_in ones-kernel convolution."""

    def pconv(conv: PartialConv2d, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        ones = torch.ones_like(conv.weight)
        with torch.no_grad():
            msum = F.conv2d(mask, ones, None, conv.stride, conv.padding)
        raw = F.conv2d(x * mask, conv.weight, None, conv.stride, conv.padding)
        ratio = conv.window_size / msum.clamp(min=1) * (msum > 0)
        out = raw * ratio
        if conv.bias is not None:
            out = out + conv.bias.view(1, -1, 1, 1) * (msum > 0)
        return out, (msum > 0).to(x.dtype)

    x = (image - model.mean) / model.std
    mask = valid.expand_as(x)
    skips = [(x, mask)]
    for enc in model.encoders:
        y, mask = pconv(enc.conv, x, mask)
        x = F.relu(enc.bn(y))
        skips.append((x, mask))
    skips.pop()
    for i in reversed(range(model.config.depth)):
        dec = model.decoders[i]
        skip, skip_mask = skips.pop()
        x = torch.cat([F.interpolate(x, scale_factor=2.0), skip], dim=1)
        mask = torch.cat([F.interpolate(mask, scale_factor=2.0), skip_mask], dim=1)
        y, mask = pconv(dec.conv, x, mask)
        x = y if dec.slope is None else F.leaky_relu(dec.bn(y), dec.slope)
    return x[:, :3] * model.std + model.mean


def bench_training(args: argparse.Namespace, device: torch.device) -> None:
    batch = 2 if args.quick else 8
    repeats = 3 if args.quick else 10
    image, valid = _inputs(batch, 256, device)
    target = torch.rand_like(image)
    steps = {}
    for name, forward in (
        ("ours", lambda m: m(image, valid)),
        ("reference-style", lambda m: reference_forward(m, image, valid)),
    ):
        torch.manual_seed(0)
        model = PConvUNet(UNetConfig.paper256()).to(device).train()
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)

        def step(model=model, optimiser=optimiser, forward=forward) -> None:
            optimiser.zero_grad(set_to_none=True)
            F.l1_loss(forward(model), target).backward()
            optimiser.step()

        steps[name] = step
    times = interleaved(steps, repeats, device)
    ours, ref = times["ours"], times["reference-style"]
    peaks = {name: _peak(fn, device) for name, fn in steps.items()}
    memory = (
        ""
        if peaks["ours"] is None
        else f"; peak {peaks['ours']:.0f} vs {peaks['reference-style']:.0f} MiB"
    )
    print(
        f"2. training step, paper 256 preset, batch {batch} at 256x256, fp32: ours "
        f"{batch / ours:.2f} img/s, reference-style {batch / ref:.2f} img/s -> "
        f"{ref / ours:.2f}x faster{memory}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="batch 1 and 4, fewer repeats")
    parser.add_argument(
        "--no-compile", dest="compile", action="store_false", help="eager mode only"
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        torch.backends.cudnn.benchmark = True
    else:
        name = f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {name}")
    bench_inference(args, device)
    bench_training(args, device)


if __name__ == "__main__":
    main()
