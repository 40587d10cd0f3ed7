"""The pack's logic free of ComfyUI (nodes/core.py, nodes/files.py): runs everywhere."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import pickle
from pathlib import Path
from types import ModuleType

import pytest
import torch
from safetensors.torch import save_file

from pconv import save_model
from pconv.checkpoint import read_metadata
from pconv.errors import InputError

REPO = Path(__file__).resolve().parents[1]


def _load(name: str) -> ModuleType:
    # nodes/core.py and nodes/files.py import nothing of ComfyUI; loaded under a private name,
    # never as `nodes`
    path = REPO / "nodes" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"pconv_comfy_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


core = _load("core")
files = _load("files")


@pytest.mark.parametrize(
    ("images", "masks", "plan"),
    [
        (3, 1, [(0, 0), (1, 0), (2, 0)]),
        (1, 3, [(0, 0), (0, 1), (0, 2)]),
        (2, 2, [(0, 0), (1, 1)]),
        (1, 1, [(0, 0)]),
    ],
)
def test_batch_plan(images: int, masks: int, plan: list[tuple[int, int]]) -> None:
    assert core.batch_plan(images, masks) == plan


def test_batch_plan_refuses_ambiguous_batches() -> None:
    with pytest.raises(InputError, match="2 images and 3 masks"):
        core.batch_plan(2, 3)


def test_mask_shapes() -> None:
    assert core.as_mask_batch(torch.zeros(5, 7)).shape == (1, 5, 7)
    assert core.as_mask_batch(torch.zeros(2, 5, 7)).shape == (2, 5, 7)
    assert core.as_mask_batch(torch.zeros(2, 1, 5, 7)).shape == (2, 5, 7)
    assert core.as_mask_batch(torch.zeros(2, 5, 7, 1)).shape == (2, 5, 7)
    with pytest.raises(InputError):
        core.as_mask_batch(torch.zeros(5))


def test_threshold_binarises_soft_masks() -> None:
    mask = torch.tensor([[[0.0, 0.49, 0.5, 1.0]]])
    assert core.binarise(mask, (1, 4)).tolist() == [[[False, False, True, True]]]
    assert core.binarise(mask, (1, 4), threshold=0.3).tolist() == [[[False, True, True, True]]]
    assert core.DEFAULT_THRESHOLD == 0.5
    with pytest.raises(InputError):
        core.binarise(mask, (1, 4), threshold=0.0)


def test_empty_mask_of_any_size_changes_nothing() -> None:
    # ComfyUI's LoadImage gives a 64x64 zero mask for an image without alpha
    holes = core.binarise(torch.zeros(1, 64, 64), (300, 451))
    assert holes.shape == (1, 300, 451) and not holes.any()


def test_mismatched_mask_is_stretched_nearest() -> None:
    mask = torch.zeros(1, 4, 4)
    mask[0, :2, :2] = 1  # top-left quarter
    holes = core.binarise(mask, (8, 12))
    assert holes.shape == (1, 8, 12)
    assert holes[0, :4, :6].all() and not holes[0, 4:].any() and not holes[0, :, 6:].any()


def test_grow_and_feather() -> None:
    holes = torch.zeros(1, 41, 41, dtype=torch.bool)
    holes[0, 20, 20] = True
    same, alpha0 = core.grow_and_feather(holes, 0, 5)  # feather without grow: nothing to blend
    assert torch.equal(same, holes) and torch.equal(alpha0, holes.float())
    grown, alpha = core.grow_and_feather(holes, 6, 3)
    assert grown[0, 20, 14:27].all() and not grown[0, 20, 13] and not grown[0, 20, 27]
    assert grown.sum() < 13 * 13  # octagon, not the square
    assert ((alpha > 0) == grown).all()  # blends only inside the grown mask
    row = alpha[0, 20, 20:28].tolist()  # centre, then rings 1..6, then outside
    assert row == pytest.approx([1, 1, 1, 1, 0.75, 0.5, 0.25, 0])
    with pytest.raises(InputError):
        core.grow_and_feather(holes, core.MAX_GROW + 1, 0)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_layout_round_trip(channels: int) -> None:
    image = torch.rand(6, 5, channels)
    model_in = core.to_model_layout(image)
    assert model_in.shape == (1, 3, 6, 5)
    back = core.from_model_layout(model_in, image)
    assert back.shape == image.shape
    assert torch.allclose(back, image)


def test_prepare_reports_stretching_only_for_real_masks() -> None:
    images = torch.rand(2, 30, 40, 3)
    _plan, holes, _alpha, stretched = core.prepare(images, torch.zeros(64, 64), 0.5, 0, 0)
    assert holes.shape == (1, 30, 40) and not stretched
    mask = torch.zeros(1, 15, 20)
    mask[0, 5:10, 5:10] = 0.8
    plan, holes, alpha, stretched = core.prepare(images, mask, 0.5, 2, 1)
    assert stretched and plan == [(0, 0), (1, 0)] and holes[0, 10:20, 10:20].all()
    assert alpha.shape == (1, 30, 40)


WORKFLOWS = REPO / "example_workflows"
#: widget values the frontend keeps that a prompt has no input for (a seed's control)
_CONTROLS = {"fixed", "increment", "decrement", "randomize"}


@pytest.mark.parametrize("name", sorted(p.stem for p in WORKFLOWS.glob("*.json")))
def test_example_workflows_agree(name: str) -> None:
    """Each UI-format example and its API-format twin (api/) describe the same graph (the
    browser test checks the same with the frontend's own conversion)."""
    ui = json.loads((WORKFLOWS / f"{name}.json").read_text())
    api = json.loads((WORKFLOWS / "api" / f"{name}.json").read_text())
    nodes = {str(n["id"]): n for n in ui["nodes"]}
    assert {k: v["class_type"] for k, v in api.items()} == {k: n["type"] for k, n in nodes.items()}
    links = {link[0]: link for link in ui["links"]}
    for node_id, node in nodes.items():
        for slot in node.get("inputs", []):
            if slot.get("link") is None:
                continue
            _, origin, origin_slot, target, _, _ = links[slot["link"]]
            assert str(target) == node_id
            assert api[node_id]["inputs"][slot["name"]] == [str(origin), origin_slot]
        linked = {s["name"] for s in node.get("inputs", []) if s.get("link") is not None}
        widgets = [v for k, v in api[node_id]["inputs"].items() if k not in linked]
        values = [v for v in node.get("widgets_values", []) if v not in _CONTROLS]
        assert values[: len(widgets)] == widgets, node_id


def _inpaint_folder(folder: Path, model: torch.nn.Module) -> dict[str, Path]:
    """Ours next to what other packs (and accidents) leave in a shared models/inpaint."""
    paths = {n: folder / n for n in ("ours.safetensors", "mat.safetensors", "lama.safetensors")}
    save_model(model, paths["ours.safetensors"])
    resample = torch.ones(4, 4)  # MAT (comfyui-inpaint-nodes) keys, no metadata at all
    save_file(
        {"synthesis.first_stage.conv_first.conv.resample_filter": resample},
        paths["mat.safetensors"],
        metadata={},
    )
    save_file(
        {"model.weight": torch.zeros(3)}, paths["lama.safetensors"], metadata={"format": "pt"}
    )
    for name, content in (
        ("empty.safetensors", b""),
        ("corrupt.safetensors", b"\x08\x00 not safetensors"),
        ("raw.safetensors", pickle.dumps({"weights": [1, 2, 3]}, protocol=4)),
    ):
        paths[name] = folder / name
        paths[name].write_bytes(content)
    paths["zipped.safetensors"] = folder / "zipped.safetensors"
    torch.save({"w": torch.zeros(2)}, paths["zipped.safetensors"])  # a renamed .pth
    return paths


def test_model_files_lists_only_pconv_models(
    tmp_path: Path, tiny_model: torch.nn.Module, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pconv.comfyui")
    paths = _inpaint_folder(tmp_path, tiny_model)
    names = [*sorted(paths), "gone.safetensors"]  # listed by ComfyUI, deleted since
    calls: list[str] = []

    def check(path: str) -> object:
        calls.append(Path(path).name)
        return read_metadata(path)

    def full_path(name: str) -> str | None:
        return str(paths.get(name, tmp_path / name))

    listing = files.ModelFiles(check)
    assert listing(names, full_path) == ["ours.safetensors"]
    assert sorted(calls) == sorted(paths)  # every header read once
    [record] = caplog.records  # one line for all of them, at info level at most
    assert record.levelno <= logging.INFO
    line = record.getMessage()
    for name in (*paths, "gone.safetensors"):
        assert (name in line) == (name != "ours.safetensors"), name
    assert "pickled" in line and "not a pconv model" in line

    # refreshes are cheap and quiet: no header read again, nothing logged again
    caplog.clear()
    calls.clear()
    for _ in range(3):
        assert listing(names, full_path) == ["ours.safetensors"]
    assert calls == [] and caplog.records == []

    # a changed file is judged again (and logged once); one that became ours is listed
    save_model(tiny_model, paths["mat.safetensors"])
    stat = paths["empty.safetensors"].stat()
    os.utime(paths["empty.safetensors"], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert listing(names, full_path) == ["mat.safetensors", "ours.safetensors"]
    assert sorted(calls) == ["empty.safetensors", "mat.safetensors"]
    [record] = caplog.records
    assert "empty.safetensors" in record.getMessage()
    assert "mat.safetensors" not in record.getMessage()


def test_model_files_never_raise(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    ours = tmp_path / "ours.safetensors"
    save_model(tiny_model, ours)

    def unreadable(path: str) -> object:
        raise PermissionError(13, "Permission denied", path)

    def strange(path: str) -> object:
        raise RuntimeError("the reader gave up")

    def full_path(name: str) -> str | None:
        if name == "unresolvable.safetensors":
            raise KeyError(name)
        return None if name == "none.safetensors" else str(tmp_path / name)

    names = ["ours.safetensors", "unresolvable.safetensors", "none.safetensors"]
    assert files.ModelFiles()(names, full_path) == ["ours.safetensors"]
    assert files.ModelFiles(unreadable)(names, full_path) == []
    assert files.ModelFiles(strange)(names, full_path) == []
    assert "Permission denied" in (files.why_not(str(ours), unreadable) or "")
    assert "RuntimeError" in (files.why_not(str(ours), strange) or "")
    assert files.why_not(str(ours)) is None


# -- PConv Fill (classical): nodes/fill.py -----------------------------------------------------

fill = _load("fill")


def _ramp_and_hole(h: int = 40, w: int = 56) -> tuple[torch.Tensor, torch.Tensor]:
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    image = torch.stack([xx, yy, 0.5 * (xx + yy)])[None].float()
    hole = torch.zeros(h, w, dtype=torch.bool)
    hole[10:25, 12:30] = True
    hole[30:36, 40:50] = True
    return image, hole


@pytest.mark.parametrize("method", list(fill.METHODS))
def test_fill_keeps_known_pixels_and_ignores_the_hole(method: str) -> None:
    if method != "biharmonic":
        pytest.importorskip("cv2")
    image, hole = _ramp_and_hole()
    out = fill.fill(image, hole, method)
    assert out.shape == image.shape
    assert torch.equal(out[..., ~hole], image[..., ~hole])  # bit for bit
    other = image.clone()
    other[..., hole] = torch.tensor([1.0, 0.0, 1.0])[:, None]  # garbage in the holes
    assert torch.equal(fill.fill(other, hole, method), out)
    # a smooth ramp is filled close to itself (the thin-plate fill nearly exactly; the OpenCV
    # ones march inwards in 8 bits, cv2.inpaint itself is compared below)
    assert (out - image)[..., hole].abs().max() < (0.02 if method == "biharmonic" else 0.25)


def test_opencv_fills_are_cv2_inpaint() -> None:
    cv2 = pytest.importorskip("cv2")
    import numpy as np

    image, hole = _ramp_and_hole()
    u8 = np.clip(image[0].permute(1, 2, 0).numpy() * 255 + 0.5, 0, 255).astype(np.uint8)
    u8[hole.numpy()] = 0
    for method, flag in (("telea", cv2.INPAINT_TELEA), ("navier-stokes", cv2.INPAINT_NS)):
        expected = cv2.inpaint(u8, hole.numpy().astype(np.uint8) * 255, 3, flag) / 255.0
        got = fill.fill(image, hole, method)[0].permute(1, 2, 0).numpy()
        assert np.allclose(got[hole.numpy()], expected[hole.numpy()], atol=1e-6), method


def test_opencv_fills_without_cv2_say_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "cv2", None)  # `import cv2` raises ImportError
    with pytest.raises(ImportError):
        import cv2  # noqa: F401
    image, hole = _ramp_and_hole()
    with pytest.raises(fill.MissingDependency, match="telea fill needs OpenCV") as err:
        fill.fill(image, hole, "telea")
    assert "\n" not in str(err.value) and "biharmonic" in str(err.value)
    out = fill.fill(image, hole, "biharmonic")  # needs nothing
    assert torch.equal(out[..., ~hole], image[..., ~hole])
    with pytest.raises(fill.PConvError, match="method must be one of"):
        fill.fill(image, hole, "lama")


# -- downloads on ComfyUI's progress bar: nodes/progress.py -----------------------------------

progress = _load("progress")


def test_progress_class_reports_a_real_download(hub, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the real huggingface_hub client and the loopback Hub: every byte is reported."""
    from pconv import hub as pconv_hub

    data = os.urandom(300_000)
    hub.repos["pconv/progress-test"] = {"model.safetensors": data}
    seen: list[tuple[int, int]] = []
    path = pconv_hub.download(
        "pconv/progress-test",
        "model.safetensors",
        progress=progress.progress_class(lambda done, total: seen.append((done, total))),
    )
    assert path.read_bytes() == data
    assert seen and seen[-1] == (len(data), len(data)), seen[-3:]
    assert all(total == len(data) for _done, total in seen)
    assert [d for d, _t in seen] == sorted(d for d, _t in seen)


def test_progress_class_counts_even_when_tqdm_is_disabled() -> None:
    seen: list[tuple[int, int]] = []
    bar = progress.progress_class(lambda done, total: seen.append((done, total)))(
        total=100, disable=True, unit="B"
    )
    for _ in range(4):
        bar.update(25)
    bar.close()
    assert seen[-1] == (100, 100) and (50, 100) in seen
