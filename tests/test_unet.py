"""PConvUNet: the paper's architecture, its config, BN freezing, hole-agnosticism."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

import pconv
from pconv import PConvUNet, UNetConfig

# The paper's supplementary table (512 input): (kernel, c_in, c_out, batch norm, bias)
# Layers without BN carry a bias; a bias before BN would be cancelled by it.
PAPER_512_ENCODER = (
    [(7, 3, 64), (5, 64, 128), (5, 128, 256)] + [(3, 256, 512)] + [(3, 512, 512)] * 4
)
PAPER_512_DECODER_OUT = [512, 512, 512, 512, 256, 128, 64, 3]


def _expected_params(encoder: list[tuple[int, int, int]], decoder_out: list[int]) -> int:
    total = 0
    for i, (k, c_in, c_out) in enumerate(encoder):
        total += k * k * c_in * c_out + (c_out if i == 0 else 2 * c_out)  # bias or BN
    enc_out = [3] + [c for _, _, c in encoder]  # skips: input image, enc1..
    c_prev = encoder[-1][2]
    for j, c_out in enumerate(decoder_out):
        skip = enc_out[len(encoder) - 1 - j]
        last = j == len(decoder_out) - 1
        total += 9 * (c_prev + skip) * c_out + (c_out if last else 2 * c_out)
        c_prev = c_out
    return total


@pytest.mark.parametrize(
    ("config", "encoder", "decoder"),
    [
        (UNetConfig.paper512(), PAPER_512_ENCODER, PAPER_512_DECODER_OUT),
        (UNetConfig.paper256(), PAPER_512_ENCODER[:7], PAPER_512_DECODER_OUT[1:]),
    ],
)
def test_paper_variants_parameter_count_and_shapes(config, encoder, decoder):
    model = PConvUNet(config).eval()
    assert sum(p.numel() for p in model.parameters()) == _expected_params(encoder, decoder)
    size = config.resolution
    image = torch.rand(1, 3, size, size)
    valid = (torch.rand(1, 1, size, size) > 0.3).float()
    with torch.no_grad():
        out = model(image, valid)
    assert out.shape == image.shape and torch.isfinite(out).all()


def test_config_round_trips_through_json():
    cfg = UNetConfig(
        depth=6,
        base_width=24,
        max_width_mult=4,
        input_mean=(0.485, 0.456, 0.406),
        input_std=(0.229, 0.224, 0.225),
        resolution=384,
        extra={"note": "x"},
    )
    again = UNetConfig.from_json(cfg.to_json())
    assert again == cfg and again.widths == [24, 48, 96, 96, 96, 96]
    a, b = PConvUNet(cfg).state_dict(), PConvUNet(again).state_dict()
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}
    with pytest.raises(ValueError, match="unknown"):
        UNetConfig.from_dict({"depth": 5, "colour": "red"})


def test_input_must_be_a_multiple():
    model = PConvUNet(UNetConfig(depth=3, base_width=4))
    with pytest.raises(ValueError, match="multiple of 8"):
        model(torch.rand(1, 3, 20, 24), torch.ones(1, 1, 20, 24))


def test_hole_agnostic_output():
    torch.manual_seed(0)
    model = PConvUNet(UNetConfig(depth=4, base_width=8)).eval()
    image = torch.rand(2, 3, 64, 64)
    valid = torch.ones(2, 1, 64, 64)
    valid[:, :, 10:40, 20:50] = 0
    with torch.no_grad():
        out = model(image, valid)
        garbage = torch.where(valid > 0, image, torch.randn_like(image) * 100)
        assert torch.equal(model(garbage, valid), out)
        # and the holes did matter before masking: the known pixels change the output
        assert not torch.equal(model(image * 0.5, valid), out)


def test_freeze_encoder_bn():
    torch.manual_seed(0)
    model = PConvUNet(UNetConfig(depth=4, base_width=8))
    model.freeze_encoder_bn()
    model.train()  # must not unfreeze
    enc_bn = model.encoders[1].bn
    dec_bn = model.decoders[1].bn
    enc_stats, dec_stats = enc_bn.running_mean.clone(), dec_bn.running_mean.clone()
    image, valid = torch.rand(2, 3, 32, 32), torch.ones(2, 1, 32, 32)
    model(image, valid).mean().backward()
    assert not enc_bn.training and dec_bn.training
    assert torch.equal(enc_bn.running_mean, enc_stats)
    assert not torch.equal(dec_bn.running_mean, dec_stats)
    assert enc_bn.weight.grad is None and not enc_bn.weight.requires_grad
    assert dec_bn.weight.grad is not None
    assert model.encoders[1].conv.weight.grad is not None  # convolutions still train
    model.freeze_encoder_bn(False)
    model.train()
    assert enc_bn.training and enc_bn.weight.requires_grad


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_forward_is_finite(dtype):
    torch.manual_seed(0)
    model = PConvUNet(UNetConfig(depth=5, base_width=16)).eval()
    image = torch.rand(1, 3, 64, 64)
    valid = torch.zeros(1, 1, 64, 64)
    valid[..., :4, :4] = 1  # a nearly empty image: extreme renormalisation ratios
    with torch.no_grad(), torch.autocast("cpu", dtype=dtype):
        out = model(image, valid)
    assert torch.isfinite(out).all()


# -- the smooth prior (not in the paper) -------------------------------------------------------


def _photo_batch(photos, size: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    from pconv.masks import sample_mask

    image = torch.from_numpy(photos["coffee"][:size, :size].copy()).permute(2, 0, 1)[None] / 255
    hole = torch.from_numpy(sample_mask("irregular", size, 3, bucket=2))
    return image.float(), (~hole)[None, None].float()


def test_smooth_prior_starts_as_an_even_blend_and_round_trips(photos, tiny_model, tmp_path):
    from pconv.archs.unet import add_smooth_prior
    from pconv.smooth import smooth_fill

    image, valid = _photo_batch(photos)
    gated = add_smooth_prior(tiny_model).eval()
    assert gated.config.prior == "smooth" and tiny_model.config.prior == "none"
    assert gated.decoders[0].conv.weight.shape[0] == 4
    with torch.no_grad():
        plain, blended = tiny_model(image, valid), gated(image, valid)
    assert torch.allclose(blended, 0.5 * plain + 0.5 * smooth_fill(image, valid), atol=1e-6)

    path = pconv.save_model(gated, tmp_path / "gated.safetensors")
    loaded = pconv.load_model(path)
    assert loaded.config == gated.config
    with torch.no_grad():
        assert torch.equal(loaded(image, valid), blended)

    with pytest.raises(ValueError, match="already has prior"):
        add_smooth_prior(gated)
    with pytest.raises(ValueError, match="prior must be one of"):
        UNetConfig(prior="median")
    # configs written before the prior existed read as the paper's model
    old = {k: v for k, v in json.loads(tiny_model.config.to_json()).items() if k != "prior"}
    assert UNetConfig.from_dict(old).prior == "none"


def test_gated_model_is_hole_agnostic_and_keeps_known_pixels(photos, tiny_model):
    from pconv.archs.unet import add_smooth_prior

    gated = add_smooth_prior(tiny_model, gate=0.3).eval()
    with torch.no_grad():  # a gate that is not uniform, so the test sees it work per pixel
        gated.decoders[0].conv.weight[3].normal_(0, 0.05)
    image, valid = _photo_batch(photos)
    noisy = torch.where(valid > 0, image, torch.rand_like(image))
    with torch.no_grad():
        assert torch.equal(gated(image, valid), gated(noisy, valid))
    out = pconv.inpaint(image, 1 - valid[:, 0], gated)
    assert torch.equal(out[valid.expand_as(out) > 0], image[valid.expand_as(image) > 0])


def test_gate_gradient_reaches_its_weights(photos, tiny_model):
    from pconv.archs.unet import add_smooth_prior

    gated = add_smooth_prior(tiny_model).train()
    image, valid = _photo_batch(photos)
    loss = ((gated(image, valid) - image).abs() * (1 - valid)).mean()
    loss.backward()
    grad = gated.decoders[0].conv.weight.grad
    assert grad[3].abs().sum() > 0 and grad[:3].abs().sum() > 0


def test_sigmoid_head_is_pconv_keras_output_layer(tmp_path):
    """head="sigmoid": sigmoid(1x1 conv(LeakyReLU(dec1))), written out here; the input
    normalisation is not undone on it; it round-trips through our weights format."""
    torch.manual_seed(3)
    config = UNetConfig(depth=4, base_width=8, resolution=64, head="sigmoid")
    model = PConvUNet(config).eval()
    plain = PConvUNet(replace(config, head="none")).eval()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("head")})
    image = torch.rand(2, 3, 64, 64)
    valid = (torch.rand(2, 1, 64, 64) > 0.3).float()
    with torch.no_grad():
        dec1 = (plain(image, valid) - plain.mean) / plain.std  # dec1's raw output
        expected = torch.sigmoid(
            torch.einsum("oi,bihw->bohw", model.head.weight[:, :, 0, 0], F.leaky_relu(dec1, 0.2))
            + model.head.bias.view(1, 3, 1, 1)
        )
        out = model(image, valid)
    assert torch.allclose(out, expected, atol=1e-5)
    assert float(out.min()) > 0 and float(out.max()) < 1
    assert sum(p.numel() for p in model.head.parameters()) == 12
    assert UNetConfig.from_json(config.to_json()) == config
    loaded = pconv.load_model(pconv.save_model(model, tmp_path / "h.safetensors"))
    with torch.no_grad():
        assert torch.equal(loaded(image, valid), out)
    with pytest.raises(ValueError, match="head"):
        UNetConfig(head="tanh")
