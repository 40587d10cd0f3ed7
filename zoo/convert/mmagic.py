"""OpenMMLab mmediting / mmagic PConv (``PConvInpaintor`` with ``PConvEncoderDecoder``).

Layout of the published ``pconv_256x256_stage2_4x2_{places,celeba}_20200619-*.pth`` files
(mmcv checkpoint: ``{"meta": {...}, "state_dict": {...}}``, optimizer removed by publish_model):

* ``generator.encoder.enc{i}.conv.weight`` for i = 1..7 (``num_layers=7``), kernels 7,5,5,3,3,3,3,
  stride 2, widths 64,128,256,512,512,512,512; ``enc1.conv.bias`` only (mmcv's ``bias='auto'``:
  a bias where there is no norm layer); ``enc{i}.bn.{weight,bias,running_mean,running_var,
  num_batches_tracked}`` for i >= 2 (SyncBN, named ``bn`` by mmcv; eps 1e-5);
* ``generator.decoder.dec{i}.conv.weight`` for i = 1..7, 3x3 stride 1, ``dec1.conv.bias`` only,
  ``dec{i}.bn.*`` for i >= 2; LeakyReLU(0.2) after dec2..dec7, nothing after dec1;
* ``*.conv.weight_mask_updater``: the all-ones ``[C_out, C_in, k, k]`` buffer of the multi-channel
  partial convolution (a buffer, not a weight);
* possibly ``loss_*`` modules' weights (e.g. the perceptual loss' VGG) which are ignored.

Semantics (``mmagic/models/editors/pconv``): NVIDIA's multi-channel layer,
``out = (W^T(X*M)) * C_in*k*k / (sum(M) + 1e-8) * clamp(sum(M), 0, 1) + b*clamp(sum(M), 0, 1)``;
decoders upsample (nearest) and concatenate ``[upsampled, skip]`` features and masks; the input is
normalised to [-1, 1] (mean = std = 127.5 on 0..255) and the generator's mask is ``1 - hole``
repeated to 3 channels (the inpaintor's API mask is 1 = hole); the output is in [-1, 1] space with
no activation. The eps changes the ratio by a relative 1e-8 / sum(M) at most: the conversion is
exact to float precision.

Channel order: **BGR**. The images are read with ``LoadImageFromFile`` (OpenCV,
``channel_order='bgr'`` by default; mmediting 0.x configs normalise with ``to_rgb=False``), the
``DataPreprocessor`` of the PConv configs sets no ``output_channel_order`` and so converts
nothing, and the 0.x demo flips the result with ``[..., ::-1]`` before saving. The converted model
takes RGB like every other model: enc1's input channels, dec1's image-skip input channels and
dec1's outputs are reversed (``common._to_rgb``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from torch import Tensor

from ..registry import ZooError
from .common import Layer, UpstreamNet, batch_norm

LAYOUT = "mmagic"
NESTINGS = ("state_dict",)
_LAYER = re.compile(
    r"^(?P<prefix>(?:module\.)?(?:generator\.)?)(?P<part>encoder|decoder)\."
    r"(?P<kind>enc|dec)(?P<index>\d+)\.conv\.weight$"
)


def detect(state: Mapping[str, Tensor]) -> bool:
    """mmagic's names: ``...encoder.enc1.conv.weight`` plus ``weight_mask_updater`` buffers."""
    return any(_LAYER.match(k) for k in state) and any(
        k.endswith("conv.weight_mask_updater") for k in state
    )


def _prefix(state: Mapping[str, Tensor]) -> str:
    for key in state:
        match = _LAYER.match(key)
        if match and match["kind"] == "enc" and match["index"] == "1":
            return match["prefix"]
    raise ZooError(f"{LAYOUT}: no encoder.enc1.conv.weight found")


def _layer(state: Mapping[str, Tensor], name: str) -> Layer:
    weight = state.get(f"{name}.conv.weight")
    if weight is None:
        raise ZooError(f"{LAYOUT}: missing {name}.conv.weight")
    updater = state.get(f"{name}.conv.weight_mask_updater")
    # multi_channel=False would store a [1,1,k,k] updater; the U-Net's channel-wise mask
    # concatenation only works with the multi-channel layer, which is what was published.
    if updater is not None and tuple(updater.shape) != tuple(weight.shape):
        raise ZooError(f"{LAYOUT}: {name} is not a multi-channel partial convolution")
    return Layer(
        weight=weight,
        bias=state.get(f"{name}.conv.bias"),
        bn=batch_norm(state, f"{name}.bn.", eps=1e-5),
    )


def parse(state: Mapping[str, Tensor]) -> UpstreamNet:
    prefix = _prefix(state)
    indices: dict[str, list[int]] = {"enc": [], "dec": []}
    for key in state:
        match = _LAYER.match(key)
        if match and match["prefix"] == prefix:
            indices[match["kind"]].append(int(match["index"]))
    depth = len(indices["enc"])
    if sorted(indices["enc"]) != list(range(1, depth + 1)) or sorted(indices["dec"]) != list(
        range(1, depth + 1)
    ):
        raise ZooError(f"{LAYOUT}: layers enc{sorted(indices['enc'])} dec{sorted(indices['dec'])}")
    encoders = [_layer(state, f"{prefix}encoder.enc{i}") for i in range(1, depth + 1)]
    decoders = [_layer(state, f"{prefix}decoder.dec{i}") for i in range(1, depth + 1)]
    used_prefixes = (f"{prefix}encoder.", f"{prefix}decoder.")
    ignored = sorted(
        k for k in state if not k.startswith(used_prefixes) or k.endswith("weight_mask_updater")
    )
    return UpstreamNet(
        layout=LAYOUT,
        encoders=encoders,
        decoders=decoders,
        ratio="window",
        bias_in_holes=False,
        skip_first=False,
        input_mean=(0.5, 0.5, 0.5),  # (x*255 - 127.5) / 127.5 == (x - 0.5) / 0.5
        input_std=(0.5, 0.5, 0.5),
        channel_order="bgr",
        ignored=ignored,
    )


def notes() -> list[str]:
    return [
        "mmagic multi-channel partial convolution: same formula as ours (eps 1e-8 dropped)",
        "input [-1,1] (mean=std=0.5 on [0,1]); generator mask 1 = valid; output [-1,1], mapped "
        "back to [0,1] by the config",
        "weight_mask_updater buffers and loss-module weights dropped",
        "trained on BGR images: enc1's input, dec1's image-skip input and dec1's output "
        "channels reversed, so the converted model takes and returns RGB (exact)",
    ]
