"""The architecture registry: the U-Net is found through it, and a second network registered
here (nowhere else) is saved, verified, loaded and inpainted with like the U-Net."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import Tensor, nn

import pconv
from pconv import architectures
from pconv.architectures import (
    ARCHITECTURES,
    Architecture,
    architecture_of,
    input_multiple,
    register_architecture,
    training_resolution,
)
from pconv.archs.unet import UNET, PConvUNet, UNetConfig
from pconv.checkpoint import inspect_weights
from zoo.card import validate_folder, write_folder
from zoo.files import verify_weights


@dataclass(frozen=True)
class MeanConfig:
    """A toy inpainter: every hole pixel becomes the mean colour of the known ones, scaled."""

    multiple: int = 8
    resolution: int = 64

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> MeanConfig:
        return cls(**data)


class MeanFill(nn.Module):
    def __init__(self, config: MeanConfig) -> None:
        super().__init__()
        self.config = config
        self.gain = nn.Parameter(torch.ones(3))

    def predict(self, image: Tensor, valid: Tensor) -> tuple[Tensor, None]:
        assert image.shape[-1] % self.config.multiple == 0  # inference padded for us
        known = valid.sum(dim=(2, 3), keepdim=True).clamp(min=1)
        mean = (image * valid).sum(dim=(2, 3), keepdim=True) / known
        return (mean * self.gain.view(1, 3, 1, 1)).expand_as(image), None

    def forward(self, image: Tensor, valid: Tensor) -> Tensor:
        return self.predict(image, valid)[0]


@pytest.fixture
def mean_arch():
    arch = register_architecture(
        Architecture(
            name="test-mean-fill",
            config_type=MeanConfig,
            module_type=MeanFill,
            build=MeanFill,
            recognise=lambda meta: False,
            multiple=lambda c: c.multiple,
            resolution=lambda c: c.resolution,
            describe=lambda c: "mean colour of the known pixels",
            precisions=("fp32",),
        )
    )
    yield arch
    del ARCHITECTURES[arch.name]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.compile's own imports
def test_the_unet_is_registered_and_described():
    assert ARCHITECTURES["pconv-unet"] is UNET
    model = PConvUNet(UNetConfig(depth=5, base_width=8, resolution=128))
    assert architecture_of(model) is UNET
    assert architecture_of(torch.compile(model)) is UNET  # the compiled wrapper, not compiled
    assert input_multiple(model) == 32 and training_resolution(model) == 128
    config = UNetConfig.paper512()
    assert UNET.parameter_count(config) == sum(p.numel() for p in PConvUNet(config).parameters())
    assert UNET.expected_shapes(config) == {
        k: tuple(v.shape) for k, v in PConvUNet(config).state_dict().items()
    }


def test_files_without_the_architecture_key_are_unets(tmp_path, tiny_model):
    """The shipped default (written before the key existed) and new files both load."""
    default = inspect_weights(pconv.loader.resolve_weights("default"))
    assert "architecture" not in default.metadata and default.architecture is UNET
    path = pconv.save_model(tiny_model, tmp_path / "new.safetensors")
    assert pconv.read_metadata(path)["architecture"] == "pconv-unet"
    assert inspect_weights(path).config == tiny_model.config


def test_unknown_architecture_is_one_clear_error(tmp_path, tiny_model):
    path = tmp_path / "future.safetensors"
    meta = {**pconv.read_metadata(pconv.save_model(tiny_model, path)), "architecture": "mat"}
    save_file({k: v.contiguous() for k, v in tiny_model.state_dict().items()}, path, meta)
    with pytest.raises(pconv.CheckpointError, match=r"unknown architecture 'mat' \(known: "):
        pconv.load_model(path)


def test_a_registered_network_needs_no_special_case(tmp_path, mean_arch, photos):
    model = MeanFill(MeanConfig())
    with torch.no_grad():
        model.gain.copy_(torch.tensor([1.0, 0.5, 0.25]))
    path = pconv.save_model(model, tmp_path / "mean.safetensors", {"licence": "test"})
    assert pconv.read_metadata(path)["architecture"] == "test-mean-fill"
    assert verify_weights(path)["architecture"] == "test-mean-fill"
    loaded = pconv.load_model(path)
    assert isinstance(loaded, MeanFill) and torch.equal(loaded.gain, model.gain)

    photo = photos["chelsea"][:100, :150]  # sides no multiple of 8: inpaint pads
    hole = np.zeros(photo.shape[:2], bool)
    hole[20:50, 30:90] = True
    out = pconv.inpaint(photo, hole, loaded)
    assert np.array_equal(out[~hole], photo[~hole])  # known pixels bit for bit
    filled = out[hole].astype(float).mean(axis=0)
    assert filled[0] > 2 * filled[2]  # the gains reached the holes: [1, 0.5, 0.25]

    folder = write_folder(loaded, tmp_path / "hub", metadata={"name": "mean", "licence": "MIT"})
    config = validate_folder(folder)
    assert config["architecture"] == "test-mean-fill"
    card = (folder / "README.md").read_text()
    assert "`test-mean-fill`" in card and "mean colour of the known pixels" in card


def test_registering_another_network_under_a_taken_name_is_refused(mean_arch):
    with pytest.raises(ValueError, match="registered already"):
        architectures.register_architecture(
            Architecture(**{**mean_arch.__dict__, "describe": lambda c: "other"})
        )


def test_the_trainer_refuses_to_init_from_another_network(tmp_path, mean_arch, photos):
    """The trainer's settings describe the U-Net; weights of another registered network are
    refused in one line naming both, not a traceback from a missing config field."""
    from PIL import Image

    from pconv.training import Trainer
    from pconv.training.config import resolve
    from pconv.training.errors import InitError

    data = tmp_path / "photos"
    data.mkdir()
    for name, photo in photos.items():
        Image.fromarray(photo).save(data / f"{name}.png")
    weights = pconv.save_model(MeanFill(MeanConfig()), tmp_path / "mean.safetensors")
    config = resolve({}, {"data": [str(data)], "init": str(weights), "steps": 1, "workers": 0})
    with pytest.raises(InitError, match="a test-mean-fill model; the trainer trains pconv-unet"):
        Trainer(config, tmp_path / "run")


def test_inference_refuses_a_precision_the_network_does_not_run_in(mean_arch):
    image = np.zeros((16, 16, 3), np.float32)
    hole = np.zeros((16, 16), bool)
    hole[4:8, 4:8] = True
    model = MeanFill(MeanConfig())
    assert pconv.inpaint(image, hole, model, dtype="fp32").shape == image.shape
    with pytest.raises(pconv.CheckpointError, match="test-mean-fill models run in fp32, not bf16"):
        pconv.inpaint(image, hole, model, dtype="bf16")
