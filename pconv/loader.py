"""``pconv.load_model``: one call from a name, a Hub repo id, a folder or a file to a model."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from pconv.checkpoint import WEIGHTS_NAME, load_weights
from pconv.errors import CheckpointError
from pconv.inpaint import pick_device
from pconv.unet import PConvUNet


def resolve_weights(name_or_path: str | os.PathLike[str]) -> Path:
    """A zoo name, a Hub repo id, a folder holding ``model.safetensors``, or a file.

    The zoo resolves all of these (a bare zoo name wins over a same-named folder in the working
    directory); without the zoo installed, only local files and folders work.
    """
    try:
        from zoo import resolve  # the registry of named and Hub models
    except ImportError:
        resolve = None
    if resolve is not None:
        return resolve(name_or_path)
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        path = path / WEIGHTS_NAME
    if not path.is_file():
        raise CheckpointError(f"{name_or_path}: no such file, and the model zoo is not installed")
    return path


def load_model(
    name_or_path: str | os.PathLike[str],
    device: str | torch.device | None = "cpu",
    dtype: torch.dtype = torch.float32,
) -> PConvUNet:
    """Load a PConv U-Net in eval mode: ``pconv.load_model("places2")`` or a path.

    ``device="auto"`` picks CUDA, MPS or CPU. Weights are safetensors only.
    """
    model, _ = load_weights(resolve_weights(name_or_path), pick_device(device), dtype)
    return model
