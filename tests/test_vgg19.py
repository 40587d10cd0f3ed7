"""The VGG-19 perceptual backbone (``--perceptual vgg19``): Li et al.'s conv1_1 .. conv5_1.

Its weights come from the Hub repo ``timm/vgg19.tv_in1k``; no test can download them, so a fake
cached copy is built in a temporary ``HF_HOME``: random weights under the real file's key names,
read through the real ``huggingface_hub`` client offline. The 13 convs the trunk reads have
their real shapes; the rest (conv5_2 .. conv5_4, the classifier) keep their names with tiny
tensors (the real file is 575 MB), which also shows they are never read.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from torch import nn

import pconv
from pconv.archs.unet.loss import InpaintingLoss
from pconv.losses.backbones import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    VGG19,
    BackboneUnavailableError,
    file_sha256,
    resolve_backbone,
)
from pconv.training.config import TrainConfig, check
from pconv.training.errors import ConfigError
from train.cli import main as train_main

REPO_ID = "timm/vgg19.tv_in1k"
REVISION = "6ee3e2c" + "0" * 33
#: VGG-19 as published (configuration E of Simonyan & Zisserman's Table 1), in torchvision's
#: and timm's ``features`` Sequential: a 3x3 conv and its ReLU per number, "M" a 2x2 max pool.
PUBLISHED = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M"]
PUBLISHED += [512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
#: Where Gatys et al.'s (and Li et al.'s) features sit in that Sequential: the ReLU outputs after
#: conv1_1, conv2_1, conv3_1, conv4_1, conv5_1.
FEATURE_INDICES = (1, 6, 11, 20, 29)


def published_vgg19() -> nn.Sequential:
    """torchvision's ``vgg19().features``, built here from the table (no torchvision)."""
    layers: list[nn.Module] = []
    channels = 3
    for item in PUBLISHED:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU()]
            channels = int(item)
    return nn.Sequential(*layers)


def fake_timm_vgg19() -> dict[str, torch.Tensor]:
    """Every key of timm's vgg19 state dict: convs read by the trunk at their real shapes
    (He-scaled random, so features neither vanish nor explode), the others tiny."""
    gen = torch.Generator().manual_seed(19)
    tensors: dict[str, torch.Tensor] = {}
    reference = published_vgg19()
    for index, layer in enumerate(reference):
        if not isinstance(layer, nn.Conv2d):
            continue
        key = f"features.{index}"
        if index <= 28:  # through conv5_1
            fan_in = layer.in_channels * 9
            weight = torch.randn(layer.weight.shape, generator=gen) * math.sqrt(2 / fan_in)
            tensors[f"{key}.weight"] = weight
            tensors[f"{key}.bias"] = torch.randn(layer.out_channels, generator=gen) * 0.01
        else:
            tensors[f"{key}.weight"] = torch.zeros(1)
            tensors[f"{key}.bias"] = torch.zeros(1)
    for key in ("pre_logits.fc1", "pre_logits.fc2", "head.fc"):
        tensors[f"{key}.weight"] = torch.zeros(1)
        tensors[f"{key}.bias"] = torch.zeros(1)
    return tensors


@pytest.fixture(scope="module")
def vgg19_tensors() -> dict[str, torch.Tensor]:
    return fake_timm_vgg19()


@pytest.fixture(scope="module")
def vgg19_file(tmp_path_factory, vgg19_tensors) -> Path:
    path = tmp_path_factory.mktemp("vgg19") / "model.safetensors"
    save_file(vgg19_tensors, str(path))
    return path


@pytest.fixture
def hf_home(tmp_path, monkeypatch) -> Path:
    """An empty HF_HOME, offline, that pconv.hub and huggingface_hub both use."""
    home = tmp_path / "hf-home"
    home.mkdir()
    monkeypatch.setenv("HF_HOME", str(home))
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_ENDPOINT", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


@pytest.fixture
def cached(hf_home, vgg19_file) -> Path:
    """The file where ``hf_hub_download`` keeps it: $HF_HOME/hub/models--timm--vgg19.tv_in1k."""
    repo = hf_home / "hub" / ("models--" + REPO_ID.replace("/", "--"))
    snapshot = repo / "snapshots" / REVISION
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)
    target = snapshot / "model.safetensors"
    target.hardlink_to(vgg19_file)
    return target


def test_layout_matches_the_published_table() -> None:
    reference = published_vgg19()
    convs = [i for i, layer in enumerate(reference) if isinstance(layer, nn.Conv2d)]
    assert VGG19.timm_indices == tuple(convs[:13])  # conv1_1 .. conv5_1
    assert VGG19.convs == tuple(
        (reference[i].in_channels, reference[i].out_channels) for i in convs[:13]
    )
    assert VGG19.feature_names == ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]
    # each feature is the ReLU right after its conv
    assert [convs[c] + 1 for _, c, _ in VGG19.taps] == list(FEATURE_INDICES)


def test_loads_from_the_hub_cache_offline_and_matches_the_published_network(
    cached, vgg19_tensors
) -> None:
    backbone = resolve_backbone("vgg19")
    info = backbone.info
    assert info.name == "vgg19" and not info.faithful  # not the paper's VGG16 pool1..3
    assert info.source == f"{REPO_ID}@main:{cached}"
    assert info.sha256 == file_sha256(cached)
    trunk = backbone.trunk
    assert trunk.feature_names == VGG19.feature_names

    reference = published_vgg19()[: FEATURE_INDICES[-1] + 1].eval()
    reference.load_state_dict(
        {k.removeprefix("features."): v for k, v in vgg19_tensors.items() if _read(k)}
    )
    image = torch.rand(2, 3, 37, 50, generator=torch.Generator().manual_seed(1))
    x = (image - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(
        1, 3, 1, 1
    )
    want = []
    with torch.no_grad():
        for index, layer in enumerate(reference):
            x = layer(x)
            if index in FEATURE_INDICES:
                want.append(x.clone())
        got = trunk(image)
    assert [g.shape for g in got] == [w.shape for w in want]
    assert [g.shape[1] for g in got] == [64, 128, 256, 512, 512]
    for g, w in zip(got, want, strict=True):
        assert w.abs().mean() > 1e-3  # the comparison is not between two zero maps
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)


def _read(key: str) -> bool:
    """The keys the trunk reads: features.0 .. features.28."""
    return key.startswith("features.") and int(key.split(".")[1]) <= 28


def test_file_spec_and_small_inputs(vgg19_file) -> None:
    backbone = resolve_backbone(f"vgg19-file:{vgg19_file}")
    assert backbone.info.name == "vgg19-file" and backbone.info.source == str(vgg19_file)
    with pytest.raises(ValueError, match="at least 16 px"):
        backbone.trunk(torch.rand(1, 3, 15, 64))


def test_absent_is_one_line_with_the_download_command(hf_home) -> None:
    with pytest.raises(BackboneUnavailableError) as caught:
        resolve_backbone("vgg19")
    text = caught.value.describe()
    assert "\n" not in text
    assert "not in the cache, offline" in text and str(hf_home / "hub") in text
    assert f"`hf download {REPO_ID} model.safetensors`" in text


def test_loss_with_vgg19(cached) -> None:
    loss = InpaintingLoss(backbone="vgg19")
    gen = torch.Generator().manual_seed(2)
    gt = torch.rand(2, 3, 32, 32, generator=gen)
    out = torch.rand(2, 3, 32, 32, generator=gen).requires_grad_(True)
    valid = torch.ones(2, 1, 32, 32)
    valid[:, :, 8:24, 8:24] = 0
    terms = loss(out, gt, valid)
    assert terms["perceptual"] > 0 and terms["style_out"] > 0
    terms["total"].backward()
    assert out.grad is not None and out.grad.abs().sum() > 0
    described = loss.describe()
    assert described["features"] == VGG19.feature_names
    assert described["backbone"]["name"] == "vgg19"
    assert all(not p.requires_grad for p in loss.trunk.parameters())


def test_deepgin_recipe_runs_its_terms_on_vgg19(cached) -> None:
    """``--arch deepgin --perceptual vgg19``: the recipe hands the cached VGG-19 trunk to
    DeepGINLoss as its feature extractor, and records it as the paper's network."""
    from pconv.archs.deepgin.loss import DeepGINLossWeights, deepgin_loss
    from pconv.training.config import resolve
    from pconv.training.recipes import get_recipe

    values = {"data": ["a"], "preset": "deepgin-compact", "size": 64, "perceptual": "vgg19"}
    config = resolve({}, values)
    loss = get_recipe("deepgin").loss(config)
    record = loss.describe()
    assert record["backbone"]["name"] == "vgg19" and record["backbone"]["faithful"]
    assert record["features"] == VGG19.feature_names and loss.loss.weights == DeepGINLossWeights()
    gen = torch.Generator().manual_seed(4)
    gt = torch.rand(2, 3, 64, 64, generator=gen)
    outputs = {
        "coarse": torch.rand(2, 3, 64, 64, generator=gen),
        "output": torch.rand(2, 3, 64, 64, generator=gen),
        "low_res": torch.rand(2, 3, 16, 16, generator=gen),
    }
    valid = torch.ones(2, 1, 64, 64)
    valid[:, :, 16:48, 16:48] = 0
    terms = loss(outputs, gt, valid)
    assert terms["perceptual"] > 0 and terms["style"] > 0
    trunk = resolve_backbone("vgg19", offline=True).trunk
    want = deepgin_loss(outputs, gt, valid, trunk, DeepGINLossWeights())
    assert torch.allclose(terms["total"], want["total"], rtol=1e-6)


def test_trainer_setting_accepts_vgg19(tmp_path) -> None:
    for spec in ("vgg19", f"vgg19-file:{tmp_path / 'x.safetensors'}"):
        check(TrainConfig(data=str(tmp_path), output=str(tmp_path / "r"), perceptual=spec))
    for spec in ("vgg19-file:", "vgg19-hub", "vgg-19"):
        with pytest.raises(ConfigError, match="vgg19-file:PATH"):
            check(TrainConfig(data=str(tmp_path), output=str(tmp_path / "r"), perceptual=spec))


@pytest.fixture
def photo_dir(tmp_path, photos) -> Path:
    root = tmp_path / "photos"
    root.mkdir()
    for name, pixels in sorted(photos.items())[:3]:
        Image.fromarray(pixels).save(root / f"{name}.png")
    return root


TINY_ARGS = [
    "--depth", "4", "--base-width", "8", "--size", "64", "--batch-size", "2",
    "--workers", "0", "--tensorboard", "off", "--log-every", "1",
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_train_with_vgg19(cached, photo_dir, tmp_path, capsys) -> None:
    """``python -m train --perceptual vgg19`` trains from the cache and records it."""
    run = tmp_path / "run"
    argv = ["--data", str(photo_dir), "--output", str(run), *TINY_ARGS, "--steps", "2"]
    assert train_main([*argv, "--perceptual", "vgg19"]) == 0
    loss = json.loads(pconv.read_metadata(run / "final" / "model.safetensors")["loss"])
    assert loss["backbone"]["name"] == "vgg19" and loss["features"] == VGG19.feature_names
    assert loss["weights"]["perceptual"] > 0 and loss["weights"]["style"] > 0


@pytest.mark.usefixtures("one_thread")
def test_train_without_the_file_is_one_line(hf_home, photo_dir, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    argv = ["--data", str(photo_dir), "--output", str(run), *TINY_ARGS, "--steps", "1"]
    assert train_main([*argv, "--perceptual", "vgg19"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"hf download {REPO_ID} model.safetensors" in err[0], err
    assert not run.exists()  # stopped before the run


def test_a_cached_vgg19_never_judges(cached) -> None:
    """pconv eval's rule: a network used in a training loss is never a judge."""
    from pconv.evaluation import perceptual

    assert ("vgg19", cached) in perceptual.loss_networks()
