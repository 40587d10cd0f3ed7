"""Masks from a folder of image files (white = hole), e.g. the NVIDIA irregular test masks.

:class:`MaskFolder` is at once a map-style dataset (``len``, ``folder[i]``) for a torch
DataLoader and a generator (``folder(size, rng, target=...)``) for :func:`sample_mask` and
:class:`MaskSampler`. Both paths fit the file to the requested size and apply the same
:class:`MaskAugment`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pconv.errors import InputError
from pconv.io import list_images, load_mask, resize_mask
from pconv.masks.augment import MaskAugment
from pconv.masks.core import (
    MaskGenerator,
    Size,
    WorkerSeeded,
    as_shape,
    hole_ratio,
    nvidia_id_info,
)

#: The paper's augmentation of its training masks (dilation, rotation, cropping), our ranges.
DEFAULT_AUGMENT = MaskAugment()


class MaskFolder(WorkerSeeded, MaskGenerator):
    """Mask files under ``root`` (recursively, sorted), white / non-zero = hole.

    ``size``: ``(height, width)`` (or an int) that ``folder[i]`` returns; None keeps each
    file's own size. ``augment``: applied on every draw (None: files as they are).
    ``seed``: seeds the augmentation of ``folder[i]``; each DataLoader worker reseeds itself.
    """

    name = "folder"
    #: Random files compared when asked for a target ratio; the closest one is used.
    candidates = 16

    def __init__(
        self,
        root: str | os.PathLike[str],
        size: Size | None = None,
        augment: MaskAugment | None = DEFAULT_AUGMENT,
        seed: int | None = None,
        paths: Sequence[Path] | None = None,
    ) -> None:
        super().__init__(seed)
        self.root = Path(root)
        if paths is None:
            if not self.root.is_dir():
                raise InputError(f"{self.root}: mask folder not found")
            paths = list_images(self.root)
        self.paths = list(paths)
        if not self.paths:
            raise InputError(f"{self.root}: no mask images (.png, .jpg, ...) in this folder")
        self.size = None if size is None else as_shape(size)
        self.augment = augment
        self._ratios: dict[int, float] = {}  # file index -> hole ratio at file resolution

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> np.ndarray:
        """File ``index`` fitted to ``size`` (if set) and augmented (if set)."""
        rng = self.rng
        hole = self.load(index)
        if self.size is not None:
            hole = fit_mask(hole, self.size, rng)
        return self.augment(hole, rng) if self.augment is not None else hole

    def __repr__(self) -> str:
        return f"MaskFolder({str(self.root)!r}, {len(self)} masks, size={self.size})"

    def load(self, index: int) -> np.ndarray:
        """File ``index`` exactly as stored (bool, True = hole)."""
        hole = load_mask(self.paths[index])
        self._ratios[index] = hole_ratio(hole)
        return hole

    def ratio(self, index: int) -> float:
        """Hole ratio of file ``index`` at its own resolution (measured once, then cached)."""
        if index not in self._ratios:
            self.load(index)
        return self._ratios[index]

    def select(self, bucket: int | None = None, border: bool | None = None) -> MaskFolder:
        """The files that the NVIDIA test-mask naming (``<id>.png``: bucket ``id // 2000``,
        border for ids ``1000..1999`` of each bucket) places in ``bucket`` / ``border``.

        Only meaningful for a folder of that layout; names that are not integers raise.
        """
        keep = []
        for path in self.paths:
            if not path.stem.isdigit():
                raise InputError(f"{path}: not an NVIDIA test-mask name (<id>.png)")
            b, touches = nvidia_id_info(int(path.stem))
            if (bucket is None or b == bucket) and (border is None or touches == border):
                keep.append(path)
        return MaskFolder(self.root, self.size, self.augment, self.seed, paths=keep)

    def _draw(
        self, shape: tuple[int, int], rng: np.random.Generator, target: float | None
    ) -> np.ndarray:
        """A random file (the closest of a few in hole ratio when a target is given), fitted
        to ``shape`` and augmented."""
        if target is None:
            index = int(rng.integers(len(self)))
        else:
            picks = rng.integers(len(self), size=min(self.candidates, len(self)))
            index = int(min(picks, key=lambda i: abs(self.ratio(int(i)) - target)))
        hole = fit_mask(self.load(index), shape, rng)
        return self.augment(hole, rng) if self.augment is not None else hole


def fit_mask(hole: np.ndarray, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Random crop to the aspect ratio of ``shape``, then nearest-neighbour resize to it."""
    height, width = shape
    h, w = hole.shape
    if (h, w) == (height, width):
        return hole
    if h * width > w * height:  # too tall for the target aspect: crop rows
        keep = max(1, round(w * height / width))
        y0 = int(rng.integers(0, h - keep + 1))
        hole = hole[y0 : y0 + keep]
    elif h * width < w * height:  # too wide: crop columns
        keep = max(1, round(h * width / height))
        x0 = int(rng.integers(0, w - keep + 1))
        hole = hole[:, x0 : x0 + keep]
    return resize_mask(hole, (width, height))
