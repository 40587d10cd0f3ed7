"""Finding, loading and placing PConv models inside ComfyUI.

Models are a zoo name (the registry's, :func:`zoo.registry.names`; see ``python -m zoo list``)
or a ``.safetensors`` file under ``ComfyUI/models/inpaint`` (or any folder that
``extra_model_paths.yaml`` maps to ``inpaint``). The device and precision come from
``comfy.model_management``; between runs the weights wait on its offload device. Other packs'
files in that folder are not listed (see ``files.py``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import comfy.utils
import folder_paths
import torch
from comfy import model_management
from torch import nn

from pconv.architectures import memory_required, training_resolution
from pconv.checkpoint import load_weights
from pconv.errors import CheckpointError
from pconv.precision import DTYPES, PRECISIONS

from ..zoo.hub import resolve_entry, where_cached
from ..zoo.registry import get_entry, names
from .files import ModelFiles
from .progress import progress_class

log = logging.getLogger("pconv.comfyui")

FOLDER = "inpaint"  # ComfyUI/models/inpaint, shared with other inpainting packs
EXTENSIONS = (".safetensors",)  # pconv weights are safetensors only; nothing is unpickled


def register_folder() -> None:
    """Register ``models/inpaint``, keeping the folders users already mapped to ``inpaint``.

    ``add_model_folder_path`` appends to an existing entry (one made by ``extra_model_paths.yaml``
    or by another pack); the ``.safetensors`` extension is added to the entry's filter the way
    other packs add theirs, so nobody's files disappear from anybody's list.
    """
    folder_paths.add_model_folder_path(FOLDER, os.path.join(folder_paths.models_dir, FOLDER))
    _paths, extensions = folder_paths.folder_names_and_paths[FOLDER]
    if isinstance(extensions, set):
        extensions.update(EXTENSIONS)
    elif isinstance(extensions, list):
        extensions.extend(e for e in EXTENSIONS if e not in extensions)


def zoo_names() -> list[str]:
    """The zoo's names, as its registry lists them (the zoo ships with pconv)."""
    return names()


_pconv_files = ModelFiles()  # verdicts cached per (path, size, mtime), across refreshes


def model_files() -> list[str]:
    """The pconv models among the ``.safetensors`` files in the ``inpaint`` folders.

    Other packs' models share the folder; listing them would only offer files that fail to load,
    and one unreadable file must not break the node list, so each file's header is checked
    (cached) and what isn't ours is left out, with one log line saying which and why.
    """
    try:
        files = folder_paths.get_filename_list(FOLDER)
    except KeyError:
        return []
    names = [f for f in files if f.lower().endswith(EXTENSIONS)]
    return _pconv_files(names, lambda name: folder_paths.get_full_path(FOLDER, name))


def choices() -> list[str]:
    return zoo_names() + model_files()


@dataclass
class PConvModel:
    """What flows along a PCONV_MODEL link."""

    model: nn.Module  # a registered architecture (pconv.architectures)
    name: str
    source: str
    precision: str = "auto"

    @property
    def resolution(self) -> int:
        return training_resolution(self.model)

    def autocast_dtype(self, device: torch.device) -> torch.dtype | None:
        """``None`` for plain fp32, else the autocast dtype for ``device``."""
        if self.precision in DTYPES:
            dtype = DTYPES[self.precision] or torch.float32
        elif model_management.is_device_cpu(device):
            dtype = torch.float32
        else:
            params = sum(p.numel() for p in self.model.parameters())
            dtype = model_management.unet_dtype(
                device, params, supported_dtypes=[torch.bfloat16, torch.float16, torch.float32]
            )
        return None if dtype not in (torch.bfloat16, torch.float16) else dtype

    def memory_required(self) -> int:
        """Bytes to have free on the device: weights plus one worst-case crop's activations."""
        side = 2 * self.resolution  # the core's crops hold at most (2R)^2 pixels
        return memory_required(self.model, side * side)

    def to_device(self, device: torch.device) -> None:
        if not model_management.is_device_cpu(device):
            model_management.free_memory(self.memory_required(), device)
        self.model.to(device)

    def offload(self) -> None:
        self.model.to(model_management.unet_offload_device())


def fetch_zoo_model(name: str) -> str:
    """The weights file of zoo model ``name``: packaged, cached, or downloaded now.

    A first use downloads it into the Hugging Face cache (``HF_HUB_CACHE`` / ``HF_HOME``, or
    ``~/.cache/huggingface/hub``; ``HF_HUB_OFFLINE=1`` forbids it) with the node's progress bar
    counting the bytes, and the log says where the file went. Goes through the zoo of this
    pack directly, never through pconv's model-source entry point: another copy of pconv, or
    another pack's ``zoo`` module, must not decide which file this node loads.
    """
    entry = get_entry(name)
    where = where_cached(entry)
    bar: list[comfy.utils.ProgressBar] = []

    def report(done: int, total: int) -> None:
        if total <= 0:
            return
        if not bar:
            bar.append(comfy.utils.ProgressBar(total))
        bar[0].update_absolute(min(done, total), total)

    if where == "-":
        log.info("pconv: %s is not cached here; downloading it (%s)", name, entry.repo_id)
    path = resolve_entry(entry, progress=progress_class(report))
    if where == "-":
        log.info("pconv: %s downloaded to %s", name, path)
    else:
        log.info("pconv: %s (%s) is %s", name, where, path)
    return str(path)


def load(name: str, precision: str = "auto") -> PConvModel:
    """A zoo name or a file from the ``inpaint`` folders -> a model on the offload device."""
    if precision not in PRECISIONS:
        raise CheckpointError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision}")
    path = folder_paths.get_full_path(FOLDER, name) if name.lower().endswith(EXTENSIONS) else None
    if path is not None:
        source = path
    elif name in zoo_names():
        # through this pack's zoo, not pconv's model-source entry point: a pack installed the
        # way ComfyUI-Manager does it (no pip install of pconv) has no entry points, and an
        # installed pconv's entry point would import whatever top-level `zoo` the process has
        source = fetch_zoo_model(name)
    else:
        raise CheckpointError(
            f"{name!r} is neither a zoo model ({', '.join(zoo_names())}) nor a .safetensors file "
            f"in {', '.join(folder_paths.get_folder_paths(FOLDER))}"
        )
    model, _meta = load_weights(source, model_management.unet_offload_device())
    log.info("pconv: loaded %s (%s)", name, source)
    return PConvModel(model=model, name=name, source=str(source), precision=precision)
