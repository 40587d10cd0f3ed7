"""Upstream-layout checkpoints, reference forward passes and a local Hub, for tests/test_zoo.py.

The references are written here from each upstream's code (its layer formula, normalisation and
concatenation order), independently of ``zoo.convert``: they work on the upstream's own key names
and tensor layouts (NHWC and HWIO kernels for Keras).
"""

from __future__ import annotations

import hashlib
import re
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
COMMIT = "0123456789abcdef0123456789abcdef01234567"

# -- upstream architectures (widths as in their code; depth reducible, as their code allows) -----


def upstream_widths(depth: int, base: int = 64) -> list[int]:
    """enc1..enc{depth} widths: 64, 128, 256, 512, 512, ... (their code hard-codes these)."""
    return [min(base * 2**i, base * 8) for i in range(depth)]


def _kernels(depth: int) -> list[int]:
    return [7, 5, 5, *([3] * (depth - 3))]


def _random_bn(gen: torch.Generator, c: int) -> dict[str, Tensor]:
    return {
        "weight": torch.rand(c, generator=gen) + 0.5,
        "bias": torch.randn(c, generator=gen) * 0.1,
        "running_mean": torch.randn(c, generator=gen) * 0.1,
        "running_var": torch.rand(c, generator=gen) + 0.5,
        "num_batches_tracked": torch.tensor(1000),
    }


def _layer_shapes(
    depth: int, base: int
) -> tuple[list[tuple[int, int, int]], list[tuple[int, int]]]:
    """[(c_in, c_out, k)] of enc1..; [(c_in, c_out)] of dec1.. (dec{i} = [up, skip] -> skip)."""
    widths = upstream_widths(depth, base)
    enc, c = [], 3
    for w, k in zip(widths, _kernels(depth), strict=True):
        enc.append((c, w, k))
        c = w
    skips = [3, *widths[:-1]]
    dec = []
    for i in range(depth):
        c_up = widths[-1] if i == depth - 1 else skips[i + 1]
        dec.append((c_up + skips[i], skips[i]))
    return enc, dec


def mmagic_checkpoint(depth: int = 4, base: int = 64, seed: int = 0, zeros: bool = False) -> dict:
    """An mmcv checkpoint as OpenMMLab publishes it: meta + state_dict, generator.* keys, the
    multi-channel ``weight_mask_updater`` buffers, and a perceptual-loss VGG that is not ours."""
    gen = torch.Generator().manual_seed(seed)
    make = (lambda *s: torch.zeros(*s)) if zeros else (lambda *s: torch.randn(*s, generator=gen))
    enc, dec = _layer_shapes(depth, base)
    sd: dict[str, Tensor] = {}
    for i, (c_in, c_out, k) in enumerate(enc, start=1):
        p = f"generator.encoder.enc{i}."
        sd[p + "conv.weight"] = make(c_out, c_in, k, k) * (2 / (c_in * k * k)) ** 0.5
        if i == 1:
            sd[p + "conv.bias"] = make(c_out) * 0.1
        sd[p + "conv.weight_mask_updater"] = torch.ones(c_out, c_in, k, k)
        if i > 1:
            sd.update({p + "bn." + n: t for n, t in _random_bn(gen, c_out).items()})
    for i, (c_in, c_out) in enumerate(dec, start=1):
        p = f"generator.decoder.dec{i}."
        sd[p + "conv.weight"] = make(c_out, c_in, 3, 3) * (2 / (c_in * 9)) ** 0.5
        if i == 1:
            sd[p + "conv.bias"] = make(c_out) * 0.1
        sd[p + "conv.weight_mask_updater"] = torch.ones(c_out, c_in, 3, 3)
        if i > 1:
            sd.update({p + "bn." + n: t for n, t in _random_bn(gen, c_out).items()})
    sd["loss_composed_percep.vgg.vgg_layers.0.weight"] = torch.randn(64, 3, 3, 3, generator=gen)
    sd["loss_composed_percep.vgg.vgg_layers.0.bias"] = torch.zeros(64)
    meta = {
        "mmedit_version": "0.1.0",
        "iter": 500000,
        "epoch": 1,
        "time": "Fri Jun 19 2020",
        "config": "model = dict(type='PConvInpaintor', ...)",
    }
    return {"meta": meta, "state_dict": sd}


def naoto_checkpoint(depth: int = 4, seed: int = 1, zeros: bool = False) -> dict:
    """``util/io.save_ckpt``'s dict: n_iter, model (PConvUNet(layer_size=depth)), optimizer."""
    gen = torch.Generator().manual_seed(seed)
    make = (lambda *s: torch.zeros(*s)) if zeros else (lambda *s: torch.randn(*s, generator=gen))
    enc, dec = _layer_shapes(depth, 64)
    sd: dict[str, Tensor] = {}
    for i, (c_in, c_out, k) in enumerate(enc, start=1):
        p = f"enc_{i}."
        # naoto's kernels feed a plain division by sum(M): typical magnitudes are C_in*k*k larger
        sd[p + "conv.input_conv.weight"] = make(c_out, c_in, k, k) * (2 * c_in * k * k) ** 0.5
        sd[p + "conv.mask_conv.weight"] = torch.ones(c_out, c_in, k, k)
        if i > 1:
            sd.update({p + "bn." + n: t for n, t in _random_bn(gen, c_out).items()})
    for i, (c_in, c_out) in enumerate(dec, start=1):
        p = f"dec_{i}."
        sd[p + "conv.input_conv.weight"] = make(c_out, c_in, 3, 3) * (2 * c_in * 9) ** 0.5
        if i == 1:
            sd[p + "conv.input_conv.bias"] = make(c_out) * 0.1
        sd[p + "conv.mask_conv.weight"] = torch.ones(c_out, c_in, 3, 3)
        if i > 1:
            sd.update({p + "bn." + n: t for n, t in _random_bn(gen, c_out).items()})
    optimizer = {
        "state": {0: {"step": torch.tensor(1.0), "exp_avg": torch.zeros(3)}},
        "param_groups": [{"lr": 5e-5, "betas": (0.9, 0.999), "params": [0]}],
    }
    return {"n_iter": 1000000, "model": sd, "optimizer": optimizer}


@dataclass
class KerasModel:
    """Layers in Keras' order as ``save_weights`` writes them: (name, [(weight name, array)])."""

    layers: list[tuple[str, list[tuple[str, np.ndarray]]]] = field(default_factory=list)

    def weights(self, name: str) -> dict[str, np.ndarray]:
        for layer, ws in self.layers:
            if layer == name:
                return {w.split("/")[-1].split(":")[0]: a for w, a in ws}
        raise KeyError(name)


def keras_model(
    depth: int = 8,
    base: int = 64,
    seed: int = 2,
    first_pconv: int = 17,
    first_bn: int = 8,
    zeros: bool = False,
) -> KerasModel:
    """PConvUnet.build_pconv_unet's layers, named as in a phase-2 session (the model built a
    second time: p_conv2d_17.., batch_normalization_8..), with the weightless layers too."""
    rng = np.random.default_rng(seed)

    def make(*shape: int) -> np.ndarray:
        return (
            np.zeros(shape, np.float32) if zeros else rng.standard_normal(shape).astype(np.float32)
        )

    enc, dec = _layer_shapes(depth, base)
    model = KerasModel()
    model.layers.append(("inputs_img", []))
    model.layers.append(("inputs_mask", []))
    pc, bn_i = first_pconv, first_bn

    def pconv(c_in: int, c_out: int, k: int) -> None:
        nonlocal pc
        name = f"p_conv2d_{pc}"
        pc += 1
        kernel = make(k, k, c_in, c_out) * np.float32((2 / (k * k)) ** 0.5)  # HWIO
        model.layers.append(
            (
                name,
                [
                    (f"{name}/img_kernel:0", kernel),
                    (f"{name}/bias:0", make(c_out) * np.float32(0.1)),
                ],
            )
        )

    def bn(name: str, c: int) -> None:
        model.layers.append(
            (
                name,
                [
                    (f"{name}/gamma:0", (rng.random(c) + 0.5).astype(np.float32)),
                    (f"{name}/beta:0", (rng.standard_normal(c) * 0.1).astype(np.float32)),
                    (f"{name}/moving_mean:0", (rng.standard_normal(c) * 0.1).astype(np.float32)),
                    (f"{name}/moving_variance:0", (rng.random(c) + 0.5).astype(np.float32)),
                ],
            )
        )

    for i, (c_in, c_out, k) in enumerate(enc):
        pconv(c_in, c_out, k)
        if i > 0:
            bn(f"EncBN{i}", c_out)
        model.layers.append((f"activation_{i + 1}", []))
    for j in range(depth):  # Keras builds the decoder from the bottom: dec{depth} first
        ours = depth - 1 - j
        c_in, c_out = dec[ours]
        model.layers.append((f"up_sampling2d_{2 * j + 1}", []))
        model.layers.append((f"concatenate_{2 * j + 1}", []))
        pconv(c_in, c_out, 3)
        if ours > 0:
            bn(f"batch_normalization_{bn_i}", c_out)
            bn_i += 1
        model.layers.append((f"leaky_re_lu_{j + 1}", []))
    model.layers.append(
        (
            "outputs_img",
            [
                ("outputs_img/kernel:0", make(1, 1, 3, 3)),
                ("outputs_img/bias:0", make(3) * np.float32(0.1)),
            ],
        )
    )
    return model


def write_keras_h5(model: KerasModel, path: Path) -> Path:
    """The HDF5 layout of Keras 2 ``Model.save_weights`` (the file ModelCheckpoint writes)."""
    import h5py

    with h5py.File(path, "w") as fh:
        fh.attrs["layer_names"] = [n.encode() for n, _ in model.layers]
        fh.attrs["backend"] = b"tensorflow"
        fh.attrs["keras_version"] = b"2.2.4"
        for name, weights in model.layers:
            group = fh.create_group(name)
            group.attrs["weight_names"] = [w.encode() for w, _ in weights]
            for wname, array in weights:
                group.create_dataset(wname, data=array)
    return path


# -- reference forward passes, from each upstream's code -----------------------------------------


def _mmagic_pconv(
    x: Tensor, mask: Tensor, weight: Tensor, bias: Tensor | None, stride: int
) -> tuple[Tensor, Tensor]:
    """mmagic PartialConv2d.forward, multi_channel=True, eps=1e-8."""
    k = weight.shape[-1]
    updater = torch.ones_like(weight)
    updated = F.conv2d(mask, updater, None, stride, k // 2)
    ratio = weight.shape[1] * k * k / (updated + 1e-8)
    updated = updated.clamp(0, 1)
    ratio = ratio * updated
    raw = F.conv2d(x * mask, weight, bias, stride, k // 2)
    if bias is None:
        return raw * ratio, updated
    b = bias.view(1, -1, 1, 1)
    return ((raw - b) * ratio + b) * updated, updated


def _torch_bn(x: Tensor, sd: dict[str, Tensor], p: str, eps: float = 1e-5) -> Tensor:
    v = lambda n: sd[p + n].to(x.dtype).view(1, -1, 1, 1)  # noqa: E731
    return (x - v("running_mean")) / torch.sqrt(v("running_var") + eps) * v("weight") + v("bias")


def mmagic_reference(ckpt: dict, bgr: Tensor, hole: Tensor) -> Tensor:
    """PConvInpaintor.forward_tensor as mmagic runs it, on what its pipeline hands the model:
    ``bgr`` is the image as ``LoadImageFromFile`` reads it (OpenCV: **BGR**, 0..255, here NCHW
    float64), ``hole`` its API mask (1 = hole). ``DataPreprocessor(mean=127.5, std=127.5)``
    normalises without any channel conversion (no ``output_channel_order`` in the configs);
    returns ``fake_res`` denormalised to 0..255, still BGR, as mmagic saves it."""
    sd = {k: v.to(torch.float64) for k, v in ckpt["state_dict"].items()}
    depth = sum(1 for k in sd if re.fullmatch(r"generator\.encoder\.enc\d+\.conv\.weight", k))
    x = (bgr - 127.5) / 127.5
    masked = x * (1 - hole)
    mask = (1.0 - hole).repeat(1, 3, 1, 1)
    h, m = {0: masked}, {0: mask}
    for i in range(1, depth + 1):
        p = f"generator.encoder.enc{i}."
        y, m[i] = _mmagic_pconv(
            h[i - 1], m[i - 1], sd[p + "conv.weight"], sd.get(p + "conv.bias"), 2
        )
        if i > 1:
            y = _torch_bn(y, sd, p + "bn.")
        h[i] = F.relu(y)
    y, ym = h[depth], m[depth]
    for i in range(depth, 0, -1):
        y = F.interpolate(y, scale_factor=2, mode="nearest")
        ym = F.interpolate(ym, scale_factor=2, mode="nearest")
        y = torch.cat([y, h[i - 1]], dim=1)
        ym = torch.cat([ym, m[i - 1]], dim=1)
        p = f"generator.decoder.dec{i}."
        y, ym = _mmagic_pconv(y, ym, sd[p + "conv.weight"], sd.get(p + "conv.bias"), 1)
        if i > 1:
            y = F.leaky_relu(_torch_bn(y, sd, p + "bn."), 0.2)
    return y * 127.5 + 127.5


def naoto_reference(ckpt: dict, image: Tensor, valid: Tensor) -> Tensor:
    """net.PConvUNet.forward on an ImageNet-normalised image and a 3-channel mask (1 = valid);
    returns the output unnormalised to [0,1] space (util/image.unnormalize)."""
    sd = {k: v.to(torch.float64) for k, v in ckpt["model"].items()}
    depth = sum(1 for k in sd if re.fullmatch(r"enc_\d+\.conv\.input_conv\.weight", k))
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float64).view(1, 3, 1, 1)
    mask = valid.repeat(1, 3, 1, 1)
    x = (image - mean) / std * mask  # the dataset gives gt_img * mask

    def pconv(inp: Tensor, msk: Tensor, p: str, stride: int) -> tuple[Tensor, Tensor]:
        w = sd[p + "conv.input_conv.weight"]
        b = sd.get(p + "conv.input_conv.bias")
        k = w.shape[-1]
        output = F.conv2d(inp * msk, w, b, stride, k // 2)
        output_bias = (
            b.view(1, -1, 1, 1).expand_as(output) if b is not None else torch.zeros_like(output)
        )
        output_mask = F.conv2d(msk, sd[p + "conv.mask_conv.weight"], None, stride, k // 2)
        no_update_holes = output_mask == 0
        mask_sum = output_mask.masked_fill(no_update_holes, 1.0)
        output_pre = (output - output_bias) / mask_sum + output_bias
        output = output_pre.masked_fill(no_update_holes, 0.0)
        new_mask = torch.ones_like(output).masked_fill(no_update_holes, 0.0)
        return output, new_mask

    h, hm = {0: x}, {0: mask}
    for i in range(1, depth + 1):
        y, hm[i] = pconv(h[i - 1], hm[i - 1], f"enc_{i}.", 2)
        if i > 1:
            y = _torch_bn(y, sd, f"enc_{i}.bn.")
        h[i] = F.relu(y)
    y, ym = h[depth], hm[depth]
    for i in range(depth, 0, -1):
        y = F.interpolate(y, scale_factor=2, mode="nearest")
        ym = F.interpolate(ym, scale_factor=2, mode="nearest")
        y = torch.cat([y, h[i - 1]], dim=1)
        ym = torch.cat([ym, hm[i - 1]], dim=1)
        y, ym = pconv(y, ym, f"dec_{i}.", 1)
        if i > 1:
            y = F.leaky_relu(_torch_bn(y, sd, f"dec_{i}.bn."), 0.2)
    return y * std + mean


def keras_reference(model: KerasModel, image: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """PConvUnet's graph in NHWC with HWIO kernels: (last PConv2D output before its LeakyReLU,
    model output after the sigmoid head), both NCHW. Input [0,1], mask 1 = valid, 3 channels."""
    pconvs = [n for n, ws in model.layers if any("img_kernel" in w for w, _ in ws)]
    depth = len(pconvs) // 2
    dec_bns = [n for n, _ in model.layers if n.startswith("batch_normalization")]

    def conv_nhwc(x: Tensor, kernel: np.ndarray, stride: int) -> Tensor:
        k = kernel.shape[0]
        pad = (k - 1) // 2  # PConv2D pads explicitly, then a 'valid' conv
        xp = F.pad(x.permute(0, 3, 1, 2), (pad, pad, pad, pad))
        w = torch.from_numpy(kernel).to(torch.float64).permute(3, 2, 0, 1)
        return F.conv2d(xp, w, None, stride).permute(0, 2, 3, 1)

    def pconv(x: Tensor, m: Tensor, name: str, stride: int) -> tuple[Tensor, Tensor]:
        w = model.weights(name)
        kernel = w["img_kernel"]
        k = kernel.shape[0]
        mask_output = conv_nhwc(m, np.ones_like(kernel), stride)
        img_output = conv_nhwc(x * m, kernel, stride)
        mask_ratio = k * k / (mask_output + 1e-8)
        mask_output = mask_output.clamp(0, 1)
        mask_ratio = mask_ratio * mask_output
        img_output = img_output * mask_ratio + torch.from_numpy(w["bias"]).to(torch.float64)
        return img_output, mask_output

    def bn(x: Tensor, name: str) -> Tensor:
        w = {k: torch.from_numpy(v).to(torch.float64) for k, v in model.weights(name).items()}
        return (x - w["moving_mean"]) / torch.sqrt(w["moving_variance"] + 1e-3) * w["gamma"] + w[
            "beta"
        ]

    img = image.permute(0, 2, 3, 1).to(torch.float64)
    msk = valid.permute(0, 2, 3, 1).to(torch.float64).repeat(1, 1, 1, 3)
    masked = torch.where(msk > 0, img, torch.ones_like(img))  # main.py: masked[mask==0] = 1
    e, em = [masked], [msk]
    for i in range(depth):
        c, cm = pconv(e[-1], em[-1], pconvs[i], 2)
        if i > 0:
            c = bn(c, f"EncBN{i}")
        e.append(F.relu(c))
        em.append(cm)
    d, dm = e[-1], em[-1]
    pre = d
    for j in range(depth):
        up = d.repeat_interleave(2, 1).repeat_interleave(2, 2)  # UpSampling2D, nearest
        up_m = dm.repeat_interleave(2, 1).repeat_interleave(2, 2)
        skip, skip_m = e[depth - 1 - j], em[depth - 1 - j]
        d, dm = pconv(
            torch.cat([skip, up], dim=3), torch.cat([skip_m, up_m], dim=3), pconvs[depth + j], 1
        )
        if j < depth - 1:
            d = bn(d, dec_bns[j])
        else:
            pre = d
        d = F.leaky_relu(d, 0.2)
    head = model.weights("outputs_img")
    out = torch.sigmoid(
        d @ torch.from_numpy(head["kernel"][0, 0]).to(torch.float64)
        + torch.from_numpy(head["bias"]).to(torch.float64)
    )
    return pre.permute(0, 3, 1, 2), out.permute(0, 3, 1, 2)


# -- rlct1/gin's DeepGIN generator (models/networks.py, ImageTinker2) ---------------------------

#: dilation of each SPD branch, in branch order (MultiDilationResnetBlock, its _v3)
GIN_COARSE_RATES = (2, 3, 4, 5, 6, 8, 10, 1)
GIN_REFINE_RATES = (2, 3, 4, 5)
GIN_REFINE_BLOCKS = ("r_md_mres1", "r_md_mres2", "r_md_mres5", "r_md_mres3", "r_md_mres4",
                     "r_md_mres6")  # fmt: skip


def gin_checkpoint(ngf: int = 64, blocks: int = 6, seed: int = 0) -> dict[str, Tensor]:
    """``ImageTinker2(4, 3, ngf).state_dict()`` as ``save_network`` writes it: every key, in
    the order the modules are registered, with random weights (He-scaled, random biases, and
    non-local ``W`` projections that are not the release's zero init). The release is
    ``ngf=64, blocks=6`` (``define_G`` hard-codes both); smaller ones keep tests quick."""
    gen = torch.Generator().manual_seed(seed)
    sd: dict[str, Tensor] = {}

    def conv(
        name: str, c_in: int, c_out: int, k: int, gain: float = 1.0, bias: float = 0.0
    ) -> None:
        std = gain * (2 / (c_in * k * k)) ** 0.5
        sd[f"{name}.weight"] = torch.randn(c_out, c_in, k, k, generator=gen) * std
        sd[f"{name}.bias"] = torch.randn(c_out, generator=gen) * 0.05 + bias

    # Gains that keep every activation of order 1 through the residual stacks, attention
    # logits moderate (softmax neither uniform nor one-hot) and the images near [0, 1]: a
    # wrong wiring then shows as an O(1) difference, float32 rounding as ~1e-6.
    def spd(name: str, c: int, rates: tuple[int, ...], fusion: str) -> None:
        for b in range(1, len(rates) + 1):
            conv(f"{name}.branch{b}.conv", c, c // len(rates), 3)
        conv(f"{name}.{fusion}.conv", c, c, 3, gain=0.3)

    def non_local(name: str, c: int) -> None:  # registration order: g, W, theta, phi
        conv(f"{name}.g", c, c // 2, 1)
        conv(f"{name}.W", c // 2, c, 1, gain=0.5)
        conv(f"{name}.theta", c, c // 2, 1, gain=0.5)
        conv(f"{name}.phi", c, c // 2, 1, gain=0.5)

    def rgb(name: str, c_in: int, c_out: int, k: int) -> None:
        conv(name, c_in, c_out, k, gain=0.1, bias=0.5)

    w = ngf
    seq = "lr_coarse_tinker"
    conv(f"{seq}.1", 4, w // 2, 7)
    conv(f"{seq}.4", w // 2, w, 4)
    conv(f"{seq}.7", w, 2 * w, 4)
    conv(f"{seq}.10", 2 * w, 4 * w, 4)
    for b in range(blocks):
        spd(f"{seq}.{12 + b}", 4 * w, GIN_COARSE_RATES, "fusion9")
    conv(f"{seq}.{14 + blocks}", 4 * w, 2 * w, 3)
    conv(f"{seq}.{18 + blocks}", 2 * w, w, 3)
    conv(f"{seq}.{22 + blocks}", w, w // 2, 3)
    rgb(f"{seq}.{25 + blocks}", w // 2, 3, 7)
    conv("r_en_conv1", 4, w // 2, 7)
    conv("r_en_conv2", w // 2, w, 4)
    conv("r_en_conv3", w, 2 * w, 4)
    conv("r_en_skp_conv3", 2 * w, w, 3)
    conv("r_en_conv4", 2 * w, 4 * w, 4)
    conv("r_en_skp_conv4", 4 * w, 2 * w, 3)
    conv("r_en_conv5", 4 * w, 8 * w, 4)
    for name in ("r_md_mres1", "r_md_mres2", "r_md_mres5"):
        spd(name, 8 * w, GIN_REFINE_RATES, "fusion5")
    non_local("r_md_satn1", 8 * w)
    for name in ("r_md_mres3", "r_md_mres4", "r_md_mres6"):
        spd(name, 8 * w, GIN_REFINE_RATES, "fusion5")
    conv("r_de_conv1", 8 * w, 4 * w, 3)
    non_local("r_de_satn2", 2 * w)
    non_local("r_de_satn3", w)
    conv("r_de_mix_conv1", 4 * w + 2 * w, 4 * w, 3)
    conv("r_de_conv2", 4 * w, 2 * w, 3)
    conv("r_de_mix_conv2", 2 * w + w, 2 * w, 3)
    conv("r_de_conv2_lr", 2 * w, w // 2, 3)
    rgb("r_de_conv3_lr", w // 2, 3, 3)
    conv("r_de_conv3", 2 * w, w, 3)
    conv("r_de_conv4", w, w // 2, 3)
    rgb("r_de_conv5", w // 2, 3, 7)
    conv("r_de_conv5_lr_alpha", w // 2, 1, 3)
    return sd


def gin_reference(sd: dict[str, Tensor], masked: Tensor, hole: Tensor) -> dict[str, Tensor]:
    """``ImageTinker2.forward(msked_img, msk)`` at test time, on the raw state dict in float64:
    ``masked`` is the image as test_ensemble.py feeds it (RGB in [0, 1], holes painted white),
    ``hole`` its mask (1 = hole). Returns ``compltd_img``, ``reconst_img`` (what
    test_ensemble.py saves), ``lr_x`` and ``lr_img``, in [0, 1] space."""
    p = {k: v.to(torch.float64) for k, v in sd.items()}
    up2, up4 = (
        torch.nn.UpsamplingBilinear2d(scale_factor=2),
        torch.nn.UpsamplingBilinear2d(scale_factor=4),
    )
    down = torch.nn.UpsamplingBilinear2d(scale_factor=0.25)
    lrelu = torch.nn.LeakyReLU(0.2)

    def c(x: Tensor, name: str, pad: int, stride: int = 1, dilation: int = 1) -> Tensor:
        x = F.pad(x, (pad,) * 4, mode="replicate")  # self.pad(n) = nn.ReplicationPad2d(n)
        return F.conv2d(x, p[name + ".weight"], p[name + ".bias"], stride, dilation=dilation)

    def mdrb(x: Tensor, name: str, rates: tuple[int, ...], fusion: str) -> Tensor:
        d = [F.relu(c(x, f"{name}.branch{b + 1}.conv", r, 1, r)) for b, r in enumerate(rates)]
        return x + c(torch.cat(d, 1), f"{name}.{fusion}.conv", 1)

    def nlb(x: Tensor, name: str) -> Tensor:
        n, _, h, w = x.shape
        inter = p[name + ".g.weight"].shape[0]
        g_x = F.conv2d(x, p[name + ".g.weight"], p[name + ".g.bias"]).view(n, inter, -1)
        theta = F.conv2d(x, p[name + ".theta.weight"], p[name + ".theta.bias"]).view(n, inter, -1)
        phi = F.conv2d(x, p[name + ".phi.weight"], p[name + ".phi.bias"]).view(n, inter, -1)
        f = torch.matmul(theta.permute(0, 2, 1), phi)
        y = torch.matmul(F.softmax(f, dim=-1), g_x.permute(0, 2, 1))
        y = y.permute(0, 2, 1).contiguous().view(n, inter, h, w)
        return F.conv2d(y, p[name + ".W.weight"], p[name + ".W.bias"]) + x

    seq = "lr_coarse_tinker"
    blocks = sorted({int(k.split(".")[1]) for k in p if k.endswith(".fusion9.conv.weight")})
    n = len(blocks)
    x = torch.cat((masked, hole), dim=1)
    x = lrelu(c(x, f"{seq}.1", 3))
    for i in (4, 7, 10):
        x = lrelu(c(x, f"{seq}.{i}", 1, 2))
    for b in blocks:
        x = mdrb(x, f"{seq}.{b}", GIN_COARSE_RATES, "fusion9")
    for i in (14 + n, 18 + n, 22 + n):
        x = lrelu(c(up2(x), f"{seq}.{i}", 1))
    lr_x = c(x, f"{seq}.{25 + n}", 3)
    hr_x = lr_x * hole + masked * (1 - hole)

    y = torch.cat((hr_x, hole), dim=1)
    e1 = lrelu(c(y, "r_en_conv1", 3))
    e2 = lrelu(c(e1, "r_en_conv2", 1, 2))
    e3 = lrelu(c(e2, "r_en_conv3", 1, 2))
    e4 = lrelu(c(e3, "r_en_conv4", 1, 2))
    e5 = lrelu(c(e4, "r_en_conv5", 1, 2))
    de3 = nlb(lrelu(c(e3, "r_en_skp_conv3", 1)), "r_de_satn3")
    de4 = nlb(lrelu(c(e4, "r_en_skp_conv4", 1)), "r_de_satn2")
    m = e5
    for name in GIN_REFINE_BLOCKS[:3]:
        m = mdrb(m, name, GIN_REFINE_RATES, "fusion5")
    m = nlb(m, "r_md_satn1")
    for name in GIN_REFINE_BLOCKS[3:]:
        m = mdrb(m, name, GIN_REFINE_RATES, "fusion5")
    d1 = lrelu(c(up2(m), "r_de_conv1", 1))
    md1 = lrelu(c(torch.cat((d1, de4), 1), "r_de_mix_conv1", 1))
    d2 = lrelu(c(up2(md1), "r_de_conv2", 1))
    md2 = lrelu(c(torch.cat((d2, de3), 1), "r_de_mix_conv2", 1))
    d3_lr = c(lrelu(c(md2, "r_de_conv2_lr", 1)), "r_de_conv3_lr", 1)
    d3 = lrelu(c(up2(md2), "r_de_conv3", 1))
    d4 = lrelu(c(up2(d3), "r_de_conv4", 1))
    d5 = c(d4, "r_de_conv5", 3)
    alpha = torch.sigmoid(c(d4, "r_de_conv5_lr_alpha", 1))
    d5 = d5 * hole + masked * (1 - hole)
    reconst = d5 + up4(d3_lr - down(d5)) * alpha
    compltd = reconst * hole + masked * (1 - hole)
    return {"compltd_img": compltd, "reconst_img": reconst, "lr_x": lr_x, "lr_img": d3_lr}


def images_and_masks(size: int, batch: int = 2, seed: int = 5) -> tuple[Tensor, Tensor]:
    """Random [0,1] images and valid masks (1 = known) with a large hole and small ones."""
    gen = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, size, size, generator=gen, dtype=torch.float64)
    valid = torch.ones(batch, 1, size, size, dtype=torch.float64)
    valid[0, :, size // 8 : size // 2, size // 4 : 3 * size // 4] = 0
    valid[-1, :, size // 2 :, : size // 3] = 0
    valid[:, :, size - 5 :, size - 9 : size - 2] = 0
    return image, valid


# -- a local Hub: the endpoints hf_hub_download uses ---------------------------------------------


@dataclass
class LocalHub:
    url: str
    repos: dict[str, dict[str, bytes]]  # repo id -> file name -> content
    upstream: dict[str, bytes]  # served at /upstream/<file name>
    requests: list[str]
    drive: dict[str, bytes] = field(default_factory=dict)  # Drive file id -> content
    #: how /drive/download answers: "ok" (confirmation page, then the file), "quota" (its
    #: quota page, 403), "busy" (429), "denied" (403, not shared), "page" (another page)
    drive_mode: str = "ok"


#: Drive's answers, as drive.usercontent.google.com words them (trimmed): a large file first
#: gets a page whose form asks for it again with ``confirm`` and a ``uuid``.
DRIVE_UUID = "4b1f5d0e-0000-4000-8000-000000000000"
DRIVE_CONFIRM = """<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title>
</head><body><div class="uc-main"><div id="uc-text"><p class="uc-warning-caption">Google Drive
can't scan this file for viruses.</p><p class="uc-warning-subcaption"><span class="uc-name-size">
<a href="/open?id={id}">latest_net_G.pth</a> (164M)</span> is too large for Google to scan for
viruses. Would you still like to download this file?</p><form id="download-form"
action="{action}" method="get"><input type="submit" id="uc-download-link"
class="goog-inline-block jfk-button jfk-button-action" value="Download anyway"/><input
type="hidden" name="id" value="{id}"><input type="hidden" name="export" value="download"><input
type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="{uuid}"></form>
</div></div></body></html>"""
DRIVE_QUOTA = """<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head>
<body><p class="uc-error-caption">Sorry, you can't view or download this file at this time.</p>
<p class="uc-error-subcaption">Too many users have viewed or downloaded this file recently.
Please try accessing the file again later. If the file you are trying to access is particularly
large or is shared with many people, it may take up to 24 hours to be able to view or download
the file.</p></body></html>"""
DRIVE_DENIED = """<!DOCTYPE html><html><head><title>Google Drive - You need access</title>
</head><body><p>You need access. Request access, or switch to an account with access.</p>
<a href="https://accounts.google.com/ServiceLogin">Sign in</a></body></html>"""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextmanager
def local_hub() -> Iterator[LocalHub]:
    """HEAD/GET ``/{org}/{name}/resolve/{revision}/{file}`` with the headers the Hub sends
    (``X-Repo-Commit``, ``ETag`` = the LFS sha256, ``Content-Length``, ``X-Error-Code``), and
    ``/upstream/{file}`` as a mirror of the upstream download sites."""
    hub = LocalHub(url="", repos={}, upstream={}, requests=[])

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep pytest output clean
            pass

        def _send(
            self,
            status: int,
            body: bytes = b"",
            headers: dict[str, str] | None = None,
            head: bool = False,
        ) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _serve(self, head: bool) -> None:
            hub.requests.append(f"{self.command} {self.path}")
            match = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", self.path.split("?")[0])
            up = re.fullmatch(r"/upstream/(.+)", self.path)
            if self.path.startswith("/drive/download?"):
                return self._drive(head)
            if up:
                data = hub.upstream.get(up[1])
                if data is None:
                    return self._send(404, b"not found", head=head)
                return self._send(200, data, {"Content-Type": "application/octet-stream"}, head)
            if not match:
                return self._send(404, b"{}", {"Content-Type": "application/json"}, head)
            repo_id, revision, filename = match[1], match[2], match[3]
            files = hub.repos.get(repo_id)
            if files is None:
                return self._send(
                    404,
                    b"Repository not found",
                    {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"},
                    head,
                )
            if revision not in ("main", COMMIT):
                return self._send(
                    404, b"Invalid rev id", {"X-Error-Code": "RevisionNotFound"}, head
                )
            data = files.get(filename)
            if data is None:
                return self._send(
                    404,
                    b"Entry not found",
                    {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": COMMIT},
                    head,
                )
            start = 0
            rng = self.headers.get("Range")
            if rng and (m := re.fullmatch(r"bytes=(\d+)-", rng)):
                start = int(m[1])
            headers = {
                "X-Repo-Commit": COMMIT,
                "ETag": f'"{_sha(data)}"',
                "Accept-Ranges": "bytes",
                "Content-Type": "application/octet-stream",
            }
            self._send(206 if start else 200, data[start:], headers, head)

        def _drive(self, head: bool) -> None:
            query = dict(urllib.parse.parse_qsl(self.path.split("?", 1)[1]))
            data = hub.drive.get(query.get("id", ""))
            html = {"Content-Type": "text/html; charset=utf-8"}
            if data is None:
                return self._send(404, b"<html>Not Found</html>", html, head)
            mode = hub.drive_mode
            if mode == "busy":
                return self._send(429, b"<html>Too Many Requests</html>", html, head)
            if mode in ("quota", "denied"):
                page = DRIVE_QUOTA if mode == "quota" else DRIVE_DENIED
                return self._send(403, page.encode(), html, head)
            if mode == "page":
                return self._send(200, b"<html><body>Something else</body></html>", html, head)
            if query.get("confirm") == "t" and query.get("uuid") == DRIVE_UUID:
                kind = {"Content-Type": "application/octet-stream"}
                return self._send(200, data, kind, head)
            page = DRIVE_CONFIRM.format(id=query["id"], action=hub.url + "/drive/download",
                                        uuid=DRIVE_UUID)  # fmt: skip
            return self._send(200, page.encode(), html, head)

        def do_HEAD(self) -> None:
            self._serve(head=True)

        def do_GET(self) -> None:
            self._serve(head=False)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
