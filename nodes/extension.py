"""The ComfyExtension that ComfyUI gets from ``comfy_entrypoint``."""

from __future__ import annotations

import logging
from pathlib import Path

from comfy_api.latest import ComfyExtension, io

import pconv
from pconv import threads
from pconv.errors import PConvError

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
    log = logging.getLogger("pconv.comfyui")
    # ComfyUI owns the process and its torch threads: changed only when PCONV_THREADS asks
    try:
        count = threads.configure_from_environment()
    except PConvError as exc:  # a bad value must not keep the pack from loading
        log.warning("pconv nodes: %s; CPU threads left to ComfyUI", exc.describe())
        count = None
    log.info(
        "pconv nodes: pconv %s from %s, its zoo from %s (as %s); models in %s; %s",
        pconv.__version__,
        Path(pconv.__file__).parent,
        Path(zoo.__file__).parent,
        zoo.__name__,
        ", ".join(model.folder_paths.get_folder_paths(model.FOLDER)),
        f"{count} CPU threads (PCONV_THREADS)" if count else "CPU threads left to ComfyUI",
    )
    return PConvExtension()
