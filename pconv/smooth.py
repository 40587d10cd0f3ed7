"""A smooth fill of the holes from the known pixels: the thin-plate (biharmonic) interpolant.

The fill minimises the summed squared discrete Laplacian of the whole image over the hole
pixels, which is the biharmonic equation that scikit-image's ``inpaint_biharmonic`` solves
directly. Here it is solved in torch with conjugate gradients, coarse to fine: each level starts
from the level below, so a few iterations at full size (more on the cheap coarse levels) are
enough at any image size, and it runs on whatever device the model is on.

Only the holes are worked on: in eager mode each level's equations are one sparse matrix over
the hole pixels (:func:`_solve_sparse`), so the cost follows the holes' size, not the image's.
Inside ``torch.compile``, where sizes cannot depend on the data, the same equations are solved
on whole images (:func:`_solve_dense`); the two agree to float rounding.

Models with ``prior="smooth"`` blend their prediction with this fill (see :mod:`pconv.unet`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

#: Squared residual at which a level counts as solved (8-bit output needs far less).
_DONE = 1e-10

#: Levels stop halving below this side; the coarsest one starts from the known mean.
_COARSEST = 8

#: Tie of each unknown to its starting value: keeps the system definite even for an image
#: with no known pixel, far too weak to matter anywhere else.
_TIE = 1e-4


def _laplace(x: Tensor) -> Tensor:
    """5-point Laplacian at every pixel, the image mirrored by one pixel at its edges."""
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:] - 4 * x


def _bilaplace(x: Tensor) -> Tensor:
    """``D^T D x``: the gradient of the thin-plate energy (halved).

    The mirrored Laplacian ``D`` is the grid graph's Laplacian, which is symmetric: ``D^T = D``.
    Shifts rather than a convolution: several times faster on a CPU for these few planes.
    """
    return _laplace(_laplace(x))


def _conjugate_gradients(
    apply: Callable[[Tensor], Tensor], x: Tensor, r: Tensor, iterations: int, dims: tuple[int, ...]
) -> Tensor:
    """CG from ``x`` with residual ``r`` on independent planes (``dims`` sum within a plane).

    A plane whose squared residual is below :data:`_DONE` stops moving (its step is zero):
    converged planes would otherwise iterate on in denormal floats, which are slow. Where the
    host can tell for free (a CPU tensor, eager mode), the loop ends once every plane is done.
    ``x`` and ``r`` are updated in place.
    """
    p = r.clone()
    rr = (r * r).sum(dim=dims, keepdim=True)
    tiny = torch.finfo(x.dtype).tiny
    host = x.device.type == "cpu" and not torch.compiler.is_compiling()
    for _ in range(iterations):
        if host and float(rr.max()) < _DONE:
            break
        ap = apply(p)
        active = rr >= _DONE
        alpha = torch.where(active, rr / (p * ap).sum(dim=dims, keepdim=True).clamp(min=tiny), 0)
        x = x.addcmul_(alpha, p)
        r = r.addcmul_(alpha, ap, value=-1)
        rr_new = (r * r).sum(dim=dims, keepdim=True)
        beta = torch.where(active, rr_new / rr.clamp(min=tiny), 0)
        p = p.mul_(beta).add_(r)
        rr = rr_new
    return x


#: The 13 pixels a thin-plate row couples, in raster order (so CSR columns come out sorted),
#: and the couplings that do not depend on where the image ends: 2 diagonally, 1 two away.
_STENCIL = (
    (-2, 0), (-1, -1), (-1, 0), (-1, 1), (0, -2), (0, -1), (0, 0),
    (0, 1), (0, 2), (1, -1), (1, 0), (1, 1), (2, 0),
)  # fmt: skip
_FIXED = (1.0, 2.0, 0.0, 2.0, 1.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 2.0, 1.0)
_CENTRE, _ADJACENT = 6, (2, 5, 7, 10)


def _degrees(h: int, w: int, device: torch.device) -> Tensor:
    """In-image neighbours of each pixel (the mirrored Laplacian is the grid graph's), on the
    ``(H+4) x (W+4)`` grid padded by two pixels, flattened; 0 outside the image."""
    image = F.pad(torch.ones(1, 1, h, w, device=device), (3, 3, 3, 3))
    count = image[..., :-2, 1:-1] + image[..., 2:, 1:-1]
    count = count + image[..., 1:-1, :-2] + image[..., 1:-1, 2:]
    return (count * image[..., 1:-1, 1:-1]).reshape(-1)


def _solve_sparse(known: Tensor, hole: Tensor, start: Tensor, iterations: int) -> Tensor:
    """:func:`_solve_dense`'s equations for one image ``[C,H,W]``, on its hole pixels only.

    ``D^T D`` of the mirrored 5-point Laplacian ``D`` (the grid graph's Laplacian, symmetric)
    couples a pixel to 13 others, with weights that follow from the neighbour counts ``deg``:
    ``deg^2 + deg`` to itself, ``-(deg_u + deg_v)`` to a neighbour, 2 diagonally, 1 two pixels
    away. Its hole rows and columns are one sparse matrix (13 entries a row, zero for known
    neighbours), built once per level from tables padded by two pixels (so no neighbour index
    leaves them), and the known pixels enter only through the starting residual. Work and
    memory follow the hole's size, not the image's, and each CG step is one sparse product.
    """
    c_planes, h, w = known.shape
    ids = (hole.reshape(-1) > 0.5).nonzero().squeeze(1)  # hole pixels in raster order
    n = ids.numel()
    filled = known + start * hole
    if n == 0:
        return filled
    dev, wp = known.device, w + 4
    # int32 indices: half the memory traffic of the [n, 13] tables (CSR takes them as they are)
    padded_ids = ((ids // w + 2) * wp + ids % w + 2).int()
    steps = torch.tensor([dy * wp + dx for dy, dx in _STENCIL], dtype=torch.int32, device=dev)
    neighbour = padded_ids[:, None] + steps  # [n, 13] indices into the padded grid
    # A hole pixel's column is its rank among the hole pixels; every pixel's rank counts the
    # hole pixels before it, so a row's 13 columns never decrease (CSR wants them sorted) and
    # the known neighbours take a neighbour's column with weight 0: no compaction pass.
    in_grid = F.pad(hole.reshape(1, h, w) > 0.5, (2, 2, 2, 2)).reshape(-1)
    rank = in_grid.cumsum(0, dtype=torch.int32) - in_grid.int()
    column = rank[neighbour].clamp_(max=n - 1)
    in_hole = in_grid[neighbour]
    degree = _degrees(h, w, dev)
    deg_u = degree[padded_ids][:, None]
    adjacent = torch.zeros(len(_STENCIL), dtype=torch.bool, device=dev)
    adjacent[list(_ADJACENT)] = True
    fixed = torch.tensor(_FIXED, device=dev)
    weight = torch.where(adjacent, degree[neighbour].add_(deg_u).neg_(), fixed)
    weight[:, _CENTRE] = (deg_u * deg_u + deg_u + _TIE).squeeze(1)
    weight = weight.mul_(in_hole)
    size = len(_STENCIL)
    rows = torch.arange(0, n * size + 1, size, dtype=torch.int32, device=dev)
    with warnings.catch_warnings():  # "sparse CSR support is in beta": not the user's concern
        warnings.filterwarnings("ignore", message=".*[Ss]parse", category=UserWarning)
        matrix = torch.sparse_csr_tensor(rows, column.reshape(-1), weight.reshape(-1), size=(n, n))
    planes = filled.reshape(c_planes, -1)
    x = planes[:, ids].T.contiguous()  # [n, C]: a pixel's planes side by side
    r = -_bilaplace(filled).reshape(c_planes, -1)[:, ids].T.contiguous()
    x = _conjugate_gradients(lambda p: matrix @ p, x, r, iterations, (0,))
    planes[:, ids] = x.T
    return filled


def _solve_dense(known: Tensor, hole: Tensor, start: Tensor, iterations: int) -> Tensor:
    """The hole values of one level by CG on whole images; ``known`` is zero in the holes.

    Branch-free on the data, so it is what runs inside ``torch.compile``.
    """
    x = start * hole
    r = -hole * _bilaplace(known + x)  # the tie to the start cancels at the start

    def apply(p: Tensor) -> Tensor:
        return hole * _bilaplace(p) + _TIE * p

    return known + _conjugate_gradients(apply, x, r, iterations, (2, 3))


def _solve(known: Tensor, hole: Tensor, start: Tensor, iterations: int) -> Tensor:
    """One level: on the hole pixels only in eager mode, on whole images when compiling
    (the sparse form's sizes depend on the data, which a single graph cannot have)."""
    if torch.compiler.is_compiling():
        return _solve_dense(known, hole, start, iterations)
    return torch.stack(
        [_solve_sparse(k, h, s, iterations) for k, h, s in zip(known, hole, start, strict=True)]
    )


def _halve(image: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """Mean of the known pixels of each 2x2 cell; a cell is known if any of its pixels is."""
    h, w = image.shape[-2:]
    if h % 2 or w % 2:
        image = F.pad(image, (0, w % 2, 0, h % 2), mode="replicate")
        valid = F.pad(valid, (0, w % 2, 0, h % 2), mode="replicate")
    weight = F.avg_pool2d(valid, 2)
    mean = F.avg_pool2d(image * valid, 2) / weight.clamp(min=1e-6)
    return mean, (weight > 0).to(image.dtype)


@torch.no_grad()
def smooth_fill(image: Tensor, valid: Tensor, iterations: int = 8) -> Tensor:
    """``image [B,C,H,W]`` with its holes (``valid [B,1,H,W]`` is 0) filled smoothly.

    Known pixels come back unchanged and the fill depends on them only. An image with no
    known pixel comes back grey. Always computed in float32. At the image's edges the image
    counts as mirrored (a zero-slope boundary), which keeps the problem well posed where a
    hole touches the edge.
    """
    dtype = image.dtype
    with torch.autocast(image.device.type, enabled=False):
        b, _, h, w = image.shape
        x = image.float().contiguous()  # one summation order whatever the layout
        v = (valid > 0.5).float().expand(b, 1, h, w)
        levels = [(x * v, v)]
        while min(levels[-1][0].shape[-2:]) > _COARSEST:
            levels.append(_halve(*levels[-1]))
        coarse, cv = levels[-1]
        count = cv.sum(dim=(2, 3), keepdim=True)
        mean = (coarse * cv).sum(dim=(2, 3), keepdim=True) / count.clamp(min=1)
        guess = torch.where(count > 0, mean, torch.full_like(mean, 0.5)).expand_as(coarse)
        for depth, (known, lv) in reversed(list(enumerate(levels))):
            if depth < len(levels) - 1:
                guess = F.interpolate(guess, size=known.shape[-2:], mode="bilinear")
            # Coarse levels are cheap and carry the slow, long-range part of the solution;
            # the finest level only needs to settle the detail near the holes' edges.
            guess = _solve(known * lv, 1 - lv, guess, iterations << min(depth, 2))
        return guess.to(dtype)
