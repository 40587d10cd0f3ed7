"""pconv as a ComfyUI custom node pack.

ComfyUI imports ``custom_nodes/<this pack>/__init__.py`` as a package (named after its folder's
path) and calls ``comfy_entrypoint``. Everything of the pack is imported relative to that
package, so it claims no generic top-level name in a process that every pack shares:

* ``nodes/`` is ``<pack>.nodes`` (ComfyUI has its own top-level ``nodes`` module);
* the model zoo is ``<pack>.zoo`` (the zoo imports itself relatively): another pack that ships,
  or puts on ``sys.path``, a ``zoo`` module of its own keeps it, before or after us;
* the library is the one top-level name the pack takes, ``pconv``, its own distribution name
  (its modules import each other as ``pconv.*``). It is loaded from this folder once, when
  nothing has imported a ``pconv`` yet, by a plain module spec: no finder stays on
  ``sys.meta_path`` and ``sys.path`` is left alone, so nothing else of the repository
  (``tests``, ``train``, ``demo`` ...) becomes importable. A ``pconv`` imported before the pack
  (a pip-installed copy) is used as it is, and the log says which one runs.

So a plain ``git clone`` into ``custom_nodes/``, or the Registry's archive that ComfyUI-Manager
unpacks there, works without ``pip install`` of pconv. Outside ComfyUI (pytest imports this
file too, the repository root being a package to it) nothing happens at all.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

_ROOT = Path(__file__).resolve().parent
_LIBRARY = "pconv"


def _load_library() -> ModuleType:
    """The ``pconv`` library the nodes run on: already imported, else this folder's copy."""
    loaded = sys.modules.get(_LIBRARY)
    if loaded is not None:
        if not hasattr(loaded, "load_model"):
            raise ImportError(
                f"a module named {_LIBRARY!r} that is not the pconv library was imported before "
                f"this pack ({getattr(loaded, '__file__', None)}); the pconv nodes need theirs"
            )
        return loaded
    init = _ROOT / _LIBRARY / "__init__.py"
    spec = importlib.util.spec_from_file_location(
        _LIBRARY, init, submodule_search_locations=[str(init.parent)]
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"{init}: the pconv library is missing from this pack")
    module = importlib.util.module_from_spec(spec)
    sys.modules[_LIBRARY] = module  # its submodules are then found through its __path__
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(_LIBRARY, None)
        raise
    return module


def _inside_comfyui() -> bool:
    # pytest imports this file too (the repository root is a package to it): then do nothing
    return bool(__package__) and importlib.util.find_spec("comfy_api") is not None


if _inside_comfyui():
    _load_library()
    from .nodes.extension import comfy_entrypoint

    __all__ = ["comfy_entrypoint"]
