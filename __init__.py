"""pconv as a ComfyUI custom node pack.

ComfyUI imports ``custom_nodes/<this repository>/__init__.py`` and calls ``comfy_entrypoint``.
The nodes live in ``nodes/`` and are imported relatively: ComfyUI has its own top-level
``nodes`` module, so nothing here is ever imported as ``nodes``.

The library itself (``pconv``, and the model ``zoo``) is used from this clone, so a plain
``git clone`` into ``custom_nodes/`` works without ``pip install``: a finder serves exactly
those two top-level names from this folder, nothing else of the repository (``tests``,
``train``, ``demo`` ...) becomes importable, and ``sys.path`` is left alone.

Outside ComfyUI (pytest imports this file too, the repository root being a package to it) nothing
happens at all.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

_ROOT = Path(__file__).resolve().parent
_PACKAGES = ("pconv", "zoo")


class _CloneFinder(importlib.abc.MetaPathFinder):
    """Finds ``pconv`` and ``zoo`` in this clone, ahead of any other copy on ``sys.path``."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if path is not None or fullname not in _PACKAGES:
            return None
        return importlib.machinery.PathFinder.find_spec(fullname, [str(_ROOT)])


def _use_this_clone() -> None:
    if (_ROOT / "pconv" / "__init__.py").is_file() and not any(
        isinstance(f, _CloneFinder) for f in sys.meta_path
    ):
        sys.meta_path.insert(0, _CloneFinder())


def _inside_comfyui() -> bool:
    # pytest imports this file too (the repository root is a package to it): then do nothing
    return bool(__package__) and importlib.util.find_spec("comfy_api") is not None


if _inside_comfyui():
    _use_this_clone()
    from .nodes.extension import comfy_entrypoint

    __all__ = ["comfy_entrypoint"]
