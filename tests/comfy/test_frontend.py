"""The UI workflows of example_workflows/ in ComfyUI's real frontend, in headless Chromium.

Each is loaded the way a drop onto the canvas loads it; no node may be missing, and the
frontend's own conversion to an API prompt must give the API workflow beside it. The diffusion
pre-fill, converted by the page, must validate in ComfyUI up to its checkpoint loader (the only
thing this machine lacks).
"""

from __future__ import annotations

import asyncio
import json
import shutil

import pytest
from ci import missing
from comfyui_harness import UI_WORKFLOWS, ComfyUIServer, copy_example_inputs, load_workflow
from screenshot import CHROMIUM, browser_page, load_ui, to_api, without_meta

pytestmark = [pytest.mark.comfyui, pytest.mark.browser]

NAMES = sorted(p.stem for p in UI_WORKFLOWS.glob("*.json"))


@pytest.fixture(scope="module")
def chromium() -> None:
    if not any(shutil.which(b) for b in CHROMIUM):
        reason = "no chromium (tests/install-test-deps.sh installs Debian's)"
        missing(reason)


def test_ui_workflows_load_with_no_missing_node(comfyui: ComfyUIServer, chromium: None) -> None:
    async def check() -> dict[str, dict]:
        converted = {}
        async with browser_page(comfyui) as page:
            for name in NAMES:
                ui = json.loads((UI_WORKFLOWS / f"{name}.json").read_text())
                assert await load_ui(page, ui, name) == [], name
                assert await page.js("app.graph._nodes.length") == len(ui["nodes"]), name
                converted[name] = await to_api(page)
        return converted

    converted = asyncio.run(check())
    for name in NAMES:
        assert converted[name] == without_meta(load_workflow(f"{name}.json")), name
    # what the page sends for the pre-fill workflow validates up to the checkpoint loader
    # (given the workflows' input images, which the docs tell a user to copy into input/)
    copy_example_inputs(comfyui.base)
    prompt = converted["pconv_prefill_diffusion"]
    status, body = comfyui.queue(prompt)
    [(node, errors)] = body["node_errors"].items()
    assert prompt[node]["class_type"] == "CheckpointLoaderSimple"
    assert [e["type"] for e in errors["errors"]] == ["value_not_in_list"], errors
    if status == 200:  # the outputs that validate (the pre-fill preview) were queued
        assert comfyui.wait(body["prompt_id"], timeout=300)["status"]["status_str"] == "success"
