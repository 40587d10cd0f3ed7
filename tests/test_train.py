"""``python -m train`` on real photographs (scikit-image / scikit-learn), with tiny models.

Every run here is real: real files, real DataLoader, real optimiser steps, real processes for
the kill and DDP tests. Models are depth 4, 8 channels wide, 64 px crops, pixel + TV loss.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from torch.utils.data import default_collate
from train_fixtures import TINY

import pconv
from pconv.errors import CheckpointError
from pconv.evaluation.metrics import finite_psnr, score_batch
from pconv.io import load_image
from pconv.training import state
from pconv.training.config import TrainConfig, dump_toml, load_toml, resolve
from pconv.training.data import StepSampler, crop_scale, load_crop, random_crop
from pconv.training.engine import Trainer, TrainingDiverged
from pconv.training.errors import ConfigError
from pconv.training.logs import read_metrics
from train.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY_ARGS = [
    "--depth", "4", "--base-width", "8", "--size", "64", "--batch-size", "2",
    "--perceptual", "none", "--workers", "0", "--tensorboard", "off", "--log-every", "1",
]  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")


def _env() -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory, photos) -> Path:
    """Five real photos as JPEG and PNG, one in a subfolder (folders are searched recursively)."""
    root = tmp_path_factory.mktemp("photos")
    (root / "sub").mkdir()
    for i, (name, pixels) in enumerate(sorted(photos.items())):
        where = root / "sub" if i == 0 else root
        Image.fromarray(pixels).save(where / f"{name}.{'png' if i % 2 else 'jpg'}")
    return root


def _config(photo_dir: Path, **overrides) -> TrainConfig:
    return resolve({}, {"data": [str(photo_dir)], **TINY, **overrides})


def _losses(run_dir: Path) -> dict[int, float]:
    return read_metrics(run_dir)["train/total"]


# -- training really learns --------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("weights", ["", "valid=0,hole=0,tv=0,ssim=1"], ids=["paper", "ssim"])
def test_loss_falls_on_a_fixed_batch(photo_dir, tmp_path, weights):
    config = _config(photo_dir, steps=20, phase2_steps=0, val_holdout=0, loss_weights=weights)
    trainer = Trainer(config, tmp_path)
    sampler = StepSampler(len(trainer.train_set), 2, 0, 0, 1)
    batch = default_collate([trainer.train_set[k] for k in sampler.keys(0)])
    losses = [trainer.train_step(batch["image"], batch["valid"])["total"] for _ in range(15)]
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.75 * losses[0], losses


@pytest.mark.slow
def test_ssim_term_is_logged_shown_and_recorded(photo_dir, tmp_path, capsys):
    config = _config(photo_dir, steps=2, phase2_steps=0, val_holdout=0, loss_weights="ssim=0.5")
    Trainer(config, tmp_path / "run").run()
    ssim = read_metrics(tmp_path / "run")["train/ssim"]
    assert len(ssim) == 2 and all(0 < v < 1 for v in ssim.values())
    assert " ssim " in capsys.readouterr().err  # the progress line names every weighted term
    meta = pconv.checkpoint.read_metadata(tmp_path / "run" / "final" / "model.safetensors")
    assert json.loads(meta["loss"])["weights"]["ssim"] == 0.5


# -- checkpoints, resume, export ---------------------------------------------------------------

RESUME = {"steps": 6, "phase2_steps": 2, "ckpt_every": 3, "val_every": 3, "val_holdout": 1}


@pytest.fixture(scope="module")
def uninterrupted(photo_dir, tmp_path_factory) -> Path:
    """6 steps in one go: phase 1 for 4 steps, then phase 2, validation every 3 steps."""
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    summary = Trainer(_config(photo_dir, **RESUME), run_dir).run()
    assert summary.finished and summary.step == 6
    return run_dir


@pytest.mark.slow
def test_resume_continues_exactly(photo_dir, uninterrupted, tmp_path):
    # Stop after 3 steps, then resume in a new Trainer with two DataLoader workers (the data a
    # step sees must not depend on the workers).
    first = Trainer(_config(photo_dir, **RESUME), tmp_path).run(stop_at=3)
    assert not first.finished and [s for s, _ in state.list_checkpoints(tmp_path)] == [3]
    resumed = Trainer(_config(photo_dir, **RESUME, workers=2), tmp_path, resume=True)
    assert resumed.step == 3
    resumed.run()
    expected, got = _losses(uninterrupted), _losses(tmp_path)
    assert sorted(got) == [1, 2, 3, 4, 5, 6]
    for step in (4, 5, 6):
        assert abs(got[step] - expected[step]) <= 1e-6, (step, got[step], expected[step])
    # ... and the weights at the end are bit-for-bit those of the uninterrupted run
    a = pconv.load_weights(uninterrupted / "final" / "model.safetensors")[0].state_dict()
    b = pconv.load_weights(tmp_path / "final" / "model.safetensors")[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_a_run_cut_short_with_steps_still_exports(photo_dir, tmp_path, capsys):
    # Stopped at step 2 of 4, then "resume with --steps 2": nothing to train, the final export
    # is still written (it was only said to be "already complete", with no final/).
    run = tmp_path / "run"
    Trainer(_config(photo_dir, steps=4, phase2_steps=0, ckpt_every=2), run).run(stop_at=2)
    assert not (run / "final").exists()
    assert main(["--resume", str(run), "--steps", "2", "--workers", "0"]) == 0
    final = pconv.load_model(run / "final")
    assert '"steps": 2' in pconv.read_metadata(run / "final" / "model.safetensors")["training"]
    assert final.config.depth == TINY["depth"]
    capsys.readouterr()
    assert main(["--resume", str(run), "--steps", "2", "--workers", "0"]) == 0
    assert "already complete at step 2" in capsys.readouterr().err


#: ``python -m train`` with every checkpoint write stalled for 2 s halfway through its bytes.
STALLING_TRAIN = """
import sys, time
from pconv.training import state

def stalled(fh, data):
    fh.write(data[: len(data) // 2])
    fh.flush()
    time.sleep(2)
    fh.write(data[len(data) // 2 :])

state.write_bytes = stalled
from train.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_kill_while_writing_a_checkpoint_keeps_the_previous_one(photo_dir, tmp_path):
    run_dir = tmp_path / "run"
    args = [
        sys.executable, "-m", "train", "--data", str(photo_dir), "--output", str(run_dir),
        *TINY_ARGS, "--steps", "6", "--ckpt-every", "1", "--val-holdout", "0",
    ]  # fmt: skip
    # Each checkpoint write pauses halfway through its temporary file: kill it there. The
    # pause is injected by this test (the real writer, slowed down), not read by the trainer.
    stalling = tmp_path / "stalling_train.py"
    stalling.write_text(STALLING_TRAIN)
    args = [sys.executable, str(stalling), *args[3:]]
    proc = subprocess.Popen(args, env=_env(), stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    first = state.checkpoint_path(run_dir, 1)
    deadline = time.time() + 60
    partial: list[Path] = []
    while time.time() < deadline and proc.poll() is None:
        partial = list((run_dir / state.CKPT_DIR).glob(".step-00000002.safetensors.*.tmp"))
        if first.is_file() and partial:
            break
        time.sleep(0.02)
    assert partial, f"never caught the second write: {proc.communicate()[1][-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert [s for s, _ in state.list_checkpoints(run_dir)] == [1]
    with pytest.raises(CheckpointError):  # the half-written file is not a checkpoint
        state.load_state(partial[0])
    loaded = state.latest_state(run_dir)
    assert loaded is not None and loaded.step == 1
    # and the run continues from it, clearing the debris
    config = resolve(load_toml(run_dir / "config.toml"))
    summary = Trainer(config, run_dir, resume=True).run()
    assert summary.finished and summary.step == 6
    assert not list((run_dir / state.CKPT_DIR).glob(".*tmp*"))
    assert sorted(_losses(run_dir)) == [1, 2, 3, 4, 5, 6]


@pytest.mark.slow
def test_exported_weights_load_through_the_zoo(uninterrupted, tmp_path):
    import zoo
    from zoo.publish import prepare

    final = uninterrupted / "final"
    assert zoo.resolve(str(final)) == final / "model.safetensors"
    model = pconv.load_model(final)
    assert model.config.depth == 4 and model.config.resolution == 64
    meta = pconv.read_metadata(final / "model.safetensors")
    training = json.loads(meta["training"])
    assert training["steps"] == 6 and training["phase1_steps"] == 4
    assert json.loads(meta["loss"])["backbone"]["name"] == "none"
    assert set(json.loads(meta["metrics"])) >= {"l1", "psnr", "ssim"}
    assert "check the data's licences" in meta["licence_note"]
    image = np.asarray(Image.open(next(uninterrupted.glob("samples/*.png"))))
    assert image.ndim == 3
    filled = pconv.inpaint(np.zeros((64, 96, 3), np.float32), np.eye(64, 96, dtype=bool), model)
    assert filled.shape == (64, 96, 3)
    # ready for `python -m zoo publish`: the trainer's draft card is the card...
    draft = (final / "MODEL_CARD.md").read_text()
    prepare(final, tmp_path / "with-draft")
    assert (tmp_path / "with-draft" / "README.md").read_text() == draft
    # ...unless the folder has a README.md (edited by hand) or only the weights are given
    edited = draft + "\nEdited by hand.\n"
    (final / "README.md").write_text(edited)
    try:
        prepare(final, tmp_path / "edited")
        assert (tmp_path / "edited" / "README.md").read_text() == edited
    finally:
        (final / "README.md").unlink()
    prepare(final / "model.safetensors", tmp_path / "generated")
    assert (tmp_path / "generated" / "README.md").read_text() != draft


@pytest.mark.slow
def test_init_from_weights_fine_tunes_phase_2_only(photo_dir, tmp_path):
    # a model with its own input normalisation, trained at 128: both must carry over
    imagenet = {"input_mean": (0.485, 0.456, 0.406), "input_std": (0.229, 0.224, 0.225)}
    init = pconv.PConvUNet(pconv.UNetConfig(depth=5, base_width=8, resolution=128, **imagenet))
    init_file = pconv.save_model(init, tmp_path / "init.safetensors")
    values = {**TINY, "size": None, "depth": None, "init": str(init_file), "val_holdout": 0}
    config = resolve({}, {"data": [str(photo_dir)], **values, "steps": 3})
    run = tmp_path / "run"
    trainer = Trainer(config, run)
    assert trainer.config.phase1_steps == 0 and trainer.config.size == 128
    assert trainer.model._encoder_bn_frozen
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.run(stop_at=2)
    init_file.unlink()  # resuming needs the checkpoint only
    resumed = Trainer(config, run, resume=True)
    resumed.run()
    after = resumed.model.state_dict()
    bn_weight = "encoders.1.bn.weight"
    assert torch.equal(before[bn_weight], after[bn_weight])  # frozen encoder BN
    assert not torch.equal(before["decoders.0.conv.weight"], after["decoders.0.conv.weight"])
    final = pconv.load_model(run / "final")
    assert final.config.input_mean == imagenet["input_mean"] and final.config.resolution == 128


@pytest.mark.slow
def test_init_from_another_runs_checkpoint(uninterrupted, photo_dir, tmp_path, capsys):
    ckpt = state.checkpoint_path(uninterrupted, 3)
    values = {**TINY, "size": None, "depth": None, "init": str(ckpt), "val_holdout": 0}
    config = resolve({}, {"data": [str(photo_dir)], **values, "steps": 1})
    trainer = Trainer(config, tmp_path / "run")
    weights = state.load_state(ckpt).model_state()
    got = trainer.model.state_dict()
    assert all(torch.equal(got[k], v) for k, v in weights.items())  # the model of step 3
    assert trainer.step == 0 and trainer.init_path == str(ckpt)  # not a resume
    assert trainer.run().finished

    # a damaged checkpoint is one line, not a traceback
    broken = tmp_path / "broken.safetensors"
    raw = ckpt.read_bytes()
    broken.write_bytes(raw[: len(raw) // 2])
    config = resolve({}, {"data": [str(photo_dir)], **values, "init": str(broken), "steps": 1})
    with pytest.raises(CheckpointError, match=r"^init .*broken\.safetensors: "):
        Trainer(config, tmp_path / "run2")  # the library's words...
    argv = ["--data", str(photo_dir), "--output", str(tmp_path / "run3"), *TINY_ARGS,
            "--init", str(broken), "--steps", "1", "--val-holdout", "0"]  # fmt: skip
    capsys.readouterr()
    assert main(argv) == 2  # ...and the command line's
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error: --init " in err[0] and "broken.safetensors" in err[0]


@pytest.mark.slow
def test_prior_smooth_gates_an_init_model_and_sticks(photo_dir, tmp_path, capsys):
    init = pconv.PConvUNet(pconv.UNetConfig(depth=4, base_width=8, resolution=64))
    init_file = pconv.save_model(init, tmp_path / "init.safetensors")
    values = {**TINY, "size": None, "depth": None, "init": str(init_file), "val_holdout": 1}
    config = resolve({}, {"data": [str(photo_dir)], **values, "steps": 2, "prior": "smooth"})
    trainer = Trainer(config, tmp_path / "run")
    assert trainer.model.config.prior == "smooth" and trainer.config.prior == "smooth"
    gate_before = trainer.model.decoders[0].conv.weight[3].detach().clone()
    assert trainer.run().finished
    assert 'prior = "smooth"' in (tmp_path / "run" / "config.toml").read_text()
    final = pconv.load_model(tmp_path / "run" / "final")
    assert final.config.prior == "smooth"
    assert not torch.equal(final.decoders[0].conv.weight[3], gate_before)  # the gate learns

    # fine-tuning the gated model keeps its prior; asking to drop it is a one-line error
    gated = str(tmp_path / "run" / "final")
    config = resolve({}, {"data": [str(photo_dir)], **values, "init": gated, "steps": 1})
    assert Trainer(config, tmp_path / "run2").model.config.prior == "smooth"
    config = resolve({}, {"data": [str(photo_dir)], **values, "init": gated, "prior": "none"})
    with pytest.raises(ConfigError, match=r"^prior none contradicts the init model"):
        Trainer(config, tmp_path / "run3")
    argv = ["--data", str(photo_dir), "--output", str(tmp_path / "run4"), *TINY_ARGS,
            "--size", "64", "--init", gated, "--prior", "none", "--val-holdout", "1"]  # fmt: skip
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "python -m train: error: --prior none contradicts the --init model (prior smooth): "
        "a learned gate cannot be dropped"
    ]


# -- robustness --------------------------------------------------------------------------------


@pytest.mark.slow
def test_corrupt_images_are_skipped_and_counted(photo_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for path in sorted(photo_dir.rglob("*"))[:4]:
        if path.is_file():
            (data / path.name).write_bytes(path.read_bytes())
    good = next(data.glob("*.jpg")).read_bytes()
    (data / "truncated.jpg").write_bytes(good[: len(good) // 3])  # header fine, data cut
    (data / "notes.png").write_text("not an image")
    (data / "empty.jpg").write_bytes(b"")
    n_train = len(list(data.iterdir())) - 2  # the two header failures are set aside at once
    # enough steps that every training file, the truncated one included, is drawn
    steps = n_train // 2 + 1
    run = tmp_path / "run"
    summary = Trainer(_config(data, steps=steps, phase2_steps=0, val_holdout=0), run).run()
    assert summary.finished and summary.skipped == 3
    listed = (run / "skipped.txt").read_text().splitlines()
    assert sorted(Path(line.split("\t")[0]).name for line in listed) == [
        "empty.jpg",
        "notes.png",
        "truncated.jpg",
    ]


@pytest.mark.slow
def test_nan_guard_stops_and_keeps_the_last_good_checkpoint(photo_dir, tmp_path, capsys):
    run = tmp_path / "run"
    # An absurd learning rate really blows the weights up after the first step.
    argv = ["--data", str(photo_dir), "--output", str(run), *TINY_ARGS, "--steps", "5",
            "--ckpt-every", "1", "--lr", "1e30", "--val-holdout", "0"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) >= 1 and "error: the loss became nan" in err[-1]
    assert "last good checkpoint" in err[-1] and "Traceback" not in "\n".join(err)
    assert "Try a lower --lr, --clip-grad 1, or --precision fp32, then resume" in err[-1]
    steps = [s for s, _ in state.list_checkpoints(run)]
    assert steps == [1]
    loaded = state.load_state(state.checkpoint_path(run, 1))
    assert all(torch.isfinite(t).all() for t in loaded.model_state().values())


@pytest.mark.slow
def test_nan_guard_raises_in_the_library(photo_dir, tmp_path):
    trainer = Trainer(_config(photo_dir, steps=3, lr=1e30, val_holdout=0), tmp_path)
    with pytest.raises(TrainingDiverged) as info:
        trainer.run()
    # the library's words: settings by their field names, no command-line flags
    assert "Try a lower lr, clip_grad 1, or precision fp32, then resume" in str(info.value)
    assert "--" not in str(info.value)
    assert info.value.settings == ("lr", "clip_grad", "precision")


# -- several processes ---------------------------------------------------------------------------


@pytest.mark.slow
def test_ddp_two_processes_on_cpu(photo_dir, tmp_path):
    run = tmp_path / "run"
    args = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "train", "--data", str(photo_dir), "--output", str(run), *TINY_ARGS,
        "--device", "cpu", "--steps", "4", "--phase2-steps", "1", "--ckpt-every", "2",
        "--val-holdout", "1", "--val-every", "4",
    ]  # fmt: skip
    done = subprocess.run(args, env=_env(), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (run / "final" / "model.safetensors").is_file()
    sessions = json.loads((run / "run.json").read_text())
    assert len(sessions) == 1 and sessions[0]["world"] == 2  # rank 1 wrote nothing
    rows = (run / "metrics.csv").read_text().splitlines()[1:]
    keys = [tuple(r.split(",")[:2]) for r in rows]
    assert len(keys) == len(set(keys))  # one writer: no duplicated rows
    assert sorted(_losses(run)) == [1, 2, 3, 4]
    meta = pconv.read_metadata(run / "final" / "model.safetensors")
    assert json.loads(meta["training"])["world"] == 2
    assert "step 4/4" in done.stdout


def test_sampler_shards_a_global_batch_and_covers_each_epoch():
    single = StepSampler(10, 4, seed=3, start=0, end=10)
    ranks = [StepSampler(10, 2, seed=3, start=0, end=10, rank=r, world=2) for r in (0, 1)]
    for step in range(5):
        assert ranks[0].keys(step) + ranks[1].keys(step) == single.keys(step)
    first_epoch = [i for step in range(5) for i, _ in single.keys(step)][:10]
    assert sorted(first_epoch) == list(range(10))
    # resuming at step 2 yields exactly the uninterrupted stream from there
    assert list(StepSampler(10, 4, 3, 2, 10)) == list(single)[8:]


# -- data, metrics, config, command line --------------------------------------------------------


def test_crops_keep_the_aspect_ratio(photos):
    image = photos["chelsea"].astype(np.float32) / 255.0  # 300x451
    rng = np.random.default_rng(0)
    crop = random_crop(image, 64, "native", False, rng).permute(1, 2, 0).numpy()
    # an exact window of the original pixels: no resampling, no distortion
    hits = [
        (y, x)
        for y in range(image.shape[0] - 63)
        for x in range(image.shape[1] - 63)
        if np.array_equal(image[y, x], crop[0, 0])
        and np.array_equal(image[y : y + 64, x : x + 64], crop)
    ]
    assert len(hits) == 1
    scales = [crop_scale(300, 451, 64, "random-scale", rng) for _ in range(200)]
    assert min(scales) >= 64 / 300 - 1e-12 and max(scales) <= 1.0 and np.std(scales) > 0.05
    assert crop_scale(40, 90, 64, "native", rng) == 64 / 40  # small images are enlarged


def test_large_jpegs_are_decoded_small_with_the_same_crop(photos, tmp_path):
    big = Image.fromarray(photos["astronaut"]).resize((2048, 1536), Image.Resampling.BICUBIC)
    big.save(tmp_path / "big.jpg", quality=95)
    full = load_image(tmp_path / "big.jpg")
    for seed in range(3):
        fast = load_crop(tmp_path / "big.jpg", 64, "fit", True, np.random.default_rng(seed))
        slow = random_crop(full, 64, "fit", True, np.random.default_rng(seed))
        assert fast.shape == slow.shape == (3, 64, 64)
        assert float((fast - slow).abs().mean()) < 0.01  # same window, same scale


def test_validation_metrics_are_the_evaluation_modules(photos):
    """The trainer validates with pconv eval's metrics (one implementation), which agree with
    scikit-image / NumPy; identical images are logged as 100 dB, never inf."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from pconv.evaluation.metrics import PSNR_CAP, SSIM_SETTINGS
    from pconv.training.validate import mean_scores

    truth = photos["coffee"][:128, :192].astype(np.float32) / 255.0
    rng = np.random.default_rng(1)
    output = np.clip(truth + rng.normal(0, 0.1, truth.shape), 0, 1).astype(np.float32)
    hole = np.zeros(truth.shape[:2], bool)
    hole[30:90, 40:150] = True
    grid = lambda a: np.rint(a.astype(np.float64) * 255) / 255  # noqa: E731
    pred = np.where(hole[..., None], grid(output), grid(truth))
    to_t = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None]  # noqa: E731
    valid = torch.from_numpy(~hole)[None, None].float()
    got = {k: float(v[0]) for k, v in score_batch(to_t(output), to_t(truth), valid).items()}
    assert got["l1"] == pytest.approx(np.mean(np.abs(pred - grid(truth))) * 100, abs=1e-9)
    assert got["psnr"] == pytest.approx(
        peak_signal_noise_ratio(grid(truth), pred, data_range=1), abs=1e-6
    )
    assert got["ssim"] == pytest.approx(
        structural_similarity(grid(truth), pred, **SSIM_SETTINGS), abs=1e-6
    )
    # the logged form: an exact fill scores PSNR_CAP, and the mean stays a number
    exact = score_batch(to_t(truth), to_t(truth), valid)
    assert float(exact["psnr"][0]) == float("inf")
    parts = [{**exact, "psnr": finite_psnr(exact["psnr"])}]
    assert mean_scores(parts)["psnr"] == PSNR_CAP


def test_config_file_presets_and_precedence(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(
        'data = ["a"]\npreset = "compact-256"\nsteps = 100\nbase-width = 16\n'
        "[loss-weights]\nhole = 5\n"
    )
    config = resolve(load_toml(path), {"steps": 40})
    assert (config.depth, config.base_width, config.size, config.steps) == (7, 16, 256, 40)
    assert config.phase2_steps == 10 and config.phase1_steps == 30  # the preset's 25 % share
    assert config.loss_weight_values().hole == 5.0
    saved = tmp_path / "saved.toml"
    saved.write_text(dump_toml(config, "header"))
    assert resolve(load_toml(saved)) == config
    with pytest.raises(ConfigError, match="unknown preset"):
        resolve({"preset": "huge"})
    with pytest.raises(ConfigError, match="multiple of"):
        resolve({"size": 100})


@pytest.mark.parametrize(
    "case",
    ["no-images", "bad-preset", "bad-toml", "resume-empty", "resume-no-ckpt", "init-png", "mask"],
)
def test_user_mistakes_are_one_line_errors(case, tmp_path, photo_dir, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    base = ["--data", str(photo_dir), "--output", str(tmp_path / "run"), *TINY_ARGS]
    if case == "no-images":
        argv = ["--data", str(empty), "--output", str(tmp_path / "run"), *TINY_ARGS]
    elif case == "bad-preset":
        (tmp_path / "c.toml").write_text('preset = "huge"\n')
        argv = [*base, "--config", str(tmp_path / "c.toml")]
    elif case == "bad-toml":
        (tmp_path / "c.toml").write_text("steps = = 3\n")
        argv = [*base, "--config", str(tmp_path / "c.toml")]
    elif case == "resume-empty":
        argv = ["--resume", str(empty)]
    elif case == "resume-no-ckpt":
        (empty / "config.toml").write_text(dump_toml(_config(photo_dir)))
        argv = ["--resume", str(empty)]
    elif case == "init-png":
        argv = [*base, "--init", str(next(photo_dir.glob("*.png")))]
    else:
        argv = [*base, "--masks", "folder:1"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error:" in err[0], err


def test_help_documents_every_setting_and_its_default(capsys):
    """The options are generated from TrainConfig's fields: each one is in --help with its
    help text and its default, written once in the field."""
    from dataclasses import MISSING, fields

    from train.cli import build_parser

    text = " ".join(build_parser().format_help().split())  # unwrapped
    for f in fields(TrainConfig):
        option = "--" + f.name.replace("_", "-")
        assert option in text, option
        assert " ".join(f.metadata["help"].split()) in text, option
        default = f.default if f.default is not MISSING else f.default_factory()
        if f.metadata["unset"] and default in (None, "", []):
            assert f"default: {f.metadata['unset']}" in text, option
        elif isinstance(default, bool):
            assert f"default: {'on' if default else 'off'}" in text, option
        elif default not in (None, "", []):  # required or optional: no default to show
            shown = f"{default:g}" if isinstance(default, float) else str(default)
            assert f"default: {shown}" in text, option
    assert "--amp" not in text
    assert "--precision {auto,fp32,bf16,fp16}" in text and "--border {any,clear,touch}" in text


def test_precision_and_border_have_one_spelling(tmp_path, photo_dir):
    """``precision`` and ``border`` are read in their own words only: no ``amp`` key or
    ``--amp`` flag, no ``yes``/``no`` border."""
    from train.cli import build_parser

    path = tmp_path / "amp.toml"
    path.write_text('data = ["a"]\namp = "none"\n')
    with pytest.raises(ConfigError, match="unknown setting 'amp'"):
        load_toml(path)
    argv = ["--data", str(photo_dir), "--output", str(tmp_path / "r"), "--amp", "none"]
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)
    for word in ("yes", "no"):
        with pytest.raises(ConfigError, match=r"^border must be one of any, clear, touch"):
            resolve({"data": ["a"], "border": word})


def test_state_registry_checkpoints_any_named_holder(tmp_path):
    """A checkpoint holds whatever the trainer registers: a second module and optimiser (a
    discriminator, later) round-trip with the first, and the first keeps the file layout
    that old run folders have (model/, optim/, optim_groups, scaler)."""
    torch.manual_seed(0)
    holders = {
        "model": torch.nn.Linear(3, 2),
        "optimizer": None,
        "scaler": torch.amp.GradScaler("cpu", enabled=False),
        "discriminator": torch.nn.Linear(2, 1),
        "d_optimizer": None,
    }
    holders["optimizer"] = torch.optim.Adam(holders["model"].parameters())
    holders["d_optimizer"] = torch.optim.SGD(holders["discriminator"].parameters(), lr=0.1)
    for name in ("model", "discriminator"):
        holders[name](torch.ones(1, holders[name].in_features)).sum().backward()
    holders["optimizer"].step()
    holders["d_optimizer"].step()
    path = state.save_state(tmp_path / "s.safetensors", step=1, phase=1, holders=holders, extra={})
    loaded = state.load_state(path)
    assert {"model/weight", "discriminator/weight", "optim/0/exp_avg"} <= set(loaded.tensors)
    assert {"optim_groups", "d_optimizer_groups", "scaler"} <= set(loaded.meta)
    fresh = {
        "model": torch.nn.Linear(3, 2),
        "scaler": torch.amp.GradScaler("cpu", enabled=False),
        "discriminator": torch.nn.Linear(2, 1),
    }
    fresh["optimizer"] = torch.optim.Adam(fresh["model"].parameters())
    fresh["d_optimizer"] = torch.optim.SGD(fresh["discriminator"].parameters(), lr=0.5)
    loaded.restore(fresh)
    for name in ("model", "discriminator"):
        a, b = holders[name].state_dict(), fresh[name].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert fresh["d_optimizer"].param_groups[0]["lr"] == 0.1
    assert torch.equal(
        fresh["optimizer"].state_dict()["state"][0]["exp_avg"],
        holders["optimizer"].state_dict()["state"][0]["exp_avg"],
    )
    with pytest.raises(CheckpointError, match="no state for 'ema'"):
        loaded.restore({"ema": torch.nn.Linear(3, 2)})


def test_help_reads_like_documentation(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for needle in ("--resume", "compact-256", "paper-512", "torchrun", "checkpoints/", "TOML"):
        assert needle in text


@pytest.mark.slow
def test_tensorboard_logs_when_installed(photo_dir, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = _config(photo_dir, steps=2, tensorboard="on", val_holdout=1, val_every=2)
    Trainer(config, tmp_path).run()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/total")] == [1, 2]
    assert "val/samples" in events.Tags()["images"]


@pytest.mark.slow
def test_checkpoint_file_holds_no_pickle(uninterrupted):
    path = state.list_checkpoints(uninterrupted)[-1][1]
    with safe_open(str(path), framework="pt") as fh:
        meta = json.loads(fh.metadata()["state"])
        names = list(fh.keys())
    assert meta["step"] == 6 and meta["phase"] == 2
    assert any(n.startswith("optim/") for n in names) and "rng/torch" in names


def test_the_engine_imports_neither_zoo_nor_the_command():
    """Imports flow one way, pconv <- zoo <- train: no module of pconv.training imports zoo or
    train, at the top or inside a function."""
    import ast

    for path in (REPO / "pconv" / "training").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in ("zoo", "train"), (path.name, name)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_no_decodable_image_is_one_line_and_leaves_no_run_folder(photo_dir, tmp_path, workers):
    """A folder whose only image opens but does not decode (a cut JPEG) used to hang for ever
    with DataLoader workers, and to leave a run folder behind with none."""
    broken = tmp_path / "onebad"
    broken.mkdir()
    good = next(photo_dir.glob("*.png")).read_bytes()
    (broken / "broken.png").write_bytes(good[: len(good) // 3])
    run_dir = tmp_path / "run"
    args = [sys.executable, "-m", "train", "--data", str(broken), "--output", str(run_dir)]
    args += [*TINY_ARGS, "--steps", "3", "--workers", str(workers)]
    done = subprocess.run(args, env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    err = done.stderr.strip().splitlines()
    assert len(err) == 1 and "decodes" in err[0] and "Traceback" not in done.stderr, err
    assert not run_dir.exists()


def test_threads_sets_torch_threads_once_and_bad_values_are_one_line(photo_dir, tmp_path, capsys):
    # One thread setting per training process (the workers take one each): --threads N sizes
    # torch's pool before the run; a bad value is one line naming the option, exit 2.
    before = torch.get_num_threads()
    run = tmp_path / "run"
    argv = ["--data", str(photo_dir), "--output", str(run), "--preset", "compact-128"]
    argv += ["--steps", "1", "--batch-size", "1", "--workers", "0", "--val-holdout", "0"]
    try:
        torch.set_num_threads(2)
        assert main([*argv, "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1
        assert 'threads = "1"' in (run / "config.toml").read_text()
    finally:
        torch.set_num_threads(before)
    capsys.readouterr()
    assert main([*argv[:3], str(tmp_path / "other"), *argv[4:], "--threads", "lots"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--threads" in err[0] and "'lots'" in err[0]
