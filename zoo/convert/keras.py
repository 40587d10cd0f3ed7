"""MathiasGruber/PConv-Keras (``libs/pconv_model.PConvUnet``), the ImageNet ``.h5`` weights.

File layout (Keras 2 ``save_weights``/``ModelCheckpoint(save_weights_only=True)``, HDF5): the
root (or ``model_weights/`` for a full ``model.save``) has attribute ``layer_names``; each layer
group has attribute ``weight_names`` and datasets ``<layer>/<layer>/<weight>:0``:

* ``p_conv2d[_N]``: ``img_kernel`` ``[k, k, C_in, C_out]`` (HWIO) and ``bias`` ``[C_out]`` - *every*
  partial convolution has a bias (Keras' default), also those before a BatchNorm. 16 of them,
  in creation order: enc1..enc8 (kernels 7,5,5,3,..., stride 2), then the decoders from the bottom
  (dec8 in our numbering) to the top (dec1), 3x3 stride 1. Names are numbered per session (phase 2
  was built twice in one session), so layers are ordered by their numeric suffix, not by name.
* ``EncBN1..EncBN7``: the encoder's BatchNorms (after enc2..enc8); ``batch_normalization[_N]``: the
  decoder's 7 (none after the last decoder layer); ``gamma, beta, moving_mean, moving_variance``,
  Keras' eps 1e-3.
* ``outputs_img``: a plain ``Conv2D(3, 1, activation="sigmoid")``: ``kernel [1,1,3,3]``, ``bias``.

Semantics (``libs/pconv_layer.PConv2D``): ``out = W^T(X*M) * k*k / sum(M) * clip(sum(M), 0, 1) +
b`` - the window size is ``k*k``, not ``C_in*k*k`` (exactly convertible: kernels scaled by 1/C_in),
and the bias is added in holes too (exactly convertible before a BatchNorm, by folding it into
``running_mean``; after enc1 those values sit where the mask is 0 and never reach the output).
Decoders concatenate ``[skip, upsampled]`` (we permute kernel input channels) and apply
LeakyReLU(0.2) after *every* decoder layer, the last included, followed by the 1x1 sigmoid head.
The input is the image in [0,1] (``rescale=1/255``, no normalisation), masks are 1 = valid with
3 channels, and the output is the sigmoid's [0,1].

That head (LeakyReLU -> 1x1 conv -> sigmoid) has no counterpart in the paper's U-Net, which ends in
the last partial convolution: the conversion replaces it by the affine map of the last layer's
output that best fits it (least squares over hole pixels of synthetic calibration images) and
folds it into that layer. Everything before the head is exact; the head's approximation error is
measured and stored in the converted file's metadata.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from zoo.convert.common import (
    BatchNorm,
    Conversion,
    Head,
    Layer,
    UpstreamNet,
    apply_head,
    reference_run,
    to_pconv,
)
from zoo.registry import ZooError

LAYOUT = "keras"
KERAS_BN_EPS = 1e-3  # keras.layers.BatchNormalization's default
#: (layer name, {weight name without scope and ":0": array}), in the file's layer order
KerasLayers = list[tuple[str, dict[str, np.ndarray]]]

_SUFFIX = re.compile(r"_(\d+)$")


def _text(value: object) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def read_h5(path: str | Path) -> KerasLayers:
    """The weights of a Keras 2 HDF5 weights file, without Keras (needs ``h5py``)."""
    try:
        import h5py
    except ImportError:
        raise ZooError(
            "reading Keras .h5 weights needs h5py: pip install 'pconv[keras]' (or h5py)"
        ) from None
    try:
        with h5py.File(str(path), "r") as fh:
            root = fh.get("model_weights", fh)
            if "layer_names" not in root.attrs:
                raise ZooError(f"{path}: an HDF5 file without Keras' layer_names attribute")
            layers: KerasLayers = []
            for name in (_text(n) for n in root.attrs["layer_names"]):
                group = root[name]
                weights = {}
                for full in (_text(w) for w in group.attrs.get("weight_names", [])):
                    short = full.rsplit("/", 1)[-1].split(":", 1)[0]
                    weights[short] = np.asarray(group[full])
                layers.append((name, weights))
            return layers
    except OSError as exc:
        raise ZooError(f"{path}: not a readable HDF5 file ({exc})") from None


def detect(layers: KerasLayers) -> bool:
    return any("img_kernel" in w for _, w in layers)


def _creation_index(name: str) -> int:
    """Keras numbers auto-named layers in creation order; the first may have no suffix."""
    match = _SUFFIX.search(name)
    return int(match[1]) if match else 0


def _kernel(array: np.ndarray) -> Tensor:
    """HWIO (Keras) -> OIHW (torch)."""
    return torch.from_numpy(np.ascontiguousarray(array)).permute(3, 2, 0, 1).contiguous()


def _bn(weights: dict[str, np.ndarray], name: str) -> BatchNorm:
    try:
        return BatchNorm(
            weight=torch.from_numpy(weights["gamma"]),
            bias=torch.from_numpy(weights["beta"]),
            running_mean=torch.from_numpy(weights["moving_mean"]),
            running_var=torch.from_numpy(weights["moving_variance"]),
            eps=KERAS_BN_EPS,
        )
    except KeyError as exc:
        raise ZooError(f"{LAYOUT}: BatchNorm {name} lacks {exc.args[0]}") from None


def parse(layers: KerasLayers) -> UpstreamNet:
    pconvs = sorted(
        ((n, w) for n, w in layers if "img_kernel" in w), key=lambda item: _creation_index(item[0])
    )
    bns = [(n, w) for n, w in layers if "moving_mean" in w]
    enc_bns = sorted(
        (item for item in bns if item[0].startswith("EncBN")),
        key=lambda item: _creation_index(item[0].replace("EncBN", "_")),
    )
    dec_bns = sorted(
        (item for item in bns if not item[0].startswith("EncBN")),
        key=lambda item: _creation_index(item[0]),
    )
    heads = [(n, w) for n, w in layers if "kernel" in w and w["kernel"].shape[:2] == (1, 1)]
    if len(pconvs) < 2 or len(pconvs) % 2:
        raise ZooError(f"{LAYOUT}: {len(pconvs)} partial convolutions (expected 2 x depth)")
    depth = len(pconvs) // 2
    if len(enc_bns) != depth - 1 or len(dec_bns) != depth - 1 or len(heads) != 1:
        raise ZooError(
            f"{LAYOUT}: {len(enc_bns)} encoder and {len(dec_bns)} decoder BatchNorms and "
            f"{len(heads)} 1x1 heads for depth {depth} (expected {depth - 1}, {depth - 1}, 1)"
        )

    def layer(i: int, bn: tuple[str, dict[str, np.ndarray]] | None) -> Layer:
        name, w = pconvs[i]
        if "bias" not in w:
            raise ZooError(f"{LAYOUT}: {name} has no bias (PConv2D's use_bias default)")
        return Layer(
            weight=_kernel(w["img_kernel"]),
            bias=torch.from_numpy(w["bias"]),
            bn=None if bn is None else _bn(bn[1], bn[0]),
        )

    encoders = [layer(i, None if i == 0 else enc_bns[i - 1]) for i in range(depth)]
    # Keras builds the decoder from the bottom: its j-th decoder layer is our dec{depth - j}.
    keras_decoders = [layer(depth + j, dec_bns[j] if j < depth - 1 else None) for j in range(depth)]
    head_name, head = heads[0]
    kernel = head["kernel"]
    if kernel.shape != (1, 1, 3, 3) or "bias" not in head:
        raise ZooError(f"{LAYOUT}: head {head_name} is {kernel.shape}, expected a 1x1 3->3 conv")
    return UpstreamNet(
        layout=LAYOUT,
        encoders=encoders,
        decoders=keras_decoders[::-1],
        ratio="kernel",
        bias_in_holes=True,
        skip_first=True,
        input_mean=(0.0, 0.0, 0.0),
        input_std=(1.0, 1.0, 1.0),
        head=Head(
            weight=torch.from_numpy(kernel[0, 0].T.copy()), bias=torch.from_numpy(head["bias"])
        ),
    )


# -- the head's affine approximation -------------------------------------------------------------


def calibration_inputs(size: int, count: int, seed: int) -> tuple[Tensor, Tensor]:
    """Deterministic synthetic photos-ish images (smooth shading, flat regions with edges, fine
    texture) and masks of strokes and blobs covering roughly 10-50% of the image."""
    gen = torch.Generator().manual_seed(seed)
    imgs, masks = [], []
    yy, xx = torch.meshgrid(
        torch.arange(size, dtype=torch.float32),
        torch.arange(size, dtype=torch.float32),
        indexing="ij",
    )
    for _ in range(count):
        coarse = torch.rand(1, 3, 6, 6, generator=gen)
        img = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[0]
        for _ in range(int(torch.randint(3, 9, (1,), generator=gen))):  # flat shapes, hard edges
            cy, cx, r = torch.rand(3, generator=gen) * torch.tensor([size, size, size / 3])
            blob = ((yy - cy) ** 2 + (xx - cx) ** 2) < r**2
            img[:, blob] = torch.rand(3, 1, generator=gen)
        img = img + 0.08 * torch.randn(3, size, size, generator=gen)
        imgs.append(img.clamp(0, 1))
        valid = torch.ones(size, size)
        for _ in range(int(torch.randint(2, 7, (1,), generator=gen))):  # thick strokes
            y0, x0, y1, x1 = (torch.rand(4, generator=gen) * size).tolist()
            width = float(torch.rand(1, generator=gen)) * size / 12 + 3
            t = (
                ((yy - y0) * (y1 - y0) + (xx - x0) * (x1 - x0))
                / max((y1 - y0) ** 2 + (x1 - x0) ** 2, 1.0)
            ).clamp(0, 1)
            dist = ((yy - y0 - t * (y1 - y0)) ** 2 + (xx - x0 - t * (x1 - x0)) ** 2).sqrt()
            valid[dist < width] = 0
        masks.append(valid[None])
    return torch.stack(imgs), torch.stack(masks)


@torch.no_grad()
def fit_head(
    net: UpstreamNet, size: int, count: int = 4, seed: int = 1234
) -> tuple[Tensor, Tensor]:
    """``(A, d)`` minimising ``|A z + d - head(z)|^2`` over hole pixels of calibration images,
    ``z`` being the last partial convolution's output (what our last layer can produce)."""
    assert net.head is not None
    zs, targets = [], []
    for i in range(count):  # one image at a time bounds memory at 512x512
        image, valid = calibration_inputs(size, 1, seed + i)
        z, seen = reference_run(net, image, valid, pre_head=True)
        y = apply_head(net.head, z)
        hole = ((valid[:, 0] < 0.5) & (seen[:, 0] > 0.5)).flatten()
        zs.append(z.permute(0, 2, 3, 1).reshape(-1, 3)[hole].to(torch.float64))
        targets.append(y.permute(0, 2, 3, 1).reshape(-1, 3)[hole].to(torch.float64))
    z = torch.cat(zs)
    t = torch.cat(targets)
    x = torch.cat([z, torch.ones(len(z), 1, dtype=torch.float64)], dim=1)
    beta = torch.linalg.lstsq(x, t).solution  # [4, 3]
    return beta[:3].T.contiguous(), beta[3].contiguous()


@torch.no_grad()
def measure(
    net: UpstreamNet,
    conversion_model: torch.nn.Module,
    exact_model: torch.nn.Module,
    size: int,
    count: int = 2,
    seed: int = 98765,
) -> dict[str, float]:
    """Fidelity on held-out calibration images (other seed):

    * ``pre_head_max_abs_diff``: our network with an identity head vs the Keras network up to its
      last partial convolution (the exactly converted part);
    * ``hole_*``: the converted model (clamped to [0,1] as ``pconv.inpaint`` does) vs the Keras
      output, over hole pixels - the only ones that survive compositing.
    """
    pre, hole_abs = [], []
    for i in range(count):
        image, valid = calibration_inputs(size, 1, seed + i)
        z, seen = reference_run(net, image, valid, pre_head=True)
        pre.append(float(((exact_model(image, valid) - z).abs() * seen).max()))
        ours = conversion_model(image, valid).clamp(0, 1)
        theirs = apply_head(net.head, z) if net.head is not None else z
        hole = ((valid < 0.5) & (seen > 0.5)).expand_as(ours)
        hole_abs.append((ours - theirs).abs()[hole].to(torch.float64))
    diffs = torch.cat(hole_abs)
    return {
        "pre_head_max_abs_diff": max(pre),
        "hole_mean_abs_diff": float(diffs.mean()),
        "hole_p99_abs_diff": float(torch.quantile(diffs[:: max(1, len(diffs) // 100000)], 0.99)),
        "hole_max_abs_diff": float(diffs.max()),
        "calibration_size": float(size),
    }


def convert(net: UpstreamNet, resolution: int) -> Conversion:
    """Exact up to the head; the head is replaced by its least-squares affine fit."""
    size = max(2**net.depth, min(resolution, 512))
    a, d = fit_head(net, size)
    model = to_pconv(net, resolution, head_map=(a, d))
    identity = to_pconv(net, resolution, head_map=(torch.eye(3), torch.zeros(3)))
    stats = measure(net, model, identity, size)
    return Conversion(
        model=model,
        layout=LAYOUT,
        exact=False,
        max_abs_diff=stats["hole_max_abs_diff"],
        approximation=stats,
        notes=notes(),
    )


def notes() -> list[str]:
    return [
        "HWIO kernels transposed to OIHW; Keras' k*k window normalisation -> kernels / C_in "
        "(exact)",
        "decoder concat [skip, upsampled] -> kernel input channels permuted to [upsampled, skip]",
        "biases before BatchNorm folded into running_mean, Keras BN eps 1e-3 into running_var",
        "input [0,1] unnormalised (mean 0, std 1); output head LeakyReLU->1x1 conv->sigmoid "
        "replaced by its least-squares affine fit over hole pixels (approximate; see "
        "approximation figures)",
    ]
