"""Which model runs fill the holes of one image under the ``"crop"`` strategy, and at what scale.

Holes are grouped into clusters (connected components on a grid of cells); each cluster is
worked on in a context crop around it (:func:`context`), at native resolution unless a hole is
larger than the model's training size or the crop over its pixel budget (:meth:`Job.scale`);
clusters whose crops overlap are merged while that costs no scale (:func:`jobs`). See
:mod:`pconv.inpaint` for the whole strategy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


def clusters(hole: Tensor, cell: int) -> list[Tensor]:
    """Split a hole map ``[H,W]`` into groups of holes near each other; bool maps per group."""
    h, w = hole.shape
    grid = F.max_pool2d(hole[None, None].float(), cell, cell, ceil_mode=True)[0, 0] > 0
    occupied = {(int(i), int(j)) for i, j in torch.nonzero(grid).tolist()}
    labels = torch.full(grid.shape, -1, dtype=torch.long)
    groups = 0
    for start in sorted(occupied):
        if labels[start] >= 0:
            continue
        stack = [start]
        labels[start] = groups
        while stack:  # flood fill, 8-connected
            i, j = stack.pop()
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    n = (i + di, j + dj)
                    if n in occupied and labels[n] < 0:
                        labels[n] = groups
                        stack.append(n)
        groups += 1
    if groups == 1:
        return [hole]
    pixel_labels = labels.repeat_interleave(cell, 0)[:h].repeat_interleave(cell, 1)[:, :w]
    return [hole & (pixel_labels == g) for g in range(groups)]


def bbox(region: Tensor) -> tuple[int, int, int, int]:
    rows = torch.nonzero(region.any(dim=1))
    cols = torch.nonzero(region.any(dim=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


Box = tuple[int, int, int, int]  # y0, y1, x0, x1


def context(box: Box, res: int, h: int, w: int) -> Box:
    """The crop the model sees around a hole box: grown by max(box side, res/2), clipped."""
    y0, y1, x0, x1 = box
    grow = max(y1 - y0, x1 - x0, res // 2)
    return max(0, y0 - grow), min(h, y1 + grow), max(0, x0 - grow), min(w, x1 + grow)


def overlap(a: Box, b: Box) -> bool:
    return a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]


@dataclass
class Job:
    """Holes filled by one model run: their map, their box, and their largest single extent."""

    region: Tensor
    box: Box
    extent: int  # longest side of the largest member cluster: sets the working scale

    def scale(self, res: int, h: int, w: int) -> float:
        """Native resolution unless a hole is larger than ``res`` or the crop over budget."""
        cy0, cy1, cx0, cx1 = context(self.box, res, h, w)
        budget = math.sqrt((2 * res) ** 2 / ((cy1 - cy0) * (cx1 - cx0)))
        return min(1.0, res / self.extent, budget)

    def merged(self, other: Job) -> Job:
        a, b = self.box, other.box
        box = (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))
        return Job(self.region | other.region, box, max(self.extent, other.extent))


def jobs(hole: Tensor, res: int) -> list[Job]:
    """Hole clusters to fill; clusters whose crops overlap are merged while that is free.

    Merging bounds the work (many small holes close together become one model run instead of
    one each on overlapping crops), but never at the price of a smaller working scale.
    """
    h, w = hole.shape
    # Fine cells, so a cluster's extent is close to one hole's size; coarser only when there
    # are so many specks that merging them pairwise would cost more than it saves.
    cell = max(4, res // 32)
    regions = clusters(hole, cell)
    while len(regions) > 256:
        cell *= 2
        regions = clusters(hole, cell)
    found = []
    for region in regions:
        y0, y1, x0, x1 = bbox(region)
        found.append(Job(region, (y0, y1, x0, x1), max(y1 - y0, x1 - x0)))
    changed = True
    while changed:
        changed = False
        i = 0
        while i < len(found):
            j = i + 1
            while j < len(found):
                a, b = found[i], found[j]
                if overlap(context(a.box, res, h, w), context(b.box, res, h, w)):
                    union = a.merged(b)
                    if union.scale(res, h, w) >= min(a.scale(res, h, w), b.scale(res, h, w)):
                        found[i] = union
                        del found[j]
                        changed = True
                        continue
                j += 1
            i += 1
    return found
