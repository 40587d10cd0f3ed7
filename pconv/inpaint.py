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
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from pconv.architectures import (
    check_precision,
    default_strategy,
    input_multiple,
    is_gated,
    training_resolution,
)
from pconv.errors import DeviceError, InputError
from pconv.holes import binarise, composite, fit_to_image, nothing_to_fill, refuse_full
from pconv.io import hole_to_valid, holes_from_pixels, mask_from_image
from pconv.precision import PRECISIONS, autocast_dtype, precision_name
from pconv.smooth import smooth_fill
from pconv.unet import blend


def available_devices() -> list[str]:
    """The devices this torch can run on here, as ``--device`` spells them: ``cpu``, then
    ``cuda`` (and ``cuda:N`` for each of several GPUs), ``mps``, ``xpu`` where present."""
    found = ["cpu"]
    for kind in ("cuda", "mps", "xpu"):
        if _available(torch.device(kind)):
            count = _count(kind)
            found += [kind, *(f"{kind}:{i}" for i in range(count) if count > 1)]
    return found


def _backend(kind: str) -> object | None:
    """``torch.cuda``, ``torch.backends.mps``, ``torch.xpu`` ...: whatever says if ``kind`` is
    there; None for a kind this torch has no such module for (``meta``, ``vulkan`` ...)."""
    if kind == "mps":
        return getattr(torch.backends, "mps", None)
    return getattr(torch, kind, None)


def _count(kind: str) -> int:
    count = getattr(_backend(kind), "device_count", None)
    return int(count()) if callable(count) else 1


def _available(device: torch.device) -> bool:
    if device.type == "cpu":
        return True
    is_available = getattr(_backend(device.type), "is_available", None)
    try:
        present = callable(is_available) and bool(is_available())
    except Exception:  # a driver that fails to initialise: not usable here
        return False
    return present and (device.index is None or device.index < _count(device.type))


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/``"auto"``: CUDA if present, then Apple MPS, then CPU. Anything else must be a
    device this torch has here, or a :class:`~pconv.errors.DeviceError` lists those it has:
    torch itself would fail later, with a traceback, at the first tensor moved there."""
    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    have = f"this torch ({torch.__version__}) has auto, {', '.join(available_devices())}"
    try:
        chosen = torch.device(device)  # type: ignore[arg-type]
    except (RuntimeError, TypeError, ValueError):
        raise DeviceError(f"unknown device {str(device)!r}; {have}") from None
    if not _available(chosen):
        raise DeviceError(f"device {str(device)!r} is not available here; {have}")
    return chosen


def _autocast_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return None if dtype == torch.float32 else dtype
    try:
        return autocast_dtype(dtype, device)
    except ValueError:
        raise InputError(
            f"unknown dtype {dtype!r}; choose one of {', '.join(PRECISIONS)}"
        ) from None


# -- converting the many accepted input kinds to [B,3,H,W] / [B,H,W] ----------------------------


@dataclass
class _Kind:
    """How the caller gave the image, so the result comes back the same way."""

    kind: str  # "pil", "numpy", "torch"
    batched: bool
    dtype: object = None
    device: torch.device | None = None
    channels_first: bool = True
    #: the input's alpha channel, as it was (PIL: an "L" image; numpy: ``[..., H, W, 1]`` in
    #: the input's dtype), put back on the result untouched, holes included
    alpha: object = None


def _check_unit_range(t: Tensor) -> Tensor:
    """Float images must already be in [0, 1]: a 0..255 float array would otherwise have its
    hole filled at 1.0 and its known pixels returned at 0..255, silently. NaN poisons every
    convolution that sees it, so it is refused too."""
    if bool(torch.isnan(t).any()):
        raise InputError("the float image has NaN values; give values in [0, 1]")
    lo, hi = float(t.min()), float(t.max())
    if lo < 0.0 or hi > 1.0:
        hint = " (divide by 255, or pass uint8)" if hi > 1.0 and hi <= 255.0 else ""
        raise InputError(f"float image values must be in [0, 1], found {lo:g}..{hi:g}{hint}")
    return t


def _alpha(image: Image.Image) -> Image.Image | None:
    """A PIL image's transparency as an "L" band (an alpha channel, or a palette's or a
    colour key's transparency); None for an opaque mode."""
    if "A" in image.getbands():
        return image.getchannel("A")
    if "transparency" in image.info:
        return image.convert("RGBA").getchannel("A")
    return None


def _image_to_tensor(image: object) -> tuple[Tensor, _Kind]:
    if isinstance(image, Image.Image):
        arr = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        return torch.from_numpy(arr).permute(2, 0, 1)[None], _Kind(
            "pil", False, alpha=_alpha(image)
        )
    if isinstance(image, np.ndarray):
        arr = image
        batched = arr.ndim == 4
        if arr.ndim == 2:
            arr = arr[..., None]
        if arr.ndim not in (3, 4) or arr.shape[-1] not in (1, 3, 4):
            raise InputError(f"image array must be [H,W,3] or [B,H,W,3], got {image.shape}")
        alpha = arr[..., 3:].copy() if arr.shape[-1] == 4 else None
        kind = _Kind("numpy", batched, dtype=arr.dtype, alpha=alpha)
        if arr.dtype == np.uint8:
            arr = arr.astype(np.float32) / 255.0
        elif arr.dtype == np.uint16:
            arr = arr.astype(np.float32) / 65535.0
        arr = np.asarray(arr, dtype=np.float32)
        if arr.shape[-1] == 1:
            arr = np.repeat(arr, 3, axis=-1)
        t = _check_unit_range(torch.from_numpy(np.ascontiguousarray(arr[..., :3])))
        t = t.permute(0, 3, 1, 2) if batched else t.permute(2, 0, 1)[None]
        return t, kind
    if isinstance(image, Tensor):
        if image.dim() not in (3, 4) or image.shape[-3] != 3:
            raise InputError(f"image tensor must be [3,H,W] or [B,3,H,W], got {tuple(image.shape)}")
        kind = _Kind("torch", image.dim() == 4, dtype=image.dtype, device=image.device)
        t = image if image.dim() == 4 else image[None]
        if not t.is_floating_point():
            t = t.float() / 255.0
        return _check_unit_range(t.detach().to("cpu", torch.float32)), kind
    raise InputError(f"unsupported image type {type(image).__name__}")


#: The mask shapes :func:`inpaint` reads, for the message that refuses any other.
MASK_SHAPES = (
    "[H,W], [H,W,C] (C = 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA: read as mask files are), "
    "a batch [B,H,W], [B,1,H,W] or [B,H,W,C]"
)


def _channels_last(shape: tuple[int, ...], size: tuple[int, int]) -> bool:
    """Whether a 3- or 4-axis mask holds channels on its last axis (``[H,W,C]``,
    ``[B,H,W,C]``) rather than being a batch ``[B,H,W]``: its middle axes are the image's
    size, or its last two are not (an RGB mask of another size, with ``resize_mask_to_image``).
    An ``[H,W,C]`` that is also a plausible ``[B,H,W]`` (an image 3 pixels wide) counts as
    channels."""
    if len(shape) not in (3, 4) or not 1 <= shape[-1] <= 4:
        return False
    return tuple(shape[-3:-1]) == size or tuple(shape[-2:]) != size


def _mask_to_tensor(mask: object, size: tuple[int, int]) -> Tensor:
    """Any mask (True/1/white = fill) -> bool ``[B,H,W]``, binarised at 0.5; ``size`` is the
    image's ``(H, W)``, which tells an RGB mask ``[H,W,3]`` from a batch of masks."""
    if isinstance(mask, Image.Image):
        return torch.from_numpy(mask_from_image(mask))[None]
    if isinstance(mask, np.ndarray):
        arr = mask
        if arr.dtype == np.uint8:
            arr = arr.astype(np.float32) / 255.0
        elif arr.dtype == np.uint16:
            arr = arr.astype(np.float32) / 65535.0
        arr = np.asarray(arr, dtype=np.float32)
    elif isinstance(mask, Tensor):
        arr = mask.detach().to("cpu", torch.float32).numpy()
    else:
        raise InputError(f"unsupported mask type {type(mask).__name__}")
    if _channels_last(arr.shape, size):
        holes = holes_from_pixels(arr)
        return torch.from_numpy(holes if holes.ndim == 3 else holes[None])
    if arr.ndim == 4 and arr.shape[1] == 1:  # [B,1,H,W]
        arr = arr[:, 0]
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise InputError(f"a mask must be {MASK_SHAPES}; got shape {tuple(arr.shape)}")
    return torch.from_numpy(binarise(arr))


def _tensor_to_kind(t: Tensor, kind: _Kind) -> object:
    if kind.kind == "torch":
        out = t if kind.batched else t[0]
        if not kind.dtype.is_floating_point:  # type: ignore[union-attr]
            out = torch.round(out * 255.0).to(kind.dtype)
        else:
            out = out.to(kind.dtype)
        return out.to(kind.device)
    arr = t.permute(0, 2, 3, 1).numpy()
    if kind.kind == "pil":
        result = Image.fromarray(np.rint(arr[0] * 255.0).astype(np.uint8))
        if kind.alpha is not None:
            result.putalpha(kind.alpha)  # type: ignore[arg-type]
        return result
    if kind.dtype == np.uint8:
        arr = np.rint(arr * 255.0).astype(np.uint8)
    elif kind.dtype == np.uint16:
        arr = np.rint(arr * 65535.0).astype(np.uint16)
    arr = arr if kind.batched else arr[0]
    if kind.alpha is not None:
        arr = np.concatenate([arr.astype(kind.dtype, copy=False), kind.alpha], axis=-1)  # type: ignore[list-item]
    return arr


# -- the per-image strategy -----------------------------------------------------------------------


def _clusters(hole: Tensor, cell: int) -> list[Tensor]:
    """Split a hole map ``[H,W]`` into groups of holes near each other; bool maps per group."""
    h, w = hole.shape
    grid = F.max_pool2d(hole[None, None].float(), cell, cell, ceil_mode=True)[0, 0] > 0
    occupied = {(int(i), int(j)) for i, j in torch.nonzero(grid).tolist()}
    labels = torch.full(grid.shape, -1, dtype=torch.long)
    groups = 0
    for start in sorted(occupied):
        if labels[start] >= 0:
            continue
        stack = [start]
        labels[start] = groups
        while stack:  # flood fill, 8-connected
            i, j = stack.pop()
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    n = (i + di, j + dj)
                    if n in occupied and labels[n] < 0:
                        labels[n] = groups
                        stack.append(n)
        groups += 1
    if groups == 1:
        return [hole]
    pixel_labels = labels.repeat_interleave(cell, 0)[:h].repeat_interleave(cell, 1)[:, :w]
    return [hole & (pixel_labels == g) for g in range(groups)]


def _bbox(region: Tensor) -> tuple[int, int, int, int]:
    rows = torch.nonzero(region.any(dim=1))
    cols = torch.nonzero(region.any(dim=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


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


Box = tuple[int, int, int, int]  # y0, y1, x0, x1


def _context(box: Box, res: int, h: int, w: int) -> Box:
    """The crop the model sees around a hole box: grown by max(box side, res/2), clipped."""
    y0, y1, x0, x1 = box
    grow = max(y1 - y0, x1 - x0, res // 2)
    return max(0, y0 - grow), min(h, y1 + grow), max(0, x0 - grow), min(w, x1 + grow)


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]


@dataclass
class _Job:
    """Holes filled by one model run: their map, their box, and their largest single extent."""

    region: Tensor
    box: Box
    extent: int  # longest side of the largest member cluster: sets the working scale

    def scale(self, res: int, h: int, w: int) -> float:
        """Native resolution unless a hole is larger than ``res`` or the crop over budget."""
        cy0, cy1, cx0, cx1 = _context(self.box, res, h, w)
        budget = math.sqrt((2 * res) ** 2 / ((cy1 - cy0) * (cx1 - cx0)))
        return min(1.0, res / self.extent, budget)

    def merged(self, other: _Job) -> _Job:
        a, b = self.box, other.box
        box = (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))
        return _Job(self.region | other.region, box, max(self.extent, other.extent))


def _jobs(hole: Tensor, res: int) -> list[_Job]:
    """Hole clusters to fill; clusters whose crops overlap are merged while that is free.

    Merging bounds the work (many small holes close together become one model run instead of
    one each on overlapping crops), but never at the price of a smaller working scale.
    """
    h, w = hole.shape
    # Fine cells, so a cluster's extent is close to one hole's size; coarser only when there
    # are so many specks that merging them pairwise would cost more than it saves.
    cell = max(4, res // 32)
    regions = _clusters(hole, cell)
    while len(regions) > 256:
        cell *= 2
        regions = _clusters(hole, cell)
    jobs = []
    for region in regions:
        y0, y1, x0, x1 = _bbox(region)
        jobs.append(_Job(region, (y0, y1, x0, x1), max(y1 - y0, x1 - x0)))
    changed = True
    while changed:
        changed = False
        i = 0
        while i < len(jobs):
            j = i + 1
            while j < len(jobs):
                a, b = jobs[i], jobs[j]
                if _overlap(_context(a.box, res, h, w), _context(b.box, res, h, w)):
                    union = a.merged(b)
                    if union.scale(res, h, w) >= min(a.scale(res, h, w), b.scale(res, h, w)):
                        jobs[i] = union
                        del jobs[j]
                        changed = True
                        continue
                j += 1
            i += 1
    return jobs


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
    for job in _jobs(hole, res):
        cy0, cy1, cx0, cx1 = _context(job.box, res, h, w)
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


#: ``inpaint(ensemble=True)``'s views of the photo, as DeepGIN's ``test_ensemble.py`` (rlct1/gin)
#: takes them: its loops read each sub-image in transposed (``[j, i]``), then it runs that turned
#: by 0, 90, 180 and 270 degrees counter-clockwise, and flipped left-right. Each is
#: ``(transpose, quarter turns, flip)``, applied in that order.
ENSEMBLE_VIEWS = ((True, 0, False), (True, 1, False), (True, 2, False), (True, 3, False),
                  (True, 0, True))  # fmt: skip


class ViewAverage(nn.Module):
    """``module`` on each of :data:`ENSEMBLE_VIEWS` of its input, every result turned back and
    averaged (each clamped to [0, 1] first, as the release saves each as an image). Any
    architecture: :func:`pconv.architectures.unwrap` finds the model in ``.module``."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    @staticmethod
    def _turn(x: Tensor, view: tuple[bool, int, bool], back: bool = False) -> Tensor:
        transpose, turns, flip = view
        if not back:
            x = x.transpose(-2, -1) if transpose else x
            x = torch.rot90(x, turns, dims=(-2, -1))
            return x.flip(-1) if flip else x
        x = x.flip(-1) if flip else x
        x = torch.rot90(x, -turns, dims=(-2, -1))
        return x.transpose(-2, -1) if transpose else x

    def forward(self, image: Tensor, valid: Tensor) -> Tensor:
        outs = [
            self._turn(self.module(self._turn(image, v), self._turn(valid, v)), v, True).clamp(0, 1)
            for v in ENSEMBLE_VIEWS
        ]
        return torch.stack(outs).mean(0)

    def predict(self, image: Tensor, valid: Tensor) -> tuple[Tensor, Tensor | None]:
        preds, gates = [], []
        for v in ENSEMBLE_VIEWS:
            pred, gate = self.module.predict(self._turn(image, v), self._turn(valid, v))
            preds.append(self._turn(pred, v, True))
            gates.append(None if gate is None else self._turn(gate, v, True))
        gate = None if gates[0] is None else torch.stack(gates).mean(0)
        return torch.stack(preds).mean(0), gate


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
    images, kind = _image_to_tensor(image)
    b, _, h, w = images.shape
    holes = _mask_to_tensor(mask, (h, w))
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
    return _tensor_to_kind(out, kind)
