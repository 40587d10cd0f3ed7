"""Fixtures for the ComfyUI tests: one real ComfyUI server for the whole session."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import comfyui_harness as harness


@pytest.fixture(scope="session")
def comfyui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.ComfyUIServer]:
    """A ComfyUI with this pack in custom_nodes and a tiny random model in models/inpaint, next
    to files there that are not pconv models (``harness.FOREIGN_MODELS``), and another pack
    that has a top-level ``zoo`` of its own (``harness.OTHER_PACK``).

    Without ComfyUI installed these tests fail in CI (CI=true) and skip elsewhere, saying why.
    """
    harness.require_comfyui()
    import torch

    from pconv import PConvUNet, UNetConfig, save_model

    base = tmp_path_factory.mktemp("comfyui")
    server = harness.ComfyUIServer(base)
    torch.manual_seed(0)
    tiny = PConvUNet(UNetConfig(depth=4, base_width=8, resolution=64)).eval()
    save_model(tiny, base / "models" / "inpaint" / "tiny.safetensors", {"licence": "test"})
    harness.write_foreign_models(base / "models" / "inpaint")  # broken.safetensors among them
    harness.write_other_pack(base / "custom_nodes")
    server.start()
    try:
        yield server
    finally:
        server.stop()
