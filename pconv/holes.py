"""The region to fill, from the user's mask to the pasted result: one policy, one composite.

Every front end (``pconv inpaint``, :func:`pconv.inpaint`, the ComfyUI nodes, the demo) and the
evaluation go through here, so a mask means the same thing everywhere:

* **white / True / 1 = fill**; soft masks are binarised at :data:`pconv.io.MASK_THRESHOLD`
  (0.5: a pixel is a hole where it is at least half white);
* an **empty** mask asks for nothing: the input comes back unchanged, as a copy;
* a mask covering **everything** leaves nothing to fill from: an error that says so;
* a mask of **another size** is an error unless the caller asks for it to be resized
  (nearest neighbour).

:func:`composite` puts known pixels back bit for bit: whatever a model does outside the hole
never reaches the output.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import numpy as np

from pconv.errors import InputError
from pconv.io import MASK_THRESHOLD, resize_mask

if TYPE_CHECKING:
    import torch

    ArrayOrTensor = TypeVar("ArrayOrTensor", np.ndarray, torch.Tensor)
else:
    ArrayOrTensor = TypeVar("ArrayOrTensor")

#: Why a mask that covers everything is refused, after what names the mask.
FULL = "covers the whole image: there is nothing to fill it from"
#: The argument that lets a mask of another size through (front ends map it to their flag).
RESIZE_FIX = "resize_mask_to_image=True"


def binarise(mask: ArrayOrTensor, threshold: float = MASK_THRESHOLD) -> ArrayOrTensor:
    """Soft mask values in [0, 1] -> bool holes: a pixel is a hole where it is >= ``threshold``."""
    return mask >= threshold


def nothing_to_fill(hole: ArrayOrTensor) -> bool:
    """An empty mask: the caller returns (or writes) a copy of the input, without a model."""
    return not bool(hole.any())


def fills_everything(hole: ArrayOrTensor) -> bool:
    """A mask with no known pixel left: nothing to fill the hole from."""
    return bool(hole.all())


def refuse_full(holes: ArrayOrTensor, what: str = "the mask") -> None:
    """:class:`InputError` if any mask of ``holes`` (``[H,W]`` or a batch ``[B,H,W]``) covers
    its whole image; ``what`` names the mask in the message."""
    batch = holes if holes.ndim == 3 else holes[None]
    if any(fills_everything(h) for h in batch):
        raise InputError(f"{what} {FULL}")


def fit_to_image(holes: ArrayOrTensor, size: tuple[int, int], *, resize: bool) -> ArrayOrTensor:
    """Bool holes ``[H,W]`` or ``[B,H,W]`` at the image's ``size = (height, width)``: as they
    are if they fit, resized (nearest neighbour) if ``resize``, else an :class:`InputError`
    whose ``fix`` is :data:`RESIZE_FIX`."""
    mh, mw = holes.shape[-2:]
    h, w = size
    if (mh, mw) == (h, w):
        return holes
    if not resize:
        raise InputError(f"mask is {mw}x{mh} but the image is {w}x{h}", fix=RESIZE_FIX)
    if isinstance(holes, np.ndarray):
        batch = holes if holes.ndim == 3 else holes[None]
        out = np.stack([resize_mask(m, (w, h)) for m in batch])
        return out if holes.ndim == 3 else out[0]
    import torch

    batch = holes if holes.ndim == 3 else holes[None]
    out = torch.stack([torch.from_numpy(resize_mask(m.numpy(), (w, h))) for m in batch])
    return out if holes.ndim == 3 else out[0]


def composite(known: ArrayOrTensor, filled: ArrayOrTensor, hole: ArrayOrTensor) -> ArrayOrTensor:
    """``known`` where ``hole`` is False/0 (bit for bit), ``filled`` where it is True/1.

    ``hole`` must broadcast against the images (``[H,W,1]`` for channels-last arrays,
    ``[B,1,H,W]`` or ``[H,W]`` for channels-first tensors). A float ``hole`` in between 0 and 1
    (a feathered seam) blends ``known + (filled - known) * hole``; 0 still keeps ``known``
    exactly and 1 takes ``filled`` exactly. numpy arrays or torch tensors, not mixed.
    """
    if isinstance(known, np.ndarray):
        hole_arr = np.asarray(hole)
        if hole_arr.dtype == bool:
            return np.where(hole_arr, filled, known)
        a = hole_arr.astype(known.dtype, copy=False)
        blended = known + (filled - known) * a
        return np.where(a >= 1, filled, np.where(a > 0, blended, known))
    import torch

    if hole.dtype == torch.bool:  # type: ignore[union-attr]
        return torch.where(hole, filled, known)  # type: ignore[arg-type]
    a = hole.to(known.dtype)  # type: ignore[union-attr]
    blended = known + (filled - known) * a
    return torch.where(a >= 1, filled, torch.where(a > 0, blended, known))  # type: ignore[arg-type]
