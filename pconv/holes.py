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

if TYPE_CHECKING:
    import torch

    ArrayOrTensor = TypeVar("ArrayOrTensor", np.ndarray, torch.Tensor)
else:
    ArrayOrTensor = TypeVar("ArrayOrTensor")


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
