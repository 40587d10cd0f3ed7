#!/usr/bin/env bash
# Test-time dependencies that are not Python packages of ours: a real ComfyUI (for tests/comfy)
# and, for the demo's browser tests, Debian's Chromium. Run inside the activated venv. Idempotent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/comfy/install.sh"
