"""The model zoo, offline: converters against upstream references, and loading through the real
``huggingface_hub`` client from a local Hub endpoint and from a pre-populated cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import save_file
from zoo_fixtures import (
    COMMIT,
    IMAGENET_MEAN,
    IMAGENET_STD,
    images_and_masks,
    keras_model,
    keras_reference,
    mmagic_checkpoint,
    mmagic_reference,
    naoto_checkpoint,
    naoto_reference,
    write_keras_h5,
)

import pconv
import zoo
from pconv import PConvUNet, UNetConfig, save_model
from pconv.errors import CheckpointError
from pconv.files import sha256_file
from zoo import registry
from zoo.card import validate_folder
from zoo.cli import main as zoo_main
from zoo.convert import convert_file, keras, mmagic, naoto, read_upstream
from zoo.convert.common import config_for, find_state_dict, to_pconv

REL = 5e-6  # float32 model vs float64 reference, relative to the output's magnitude


def _assert_close(ours: torch.Tensor, theirs: torch.Tensor, rel: float = REL) -> None:
    """Within float32 rounding: random test weights give outputs far beyond [0, 1], so the
    tolerance scales with them (a wrong scale, order or offset is off by O(1) relatively)."""
    scale = max(1.0, float(theirs.abs().max()))
    diff = float((ours.double() - theirs).abs().max())
    assert diff <= rel * scale, f"max abs diff {diff:.3g} at output scale {scale:.3g}"


def _tiny(seed: int = 0, depth: int = 4) -> PConvUNet:
    torch.manual_seed(seed)
    model = PConvUNet(UNetConfig(depth=depth, base_width=8, resolution=64)).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_(0, 0.1)
    return model


def _bytes(model: PConvUNet, tmp_path: Path, name: str = "m.safetensors", **meta: str) -> bytes:
    return save_model(model, tmp_path / name, {"licence": "test", **meta}).read_bytes()


def _cached_weights(root: Path) -> list[Path]:
    """Every weights file (or blob, or partial download) left in a cache folder."""
    return [
        p
        for p in root.rglob("*")
        if p.is_file()
        and (p.name.endswith((".safetensors", ".incomplete", ".pth")) or p.parent.name == "blobs")
    ]


def _run(model: PConvUNet, size: int = 32) -> torch.Tensor:
    image, valid = images_and_masks(size)
    with torch.no_grad():
        return model(image.float(), valid.float())


# -- converters ----------------------------------------------------------------------------------


def _mmagic_rgb(ckpt: dict, image: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """mmagic's result for an RGB [0,1] image, back in RGB [0,1]: their pipeline gets the photo
    as OpenCV reads it (BGR, 0..255) and its output is BGR too."""
    bgr = mmagic_reference(ckpt, (image * 255).flip(1), 1 - valid)
    return bgr.flip(1) / 255


def test_mmagic_conversion_takes_rgb_like_every_model(tmp_path, real_inputs):
    ckpt = mmagic_checkpoint(depth=4)
    path = tmp_path / "pconv_mmagic.pth"
    torch.save(ckpt, path)
    conversion = convert_file(path, resolution=64)
    assert conversion.layout == "mmagic" and conversion.exact
    assert conversion.max_abs_diff < 1e-4
    assert any(k.startswith("loss_composed_percep") for k in conversion.ignored)
    model = conversion.model
    assert model.config.input_mean == (0.5, 0.5, 0.5) and model.config.depth == 4

    image, valid = real_inputs(64)  # real photos, NVIDIA irregular masks
    theirs = _mmagic_rgb(ckpt, image, valid)
    with torch.no_grad():
        ours = model(image.float(), valid.float()).double()
    _assert_close(ours, theirs)
    # and the composited result, as their inpaintor builds it (fake_img)
    _assert_close(ours * (1 - valid) + image * valid, theirs * (1 - valid) + image * valid)
    # The channel order is what this checks: the same network fed RGB as if it were BGR (the
    # old converter's reading) is far off, in the holes as everywhere.
    rgb_reading = mmagic_reference(ckpt, image * 255, 1 - valid) / 255
    hole = (valid < 0.5).expand_as(ours)
    assert float((ours - rgb_reading).abs()[hole].mean()) > 100 * REL * float(theirs.abs().max())


def test_mmagic_colours_survive_the_conversion(tmp_path):
    """An mmagic network that paints everything pure blue in its own (BGR) pipeline must paint
    blue for us too: all weights zero, dec1's bias (1, -1, -1) in [-1, 1] space, i.e. BGR
    (255, 0, 0). Read as RGB, as the old converter did, it came out red."""
    ckpt = mmagic_checkpoint(depth=4, zeros=True)
    sd = ckpt["state_dict"]
    for key in [k for k in sd if k.endswith(("bn.weight", "bn.running_var"))]:
        sd[key] = torch.ones_like(sd[key])
    sd["generator.decoder.dec1.conv.bias"] = torch.tensor([1.0, -1.0, -1.0])
    torch.save(ckpt, tmp_path / "blue.pth")
    model = convert_file(tmp_path / "blue.pth", resolution=64).model
    image, valid = images_and_masks(64)
    with torch.no_grad():
        out = model(image.float(), valid.float())
    blue = torch.tensor([0.0, 0.0, 1.0]).view(1, 3, 1, 1).expand_as(out)
    assert torch.allclose(out, blue, atol=1e-6), out[0, :, 0, 0]
    assert torch.allclose(_mmagic_rgb(ckpt, image, valid).float(), blue, atol=1e-6)


def test_naoto_conversion_rescales_by_window_size(tmp_path, real_inputs):
    ckpt = naoto_checkpoint(depth=4)
    path = tmp_path / "1000000.pth"
    torch.save(ckpt, path)
    conversion = convert_file(path, resolution=64)
    assert conversion.layout == "naoto" and conversion.exact
    model = conversion.model
    assert model.config.input_mean == pytest.approx((0.485, 0.456, 0.406))
    # enc1 has no bias upstream: ours is zero; the kernels are 1/(C_in*k*k) of theirs
    assert torch.count_nonzero(model.encoders[0].conv.bias) == 0
    up = ckpt["model"]["enc_1.conv.input_conv.weight"]
    assert torch.allclose(model.encoders[0].conv.weight, up / (3 * 7 * 7))

    image, valid = real_inputs(64)
    theirs = naoto_reference(ckpt, image, valid)
    with torch.no_grad():
        ours = model(image.float(), valid.float()).double()
    _assert_close(ours, theirs)


def test_keras_conversion_is_exact_with_its_sigmoid_head(tmp_path, real_inputs):
    pytest.importorskip("h5py")
    kmodel = keras_model(depth=4, base=8)
    path = write_keras_h5(kmodel, tmp_path / "pconv_imagenet.26-1.07.h5")
    conversion = convert_file(path, resolution=64)
    assert conversion.layout == "keras" and conversion.exact
    model = conversion.model
    assert model.config.input_mean == (0.0, 0.0, 0.0) and model.config.input_std == (1, 1, 1)
    assert model.config.head == "sigmoid"

    image, valid = real_inputs(64)
    _, theirs = keras_reference(kmodel, image, valid)
    with torch.no_grad():
        ours = model(image.float(), valid.float()).double()
    _assert_close(ours, theirs)
    meta = conversion.record()
    assert meta["exact"] is True and meta["measured"]["max_abs_diff"] < 1e-4


def test_conversion_is_measured_on_real_photos(tmp_path):
    """Every conversion carries its error against the upstream reference on the sample photos
    shipped with pconv, into the file's metadata (and so the card)."""
    torch.save(naoto_checkpoint(depth=4), tmp_path / "n.pth")
    conversion = convert_file(tmp_path / "n.pth", resolution=64)
    measured = conversion.measured
    assert measured["photos"] == [p.name for p in pconv.samples.example_photos()]
    assert len(measured["photos"]) >= 3 and measured["size"] == 64
    assert 0 <= measured["max_abs_diff"] < 1e-4 * 1e3  # random weights: outputs of ~1e3
    assert 0 < measured["hole_mean_abs_diff"] <= measured["max_abs_diff"]
    folder = zoo.card.write_folder(conversion.model, tmp_path / "out", conversion=conversion)
    config = json.loads((folder / "config.json").read_text())
    assert config["conversion"]["measured"] == json.loads(json.dumps(measured))


def test_full_size_layouts_map_onto_the_paper_architecture():
    """Published sizes (mmagic/naoto 7 levels at 256, Keras 8 at 512), converted without a run."""
    mm = mmagic_checkpoint(depth=7, zeros=True)
    net = mmagic.parse(find_state_dict(mm, mmagic.NESTINGS))
    model = to_pconv(net, 256)
    assert model.config == UNetConfig.paper256(input_mean=(0.5,) * 3, input_std=(0.5,) * 3)
    # every upstream key is used, except the mask updaters and the loss network
    assert set(net.ignored) == {
        k for k in mm["state_dict"] if k.endswith("weight_mask_updater") or k.startswith("loss_")
    }
    assert len(net.ignored) == 7 + 7 + 2
    # the others: every layer's kernel and BatchNorm checked against the paper's shapes
    nt = naoto_checkpoint(depth=7, zeros=True)
    config = config_for(naoto.parse(find_state_dict(nt, naoto.NESTINGS)), 256)
    assert config == UNetConfig.paper256(input_mean=IMAGENET_MEAN, input_std=IMAGENET_STD)
    km = keras_model(depth=8, zeros=True)
    layers = [(name, km.weights(name) if ws else {}) for name, ws in km.layers]
    config = config_for(keras.parse(layers), 512)
    assert config == UNetConfig.paper512(
        input_mean=(0.0,) * 3, input_std=(1.0,) * 3, head="sigmoid"
    )


def test_keras_h5_layouts_read_alike(tmp_path):
    """``save_weights`` puts layers at the root, ``Model.save`` under ``model_weights/``."""
    h5py = pytest.importorskip("h5py")
    kmodel = keras_model(depth=4, base=8)
    path = write_keras_h5(kmodel, tmp_path / "weights.h5")
    nested = tmp_path / "full.h5"
    with h5py.File(path, "r") as src, h5py.File(nested, "w") as dst:
        group = dst.create_group("model_weights")
        for name in src:
            src.copy(src[name], group, name)
        for k, v in src.attrs.items():
            group.attrs[k] = v
        dst.attrs["model_config"] = b"{}"
    flat, deep = keras.read_h5(path), keras.read_h5(nested)
    assert [n for n, _ in flat] == [n for n, _ in deep] == [n for n, _ in kmodel.layers]
    assert flat[2][0] == "p_conv2d_17" and set(flat[2][1]) == {"img_kernel", "bias"}
    assert all(
        np.array_equal(flat[i][1][k], deep[i][1][k]) for i in range(len(flat)) for k in flat[i][1]
    )
    (tmp_path / "plain.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(zoo.ZooError):
        keras.read_h5(tmp_path / "plain.h5")


def test_converter_refuses_what_it_cannot_read(tmp_path):
    class Evil:  # a pickle that would run code on load
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"state_dict": {"x": torch.zeros(1)}, "evil": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(zoo.ZooError, match="weights_only"):
        read_upstream(tmp_path / "evil.pth")
    torch.save({"state_dict": {"conv.weight": torch.zeros(1)}}, tmp_path / "other.pth")
    with pytest.raises(zoo.ZooError, match="not a known PConv layout"):
        read_upstream(tmp_path / "other.pth")
    model_file = save_model(_tiny(), tmp_path / "ours.safetensors")
    with pytest.raises(zoo.ZooError, match="needs no conversion"):
        read_upstream(model_file)
    ckpt = mmagic_checkpoint(depth=4)
    del ckpt["state_dict"]["generator.decoder.dec2.bn.running_var"]
    torch.save(ckpt, tmp_path / "broken.pth")
    with pytest.raises(zoo.ZooError, match="dec2"):
        read_upstream(tmp_path / "broken.pth")


# -- loading through huggingface_hub -------------------------------------------------------------


def test_load_model_by_name_from_the_hub_then_offline(hub, hub_env, tmp_path, monkeypatch):
    original = _tiny(seed=1)
    data = _bytes(original, tmp_path)
    hub.repos["pconv/pconv-places2-256"] = {"model.safetensors": data}
    monkeypatch.setitem(
        registry.REGISTRY,
        "places2",
        replace(registry.REGISTRY["places2"], sha256=sha256_file(tmp_path / "m.safetensors")),
    )

    model = pconv.load_model("places2")
    assert torch.equal(_run(model), _run(original))
    repo_dir = hub_env / "hf" / "models--pconv--pconv-places2-256"
    assert (repo_dir / "refs" / "main").read_text() == COMMIT
    assert (repo_dir / "snapshots" / COMMIT / "model.safetensors").is_file()
    assert any(r.startswith("HEAD /pconv/pconv-places2-256/resolve/main/") for r in hub.requests)

    # offline: the real client reads its own cache, no request is made
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = len(hub.requests)
    assert torch.equal(_run(pconv.load_model("places2")), _run(original))
    assert len(hub.requests) == before
    assert zoo_main(["list"]) == 0


def test_offline_prepopulated_cache_and_repo_ids(hub_env, tmp_path, monkeypatch):
    """The Hub cache layout written by hand: models--org--name/{refs/main,snapshots/<rev>/}."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: must not be used
    for repo, seed in (("pconv/pconv-celeba-hq-256", 2), ("someone/my-pconv", 3)):
        folder = hub_env / "hf" / f"models--{repo.replace('/', '--')}"
        save_model(_tiny(seed), folder / "snapshots" / COMMIT / "model.safetensors")
        (folder / "refs").mkdir(parents=True)
        (folder / "refs" / "main").write_text(COMMIT)
    assert torch.equal(_run(pconv.load_model("celeba-hq")), _run(_tiny(2)))
    assert torch.equal(_run(pconv.load_model("someone/my-pconv")), _run(_tiny(3)))
    assert torch.equal(_run(pconv.load_model(f"someone/my-pconv@{COMMIT}")), _run(_tiny(3)))
    with pytest.raises(CheckpointError, match="offline mode"):
        pconv.load_model("places2")  # neither cached nor buildable offline
    with pytest.raises(CheckpointError, match="cannot get it from the Hub"):
        pconv.load_model("someone/absent")


def _corrupt(data: bytes) -> bytes:
    flipped = bytearray(data)
    flipped[-10] ^= 0xFF  # inside the last tensor: the header still parses
    return bytes(flipped)


@pytest.mark.parametrize("problem", ["sha256", "truncated", "architecture", "pickle"])
def test_bad_hub_files_are_clear_errors_and_never_cached(
    hub, hub_env, tmp_path, monkeypatch, problem
):
    good = _bytes(_tiny(), tmp_path)
    pinned = sha256_file(tmp_path / "m.safetensors")
    if problem == "sha256":
        served, match = _corrupt(good), "sha256 mismatch"
    elif problem == "truncated":
        served, match = good[: len(good) * 2 // 3], "sha256 mismatch"
    elif problem == "architecture":  # depth-4 tensors under a depth-5 config
        model = _tiny()
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        meta = dict(pconv.read_metadata(tmp_path / "m.safetensors"))
        meta["config"] = replace(model.config, depth=5).to_json()
        save_file(state, tmp_path / "wrong.safetensors", metadata=meta)
        served, match = (tmp_path / "wrong.safetensors").read_bytes(), "do not fit"
        pinned = sha256_file(tmp_path / "wrong.safetensors")
    else:
        torch.save(_tiny().state_dict(), tmp_path / "pickle.pth")
        served, match = (tmp_path / "pickle.pth").read_bytes(), "pickle"
        pinned = None
    hub.repos["pconv/pconv-places2-256"] = {"model.safetensors": served}
    monkeypatch.setitem(
        registry.REGISTRY, "places2", replace(registry.REGISTRY["places2"], sha256=pinned)
    )
    with pytest.raises(CheckpointError, match=match):
        pconv.load_model("places2")
    assert _cached_weights(hub_env / "hf") == []
    assert _cached_weights(hub_env / "pconv") == []  # and no fallback build was attempted

    # the same file behind a plain repo id (nothing pinned): still refused when unreadable
    hub.repos["someone/bad"] = {"model.safetensors": served}
    if problem != "sha256":
        with pytest.raises(CheckpointError):
            pconv.load_model("someone/bad")
        assert _cached_weights(hub_env / "hf") == []


def test_unpublished_entry_is_built_from_upstream_and_cached(hub, hub_env, tmp_path, monkeypatch):
    ckpt = mmagic_checkpoint(depth=4, seed=7)
    torch.save(ckpt, tmp_path / "up.pth")
    data = (tmp_path / "up.pth").read_bytes()
    entry = registry.REGISTRY["places2"]
    hub.upstream[entry.upstream.filename] = data
    # The pinned prefix belongs to the real OpenMMLab file; pin this test file's the same way.
    test_entry = replace(
        entry,
        resolution=64,
        upstream=replace(entry.upstream, sha256_prefix=sha256_file(tmp_path / "up.pth")[:8]),
    )
    monkeypatch.setitem(registry.REGISTRY, "places2", test_entry)

    model = pconv.load_model("places2")  # the Hub answers RepoNotFound -> build from upstream
    image, valid = images_and_masks(64)
    theirs = _mmagic_rgb(ckpt, image, valid)
    with torch.no_grad():
        _assert_close(model(image.float(), valid.float()), theirs)
    assert f"GET /upstream/{entry.upstream.filename}" in hub.requests
    built = hub_env / "pconv" / "models" / "places2"
    config = validate_folder(built)
    assert config["conversion"]["exact"] and config["licence"] == "Apache-2.0"
    meta = pconv.read_metadata(built / "model.safetensors")
    assert meta["upstream_sha256"] == sha256_file(tmp_path / "up.pth")
    assert json.loads(meta["evaluation"])[0]["metrics"]["PSNR"] == 22.762

    # later, offline: the local build is used as is, nothing is downloaded again
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    n = len(hub.requests)
    assert torch.equal(_run(pconv.load_model("places2")), _run(model))
    assert len(hub.requests) == n


def test_upstream_with_wrong_checksum_is_refused_and_not_kept(hub, hub_env, tmp_path, monkeypatch):
    torch.save(mmagic_checkpoint(depth=4), tmp_path / "up.pth")
    entry = registry.REGISTRY["celeba-hq"]
    hub.upstream[entry.upstream.filename] = (tmp_path / "up.pth").read_bytes()
    monkeypatch.setitem(registry.REGISTRY, "celeba-hq", replace(entry, resolution=64))
    with pytest.raises(CheckpointError, match="does not start with the pinned 860f8b95"):
        pconv.load_model("celeba-hq")
    assert _cached_weights(hub_env / "pconv") == []
    assert _cached_weights(hub_env / "hf") == []


def test_packaged_default_loads_offline_and_is_verified(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    entry = registry.REGISTRY["default"]
    model = pconv.load_model("default")
    assert model.config.resolution == entry.resolution
    assert entry.sha256 is not None  # shipped weights are pinned
    # the budget and record: at most 25 MB, made by this project's trainer, and the
    # card names the very file that ships
    weights = Path(zoo.__file__).parent / "weights" / entry.packaged
    assert weights.stat().st_size <= 25_000_000
    meta = pconv.read_metadata(weights)
    assert meta["command"].startswith("python -m train ") and "--loss-weights" in meta["command"]
    card = (weights.parent / "default.md").read_text()
    assert sha256_file(weights) == entry.sha256 and entry.sha256 in card
    # a pinned hash that does not match is refused
    monkeypatch.setitem(registry.REGISTRY, "default", replace(entry, sha256="0" * 64))
    with pytest.raises(CheckpointError, match="sha256"):
        pconv.load_model("default")
    # a damaged installation without the file says so clearly
    monkeypatch.setitem(registry.REGISTRY, "default", replace(entry, packaged="absent.safetensors"))
    with pytest.raises(CheckpointError, match="missing from this installation"):
        pconv.load_model("default")


def test_unknown_names_and_missing_files(hub_env):
    with pytest.raises(CheckpointError, match="not a file, a folder, a zoo name"):
        zoo.resolve("no-such-model")
    with pytest.raises(CheckpointError, match="no such file"):
        zoo.resolve("missing/weights.safetensors")


# -- command line --------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_build_convert_and_publish_dry_run(hub, hub_env, tmp_path, capsys):
    ckpt = naoto_checkpoint(depth=4, seed=3)
    torch.save(ckpt, tmp_path / "1000000.pth")
    hub.upstream["1000000.pth"] = (tmp_path / "1000000.pth").read_bytes()
    # places2-naoto pins no sha256 (unknown offline): layout and numbers are still checked
    built = tmp_path / "built"
    assert zoo_main(["build", "places2-naoto", "--output", str(built)]) == 0
    assert "exact" in capsys.readouterr().out
    assert pconv.read_metadata(built / "model.safetensors")["upstream_sha256"] == sha256_file(
        tmp_path / "1000000.pth"
    )

    out = tmp_path / "converted"
    assert (
        zoo_main(
            [
                "convert",
                str(tmp_path / "1000000.pth"),
                "--output",
                str(out),
                "--name",
                "places2-naoto",
                "--resolution",
                "64",
            ]
        )
        == 0
    )
    assert "exact" in capsys.readouterr().out
    validate_folder(out)
    assert torch.equal(_run(pconv.load_model(out)), _run(pconv.load_model(built)))

    dry = tmp_path / "dry"
    assert (
        zoo_main(
            [
                "publish",
                str(out),
                "--repo-id",
                "pconv/test-model",
                "--dry-run",
                "--output",
                str(dry),
            ]
        )
        == 0
    )
    assert "nothing uploaded" in capsys.readouterr().out
    assert sorted(p.name for p in dry.iterdir()) == [
        "LICENSE",
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    validate_folder(dry)
    card = ModelCard.load(dry / "README.md")
    assert card.data.license == "mit" and card.data.library_name == "pconv"
    assert card.data.datasets == ["places365"] and "image-inpainting" in card.data.tags
    for section in ("## Evaluation", "## Limitations", "## License", "Naoto Inoue"):
        assert section in card.text
    config = json.loads((dry / "config.json").read_text())
    assert UNetConfig.from_dict(config["config"]).input_std == pytest.approx((0.229, 0.224, 0.225))
    assert config["weights"]["sha256"] == sha256_file(dry / "model.safetensors")
    # the published folder loads, and is the converted model
    assert torch.equal(_run(pconv.load_model(dry)), _run(pconv.load_model(out)))
    # a tampered card or config is caught by the validation
    shutil.copytree(dry, tmp_path / "tampered")
    (tmp_path / "tampered" / "README.md").write_text("# no header\n")
    with pytest.raises(zoo.ZooError, match="YAML header lacks license"):
        validate_folder(tmp_path / "tampered")


def test_cli_download_and_errors(hub, hub_env, tmp_path, capsys):
    hub.repos["pconv/pconv-imagenet-512"] = {"model.safetensors": _bytes(_tiny(5), tmp_path)}
    assert zoo_main(["download", "imagenet"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.is_file() and COMMIT in str(path)
    assert zoo_main(["list"]) == 0
    listing = capsys.readouterr().out
    line = next(x for x in listing.splitlines() if x.startswith("imagenet"))
    assert " hub " in line and "MIT" in line
    assert "packaged" in next(x for x in listing.splitlines() if x.startswith("default"))
    assert zoo_main(["publish", str(tmp_path / "nothing"), "--repo-id", "a/b", "--dry-run"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_unusable_unpinned_download_is_not_kept(hub, hub_env):
    """Drive may answer with an HTML page: nothing pins its hash, the conversion refuses it."""
    entry = registry.REGISTRY["imagenet"]
    hub.upstream[entry.upstream.filename] = b"<!DOCTYPE html><html>Virus scan warning</html>"
    with pytest.raises(CheckpointError, match="--upstream-file"):
        pconv.load_model("imagenet")
    assert not any((hub_env / "pconv").rglob("*.h5"))
    assert _cached_weights(hub_env / "pconv") == []


@pytest.mark.slow
def test_python_m_zoo(hub_env):
    """The module entry point, in a fresh interpreter (list needs no network)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "zoo", "list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "places2" in done.stdout and "Apache-2.0" in done.stdout
