"""Random augmentation of any mask: flips, rotation, translation, crop (zoom), dilation.

The paper augments its training masks "by random dilation, rotation and cropping"; we do the
geometric part as one affine warp (one resampling, nearest-neighbour, so the mask stays
binary and no hole pixel is smeared) and the dilation after it. The output keeps the input
shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pconv.masks.core import REFERENCE_SIZE, Seed, as_rng
from pconv.masks.opencv import cv2


@dataclass(frozen=True)
class MaskAugment:
    """Random flips, rotation (+-``max_rotate`` degrees), translation (+-``max_translate`` of
    each side), crop (keep ``min_crop``..1 of each side, scaled back up) and dilation
    (radius 0..``max_dilate`` px at 512 px, scaled with the short side).
    Zero / False disables a step. Deterministic for a given rng state."""

    max_rotate: float = 180.0
    max_translate: float = 0.1
    min_crop: float = 0.8
    max_dilate: int = 9
    flip: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.min_crop <= 1.0:
            raise ValueError(f"min_crop must be in (0, 1], got {self.min_crop}")
        if self.max_dilate < 0 or self.max_translate < 0:
            raise ValueError("max_dilate and max_translate must be >= 0")

    def __call__(self, mask: np.ndarray, rng: Seed = None) -> np.ndarray:
        """Augmented copy of ``mask`` (bool ``[H, W]``, True = hole)."""
        rng = as_rng(rng)
        hole = np.asarray(mask, dtype=bool)
        if self.flip:
            hole = _flips(hole, rng)
        u8 = self._warp(np.ascontiguousarray(hole, dtype=np.uint8), rng)
        u8 = self._dilate(u8, rng)
        return u8 > 0

    def _warp(self, u8: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Rotate about the centre, zoom into a random window, shift: one affine map."""
        height, width = u8.shape
        angle = math.radians(rng.uniform(-self.max_rotate, self.max_rotate))
        keep = rng.uniform(self.min_crop, 1.0)
        zoom = 1.0 / keep
        # centre of the kept window, relative to the image centre (it stays inside the image)
        off = (rng.uniform(-1, 1, size=2) * (1 - keep) / 2) * (width, height)
        shift = rng.uniform(-1, 1, size=2) * self.max_translate * (width, height)
        if angle == 0 and zoom == 1 and not shift.any():
            return u8
        c, s = math.cos(angle) * zoom, math.sin(angle) * zoom
        linear = np.array([[c, -s], [s, c]])
        centre = np.array([(width - 1) / 2, (height - 1) / 2])
        # dst = linear @ (src - centre - off) + centre + shift
        offset = centre + shift - linear @ (centre + off)
        matrix = np.hstack([linear, offset[:, None]]).astype(np.float64)
        return cv2.warpAffine(u8, matrix, (width, height), flags=cv2.INTER_NEAREST, borderValue=0)

    def _dilate(self, u8: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Grow the holes by a random radius (scaled to the image size)."""
        top = round(self.max_dilate * min(u8.shape) / REFERENCE_SIZE)
        radius = int(rng.integers(0, top + 1)) if top > 0 else 0
        if radius == 0:
            return u8
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        return cv2.dilate(u8, kernel)


def _flips(hole: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.5:
        hole = hole[:, ::-1]
    if rng.random() < 0.5:
        hole = hole[::-1]
    return hole


def augment_mask(mask: np.ndarray, rng: Seed = None, **params: float | int | bool) -> np.ndarray:
    """One-off augmentation: ``MaskAugment(**params)(mask, rng)``."""
    return MaskAugment(**params)(mask, rng)  # type: ignore[arg-type]
