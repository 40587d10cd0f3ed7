"""``python -m train --arch``: the training recipes (pconv.training.recipes), seed 002's GAN
with partial convolutions trained for real on real photographs (tiny widths, 64 px), exact
resume, export and loading; ``--arch deepgin`` where its network is not installed."""

from __future__ import annotations

import json
import sys
import types
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from train_fixtures import TINY

import pconv
from pconv.architectures import ARCHITECTURES, Architecture
from pconv.gan_pconv import GanPConvConfig, GanPConvGenerator
from pconv.training import state
from pconv.training.config import ADVERSARIAL_DEFAULTS, dump_toml, load_toml, resolve
from pconv.training.engine import Trainer
from pconv.training.errors import ConfigError, InitError
from pconv.training.logs import read_metrics
from pconv.training.recipes import RECIPES, get_recipe
from train.cli import build_parser, main, resolve_args

pytestmark = pytest.mark.usefixtures("one_thread")

#: seed 002's generator 8 channels wide at 64 px, with TINY's run settings (no U-Net depth)
GAN = {**{k: v for k, v in TINY.items() if k != "depth"}, "arch": "gan-pconv", "val_holdout": 1}
#: reconstruction for step 1, the discriminators alone for step 2, then both
PHASES = {"adv_warmup": 0.2, "adv_d_only": 0.2}


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory, photos) -> Path:
    root = tmp_path_factory.mktemp("photos")
    for name, pixels in sorted(photos.items()):
        Image.fromarray(pixels).save(root / f"{name}.jpg")
    return root


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
    assert deepgin.train_method == "forward_train" and deepgin.loss  # the seed's outputs


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
    # a run folder from before --arch trained the U-Net
    old = dump_toml(resolve({}, {"data": ["a"]}))
    (run / "config.toml").write_text(
        "\n".join(line for line in old.splitlines() if not line.startswith("arch"))
    )
    assert resolve_args(parse(["--resume", str(run)]))[0].arch == "unet"
    with pytest.raises(ConfigError, match="--arch cannot change when resuming"):
        resolve_args(parse(["--resume", str(run), "--arch", "gan-pconv"]))


def test_deepgin_without_its_module_is_one_line(tmp_path, photo_dir, capsys, monkeypatch):
    """However this installation stands, a pconv.deepgin that cannot be imported (here: made
    unimportable) is one line naming it, exit status 2, and no run folder."""
    monkeypatch.setitem(sys.modules, "pconv.deepgin", None)
    with pytest.raises(
        ConfigError, match=r"^arch deepgin: this installation has no pconv\.deepgin"
    ):
        resolve({}, {"data": ["a"], "arch": "deepgin"})
    run = tmp_path / "run"
    for how in (["--arch", "deepgin"], ["--preset", "deepgin-compact"]):
        argv = ["--data", str(photo_dir), "--output", str(run), *how, "--workers", "0"]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "error: --arch deepgin: " in err[0] and "pconv.deepgin" in err[0]
        assert not run.exists()


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


# -- a network that trains from several outputs (DeepGIN's interface) --------------------------


@dataclass(frozen=True)
class _StandInConfig:
    width: int = 8
    resolution: int = 256

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> _StandInConfig:
        return cls(**data)


class _StandInGIN(nn.Module):
    """Two stages and a x4 low-resolution output, as pconv.deepgin's interface has them: a
    stand-in for that module (built elsewhere), so that its recipe is exercised here."""

    def __init__(self, config: _StandInConfig) -> None:
        super().__init__()
        self.config = config
        self.coarse = nn.Conv2d(4, 3, 3, padding=1)
        self.refine = nn.Conv2d(4, config.width, 3, padding=1)
        self.out = nn.Conv2d(config.width, 3, 1)

    def forward_train(self, image: torch.Tensor, valid: torch.Tensor) -> dict[str, torch.Tensor]:
        x = torch.where(valid > 0.5, image, torch.zeros(()))
        coarse = torch.sigmoid(self.coarse(torch.cat([x, valid], 1)))
        mixed = valid * image + (1 - valid) * coarse
        output = torch.sigmoid(self.out(torch.relu(self.refine(torch.cat([mixed, valid], 1)))))
        return {"coarse": coarse, "output": output, "low_res": F.avg_pool2d(output, 4)}

    def forward(self, image: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        return self.forward_train(image, valid)["output"]

    def predict(self, image: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.forward(image, valid), None


class _StandInLoss(nn.Module):
    TERMS = ("coarse_l1", "output_l1", "low_res_l1")

    def __init__(self, features=None) -> None:
        super().__init__()
        self.features = features

    def forward(self, outputs, image, valid) -> dict[str, torch.Tensor]:
        terms = {
            "coarse_l1": (outputs["coarse"] - image).abs().mean(),
            "output_l1": (outputs["output"] - image).abs().mean(),
            "low_res_l1": (outputs["low_res"] - F.avg_pool2d(image, 4)).abs().mean(),
        }
        return {**terms, "total": sum(terms.values())}

    def describe(self) -> dict:
        return {"loss": "stand-in", "backbone": {"name": "none", "faithful": True}}


@pytest.fixture
def stand_in_deepgin(monkeypatch):
    network = types.ModuleType("pconv.deepgin")
    network.CONFIGS = {"paper": _StandInConfig(width=8), "compact": _StandInConfig(width=4)}
    loss = types.ModuleType("pconv.losses.deepgin")
    loss.DeepGINLoss, loss.TERM_NAMES = _StandInLoss, _StandInLoss.TERMS
    monkeypatch.setitem(sys.modules, "pconv.deepgin", network)
    monkeypatch.setitem(sys.modules, "pconv.losses.deepgin", loss)
    arch = Architecture(
        name="deepgin", config_type=_StandInConfig, module_type=_StandInGIN, build=_StandInGIN,
        recognise=lambda meta: False, multiple=lambda c: 4, resolution=lambda c: c.resolution,
        describe=lambda c: "a stand-in with DeepGIN's outputs",
    )  # fmt: skip
    monkeypatch.setitem(ARCHITECTURES, "deepgin", arch)
    return arch


@pytest.mark.slow
def test_a_multi_output_network_trains_resumes_and_exports(stand_in_deepgin, photo_dir, tmp_path):
    """--arch deepgin through its recipe: the training outputs come from forward_train, the
    loss sees all of them and names its own terms, the discriminators judge "output"."""
    values = {**{k: v for k, v in GAN.items() if k not in ("arch", "base_width")}}
    values |= {"preset": "deepgin-compact", "steps": 4, "ckpt_every": 2, "val_every": 4}
    config = resolve({}, {"data": [str(photo_dir)], **values})
    assert (config.arch, config.adversarial, config.adv_warmup) == (
        "deepgin",
        "multiscale-patch",
        0.1,
    )
    assert (config.lr, config.d_lr, config.adam_beta1) == (1e-4, 4e-4, 0.5)
    trainer = Trainer(config, tmp_path / "a")
    trainer.run()
    # constant for steps 0-1, then linearly down: step 3 (the last) ran at half the rates
    assert config.lr_decay == 0.5 and [trainer.lr_factor(s) for s in range(4)] == [1, 1, 1, 0.5]
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.5e-4)
    assert trainer.adversary.optimizer.param_groups[0]["lr"] == pytest.approx(2e-4)
    m = read_metrics(tmp_path / "a")
    for tag in ("coarse_l1", "output_l1", "low_res_l1", "g_adv", "d_loss"):
        assert sorted(m[f"train/{tag}"]) == [1, 2, 3, 4], tag
    assert "val/psnr" in m and "val/loss" in m
    model = pconv.load_model(tmp_path / "a" / "final")
    assert isinstance(model, _StandInGIN) and model.config.width == 4  # the compact variant
    first = Trainer(config, tmp_path / "b").run(stop_at=2)
    assert not first.finished
    Trainer(config, tmp_path / "b", resume=True).run()
    a = pconv.load_weights(tmp_path / "a" / "final" / "model.safetensors")[0].state_dict()
    b = pconv.load_weights(tmp_path / "b" / "final" / "model.safetensors")[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
