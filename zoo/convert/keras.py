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
the last partial convolution; our config's ``head="sigmoid"`` is exactly it, so the whole network
converts exactly (12 more parameters than the paper's 512 U-Net).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..registry import ZooError
from .common import BatchNorm, Head, Layer, UpstreamNet

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


def notes() -> list[str]:
    return [
        "HWIO kernels transposed to OIHW; Keras' k*k window normalisation -> kernels / C_in "
        "(exact)",
        "decoder concat [skip, upsampled] -> kernel input channels permuted to [upsampled, skip]",
        "biases before BatchNorm folded into running_mean, Keras BN eps 1e-3 into running_var",
        "input [0,1] unnormalised (mean 0, std 1); output head LeakyReLU -> 1x1 conv -> sigmoid "
        "kept as the model's head='sigmoid' (exact)",
    ]
