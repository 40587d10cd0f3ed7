"""The pack installed the way ComfyUI-Manager installs a Registry node, then ComfyUI restarted.

Manager unpacks the Registry's archive into ``custom_nodes/<node id>``, runs
``pip install -r requirements.txt`` in ComfyUI's environment, and restarts ComfyUI. Here the
archive is comfy-cli's own (``comfy node pack``, what ``comfy node publish`` uploads), the
environment is the test ComfyUI's, and pip runs with ``--dry-run --report``: it must have
nothing to install or replace (ComfyUI's torch above all). A fresh ComfyUI venv is not built:
torch and ComfyUI's requirements are gigabytes this test cannot download each run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from ci import in_ci
from comfy_cli import node_archive
from comfyui_harness import (
    EXAMPLE_INPUTS,
    ComfyUIServer,
    ComfyUIUnavailable,
    comfyui_dir,
    copy_example_inputs,
    load_workflow,
)
from PIL import Image

pytestmark = pytest.mark.comfyui


def test_registry_archive_installed_like_manager(tmp_path: Path) -> None:
    try:
        comfyui_dir()
    except ComfyUIUnavailable as exc:
        if in_ci():
            pytest.fail(f"{exc}; CI must run the ComfyUI tests", pytrace=False)
        pytest.skip(str(exc))
    archive = node_archive(tmp_path / "pack")
    base = tmp_path / "comfyui"
    pack = base / "custom_nodes" / "pconv"  # the Registry node id, as Manager names the folder
    pack.mkdir(parents=True)
    with zipfile.ZipFile(archive) as z:
        z.extractall(pack)
    assert not (pack / "tests").exists() and (pack / "zoo" / "weights").is_dir()

    report = tmp_path / "pip-report.json"
    pip = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--report"]
    done = subprocess.run(
        [*pip, str(report), "--disable-pip-version-check", "-r", str(pack / "requirements.txt")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    would_install = [item["metadata"]["name"] for item in json.loads(report.read_text())["install"]]
    assert would_install == [], would_install

    server = ComfyUIServer(base)  # finds the unpacked pack in place, copies nothing
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
