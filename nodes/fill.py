"""Classical fills without a model, free of ComfyUI imports (testable alone).

The quick pre-fill before a diffusion pass, as other inpainting packs offer it:

* ``biharmonic``: the thin-plate fill of :func:`pconv.smooth.smooth_fill` (torch only; the same
  fill the ``smooth`` prior of our models blends with), always available;
* ``telea`` (Telea 2004, fast marching) and ``navier-stokes`` (Bertalmio et al. 2001): OpenCV's
  ``cv2.inpaint``, through :class:`pconv.evaluation.baselines.OpenCVInpaint` (the evaluation's
  baselines, one place for both). OpenCV is not a requirement of the pack (its wheels clash
  with the ``opencv-python`` other packs install), so these two say what is missing when there
  is no ``cv2``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from pconv.errors import MissingDependency, PConvError
from pconv.holes import composite
from pconv.smooth import smooth_fill

#: node choice -> ``cv2`` flag name, or None for the torch fill
METHODS: dict[str, str | None] = {
    "biharmonic": None,
    "telea": "INPAINT_TELEA",
    "navier-stokes": "INPAINT_NS",
}


def fill(image: Tensor, hole: Tensor, method: str) -> Tensor:
    """``image [1,3,H,W]`` (float, [0, 1]) with ``hole [H,W]`` (bool, True = fill) filled.

    Known pixels come back unchanged and nothing of the hole's content is read.
    """
    if method not in METHODS:
        raise PConvError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    flag = METHODS[method]
    if flag is None:
        valid = (~hole).to(image.dtype)[None, None]
        out = smooth_fill(image * valid, valid)
        return composite(image, out, hole[None, None])
    from pconv.evaluation.baselines import OpenCVInpaint

    try:
        inpaint = OpenCVInpaint(method, flag)
    except ImportError:
        raise MissingDependency(
            f"the {method} fill needs OpenCV (cv2), which this Python environment does not "
            "have; install one OpenCV wheel (opencv-python, the one most ComfyUI packs use), "
            "or pick biharmonic, which needs nothing",
        ) from None
    rgb = image[0].permute(1, 2, 0).to("cpu", torch.float32).numpy()
    known = hole.to("cpu").numpy()
    out = inpaint(np.where(known[..., None], 0.0, rgb).astype(np.float32), known)
    result = torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1)[None].to(image.dtype)
    return composite(image, result, hole[None, None])
