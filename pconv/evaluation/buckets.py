"""Hole-ratio buckets and the border / no-border split of the paper's Table 1.

Liu et al. (2018) report every metric per hole-ratio bucket (0.01,0.1], (0.1,0.2], ...,
(0.5,0.6], and separately for masks whose holes touch the image border ("B") and masks
whose holes stay at least 50 px away from it at 512x512 ("N").

Two ways to classify a mask are offered:

* ``pixels`` (the default): computed from the mask itself, so it works for any mask folder.
  The ratio is the fraction of hole pixels; a mask is *border* when any hole pixel lies
  within ``50 * side / 512`` px of an edge (rows/columns ``0 .. margin-1`` from any side).
* ``nvidia-id``: the file-name layout of NVIDIA's irregular test-mask set, where the integer
  file id ``i`` gives bucket ``i // 2000`` and border ``(i % 2000) >= 1000``.

Both agree on every mask of the NVIDIA set at its native 512 px (``tests/test_eval.py``
checks this), which is why the pixel rule is evaluated on the mask at its own resolution
(after the square centre-crop) rather than after resizing to the evaluation size: resizing
moves a few masks that sit right on a bucket edge (4 of the 600 dev masks at 256 px).

The ratio, bucket, margin and id maths are :mod:`pconv.masks.core`'s; this module only
classifies masks for the tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from pconv.errors import InputError
from pconv.masks.core import (
    BUCKETS,
    border_margin,
    bucket_of,
    hole_ratio,
    nvidia_id_info,
    touches_border,
)
from pconv.masks.core import (
    bucket_label as masks_bucket_label,
)

N_BUCKETS = len(BUCKETS)
RULES = ("pixels", "nvidia-id")


#: Compact label of bucket ``index`` for table headers; -1 (outside the paper's range) is
#: "other". :func:`pconv.masks.core.bucket_label` is the one labeller; tables use its compact form.
bucket_label = partial(masks_bucket_label, compact=True)


@dataclass(frozen=True)
class MaskClass:
    """Where a mask falls in Table 1."""

    ratio: float  # hole fraction used for the bucket
    bucket: int  # 0..5, or -1 outside (0.01, 0.6]
    border: bool

    @property
    def label(self) -> str:
        return bucket_label(self.bucket)


def classify_pixels(hole: np.ndarray) -> MaskClass:
    """Classify a (square) mask from its pixels."""
    ratio = hole_ratio(hole)
    bucket = bucket_of(ratio)
    border = touches_border(hole, border_margin(hole.shape))
    return MaskClass(ratio, -1 if bucket is None else bucket, border)


def classify_nvidia_id(path: Path, hole: np.ndarray) -> MaskClass:
    """Classify by the NVIDIA file-id layout; the ratio is still measured from the pixels."""
    try:
        ident = int(Path(path).stem)
    except ValueError:
        raise InputError(
            "the nvidia-id mask rule needs integer file names like 01234.png", path=path
        ) from None
    bucket, border = nvidia_id_info(ident)
    if not 0 <= bucket < N_BUCKETS:
        raise InputError(f"id {ident} is outside the NVIDIA layout (0..11999)", path=path)
    return MaskClass(hole_ratio(hole), bucket, border)


def classify(path: Path, hole: np.ndarray, rule: str = "pixels") -> MaskClass:
    if rule == "pixels":
        return classify_pixels(hole)
    if rule == "nvidia-id":
        return classify_nvidia_id(path, hole)
    raise InputError(f"unknown mask rule {rule!r} (choose from {', '.join(RULES)})")
