"""``deepgin-aim2020``: the authors' DeepGIN release (rlct1/gin), converted exactly, fetched from
Google Drive through its confirmation step, and reachable from every front end.

The checkpoints are written here in the release's exact layout (``zoo_fixtures.gin_checkpoint``:
key names and order, shapes, PyTorch 1.5's legacy pickle) with random weights, and the reference
forward (``zoo_fixtures.gin_reference``) is ``ImageTinker2.forward`` on that raw dict.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
from PIL import Image
from zoo_fixtures import gin_checkpoint, gin_reference

import pconv
import zoo
from pconv.archs.deepgin import DeepGIN, DeepGINConfig
from pconv.errors import CheckpointError
from pconv.files import sha256_file
from pconv.samples import example_photos
from zoo import registry, upstream
from zoo.card import validate_folder
from zoo.cli import main as zoo_main
from zoo.convert import convert_file, read_upstream
from zoo.convert.deepgin import to_deepgin

pytestmark = pytest.mark.usefixtures("one_thread")

NAME = "deepgin-aim2020"
DRIVE_ID = registry.REGISTRY[NAME].upstream.drive_id
REL = 2e-5  # float32 model vs float64 reference (outputs are of order 1)


def _save(sd: dict[str, torch.Tensor], path: Path) -> Path:
    """As ``save_network`` wrote it under PyTorch 1.5: the legacy (non-zip) pickle."""
    torch.save(sd, path, _use_new_zipfile_serialization=False)
    return path


def _release(sd: dict[str, torch.Tensor], image: torch.Tensor, valid: torch.Tensor) -> dict:
    """The release on a photo as test_ensemble.py feeds it: holes painted white, mask 1 = hole."""
    hole = 1 - valid
    return gin_reference(sd, image * valid + hole, hole)


def _ours(model: DeepGIN, image: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.forward_train(image.float(), valid.float())["output"].double()


def _close(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    diff = float((ours - theirs).abs().max())
    assert diff <= REL, f"max abs diff {diff:.3g}"
    return diff


@pytest.fixture
def small_release(tmp_path) -> tuple[dict[str, torch.Tensor], Path]:
    """The release's layout at a quarter of its width and two coarse blocks (tests stay quick;
    its shapes follow ngf as ImageTinker2's do)."""
    sd = gin_checkpoint(ngf=16, blocks=2, seed=1)
    return sd, _save(sd, tmp_path / "latest_net_G.pth")


def _test_entry(monkeypatch, resolution: int = 64) -> registry.ModelEntry:
    entry = replace(registry.REGISTRY[NAME], resolution=resolution)
    monkeypatch.setitem(registry.REGISTRY, NAME, entry)
    return entry


# -- the conversion ------------------------------------------------------------------------------


def test_conversion_reproduces_the_release_on_real_photos(small_release, real_inputs):
    sd, path = small_release
    conversion = convert_file(path, resolution=64, photos=example_photos()[:1])
    assert conversion.layout == "deepgin" and conversion.exact
    assert conversion.max_abs_diff < 1e-4 and conversion.measured["max_abs_diff"] < 1e-4
    model = conversion.model
    assert isinstance(model, DeepGIN)
    assert model.config == DeepGINConfig.aim2020(base_width=16, coarse_blocks=2, resolution=64)

    image, valid = real_inputs(64)  # real photos, NVIDIA irregular masks
    theirs = _release(sd, image, valid)
    _close(_ours(model, image, valid), theirs["reconst_img"])
    with torch.no_grad():  # what ships: clamped, as the release clips when it saves
        out = model(image.float(), valid.float()).double()
        rest = model.forward_train(image.float(), valid.float())
    _close(out, theirs["reconst_img"].clamp(0, 1))
    _close(rest["coarse"].double(), theirs["lr_x"])  # G1, and Back Projection's I_lr
    _close(rest["low_res"].double(), theirs["lr_img"])
    hole = (valid < 0.5).expand_as(out)
    _close(torch.where(hole, out, image), theirs["compltd_img"].clamp(0, 1))


def test_a_wrong_reading_of_the_release_is_caught(small_release, real_inputs):
    """Each convention the conversion keeps matters: the same weights read as the network's
    defaults (grey holes in [-1, 1], half-pixel resampling) or with the rate-1 branch first
    are far off the release."""
    sd, path = small_release
    model = convert_file(path, resolution=64, photos=example_photos()[:1]).model
    image, valid = real_inputs(64)
    theirs = _release(sd, image, valid)["reconst_img"]
    for wrong in (
        {"encoding": "signed-grey"},
        {"resampling": "half-pixel"},
        {"coarse_rates": (1, 2, 3, 4, 5, 6, 8, 10)},
    ):
        other = DeepGIN(replace(model.config, **wrong))
        other.load_state_dict(model.state_dict())
        assert float((_ours(other, image, valid) - theirs).abs().max()) > 1e-2, wrong


def test_the_release_at_full_size_converts_exactly(tmp_path, real_inputs, capsys):
    """ngf=64 and six coarse blocks, as define_G builds it: every key of the release used,
    the paper's parameter count, and the release's output on real photos at 256 px."""
    sd = gin_checkpoint()
    path = _save(sd, tmp_path / "latest_net_G.pth")
    net = read_upstream(path)
    assert net.layout == "deepgin" and (net.base_width, net.coarse_blocks) == (64, 6)
    model = to_deepgin(net, 256)
    assert model.config == DeepGINConfig.aim2020()
    release = sum(t.numel() for t in sd.values())
    assert release == 42_930_186  # Table 1's 42.930 M
    assert sum(p.numel() for p in model.parameters()) == release + 3  # our three gammas (1)
    image, valid = real_inputs(256)
    diffs = []
    for b in range(2):  # one photo with a small hole, one with a large one (float64 reference)
        i, v = image[b : b + 1], valid[b * 3 : b * 3 + 1]
        diffs.append(_close(_ours(model, i, v), _release(sd, i, v)["reconst_img"]))
    with capsys.disabled():
        print(f"\ndeepgin-aim2020 full size, real photos at 256 px: max abs diff {max(diffs):.2e}")


def test_release_layouts_that_differ_are_refused(tmp_path):
    good = gin_checkpoint(ngf=8, blocks=1)
    cases = {
        "missing": ({k: v for k, v in good.items() if k != "r_md_satn1.phi.bias"}, "phi.bias"),
        "extra": ({**good, "r_md_mres7.branch1.conv.weight": torch.zeros(1)}, "r_md_mres7"),
        "shape": ({**good, "r_de_conv5.weight": torch.zeros(3, 5, 7, 7)}, "refine.to_rgb"),
        "index": (
            {k.replace("lr_coarse_tinker.26.", "lr_coarse_tinker.27."): v for k, v in good.items()},
            "convolutions at",
        ),
    }
    for name, (sd, match) in cases.items():
        path = _save(sd, tmp_path / f"{name}.pth")
        with pytest.raises(zoo.ZooError, match=match):
            convert_file(path, resolution=64, photos=example_photos()[:1])
    # a zip archive holding the checkpoint (and the discriminator) reads like the file itself
    import zipfile

    _save(good, tmp_path / "G.pth")
    with zipfile.ZipFile(tmp_path / "gin.zip", "w") as archive:
        archive.write(tmp_path / "G.pth", "checkpoints/gin/latest_net_G.pth")
        archive.writestr("checkpoints/gin/latest_net_D.pth", b"not read")
    assert read_upstream(tmp_path / "gin.zip").base_width == 8


# -- Google Drive ------------------------------------------------------------------------------


@pytest.fixture
def drive(hub, monkeypatch):
    """The loopback server as Google Drive (no mirror: the Drive download itself is tested)."""
    monkeypatch.delenv("PCONV_UPSTREAM_MIRROR")
    monkeypatch.setattr(upstream, "DRIVE_ENDPOINT", hub.url + "/drive/download")
    return hub


def test_load_model_builds_it_through_drives_confirmation(
    drive, hub_env, small_release, monkeypatch, real_inputs, caplog
):
    sd, path = small_release
    drive.drive[DRIVE_ID] = path.read_bytes()
    _test_entry(monkeypatch)
    model = pconv.load_model(NAME)  # the Hub has no copy yet: built from the Drive file
    assert isinstance(model, DeepGIN) and model.config.encoding == "unit-white"
    drive_requests = [r for r in drive.requests if "/drive/download" in r]
    assert len(drive_requests) == 2  # the page, then the confirmed download
    assert f"id={DRIVE_ID}" in drive_requests[0] and "confirm" not in drive_requests[0]
    assert "confirm=t" in drive_requests[1] and "uuid=" in drive_requests[1]
    digest = sha256_file(path)
    built = hub_env / "pconv" / "models" / NAME
    meta = pconv.read_metadata(built / "model.safetensors")
    assert meta["upstream_sha256"] == digest  # recorded in the converted weights
    assert digest in caplog.text  # and said: it is not pinned yet
    assert (hub_env / "pconv" / "upstream" / "latest_net_G.pth").read_bytes() == path.read_bytes()
    image, valid = real_inputs(64)
    _close(_ours(model, image, valid), _release(sd, image, valid)["reconst_img"])


@pytest.mark.parametrize(
    ("mode", "match"),
    [
        ("quota", "download quota is used up"),
        ("busy", "download quota is used up"),
        ("denied", "not shared publicly"),
        ("missing", "HTTP 404"),
        ("page", "a web page"),
    ],
)
def test_drive_refusals_are_one_line_and_leave_nothing(
    drive, hub_env, small_release, monkeypatch, mode, match
):
    if mode != "missing":
        drive.drive[DRIVE_ID] = small_release[1].read_bytes()
    drive.drive_mode = mode
    _test_entry(monkeypatch)
    with pytest.raises(CheckpointError, match=match) as caught:
        pconv.load_model(NAME)
    message = str(caught.value)
    assert "\n" not in message and "--upstream-file" in message
    assert (
        not any((hub_env / "pconv").rglob("*.pth")) and not (hub_env / "pconv" / "models").exists()
    )


# -- every front end -----------------------------------------------------------------------------


@pytest.fixture
def built(drive, hub_env, small_release, monkeypatch, capsys) -> Path:
    """``python -m zoo build deepgin-aim2020``, from Drive, into the model cache."""
    _, path = small_release
    drive.drive[DRIVE_ID] = path.read_bytes()
    _test_entry(monkeypatch)
    assert zoo_main(["build", NAME]) == 0
    out = capsys.readouterr().out
    assert f"sha256 {sha256_file(path)}" in out and "exact" in out  # the hash is printed
    folder = hub_env / "pconv" / "models" / NAME
    validate_folder(folder)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # from now on the cache is all there is
    return folder


def test_card_licence_and_publish_dry_run(built, tmp_path, capsys):
    card = ModelCard.load(built / "README.md")
    assert card.data.license == "bsd-2-clause" and card.data.datasets == ["ade20k"]
    licence = (built / "LICENSE").read_text()
    assert licence.startswith("BSD 2-Clause License\n\nCopyright (c) 2020, ronctl.")
    assert "Redistributions in binary form must reproduce" in licence
    text = card.text
    assert "ADE20K" in text and "non-commercial" in text and "AIM 2020" in text
    assert "Copyright (c) 2020, ronctl" in text and "@misc{li2020deepgin" in text
    config = json.loads((built / "config.json").read_text())
    assert config["architecture"] == "deepgin" and config["config"]["encoding"] == "unit-white"
    assert config["conversion"]["exact"] and config["conversion"]["layout"] == "deepgin"
    dry = tmp_path / "dry"
    args = ["publish", str(built), "--repo-id", "pconv/deepgin-aim2020-256", "--dry-run"]
    assert zoo_main([*args, "--output", str(dry)]) == 0
    assert "nothing uploaded" in capsys.readouterr().out
    assert sorted(p.name for p in dry.iterdir()) == [
        "LICENSE", "README.md", "config.json", "model.safetensors",
    ]  # fmt: skip
    validate_folder(dry)


def test_cli_inpaint_and_python_api_by_name(built, tmp_path, photos, capsys):
    from pconv.cli import main as pconv_main

    photo = photos["coffee"][:96, :128]
    hole = np.zeros(photo.shape[:2], np.uint8)
    hole[30:70, 40:100] = 255
    Image.fromarray(photo).save(tmp_path / "in.png")
    Image.fromarray(hole).save(tmp_path / "mask.png")
    out = tmp_path / "out.png"
    args = ["inpaint", str(tmp_path / "in.png"), "--mask", str(tmp_path / "mask.png")]
    assert pconv_main([*args, "--model", NAME, "-o", str(out), "--device", "cpu"]) == 0
    filled = np.asarray(Image.open(out).convert("RGB"))
    assert np.array_equal(filled[hole == 0], photo[hole == 0])
    expected = pconv.inpaint(photo, hole > 0, pconv.load_model(NAME), device="cpu")
    assert np.array_equal(filled, expected)


def test_menus_offer_it(built):
    from demo.models import model_choices

    choice = next(c for c in model_choices() if c.key == NAME)
    assert choice.ready and "cached" in choice.label
    assert NAME in zoo.registry.names()  # what the ComfyUI loader lists (nodes.model.zoo_names)


def test_train_fine_tunes_from_it(built, photo_dir, tmp_path):
    from train.cli import main as train_main

    run = tmp_path / "run"
    args = [
        "--data", str(photo_dir), "--output", str(run), "--arch", "deepgin", "--init", NAME,
        "--size", "64", "--batch-size", "1", "--steps", "1", "--perceptual", "none",
        "--workers", "0", "--tensorboard", "off", "--val-holdout", "1",
    ]  # fmt: skip
    assert train_main(args) == 0
    final = pconv.load_model(run / "final")
    assert isinstance(final, DeepGIN)
    assert final.config == DeepGINConfig.aim2020(base_width=16, coarse_blocks=2, resolution=64)
    start = pconv.load_model(NAME).state_dict()
    moved = [k for k, v in final.state_dict().items() if not torch.equal(v, start[k])]
    assert moved  # it trained from the release's weights, in the release's conventions
    meta = pconv.read_metadata(run / "final" / "model.safetensors")
    assert NAME in meta.get("command", "")


def test_upstream_folder_can_be_rebuilt_from_a_local_file(
    hub_env, small_release, tmp_path, monkeypatch
):
    """``--upstream-file``: for when Drive refuses; the same folder as the download builds."""
    _, path = small_release
    _test_entry(monkeypatch)
    out = tmp_path / "out"
    assert zoo_main(["build", NAME, "--upstream-file", str(path), "--output", str(out)]) == 0
    assert pconv.read_metadata(out / "model.safetensors")["upstream_sha256"] == sha256_file(path)
    shutil.rmtree(out)
