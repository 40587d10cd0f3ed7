"""Screenshot of the example workflow in ComfyUI's own page, for docs/comfyui.md.

    python tests/comfy/screenshot.py docs/images/comfyui_workflow.png [--export-ui FILE]

Starts ComfyUI (as the tests do, with the tiny random model in models/inpaint), opens its page in
headless Chromium (Debian's ``chromium``) driven over the DevTools protocol, loads
``workflows/pconv_inpaint.json`` into the graph, runs the part of it that needs no trained
weights (Load Image -> PConv Mask Preview) so the preview shows in the graph, and saves a PNG.
It also checks that the frontend's own UI-to-API conversion of the UI workflow gives the API
workflow, and ``--export-ui`` writes the graph as the frontend serialises it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import comfyui_harness as harness

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
WIDTH, HEIGHT = 1500, 820
SETTINGS = {
    "Comfy.TutorialCompleted": True,
    "Comfy.Graph.CanvasInfo": False,
    "Comfy.Minimap.Visible": False,
}
# Banners and dialogs a fresh profile gets (announcements, templates): closed, not clicked on.
CLOSE_POPUPS = """(() => {
  document.querySelectorAll('.p-dialog-mask').forEach(e => e.remove());
  for (const el of document.querySelectorAll('div, section')) {
    if (el.children.length < 6 && /Introducing/.test(el.textContent || '')
        && el.getBoundingClientRect().top < 5 && el.getBoundingClientRect().height < 60) {
      el.remove();
      break;
    }
  }
  window.dispatchEvent(new Event('resize'));
  return true;
})()"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _save_small(png: bytes, out: Path) -> None:
    """A 256-colour PNG: a third of the size, and the page's flat colours survive it."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    image.quantize(256, Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(out, optimize=True)


class Page:
    """The smallest DevTools-protocol client: evaluate JavaScript, take a screenshot."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            msg = await self.ws.receive_json(timeout=120)
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    async def js(self, expression: str) -> Any:
        result = await self.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = await self.js(expression)
            if value:
                return value
            await asyncio.sleep(0.5)
        raise TimeoutError(expression)


async def _shoot(server: harness.ComfyUIServer, out: Path, export_ui: Path | None) -> None:
    import aiohttp

    browser = next((b for b in map(shutil.which, CHROMIUM) if b), None)
    if browser is None:
        raise SystemExit("no chromium: apt-get install -y chromium")
    port = _free_port()
    profile = tempfile.mkdtemp(prefix="pconv-chromium-")
    proc = subprocess.Popen(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--remote-debugging-port={port}",
            "--remote-debugging-address=127.0.0.1",
            "--window-size=1500,860",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        targets: list[dict[str, Any]] = []
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=2) as r:
                    targets = [t for t in json.load(r) if t.get("type") == "page"]
                if targets:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(targets[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws,
        ):
            page = Page(ws)
            for key, value in SETTINGS.items():  # a first visit's dialogs and overlays off
                server.post(f"/settings/{key}", value)
            await page.call(
                "Emulation.setDeviceMetricsOverride",
                width=WIDTH,
                height=HEIGHT,
                deviceScaleFactor=1,
                mobile=False,
            )
            await page.call("Page.enable")
            await page.call("Page.navigate", url=server.url)
            await page.wait_for("!!(window.app && window.app.graph && window.app.canvas)")
            await asyncio.sleep(2)
            await page.js(CLOSE_POPUPS)
            workflow = json.loads((harness.REPO / "workflows" / "pconv_inpaint.json").read_text())
            await page.js(
                f"app.loadGraphData({json.dumps(workflow)}, true, true, 'pconv_inpaint')"
                ".then(() => true)"
            )
            await asyncio.sleep(1)
            api = await page.js("app.graphToPrompt().then(p => p.output)")
            expected = harness.load_workflow("pconv_inpaint_api.json")
            for node in expected.values():
                node.pop("_meta", None)
            for node in api.values():
                node.pop("_meta", None)
            if api != expected:
                raise SystemExit(
                    "the frontend converts workflows/pconv_inpaint.json to\n"
                    f"{json.dumps(api, indent=1)}\nnot to workflows/pconv_inpaint_api.json"
                )
            if export_ui is not None:
                ui = await page.js("JSON.stringify(app.graph.serialize())")
                export_ui.write_text(json.dumps(json.loads(ui), indent=2) + "\n")
            # run what needs no trained weights (the mask preview), queued by the page itself so
            # that the page shows the output in the graph
            preview = {k: v for k, v in expected.items() if k in ("1", "5")}
            prompt_id = await page.js(
                "fetch('/prompt', {method: 'POST', headers: {'Content-Type': 'application/json'},"
                " body: JSON.stringify({prompt: " + json.dumps(preview) + ","
                " client_id: app.api.clientId})}).then(r => r.json()).then(j => j.prompt_id)"
            )
            server.wait(prompt_id)
            await asyncio.sleep(2)
            await page.js(
                "(() => { const c = app.canvas; c.ds.scale = 1.0; c.ds.offset = [30, 75];"
                " c.setDirty(true, true); return true })()"
            )
            await asyncio.sleep(1)
            shot = await page.call("Page.captureScreenshot", format="png")
            out.parent.mkdir(parents=True, exist_ok=True)
            _save_small(base64.b64decode(shot["data"]), out)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        shutil.rmtree(profile, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--export-ui", type=Path, default=None)
    args = parser.parse_args()
    import torch

    from pconv import PConvUNet, UNetConfig, save_model

    base = Path(tempfile.mkdtemp(prefix="pconv-comfyui-"))
    server = harness.ComfyUIServer(base)
    shutil.copyfile(
        harness.REPO / "workflows" / "pconv_example.png", base / "input" / "pconv_example.png"
    )
    torch.manual_seed(0)
    tiny = PConvUNet(UNetConfig(depth=4, base_width=8, resolution=64))
    save_model(tiny, base / "models" / "inpaint" / "tiny.safetensors")
    server.start()
    try:
        asyncio.run(_shoot(server, args.output.resolve(), args.export_ui))
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
    print(args.output)


if __name__ == "__main__":
    sys.exit(main())
