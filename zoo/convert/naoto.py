"""naoto0804/pytorch-inpainting-with-partial-conv (``net.PConvUNet``, release v0.0.0).

Layout of ``1000000.pth`` (``util/io.save_ckpt``: ``{"n_iter": int, "model": state_dict,
"optimizer": ...}``), ``layer_size=7``:

* ``enc_{i}.conv.input_conv.weight`` (i = 1..7; kernels 7,5,5,3,3,3,3, stride 2; widths
  64,128,256,512,512,512,512), **no bias anywhere in the encoder** (``conv_bias=False``, enc_1
  included); ``enc_{i}.bn.*`` for i >= 2 (``nn.BatchNorm2d``, eps 1e-5);
* ``dec_{i}.conv.input_conv.weight`` (3x3), ``dec_1.conv.input_conv.bias`` only, ``dec_{i}.bn.*``
  for i >= 2; LeakyReLU(0.2) after dec_2..dec_7, nothing after dec_1;
* ``*.conv.mask_conv.weight``: all-ones ``[C_out, C_in, k, k]`` (a frozen Parameter).

Semantics (``net.py``): ``out = (W^T(X*M)) / sum(M) + b`` where ``sum(M) > 0``, else 0, with
``sum(M)`` over the ``C_in x k x k`` window of a channel-wide mask: **no sum(1) factor**, so the
exact conversion rescales each kernel by ``1/(C_in*k*k)``. Decoders upsample (nearest) and
concatenate ``[upsampled, skip]``. Input and output are ImageNet-normalised
(``opt.MEAN/STD``); masks are 1 = valid, 3 channels. Our enc1 has a bias: it is set to zero.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import Tensor

from pconv.losses.backbones import IMAGENET_MEAN, IMAGENET_STD

from ..registry import ZooError
from .common import Layer, UpstreamNet, batch_norm

LAYOUT = "naoto"
NESTINGS = ("model", "state_dict")
_LAYER = re.compile(
    r"^(?P<prefix>(?:module\.)?)(?P<kind>enc|dec)_(?P<index>\d+)\.conv\."
    r"input_conv\.weight$"
)


def detect(state: Mapping[str, Tensor]) -> bool:
    return any(_LAYER.match(k) for k in state) and any(
        k.endswith("conv.mask_conv.weight") for k in state
    )


def _layer(state: Mapping[str, Tensor], name: str) -> Layer:
    weight = state.get(f"{name}.conv.input_conv.weight")
    if weight is None:
        raise ZooError(f"{LAYOUT}: missing {name}.conv.input_conv.weight")
    mask_conv = state.get(f"{name}.conv.mask_conv.weight")
    # The mask kernel is what makes sum(M) a plain window count; anything else is another layer.
    if mask_conv is not None and (
        tuple(mask_conv.shape) != tuple(weight.shape) or not bool(torch.all(mask_conv == 1))
    ):
        raise ZooError(f"{LAYOUT}: {name}.conv.mask_conv.weight is not an all-ones kernel")
    return Layer(
        weight=weight,
        bias=state.get(f"{name}.conv.input_conv.bias"),
        bn=batch_norm(state, f"{name}.bn.", eps=1e-5),
    )


def parse(state: Mapping[str, Tensor]) -> UpstreamNet:
    prefixes = {m["prefix"] for k in state if (m := _LAYER.match(k))}
    if len(prefixes) != 1:
        raise ZooError(f"{LAYOUT}: no enc_1.conv.input_conv.weight found")
    prefix = prefixes.pop()
    indices: dict[str, list[int]] = {"enc": [], "dec": []}
    for key in state:
        if match := _LAYER.match(key):
            indices[match["kind"]].append(int(match["index"]))
    depth = len(indices["enc"])
    expected = list(range(1, depth + 1))
    if sorted(indices["enc"]) != expected or sorted(indices["dec"]) != expected:
        raise ZooError(f"{LAYOUT}: layers enc{sorted(indices['enc'])} dec{sorted(indices['dec'])}")
    return UpstreamNet(
        layout=LAYOUT,
        encoders=[_layer(state, f"{prefix}enc_{i}") for i in expected],
        decoders=[_layer(state, f"{prefix}dec_{i}") for i in expected],
        ratio="none",
        bias_in_holes=False,
        skip_first=False,
        input_mean=IMAGENET_MEAN,
        input_std=IMAGENET_STD,
        ignored=sorted(k for k in state if k.endswith("mask_conv.weight")),
    )


def notes() -> list[str]:
    return [
        "naoto0804 divides by sum(M) without sum(1): kernels rescaled by 1/(C_in*k*k) (exact)",
        "ImageNet-normalised input and output; encoder has no bias (ours set to 0)",
        "mask_conv (all-ones) kernels dropped",
    ]
