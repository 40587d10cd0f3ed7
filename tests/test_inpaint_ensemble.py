"""``pconv.inpaint(ensemble=True)``: DeepGIN's test-time average of five views, for any model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pconv
from pconv.archs.deepgin import DeepGIN, DeepGINConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def _release_views(x: np.ndarray) -> list[np.ndarray]:
    """test_ensemble.py's five inputs for a square sub-image ``x`` [H, W, C]: its loops read
    the photo in transposed (``np_tmp_img[i, j] = np_resized_img[j, i]``), and that is run as
    it is, turned by PIL's ``rotate(90)``, ``rotate(180)``, ``rotate(270)`` (counter-clockwise,
    as ``np.rot90``) and flipped left-right."""
    t = x.transpose(1, 0, 2)
    return [t, np.rot90(t, 1), np.rot90(t, 2), np.rot90(t, 3), t[:, ::-1]]


def _release_unviews(ys: list[np.ndarray]) -> list[np.ndarray]:
    """Each result turned back as test_ensemble.py does (``rotate(270)``, ``(180)``, ``(90)``,
    the flip again), then written back through the same transposed indexing."""
    back = [ys[0], np.rot90(ys[1], -1), np.rot90(ys[2], -2), np.rot90(ys[3], -3), ys[4][:, ::-1]]
    return [b.transpose(1, 0, 2) for b in back]


def _run(model: torch.nn.Module, x: np.ndarray, hole: np.ndarray) -> np.ndarray:
    image = torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None].float()
    valid = torch.from_numpy(np.ascontiguousarray(~hole)).float()[None, None]
    with torch.no_grad():
        out = model(image * valid, valid).clamp(0, 1)
    return out[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("kind", ["unet", "deepgin"])
def test_ensemble_averages_the_release_views(kind, tiny_model, photos):
    """On a photo the crop strategy fills in one run at its own size, the result is the
    composite of the average over the release's five views, each turned back."""
    if kind == "unet":
        model = tiny_model
    else:
        torch.manual_seed(0)
        config = DeepGINConfig(base_width=8, coarse_blocks=1, refine_blocks=2, resolution=64)
        model = DeepGIN(config)
        with torch.no_grad():  # weights that make the output depend on the input
            for p in model.parameters():
                fan_in = p[0].numel() if p.dim() > 1 else 25
                p.copy_(torch.randn(p.shape) / fan_in**0.5)
    model.eval()
    photo = photos["astronaut"][100:164, 200:264].astype(np.float32) / 255  # 64 x 64
    hole = np.zeros((64, 64), bool)
    hole[10:30, 20:50] = True  # not symmetric under any of the views
    hole[40:44, 5:60] = True
    out = pconv.inpaint(photo, hole, model, device="cpu", strategy="crop", ensemble=True)
    views = [_run(model, x, h[..., 0]) for x, h in zip(
        _release_views(photo), _release_views(hole[..., None]), strict=True
    )]  # fmt: skip
    mean = np.mean(_release_unviews(views), axis=0)
    expected = np.where(hole[..., None], mean, photo)
    np.testing.assert_allclose(out, expected, atol=2e-6)
    assert np.array_equal(out[~hole], photo[~hole])
    plain = pconv.inpaint(photo, hole, model, device="cpu", strategy="crop")
    assert np.abs(plain - out)[hole].mean() > 1e-3  # the views do differ


@pytest.mark.parametrize("strategy", ["crop", "subsample"])
def test_ensemble_keeps_known_pixels_and_ignores_holes(strategy, photos):
    """Through every path (crops, downscaled crops, sub-images; a gated model's predict):
    known pixels are the photo's, bit for bit, and the holes' content never matters."""
    model = pconv.load_model("default")  # gated: its prediction and gate are averaged
    photo = photos["chelsea"][:150, :210]  # not square, no multiple of anything
    hole = np.zeros(photo.shape[:2], bool)
    hole[20:120, 30:170] = True
    out = pconv.inpaint(photo, hole, model, device="cpu", strategy=strategy, ensemble=True)
    assert out.shape == photo.shape and np.array_equal(out[~hole], photo[~hole])
    scrambled = photo.copy()
    scrambled[hole] = np.random.default_rng(0).integers(0, 256, (int(hole.sum()), 3))
    again = pconv.inpaint(scrambled, hole, model, device="cpu", strategy=strategy, ensemble=True)
    assert np.array_equal(out, again)
