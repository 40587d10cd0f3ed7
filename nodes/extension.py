"""The ComfyExtension that ComfyUI gets from ``comfy_entrypoint``."""

from __future__ import annotations

import logging
from pathlib import Path

from comfy_api.latest import ComfyExtension, io

import pconv

from .. import zoo
from . import model
from .classical import PConvFill
from .inpaint import PConvInpaint
from .loader import PConvModelLoader
from .masks import PConvMaskPreview

NODES: list[type[io.ComfyNode]] = [PConvModelLoader, PConvInpaint, PConvMaskPreview, PConvFill]


class PConvExtension(ComfyExtension):
    async def on_load(self) -> None:
        model.register_folder()

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(NODES)


async def comfy_entrypoint() -> PConvExtension:
    model.register_folder()  # before any schema lists the folder's files
    logging.getLogger("pconv.comfyui").info(
        "pconv nodes: pconv %s from %s, its zoo from %s (as %s); models in %s",
        pconv.__version__,
        Path(pconv.__file__).parent,
        Path(zoo.__file__).parent,
        zoo.__name__,
        ", ".join(model.folder_paths.get_folder_paths(model.FOLDER)),
    )
    return PConvExtension()
