"""``pconv.load_model``: one call from a name, a Hub repo id, a folder or a file to a model."""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

import torch
from torch import nn

from pconv.checkpoint import WEIGHTS_NAME, load_weights
from pconv.devices import pick_device
from pconv.errors import CheckpointError

#: Entry-point group of the packages that turn names (zoo names, Hub repo ids) into local
#: weights files. pconv itself resolves paths only and imports none of them: the zoo, in the
#: same distribution, declares itself here (pyproject.toml), so ``pconv.load_model("places2")``
#: works while imports still flow one way (pconv <- zoo).
SOURCES_GROUP = "pconv.model_sources"


def _source() -> Callable[[str | os.PathLike[str]], Path] | None:
    """The first model source by name, imported only now: the others are never imported, so
    a package that declares the group cannot run code in a process that does not use it."""
    declared = sorted(entry_points(group=SOURCES_GROUP), key=lambda e: e.name)
    return declared[0].load() if declared else None


def resolve_weights(name_or_path: str | os.PathLike[str]) -> Path:
    """A zoo name, a Hub repo id, a folder holding ``model.safetensors``, or a file.

    A model source (the zoo) resolves all of these (a bare zoo name wins over a same-named
    folder in the working directory); where none is installed, local files and folders.
    """
    source = _source()
    if source is not None:
        return source(name_or_path)
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        path = path / WEIGHTS_NAME
    if not path.is_file():
        raise CheckpointError(
            f"{name_or_path}: no such file (names of published models need the model zoo: "
            "install pconv with pip)"
        )
    return path


def load_model(
    name_or_path: str | os.PathLike[str],
    device: str | torch.device | None = "cpu",
    dtype: torch.dtype = torch.float32,
) -> nn.Module:
    """Load a model (any registered architecture) in eval mode: ``pconv.load_model("places2")``
    or a path.

    ``device="auto"`` picks CUDA, MPS or CPU; a device this torch does not have is a
    :class:`~pconv.errors.DeviceError`, raised before any download. Weights are safetensors
    only.
    """
    chosen = pick_device(device)
    model, _ = load_weights(resolve_weights(name_or_path), chosen, dtype)
    return model
