"""pconv.hub: one set of Hub rules for the zoo and the perceptual loss, through the real
huggingface_hub client against the loopback Hub of zoo_fixtures.local_hub."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save
from zoo_fixtures import COMMIT

import pconv
from pconv import hub as pconv_hub
from pconv.archs.unet import PConvUNet, UNetConfig
from pconv.losses.backbones import (
    _HUB_NETWORK_FAILED,
    CONV_CHANNELS,
    HUB_FILENAME,
    HUB_REPO,
    TIMM_CONV_PREFIXES,
    BackboneUnavailableError,
    resolve_backbone,
)

REPO = "someone/my-pconv"


def _vgg_bytes() -> bytes:
    """The seven convs of a timm VGG16 file under their real names and shapes (random)."""
    gen = torch.Generator().manual_seed(0)
    tensors = {}
    for prefix, (c_in, c_out) in zip(TIMM_CONV_PREFIXES, CONV_CHANNELS, strict=True):
        tensors[f"{prefix}.weight"] = torch.randn(c_out, c_in, 3, 3, generator=gen) * 0.05
        tensors[f"{prefix}.bias"] = torch.zeros(c_out)
    return save(tensors)


def _model_bytes(tmp_path) -> bytes:
    torch.manual_seed(0)
    model = PConvUNet(UNetConfig(depth=4, base_width=8, resolution=64))
    return pconv.save_model(model, tmp_path / "m.safetensors", {"licence": "test"}).read_bytes()


@pytest.fixture(autouse=True)
def _fresh_failure_memory():
    _HUB_NETWORK_FAILED.clear()
    yield
    _HUB_NETWORK_FAILED.clear()


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("HF_HUB_OFFLINE", "1", True),
        ("HF_HUB_OFFLINE", "true", True),
        ("HF_HUB_OFFLINE", " Yes ", True),
        ("TRANSFORMERS_OFFLINE", "ON", True),
        ("HF_HUB_OFFLINE", "0", False),
        ("TRANSFORMERS_OFFLINE", "", False),
    ],
)
def test_offline_is_read_from_either_variable_at_each_call(monkeypatch, name, value, expected):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    assert not pconv_hub.offline()
    monkeypatch.setenv(name, value)
    assert pconv_hub.offline() is expected


def test_cache_and_endpoint_are_read_at_each_call(monkeypatch, tmp_path):
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "HF_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert pconv_hub.cache_dir() is None and pconv_hub.endpoint() is None
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert pconv_hub.cache_dir() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HUGGINGFACE_HUB_CACHE", str(tmp_path / "legacy"))
    assert pconv_hub.cache_dir() == tmp_path / "legacy"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    assert pconv_hub.cache_dir() == tmp_path / "hf"
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9/")
    assert pconv_hub.endpoint() == "http://127.0.0.1:9"


def test_download_then_offline_reads_the_cache_without_a_request(hub, hub_env, monkeypatch):
    hub.repos[REPO] = {"model.safetensors": b"weights"}
    path = pconv_hub.download(REPO, "model.safetensors", "main")
    assert path.read_bytes() == b"weights"
    assert path.is_relative_to(hub_env / "hf")  # HF_HUB_CACHE, read now
    assert any(r.startswith(f"HEAD /{REPO}/resolve/main/") for r in hub.requests)
    for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        with monkeypatch.context() as m:
            m.setenv(variable, "1")
            before = len(hub.requests)
            assert pconv_hub.download(REPO, "model.safetensors", "main") == path
            assert pconv_hub.cached_file(REPO, "model.safetensors", "main") == path
            assert len(hub.requests) == before


def test_unavailable_files_carry_which_and_why(hub, monkeypatch):
    with pytest.raises(pconv_hub.HubUnavailable) as info:
        pconv_hub.download("someone/absent", "model.safetensors", "main")
    err = info.value
    assert err.path == "someone/absent/model.safetensors@main"
    assert "RepositoryNotFound" in err.reason
    assert str(err) == f"{err.path}: {err.reason}" and "\n" not in str(err)
    assert pconv_hub.cached_file("someone/absent", "model.safetensors") is None

    hub.repos[REPO] = {"model.safetensors": b"weights"}
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    before = len(hub.requests)
    with pytest.raises(pconv_hub.HubUnavailable):  # offline and not cached: no request
        pconv_hub.download(REPO, "model.safetensors", "main")
    assert len(hub.requests) == before


@pytest.mark.parametrize("variable", ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"])
def test_zoo_and_perceptual_loss_obey_the_same_offline_variables(
    hub, hub_env, tmp_path, monkeypatch, variable
):
    """Before pconv.hub the loss ignored TRANSFORMERS_OFFLINE; now both front doors agree."""
    hub.repos[HUB_REPO] = {HUB_FILENAME: _vgg_bytes()}
    hub.repos[REPO] = {"model.safetensors": _model_bytes(tmp_path)}
    monkeypatch.setenv(variable, "1")
    with pytest.raises(BackboneUnavailableError, match="not in the cache, offline"):
        resolve_backbone("vgg16-hub")
    with pytest.raises(pconv.CheckpointError, match="cannot get it from the Hub"):
        pconv.load_model(REPO)
    assert hub.requests == []

    monkeypatch.delenv(variable)
    backbone = resolve_backbone("vgg16-hub")  # downloaded through the loopback Hub
    assert backbone.info.name == "vgg16-hub" and f"@main:{hub_env / 'hf'}" in backbone.info.source
    assert isinstance(pconv.load_model(REPO), PConvUNet)
    monkeypatch.setenv(variable, "1")  # and both then work offline from the same cache
    before = len(hub.requests)
    assert resolve_backbone("vgg16-hub").info.sha256 == backbone.info.sha256
    assert isinstance(pconv.load_model(f"{REPO}@{COMMIT}"), PConvUNet)
    assert len(hub.requests) == before


def test_a_failed_backbone_download_is_not_retried_in_the_process(hub, monkeypatch):
    with pytest.raises(BackboneUnavailableError, match="download failed"):
        resolve_backbone("vgg16-hub")  # the loopback Hub has no such repo
    before = len(hub.requests)
    with pytest.raises(BackboneUnavailableError, match="failed before"):
        resolve_backbone("vgg16-hub")
    assert len(hub.requests) == before
