"""Shared fixtures: real photos shipped with scikit-image / scikit-learn, small models."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/reference.py and friends

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    """A few real photographs as uint8 RGB arrays of various sizes."""
    from skimage import data
    from sklearn.datasets import load_sample_images

    china, flower = load_sample_images().images  # 427x640
    return {
        "astronaut": data.astronaut(),  # 512x512
        "coffee": data.coffee(),  # 400x600
        "chelsea": data.chelsea(),  # 300x451
        "china": china,
        "flower": flower,
    }


@pytest.fixture(scope="session")
def tiny_model():
    """A small random PConv U-Net (depth 5: inputs padded to multiples of 32)."""
    import torch

    from pconv import PConvUNet, UNetConfig

    torch.manual_seed(0)
    return PConvUNet(UNetConfig(depth=5, base_width=8, resolution=128)).eval()


@pytest.fixture
def tiny_model_file(tmp_path, tiny_model) -> Path:
    from pconv import save_model

    return save_model(tiny_model, tmp_path / "tiny.safetensors", {"licence": "test"})
