"""The ComfyUI pack as the Comfy Registry and ComfyUI-Manager see it: metadata, dependencies,
archive, publish workflow, example workflows, and a library that imports without OpenCV.

``comfy node validate`` and ``comfy node pack`` are comfy-cli's own (PyPI ``comfy-cli``, in a
venv of its own: ``tests/install-test-deps.sh``); without it those tests skip locally and fail
in CI, like the ComfyUI tests.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from comfy_cli import _comfy, checkout, comfy_cli, node_archive

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
#: The Registry's accelerator classifiers (comfy-cli warns about any other Environment one).
REGISTRY_GPUS = {
    "Environment :: GPU :: NVIDIA CUDA",
    "Environment :: GPU :: AMD ROCm",
    "Environment :: GPU :: Intel Arc",
    "Environment :: NPU :: Huawei Ascend",
    "Environment :: GPU :: Apple Metal",
}
#: What every ComfyUI environment has (ComfyUI's requirements.txt), so requirements.txt skips it.
COMFYUI_PROVIDES = {"torch", "numpy", "pillow", "safetensors", "tqdm"}
#: The library modules the nodes import (directly or through pconv / zoo).
NODE_IMPORTS = ["pconv", "pconv.inpaint", "pconv.smooth", "pconv.holes", "pconv.io", "zoo"]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _requirements() -> list[str]:
    lines = (REPO / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_registry_metadata() -> None:
    project, comfy = PYPROJECT["project"], PYPROJECT["tool"]["comfy"]
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]{0,98}", project["name"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"])
    assert (REPO / "LICENSE").read_text().lstrip().startswith("Apache License")
    urls = project["urls"]
    assert {"Repository", "Homepage", "Issues"} <= set(urls)
    assert all(u.startswith("https://") for u in urls.values())
    classifiers = set(project["classifiers"])
    assert "Operating System :: OS Independent" in classifiers
    environments = {c for c in classifiers if c.startswith("Environment ::")}
    assert environments and environments <= REGISTRY_GPUS, environments
    assert comfy["PublisherId"] and comfy["DisplayName"]
    assert comfy["Icon"].startswith("https://") and comfy["Icon"].endswith(".png")
    icon = comfy["Icon"].rsplit("/main/", 1)[1]
    assert (REPO / icon).is_file(), icon  # served from the repository once pushed
    assert comfy["includes"] == []  # nothing git-ignored is needed by the archive


def test_requirements_are_what_comfyui_lacks() -> None:
    """Manager installs requirements.txt into ComfyUI's environment: nothing there may replace
    ComfyUI's torch or add OpenCV, and nothing the nodes need may be missing from it."""
    required = {_name(r) for r in _requirements()}
    assert not required & {"torch", "torchvision", "torchaudio"}
    assert not {r for r in required if r.startswith("opencv")}
    core = {_name(d): d for d in PYPROJECT["project"]["dependencies"]}
    assert not {n for n in core if n.startswith("opencv")}, "OpenCV must stay an extra"
    assert {"masks", "train", "eval"} <= set(PYPROJECT["project"]["optional-dependencies"])
    for extra in ("masks", "train", "eval", "test"):
        deps = PYPROJECT["project"]["optional-dependencies"][extra]
        assert any(_name(d) == "opencv-python-headless" for d in deps), extra
    for requirement in _requirements():
        assert requirement in core.values(), f"{requirement}: not as in pyproject.toml"
    # every core dependency the nodes use is ComfyUI's or in requirements.txt; tomli only reads
    # training configs on Python 3.10, which the nodes never do
    assert set(core) - COMFYUI_PROVIDES - required == {"tomli"}


def test_comfyui_provides_what_requirements_txt_skips() -> None:
    """Checked against the real ComfyUI's requirements.txt where it is installed."""
    sys.path.insert(0, str(REPO / "tests" / "comfy"))
    import comfyui_harness as harness

    root = harness.require_comfyui()
    theirs = {_name(line) for line in (root / "requirements.txt").read_text().splitlines()}
    assert theirs >= COMFYUI_PROVIDES, COMFYUI_PROVIDES - theirs


def test_publish_workflow() -> None:
    import yaml

    flow = yaml.safe_load((REPO / ".github" / "workflows" / "publish.yml").read_text())
    triggers = flow[True]  # YAML 1.1 reads the key `on` as True
    assert triggers["push"]["paths"] == ["pyproject.toml"]
    assert triggers["push"]["branches"] == ["main"]
    [job] = flow["jobs"].values()
    owner = PYPROJECT["project"]["urls"]["Repository"].split("/")[3]
    assert job["if"].replace(" ", "") == "${{github.repository_owner=='" + owner + "'}}"
    steps = {step.get("uses", "").split("@")[0]: step for step in job["steps"]}
    publish = steps["Comfy-Org/publish-node-action"]
    assert publish["with"]["personal_access_token"] == "${{ secrets.REGISTRY_ACCESS_TOKEN }}"
    assert "version" in publish["if"] and "workflow_dispatch" in publish["if"]


def test_example_workflows_layout() -> None:
    """ComfyUI's template browser lists example_workflows/*.json and asks for <name>.jpg; the
    API workflows are beside them (api/, which it doesn't read), with the same names."""
    folder = REPO / "example_workflows"
    ui = sorted(p.stem for p in folder.glob("*.json"))
    assert {"pconv_inpaint", "pconv_outpaint", "pconv_prefill_diffusion", "pconv_regions"} <= set(
        ui
    )
    assert sorted(p.stem for p in (folder / "api").glob("*.json")) == ui
    for name in ui:
        assert (folder / f"{name}.jpg").read_bytes()[:3] == b"\xff\xd8\xff", name  # a JPEG
        graph = json.loads((folder / f"{name}.json").read_text())
        assert "nodes" in graph and "links" in graph, f"{name}.json is not a UI workflow"
        prompt = json.loads((folder / "api" / f"{name}.json").read_text())
        assert all("class_type" in node for node in prompt.values()), name
        for node in prompt.values():
            for key in ("image",):
                value = node["inputs"].get(key)
                if node["class_type"] == "LoadImage":
                    assert (folder / "input" / value).is_file(), value
    # no other folder that ComfyUI also reads as example workflows
    for other in ("example", "examples", "workflow", "workflows"):
        assert not (REPO / other).exists(), other


# -- no OpenCV ----------------------------------------------------------------------------

_BLOCK_CV2 = """
import importlib.abc, sys

class NoOpenCV(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "cv2" or name.startswith("cv2."):
            raise ModuleNotFoundError("No module named 'cv2' (blocked by the test)", name=name)
        return None

sys.meta_path.insert(0, NoOpenCV())
sys.modules.pop("cv2", None)
"""


def _without_cv2(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-c", _BLOCK_CV2 + code, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )


@pytest.mark.slow
def test_everything_but_the_mask_generators_works_without_opencv(tmp_path: Path) -> None:
    """cv2 blocked: the library, the nodes' ComfyUI-free modules, the classical fill's message
    and the README's offline inpaint command all work; only pconv.masks says what it needs."""
    code = f"""
import importlib, importlib.util, runpy, sys, torch
for name in {NODE_IMPORTS!r}:
    importlib.import_module(name)
for name in ("core", "files", "fill", "progress"):
    spec = importlib.util.spec_from_file_location("pack_" + name, "nodes/" + name + ".py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
import pconv
image = torch.rand(1, 3, 32, 32)
hole = torch.zeros(32, 32, dtype=torch.bool)
hole[8:20, 8:20] = True
model = pconv.load_model("default")  # the packaged model, through the zoo's entry point
out = pconv.inpaint(image, hole, model)
assert torch.equal(out[..., ~hole], image[..., ~hole])
assert "cv2" not in sys.modules
print("ok")
"""
    done = _without_cv2(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("ok")

    # the fill node's module: biharmonic works, telea says what is missing
    code = """
import importlib.util, torch
spec = importlib.util.spec_from_file_location("pack_fill", "nodes/fill.py")
fill = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fill)
image, hole = torch.rand(1, 3, 24, 24), torch.zeros(24, 24, dtype=torch.bool)
hole[5:12, 5:12] = True
fill.fill(image, hole, "biharmonic")
try:
    fill.fill(image, hole, "telea")
except fill.MissingDependency as exc:
    print(exc)
"""
    done = _without_cv2(code)
    assert done.returncode == 0, done.stderr
    assert "the telea fill needs OpenCV" in done.stdout

    # the README's offline inpaint command
    photo, mask, out = REPO / "pconv" / "examples" / "coffee.jpg", tmp_path / "m.png", tmp_path
    shutil.copyfile(REPO / "pconv" / "examples" / "coffee_mask.png", mask)
    code = "import sys; from pconv.cli import main; sys.exit(main(sys.argv[1:]))"
    args = ("inpaint", str(photo), "--mask", str(mask), "--output", str(out / "o.png"))
    done = _without_cv2(code, *args)
    assert done.returncode == 0, done.stderr
    assert (out / "o.png").is_file()

    # what does need OpenCV says so, in one line: the mask generators (and `pconv masks`)
    code = "import pconv.masks as m; m.sample_mask('irregular', 64, rng=0)"
    done = _without_cv2(code)
    assert done.returncode != 0 and "MissingDependency" in done.stderr
    assert "the mask generators need OpenCV (cv2)" in done.stderr
    code = "import sys; from pconv.cli import main; sys.exit(main(sys.argv[1:]))"
    done = _without_cv2(code, "masks", str(tmp_path / "masks"), "-n", "1", "--size", "64")
    assert done.returncode == 2, done.stderr
    assert "pconv masks: error: the mask generators need OpenCV" in done.stderr
    assert "Traceback" not in done.stderr


# -- comfy-cli ----------------------------------------------------------------------------


@pytest.mark.slow
def test_comfy_node_validate(tmp_path: Path) -> None:
    cli = comfy_cli()
    tree = checkout(tmp_path / "tree")
    done = _comfy(cli, tree, "validate")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "All validation checks passed" in out, out
    assert "Warning" not in out and "Security warnings" not in out, out
    # and it can fail: without a version it refuses
    text = (tree / "pyproject.toml").read_text()
    (tree / "pyproject.toml").write_text(text.replace('version = "', 'version = "" #', 1))
    assert _comfy(cli, tree, "validate").returncode != 0


@pytest.mark.slow
def test_node_archive_holds_the_pack_and_nothing_else(tmp_path: Path) -> None:
    with zipfile.ZipFile(node_archive(tmp_path)) as archive:
        names = set(archive.namelist())
    for needed in (
        "__init__.py",
        "pyproject.toml",
        "requirements.txt",
        "LICENSE",
        "nodes/extension.py",
        "pconv/inpaint.py",
        "zoo/weights/default.safetensors",
        "example_workflows/pconv_outpaint.json",
        "example_workflows/pconv_outpaint.jpg",
        "example_workflows/api/pconv_outpaint.json",
        "example_workflows/input/pconv_example.png",
    ):
        assert needed in names, needed
    for left_out in ("tests/", "benchmarks/", "docs/images/", "demo/", "train/", ".github/"):
        assert not [n for n in names if n.startswith(left_out)], left_out
