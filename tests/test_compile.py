"""Every registered network compiles as one graph (``torch.compile(fullgraph=True)``).

A data-dependent branch (``bool(mask.all())``) is a host synchronisation per layer on a GPU and
breaks the graph; these tests fail on any graph break, and check the compiled model against
eager mode. Tracing alone (``backend="eager"``) finds graph breaks; one test also runs
Inductor's generated code, which on a CPU needs a C compiler.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch._dynamo.testing import CompileCounter

import pconv
from pconv import PConvUNet, UNetConfig
from pconv.architectures import ARCHITECTURES, unwrap

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]

#: Small versions of the U-Net's variants: the paper's, the gated default's, the Keras head.
UNET_VARIANTS = {
    "paper": UNetConfig(depth=4, base_width=8),
    "smooth-prior": UNetConfig(depth=4, base_width=8, prior="smooth"),
    "sigmoid-head": UNetConfig(depth=4, base_width=8, head="sigmoid"),
}


def _inputs(multiple: int, photos: dict[str, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """A real photo cropped to two multiples by one, with a hole away from and at the edge."""
    h, w = 2 * multiple, multiple
    image = torch.from_numpy(photos["astronaut"][:h, 100 : 100 + w].copy()).permute(2, 0, 1)
    image = image[None].float() / 255
    valid = torch.ones(1, 1, h, w)
    valid[..., h // 4 : h // 2, w // 4 : 3 * w // 4] = 0
    valid[..., :3, : w // 3] = 0
    return image, valid


def _one_graph(model: torch.nn.Module, image: torch.Tensor, valid: torch.Tensor) -> None:
    counter = CompileCounter()
    compiled = torch.compile(model, backend=counter, fullgraph=True)
    with torch.no_grad():
        expected = model(image, valid)
        got = compiled(image, valid)
    assert counter.frame_count == 1
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("variant", list(UNET_VARIANTS))
def test_unet_variants_are_one_graph(variant, photos):
    torch.manual_seed(0)
    model = PConvUNet(UNET_VARIANTS[variant]).eval()
    _one_graph(model, *_inputs(model.config.multiple, photos))


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_every_registered_architecture_is_one_graph(name, photos):
    # Default configs: each network as it is meant to be built (the U-Net's is the paper's).
    arch = ARCHITECTURES[name]
    torch.manual_seed(0)
    config = arch.config_type()
    model = arch.build(config).eval()
    _one_graph(model, *_inputs(arch.multiple(config), photos))


def test_the_shipped_default_is_one_graph(photos):
    model = pconv.load_model(ROOT / "zoo" / "weights" / "default.safetensors")
    _one_graph(model, *_inputs(unwrap(model).config.multiple, photos))


@pytest.mark.skipif(
    not (shutil.which("cc") or shutil.which("gcc")), reason="Inductor on a CPU needs a C compiler"
)
def test_inductor_compiled_gated_unet_matches_eager(photos):
    torch.manual_seed(0)
    model = PConvUNet(UNetConfig(depth=3, base_width=4, prior="smooth")).eval()
    image, valid = _inputs(model.config.multiple * 2, photos)
    compiled = torch.compile(model, fullgraph=True)
    with torch.no_grad():
        expected = model(image, valid)
        got = compiled(image, valid)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
