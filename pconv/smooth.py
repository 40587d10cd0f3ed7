"""A smooth fill of the holes from the known pixels: the thin-plate (biharmonic) interpolant.

The fill minimises the summed squared discrete Laplacian of the whole image over the hole
pixels, which is the biharmonic equation that scikit-image's ``inpaint_biharmonic`` solves
directly. Here it is solved in torch with conjugate gradients, coarse to fine: each level starts
from the level below, so a few iterations at full size (more on the cheap coarse levels) are
enough at any image size, and it runs on whatever device the model is on.

The coarse levels carry the slow, long-range part of the solution. What the two finest levels
add is detail near the holes' edges, so they solve only within a few pixels of a known pixel
(:data:`_REACH`) and keep the upsampled coarser solution farther in: that cuts the work where
it is dearest and leaves the fill as close to the photo as before (``benchmarks/bench_core.py``).
With many iterations the band covers the holes and the fill converges to the exact solution.

Only the holes are worked on: in eager mode each level's equations are sparse matrices over
the hole pixels (:func:`_solve_sparse`), so the cost follows the holes' size, not the image's.
Inside ``torch.compile``, where sizes cannot depend on the data, the same equations are solved
on whole images (:func:`_solve_dense`); the two agree to float rounding. Several choices below
(strided slices for pooling, in-place sums, one gather of packed tables, a product per plane)
exist because each fresh full-size temporary or strided kernel cost more than the arithmetic
on a CPU: measured, not guessed.

Models with ``prior="smooth"`` blend their prediction with this fill (:func:`blend`; see
:mod:`pconv.archs.unet`).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

#: Squared residual at which a level counts as solved (8-bit output needs far less).
_DONE = 1e-10

#: Levels stop halving below this side; the coarsest one starts from the known mean.
_COARSEST = 8

#: The finest levels solve only within ``iterations // _REACH[depth]`` of their pixels of a
#: known pixel (at the default 8 iterations: 2 at full size, 1 at half size), with
#: ``iterations`` steps; coarser levels take twice as many, cheap there. Of the bands tried
#: (2+2, 1+2, 2+1 pixels), this one gave the shipped model its best LPIPS on 240 training
#: photos with generated masks (0.1416, against 0.1445 and 0.1508); 2+2 pixels, which is
#: slower, scored a little better on PSNR, FID and KID (26.36 / 108.7 / 19.0 against
#: 26.33 / 110.3 / 19.8).
_REACH = (4, 8)

#: Levels smaller than this (either side) solve their whole holes: they cost little, and the
#: level below them is too coarse to stand in for the inside (a ramp's fill in a 40x56 image
#: was 2.6x further off with the band).
_BAND_MIN = 64

#: Tie of each unknown to its starting value: keeps the system definite even for an image
#: with no known pixel, far too weak to matter anywhere else.
_TIE = 1e-4


def _laplace(x: Tensor) -> Tensor:
    """5-point Laplacian at every pixel, the image mirrored by one pixel at its edges."""
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    # Accumulated in place: each fresh full-size temporary costs more than the add itself.
    out = p[..., :-2, 1:-1] + p[..., 2:, 1:-1]
    return out.add_(p[..., 1:-1, :-2]).add_(p[..., 1:-1, 2:]).sub_(x, alpha=4)


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
        # Where the host can read the residuals for free, a step with every plane unsolved
        # skips the masking (the usual case: a third fewer small kernels on coarse levels).
        masked = True
        if host:
            residuals = rr.flatten().tolist()
            if max(residuals) < _DONE:
                break
            masked = min(residuals) < _DONE
        ap = apply(p)
        live = rr
        if masked:  # a solved plane's alpha and beta are 0: it stays where it is
            active = rr >= _DONE
            live = rr * active
        alpha = live / (p * ap).sum(dim=dims, keepdim=True).clamp_(min=tiny)
        x = x.addcmul_(alpha, p)
        r = r.addcmul_(alpha, ap, value=-1)
        rr_new = (r * r).sum(dim=dims, keepdim=True)
        beta = (rr_new * active if masked else rr_new) / rr.clamp(min=tiny)
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

#: Padded grids smaller than this pack a rank (times 16, with 4 bits of flags) in int32.
_INT32_GRID = 2**27


@functools.lru_cache(maxsize=16)  # every level of every fill of one image size asks again
def _degrees(h: int, w: int, device: torch.device) -> Tensor:
    """In-image neighbours of each pixel (the mirrored Laplacian is the grid graph's), on the
    ``(H+4) x (W+4)`` grid padded by two pixels, flattened, int32; 0 outside the image."""

    def along(n: int) -> Tensor:  # neighbours along one axis: 2 inside, 1 at an end, 0 off
        count = torch.full((n + 4,), 2, dtype=torch.int32, device=device)
        count[:2] = count[-2:] = 0
        count[2] -= 1
        count[n + 1] -= 1
        return count

    rows, cols = along(h), along(w)
    inside = torch.zeros(h + 4, w + 4, dtype=torch.int32, device=device)
    inside[2 : h + 2, 2 : w + 2] = 1
    return ((rows[:, None] + cols[None, :]) * inside).reshape(-1)


@functools.lru_cache(maxsize=16)
def _stencil_tables(wp: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """The stencil's index steps on a grid ``wp`` wide, which of its entries are adjacent,
    and the weights that do not depend on the image's edges (made once, not once a level)."""
    steps = torch.tensor([dy * wp + dx for dy, dx in _STENCIL], dtype=torch.int32, device=device)
    adjacent = torch.zeros(len(_STENCIL), dtype=torch.bool, device=device)
    adjacent[list(_ADJACENT)] = True
    return steps, adjacent, torch.tensor(_FIXED, device=device)


def _solve_sparse(filled: Tensor, hole: Tensor, iterations: int) -> Tensor:
    """:func:`_solve_dense`'s equations for one image ``[C,H,W]``, on its hole pixels only.

    ``D^T D`` of the mirrored 5-point Laplacian ``D`` (the grid graph's Laplacian, symmetric)
    couples a pixel to 13 others, with weights that follow from the neighbour counts ``deg``:
    ``deg^2 + deg`` to itself, ``-(deg_u + deg_v)`` to a neighbour, 2 diagonally, 1 two pixels
    away. Its hole rows are two sparse matrices built once per level on the image padded by two
    pixels with zeros (so no neighbour index leaves it, and pixels off the image count 0): all
    13 columns, to take the starting residual from the padded image in one product, and the
    hole columns alone (zero for known neighbours), the system CG solves. Work and memory
    follow the hole's size, not the image's: the only whole-image work is one padding and
    the integer tables' running count.
    """
    c_planes, h, w = filled.shape
    dev, wp = filled.device, w + 4
    # int32 indices: half the memory traffic of the [n, 13] tables (CSR takes them as they
    # are), wherever a rank times 16 fits in them (images up to about 11500 x 11500)
    index = torch.int32 if (h + 4) * wp < _INT32_GRID else torch.int64
    in_grid = F.pad(hole.reshape(1, h, w) > 0.5, (2, 2, 2, 2)).reshape(-1)
    ids = in_grid.nonzero().squeeze(1).to(index)  # hole pixels of the padded grid, raster order
    n = ids.numel()
    if n == 0:
        return filled
    padded = F.pad(filled, (2, 2, 2, 2))
    planes = padded.reshape(c_planes, -1)  # [C, (H+4)(W+4)]
    steps, adjacent, fixed = _stencil_tables(wp, dev)
    neighbour = ids[:, None] + steps  # [n, 13], raster order in each row as CSR wants
    # What a row needs of each neighbour, packed into one int32 so that one gather fetches it:
    # its rank among the hole pixels (its column; a row's ranks never decrease, and a known
    # neighbour takes a neighbour's with weight 0), whether it is a hole pixel, its degree.
    in_grid = in_grid.to(index)
    rank = in_grid.cumsum(0, dtype=index).sub_(in_grid)
    packed = rank.mul_(16).add_(in_grid, alpha=8).add_(_degrees(h, w, dev))[neighbour]
    column = packed.bitwise_right_shift(4).clamp_(max=n - 1)
    in_hole = packed.bitwise_and(8).bool()
    deg_v = packed.bitwise_and_(7)
    deg_u = deg_v[:, _CENTRE : _CENTRE + 1]
    weight = torch.where(adjacent, (deg_v + deg_u).neg_().float(), fixed)
    weight[:, _CENTRE] = (deg_u * deg_u + deg_u).squeeze(1).float()
    size = len(_STENCIL)
    rows = torch.arange(0, n * size + 1, size, dtype=index, device=dev)
    with warnings.catch_warnings():  # "sparse CSR support is in beta": not the user's concern
        warnings.filterwarnings("ignore", message=".*[Ss]parse", category=UserWarning)
        full = torch.sparse_csr_tensor(
            rows, neighbour.reshape(-1), weight.reshape(-1), size=(n, planes.shape[1])
        )
        # [n, C]; a product per plane: several times faster than with the strided planes.T.
        # The tie to the start cancels at the start.
        r = torch.stack([full @ plane for plane in planes], dim=1).neg_()
        weight = weight.mul_(in_hole)
        weight[:, _CENTRE] += _TIE
        system = torch.sparse_csr_tensor(rows, column.reshape(-1), weight.reshape(-1), size=(n, n))
    x = planes[:, ids].T.contiguous()  # [n, C]: a pixel's planes side by side
    x = _conjugate_gradients(lambda p: system @ p, x, r, iterations, (0,))
    planes[:, ids] = x.T
    return padded[:, 2:-2, 2:-2]


def _solve_dense(filled: Tensor, hole: Tensor, iterations: int) -> Tensor:
    """The hole values of one level by CG on whole images, from ``filled``'s.

    Branch-free on the data, so it is what runs inside ``torch.compile``.
    """
    r = -hole * _bilaplace(filled)  # the tie to the start cancels at the start

    def apply(p: Tensor) -> Tensor:
        return hole * _bilaplace(p) + _TIE * p

    # CG on the change from the start: the same iterates as from the start itself
    change = _conjugate_gradients(apply, torch.zeros_like(filled), r, iterations, (2, 3))
    return filled + change


def _solve(filled: Tensor, hole: Tensor, iterations: int) -> Tensor:
    """One level, ``filled`` holding the start in the holes: on the hole pixels only in eager
    mode, on whole images when compiling (the sparse form's sizes depend on the data, which a
    single graph cannot have)."""
    if torch.compiler.is_compiling():
        return _solve_dense(filled, hole, iterations)
    solved = [_solve_sparse(f, h, iterations) for f, h in zip(filled, hole, strict=True)]
    return solved[0][None] if len(solved) == 1 else torch.stack(solved)  # no copy for one


def _cell_sums(x: Tensor) -> Tensor:
    """Sum of each 2x2 cell: strided slices, several times faster on a CPU than pooling."""
    return (x[..., ::2, ::2] + x[..., 1::2, ::2]).add_(x[..., ::2, 1::2]).add_(x[..., 1::2, 1::2])


def _halve(known: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """Mean of the known pixels of each 2x2 cell (``known`` is 0 elsewhere); a cell is known
    if any of its pixels is, and is 0 otherwise."""
    h, w = known.shape[-2:]
    if h % 2 or w % 2:
        known = F.pad(known, (0, w % 2, 0, h % 2), mode="replicate")
        valid = F.pad(valid, (0, w % 2, 0, h % 2), mode="replicate")
    weight = _cell_sums(valid)
    return _cell_sums(known).div_(weight.clamp(min=1e-6)), (weight > 0).to(known.dtype)


def _near(valid: Tensor, reach: int) -> Tensor:
    """1 within ``reach`` pixels (a square) of a valid pixel, else 0.

    Shifted maxima along each axis: several times faster on a CPU than max or average pooling.
    """
    h, w = valid.shape[-2:]
    padded = F.pad(valid, (reach, reach, 0, 0))
    rows = padded[..., :w]
    for dx in range(1, 2 * reach + 1):
        rows = torch.maximum(rows, padded[..., dx : dx + w])
    padded = F.pad(rows, (0, 0, reach, reach))
    near = padded[..., :h, :]
    for dy in range(1, 2 * reach + 1):
        near = torch.maximum(near, padded[..., dy : dy + h, :])
    return near


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
                # each plane as an image of its own: twice as fast on a CPU, the same values
                planes = guess.reshape(-1, 1, *guess.shape[-2:])
                guess = F.interpolate(planes, size=known.shape[-2:], mode="bilinear")
                guess = guess.reshape(known.shape)
            # Coarse levels are cheap and carry the slow, long-range part of the solution;
            # the finest levels only settle the detail near the holes' edges, so they solve
            # within ``reach`` pixels of a known one and keep the coarser solution farther in.
            hole = 1 - lv
            filled = torch.addcmul(known, guess, hole)  # ``known`` is 0 in the holes
            banded = depth < len(_REACH) and min(known.shape[-2:]) >= _BAND_MIN
            if banded:
                reach = max(iterations // _REACH[depth], 1)
                if reach < max(known.shape[-2:]):
                    hole = hole * _near(lv, reach)
            guess = _solve(filled, hole, iterations if banded else 2 * iterations)
        return guess.to(dtype)


def blend(pred: Tensor, gate: Tensor, fill: Tensor) -> Tensor:
    """``gate * pred + (1 - gate) * fill`` in float32, returned in the prediction's dtype: how
    a gated model's prediction meets this fill, at whatever scale each was computed."""
    return (gate * pred.float() + (1 - gate) * fill.float()).to(pred.dtype)
