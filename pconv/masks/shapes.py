"""Area masks: cellular-automata blobs, one random rectangle, the classic centred hole."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pconv.masks.core import MaskGenerator, nudge_ratio
from pconv.masks.opencv import cv2

# Mean hole ratio that CellularGenerator's rule leaves from an initial fill probability p
# (measured: 300 runs each on a 64-cell grid, 4 iterations; spread about +-0.03). Used to
# pick p for a target ratio, so only a small nudge remains.
_CA_FILL, _CA_RATIO = np.array(
    [
        (0.300, 0.017),
        (0.325, 0.035),
        (0.350, 0.061),
        (0.375, 0.099),
        (0.400, 0.154),
        (0.425, 0.222),
        (0.450, 0.308),
        (0.475, 0.402),
        (0.500, 0.501),
        (0.525, 0.602),
        (0.550, 0.693),
        (0.575, 0.778),
        (0.600, 0.848),
        (0.625, 0.900),
        (0.650, 0.939),
        (0.675, 0.965),
        (0.700, 0.982),
    ]
).T


@dataclass(frozen=True)
class CellularGenerator(MaskGenerator):
    """Cave-like blobs from a cellular automaton (the AIM 2020 extreme-inpainting style).

    A coarse grid (``cells`` cells along the short side) starts as random noise with fill
    probability ``p``; each of ``iterations`` steps makes a cell a hole when at least 5 of
    the 9 cells of its 3x3 neighbourhood are holes. The grid is blown up to the image with
    nearest-neighbour, keeping the blocky cellular look. Native masks draw ``p`` uniformly
    from ``fill_range`` (hole ratios of about 0.1 to 0.6).
    """

    cells: int = 64
    iterations: int = 4
    fill_range: tuple[float, float] = (0.375, 0.525)
    name = "cellular"

    def _draw(
        self, shape: tuple[int, int], rng: np.random.Generator, target: float | None
    ) -> np.ndarray:
        if target is None:
            p = rng.uniform(*self.fill_range)
        else:
            p = float(np.interp(target, _CA_RATIO, _CA_FILL))
        height, width = shape
        cell = max(1, round(min(shape) / self.cells))
        grid = self._automaton((math.ceil(height / cell), math.ceil(width / cell)), rng, p)
        if target is not None:
            # The fill curve is only right on average; growing / shrinking the blobs by whole
            # cells closes the gap and keeps the blocky look.
            grid = nudge_ratio(grid, target)
        big = grid.repeat(cell, axis=0).repeat(cell, axis=1)
        return big[:height, :width]

    def _automaton(
        self, grid_shape: tuple[int, int], rng: np.random.Generator, p: float
    ) -> np.ndarray:
        """Random fill, then the 5-of-9 majority rule ``iterations`` times."""
        grid = (rng.random(grid_shape) < p).astype(np.uint8)
        kernel = np.ones((3, 3), np.float32)
        for _ in range(self.iterations):
            neighbours = cv2.filter2D(grid, cv2.CV_16S, kernel, borderType=cv2.BORDER_REFLECT)
            grid = (neighbours >= 5).astype(np.uint8)
        return grid > 0


@dataclass(frozen=True)
class RectGenerator(MaskGenerator):
    """One axis-aligned rectangle, each side 30-70 % of the image side (DeepGIN's training
    rectangles), placed uniformly at random.

    For a target ratio the sides keep that 30-70 % range where the product allows it and
    widen (``relaxed_side``) only for ratios the range cannot give (below 0.09, above 0.49).
    """

    min_side: float = 0.3
    max_side: float = 0.7
    relaxed_side: tuple[float, float] = (0.02, 1.0)
    nudgeable = False  # an even erosion would round the corners
    name = "rect"

    def _draw(
        self, shape: tuple[int, int], rng: np.random.Generator, target: float | None
    ) -> np.ndarray:
        height, width = shape
        if target is None:
            fy, fx = rng.uniform(self.min_side, self.max_side, size=2)
        else:
            fy, fx = self._sides_for(target, rng)
        bh = int(np.clip(round(fy * height), 1, height))
        bw = int(np.clip(round(fx * width), 1, width))
        y0 = int(rng.integers(0, height - bh + 1))
        x0 = int(rng.integers(0, width - bw + 1))
        hole = np.zeros(shape, bool)
        hole[y0 : y0 + bh, x0 : x0 + bw] = True
        return hole

    def _sides_for(self, target: float, rng: np.random.Generator) -> tuple[float, float]:
        """Side fractions ``(fy, fx)`` with ``fy * fx == target``, both within limits."""
        lo, hi = self.min_side, self.max_side
        if not lo * lo <= target <= hi * hi:
            lo, hi = self.relaxed_side
        fy = rng.uniform(max(lo, target / hi), min(hi, target / lo))
        return fy, target / fy


@dataclass(frozen=True)
class CenterGenerator(MaskGenerator):
    """The classic regular hole: a centred rectangle of ``side`` times each image side (a
    square for square images; 0.5 = the 128 px hole in a 256 px image, ratio 0.25). A target
    ratio sets ``side = sqrt(target)``."""

    side: float = 0.5
    nudgeable = False
    name = "center"

    def _draw(
        self, shape: tuple[int, int], rng: np.random.Generator, target: float | None
    ) -> np.ndarray:
        side = self.side if target is None else math.sqrt(target)
        hole = np.zeros(shape, bool)
        height, width = shape
        bh, bw = max(1, round(side * height)), max(1, round(side * width))
        y0, x0 = (height - bh) // 2, (width - bw) // 2
        hole[y0 : y0 + bh, x0 : x0 + bw] = True
        return hole
