"""pconv.inpaint: invariants at any size, input kinds, the any-size strategy, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import pconv
from pconv import InputError


def _hole(shape: tuple[int, int], boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    hole = np.zeros(shape, dtype=bool)
    for y0, y1, x0, x1 in boxes:
        hole[y0:y1, x0:x1] = True
    return hole


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "china"])
def test_known_pixels_unchanged_and_holes_filled(photos, tiny_model, name):
    img = photos[name]
    h, w = img.shape[:2]
    hole = _hole((h, w), [(h // 3, h // 2, w // 4, w // 2), (h - 9, h, 0, 12)])
    out = pconv.inpaint(img, hole, tiny_model)
    assert out.dtype == np.uint8 and out.shape == img.shape
    assert np.array_equal(out[~hole], img[~hole])
    assert not np.array_equal(out[hole], img[hole])


def test_output_does_not_depend_on_hole_contents(photos, tiny_model):
    img = photos["coffee"].astype(np.float32) / 255
    hole = _hole(img.shape[:2], [(50, 200, 100, 400)])
    out = pconv.inpaint(img, hole, tiny_model)
    garbage = img.copy()
    garbage[hole] = np.random.default_rng(0).random((int(hole.sum()), 3))
    assert np.array_equal(pconv.inpaint(garbage, hole, tiny_model), out)
    assert np.array_equal(out[~hole], img[~hole])  # float input: bit-exact too


def _record_model_inputs(model):
    sizes: list[tuple[int, int]] = []
    handle = model.register_forward_pre_hook(lambda _m, args: sizes.append(args[0].shape[-2:]))
    return sizes, handle


def test_big_image_small_hole_works_at_native_resolution(photos, tiny_model):
    big = np.tile(photos["china"], (3, 3, 1))[:1080, :1920]
    hole = _hole(big.shape[:2], [(500, 530, 900, 940), (10, 20, 1850, 1900)])
    sizes, handle = _record_model_inputs(tiny_model)
    try:
        out = pconv.inpaint(big, hole, tiny_model)
    finally:
        handle.remove()
    assert len(sizes) == 2  # two far-apart holes: two crops, not the whole picture
    assert all(h * w <= (2 * 128 + 32) ** 2 for h, w in sizes)
    assert np.array_equal(out[~hole], big[~hole])
    assert not np.array_equal(out[hole], big[hole])


@pytest.mark.slow
def test_big_image_large_hole_is_downscaled_and_pasted(photos, tiny_model):
    big = np.tile(photos["china"], (3, 3, 1))[:1080, :1920]
    hole = _hole(big.shape[:2], [(100, 900, 300, 1500)])
    sizes, handle = _record_model_inputs(tiny_model)
    try:
        out = pconv.inpaint(big, hole, tiny_model)
    finally:
        handle.remove()
    assert len(sizes) == 1 and max(sizes[0]) <= 2 * 128 + 32
    assert np.array_equal(out[~hole], big[~hole])


@pytest.mark.slow
def test_downscaled_gated_model_fills_at_full_resolution(photos, tiny_model):
    # A gate shut on the network leaves the smooth fill alone: at a reduced working scale it
    # must be the fill of the full-size crop, not an upscaled small one (which blurs edges).
    from pconv.archs.unet import add_smooth_prior
    from pconv.smooth import smooth_fill

    gated = add_smooth_prior(tiny_model).eval()
    with torch.no_grad():
        gated.decoders[0].conv.bias[3] = -30.0
    image = photos["china"][:320, :448].astype(np.float32) / 255
    hole = _hole(image.shape[:2], [(40, 290, 60, 400)])  # wider than 128: downscaled
    sizes, handle = _record_model_inputs(gated.encoders[0])  # predict() bypasses forward()
    try:
        out = pconv.inpaint(image, hole, gated)
    finally:
        handle.remove()
    assert max(sizes[0]) < 320  # it did run at a reduced scale
    x = torch.from_numpy(image).permute(2, 0, 1)[None]
    valid = torch.from_numpy(~hole)[None, None].float()
    # the crop around this hole is the whole image, so the full-size fill is directly comparable
    fill = smooth_fill(x, valid)[0].permute(1, 2, 0).clamp(0, 1).numpy()
    assert np.abs(out - fill)[hole].max() < 1e-4
    assert np.array_equal(out[~hole], image[~hole])


def test_input_kinds_round_trip(photos, tiny_model):
    img = photos["chelsea"]
    hole = _hole(img.shape[:2], [(100, 150, 200, 260)])
    pil = pconv.inpaint(
        Image.fromarray(img), Image.fromarray(hole.astype(np.uint8) * 255), tiny_model
    )
    assert isinstance(pil, Image.Image) and pil.size == (img.shape[1], img.shape[0])
    tensor = torch.from_numpy(img).permute(2, 0, 1).float() / 255
    t_out = pconv.inpaint(tensor, torch.from_numpy(hole), tiny_model)
    assert isinstance(t_out, torch.Tensor) and t_out.shape == tensor.shape
    assert torch.equal(t_out[:, torch.from_numpy(~hole)], tensor[:, torch.from_numpy(~hole)])
    np_out = pconv.inpaint(img, hole, tiny_model)
    assert np.abs(np.asarray(pil).astype(int) - np_out.astype(int)).max() <= 1


def test_batches_with_one_mask_or_one_per_image(photos, tiny_model):
    imgs = np.stack([photos["china"], photos["flower"]])
    one = _hole(imgs.shape[1:3], [(50, 120, 50, 150)])
    out = pconv.inpaint(imgs, one, tiny_model)
    assert out.shape == imgs.shape and np.array_equal(out[:, ~one], imgs[:, ~one])
    per = np.stack([one, _hole(imgs.shape[1:3], [(300, 400, 400, 600)])])
    out2 = pconv.inpaint(imgs, per, tiny_model)
    assert np.array_equal(out2[0], out[0])  # same mask, same image -> same result
    assert np.array_equal(out2[1][~per[1]], imgs[1][~per[1]])
    with pytest.raises(InputError, match="3 masks for 2 images"):
        pconv.inpaint(imgs, np.stack([one] * 3), tiny_model)


def test_soft_mask_binarised_at_half(photos, tiny_model):
    img = photos["chelsea"]
    soft = np.zeros(img.shape[:2], dtype=np.float32)
    soft[50:100, 50:100] = 0.7  # counts as hole
    soft[150:200, 150:200] = 0.3  # counts as known
    out = pconv.inpaint(img, soft, tiny_model)
    assert np.array_equal(out[150:200, 150:200], img[150:200, 150:200])
    assert not np.array_equal(out[50:100, 50:100], img[50:100, 50:100])


def test_empty_full_and_mismatched_masks(photos, tiny_model):
    img = photos["chelsea"]
    empty = np.zeros(img.shape[:2], dtype=bool)
    assert np.array_equal(pconv.inpaint(img, empty, tiny_model), img)
    with pytest.raises(InputError, match="covers the whole image"):
        pconv.inpaint(img, ~empty, tiny_model)
    small = _hole((100, 150), [(20, 40, 20, 40)])
    with pytest.raises(InputError, match="mask is 150x100 but the image is 451x300") as info:
        pconv.inpaint(img, small, tiny_model)
    # the library names its own argument, never a command-line flag
    assert info.value.fix == "resize_mask_to_image=True" and "--" not in str(info.value)
    assert str(info.value).endswith("(pass resize_mask_to_image=True)")
    out = pconv.inpaint(img, small, tiny_model, resize_mask_to_image=True)
    assert out.shape == img.shape and not np.array_equal(out, img)


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_reduced_precision(photos, tiny_model, dtype):
    img = photos["astronaut"]
    hole = _hole(img.shape[:2], [(200, 300, 200, 300)])
    out = pconv.inpaint(img, hole, tiny_model, dtype=dtype)
    ref = pconv.inpaint(img, hole, tiny_model)
    assert np.array_equal(out[~hole], img[~hole])
    assert np.abs(out.astype(int) - ref.astype(int))[hole].mean() < 8


def test_model_mode_is_restored(photos, tiny_model):
    tiny_model.train()
    try:
        pconv.inpaint(photos["chelsea"], _hole((300, 451), [(10, 30, 10, 30)]), tiny_model)
        assert tiny_model.training
    finally:
        tiny_model.eval()


@pytest.mark.slow
def test_many_small_holes_cost_few_model_runs_at_native_scale(photos, tiny_model):
    img = photos["astronaut"]
    hole = np.zeros(img.shape[:2], dtype=bool)
    for y in range(20, 500, 37):
        for x in range(20, 500, 37):
            hole[y : y + 5, x : x + 5] = True  # 169 specks
    sizes, handle = _record_model_inputs(tiny_model)
    try:
        out = pconv.inpaint(img, hole, tiny_model)
    finally:
        handle.remove()
    assert 1 <= len(sizes) <= 169 // 4  # merged, not one run per speck
    # never downscaled: every crop is at most the (2R)^2 budget plus padding to a multiple
    assert all(h * w <= (2 * 128 + 32) ** 2 for h, w in sizes)
    assert np.array_equal(out[~hole], img[~hole]) and not np.array_equal(out[hole], img[hole])


def test_zoo_name_is_not_shadowed_by_a_local_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    expected = pconv.load_model("default").config  # the packaged model
    (tmp_path / "default").mkdir()  # an unrelated, empty folder of the same name
    monkeypatch.chdir(tmp_path)
    assert pconv.load_model("default").config == expected
    with pytest.raises(pconv.CheckpointError, match=r"has no model\.safetensors"):
        pconv.load_model("./default")  # a path-like name still means the folder


def test_user_masks_become_network_masks_in_one_place():
    """White / 1 = fill for users, 1 = valid inside the network: one function converts."""
    from pconv.io import hole_to_valid

    hole = np.array([[True, False], [False, True]])
    expected = np.array([[0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    assert np.array_equal(hole_to_valid(hole), expected)
    as_tensor = hole_to_valid(torch.from_numpy(hole))
    assert isinstance(as_tensor, torch.Tensor) and as_tensor.dtype == torch.float32
    assert torch.equal(as_tensor, torch.from_numpy(expected))


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_float_input_outside_unit_range_or_nan_is_refused(photos, tiny_model, kind):
    img = photos["chelsea"].astype(np.float32)  # 0..255 floats: a common mistake
    hole = _hole(img.shape[:2], [(100, 150, 100, 150)])

    def given(arr: np.ndarray) -> object:
        return arr if kind == "numpy" else torch.from_numpy(arr).permute(2, 0, 1)

    img[0, 0] = (0, 128, 255)
    with pytest.raises(InputError, match=r"must be in \[0, 1\], found 0\.\.255 .*uint8"):
        pconv.inpaint(given(img), hole, tiny_model)
    negative = img / 255 - 0.5
    with pytest.raises(InputError, match=r"found -0\.5\.\.0\.5"):
        pconv.inpaint(given(negative), hole, tiny_model)
    nan = img / 255
    nan[5, 5, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        pconv.inpaint(given(nan), hole, tiny_model)
    edges = np.clip(img / 255, 0, 1)  # exactly 0 and 1 are fine
    assert pconv.inpaint(given(edges), hole, tiny_model).shape == given(edges).shape
