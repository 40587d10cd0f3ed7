"""What :func:`pconv.inpaint` accepts, turned into the tensors the strategies work on and back.

Images: PIL, numpy ``[H,W,C]``/``[B,H,W,C]`` (uint8, uint16, float in [0, 1]) or torch
``[3,H,W]``/``[B,3,H,W]`` become float32 ``[B,3,H,W]`` on the CPU, with a :class:`Kind` saying
how to give the result back (the same type, dtype, device and batching, and the input's alpha
channel untouched). Masks of any of those kinds (white / True / 1 = fill) become bool
``[B,H,W]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from pconv.errors import InputError
from pconv.holes import binarise
from pconv.io import holes_from_pixels, mask_from_image


@dataclass
class Kind:
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


def image_to_tensor(image: object) -> tuple[Tensor, Kind]:
    if isinstance(image, Image.Image):
        arr = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        return torch.from_numpy(arr).permute(2, 0, 1)[None], Kind("pil", False, alpha=_alpha(image))
    if isinstance(image, np.ndarray):
        arr = image
        batched = arr.ndim == 4
        if arr.ndim == 2:
            arr = arr[..., None]
        if arr.ndim not in (3, 4) or arr.shape[-1] not in (1, 3, 4):
            raise InputError(f"image array must be [H,W,3] or [B,H,W,3], got {image.shape}")
        alpha = arr[..., 3:].copy() if arr.shape[-1] == 4 else None
        kind = Kind("numpy", batched, dtype=arr.dtype, alpha=alpha)
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
        kind = Kind("torch", image.dim() == 4, dtype=image.dtype, device=image.device)
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
    size, or its last two are not (an RGB mask of another size, with ``resize_mask``).
    An ``[H,W,C]`` that is also a plausible ``[B,H,W]`` (an image 3 pixels wide) counts as
    channels."""
    if len(shape) not in (3, 4) or not 1 <= shape[-1] <= 4:
        return False
    return tuple(shape[-3:-1]) == size or tuple(shape[-2:]) != size


def mask_to_tensor(mask: object, size: tuple[int, int]) -> Tensor:
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


def tensor_to_kind(t: Tensor, kind: Kind) -> object:
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
