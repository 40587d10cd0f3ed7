"""A smooth fill of the holes from the known pixels: the thin-plate (biharmonic) interpolant.

The fill minimises the summed squared discrete Laplacian of the whole image over the hole
pixels, which is the biharmonic equation that scikit-image's ``inpaint_biharmonic`` solves
directly. Here it is solved in torch with conjugate gradients, coarse to fine: each level starts
from the level below, so a few dozen iterations per level are enough at any image size, the
whole batch is solved at once, and it runs on whatever device the model is on.

Models with ``prior="smooth"`` blend their prediction with this fill (see :mod:`pconv.unet`).
"""

from __future__ import annotations

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


def _laplace_t(d: Tensor) -> Tensor:
    """The transpose of :func:`_laplace`: spread each value back to its stencil, then fold the
    mirrored ring onto the edge pixels it copied."""
    e = (
        F.pad(d, (1, 1, 0, 2))
        + F.pad(d, (1, 1, 2, 0))
        + F.pad(d, (0, 2, 1, 1))
        + F.pad(d, (2, 0, 1, 1))
    )
    e[..., 1, :] += e[..., 0, :]
    e[..., -2, :] += e[..., -1, :]
    e[..., :, 1] += e[..., :, 0]
    e[..., :, -2] += e[..., :, -1]
    return e[..., 1:-1, 1:-1] - 4 * d


def _bilaplace(x: Tensor) -> Tensor:
    """``D^T D x``: the gradient of the thin-plate energy (halved).

    Shifts rather than a convolution: several times faster on a CPU for these few planes.
    """
    return _laplace_t(_laplace(x))


def _solve(known: Tensor, hole: Tensor, start: Tensor, iterations: int) -> Tensor:
    """Conjugate gradients for the hole values of one level; ``known`` is zero in the holes."""
    start = start * hole
    b = -hole * _bilaplace(known) + _TIE * start
    x = start

    def apply(p: Tensor) -> Tensor:
        return hole * _bilaplace(p) + _TIE * p

    r = b - apply(x)
    p = r
    rr = (r * r).sum(dim=(2, 3), keepdim=True)
    tiny = torch.finfo(x.dtype).tiny
    for _ in range(iterations):
        # Converged planes would otherwise iterate on in denormal floats, which are slow.
        if float(rr.max()) < _DONE:
            break
        ap = apply(p)
        alpha = rr / (p * ap).sum(dim=(2, 3), keepdim=True).clamp(min=tiny)
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = (r * r).sum(dim=(2, 3), keepdim=True)
        p = r + (rr_new / rr.clamp(min=tiny)) * p
        rr = rr_new
    return known + x


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
def smooth_fill(image: Tensor, valid: Tensor, iterations: int = 16) -> Tensor:
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
            if guess.shape[-2:] != known.shape[-2:]:
                guess = F.interpolate(guess, size=known.shape[-2:], mode="bilinear")
            # Coarse levels are cheap and carry the slow, long-range part of the solution;
            # the finest level only needs to settle the detail near the holes' edges.
            guess = _solve(known * lv, 1 - lv, guess, iterations << min(depth, 2))
        return guess.to(dtype)
