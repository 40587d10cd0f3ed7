"""Speed of the partial convolution and the U-Net, as ratios measured side by side in one run.

    python benchmarks/bench_core.py [--device cpu|cuda] [--quick]

1. PartialConv2d forward+backward vs nn.Conv2d of the same shape (target <= 1.25x).
2. PartialConv2d vs the straightforward formulation with a full C_out x C_in ones-kernel mask
   convolution (what the reference implementation does), forward only (target >= 1.8x faster),
   with the outputs compared.
3. PConvUNet (512 variant) inference at 512x512 vs the same network with plain convolutions
   (target <= 1.3x), with images/second and peak memory.
4. The smooth prior's thin-plate fill (pconv.smooth) on a 512x512 photo with a 27 % hole, beside
   the shipped default's network in that fill (target <= 0.5x), the whole-image solver it
   replaced and scikit-image's direct biharmonic solve; errors against the photo.

Runs are interleaved (A, B, A, B, ...) and the median is reported, so drift hits both alike.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from pconv import PartialConv2d, PConvUNet, UNetConfig

ROOT = Path(__file__).resolve().parents[1]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def interleaved(
    fns: dict[str, Callable[[], object]], repeats: int, device: torch.device
) -> dict[str, float]:
    """Median seconds per call of each function, measured in alternation after a warm-up."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def reference_style_partial_conv(conv: PartialConv2d, x: Tensor, mask: Tensor) -> Tensor:
    """The same semantics computed the reference way: a full C_out x C_in ones-kernel
    convolution over a channel-wide mask to get sum(M) for every output channel."""
    mask_c = mask.expand_as(x).contiguous()
    ones = torch.ones(conv.out_channels, conv.in_channels, *conv.kernel_size, device=x.device)
    with torch.no_grad():
        msum = F.conv2d(mask_c, ones, None, conv.stride, conv.padding, conv.dilation)
    raw = F.conv2d(x * mask_c, conv.weight, None, conv.stride, conv.padding, conv.dilation)
    window = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
    ratio = window / msum.clamp(min=1) * (msum > 0)
    return raw * ratio + conv.bias.view(1, -1, 1, 1) * (msum > 0)


def bench_layer(device: torch.device, repeats: int) -> None:
    torch.manual_seed(0)
    b, c, s = 4, 256, 64
    pconv = PartialConv2d(c, c, 3, padding=1).to(device)
    conv = torch.nn.Conv2d(c, c, 3, padding=1).to(device)
    x = torch.randn(b, c, s, s, device=device, requires_grad=True)
    mask = torch.ones(b, 1, s, s, device=device)
    mask[:, :, 16:48, 8:40] = 0  # a hole a quarter of the image

    def conv_step() -> None:
        conv(x).sum().backward()

    def pconv_step() -> None:
        pconv(x, mask)[0].sum().backward()

    t = interleaved({"conv": conv_step, "pconv": pconv_step}, repeats, device)
    ratio = t["pconv"] / t["conv"]
    print(
        f"1. layer fwd+bwd  {b}x{c}x{s}x{s} 3x3, hole mask: nn.Conv2d {t['conv'] * 1e3:.1f} ms, "
        f"PartialConv2d {t['pconv'] * 1e3:.1f} ms -> {ratio:.2f}x  (target <= 1.25x)"
    )

    x = x.detach()
    with torch.no_grad():
        ours = pconv(x, mask)[0]
        ref = reference_style_partial_conv(pconv, x, mask)
        diff = (ours - ref).abs().max().item()
        t = interleaved(
            {
                "ref": lambda: reference_style_partial_conv(pconv, x, mask),
                "ours": lambda: pconv(x, mask),
            },
            repeats,
            device,
        )
    speed = t["ref"] / t["ours"]
    print(
        f"2. layer forward vs full ones-kernel mask conv: reference {t['ref'] * 1e3:.1f} ms, "
        f"ours {t['ours'] * 1e3:.1f} ms -> {speed:.2f}x faster  (target >= 1.8x), "
        f"max |diff| {diff:.2e}"
    )
    ones = torch.ones_like(mask)
    with torch.no_grad():
        t = interleaved({"conv": lambda: conv(x), "ours": lambda: pconv(x, ones)}, repeats, device)
    print(f"   all-ones mask forward: {t['ours'] / t['conv']:.2f}x nn.Conv2d")


def plain_unet_forward(model: PConvUNet, image: Tensor) -> Tensor:
    """The identical U-Net with ordinary zero-padded convolutions and no masks, written as
    frugally as PConvUNet (in-place activations, each skip released once used), so that the
    memory ratio measures the masks' bookkeeping, not the way the loop is written."""
    x = (image - model.mean) / model.std
    skips = [x]
    for enc in model.encoders:
        c = enc.conv
        x = F.relu(enc.bn(F.conv2d(x, c.weight, c.bias, c.stride, c.padding)), inplace=True)
        skips.append(x)
    skips.pop()
    for i in reversed(range(model.config.depth)):
        dec = model.decoders[i]
        x = torch.cat([F.interpolate(x, scale_factor=2.0, mode="nearest"), skips.pop()], dim=1)
        x = dec.bn(F.conv2d(x, dec.conv.weight, dec.conv.bias, 1, 1))
        if dec.slope is not None:
            x = F.leaky_relu(x, dec.slope, inplace=True)
    return x * model.std + model.mean


def _status_bytes(field: str) -> int:
    """A memory figure of this process from /proc/self/status (Linux), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _rss_reset_peak() -> int:
    """Reset the peak-RSS mark (writing 5 to clear_refs) and return the current RSS: model
    creation's own peak must not hide the inference's."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_bytes("VmRSS")


def _peak_memory_child(variant: str, device: str) -> None:
    """Run in a subprocess: prints the peak memory of one inference beyond the loaded model."""
    dev = torch.device(device)
    model = PConvUNet(UNetConfig.paper512()).to(dev).eval()
    image = torch.rand(1, 3, 512, 512, device=dev)
    valid = torch.ones(1, 1, 512, 512, device=dev)
    valid[..., 128:320, 160:400] = 0
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _rss_reset_peak()
    with torch.no_grad():
        model(image, valid) if variant == "pconv" else plain_unet_forward(model, image)
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = _status_bytes("VmHWM") - base
    print(json.dumps({"peak": peak}))


def _peak_memory(variant: str, device: torch.device) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", variant, "--device", str(device)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["peak"] / 2**20


def bench_unet(device: torch.device, repeats: int) -> None:
    torch.manual_seed(0)
    model = PConvUNet(UNetConfig.paper512()).to(device).eval()
    image = torch.rand(1, 3, 512, 512, device=device)
    valid = torch.ones(1, 1, 512, 512, device=device)
    valid[..., 128:320, 160:400] = 0  # an 18% hole
    with torch.no_grad():
        t = interleaved(
            {
                "plain": lambda: plain_unet_forward(model, image),
                "pconv": lambda: model(image, valid),
            },
            repeats,
            device,
        )
    mem_plain, mem_pconv = _peak_memory("plain", device), _peak_memory("pconv", device)
    print(
        f"3. PConvUNet-512 inference 1x512x512: plain-conv U-Net {t['plain'] * 1e3:.0f} ms "
        f"({1 / t['plain']:.2f} img/s), PConvUNet {t['pconv'] * 1e3:.0f} ms "
        f"({1 / t['pconv']:.2f} img/s) -> {t['pconv'] / t['plain']:.2f}x  (target <= 1.3x)"
    )
    print(
        f"   peak memory of one inference: plain {mem_plain:.0f} MiB, PConvUNet "
        f"{mem_pconv:.0f} MiB -> {mem_pconv / max(mem_plain, 1e-9):.2f}x"
    )


def bench_smooth(device: torch.device, repeats: int) -> None:
    from unittest import mock

    import numpy as np
    from skimage.data import astronaut
    from skimage.restoration import inpaint_biharmonic

    import pconv.smooth
    from pconv.loader import load_model
    from pconv.masks import sample_mask
    from pconv.smooth import smooth_fill

    image = astronaut().astype(np.float32) / 255  # 512x512
    hole = sample_mask("irregular", 512, 0, bucket=2)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].to(device)
    valid = torch.from_numpy(~hole)[None, None].float().to(device)
    # The shipped default in a 512x512 fill: pconv.inpaint runs its network at its training
    # scale (256) and the smooth fill on the full-size image.
    model = load_model(ROOT / "zoo" / "weights" / "default.safetensors", device=device)
    small = F.interpolate(x, size=(256, 256), mode="area")
    small_valid = (F.interpolate(valid, size=(256, 256), mode="area") > 0.999).float()

    def whole_image() -> Tensor:
        """The solver before this version: CG on whole images, 16 full-size iterations."""
        with mock.patch.object(pconv.smooth, "_solve", pconv.smooth._solve_dense):
            return smooth_fill(x, valid, iterations=16)

    def network() -> object:
        with torch.no_grad():
            return model.predict(small, small_valid)

    t = interleaved(
        {
            "ours": lambda: smooth_fill(x, valid),
            "whole": whole_image,
            "network": network,
            "skimage": lambda: inpaint_biharmonic(image, hole, channel_axis=-1),
        },
        repeats,
        device,
    )
    exact = inpaint_biharmonic(image, hole, channel_axis=-1)

    def error(fill: Tensor) -> float:
        ours = fill[0].permute(1, 2, 0).cpu().numpy()
        return float(np.sqrt(np.mean((ours - image)[hole] ** 2))) * 255

    err_ours, err_whole = error(smooth_fill(x, valid)), error(whole_image())
    err_exact = float(np.sqrt(np.mean((exact - image)[hole] ** 2))) * 255
    print(
        f"4. thin-plate fill 1x3x512x512, {hole.mean():.0%} hole: pconv.smooth "
        f"{t['ours'] * 1e3:.0f} ms = {t['ours'] / t['network']:.2f}x the shipped default's "
        f"network in that fill ({t['network'] * 1e3:.0f} ms at 256; target <= 0.5x); "
        f"{t['whole'] / t['ours']:.1f}x faster than the whole-image solve "
        f"({t['whole'] * 1e3:.0f} ms), {t['skimage'] / t['ours']:.1f}x faster than "
        f"scikit-image's inpaint_biharmonic ({t['skimage'] * 1e3:.0f} ms)"
    )
    print(
        f"   error vs the photo (8-bit levels, RMS over the hole): ours {err_ours:.2f}, "
        f"whole-image solve {err_whole:.2f}, exact solve {err_exact:.2f} "
        f"(ours - exact {err_ours - err_exact:+.2f}; target <= +0.1)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        _peak_memory_child(args.memory_child, args.device)
        return
    device = torch.device(args.device)
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else (f"CPU, {torch.get_num_threads()} threads")
    )
    print(f"torch {torch.__version__}, {name}")
    bench_layer(device, 5 if args.quick else 15)
    bench_unet(device, 3 if args.quick else 7)
    bench_smooth(device, 3 if args.quick else 7)


if __name__ == "__main__":
    main()
