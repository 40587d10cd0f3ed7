"""pconv.holes: the one composite and the one mask policy every front end uses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pconv.holes import composite


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_composite_keeps_known_pixels_bit_for_bit(kind):
    gen = np.random.default_rng(0)
    known = gen.random((9, 9, 3), dtype=np.float32)
    filled = gen.random((9, 9, 3), dtype=np.float32)
    hole = np.zeros((9, 9, 1), dtype=bool)
    hole[2:5, 2:5] = True
    if kind == "torch":
        known, filled, hole = (torch.from_numpy(a) for a in (known, filled, hole))
    out = composite(known, filled, hole)
    inside = hole[..., 0]
    assert (out[~inside] == known[~inside]).all() and (out[inside] == filled[inside]).all()


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_a_soft_seam_blends_only_where_its_weight_is_between_0_and_1(kind):
    """The nodes' feathered seam: 0 keeps the original exactly, 1 takes the fill exactly."""
    gen = np.random.default_rng(1)
    known = gen.random((9, 9, 3), dtype=np.float32)
    filled = gen.random((9, 9, 3), dtype=np.float32)
    alpha = np.zeros((9, 9), dtype=np.float32)
    alpha[2:5, 2:5] = 1.0
    alpha[5, 2:5] = 0.5
    if kind == "torch":
        known, filled, alpha = (torch.from_numpy(a) for a in (known, filled, alpha))
    out = composite(known, filled, alpha[..., None])
    assert (out[alpha == 0] == known[alpha == 0]).all()
    assert (out[alpha == 1] == filled[alpha == 1]).all()
    np.testing.assert_allclose(np.asarray(out[5, 2:5]), np.asarray((known + filled)[5, 2:5] / 2))


def test_composite_broadcasts_a_channels_first_mask():
    """[B,3,H,W] images with a [B,1,H,W] mask, as pconv.inpaint and the trainer hold them."""
    known, filled = torch.zeros(2, 3, 4, 4), torch.ones(2, 3, 4, 4)
    valid = torch.ones(2, 1, 4, 4)
    valid[:, :, 1, 1] = 0
    out = composite(known, filled, valid == 0)
    assert out.sum() == 2 * 3 and (out[:, :, 1, 1] == 1).all()


def test_resize_mask_keeps_thin_strokes_only_when_asked():
    from pconv.io import resize_mask

    stroke = np.zeros((100, 100), bool)
    stroke[:, 47] = True  # one pixel wide: nearest-neighbour sampling misses it at 1/10
    assert not resize_mask(stroke, (10, 10)).any()
    kept = resize_mask(stroke, (10, 10), keep_strokes=True)
    assert kept[:, 4].all() and kept.sum() == 10
    assert resize_mask(kept, (100, 100), keep_strokes=True)[:, 40:50].all()  # growing: nearest
