"""The example workflows in ComfyUI's own page (headless Debian ``chromium``, DevTools protocol).

    python tests/comfy/screenshot.py [--export]

Starts ComfyUI as the tests do (this pack, the packaged ``default`` model), opens its page and

* with ``--export``: loads each API workflow of ``example_workflows/api/`` into the graph with
  the frontend's own ``loadApiJson`` and writes what the frontend serialises as the UI workflow
  ``example_workflows/<name>.json``, with a thumbnail ``<name>.jpg`` of the graph beside it
  (the template browser asks for ``.jpg``);
* always: loads the UI workflows, checks that the frontend converts each back to its API
  workflow, runs them where no missing checkpoint stops them, and saves the screenshots of
  ``docs/comfyui.md`` (``docs/images/comfyui_*.png``).

``tests/comfy/test_frontend.py`` drives the same page (:func:`browser_page`) for its checks.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator
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


async def _close_popups(page: Page) -> None:
    await page.js(CLOSE_POPUPS)


@contextlib.asynccontextmanager
async def browser_page(server: harness.ComfyUIServer) -> AsyncIterator[Page]:
    """ComfyUI's page, loaded and ready (``window.app``), in a fresh headless Chromium."""
    import aiohttp

    browser = next((b for b in map(shutil.which, CHROMIUM) if b), None)
    if browser is None:
        raise FileNotFoundError("no chromium: apt-get install -y chromium")
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
        for _ in range(150):
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
            await _close_popups(page)
            yield page
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        shutil.rmtree(profile, ignore_errors=True)


def without_meta(prompt: dict[str, Any]) -> dict[str, Any]:
    return {k: {kk: vv for kk, vv in v.items() if kk != "_meta"} for k, v in prompt.items()}


async def load_ui(page: Page, workflow: dict[str, Any], name: str) -> list[str]:
    """Load a UI workflow as a user's drop would; returns the node types the page lacks."""
    missing = await page.js(
        f"(() => {{ const w = {json.dumps(workflow)};"
        " return w.nodes.map(n => n.type).filter(t => !LiteGraph.registered_node_types[t]) })()"
    )
    await page.js(
        f"app.loadGraphData({json.dumps(workflow)}, true, true, {json.dumps(name)})"
        ".then(() => true)"
    )
    await asyncio.sleep(1)
    return list(missing)


async def to_api(page: Page) -> dict[str, Any]:
    """The frontend's own conversion of the graph on the page to an API prompt."""
    return without_meta(await page.js("app.graphToPrompt().then(p => p.output)"))


async def queue_from_page(page: Page, server: harness.ComfyUIServer, prompt: dict) -> None:
    """Queue ``prompt`` from the page itself, so that its outputs show in the graph."""
    prompt_id = await page.js(
        "fetch('/prompt', {method: 'POST', headers: {'Content-Type': 'application/json'},"
        " body: JSON.stringify({prompt: " + json.dumps(prompt) + ","
        " client_id: app.api.clientId})}).then(r => r.json()).then(j => j.prompt_id)"
    )
    entry = server.wait(prompt_id, timeout=300)
    if entry["status"]["status_str"] != "success":
        raise RuntimeError(f"{prompt_id}: {json.dumps(entry['status'])[:2000]}")
    await asyncio.sleep(2)


async def fit(page: Page, scale: float | None = None) -> None:
    """Fit the graph into the page (or set ``scale``), then redraw."""
    await page.js(
        "(() => { const c = app.canvas; "
        + (
            f"c.ds.scale = {scale}; c.ds.offset = [30, 75];"
            if scale
            else "const b = app.graph._nodes.reduce((a, n) => [Math.min(a[0], n.pos[0]),"
            " Math.min(a[1], n.pos[1]), Math.max(a[2], n.pos[0] + n.size[0]),"
            " Math.max(a[3], n.pos[1] + n.size[1])], [1e9, 1e9, -1e9, -1e9]);"
            f" const s = Math.min(1.0, ({WIDTH} - 150) / (b[2] - b[0]),"
            f" ({HEIGHT} - 190) / (b[3] - b[1] + 40));"
            " c.ds.scale = s; c.ds.offset = [90 / s - b[0], 150 / s - b[1]];"
        )
        + " c.setDirty(true, true); return true })()"
    )
    await asyncio.sleep(1)


async def screenshot(page: Page) -> bytes:
    shot = await page.call("Page.captureScreenshot", format="png")
    return base64.b64decode(shot["data"])


def save_jpeg(png: bytes, out: Path, width: int = 768) -> None:
    """A thumbnail for the template browser (it asks for ``<workflow>.jpg``)."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
    image.save(out, quality=85, optimize=True)


#: Columns by depth in the graph (sources left), nodes in id order down each column, with room
#: below the nodes that show an image once run (loadApiJson's own arrange lets them overlap).
LAYOUT = """(() => {
  const shows = new Set(['SaveImage', 'PreviewImage', 'PConvMaskPreview']);
  const depth = {};
  const d = n => {
    if (depth[n.id] !== undefined) return depth[n.id];
    let m = 0;
    for (let i = 0; i < (n.inputs || []).length; i++) {
      const o = n.getInputNode(i);
      if (o) m = Math.max(m, d(o) + 1);
    }
    return (depth[n.id] = m);
  };
  const nodes = [...app.graph._nodes].sort((a, b) => a.id - b.id);
  nodes.forEach(d);
  const cols = {};
  for (const n of nodes) (cols[depth[n.id]] ||= []).push(n);
  let x = 0;
  for (const k of Object.keys(cols).map(Number).sort((a, b) => a - b)) {
    let y = 0, w = 0;
    for (const n of cols[k]) {
      n.pos = [x, y];
      y += n.size[1] + (shows.has(n.type) ? 280 : 0) + 70;
      w = Math.max(w, n.size[0]);
    }
    x += w + 50;
  }
  app.graph.setDirtyCanvas(true, true);
  return true;
})()"""


async def export_ui(page: Page, name: str) -> dict[str, Any]:
    """``example_workflows/api/<name>.json`` through the frontend's ``loadApiJson`` ->
    ``example_workflows/<name>.json`` and its thumbnail ``<name>.jpg``."""
    api = json.loads((harness.API_WORKFLOWS / f"{name}.json").read_text())
    await page.js(
        f"(async () => {{ await app.loadApiJson({json.dumps(api)}, '{name}'); return true }})()"
    )
    await asyncio.sleep(1)
    await page.js(LAYOUT)
    # a seed widget's control: keep the example's seed (the frontend defaults to randomize)
    await page.js(
        "(() => { for (const n of app.graph._nodes) for (const w of n.widgets || [])"
        " if (w.name === 'control_after_generate') w.value = 'fixed'; return true })()"
    )
    ui = json.loads(await page.js("JSON.stringify(app.graph.serialize())"))
    (harness.UI_WORKFLOWS / f"{name}.json").write_text(json.dumps(ui, indent=2) + "\n")
    await fit(page)
    save_jpeg(await screenshot(page), harness.UI_WORKFLOWS / f"{name}.jpg")
    return ui


#: docs/comfyui.md's screenshots: workflow -> the nodes of it to run first (None: all of it)
DOCS_SHOTS: dict[str, tuple[str, ...] | None] = {
    "pconv_inpaint": None,
    "pconv_regions": None,
    "pconv_prefill_diffusion": ("1", "2", "3", "4"),  # no checkpoint here: the pre-fill only
}


async def _main(server: harness.ComfyUIServer, export: bool, docs: Path) -> None:
    async with browser_page(server) as page:
        if export:
            for path in sorted(harness.API_WORKFLOWS.glob("*.json")):
                await export_ui(page, path.stem)
        for name, run in DOCS_SHOTS.items():
            ui = json.loads((harness.UI_WORKFLOWS / f"{name}.json").read_text())
            missing = await load_ui(page, ui, name)
            if missing:
                raise SystemExit(f"{name}: the page lacks the nodes {missing}")
            api = await to_api(page)
            if api != without_meta(harness.load_workflow(f"{name}.json")):
                raise SystemExit(f"the frontend converts {name}.json to\n{json.dumps(api)}")
            await queue_from_page(
                page, server, {k: v for k, v in api.items() if run is None or k in run}
            )
            await fit(page)
            _save_small(await screenshot(page), docs / f"comfyui_{name.removeprefix('pconv_')}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export", action="store_true", help="rewrite the UI workflows first")
    parser.add_argument("--docs", type=Path, default=harness.REPO / "docs" / "images")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="pconv-comfyui-"))
    server = harness.ComfyUIServer(base)
    harness.copy_example_inputs(base)
    server.start()
    try:
        asyncio.run(_main(server, args.export, args.docs.resolve()))
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
