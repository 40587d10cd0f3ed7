"""Adversarial training (``python -m train --adversarial``): the discriminators, their losses,
and real training runs on real photographs with tiny generators (see tests/test_train.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from train_fixtures import TINY as TINY_RUN

import pconv
from pconv.discriminators import (
    GlobalLocalDiscriminator,
    MultiScalePatchDiscriminator,
    hinge_d_loss,
    hinge_g_loss,
    hole_boxes,
    local_crops,
    log_d_loss,
    log_g_loss,
    parameter_count,
)
from pconv.training import state
from pconv.training.config import resolve
from pconv.training.engine import Trainer, TrainingDiverged
from pconv.training.errors import ConfigError
from pconv.training.logs import read_metrics

REPO = Path(__file__).resolve().parents[1]
TINY = {**TINY_RUN, "val_holdout": 1}


pytestmark = pytest.mark.usefixtures("one_thread")


def _config(photo_dir: Path, **overrides):
    return resolve({}, {"data": [str(photo_dir)], **TINY, **overrides})


# -- the networks ------------------------------------------------------------------------------


def _conv(cin: int, cout: int, k: int) -> int:
    return k * k * cin * cout + cout


def test_global_local_shapes_and_parameter_count():
    d = GlobalLocalDiscriminator(64)
    # 64 px: 4 global convolutions to 4x4 (64..512), the 32 px crop 3 (64..256), FC 1024 each
    convs = _conv(3, 64, 5) + _conv(64, 128, 5) + _conv(128, 256, 5)
    expected = (
        convs + _conv(256, 512, 5) + (512 * 16 * 1024 + 1024)  # global
        + convs + (256 * 16 * 1024 + 1024)  # local
        + 2048 + 1  # the output layer
    )  # fmt: skip
    assert parameter_count(d) == expected == 17_922_817
    kernels = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(m.kernel_size == (5, 5) and m.stride == (2, 2) for m in kernels)
    # at 256 px it is Iizuka et al.'s network: 6 global and 5 local convolutions
    big = GlobalLocalDiscriminator(256)
    assert len(big.global_convs) // 2 == 6 and len(big.local_convs) // 2 == 5
    x = torch.rand(3, 3, 64, 64)
    boxes = torch.tensor([[0, 0], [32, 32], [10, 20]])
    assert d(x, boxes).shape == (3,)


def test_multiscale_patch_shapes_parameter_count_and_spectral_norm():
    d = MultiScalePatchDiscriminator()
    one = (
        _conv(6, 64, 4) + _conv(64, 128, 4) + _conv(128, 256, 4) + _conv(256, 512, 4)
        + _conv(512, 1, 4)
    )  # fmt: skip
    assert parameter_count(d) == 2 * one == 5_535_618
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 10
    for conv in convs:  # spectral normalisation after every convolution
        assert torch.nn.utils.parametrize.is_parametrized(conv, "weight")
        (p,) = conv.parametrizations.weight
        assert type(p).__name__ == "_SpectralNorm"
    full, half = d(torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64))
    assert full.shape == (2, 1, 11, 11) and half.shape == (2, 1, 7, 7)
    # the half-scale one sees the input average-pooled 3x3 / 2 (eval: no power iteration
    # between the two calls)
    d.eval()
    x = torch.rand(1, 6, 64, 64)
    pooled = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
    assert torch.allclose(d(x[:, :3], x[:, 3:])[1], d.scales[1](pooled))


def test_hole_boxes_centre_on_the_hole_and_stay_inside():
    valid = torch.ones(4, 1, 64, 64)
    valid[0, :, 20:30, 30:40] = 0  # centre (25, 35): box from (9, 19)
    valid[1, :, 0:4, 60:64] = 0  # in a corner: clamped to the image
    valid[2, :, 10:60, 5:6] = 0  # bounding box of a thin stroke
    boxes = hole_boxes(valid, 32)  # image 3 has no hole: the centre crop
    assert boxes.tolist() == [[9, 19], [0, 32], [19, 0], [16, 16]]
    image = torch.arange(64.0).expand(4, 3, 64, 64)
    crops = local_crops(image, boxes, 32)
    assert crops.shape == (4, 3, 32, 32) and float(crops[1, 0, 0, 0]) == 32.0


def test_losses_against_the_formulas():
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-3.0, 0.0, 0.8])
    r, f = hinge_d_loss(real, fake)
    assert float(r) == pytest.approx((0 + 0.5 + 2.0) / 3)  # mean(max(0, 1 - D(real)))
    assert float(f) == pytest.approx((0 + 1.0 + 1.8) / 3)  # mean(max(0, 1 + D(fake)))
    assert float(hinge_g_loss(fake)) == pytest.approx(-(-3.0 + 0.0 + 0.8) / 3)
    # summed over scales
    r2, _ = hinge_d_loss([real, real[:2]], [fake, fake[:2]])
    assert float(r2) == pytest.approx(float(r) + 0.25)
    sig = torch.sigmoid
    r, f = log_d_loss(real, fake)
    assert float(r) == pytest.approx(float(-torch.log(sig(real)).mean()))
    assert float(f) == pytest.approx(float(-torch.log(1 - sig(fake)).mean()))
    assert float(log_g_loss(fake)) == pytest.approx(float(-torch.log(sig(fake)).mean()))
    # stable where the naive formula is not
    assert torch.isfinite(log_g_loss(torch.tensor([-200.0])))


def test_settings_of_each_design():
    none = resolve({}, {"data": ["a"]})
    assert none.adversarial == "none" and none.lr == 2e-4 and none.adam_beta1 is None
    patch = resolve({}, {"data": ["a"], "adversarial": "multiscale-patch"})
    assert (patch.lr, patch.d_lr, patch.adam_beta1, patch.adv_weight) == (1e-4, 4e-4, 0.5, 1e-3)
    assert (patch.adv_warmup, patch.adv_d_only) == (0.0, 0.0)
    mine = resolve({}, {"data": ["a"], "adversarial": "multiscale-patch", "lr": 3e-4})
    assert mine.lr == 3e-4 and mine.d_lr == 4e-4  # an explicit --lr wins
    gl = resolve({}, {"data": ["a"], "adversarial": "global-local", "lr": 1e-3})
    assert (gl.adv_weight, gl.adv_warmup, gl.adv_d_only, gl.d_lr) == (1 / 2000, 0.18, 0.02, 1e-3)
    with pytest.raises(ConfigError, match="add up to at most 1"):
        resolve({}, {"data": ["a"], "adversarial": "global-local", "adv_warmup": 0.99})


def test_resume_cannot_change_the_adversarial_setting(tmp_path):
    from pconv.training.config import dump_toml
    from train.cli import build_parser, resolve_args

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.toml").write_text(dump_toml(resolve({}, {"data": ["a"]})))
    parse = build_parser().parse_args
    config, _, resuming = resolve_args(parse(["--resume", str(run), "--adversarial", "none"]))
    assert resuming and config.adversarial == "none"
    with pytest.raises(ConfigError, match="--adversarial cannot change when resuming"):
        resolve_args(parse(["--resume", str(run), "--adversarial", "multiscale-patch"]))


# -- training --------------------------------------------------------------------------------


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return pconv.load_weights(path)[0].state_dict()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["global-local", "multiscale-patch"])
def test_training_steps_log_checkpoint_and_export_without_d(kind, photo_dir, tmp_path, capsys):
    # global-local in its three phases: step 1 reconstruction, 2 D alone, 3-4 both
    phases = {"adv_warmup": 0.25, "adv_d_only": 0.25} if kind == "global-local" else {}
    config = _config(photo_dir, adversarial=kind, steps=4, phase2_steps=1, val_every=4, **phases)
    trainer = Trainer(config, tmp_path)
    d_before = {k: v.clone() for k, v in trainer.adversary.d.state_dict().items()}
    g_start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    summary = trainer.run()
    assert summary.finished
    metrics = read_metrics(tmp_path)
    for tag in ("total", "g_adv", "d_loss", "d_real", "d_fake", "d_grad_norm", "grad_norm"):
        assert sorted(metrics[f"train/{tag}"]) == [1, 2, 3, 4], tag
    d_loss, g_adv = metrics["train/d_loss"], metrics["train/g_adv"]
    if kind == "global-local":
        assert d_loss[1] == 0 and g_adv[1] == 0 and g_adv[2] == 0  # the phases
        assert metrics["train/grad_norm"][2] == 0  # the generator only predicts in step 2
        assert all(d_loss[s] > 0 and g_adv[s] > 0 for s in (3, 4))
    else:
        assert all(d_loss[s] > 0 for s in (1, 2, 3, 4)) and all(g_adv[s] != 0 for s in (1, 2))
    err = capsys.readouterr().err
    assert " g_adv " in err and " d_loss " in err  # the progress line shows D and G terms
    after = trainer.adversary.d.state_dict()
    assert any(not torch.equal(d_before[k], after[k]) for k in d_before)  # D learned
    # the checkpoint holds the discriminators, their optimiser and scaler
    loaded = state.load_state(state.list_checkpoints(tmp_path)[-1][1])
    assert loaded.module_state("discriminator") and "d_optimizer_groups" in loaded.meta
    assert "d_scaler" in loaded.meta
    assert loaded.meta["d_optimizer_groups"][0]["betas"][0] == config.adam_beta1
    # ... the exported weights do not, and load as before
    final = tmp_path / "final" / "model.safetensors"
    with safe_open(str(final), framework="pt") as fh:
        assert not any("disc" in k or k.startswith("d_") for k in fh.keys())  # noqa: SIM118
    model = pconv.load_model(tmp_path / "final")
    assert set(model.state_dict()) == set(g_start)
    record = json.loads(pconv.read_metadata(final)["training"])["adversarial"]
    assert record["kind"] == kind and record["parameters"] == parameter_count(trainer.adversary.d)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["global-local", "multiscale-patch"])
def test_resume_is_bit_identical(kind, photo_dir, tmp_path):
    phases = {"adv_warmup": 0.2, "adv_d_only": 0.2} if kind == "global-local" else {}
    values = dict(adversarial=kind, steps=5, phase2_steps=1, ckpt_every=2, val_every=5, **phases)
    Trainer(_config(photo_dir, **values), tmp_path / "a").run()
    first = Trainer(_config(photo_dir, **values), tmp_path / "b").run(stop_at=3)
    assert not first.finished
    resumed = Trainer(_config(photo_dir, **values), tmp_path / "b", resume=True)
    assert resumed.step == 3
    resumed.run()
    a = _weights(tmp_path / "a" / "final" / "model.safetensors")
    b = _weights(tmp_path / "b" / "final" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    da = state.latest_state(tmp_path / "a")
    db = state.latest_state(tmp_path / "b")
    assert da.step == db.step == 5
    for name in ("discriminator", "d_optimizer"):
        keys = [k for k in da.tensors if k.startswith(name + "/")]
        assert keys and all(torch.equal(da.tensors[k], db.tensors[k]) for k in keys), name
    ma, mb = read_metrics(tmp_path / "a"), read_metrics(tmp_path / "b")
    for tag in ("train/d_loss", "train/g_adv", "train/total"):
        assert ma[tag] == mb[tag], tag


@pytest.mark.slow
def test_fp16_autocast_with_a_scaler_per_optimiser(photo_dir, tmp_path):
    config = _config(photo_dir, adversarial="multiscale-patch", steps=2, precision="fp16")
    trainer = Trainer(config, tmp_path)
    assert trainer.scaler.is_enabled() and trainer.adversary.scaler.is_enabled()
    assert trainer.adversary.scaler is not trainer.scaler
    assert trainer.run().finished
    loaded = state.latest_state(tmp_path)
    assert loaded.meta["d_scaler"]["scale"] > 0 and loaded.meta["scaler"]["scale"] > 0


@pytest.mark.slow
def test_nan_guard_covers_the_discriminators(photo_dir, tmp_path):
    config = _config(photo_dir, adversarial="global-local", steps=4, d_lr=1e30, val_holdout=0)
    with pytest.raises(TrainingDiverged, match=r"the discriminator (loss|gradient norm) became"):
        Trainer(config, tmp_path).run()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["global-local", "multiscale-patch"])
def test_ddp_two_processes_with_discriminators(kind, photo_dir, tmp_path):
    """Both ranks' generators and discriminators agree at the end (the trainer checks)."""
    run = tmp_path / "run"
    env = {
        **__import__("os").environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(REPO),
    }
    args = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "train", "--data", str(photo_dir), "--output", str(run), "--depth", "4",
        "--base-width", "8", "--size", "64", "--batch-size", "2", "--perceptual", "none",
        "--workers", "0", "--tensorboard", "off", "--log-every", "1", "--device", "cpu",
        "--steps", "3", "--phase2-steps", "1", "--ckpt-every", "2", "--val-holdout", "1",
        "--adversarial", kind,
    ]  # fmt: skip
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "step 3/3" in done.stdout
    assert sorted(read_metrics(run)["train/d_loss"]) == [1, 2, 3]
    loaded = state.latest_state(run)
    assert loaded.step == 3 and loaded.module_state("discriminator")
    pconv.load_model(run / "final")
