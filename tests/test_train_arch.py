"""``python -m train --arch``: the training recipes (pconv.training.recipes); Jersch et al.'s GAN
with partial convolutions and Li et al.'s DeepGIN (compact) trained for real on real photographs
(tiny widths, 64 px), exact resume, export and loading; DeepGIN's two loss stages and its
masks (one of each kind per image); ``--arch deepgin`` where its network is not installed."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import default_collate
from train_fixtures import TINY

import pconv
from pconv.archs.deepgin import DeepGIN, DeepGINConfig
from pconv.archs.deepgin.loss import DEEPGIN_TERMS, DeepGINLossWeights, deepgin_loss
from pconv.archs.gan_pconv import GanPConvConfig, GanPConvGenerator
from pconv.training import state
from pconv.training.config import ADVERSARIAL_DEFAULTS, dump_toml, load_toml, resolve
from pconv.training.data import TrainImages, collate, load_crop, training_masks
from pconv.training.engine import Trainer, batches
from pconv.training.errors import ConfigError, InitError
from pconv.training.logs import read_metrics
from pconv.training.recipes import RECIPES, get_recipe
from train.cli import build_parser, resolve_args

pytestmark = pytest.mark.usefixtures("one_thread")

#: Jersch et al.'s generator 8 channels wide at 64 px, with TINY's run settings (no U-Net depth)
GAN = {**{k: v for k, v in TINY.items() if k != "depth"}, "arch": "gan-pconv", "val_holdout": 1}
#: reconstruction for step 1, the discriminators alone for step 2, then both
PHASES = {"adv_warmup": 0.2, "adv_d_only": 0.2}


def _config(photo_dir: Path, **overrides):
    return resolve({}, {"data": [str(photo_dir)], **GAN, **overrides})


# -- settings ---------------------------------------------------------------------------------


def test_each_arch_has_its_presets_defaults_and_settings():
    unet = resolve({}, {"data": ["a"]})
    assert (unet.arch, unet.preset, unet.depth, unet.adversarial) == (
        "unet",
        "paper-256",
        7,
        "none",
    )
    gan = resolve({}, {"data": ["a"], "arch": "gan-pconv"})
    assert (gan.preset, gan.size, gan.base_width, gan.depth) == ("gan-pconv-128", 128, 64, None)
    # L_G = L_MSE - 1/2000 log D in three phases: the global-local design's defaults
    assert gan.adversarial == "global-local" and gan.adv_weight == 1 / 2000
    assert (gan.adv_warmup, gan.adv_d_only, gan.phase2_steps) == (0.18, 0.02, 0)
    # a preset selects its network; the user's values still win over the recipe's
    assert resolve({}, {"data": ["a"], "preset": "gan-pconv-128"}).arch == "gan-pconv"
    mine = resolve({}, {"data": ["a"], "arch": "gan-pconv", "adversarial": "none"})
    assert mine.adversarial == "none" and mine.adv_weight is None
    # U-Net settings are refused for another network, and presets of another network too
    with pytest.raises(ConfigError, match=r"^depth does not apply to arch gan-pconv$"):
        resolve({}, {"data": ["a"], "arch": "gan-pconv", "depth": 4})
    with pytest.raises(ConfigError, match=r"^prior does not apply to arch gan-pconv$"):
        resolve({}, {"data": ["a"], "arch": "gan-pconv", "prior": "smooth"})
    with pytest.raises(ConfigError, match="preset paper-256 is a preset of arch unet, not of"):
        resolve({}, {"data": ["a"], "arch": "gan-pconv", "preset": "paper-256"})
    with pytest.raises(ConfigError, match=r"^size 72 is not a multiple of 16$"):
        resolve({}, {"data": ["a"], "arch": "gan-pconv", "size": 72})
    # every recipe's presets are --preset choices; DeepGIN's are registered with its recipe
    assert {"deepgin-256", "deepgin-compact", "gan-pconv-128", "paper-256"} <= set(
        build_parser()._option_string_actions["--preset"].choices
    )
    assert set(RECIPES) == {"unet", "gan-pconv", "deepgin"}
    deepgin = get_recipe("deepgin")
    assert deepgin.defaults["adversarial"] == "multiscale-patch"
    assert deepgin.train_method == "forward_train" and deepgin.loss  # its three outputs


def test_arch_is_stored_and_cannot_change_on_resume(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    config = resolve({}, {"data": ["a"], "arch": "gan-pconv"})
    (run / "config.toml").write_text(dump_toml(config))
    assert 'arch = "gan-pconv"' in (run / "config.toml").read_text()
    assert resolve(load_toml(run / "config.toml")) == config
    parse = build_parser().parse_args
    resumed, _, resuming = resolve_args(parse(["--resume", str(run)]))
    assert resuming and resumed == config
    with pytest.raises(ConfigError, match="--arch cannot change when resuming"):
        resolve_args(parse(["--resume", str(run), "--arch", "unet"]))
    (run / "config.toml").write_text(dump_toml(resolve({}, {"data": ["a"]})))
    assert resolve_args(parse(["--resume", str(run)]))[0].arch == "unet"
    with pytest.raises(ConfigError, match="--arch cannot change when resuming"):
        resolve_args(parse(["--resume", str(run), "--arch", "gan-pconv"]))


def test_init_weights_must_be_of_the_arch(tmp_path, photo_dir):
    model = GanPConvGenerator(GanPConvConfig(base_width=8, resolution=64))
    weights = pconv.save_model(model, tmp_path / "gan.safetensors")
    unet = {**TINY, "depth": None, "size": None, "init": str(weights), "steps": 1}
    config = resolve({}, {"data": [str(photo_dir)], **unet})
    with pytest.raises(InitError, match="a gan-pconv model; the trainer trains pconv-unet models"):
        Trainer(config, tmp_path / "run")
    values = {**GAN, "size": None, "base_width": None, "init": str(weights), "steps": 1}
    trainer = Trainer(resolve({}, {"data": [str(photo_dir)], **values}), tmp_path / "run2")
    assert (trainer.config.base_width, trainer.config.size) == (8, 64)
    got, want = trainer.model.state_dict(), model.state_dict()
    assert all(torch.equal(got[k], want[k]) for k in want)
    assert trainer.config.phase1_steps == 0 and trainer.adversary is not None


# -- training -------------------------------------------------------------------------------


@pytest.mark.slow
def test_gan_pconv_trains_in_three_phases_and_exports(photo_dir, tmp_path, capsys):
    config = _config(photo_dir, steps=5, val_every=5, **PHASES)
    trainer = Trainer(config, tmp_path)
    assert trainer.adversary is not None and trainer.adversary.kind == "global-local"
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    summary = trainer.run()
    assert summary.finished and summary.step == 5
    m = {k.split("/", 1)[1]: v for k, v in read_metrics(tmp_path).items() if k.startswith("train/")}
    for tag in ("total", "hole_mse", "valid_mse", "g_adv", "d_loss", "grad_norm"):
        assert sorted(m[tag]) == [1, 2, 3, 4, 5], tag
    assert "valid" not in m and "style_out" not in m  # the U-Net's loss is not in play
    # L_G = L+ + 1/6 L- + 1/2000 (-log D), once the discriminators judge
    for step in (1, 3, 4, 5):
        expected = m["hole_mse"][step] + m["valid_mse"][step] / 6 + m["g_adv"][step] / 2000
        assert m["total"][step] == pytest.approx(expected, rel=1e-5), step
    assert m["g_adv"][1] == m["d_loss"][1] == 0  # reconstruction only
    assert m["grad_norm"][2] == 0 and m["d_loss"][2] > 0  # the discriminators alone
    assert all(m["g_adv"][s] > 0 and m["d_loss"][s] > 0 for s in (3, 4, 5))  # both
    err = capsys.readouterr().err
    assert " hole_mse " in err and " valid_mse " in err and " g_adv " in err
    after = trainer.model.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before)  # every layer learned
    final = tmp_path / "final"
    meta = pconv.read_metadata(final / "model.safetensors")
    assert meta["architecture"] == "gan-pconv"
    assert json.loads(meta["loss"])["formula"].startswith("L+ + 1/6 L-")
    assert json.loads(meta["training"])["adversarial"]["kind"] == "global-local"
    card = (final / "MODEL_CARD.md").read_text()
    assert "(`gan-pconv`)" in card and "GAN with partial convolutions" in card
    assert 'arch = "gan-pconv"' in (final / "config.toml").read_text()
    model = pconv.load_model(final)
    assert isinstance(model, GanPConvGenerator) and model.config.base_width == 8
    assert all(torch.equal(model.state_dict()[k], after[k].cpu()) for k in after)
    img = np.asarray(Image.open(next(photo_dir.glob("*.jpg"))))[:96, :128]
    hole = np.zeros(img.shape[:2], bool)
    hole[20:60, 30:90] = True
    filled = pconv.inpaint(img, hole, model)
    assert np.array_equal(filled[~hole], img[~hole])


@pytest.mark.slow
def test_gan_pconv_resume_is_bit_identical(photo_dir, tmp_path):
    values = dict(steps=5, ckpt_every=2, val_every=5, **PHASES)
    Trainer(_config(photo_dir, **values), tmp_path / "a").run()
    first = Trainer(_config(photo_dir, **values), tmp_path / "b").run(stop_at=3)
    assert not first.finished
    resumed = Trainer(_config(photo_dir, **values, workers=2), tmp_path / "b", resume=True)
    assert resumed.step == 3 and isinstance(resumed.model, GanPConvGenerator)
    resumed.run()
    a = pconv.load_weights(tmp_path / "a" / "final" / "model.safetensors")[0].state_dict()
    b = pconv.load_weights(tmp_path / "b" / "final" / "model.safetensors")[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    sa, sb = state.latest_state(tmp_path / "a"), state.latest_state(tmp_path / "b")
    assert sa.step == sb.step == 5
    assert sb.extra["model_architecture"] == "gan-pconv"
    for name in ("discriminator", "d_optimizer", "optim"):
        keys = [k for k in sa.tensors if k.startswith(name + "/")]
        assert keys and all(torch.equal(sa.tensors[k], sb.tensors[k]) for k in keys), name
    ma, mb = read_metrics(tmp_path / "a"), read_metrics(tmp_path / "b")
    for tag in ("train/total", "train/hole_mse", "train/d_loss", "train/g_adv"):
        assert ma[tag] == mb[tag], tag
    assert ADVERSARIAL_DEFAULTS["global-local"]["adv_weight"] == 1 / 2000


# -- DeepGIN (Li et al.), the real network and loss ------------------------------------------

HAS_STLPIPS = importlib.util.find_spec("stlpips_pytorch") is not None
#: the compact DeepGIN at 64 px, 2 images x 3 masks a step; its perceptual terms on the offline
#: ST-LPIPS trunk (its default) where the wheel is installed
DEEPGIN = {
    **{k: v for k, v in GAN.items() if k not in ("arch", "base_width")},
    "preset": "deepgin-compact",
    "perceptual": "stlpips-vgg16" if HAS_STLPIPS else "none",
}
#: 4 steps: the L1 warm-up for step 1, then the main stage with the discriminators
STAGES = {"steps": 4, "adv_warmup": 0.25, "ckpt_every": 2, "val_every": 4}


def test_deepgin_recipe_builds_the_network_and_loss_of_its_modules(photo_dir):
    """The recipe's defaults, the DeepGINConfig presets, and the loss of
    pconv.archs.deepgin.loss in its two stages, recomputed here from deepgin_loss."""
    config = resolve({}, {"data": ["a"], "arch": "deepgin"})
    assert (config.preset, config.adversarial, config.adv_warmup, config.lr_decay) == (
        "deepgin-256", "multiscale-patch", 0.1, 0.5,
    )  # fmt: skip
    assert (config.masks, config.mask_pairing, config.perceptual) == (
        "deepgin", "each", "stlpips-vgg16",
    )  # fmt: skip
    assert config.warmup_steps == 20_000  # 10 % of the paper preset's 200k
    recipe = get_recipe("deepgin")
    paper = DeepGINConfig.from_dict(recipe.model_config(config))
    assert paper == DeepGINConfig.paper(resolution=256)  # not built: 42.9 M parameters
    mine = resolve({}, {"data": ["a"], **DEEPGIN, "perceptual": "none", "steps": 4})
    model = recipe.build(mine)
    assert isinstance(model, DeepGIN) and model.config == DeepGINConfig.compact(resolution=64)
    loss = recipe.loss(mine)
    assert loss.terms == DEEPGIN_TERMS and loss.key is None
    # without a feature extractor the main stage has no perceptual or style term, and says so
    record = loss.describe()
    assert record["weights"] == {**asdict(DeepGINLossWeights()), "perceptual": 0, "style": 0}
    assert record["warmup"]["weights"] == asdict(DeepGINLossWeights.warmup())
    assert record["backbone"]["name"] == "none" and not record["backbone"]["faithful"]
    torch.manual_seed(0)
    image = torch.rand(2, 3, 64, 64)
    valid = torch.ones(2, 1, 64, 64)
    valid[:, :, 16:48, 8:40] = 0
    outputs = model.forward_train(image, valid)
    for warming_up, weights in ((True, DeepGINLossWeights.warmup()), (False, loss.loss.weights)):
        loss.warming_up = warming_up
        got = loss(outputs, image, valid)
        want = deepgin_loss(outputs, image, valid, None, weights)
        assert torch.equal(got["total"], want["total"]), warming_up
    assert not torch.equal(
        deepgin_loss(outputs, image, valid, None, DeepGINLossWeights.warmup())["total"],
        deepgin_loss(outputs, image, valid, None, loss.loss.weights)["total"],
    )  # the stages differ (TV counts in the main stage only)
    # --loss-weights names the loss's own terms; the U-Net's ssim is refused in one line
    tuned = resolve({}, {"data": ["a"], **DEEPGIN, "perceptual": "none", "loss_weights": "hole=6"})
    assert recipe.loss(tuned).loss.weights.hole == 6 and recipe.loss(tuned).loss.weights.valid == 1
    term = r"^loss_weights 'ssim=1': want NAME=NUMBER with NAME a term of arch deepgin's loss"
    with pytest.raises(ConfigError, match=term):
        resolve({}, {"data": ["a"], **DEEPGIN, "loss_weights": "ssim=1"})


def test_each_image_comes_with_one_mask_of_each_kind(photo_dir):
    """--mask-pairing each: an item holds the image's crop and one mask of every generator,
    drawn from its sample's generator; a batch of B items is B x K pairs. One mask an item
    collates exactly as torch's default collation does (the U-Net's batches unchanged)."""
    paths = sorted(photo_dir.glob("*.jpg"))
    sampler = training_masks("deepgin", 64)
    each = TrainImages(paths, 64, sampler, "random-scale", True, "each")
    items = [each[(0, 11)], each[(3, 12)]]
    assert each.masks_per_image == 3 and items[0]["valid"].shape == (3, 1, 64, 64)
    rng = np.random.default_rng(11)  # replay the item's draws: the crop, then the masks
    crop = load_crop(paths[0], 64, "random-scale", True, rng)
    holes = sampler.stack_each(rng)
    assert torch.equal(items[0]["image"], crop)
    assert torch.equal(items[0]["valid"][:, 0], torch.from_numpy(~holes).float())
    # one of each kind, in the mix's order
    assert [name for name, _ in sampler.draw_each(np.random.default_rng(11))] == [
        "rect", "freeform", "cellular",
    ]  # fmt: skip
    batch = collate(items)
    assert batch["image"].shape == (6, 3, 64, 64) and batch["valid"].shape == (6, 1, 64, 64)
    for i in range(6):
        assert torch.equal(batch["image"][i], items[i // 3]["image"])
        assert torch.equal(batch["valid"][i], items[i // 3]["valid"][i % 3])
    assert batch["failed"].tolist() == [-1, -1]
    one = TrainImages(paths, 64, sampler, "random-scale", True)
    ones = [one[(0, 11)], one[(3, 12)]]
    got, want = collate(ones), default_collate(ones)
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)
    assert got["valid"].shape == (2, 1, 64, 64)


@pytest.mark.slow
def test_deepgin_trains_in_two_stages_resumes_and_exports(photo_dir, tmp_path, capsys):
    """python -m train --arch deepgin --preset deepgin-compact, tiny: the L1 warm-up without
    discriminators, then every term and the PatchGANs; exact resume across the stage
    boundary; the export loads with pconv.load_model and inpaints."""
    config = resolve({}, {"data": [str(photo_dir)], **DEEPGIN, **STAGES})
    assert (config.arch, config.warmup_steps, config.mask_pairing) == ("deepgin", 1, "each")
    assert (config.lr, config.d_lr, config.adam_beta1) == (1e-4, 4e-4, 0.5)
    trainer = Trainer(config, tmp_path / "a")
    batch = next(iter(batches(trainer)))  # 2 images, each with its 3 masks
    assert batch["image"].shape == (6, 3, 64, 64) and batch["valid"].shape == (6, 1, 64, 64)
    assert isinstance(trainer.model, DeepGIN) and trainer.adversary.kind == "multiscale-patch"
    summary = trainer.run()
    assert summary.finished and summary.step == 4
    # constant for steps 0-1, then linearly down: step 3 (the last) ran at half the rates
    assert [trainer.lr_factor(s) for s in range(4)] == [1, 1, 1, 0.5]
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.5e-4)
    assert trainer.adversary.optimizer.param_groups[0]["lr"] == pytest.approx(2e-4)
    m = {k.split("/", 1)[1]: v for k, v in read_metrics(tmp_path / "a").items() if "/" in k}
    for tag in (*DEEPGIN_TERMS, "total", "g_adv", "d_loss"):
        assert sorted(m[tag]) == [1, 2, 3, 4], tag
    main = trainer.loss_fn.loss.weights.per_term()
    warm = DeepGINLossWeights.warmup().per_term()
    # step 1: L1 alone, no discriminator; then every term of eq. (7) and the hinge term
    assert m["total"][1] == pytest.approx(sum(warm[k] * m[k][1] for k in DEEPGIN_TERMS))
    assert m["g_adv"][1] == m["d_loss"][1] == m["perceptual"][1] == m["style"][1] == 0
    for step in (2, 3, 4):
        want = sum(main[k] * m[k][step] for k in DEEPGIN_TERMS) + 0.001 * m["g_adv"][step]
        assert m["total"][step] == pytest.approx(want, rel=1e-5), step
        assert m["g_adv"][step] != 0 and m["d_loss"][step] > 0 and m["tv"][step] > 0
        if HAS_STLPIPS:
            assert m["perceptual"][step] > 0 and m["style"][step] > 0
    err = capsys.readouterr().err
    assert "step 0: loss: warm-up stage" in err and "step 1: loss: main stage" in err
    assert "val/psnr" in read_metrics(tmp_path / "a")
    # the export: weights, card, and everything that loads a model
    final = tmp_path / "a" / "final"
    meta = pconv.read_metadata(final / "model.safetensors")
    assert meta["architecture"] == "deepgin"
    loss = json.loads(meta["loss"])
    assert loss["loss"] == "deepgin" and loss["warmup"]["weights"]["style"] == 0
    assert loss["warmup_steps"] == 1 and loss["paper_backbone"].startswith("ImageNet VGG-19")
    assert loss["backbone"]["name"] == DEEPGIN["perceptual"]
    training = json.loads(meta["training"])
    assert training["adversarial"]["kind"] == "multiscale-patch"
    assert "one mask of each generator (3 per image)" in training["masks"]
    card = (final / "MODEL_CARD.md").read_text()
    assert "DeepGIN" in card and "(`deepgin`)" in card
    assert f"{DEEPGIN['perceptual']} (not the paper's ImageNet VGG-19" in card
    assert "- Steps: 4 at lr 0.0001, Adam" in card and "BatchNorm" not in card  # it has none
    assert "- Warm-up: the first 1 steps with weights {'hole': 5.0, 'perceptual': 0.0" in card
    model = pconv.load_model(final)
    assert isinstance(model, DeepGIN) and model.config == DeepGINConfig.compact(resolution=64)
    after = trainer.model.state_dict()
    assert all(torch.equal(model.state_dict()[k], after[k].cpu()) for k in after)
    img = np.asarray(Image.open(next(photo_dir.glob("*.jpg"))))[:96, :128]
    hole = np.zeros(img.shape[:2], bool)
    hole[20:60, 30:90] = True
    filled = pconv.inpaint(img, hole, model)
    assert filled.shape == img.shape and np.array_equal(filled[~hole], img[~hole])
    noisy = img.copy()
    noisy[hole] = np.random.default_rng(0).integers(0, 256, (int(hole.sum()), 3))
    assert np.array_equal(pconv.inpaint(noisy, hole, model), filled)
    # exact resume: stopped in the warm-up, continued into the main stage
    first = Trainer(config, tmp_path / "b").run(stop_at=1)
    assert not first.finished
    resumed = Trainer(config, tmp_path / "b", resume=True)
    assert resumed.step == 1 and isinstance(resumed.model, DeepGIN)
    resumed.run()
    a = pconv.load_weights(final / "model.safetensors")[0].state_dict()
    b = pconv.load_weights(tmp_path / "b" / "final" / "model.safetensors")[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    sa, sb = state.latest_state(tmp_path / "a"), state.latest_state(tmp_path / "b")
    assert sa.step == sb.step == 4 and sb.extra["model_architecture"] == "deepgin"
    for name in ("discriminator", "d_optimizer", "optim"):
        keys = [k for k in sa.tensors if k.startswith(name + "/")]
        assert keys and all(torch.equal(sa.tensors[k], sb.tensors[k]) for k in keys), name
    ma, mb = read_metrics(tmp_path / "a"), read_metrics(tmp_path / "b")
    for tag in ("train/total", "train/out_hole", "train/perceptual", "train/d_loss"):
        assert ma[tag] == mb[tag], tag
