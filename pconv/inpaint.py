"""``pconv.inpaint``: fill the holes of images of any size with a PConv U-Net.

Strategy for any image size (a model trained at ``R`` = 256 or 512 pixels):

1. Holes are grouped into *clusters* (connected components on a grid of ``R/32``-pixel cells,
   coarser when there are hundreds of specks), so two small scratches at opposite
   corners of a 4K photo are two small jobs, not one huge one. Clusters whose context crops
   (step 2) overlap are merged as long as the merged crop can still be worked on at the same
   scale (step 3), so many nearby small holes cost a few model runs, not hundreds.
2. Each cluster is inpainted on a *context crop*: its bounding box grown by
   ``max(box side, R/2)`` on every side (clipped to the image), so the model sees about as much
   surrounding picture as it saw in training.
3. The crop is worked on at native resolution when it can be; otherwise it is downscaled so
   the largest single hole's long side is at most ``R`` and the crop has at most ``(2R)^2``
   pixels. Downscaling is hole-aware (normalised area averaging: a small pixel counts as known
   only when every pixel it covers is known), so hole contents never leak in.
4. The crop is reflect-padded to a multiple of ``2^depth`` (the padding keeps the mask it
   reflects), run through the model, composited, upscaled (bicubic) when it was downscaled, and
   only the cluster's hole pixels are pasted back.

Known pixels come back bit-for-bit unchanged, and nothing depends on what the holes held:
hole pixels are set to zero before any of this runs.

That is the ``"crop"`` strategy. ``strategy="subsample"`` is DeepGIN's (Li et al., AIM 2020)
for images larger than the training size ``R``: with ``k = ceil(long side / R)``, the image
(reflect-padded to multiples of ``k``) is cut into the ``k * k`` sub-images of every ``k``-th
pixel (offsets ``(i, j)``), which are completed in batches of four, put back by the reverse
sub-sampling, and the known pixels pasted over the result. Each sub-image sees the whole
picture at about the training size, at the cost of aliasing and of holes only ``1/k`` their
size. The default is the architecture's (:func:`pconv.architectures.default_strategy`).

Beside this module: :mod:`pconv.inputs` turns what the caller gives into tensors and back,
:mod:`pconv.planning` decides the crop strategy's model runs, :mod:`pconv.ensemble` holds the
test-time views, :mod:`pconv.devices` picks the device.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pconv.architectures import (
    check_precision,
    default_strategy,
    input_multiple,
    is_gated,
    training_resolution,
)
from pconv.devices import pick_device
from pconv.ensemble import ViewAverage
from pconv.errors import InputError
from pconv.holes import composite, fit_to_image, nothing_to_fill, refuse_full
from pconv.inputs import MASK_SHAPES, image_to_tensor, mask_to_tensor, tensor_to_kind
from pconv.io import hole_to_valid
from pconv.planning import context, jobs
from pconv.precision import PRECISIONS, autocast_dtype, precision_name
from pconv.smooth import blend, smooth_fill


def _autocast_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return None if dtype == torch.float32 else dtype
    try:
        return autocast_dtype(dtype, device)
    except ValueError:
        raise InputError(
            f"unknown dtype {dtype!r}; choose one of {', '.join(PRECISIONS)}"
        ) from None


def _reflect_pad(x: Tensor, pad_h: int, pad_w: int) -> Tensor:
    if pad_h == 0 and pad_w == 0:
        return x
    mode = "reflect" if pad_h < x.shape[-2] and pad_w < x.shape[-1] else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def _downscale(image: Tensor, valid: Tensor, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Hole-aware area downscale: known only where every covered pixel is known."""
    cover = F.interpolate(valid, size=size, mode="area")
    summed = F.interpolate(image * valid, size=size, mode="area")
    small_valid = (cover > 1 - 1e-4).float()
    small = torch.where(small_valid > 0, summed / cover.clamp(min=1e-6), torch.zeros(()))
    return small, small_valid


def _padded(
    model: nn.Module, image: Tensor, valid: Tensor, device: torch.device
) -> tuple[Tensor, Tensor]:
    """A crop and its mask reflect-padded to the model's multiple, on ``device``."""
    h, w = image.shape[-2:]
    m = input_multiple(model)
    pad_h, pad_w = (-h) % m, (-w) % m
    return _reflect_pad(image, pad_h, pad_w).to(device), _reflect_pad(valid, pad_h, pad_w).to(
        device
    )


def _inference(device: torch.device, amp: torch.dtype | None) -> contextlib.ExitStack:
    """No gradients, and autocast to ``amp`` when one is asked for."""
    stack = contextlib.ExitStack()
    stack.enter_context(torch.no_grad())
    stack.enter_context(
        torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None)
    )
    return stack


def _run_model(
    model: nn.Module, image: Tensor, valid: Tensor, device: torch.device, amp: torch.dtype | None
) -> Tensor:
    """Model on one crop ``[1,3,h,w]`` of any size; returns the composite at that size."""
    h, w = image.shape[-2:]
    x, v = _padded(model, image, valid, device)
    with _inference(device, amp):
        out = model(x, v)
    out = out[..., :h, :w].float().clamp(0, 1).cpu()
    return composite(image, out, ~(valid > 0))


def _run_upscaled(
    model: nn.Module,
    crop: Tensor,
    crop_valid: Tensor,
    size: tuple[int, int],
    device: torch.device,
    amp: torch.dtype | None,
) -> Tensor:
    """The model at ``size``, its composite brought back to the crop's size.

    A gated model's smooth fill needs no particular scale: only its network prediction and
    gate are upscaled, and the fill is computed on the full-size crop, which keeps hole edges
    sharp where the gate leans on the fill.
    """
    ch, cw = crop.shape[-2:]
    small, small_valid = _downscale(crop, crop_valid, size)
    if not is_gated(model):
        filled = _run_model(model, small, small_valid, device, amp)
        return F.interpolate(filled, size=(ch, cw), mode="bicubic", align_corners=False).clamp(0, 1)
    x, v = _padded(model, small, small_valid, device)
    with _inference(device, amp):
        pred, gate = model.predict(x, v)
    pred = F.interpolate(pred[..., : size[0], : size[1]].float(), size=(ch, cw), mode="bicubic")
    gate = F.interpolate(gate[..., : size[0], : size[1]].float(), size=(ch, cw), mode="bilinear")
    fill = smooth_fill(crop.to(device), crop_valid.to(device))  # no_grad of its own
    out = blend(pred, gate, fill).clamp(0, 1).cpu()
    return composite(crop, out, ~(crop_valid > 0))


#: The test-time strategies of :func:`inpaint` (see the module's docstring).
STRATEGIES = ("crop", "subsample")
#: Sub-images completed in one model call by the sub-sampling strategy (bounds the memory).
SUBSAMPLE_BATCH = 4


def subsample_factor(size: tuple[int, int], res: int) -> int:
    """``k``: the smallest step that brings the long side of ``size`` down to ``res``."""
    return max(1, math.ceil(max(size) / res))


def _inpaint_subsampled(
    model: nn.Module, image: Tensor, hole: Tensor, device: torch.device, amp: torch.dtype | None
) -> Tensor:
    """DeepGIN's strategy on one image ``[3,H,W]`` with its hole map ``[H,W]``."""
    h, w = hole.shape
    k = subsample_factor((h, w), training_resolution(model))
    known = torch.where(hole, torch.zeros(()), image)  # holes zeroed: hole-agnostic
    valid = hole_to_valid(hole)[None, None]
    pad_h, pad_w = (-h) % k, (-w) % k
    x, v = _reflect_pad(known[None], pad_h, pad_w), _reflect_pad(valid, pad_h, pad_w)
    offsets = [(i, j) for i in range(k) for j in range(k)]
    subs = torch.cat([x[..., i::k, j::k] for i, j in offsets])
    sub_valid = torch.cat([v[..., i::k, j::k] for i, j in offsets])
    filled = torch.cat(
        [
            _run_model(model, subs[n : n + SUBSAMPLE_BATCH], sub_valid[n : n + SUBSAMPLE_BATCH],
                       device, amp)
            for n in range(0, len(offsets), SUBSAMPLE_BATCH)
        ]
    )  # fmt: skip
    regrouped = torch.empty_like(x)
    for n, (i, j) in enumerate(offsets):
        regrouped[0, :, i::k, j::k] = filled[n]
    return composite(image, regrouped[0, :, :h, :w], hole)


def _inpaint_one(
    model: nn.Module,
    image: Tensor,
    hole: Tensor,
    device: torch.device,
    amp: torch.dtype | None,
    strategy: str = "crop",
) -> Tensor:
    """One image ``[3,H,W]`` with its hole map ``[H,W]``."""
    if strategy == "subsample":
        return _inpaint_subsampled(model, image, hole, device, amp)
    res = training_resolution(model)
    h, w = hole.shape
    result = torch.where(hole, torch.zeros(()), image)  # holes zeroed: hole-agnostic
    for job in jobs(hole, res):
        cy0, cy1, cx0, cx1 = context(job.box, res, h, w)
        crop = result[:, cy0:cy1, cx0:cx1][None]
        crop_valid = hole_to_valid(hole[cy0:cy1, cx0:cx1])[None, None]
        ch, cw = cy1 - cy0, cx1 - cx0
        scale = job.scale(res, h, w)
        if scale < 1.0:
            size = (max(1, round(ch * scale)), max(1, round(cw * scale)))
            filled = _run_upscaled(model, crop, crop_valid, size, device, amp)
        else:
            filled = _run_model(model, crop, crop_valid, device, amp)
        paste = job.region[cy0:cy1, cx0:cx1]
        result[:, cy0:cy1, cx0:cx1] = composite(crop[0], filled[0], paste)
    return result


def inpaint(
    image: object,
    mask: object,
    model: nn.Module,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    resize_mask_to_image: bool = False,
    strategy: str | None = None,
    ensemble: bool = False,
) -> object:
    """Fill the masked region of ``image`` with ``model``.

    Args:
        image: a PIL image, a numpy array ``[H,W,3]``/``[B,H,W,3]`` (uint8, or float in [0,1]),
            or a tensor ``[3,H,W]``/``[B,3,H,W]`` in [0,1]. Float values outside [0, 1] (a
            0..255 float array) and NaN are refused with an :class:`InputError`. A
            transparent image (PIL with an alpha channel or a transparency key, numpy
            ``[...,H,W,4]``) keeps its alpha channel exactly as it was, holes included: only
            the colour is filled, and the result is RGBA (``[...,4]``).
        mask: same size as the image, **white / True / 1 = fill this**; ``[H,W]`` (shared by a
            batch) or ``[B,H,W]``; soft masks are binarised at 0.5. A mask with channels
            (a PIL image of any mode, ``np.asarray(Image.open("mask.png"))`` as ``[H,W,3]`` or
            ``[H,W,4]``, a batch ``[B,H,W,C]``) is read as ``pconv inpaint`` reads mask files
            (:func:`pconv.io.holes_from_pixels`: any channel white, or the alpha of a
            colourless brush layer). An axis of 1 to 4 after the image's height and width is
            channels; ``[B,H,W]`` needs the image's own height and width last.
        model: any registered architecture (:mod:`pconv.architectures`), e.g. from
            :func:`pconv.load_model`.
        device: ``"auto"`` (default: CUDA, MPS, CPU), or any torch device.
        dtype: ``None``/``"fp32"``, ``"bf16"`` or ``"fp16"`` (autocast).
        resize_mask_to_image: resize a mask of another size (nearest) instead of refusing it.
        strategy: ``"crop"`` (context crops around the holes) or ``"subsample"`` (DeepGIN's
            sub-images of every k-th pixel); ``None``: the architecture's default.
        ensemble: average every model run over the five views of DeepGIN's
            ``test_ensemble.py`` (:data:`ENSEMBLE_VIEWS`: transposed, turned and flipped), at
            five times the time; off by default (``benchmarks/ensemble.py`` measures it).

    Returns the same kind of object as ``image``: known pixels unchanged, holes filled. Masks
    follow :mod:`pconv.holes`: an empty mask returns a copy; a mask that covers the whole image
    is an error, and so is one of another size unless ``resize_mask_to_image``.
    """
    images, kind = image_to_tensor(image)
    b, _, h, w = images.shape
    holes = mask_to_tensor(mask, (h, w))
    if strategy is not None and strategy not in STRATEGIES:
        raise InputError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    holes = fit_to_image(holes, (h, w), resize=resize_mask_to_image)
    if holes.shape[0] not in (1, b):
        raise InputError(
            f"{holes.shape[0]} masks for {b} images (give one, or one per image; a mask of "
            f"shape {tuple(np.shape(mask))} is read as {holes.shape[0]} masks, and a mask is "
            f"{MASK_SHAPES})"
        )
    holes = holes.expand(b, h, w)
    refuse_full(holes)
    dev = pick_device(device)
    amp = _autocast_dtype(dtype, dev)
    check_precision(model, precision_name(amp))
    strategy = strategy or default_strategy(model)
    was_training = model.training
    model.eval()
    if next(model.parameters()).device != dev:
        model.to(dev)
    net = ViewAverage(model) if ensemble else model
    try:
        out = torch.stack(
            [
                images[i]
                if nothing_to_fill(holes[i])
                else _inpaint_one(net, images[i], holes[i], dev, amp, strategy)
                for i in range(b)
            ]
        )
    finally:
        model.train(was_training)
    return tensor_to_kind(out, kind)
