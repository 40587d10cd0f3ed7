"""An import hook that lets torchvision's Python parts import against a CPU-only torch.

The torchvision wheel on PyPI is a CUDA build. Against the CPU build of torch its C++ ops
library (``torchvision/_C.so``) does not load; torchvision tolerates that for every op except
``nms`` and ``qnms``, whose fake (meta) kernels it registers unconditionally, and then dies on
import with ``RuntimeError: operator torchvision::nms does not exist``. ComfyUI imports
torchvision (transforms, spandrel, kornia), but none of the ops are ever run by our tests.

:func:`install` puts a finder at the front of ``sys.meta_path`` that waits for the import of
``torchvision._meta_registrations``; at that moment (torch and ``torchvision.extension`` already
imported) it defines the two missing schemas, with CPU kernels that raise a clear error if
anything ever calls them, and then lets the normal import proceed. Nothing happens when the C++
ops did load. Only the test environment's ComfyUI process installs this (see ``run_comfyui.py``);
it imports nothing itself until torchvision is being imported.
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

TRIGGER = "torchvision._meta_registrations"

#: The ops that ``_meta_registrations`` registers fake kernels for without checking that the C++
#: library loaded, with torchvision's own schemas for them.
SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}

_library: Any = None  # the torch.library.Library holding our definitions (kept alive here)


def _unavailable(name: str) -> Callable[..., object]:
    def kernel(*args: object, **kwargs: object) -> object:
        raise RuntimeError(
            f"torchvision::{name}: torchvision's C++ ops are not available in this environment "
            "(CPU torch with a CUDA torchvision wheel; only its Python parts are usable)"
        )

    return kernel


def define_missing_ops() -> list[str]:
    """Define the schemas torchvision needs when its C++ ops did not load; returns their names."""
    global _library
    import torch
    import torchvision.extension

    if torchvision.extension._has_ops():
        return []
    missing = []
    for name in SCHEMAS:
        try:
            getattr(torch.ops.torchvision, name)
        except (AttributeError, RuntimeError):
            missing.append(name)
    if not missing:
        return []
    if _library is None:
        _library = torch.library.Library("torchvision", "FRAGMENT")
    for name in missing:
        _library.define(SCHEMAS[name])
        _library.impl(name, _unavailable(name), "CPU")
    return missing


class _Finder(importlib.abc.MetaPathFinder):
    """Runs :func:`define_missing_ops` just before ``torchvision._meta_registrations`` loads."""

    done = False

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> None:
        if fullname == TRIGGER and not self.done:
            self.done = True
            define_missing_ops()
        return None  # never loads anything itself


def install() -> None:
    """Put the hook in place (idempotent); call it before anything imports torchvision."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
