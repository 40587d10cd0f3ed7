"""The pack's tensor work, free of ComfyUI imports (so it is testable on its own).

ComfyUI's conventions meet pconv's here:

* ComfyUI IMAGE is ``float32 [B, H, W, C]`` in [0, 1]; pconv's core takes ``[B, 3, H, W]``.
* ComfyUI MASK is ``float32 [B, H, W]`` (or ``[H, W]``) with **1 = the region to change**. That is
  pconv's user-facing convention too (white / 1 = fill); the network's own convention (1 = valid
  pixel) is the opposite, and the single conversion between the two happens inside
  :func:`pconv.inpaint`. Nothing in this pack inverts a mask.
* Soft masks are binarised: a pixel is changed where ``mask >= threshold`` (0.5 by default, the
  same level as :data:`pconv.io.MASK_THRESHOLD`).
* A mask of another size than the image is binarised first, then stretched to the image size
  with nearest-neighbour sampling (as ``pconv inpaint --resize-mask`` does). A mask with nothing
  above the threshold means "change nothing", whatever its size: ComfyUI's LoadImage gives a
  64x64 all-zero mask for an image without alpha, and that returns the image unchanged.
* Batches: one mask for all images, one image for all masks (one result per mask), or as many
  masks as images (paired in order). Other combinations are an error that says so.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

import pconv.holes as policy
from pconv.errors import InputError
from pconv.io import MASK_THRESHOLD

DEFAULT_THRESHOLD = MASK_THRESHOLD
MAX_GROW = 256


def batch_plan(images: int, masks: int) -> list[tuple[int, int]]:
    """Which image goes with which mask: a list of ``(image index, mask index)``."""
    if images < 1 or masks < 1:
        raise InputError(f"empty batch: {images} image(s) and {masks} mask(s)")
    if masks == 1:
        return [(i, 0) for i in range(images)]
    if images == 1:
        return [(0, m) for m in range(masks)]
    if images == masks:
        return [(i, i) for i in range(images)]
    raise InputError(
        f"{images} images and {masks} masks: give one mask for all images, one image for all "
        "masks, or as many masks as images"
    )


def as_mask_batch(mask: Tensor) -> Tensor:
    """A ComfyUI MASK (``[H,W]``, ``[B,H,W]``, ``[B,1,H,W]`` or ``[B,H,W,1]``) -> ``[B,H,W]``."""
    if mask.dim() == 2:
        mask = mask[None]
    elif mask.dim() == 4 and mask.shape[1] == 1:
        mask = mask[:, 0]
    elif mask.dim() == 4 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if mask.dim() != 3:
        raise InputError(f"a mask must be [H,W] or [B,H,W]; got shape {tuple(mask.shape)}")
    return mask


def binarise(mask: Tensor, size: tuple[int, int], threshold: float = DEFAULT_THRESHOLD) -> Tensor:
    """Soft ``[B,h,w]`` mask -> bool ``[B,H,W]`` at the image's ``size = (H, W)``.

    Thresholded first (``>= threshold`` is a hole), then stretched with nearest-neighbour when
    the sizes differ. An empty mask stays empty at any size.
    """
    if not 0.0 < threshold <= 1.0:
        raise InputError(f"threshold must be in (0, 1], got {threshold}")
    holes = policy.binarise(mask.detach().to("cpu", torch.float32), threshold)
    if tuple(holes.shape[-2:]) != tuple(size):
        if policy.nothing_to_fill(holes):
            return torch.zeros((holes.shape[0], *size), dtype=torch.bool)
        holes = F.interpolate(holes[:, None].float(), size=size, mode="nearest-exact")[:, 0] > 0.5
    return holes


def _dilate(x: Tensor, step: int) -> Tensor:
    """One pixel of growth; cross and square neighbourhoods alternate (an octagon, near a disc)."""
    if step % 2:
        return torch.maximum(
            F.max_pool2d(x, (1, 3), stride=1, padding=(0, 1)),
            F.max_pool2d(x, (3, 1), stride=1, padding=(1, 0)),
        )
    return F.max_pool2d(x, 3, stride=1, padding=1)


def grow_and_feather(holes: Tensor, grow: int = 0, feather: int = 0) -> tuple[Tensor, Tensor]:
    """Grow bool holes ``[B,H,W]`` by ``grow`` pixels; blend weights for the seam.

    Returns ``(grown, alpha)``: ``grown`` is what the model fills; ``alpha`` (float ``[B,H,W]``)
    is how much of the filled result replaces the original: 1 on the mask itself and on the
    inner part of the grown band, falling linearly to ``1/(feather+1)`` over the band's outer
    ``feather`` pixels, 0 outside the grown mask. ``feather`` is capped at ``grow``: it only
    softens the band that ``grow`` added, so the masked region itself is always replaced
    entirely and nothing outside the grown mask ever changes.
    """
    grow = max(0, int(grow))
    feather = max(0, min(int(feather), grow))
    if grow > MAX_GROW:
        raise InputError(f"grow is at most {MAX_GROW} pixels, got {grow}")
    x = holes[:, None].float()
    alpha = x.clone()
    for step in range(1, grow + 1):
        x = _dilate(x, step)
        weight = 1.0 if step <= grow - feather else (grow - step + 1) / (feather + 1)
        alpha = torch.maximum(alpha, x * weight)
    return x[:, 0] > 0, alpha[:, 0]


def to_model_layout(image: Tensor) -> Tensor:
    """One ComfyUI image ``[H,W,C]`` (C = 1, 3 or 4) -> RGB ``[1,3,H,W]`` float32 on the CPU."""
    channels = image.shape[-1]
    if image.dim() != 3 or channels not in (1, 3, 4):
        raise InputError(f"an image must be [H,W,C] with 1, 3 or 4 channels; got {image.shape}")
    rgb = image[..., :3] if channels >= 3 else image.expand(*image.shape[:2], 3)
    return rgb.detach().to("cpu", torch.float32).permute(2, 0, 1)[None].contiguous()


def from_model_layout(result: Tensor, like: Tensor) -> Tensor:
    """Back from ``[1,3,H,W]`` to ``like``'s ``[H,W,C]``: alpha kept, grey averaged."""
    rgb = result[0].permute(1, 2, 0).to(like.dtype)
    channels = like.shape[-1]
    if channels == 3:
        return rgb
    if channels == 4:
        return torch.cat([rgb, like[..., 3:].to("cpu")], dim=-1)
    return rgb.mean(dim=-1, keepdim=True)


def overlay(image: Tensor, alpha: Tensor, colour: tuple[float, float, float]) -> Tensor:
    """``[H,W,C]`` image with ``alpha`` (``[H,W]``) shown as a half-transparent colour."""
    rgb = image[..., :3] if image.shape[-1] >= 3 else image[..., :1].expand(*image.shape[:2], 3)
    tint = torch.tensor(colour, dtype=rgb.dtype)
    a = (alpha * 0.6)[..., None].to(rgb.dtype)
    return rgb * (1 - a) + tint * a


def prepare(
    images: Tensor, mask: Tensor, threshold: float, grow: int, feather: int
) -> tuple[list[tuple[int, int]], Tensor, Tensor, bool]:
    """Everything the nodes do to a mask before the model runs.

    ``images`` is a ComfyUI IMAGE ``[B,H,W,C]``. Returns ``(plan, holes, alpha, stretched)``: the
    batch pairing of :func:`batch_plan`, the grown bool holes and the blend weights of
    :func:`grow_and_feather` (both ``[masks,H,W]``, at the image size), and whether the mask had
    to be stretched to fit the image.
    """
    if images.dim() != 4:
        raise InputError(f"an IMAGE must be [B,H,W,C]; got shape {tuple(images.shape)}")
    masks = as_mask_batch(mask)
    plan = batch_plan(images.shape[0], masks.shape[0])
    size = (images.shape[1], images.shape[2])
    holes = binarise(masks, size, threshold)
    stretched = tuple(masks.shape[-2:]) != size and bool(holes.any())
    grown, alpha = grow_and_feather(holes, grow, feather)
    return plan, grown, alpha, stretched
