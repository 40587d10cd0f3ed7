"""Jersch et al.'s generator ("gan-pconv", Table 1) and its loss: the layer
table against the paper's, the inference contract through ``pconv.inpaint``, the weights file
through ``pconv.load_model`` and ``pconv inpaint --model``, the loss against a hand computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import pconv
from pconv.architectures import architecture_of, get_architecture, input_multiple
from pconv.archs.gan_pconv import GanPConvConfig, GanPConvGenerator
from pconv.archs.gan_pconv.loss import GanPConvLoss
from pconv.cli import main as pconv_main
from pconv.layer import PartialConv2d

#: Table 1 of Jersch et al. at 128 x 128, base width 64: (kernel, stride, output channels), the
#: order the image meets the layers in; the last row is the 1x1 sigmoid head.
TABLE = [
    (5, 2, 64), (5, 2, 128), (3, 2, 256), (3, 2, 256),  # encoder
    (3, 1, 256), (3, 1, 256), (3, 1, 128), (3, 1, 64), (3, 1, 3),  # decoder
    (1, 1, 3),  # head
]  # fmt: skip
#: Our reading of the skips (the module docstring): the bottleneck layer joins nothing, the
#: next four upsample x2 and join encoder 3, 2, 1 and the input image; the head joins nothing.
SKIP_CHANNELS = [0, 0, 0, 0, 0, 256, 128, 64, 3, 0]
#: Output side of each layer at 128 px.
SIDES = [64, 32, 16, 8, 8, 16, 32, 64, 128, 128]


def _convs_in_order(model: nn.Module, size: int) -> list[tuple[nn.Conv2d, tuple[int, ...]]]:
    """Every convolution in the order a forward pass calls it, with its output shape. The
    network calls its partial convolutions' ``forward_counted`` (no module hooks fire there):
    each is wrapped, for this one pass, by a recorder that calls the real one."""
    seen: list[tuple[nn.Conv2d, tuple[int, ...]]] = []
    hooks = []
    for module in model.modules():
        if isinstance(module, PartialConv2d):

            def recording(*args, _m=module, _real=module.forward_counted):
                y, new_mask = _real(*args)
                seen.append((_m, tuple(y.shape)))
                return y, new_mask

            module.forward_counted = recording
        elif isinstance(module, nn.Conv2d):
            hooks.append(
                module.register_forward_hook(lambda m, a, y: seen.append((m, tuple(y.shape))))
            )
    valid = torch.ones(1, 1, size, size)
    valid[..., size // 4 : size // 2, size // 3 : size // 2] = 0
    try:
        with torch.no_grad():
            model(torch.rand(1, 3, size, size), valid)
    finally:
        for hook in hooks:
            hook.remove()
        for module in model.modules():
            module.__dict__.pop("forward_counted", None)
    return seen


@pytest.mark.parametrize("base", [64, 8])
def test_layer_table_shapes_and_parameter_count(base):
    model = GanPConvGenerator(GanPConvConfig(base_width=base))
    scale = lambda c: c if c == 3 else c * base // 64  # noqa: E731 (3 = RGB, never scaled)
    convs = _convs_in_order(model, 128)
    assert len(convs) == len(TABLE)
    expected_params = 0
    c_in = 3
    for i, ((conv, shape), (k, s, out), skip, side) in enumerate(
        zip(convs, TABLE, SKIP_CHANNELS, SIDES, strict=True)
    ):
        width_in = scale(c_in) + scale(skip)
        assert conv.kernel_size == (k, k) and conv.stride == (s, s), i
        assert (conv.in_channels, conv.out_channels) == (width_in, scale(out)), i
        assert shape == (1, scale(out), side, side), i
        # partial convolutions everywhere but the 1x1 head
        assert isinstance(conv, PartialConv2d) == (i < len(TABLE) - 1), i
        expected_params += k * k * width_in * scale(out) + scale(out)  # weights + bias
        c_in = out
    assert sum(p.numel() for p in model.parameters()) == expected_params
    if base == 64:
        assert expected_params == 3_420_000  # the paper's widths
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    arch = get_architecture("gan-pconv")
    assert arch.parameter_count(model.config) == expected_params
    assert architecture_of(model) is arch and input_multiple(model) == 16


def test_output_is_an_image_and_sizes_must_be_multiples_of_16():
    torch.manual_seed(0)
    model = GanPConvGenerator(GanPConvConfig(base_width=8, resolution=64)).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 48, 80), torch.ones(2, 1, 48, 80))
    assert out.shape == (2, 3, 48, 80) and float(out.min()) >= 0 and float(out.max()) <= 1
    with pytest.raises(ValueError, match="not a multiple of 16"):
        model(torch.rand(1, 3, 40, 40), torch.ones(1, 1, 40, 40))


@pytest.fixture(scope="module")
def gan_model() -> GanPConvGenerator:
    torch.manual_seed(0)
    model = GanPConvGenerator(GanPConvConfig(base_width=8, resolution=64)).eval()
    with torch.no_grad():  # a head that does not saturate the sigmoid: visible differences
        model.head.weight.mul_(4.0)
    return model


def _hole(shape: tuple[int, int], boxes) -> np.ndarray:
    hole = np.zeros(shape, bool)
    for y0, y1, x0, x1 in boxes:
        hole[y0:y1, x0:x1] = True
    return hole


def test_inpaint_keeps_known_pixels_and_ignores_hole_content(photos, gan_model):
    img = photos["coffee"].astype(np.float32) / 255  # 400x600: padded to 16, rescaled
    hole = _hole(img.shape[:2], [(50, 200, 100, 400), (390, 400, 0, 30)])
    out = pconv.inpaint(img, hole, gan_model)
    assert out.shape == img.shape
    assert np.array_equal(out[~hole], img[~hole])  # bit for bit
    assert not np.array_equal(out[hole], img[hole])
    garbage = img.copy()
    garbage[hole] = np.random.default_rng(0).random((int(hole.sum()), 3))
    assert np.array_equal(pconv.inpaint(garbage, hole, gan_model), out)
    small = photos["chelsea"]  # uint8, at the model's scale
    hole = _hole(small.shape[:2], [(100, 180, 150, 260)])
    filled = pconv.inpaint(small, hole, gan_model)
    assert filled.dtype == np.uint8 and np.array_equal(filled[~hole], small[~hole])


def test_weights_file_loads_and_inpaints_from_the_command_line(tmp_path, photos, gan_model):
    path = pconv.save_model(gan_model, tmp_path / "gan.safetensors", {"licence": "test"})
    assert pconv.read_metadata(path)["architecture"] == "gan-pconv"
    loaded = pconv.load_model(path)
    assert isinstance(loaded, GanPConvGenerator) and loaded.config == gan_model.config
    a, b = gan_model.state_dict(), loaded.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    img = photos["astronaut"][:200, :300]
    Image.fromarray(img).save(tmp_path / "photo.png")
    hole = _hole(img.shape[:2], [(40, 120, 60, 200)])
    Image.fromarray((hole * 255).astype(np.uint8)).save(tmp_path / "mask.png")
    out = tmp_path / "out.png"
    argv = ["inpaint", str(tmp_path / "photo.png"), "-m", str(tmp_path / "mask.png")]
    assert pconv_main([*argv, "-o", str(out), "--model", str(path)]) == 0
    got = np.asarray(Image.open(out).convert("RGB"))
    assert np.array_equal(got[~hole], img[~hole])
    # the command reads the file in float and rounds once at the end: the same fill as the
    # library's on the uint8 array, up to that one rounding
    direct = pconv.inpaint(img, hole, loaded)
    assert np.abs(got.astype(int) - direct).max() <= 1 and not np.array_equal(got[hole], img[hole])


def test_loss_against_a_hand_computation():
    """``L_MSE = L+ + 1/6 L-``: squared error over the hole and over the known pixels, each a
    masked sum over every element divided by C*H*W, then the mean over the batch."""
    rng = np.random.default_rng(3)
    b, c, h, w = 2, 3, 4, 5
    out, gt = rng.random((b, c, h, w)), rng.random((b, c, h, w))
    valid = (rng.random((b, 1, h, w)) > 0.4).astype(np.float64)
    plus = minus = 0.0
    for n in range(b):
        hole_sum = known_sum = 0.0
        for ch in range(c):
            for y in range(h):
                for x in range(w):
                    err = (out[n, ch, y, x] - gt[n, ch, y, x]) ** 2
                    if valid[n, 0, y, x]:
                        known_sum += err
                    else:
                        hole_sum += err
        plus += hole_sum / (c * h * w) / b
        minus += known_sum / (c * h * w) / b
    t = lambda a: torch.from_numpy(a).float()  # noqa: E731
    terms = GanPConvLoss()(t(out), t(gt), t(valid))
    assert set(terms) == {"hole_mse", "valid_mse", "total"}
    assert float(terms["hole_mse"]) == pytest.approx(plus, rel=1e-6)
    assert float(terms["valid_mse"]) == pytest.approx(minus, rel=1e-6)
    assert float(terms["total"]) == pytest.approx(plus + minus / 6, rel=1e-6)
    # no gradient reaches the target or the mask; the prediction gets one
    pred = t(out).requires_grad_()
    GanPConvLoss()(pred, t(gt).requires_grad_(), t(valid))["total"].backward()
    assert pred.grad is not None and float(pred.grad.abs().sum()) > 0
