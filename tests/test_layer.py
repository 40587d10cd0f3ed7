"""PartialConv2d against the plain float64 equations in tests/reference.py."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import partial_conv_reference
from torch import nn

from pconv import PartialConv2d


def _layer(c_in, c_out, k, stride=1, padding=0, dilation=1, groups=1, bias=True, seed=0):
    torch.manual_seed(seed)
    layer = PartialConv2d(
        c_in, c_out, k, stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias
    )
    with torch.no_grad():  # non-trivial bias so "bias dropped in holes" is visible
        if layer.bias is not None:
            layer.bias.uniform_(-1, 1)
    return layer


def _check(layer, x, mask, atol=1e-4):
    y, new_mask = layer(x, mask)
    ref_y, ref_mask = partial_conv_reference(
        x,
        mask,
        layer.weight.detach(),
        None if layer.bias is None else layer.bias.detach(),
        layer.stride,
        layer.padding,
        layer.dilation,
        layer.groups,
    )
    assert y.shape == ref_y.shape and new_mask.shape == ref_mask.shape == (
        x.shape[0],
        1,
        *y.shape[2:],
    )
    torch.testing.assert_close(y.double(), ref_y, atol=atol, rtol=1e-4)
    assert torch.equal(new_mask.double(), ref_mask)


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    groups=st.sampled_from([1, 2, 3]),
    k=st.sampled_from([1, 2, 3, 5]),
    stride=st.integers(1, 3),
    dilation=st.integers(1, 2),
    per_channel=st.booleans(),
    hole_p=st.sampled_from([0.0, 0.3, 0.7, 0.95, 1.0]),
    bias=st.booleans(),
)
def test_matches_equations(data, groups, k, stride, dilation, per_channel, hole_p, bias):
    c_in = groups * data.draw(st.integers(1, 3))
    c_out = groups * data.draw(st.integers(1, 3))
    padding = data.draw(st.integers(0, k // 2 * dilation + 1))
    span = dilation * (k - 1) + 1  # smallest input a window fits in without padding
    h, w = data.draw(st.integers(span, 10)), data.draw(st.integers(span, 10))
    seed = data.draw(st.integers(0, 10_000))
    gen = torch.Generator().manual_seed(seed)
    layer = _layer(c_in, c_out, k, stride, padding, dilation, groups, bias, seed)
    x = torch.randn(2, c_in, h, w, generator=gen)
    channels = c_in if per_channel else 1
    mask = (torch.rand(2, channels, h, w, generator=gen) >= hole_p).float()
    _check(layer, x, mask)


@pytest.mark.parametrize("padding", [0, 1, 2])
def test_no_mask_is_partial_convolution_padding(padding):
    layer = _layer(3, 5, 3, padding=padding)
    x = torch.randn(2, 3, 7, 8)
    _check(layer, x, None)
    # the border really is renormalised: differs from a plain zero-padded convolution
    plain = nn.functional.conv2d(x, layer.weight, layer.bias, padding=padding)
    y, _ = layer(x)
    assert torch.allclose(y[..., 2:-2, 2:-2], plain[..., 2:-2, 2:-2], atol=1e-5)
    if padding:
        assert not torch.allclose(y, plain, atol=1e-3)


def test_all_ones_mask_equals_padding_mode():
    layer = _layer(4, 6, 3, padding=1)
    x = torch.randn(1, 4, 10, 10)
    y_none, m_none = layer(x)
    y_ones, m_ones = layer(x, torch.ones(1, 1, 10, 10))
    assert torch.equal(y_none, y_ones) and torch.equal(m_none, m_ones)


def test_sum1_factor_is_applied():
    """One valid input in a 3x3 window of 2 channels: the output is scaled by 18/1."""
    layer = _layer(2, 1, 3, bias=False)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    x = torch.full((1, 2, 3, 3), 2.0)
    mask = torch.zeros(1, 2, 3, 3)
    mask[0, 0, 1, 1] = 1
    y, new_mask = layer(x, mask)
    assert y.item() == pytest.approx(2.0 * 18) and new_mask.item() == 1


def test_empty_window_gives_zero_without_bias_and_hole_mask():
    layer = _layer(3, 4, 3, padding=1)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :2, :2] = 1
    y, new_mask = layer(torch.randn(1, 3, 8, 8), mask)
    assert torch.all(y[..., 4:, 4:] == 0) and torch.all(new_mask[..., 4:, 4:] == 0)
    assert torch.all(new_mask[..., :3, :3] == 1)


@pytest.mark.parametrize("per_channel", [False, True])
def test_hole_agnostic_to_the_last_bit(per_channel):
    layer = _layer(4, 8, 3, padding=1, stride=2)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 16, 16, generator=gen)
    mask = (torch.rand(2, 4 if per_channel else 1, 16, 16, generator=gen) > 0.5).float()
    y, m = layer(x, mask)
    holes = (mask < 0.5).expand_as(x)
    for fill in (
        torch.randn(2, 4, 16, 16, generator=gen) * 1e4,
        torch.full_like(x, math.nan),
        torch.full_like(x, math.inf),
    ):
        x2 = torch.where(holes, fill, x)
        y2, m2 = layer(x2, mask)
        assert torch.equal(y, y2) and torch.equal(m, m2)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("hole_p", [0.0, 0.5, 0.99, 1.0])
def test_autocast_is_finite(dtype, hole_p):
    torch.manual_seed(0)
    layer = PartialConv2d(512, 64, 3, padding=1)  # sum(1) = 4608: beyond fp16's exact integers
    x = torch.randn(1, 512, 12, 12)
    mask = (torch.rand(1, 1, 12, 12) >= hole_p).float()
    with torch.autocast("cpu", dtype=dtype):
        y, new_mask = layer(x, mask)
    assert y.dtype == dtype and torch.isfinite(y).all() and torch.isfinite(new_mask).all()
    y32, _ = layer(x, mask)
    torch.testing.assert_close(y.float(), y32, atol=0.1, rtol=0.05)


def test_fp16_saturates_instead_of_inf():
    layer = PartialConv2d(64, 1, 3, bias=False)
    with torch.no_grad():
        layer.weight.fill_(100.0)
    x = torch.full((1, 64, 3, 3), 100.0)
    mask = torch.zeros(1, 1, 3, 3)
    mask[..., 1, 1] = 1  # ratio 576: the exact result 3.7e8 exceeds fp16
    with torch.autocast("cpu", dtype=torch.float16):
        y, _ = layer(x, mask)
    assert torch.isfinite(y).all() and y.item() == torch.finfo(torch.float16).max


def test_gradients_match_reference():
    layer = _layer(3, 4, 3, padding=1, stride=2)
    x = torch.randn(1, 3, 8, 8, requires_grad=True)
    mask = (torch.rand(1, 1, 8, 8) > 0.4).float()
    y, _ = layer(x, mask)
    y.square().sum().backward()
    x_ref = x.detach().double().requires_grad_(True)
    w_ref = layer.weight.detach().double().requires_grad_(True)
    y_ref, _ = partial_conv_reference(
        x_ref, mask, w_ref, layer.bias.detach(), layer.stride, layer.padding, layer.dilation, 1
    )
    y_ref.square().sum().backward()
    torch.testing.assert_close(x.grad.double(), x_ref.grad, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(layer.weight.grad.double(), w_ref.grad, atol=1e-3, rtol=1e-4)
    assert torch.all(x.grad[(mask < 0.5).expand_as(x)] == 0)  # holes get no gradient


def test_bad_mask_shape_and_drop_in_mode():
    layer = PartialConv2d(4, 2, 3)
    with pytest.raises(ValueError, match="mask must be"):
        layer(torch.randn(1, 4, 5, 5), torch.ones(1, 2, 5, 5))
    drop_in = PartialConv2d(4, 2, 3, padding=1, return_mask=False)
    assert isinstance(drop_in(torch.randn(1, 4, 5, 5)), torch.Tensor)
    with pytest.raises(ValueError):
        PartialConv2d(4, 2, 3, padding="same")
