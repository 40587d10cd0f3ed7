"""pconv.smooth: the thin-plate fill that gated models blend with."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.restoration import inpaint_biharmonic

from pconv.masks import sample_mask
from pconv.smooth import smooth_fill


def _tensors(image: np.ndarray, hole: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    return x, torch.from_numpy(~hole)[None, None].float()


def _photo(photos: dict[str, np.ndarray], size: int = 128) -> np.ndarray:
    return photos["astronaut"][:size, 100 : 100 + size].astype(np.float32) / 255


def test_known_pixels_stay_and_hole_contents_do_not_matter(photos):
    image = _photo(photos)
    hole = sample_mask("irregular", 128, 0, bucket=2)
    x, valid = _tensors(image, hole)
    filled = smooth_fill(x, valid)
    noisy = torch.where(valid > 0, x, torch.rand_like(x))
    assert torch.equal(filled, smooth_fill(noisy, valid))
    assert torch.equal(filled[..., ~torch.from_numpy(hole)], x[..., ~torch.from_numpy(hole)])
    assert filled.isfinite().all() and filled.dtype == torch.float32


def test_a_plane_is_filled_exactly():
    # The thin-plate energy of a plane is zero: its fill must be the plane itself.
    yy, xx = np.mgrid[0:96, 0:80].astype(np.float32)
    image = np.stack([0.1 + xx / 200, 0.8 - yy / 300, 0.2 + (xx + yy) / 500], axis=-1)
    hole = np.zeros((96, 80), bool)
    hole[20:70, 10:40] = True
    hole[0:10, 50:70] = True  # touching the border
    x, valid = _tensors(image, hole)
    filled = smooth_fill(x, valid, iterations=256)[0].permute(1, 2, 0).numpy()
    error = np.abs(filled - image)
    assert error[20:70, 10:40].max() < 1e-4
    # At the edge the image counts as mirrored, which flattens a slope across it a little.
    assert error[0:10, 50:70].max() < 3 / 255


def test_holes_touching_the_edge_stay_well_posed(photos):
    # A free edge left the system nearly singular: more iterations drifted to values far
    # outside [0, 1]. Mirrored edges make it definite: more iterations only converge.
    image = photos["astronaut"][::2, ::2].astype(np.float32) / 255  # 256x256
    hole = sample_mask("irregular", 256, 0, bucket=2)
    assert hole[0].any() or hole[-1].any() or hole[:, 0].any() or hole[:, -1].any()
    x, valid = _tensors(image, hole)
    exact = inpaint_biharmonic(image, hole, channel_axis=-1)
    limit = 1.2 * float(np.sqrt(np.mean((exact - image)[hole] ** 2)))
    for iterations in (16, 256):
        filled = smooth_fill(x, valid, iterations=iterations)[0].permute(1, 2, 0).numpy()
        assert filled.min() > -1 and filled.max() < 2, iterations  # was -18..21
        assert float(np.sqrt(np.mean((filled - image)[hole] ** 2))) < limit, iterations


@pytest.mark.parametrize("bucket", [0, 2, 4])
def test_same_solution_as_scikit_image_biharmonic(photos, bucket):
    # The same equation solved two ways; they treat the image border differently, so compare
    # on holes clear of it. Converged, the fills agree; with the default iterations (what the
    # models use) the fill is as close to the truth as the exact solution is.
    image = _photo(photos)
    hole = sample_mask("irregular", 128, bucket, bucket=bucket, border=False, margin=12)
    x, valid = _tensors(image, hole)
    reference = inpaint_biharmonic(image, hole, channel_axis=-1)

    def rmse(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.sqrt(np.mean((a - b)[hole] ** 2)))

    converged = smooth_fill(x, valid, iterations=1000)[0].permute(1, 2, 0).numpy()
    assert rmse(converged, reference) < 0.005
    quick = smooth_fill(x, valid)[0].permute(1, 2, 0).numpy()
    assert rmse(quick, image) < 1.1 * rmse(reference, image)


def test_each_image_of_a_batch_is_its_own_problem(photos):
    a, b = _photo(photos), photos["coffee"][:128, :128].astype(np.float32) / 255
    holes = [sample_mask("irregular", 128, 1, bucket=1), sample_mask("irregular", 128, 2, bucket=3)]
    xa, va = _tensors(a, holes[0])
    xb, vb = _tensors(b, holes[1])
    batch = smooth_fill(torch.cat([xa, xb]), torch.cat([va, vb]))
    alone = torch.cat([smooth_fill(xa, va), smooth_fill(xb, vb)])
    assert torch.allclose(batch, alone, atol=1e-5)


def test_edge_cases_odd_sizes_no_hole_all_hole_and_half_precision(photos):
    image = _photo(photos)[:37, :53]
    hole = np.zeros((37, 53), bool)
    x, valid = _tensors(image, hole)
    assert torch.equal(smooth_fill(x, valid), x)
    hole[5:30, 7:20] = True
    x, valid = _tensors(image, hole)
    filled = smooth_fill(x, valid)
    assert filled.shape == x.shape and filled.isfinite().all()
    assert float(filled.min()) >= -0.05 and float(filled.max()) <= 1.05  # may overshoot a little
    assert torch.allclose(smooth_fill(x.bfloat16(), valid).float(), filled, atol=1e-2)
    assert smooth_fill(x.half(), valid).dtype == torch.float16
    grey = smooth_fill(x, torch.zeros_like(valid))
    assert torch.allclose(grey, torch.full_like(x, 0.5))


@pytest.mark.parametrize("size", [(23, 31), (1, 7), (2, 2), (40, 9)])
def test_hole_only_solver_is_the_whole_image_solver(size):
    # Eager mode solves on the hole pixels (a sparse matrix), torch.compile on whole images:
    # the same equations, so the same iterates to float rounding, borders included.
    from pconv.smooth import _solve_dense, _solve_sparse

    torch.manual_seed(0)
    h, w = size
    image, start = torch.rand(3, h, w), torch.rand(3, h, w)
    hole = (torch.rand(1, h, w) < 0.4).float()
    hole[0, 0, 0] = 1  # a corner: the fewest neighbours
    filled = image * (1 - hole) + start * hole
    sparse = _solve_sparse(filled, hole, 40)
    dense = _solve_dense(filled[None], hole[None], 40)[0]
    torch.testing.assert_close(sparse, dense, atol=1e-5, rtol=0)
    assert torch.equal(sparse[:, hole[0] == 0], image[:, hole[0] == 0])


def test_images_too_large_for_int32_tables_take_int64(monkeypatch):
    import pconv.smooth

    torch.manual_seed(1)
    image, start = torch.rand(3, 30, 20), torch.rand(3, 30, 20)
    hole = (torch.rand(1, 30, 20) < 0.4).float()
    filled = image * (1 - hole) + start * hole
    small = pconv.smooth._solve_sparse(filled, hole, 20)
    monkeypatch.setattr(pconv.smooth, "_INT32_GRID", 100)  # as if the image were huge
    torch.testing.assert_close(pconv.smooth._solve_sparse(filled, hole, 20), small)


def test_near_is_a_square_dilation():
    import torch.nn.functional as F

    from pconv.smooth import _near

    valid = (torch.rand(2, 1, 37, 41, generator=torch.Generator().manual_seed(0)) > 0.9).float()
    for reach in (1, 2, 5):
        assert torch.equal(_near(valid, reach), F.max_pool2d(valid, 2 * reach + 1, 1, reach))


def test_banded_fine_levels_fill_as_well_as_solving_every_hole_pixel(photos, monkeypatch):
    # The finest levels solve only near the holes' edges and keep the coarser solution farther
    # in: the fill stays close to the unbanded one (twice the steps everywhere) and about as
    # close to the photo (measured: 0.7-1.2 of an 8-bit level worse, 7.6-9.0 apart; a band
    # that lost the coarse solution would be tens of levels off).
    import pconv.smooth

    image = photos["astronaut"][::2, ::2].astype(np.float32) / 255  # 256x256
    for bucket in (1, 4):
        hole = sample_mask("irregular", 256, bucket, bucket=bucket)
        x, valid = _tensors(image, hole)
        banded = smooth_fill(x, valid)[0].permute(1, 2, 0).numpy()
        monkeypatch.setattr(pconv.smooth, "_REACH", ())
        everywhere = smooth_fill(x, valid)[0].permute(1, 2, 0).numpy()
        monkeypatch.undo()

        def rmse(a: np.ndarray, b: np.ndarray, hole: np.ndarray = hole) -> float:
            return float(np.sqrt(np.mean((a - b)[hole] ** 2)))

        assert rmse(banded, everywhere) < 12 / 255, bucket
        assert rmse(banded, image) < rmse(everywhere, image) + 2 / 255, bucket
        assert not np.array_equal(banded, everywhere)  # the band is in effect
