"""Tests of pconv.losses against plain re-implementations (loops, numpy, float64 functional).

No Hub access is needed: the timm-layout weights file is built here with random tensors, and
the Hub path is exercised offline through a hand-made huggingface_hub cache directory.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from pconv.archs.unet.loss import TERM_NAMES, InpaintingLoss, LossWeights
from pconv.errors import CheckpointError
from pconv.losses import (
    BackboneUnavailableError,
    composite,
    dilated_hole_region,
    gram_matrix,
    hole_loss,
    load_stlpips_vgg16,
    load_timm_vgg16_file,
    perceptual_loss,
    resolve_backbone,
    ssim_loss,
    ssim_map,
    style_loss,
    tv_loss,
    valid_loss,
)
from pconv.losses.backbones import HUB_FILENAME, HUB_REPO, file_sha256

# ---------------------------------------------------------------------------------------------
# Plain references
# ---------------------------------------------------------------------------------------------

VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])
HAS_STLPIPS = importlib.util.find_spec("stlpips_pytorch") is not None


def ref_pixel_terms(out: np.ndarray, gt: np.ndarray, valid: np.ndarray) -> tuple[float, float]:
    """(L_valid, L_hole) by loops; valid is [B,1,H,W]."""
    b_n, c_n, h_n, w_n = out.shape
    l_valid = l_hole = 0.0
    for b in range(b_n):
        s_valid = s_hole = 0.0
        for c in range(c_n):
            for i in range(h_n):
                for j in range(w_n):
                    m = valid[b, 0, i, j]
                    d = out[b, c, i, j] - gt[b, c, i, j]
                    s_valid += abs(m * d)
                    s_hole += abs((1 - m) * d)
        l_valid += s_valid / (c_n * h_n * w_n)
        l_hole += s_hole / (c_n * h_n * w_n)
    return l_valid / b_n, l_hole / b_n


def ref_comp(out: np.ndarray, gt: np.ndarray, valid: np.ndarray) -> np.ndarray:
    comp = np.empty_like(out)
    for b, c, i, j in np.ndindex(*out.shape):
        known = valid[b, 0, i, j] == 1
        comp[b, c, i, j] = gt[b, c, i, j] if known else out[b, c, i, j]
    return comp


def ref_region(valid_hw: np.ndarray) -> np.ndarray:
    """P: pixels with a hole pixel in their 3x3 neighbourhood (inside the image)."""
    h_n, w_n = valid_hw.shape
    region = np.zeros((h_n, w_n), dtype=bool)
    for i in range(h_n):
        for j in range(w_n):
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    y, x = i + di, j + dj
                    if 0 <= y < h_n and 0 <= x < w_n and valid_hw[y, x] < 0.5:
                        region[i, j] = True
    return region


def ref_tv(comp: np.ndarray, valid: np.ndarray) -> float:
    b_n, c_n, h_n, w_n = comp.shape
    total = 0.0
    for b in range(b_n):
        p = ref_region(valid[b, 0])
        s = 0.0
        for i in range(h_n):
            for j in range(w_n):
                if j + 1 < w_n and p[i, j] and p[i, j + 1]:
                    s += sum(abs(comp[b, c, i, j + 1] - comp[b, c, i, j]) for c in range(c_n))
                if i + 1 < h_n and p[i, j] and p[i + 1, j]:
                    s += sum(abs(comp[b, c, i + 1, j] - comp[b, c, i, j]) for c in range(c_n))
        total += s / (c_n * h_n * w_n)
    return total / b_n


def ref_ssim_loss(comp: np.ndarray, gt: np.ndarray) -> float:
    """1 - SSIM per sample, by scikit-image with the settings pconv eval scores with."""
    from skimage.metrics import structural_similarity

    from pconv.evaluation.metrics import SSIM_SETTINGS

    per_sample = [
        1.0 - structural_similarity(g.transpose(1, 2, 0), c.transpose(1, 2, 0), **SSIM_SETTINGS)
        for c, g in zip(comp, gt, strict=True)
    ]
    return float(np.mean(per_sample))


def ref_gram_loops(feat: np.ndarray) -> np.ndarray:
    """[C,H,W] -> [C,C] with K = 1/(C H W), by loops over channel pairs."""
    c_n, h_n, w_n = feat.shape
    gram = np.zeros((c_n, c_n))
    for a in range(c_n):
        for b in range(c_n):
            gram[a, b] = np.sum(feat[a] * feat[b]) / (c_n * h_n * w_n)
    return gram


def ref_gram(feat: np.ndarray) -> np.ndarray:
    """Batched [B,C,H,W] -> [B,C,C], float64 numpy."""
    b_n, c_n, h_n, w_n = feat.shape
    flat = feat.reshape(b_n, c_n, h_n * w_n).astype(np.float64)
    return flat @ flat.transpose(0, 2, 1) / (c_n * h_n * w_n)


def ref_perceptual(fo: list, fc: list, fg: list) -> float:
    return sum(
        np.abs(o - g).mean() + np.abs(c - g).mean() for o, c, g in zip(fo, fc, fg, strict=True)
    )


def ref_style(fx: list, fg: list) -> float:
    # mean over batch and the C x C Gram entries, summed over layers
    return sum(np.abs(ref_gram(x) - ref_gram(g)).mean() for x, g in zip(fx, fg, strict=True))


def ref_trunk(tensors: dict[str, torch.Tensor], image: torch.Tensor) -> list[torch.Tensor]:
    """VGG16 to pool3 with F.conv2d/relu/max_pool2d in float64, timm key names."""
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    x = (image.double() - mean) / std
    feats, index = [], 0
    for v in VGG16_CFG[:10]:
        if v == "M":
            x = F.max_pool2d(x, 2, 2)
            feats.append(x)
            index += 1
        else:
            w = tensors[f"features.{index}.weight"].double()
            b = tensors[f"features.{index}.bias"].double()
            x = F.relu(F.conv2d(x, w, b, padding=1))
            index += 2
    return feats


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------


def random_timm_vgg16(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under exactly the key names of timm's vgg16.tv_in1k checkpoint.

    The conv layers have their real shapes; the unused classifier tensors (pre_logits.fc1/fc2,
    head.fc) keep their names but are shrunk, so the file stays ~60 MB instead of 528 MB.
    """
    gen = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}
    index, c_in = 0, 3
    for v in VGG16_CFG:
        if v == "M":
            index += 1
            continue
        std = (2.0 / (c_in * 9)) ** 0.5  # He scale, so features neither vanish nor explode
        tensors[f"features.{index}.weight"] = torch.randn(v, c_in, 3, 3, generator=gen) * std
        tensors[f"features.{index}.bias"] = torch.randn(v, generator=gen) * 0.05
        index, c_in = index + 2, v
    for name, shape in (("pre_logits.fc1", (8, 512, 1, 1)), ("pre_logits.fc2", (8, 8, 1, 1))):
        tensors[f"{name}.weight"] = torch.randn(*shape, generator=gen)
        tensors[f"{name}.bias"] = torch.zeros(shape[0])
    tensors["head.fc.weight"] = torch.randn(10, 8, generator=gen)
    tensors["head.fc.bias"] = torch.zeros(10)
    return tensors


@pytest.fixture(scope="module")
def timm_tensors() -> dict[str, torch.Tensor]:
    return random_timm_vgg16()


@pytest.fixture(scope="module")
def timm_file(tmp_path_factory: pytest.TempPathFactory, timm_tensors) -> Path:
    path = tmp_path_factory.mktemp("vgg") / HUB_FILENAME
    save_file(timm_tensors, str(path))
    return path


@pytest.fixture(scope="module")
def file_backbone(timm_file: Path):
    return load_timm_vgg16_file(timm_file)


def make_batch(seed: int, b: int = 2, h: int = 16, w: int = 16):
    gen = torch.Generator().manual_seed(seed)
    out = torch.rand(b, 3, h, w, generator=gen)
    gt = torch.rand(b, 3, h, w, generator=gen)
    valid = (torch.rand(b, 1, h, w, generator=gen) > 0.4).float()
    valid[0, :, : h // 2, : w // 3] = 0  # a block hole touching the top-left border
    return out, gt, valid


def hub_cache(root: Path, source: Path, revision: str = "0123456789abcdef" * 2 + "01234567"):
    """The directory layout hf_hub_download reads in offline mode (real files, no symlinks)."""
    repo_dir = root / ("models--" + HUB_REPO.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(revision)
    shutil.copyfile(source, snapshot / HUB_FILENAME)
    return snapshot / HUB_FILENAME


# ---------------------------------------------------------------------------------------------
# Pixel terms, composition, Gram, TV
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_valid_and_hole_match_loops(seed: int) -> None:
    out, gt, valid = make_batch(seed, h=6, w=7)
    want_valid, want_hole = ref_pixel_terms(out.numpy(), gt.numpy(), valid.numpy())
    assert valid_loss(out, gt, valid).item() == pytest.approx(want_valid, rel=1e-5)
    assert hole_loss(out, gt, valid).item() == pytest.approx(want_hole, rel=1e-5)


def test_pixel_terms_divide_by_all_elements_not_masked_ones() -> None:
    gt = torch.zeros(1, 3, 4, 5)
    out = gt + 1.0
    valid = torch.ones(1, 1, 4, 5)
    valid[0, 0, 2, 3] = 0  # one hole pixel, error 1 in each of 3 channels
    assert hole_loss(out, gt, valid).item() == pytest.approx(3 / 60)
    assert valid_loss(out, gt, valid).item() == pytest.approx(57 / 60)


def test_composite_takes_gt_on_known_pixels() -> None:
    out, gt, valid = make_batch(2, h=5, w=5)
    want = ref_comp(out.numpy(), gt.numpy(), valid.numpy())
    np.testing.assert_allclose(composite(out, gt, valid).numpy(), want, rtol=0, atol=1e-7)


def test_gram_matches_loops_and_normalisation() -> None:
    # seeded: with the global generator, whatever ran before decided whether an entry near 0
    # met rtol=1e-5 in float32 (it failed in some test orders)
    feat = torch.randn(2, 5, 3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    got = gram_matrix(feat)
    assert got.dtype == torch.float32 and got.shape == (2, 5, 5)
    for b in range(2):
        np.testing.assert_allclose(got[b].numpy(), ref_gram_loops(feat[b].numpy()), rtol=1e-5)
    # constant features: every entry is H*W / (C*H*W) = 1/C
    ones = gram_matrix(torch.ones(1, 8, 3, 3))
    np.testing.assert_allclose(ones.numpy(), np.full((1, 8, 8), 1 / 8), rtol=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_gram_and_style_stay_float32_under_autocast(dtype) -> None:
    # Autocast would run the bmm in low precision; the Gram must not follow it.
    gen = torch.Generator().manual_seed(12)
    feat = torch.rand(2, 16, 24, 24, generator=gen) * 50
    other = feat + torch.rand(2, 16, 24, 24, generator=gen) * 0.5
    with torch.autocast("cpu", dtype=dtype):
        gram = gram_matrix(feat)
        style = style_loss([other], [feat])
    assert gram.dtype == torch.float32 and style.dtype == torch.float32
    want_gram = ref_gram(feat.double().numpy())
    np.testing.assert_allclose(gram.numpy(), want_gram, rtol=1e-5)
    want_style = ref_style([other.double().numpy()], [feat.double().numpy()])
    assert style.item() == pytest.approx(want_style, rel=1e-4)


def test_perceptual_and_style_match_reference() -> None:
    gen = torch.Generator().manual_seed(3)
    shapes = [(2, 4, 6, 6), (2, 6, 3, 3), (2, 8, 2, 2)]
    fo, fc, fg = ([torch.rand(*s, generator=gen) * 5 for s in shapes] for _ in range(3))
    npy = [[t.double().numpy() for t in fs] for fs in (fo, fc, fg)]
    assert perceptual_loss(fo, fc, fg).item() == pytest.approx(ref_perceptual(*npy), rel=1e-5)
    assert style_loss(fo, fg).item() == pytest.approx(ref_style(npy[0], npy[2]), rel=1e-5)
    assert style_loss(fg, fg).item() == 0.0


def _valid_with_holes(h: int, w: int, holes: list[tuple[int, int]]) -> torch.Tensor:
    valid = torch.ones(1, 1, h, w)
    for i, j in holes:
        valid[0, 0, i, j] = 0
    return valid


TV_CASES = {
    "centre-pixel": (6, 7, [(3, 3)]),
    "corner-pixel": (5, 5, [(0, 0)]),
    "edge-pixel": (5, 6, [(4, 2)]),
    "border-strip": (6, 6, [(i, 5) for i in range(6)]),
    "top-left-block": (7, 6, [(i, j) for i in range(3) for j in range(2)]),
    "two-far-pixels": (8, 8, [(1, 1), (6, 6)]),
    "no-hole": (4, 4, []),
    "all-hole": (4, 5, [(i, j) for i in range(4) for j in range(5)]),
}


@pytest.mark.parametrize("case", sorted(TV_CASES))
def test_tv_matches_loops(case: str) -> None:
    h, w, holes = TV_CASES[case]
    valid = _valid_with_holes(h, w, holes)
    comp = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(len(case)))
    np.testing.assert_array_equal(
        dilated_hole_region(valid)[0, 0].numpy(), ref_region(valid[0, 0].numpy())
    )
    want = ref_tv(comp.double().numpy(), valid.numpy())
    assert tv_loss(comp, valid).item() == pytest.approx(want, rel=1e-5, abs=1e-12)


def test_tv_region_of_single_pixels() -> None:
    corner = dilated_hole_region(_valid_with_holes(5, 5, [(0, 0)]))[0, 0]
    assert corner.sum().item() == 4 and corner[:2, :2].all()
    centre = dilated_hole_region(_valid_with_holes(5, 5, [(2, 2)]))[0, 0]
    assert centre.sum().item() == 9 and centre[1:4, 1:4].all()


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(1, 6),
    st.integers(0, 2**31 - 1),
)
def test_tv_random_masks(h: int, w: int, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    valid = (torch.rand(2, 1, h, w, generator=gen) > 0.6).float()
    comp = torch.rand(2, 3, h, w, generator=gen)
    want = ref_tv(comp.double().numpy(), valid.numpy())
    assert tv_loss(comp, valid).item() == pytest.approx(want, rel=1e-5, abs=1e-9)


@settings(max_examples=25, deadline=None)
@given(st.integers(11, 30), st.integers(11, 30), st.integers(0, 2**31 - 1))
def test_ssim_matches_scikit_image(h: int, w: int, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    gt = torch.rand(2, 3, h, w, generator=gen)
    noisy = (gt + 0.2 * torch.randn(2, 3, h, w, generator=gen)).clamp(0, 1)
    want = ref_ssim_loss(noisy.double().numpy(), gt.double().numpy())
    assert ssim_loss(noisy, gt).item() == pytest.approx(want, rel=1e-4, abs=1e-6)


def test_ssim_term_sees_only_the_hole_and_its_surround() -> None:
    gen = torch.Generator().manual_seed(3)
    gt = torch.rand(1, 3, 40, 40, generator=gen)
    valid = torch.ones(1, 1, 40, 40)
    valid[..., 18:22, 18:22] = 0
    out = torch.rand(1, 3, 40, 40, generator=gen, requires_grad=True)
    loss = InpaintingLoss(LossWeights(valid=0, hole=0, tv=0, ssim=1), backbone="none")
    terms = loss(out, gt, valid)
    assert terms["ssim"].item() > 0.01
    terms["total"].backward()
    grad = out.grad.abs().sum(1)[0]
    # the composite takes gt on known pixels: only the hole pixels get a gradient
    assert grad[18:22, 18:22].min() > 0 and grad.sum() == grad[18:22, 18:22].sum()
    # windows of known pixels only are perfect: SSIM 1 there
    per_window = ssim_map(composite(out, gt, valid), gt)
    assert torch.allclose(per_window[..., :5, :], torch.ones(()), atol=1e-5)
    assert ssim_loss(gt, gt).abs().item() < 1e-6


# ---------------------------------------------------------------------------------------------
# Backbones
# ---------------------------------------------------------------------------------------------


def test_timm_file_trunk_matches_functional_reference(file_backbone, timm_tensors) -> None:
    image = torch.rand(2, 3, 20, 24, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        got = file_backbone.trunk(image)
    want = ref_trunk(timm_tensors, image)
    assert [tuple(f.shape) for f in got] == [(2, 64, 10, 12), (2, 128, 5, 6), (2, 256, 2, 3)]
    for g, r in zip(got, want, strict=True):
        torch.testing.assert_close(g.double(), r, rtol=1e-4, atol=1e-5)
    info = file_backbone.info
    assert info.name == "vgg16-file" and info.faithful
    assert info.sha256 == file_sha256(Path(info.source)) and len(info.sha256) == 64


def test_trunk_is_frozen_and_stays_in_eval(file_backbone) -> None:
    loss = InpaintingLoss(backbone=file_backbone)
    loss.train()
    assert not loss.trunk.training
    assert all(not p.requires_grad for p in loss.trunk.parameters())


def test_timm_file_errors(tmp_path: Path, timm_tensors) -> None:
    with pytest.raises(CheckpointError, match="no such"):
        load_timm_vgg16_file(tmp_path / "absent.safetensors")
    partial = {k: v for k, v in timm_tensors.items() if k != "features.12.weight"}
    save_file(partial, str(tmp_path / "partial.safetensors"))
    with pytest.raises(CheckpointError, match="missing"):
        load_timm_vgg16_file(tmp_path / "partial.safetensors")
    wrong = dict(timm_tensors, **{"features.5.weight": torch.zeros(128, 32, 3, 3)})
    save_file(wrong, str(tmp_path / "wrong.safetensors"))
    with pytest.raises(CheckpointError, match="does not fit"):
        load_timm_vgg16_file(tmp_path / "wrong.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(CheckpointError):
        load_timm_vgg16_file(tmp_path / "junk.safetensors")


def test_hub_path_offline_from_cache(tmp_path, timm_file, timm_tensors, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cached = hub_cache(tmp_path, timm_file)
    for spec in ("vgg16-hub", "auto"):
        backbone = resolve_backbone(spec, cache_dir=str(tmp_path))
        assert backbone.info.name == "vgg16-hub"
        assert str(cached) in backbone.info.source and HUB_REPO in backbone.info.source
        assert backbone.info.sha256 == file_sha256(timm_file)
    image = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        got = backbone.trunk(image)
    for g, r in zip(got, ref_trunk(timm_tensors, image), strict=True):
        torch.testing.assert_close(g.double(), r, rtol=1e-4, atol=1e-5)


def test_hub_path_explicit_fails_clearly_when_not_cached(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackboneUnavailableError, match="not in the cache"):
        resolve_backbone("vgg16-hub", cache_dir=str(tmp_path))


def test_auto_falls_back_to_none_and_says_so_once(tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    caplog.set_level(logging.INFO, logger="pconv.losses")
    kwargs = {"cache_dir": str(tmp_path), "stlpips_package": "no_such_stlpips_pkg"}
    first = InpaintingLoss(backbone="auto", **kwargs)
    second = InpaintingLoss(backbone="auto", **kwargs)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    text = warnings[0].getMessage()
    for needle in ("NONE", HUB_REPO, "no_such_stlpips_pkg", "vgg16-file:", str(tmp_path)):
        assert needle in text
    for loss in (first, second):
        d = loss.describe()
        assert d["backbone"]["name"] == "none"
        assert d["weights"]["perceptual"] == 0 and d["weights"]["style"] == 0
        assert d["requested_weights"]["style"] == 120
    out, gt, valid = make_batch(0)
    res = first(out, gt, valid)
    assert res["perceptual"].item() == 0 and res["style_out"].item() == 0
    assert res["total"].item() == pytest.approx(
        (res["valid"] + 6 * res["hole"] + 0.1 * res["tv"]).item(), rel=1e-6
    )


@pytest.mark.skipif(not HAS_STLPIPS, reason="stlpips-pytorch not installed")
def test_auto_falls_back_to_stlpips_once(tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    caplog.set_level(logging.WARNING, logger="pconv.losses")
    for _ in range(2):
        backbone = resolve_backbone("auto", cache_dir=str(tmp_path))
        assert backbone.info.name == "stlpips-vgg16" and not backbone.info.faithful
    assert len(caplog.records) == 1 and "stlpips-vgg16" in caplog.records[0].getMessage()


@pytest.mark.skipif(not HAS_STLPIPS, reason="stlpips-pytorch not installed")
def test_stlpips_trunk_matches_functional_reference() -> None:
    backbone = load_stlpips_vgg16()
    state = torch.load(backbone.info.source, map_location="cpu", weights_only=True)
    prefixes = ["net.slice1.0", "net.slice1.2", "net.slice2.6", "net.slice2.8"]
    prefixes += ["net.slice3.12", "net.slice3.14", "net.slice3.16"]
    filters = ["net.slice2.5.filt", "net.slice3.11.filt", "net.slice4.19.filt"]
    image = torch.rand(1, 3, 24, 20, generator=torch.Generator().manual_seed(9))
    # Their ScalingLayer expects [-1, 1] input.
    x = ((2 * image.double() - 1) - state["scaling_layer.shift"].double()) / state[
        "scaling_layer.scale"
    ].double()
    want = []
    for k, prefix in enumerate(prefixes):
        x = F.relu(
            F.conv2d(
                x, state[f"{prefix}.weight"].double(), state[f"{prefix}.bias"].double(), padding=1
            )
        )
        if k in (1, 3, 6):
            x = F.pad(F.max_pool2d(x, 2, stride=1), (2, 2, 2, 2), mode="reflect")
            x = F.conv2d(x, state[filters[len(want)]].double(), stride=2, groups=x.shape[1])
            want.append(x)
    with torch.no_grad():
        got = backbone.trunk(image)
    for g, r in zip(got, want, strict=True):
        torch.testing.assert_close(g.double(), r, rtol=1e-4, atol=1e-5)
    assert backbone.info.sha256.startswith("44597da68f49c183")


def test_explicit_specs(timm_file: Path) -> None:
    assert resolve_backbone("none").trunk is None
    assert resolve_backbone(f"vgg16-file:{timm_file}").info.source == str(timm_file)
    with pytest.raises(ValueError, match="unknown"):
        resolve_backbone("vgg11")
    with pytest.raises(BackboneUnavailableError, match="not installed"):
        resolve_backbone("stlpips-vgg16", stlpips_package="no_such_stlpips_pkg")


def test_zero_feature_weights_load_no_backbone() -> None:
    # "vgg16-hub" would fail here; with nothing to compute it must not even be tried.
    loss = InpaintingLoss(LossWeights(perceptual=0, style=0), backbone="vgg16-hub")
    assert loss.trunk is None and loss.describe()["backbone"]["name"] == "none"


# ---------------------------------------------------------------------------------------------
# The total loss
# ---------------------------------------------------------------------------------------------


def reference_terms(tensors, out, gt, valid) -> dict[str, float]:
    o, g, v = (t.double().numpy() for t in (out, gt, valid))
    comp = ref_comp(o, g, v)
    l_valid, l_hole = ref_pixel_terms(o, g, v)
    fo, fc, fg = (
        [f.numpy() for f in ref_trunk(tensors, torch.from_numpy(x))] for x in (o, comp, g)
    )
    return {
        "valid": l_valid,
        "hole": l_hole,
        "perceptual": ref_perceptual(fo, fc, fg),
        "style_out": ref_style(fo, fg),
        "style_comp": ref_style(fc, fg),
        "tv": ref_tv(comp, v),
        "ssim": ref_ssim_loss(comp, g),
    }


def test_every_term_and_weighted_total_match_reference(file_backbone, timm_tensors) -> None:
    weights = LossWeights(valid=0.5, hole=2.0, perceptual=0.3, style=7.0, tv=1.5, ssim=0.7)
    loss = InpaintingLoss(weights, backbone=file_backbone)
    out, gt, valid = make_batch(11, h=16, w=12)
    got = loss(out, gt, valid)
    want = reference_terms(timm_tensors, out, gt, valid)
    assert set(got) == {*TERM_NAMES, "total"}
    for name in TERM_NAMES:
        assert got[name].item() == pytest.approx(want[name], rel=2e-4), name
    factors = {"valid": 0.5, "hole": 2.0, "perceptual": 0.3, "style_out": 7.0}
    factors.update(style_comp=7.0, tv=1.5, ssim=0.7)
    total = sum(factors[k] * want[k] for k in TERM_NAMES)
    assert got["total"].item() == pytest.approx(total, rel=2e-4)


def test_default_weights_are_the_papers(file_backbone) -> None:
    loss = InpaintingLoss(backbone=file_backbone)
    out, gt, valid = make_batch(4)
    r = loss(out, gt, valid)
    assert r["ssim"].item() == 0  # not the paper's: off unless asked for
    expect = r["valid"] + 6 * r["hole"] + 0.05 * r["perceptual"]
    expect = expect + 120 * (r["style_out"] + r["style_comp"]) + 0.1 * r["tv"]
    assert r["total"].item() == pytest.approx(expect.item(), rel=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_gives_finite_values_close_to_fp32(file_backbone, dtype) -> None:
    loss = InpaintingLoss(backbone=file_backbone)
    out, gt, valid = make_batch(6, h=32, w=32)
    ref = loss(out, gt, valid)
    with torch.autocast("cpu", dtype=dtype):
        assert file_backbone.trunk(gt)[0].dtype == dtype  # the trunk really runs in low precision
        low = loss(out.to(dtype), gt, valid)
    for name, value in low.items():
        assert value.dtype == torch.float32 and torch.isfinite(value), name
        assert value.item() == pytest.approx(ref[name].item(), rel=5e-2, abs=1e-6), name


def test_gradient_reaches_out_only(file_backbone) -> None:
    loss = InpaintingLoss(backbone=file_backbone)
    out, gt, valid = make_batch(8)
    for t in (out, gt, valid):
        t.requires_grad_(True)
    loss(out, gt, valid)["total"].backward()
    assert out.grad is not None and torch.isfinite(out.grad).all() and out.grad.abs().sum() > 0
    assert gt.grad is None and valid.grad is None
    assert all(p.grad is None for p in loss.trunk.parameters())


def test_describe_is_json_and_records_backbone(file_backbone, timm_file) -> None:
    d = InpaintingLoss(LossWeights(tv=0.2), backbone=file_backbone).describe()
    assert json.loads(json.dumps(d)) == d
    assert d["backbone"]["name"] == "vgg16-file" and d["backbone"]["source"] == str(timm_file)
    assert d["backbone"]["sha256_prefix"] == file_sha256(timm_file)[:16]
    assert d["weights"] == {
        "valid": 1.0,
        "hole": 6.0,
        "perceptual": 0.05,
        "style": 120.0,
        "tv": 0.2,
        "ssim": 0.0,
    }


def test_shape_errors(file_backbone) -> None:
    loss = InpaintingLoss(backbone=file_backbone)
    out, gt, valid = make_batch(0)
    with pytest.raises(ValueError, match="valid"):
        loss(out, gt, valid[:, :, :-1])
    with pytest.raises(ValueError, match="out"):
        loss(out[:, :1], gt[:, :1], valid)
