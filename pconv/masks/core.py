"""Shared vocabulary of the mask generators: shapes, seeds, hole ratios, buckets, borders.

Every generator returns ``bool [H, W]`` with ``True`` = hole (the user-facing convention,
white in files). Sizes are ``(height, width)`` like a numpy shape, or one int for a square.
"""

from __future__ import annotations

import sys
from bisect import bisect_left
from itertools import pairwise
from typing import TypeAlias

import numpy as np

from pconv.errors import InputError
from pconv.masks.opencv import cv2

#: Edges of the paper's hole-to-image ratio buckets: (0.01, 0.1], (0.1, 0.2], ... (0.5, 0.6].
BUCKET_EDGES: tuple[float, ...] = (0.01, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
#: ``(low, high]`` of each bucket, indexed like the NVIDIA test-mask ids (``id // 2000``).
BUCKETS: tuple[tuple[float, float], ...] = tuple(pairwise(BUCKET_EDGES))

#: The paper's "no border" split keeps holes this far from the edge of a 512 px image.
REFERENCE_SIZE = 512
REFERENCE_MARGIN = 50

#: NVIDIA test-mask layout: 2000 ids a bucket, the first 1000 of them "no border".
NVIDIA_IDS_PER_BUCKET = 2000
NVIDIA_NO_BORDER_PER_BUCKET = 1000

Size: TypeAlias = "int | tuple[int, int]"
Seed: TypeAlias = "np.random.Generator | int | None"


class MaskSamplingError(InputError):
    """The requested bucket / border combination could not be drawn (e.g. a centred hole
    that should touch the border)."""


def as_rng(seed: Seed) -> np.random.Generator:
    """A numpy Generator from a Generator (used as is), an int seed, or None (fresh entropy)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def as_shape(size: Size) -> tuple[int, int]:
    """``int`` or ``(height, width)`` -> ``(height, width)``, rejecting non-positive sides."""
    if isinstance(size, (int, np.integer)):
        height = width = int(size)
    else:
        height, width = (int(s) for s in size)
    if height < 1 or width < 1:
        raise InputError(f"mask size must be positive, got {height}x{width}")
    return height, width


def hole_ratio(mask: np.ndarray) -> float:
    """Fraction of the image that is hole (True)."""
    mask = np.asarray(mask, dtype=bool)
    return float(np.count_nonzero(mask)) / mask.size if mask.size else 0.0


def bucket_of(ratio: float) -> int | None:
    """Index of the paper's bucket holding ``ratio`` (low end open, high end closed), or None
    for ratios outside (0.01, 0.6]."""
    j = bisect_left(BUCKET_EDGES, ratio)
    return j - 1 if 1 <= j < len(BUCKET_EDGES) else None


def bucket_bounds(bucket: int) -> tuple[float, float]:
    """``(low, high]`` of a bucket index, with a user-level error for a bad index."""
    if not isinstance(bucket, (int, np.integer)) or not 0 <= bucket < len(BUCKETS):
        raise InputError(f"bucket must be an integer 0..{len(BUCKETS) - 1}, got {bucket!r}")
    return BUCKETS[int(bucket)]


def bucket_label(bucket: int | None, *, compact: bool = False) -> str:
    """``"(0.1, 0.2]"``: a bucket as the paper writes it; ``compact`` drops the space
    (``"(0.1,0.2]"``: the evaluation's table headers and CSV cells). ``None`` or ``-1``, a
    ratio outside the paper's range (how :mod:`pconv.evaluation.buckets` files it), is
    ``"other"``. The one labeller of a bucket, so messages, sheets and tables agree."""
    if bucket is None or (isinstance(bucket, (int, np.integer)) and bucket == -1):
        return "other"
    low, high = bucket_bounds(bucket)
    return f"({low:g},{high:g}]" if compact else f"({low:g}, {high:g}]"


def in_bucket(mask: np.ndarray, bucket: int) -> bool:
    """Whether the mask's hole ratio lies in ``bucket``."""
    return bucket_of(hole_ratio(mask)) == bucket


def border_margin(size: Size) -> int:
    """The "no border" margin for this image size: 50 px at 512, scaled with the short side."""
    height, width = as_shape(size)
    return max(1, round(REFERENCE_MARGIN * min(height, width) / REFERENCE_SIZE))


def touches_border(mask: np.ndarray, margin: int = 1) -> bool:
    """True if any hole pixel lies in the outer ``margin``-pixel frame of the image.

    ``margin=1`` means literally on the edge; ``touches_border(m, 50)`` is False exactly for
    the paper's "no border" masks at 512 px (rows and columns 0..49 from each edge are clear).
    """
    if margin < 1:
        raise ValueError(f"margin must be >= 1, got {margin}")
    mask = np.asarray(mask, dtype=bool)
    m = margin
    return bool(mask[:m].any() or mask[-m:].any() or mask[:, :m].any() or mask[:, -m:].any())


def nvidia_id_info(file_id: int) -> tuple[int, bool]:
    """``(bucket, touches_border)`` that the NVIDIA test-mask layout gives file id ``file_id``."""
    bucket, rank = divmod(int(file_id), NVIDIA_IDS_PER_BUCKET)
    return bucket, rank >= NVIDIA_NO_BORDER_PER_BUCKET


def nudge_ratio(mask: np.ndarray, target: float) -> np.ndarray:
    """Grow or shrink the holes evenly (a Euclidean dilation / erosion of the right radius)
    so that the hole ratio lands as close to ``target`` as the pixel grid allows.

    One cut through the signed distance to the hole boundary, at the level that keeps the
    wanted pixel count, replaces many 3x3 dilation passes that could overshoot a bucket.
    """
    mask = np.asarray(mask, dtype=bool)
    total = mask.size
    want = round(float(np.clip(target, 0.0, 1.0)) * total)
    have = int(np.count_nonzero(mask))
    if have in (0, total) or want == have:
        return mask.copy()  # nothing to grow from / shrink into
    if want <= 0:
        return np.zeros_like(mask)
    if want >= total:
        return np.ones_like(mask)
    u8 = mask.astype(np.uint8)
    inside = cv2.distanceTransform(u8, cv2.DIST_L2, 5)
    outside = cv2.distanceTransform(1 - u8, cv2.DIST_L2, 5)
    # Signed distance in quarter pixels: >= 4 inside the holes, <= -4 outside.
    levels = np.rint((inside - outside) * 4).astype(np.int32).ravel()
    lowest = int(levels.min())
    at_or_above = np.cumsum(np.bincount(levels - lowest)[::-1])[::-1]  # pixels kept per cut
    cut = int(np.argmin(np.abs(at_or_above - want))) + lowest
    return (levels >= cut).reshape(mask.shape)


class WorkerSeeded:
    """Owns a numpy Generator that reseeds itself inside each torch DataLoader worker.

    Each worker gets a copy of the object, so without this every worker would draw the same
    masks. torch gives every worker a distinct seed that also changes with each epoch and
    follows ``torch.manual_seed``; we fold it into our own seed, so masks stay reproducible.
    torch is never imported here: without it loaded there are no workers to care about.
    """

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._token: int | None = None

    def reseed(self, seed: int | None) -> None:
        """Restart the random stream from ``seed`` (None: fresh entropy)."""
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._token = None

    @property
    def rng(self) -> np.random.Generator:
        """The Generator to draw from, reseeded on first use in a new DataLoader worker."""
        token = _worker_seed()
        if token is not None and token != self._token:
            entropy = [token] if self.seed is None else [token, int(self.seed) & (2**64 - 1)]
            self._rng = np.random.default_rng(np.random.SeedSequence(entropy))
            self._token = token
        return self._rng


def _worker_seed() -> int | None:
    """The torch DataLoader worker's seed, or None outside a worker (or without torch)."""
    data = sys.modules.get("torch.utils.data")
    get_info = getattr(data, "get_worker_info", None)
    info = get_info() if get_info is not None else None
    return None if info is None else int(info.seed) & (2**64 - 1)


class MaskGenerator:
    """Base of every generator: ``gen(size, rng, target=None) -> bool [H, W]``, True = hole.

    ``target`` asks for a hole ratio near that value (used by :func:`sample_mask` to hit a
    bucket); without it the generator follows its published distribution. Subclasses are
    plain picklable objects so that they can travel into DataLoader workers.
    """

    #: Whether :func:`nudge_ratio` (even growth / shrinkage of holes) may fix a near miss;
    #: False for shapes whose character it would spoil (sharp rectangles).
    nudgeable: bool = True
    #: Registry name, for messages and contact sheets.
    name: str = "mask"

    def __call__(self, size: Size, rng: Seed = None, *, target: float | None = None) -> np.ndarray:
        shape = as_shape(size)
        if target is not None and not 0.0 < target <= 1.0:
            raise ValueError(f"target hole ratio must be in (0, 1], got {target}")
        return np.asarray(self._draw(shape, as_rng(rng), target), dtype=bool)

    def _draw(
        self, shape: tuple[int, int], rng: np.random.Generator, target: float | None
    ) -> np.ndarray:
        raise NotImplementedError
