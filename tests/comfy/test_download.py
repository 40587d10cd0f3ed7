"""A zoo model's first use in ComfyUI: downloaded from the Hub (a loopback one here, through the
real huggingface_hub client) with the loader node's progress bar, and the log says where the
file went; the second use reads the cache."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
from comfyui_harness import ComfyUIServer, load_workflow, require_comfyui
from PIL import Image

pytestmark = pytest.mark.comfyui

REPO_ID = "pconv/pconv-places2-256"  # the registry's places2 (no sha256 pinned before publishing)


def test_zoo_model_downloads_on_first_use(tmp_path: Path) -> None:
    require_comfyui()
    import torch
    from zoo_fixtures import local_hub

    from pconv import PConvUNet, UNetConfig, save_model

    torch.manual_seed(0)
    weights = tmp_path / "tiny.safetensors"
    save_model(PConvUNet(UNetConfig(depth=4, base_width=8, resolution=64)).eval(), weights)
    cache = tmp_path / "hf-cache"
    with local_hub() as hub:
        hub.repos[REPO_ID] = {"model.safetensors": weights.read_bytes()}
        server = ComfyUIServer(
            tmp_path / "comfyui",
            env={
                "HF_HUB_OFFLINE": None,
                "HF_ENDPOINT": hub.url,
                "HF_HUB_CACHE": str(cache),
                "HF_HUB_DISABLE_TELEMETRY": "1",
                "PCONV_UPSTREAM_MIRROR": hub.url + "/upstream",
            },
        )
        photo = np.zeros((64, 96, 3), np.uint8)
        photo[:, :, 1] = np.arange(96, dtype=np.uint8)[None] * 2
        alpha = np.full((64, 96), 255, np.uint8)
        alpha[20:40, 30:60] = 0
        Image.fromarray(np.dstack([photo, alpha]), "RGBA").save(server.base / "input" / "d.png")
        prompt = load_workflow("pconv_inpaint.json")
        prompt["1"]["inputs"]["image"] = "d.png"
        prompt["2"]["inputs"]["model_name"] = "places2"
        del prompt["5"]
        server.start()
        try:
            # progress of the loader node "2" (never reaching the interrupt threshold)
            entry, progress = asyncio.run(server.run_and_interrupt(prompt, "2", after=10**12))
            assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])
            size = len(hub.repos[REPO_ID]["model.safetensors"])
            assert progress and max(progress) == size, (progress, size)
            downloaded = [f for f in cache.rglob("model.safetensors") if f.is_file()]
            assert len(downloaded) == 1
            log = server.log(tail=10**7)
            assert f"pconv: places2 downloaded to {downloaded[0]}" in log, log[-3000:]
            gets = [r for r in hub.requests if r.startswith("GET") and "model.safetensors" in r]
            assert len(gets) == 1, hub.requests
            # again, with a fresh loader: from the cache, no second download
            prompt["2"]["inputs"]["precision"] = "fp32"
            entry = server.run(prompt, timeout=120)
            assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])
            gets = [r for r in hub.requests if r.startswith("GET") and "model.safetensors" in r]
            assert len(gets) == 1, hub.requests
            assert "pconv: places2 (hub) is " in server.log(tail=10**7)
        finally:
            server.stop()
