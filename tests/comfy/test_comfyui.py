"""The node pack inside a real ComfyUI: workflows POSTed to /prompt, results read back.

Select with ``-m comfyui``; ComfyUI comes from ``tests/comfy/install.sh`` (test time only).
Every workflow here is the example API workflow (``example_workflows/api/pconv_inpaint.json``) or
built from the same nodes, with the tiny random model ``tiny.safetensors`` from the fixture.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from comfyui_harness import (
    EXAMPLE_INPUTS,
    FOREIGN_MODELS,
    OTHER_PACK,
    UI_WORKFLOWS,
    ComfyUIServer,
    copy_example_inputs,
    load_workflow,
)
from PIL import Image

pytestmark = pytest.mark.comfyui

GARBAGE = np.array([0, 255, 0], dtype=np.uint8)  # what the holes hold in the input files


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from skimage import data

    return data.chelsea()[:150, :226]  # 226x150: no side a multiple of anything


def _holes(h: int, w: int) -> np.ndarray:
    hole = np.zeros((h, w), dtype=bool)
    hole[30:60, 40:90] = True  # a block
    yy, xx = np.mgrid[:h, :w]
    hole |= (yy - 110) ** 2 + (xx - 170) ** 2 < 15**2  # a disc
    hole[120:126, 10:120] = True  # a stroke
    return hole


def _write_rgba(path: Path, rgb: np.ndarray, hole: np.ndarray) -> None:
    """The way ComfyUI's mask editor stores a mask: alpha 0 where to fill."""
    rgb = rgb.copy()
    rgb[hole] = GARBAGE
    alpha = np.where(hole, 0, 255).astype(np.uint8)
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(path)


def _write_mask(path: Path, hole: np.ndarray) -> None:
    """A mask file for LoadImageMask's red channel: white = fill."""
    grey = np.where(hole, 255, 0).astype(np.uint8)
    Image.fromarray(np.dstack([grey, grey, grey]), "RGB").save(path)


def _read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def example(image: str, **inpaint: Any) -> dict[str, Any]:
    """The example API workflow, on our input file and the tiny model."""
    prompt = load_workflow("pconv_inpaint.json")
    prompt["1"]["inputs"]["image"] = image
    prompt["2"]["inputs"]["model_name"] = "tiny.safetensors"
    prompt["3"]["inputs"].update(inpaint)
    return prompt


def _ok(entry: dict[str, Any]) -> None:
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)


def _error(entry: dict[str, Any]) -> dict[str, Any]:
    status = entry["status"]
    assert status["status_str"] == "error", json.dumps(status, indent=1)
    errors = [m[1] for m in status["messages"] if m[0] == "execution_error"]
    assert len(errors) == 1, status["messages"]
    return errors[0]


def test_nodes_are_registered(comfyui: ComfyUIServer) -> None:
    info = comfyui.get("/object_info")
    for node_id in ("PConvModelLoader", "PConvInpaint", "PConvMaskPreview"):
        assert info[node_id]["category"] == "inpaint/pconv"
    options = info["PConvModelLoader"]["input"]["required"]["model_name"][1]["options"]
    zoo = {"default", "places2", "celeba-hq", "imagenet", "deepgin-aim2020"}
    assert {*zoo, "tiny.safetensors"} <= set(options)
    assert info["PConvInpaint"]["output"] == ["IMAGE", "MASK"]
    # a file dropped into models/inpaint is listed without a restart
    inpaint = comfyui.base / "models" / "inpaint"
    shutil.copyfile(inpaint / "tiny.safetensors", inpaint / "tiny2.safetensors")
    # other packs' models and broken files next to ours are left out, said once in the log
    shutil.copyfile(inpaint / "mat.safetensors", inpaint / "mat2.safetensors")
    for _ in range(2):
        loader = comfyui.get("/object_info/PConvModelLoader")["PConvModelLoader"]
        options = loader["input"]["required"]["model_name"][1]["options"]
        assert {"tiny.safetensors", "tiny2.safetensors", *zoo} <= set(options)
        assert not {*FOREIGN_MODELS, "mat2.safetensors"} & set(options), options
    log = comfyui.log(tail=10**7)
    skipped = [line for line in log.splitlines() if "left out of the model list" in line]
    for name in (*FOREIGN_MODELS, "mat2.safetensors"):
        assert sum(f"{inpaint.resolve() / name}: " in line for line in skipped) == 1, skipped
    assert "IMPORT FAILED" not in "\n".join(line for line in log.splitlines() if "pconv" in line)
    # the clone's own library is used, ahead of any installed copy; models/inpaint registered
    pack = comfyui.pack.resolve()
    assert f"from {pack / 'pconv'}, its zoo from {pack / 'zoo'} (as " in log
    assert str(comfyui.base.resolve() / "models" / "inpaint") in log


def test_another_pack_keeps_its_own_zoo(comfyui: ComfyUIServer, photo: np.ndarray) -> None:
    """Another pack's top-level ``zoo`` (imported before any pack loads) stays its own, before
    and after our nodes ran, and ours still finds its zoo: the pack claims no generic name."""
    info = comfyui.get("/object_info")
    assert info["OtherZooProbe"]["input"]["required"]["who"][0] == [OTHER_PACK]
    assert {"default", "places2"} <= set(
        info["PConvModelLoader"]["input"]["required"]["model_name"][1]["options"]
    )
    h, w = photo.shape[:2]
    hole = np.zeros((h, w), dtype=bool)
    hole[40:70, 50:100] = True
    _write_rgba(comfyui.base / "input" / "probe.png", photo, hole)
    prompt = example("probe.png")
    prompt["2"]["inputs"]["model_name"] = "default"  # through our zoo: the packaged model
    prompt["90"] = {"class_type": "OtherZooProbe", "inputs": {"who": OTHER_PACK}}
    entry = comfyui.run(prompt)
    _ok(entry)
    report = json.loads(entry["outputs"]["90"]["text"][0])
    assert report["who"] == OTHER_PACK
    assert report["file"] == str((comfyui.base / "custom_nodes" / OTHER_PACK / "zoo.py").resolve())
    assert report["zoo_modules"] == ["zoo"], report  # nothing of ours under the name
    assert report["pconv"] == str(comfyui.pack.resolve() / "pconv" / "__init__.py")
    out = _read(comfyui.output_images(entry, "4")[0])
    assert np.array_equal(out[~hole], photo[~hole])
    assert (out[hole] != GARBAGE).any(axis=-1).mean() > 0.99
    failed = [line for line in comfyui.log(tail=10**7).splitlines() if "IMPORT FAILED" in line]
    assert not [line for line in failed if "pconv" in line or OTHER_PACK in line], failed


def test_example_workflow_fills_the_holes(comfyui: ComfyUIServer, photo: np.ndarray) -> None:
    hole = _holes(*photo.shape[:2])
    _write_rgba(comfyui.base / "input" / "example.png", photo, hole)
    entry = comfyui.run(example("example.png"))
    _ok(entry)
    [saved] = comfyui.output_images(entry, "4")
    out = _read(saved)
    assert out.shape == photo.shape
    assert np.array_equal(out[~hole], photo[~hole])  # known pixels bit-for-bit
    assert (out[hole] != GARBAGE).any(axis=-1).mean() > 0.99  # the holes were filled
    # the same photo with other garbage in the holes gives the same result: hole-agnostic
    other = photo.copy()
    other[hole] = (255, 0, 255)
    Image.fromarray(np.dstack([other, np.where(hole, 0, 255).astype(np.uint8)])).save(
        comfyui.base / "input" / "example2.png"
    )
    entry2 = comfyui.run(example("example2.png"))
    _ok(entry2)
    assert np.array_equal(_read(comfyui.output_images(entry2, "4")[0]), out)
    # the mask preview ran too and shows the holes
    assert entry["outputs"]["5"]["images"][0]["type"] == "temp"


@pytest.mark.parametrize("arch", ["gan-pconv", "deepgin"])
def test_the_seed_networks_load_and_fill(
    comfyui: ComfyUIServer, photo: np.ndarray, arch: str
) -> None:
    # Any registered network is a model file like the U-Net's: listed, loaded, filled, with the
    # known pixels kept and the hole's content ignored; no special case in the nodes.
    import torch

    from pconv import save_model
    from pconv.architectures import get_architecture

    network = get_architecture(arch)
    small = {"gan-pconv": {"base_width": 4, "resolution": 64}, "deepgin": {"base_width": 4}}
    torch.manual_seed(0)
    model = network.build(network.config_type(**small[arch])).eval()
    name = f"seed-{arch}.safetensors"
    save_model(model, comfyui.base / "models" / "inpaint" / name, {"licence": "test"})
    hole = _holes(*photo.shape[:2])
    outs = []
    for garbage in ((255, 0, 255), (0, 255, 0)):
        shown = photo.copy()
        shown[hole] = garbage
        image = f"seed-{arch}-{garbage[0]}.png"
        Image.fromarray(np.dstack([shown, np.where(hole, 0, 255).astype(np.uint8)])).save(
            comfyui.base / "input" / image
        )
        prompt = example(image)
        prompt["2"]["inputs"]["model_name"] = name
        entry = comfyui.run(prompt)
        _ok(entry)
        outs.append(_read(comfyui.output_images(entry, "4")[0]))
    assert np.array_equal(outs[0][~hole], photo[~hole])  # known pixels bit for bit
    assert np.array_equal(outs[0], outs[1])  # whatever the hole held


def test_batch_shared_and_per_image_masks(comfyui: ComfyUIServer, photo: np.ndarray) -> None:
    h, w = photo.shape[:2]
    Image.fromarray(photo).save(comfyui.base / "input" / "plain.png")
    left = np.zeros((h, w), dtype=bool)
    left[20:70, 20:80] = True
    right = np.zeros((h, w), dtype=bool)
    right[60:120, 140:200] = True
    _write_mask(comfyui.base / "input" / "left.png", left)
    _write_mask(comfyui.base / "input" / "right.png", right)
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "plain.png"}},
        "2": {"class_type": "PConvModelLoader", "inputs": {"model_name": "tiny.safetensors"}},
        "10": {"class_type": "LoadImageMask", "inputs": {"image": "left.png", "channel": "red"}},
        "11": {"class_type": "LoadImageMask", "inputs": {"image": "right.png", "channel": "red"}},
        "12": {"class_type": "MaskToImage", "inputs": {"mask": ["10", 0]}},
        "13": {"class_type": "MaskToImage", "inputs": {"mask": ["11", 0]}},
        "14": {"class_type": "ImageBatch", "inputs": {"image1": ["12", 0], "image2": ["13", 0]}},
        "15": {"class_type": "ImageToMask", "inputs": {"image": ["14", 0], "channel": "red"}},
        "16": {"class_type": "RepeatImageBatch", "inputs": {"image": ["1", 0], "amount": 3}},
        # three images, one mask
        "20": {
            "class_type": "PConvInpaint",
            "inputs": {"model": ["2", 0], "image": ["16", 0], "mask": ["10", 0]},
        },
        "21": {"class_type": "SaveImage", "inputs": {"images": ["20", 0], "filename_prefix": "s"}},
        # one image, two masks: one result per mask
        "30": {
            "class_type": "PConvInpaint",
            "inputs": {"model": ["2", 0], "image": ["1", 0], "mask": ["15", 0]},
        },
        "31": {"class_type": "SaveImage", "inputs": {"images": ["30", 0], "filename_prefix": "p"}},
    }
    for node in ("20", "30"):
        prompt[node]["inputs"].update(threshold=0.5, grow=0, feather=0)
    entry = comfyui.run(prompt)
    _ok(entry)
    shared = [_read(p) for p in comfyui.output_images(entry, "21")]
    assert len(shared) == 3
    for out in shared:
        assert np.array_equal(out, shared[0])
        assert np.array_equal(out[~left], photo[~left])
        assert not np.array_equal(out[left], photo[left])
    first, second = (_read(p) for p in comfyui.output_images(entry, "31"))
    assert np.array_equal(first, shared[0])  # same image, same mask, same result
    assert np.array_equal(second[~right], photo[~right])
    assert not np.array_equal(second[right], photo[right])


def test_mismatched_masks(comfyui: ComfyUIServer, photo: np.ndarray) -> None:
    h, w = photo.shape[:2]
    Image.fromarray(photo).save(comfyui.base / "input" / "noalpha.png")
    small = np.zeros((h // 2, w // 2), dtype=bool)
    small[10:30, 20:50] = True  # -> rows 20:60, cols 40:100 at full size
    _write_mask(comfyui.base / "input" / "half.png", small)
    # LoadImage of an image without alpha: a 64x64 empty mask -> the image comes back as it was
    entry = comfyui.run(example("noalpha.png"))
    _ok(entry)
    assert np.array_equal(_read(comfyui.output_images(entry, "4")[0]), photo)
    # a half-size mask is stretched to the image (nearest-neighbour)
    prompt = example("noalpha.png")
    prompt["6"] = {"class_type": "LoadImageMask", "inputs": {"image": "half.png", "channel": "red"}}
    prompt["3"]["inputs"]["mask"] = ["6", 0]
    prompt["7"] = {"class_type": "MaskToImage", "inputs": {"mask": ["3", 1]}}
    prompt["8"] = {
        "class_type": "SaveImage",
        "inputs": {"images": ["7", 0], "filename_prefix": "m"},
    }
    del prompt["5"]
    entry = comfyui.run(prompt)
    _ok(entry)
    out = _read(comfyui.output_images(entry, "4")[0])
    changed = _read(comfyui.output_images(entry, "8")[0])[..., 0] > 127
    expected = np.zeros((h, w), dtype=bool)
    expected[20:60, 40:100] = True
    assert np.array_equal(changed, expected)
    assert np.array_equal(out[~expected], photo[~expected])
    assert not np.array_equal(out[expected], photo[expected])
    assert "the mask was stretched to fit" in comfyui.log()


def test_soft_mask_grow_and_feather(comfyui: ComfyUIServer, photo: np.ndarray) -> None:
    h, w = photo.shape[:2]
    Image.fromarray(photo).save(comfyui.base / "input" / "plain2.png")
    soft = np.zeros((h, w), dtype=np.uint8)
    soft[40:80, 60:120] = 200  # above the threshold (0.78)
    soft[90:100, 60:120] = 100  # below it (0.39): left alone
    Image.fromarray(np.dstack([soft] * 3)).save(comfyui.base / "input" / "soft.png")
    prompt = example("plain2.png", grow=6, feather=3)
    prompt["6"] = {"class_type": "LoadImageMask", "inputs": {"image": "soft.png", "channel": "red"}}
    prompt["3"]["inputs"]["mask"] = ["6", 0]
    del prompt["5"]
    entry = comfyui.run(prompt)
    _ok(entry)
    out = _read(comfyui.output_images(entry, "4")[0]).astype(int)
    grown = np.zeros((h, w), dtype=bool)
    grown[34:86, 54:126] = True  # the block grown by 6 (its corners are cut: a subset is enough)
    assert np.array_equal(out[~grown], photo[~grown])
    assert (out[40:80, 60:120] != photo[40:80, 60:120]).any(axis=-1).mean() > 0.9
    assert np.array_equal(out[90:100], photo[90:100])


def test_bad_inputs_give_clean_errors(comfyui: ComfyUIServer, photo: np.ndarray) -> None:
    h, w = photo.shape[:2]
    _write_rgba(comfyui.base / "input" / "allhole.png", photo, np.ones((h, w), dtype=bool))
    error = _error(comfyui.run(example("allhole.png")))
    assert error["node_type"] == "PConvInpaint"
    assert "covers the whole image" in error["exception_message"]
    assert comfyui.alive()

    # a file that isn't a pconv model is not among the choices; this ComfyUI doesn't check a
    # V3 combo's value against them, so the loader gets it and refuses it: one clear line
    for name, why in (
        ("broken.safetensors", "not a readable safetensors file"),
        ("mat.safetensors", "a safetensors file, but not a pconv model"),
    ):
        foreign = example("allhole.png")
        foreign["2"]["inputs"]["model_name"] = name
        status, body = comfyui.queue(foreign)
        if status == 200:
            error = _error(comfyui.wait(body["prompt_id"]))
            assert error["node_type"] == "PConvModelLoader"
            assert error["exception_type"].endswith("CheckpointError")
            assert f"{name}: {why}" in error["exception_message"]
            assert "\n" not in error["exception_message"].strip()
        else:  # a ComfyUI that checks combo values refuses it before running anything
            assert body["node_errors"]["2"]["errors"][0]["type"] == "value_not_in_list", body
        assert comfyui.alive()

    # the packaged default model: until it ships, a clear CheckpointError, never a dead server
    default = example("allhole.png")
    default["2"]["inputs"]["model_name"] = "default"
    entry = comfyui.run(default)
    if entry["status"]["status_str"] == "error":
        error = _error(entry)
        if error["node_type"] == "PConvModelLoader":
            assert error["exception_type"].endswith(("CheckpointError", "ZooError"))
            assert "default" in error["exception_message"]

    # out of the widget's range: refused by validation (outputs not depending on it may run)
    status, body = comfyui.queue(example("allhole.png", threshold=5.0))
    assert "3" in body["node_errors"], (status, body)
    if status == 200:
        comfyui.wait(body["prompt_id"])
    assert comfyui.alive()

    Image.fromarray(photo).save(comfyui.base / "input" / "plain3.png")
    mismatched = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "plain3.png"}},
        "2": {"class_type": "PConvModelLoader", "inputs": {"model_name": "tiny.safetensors"}},
        "3": {"class_type": "RepeatImageBatch", "inputs": {"image": ["1", 0], "amount": 2}},
        "4": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 8, "height": 8}},
        "5": {"class_type": "RepeatImageBatch", "inputs": {"image": ["6", 0], "amount": 3}},
        "6": {"class_type": "MaskToImage", "inputs": {"mask": ["4", 0]}},
        "7": {"class_type": "ImageToMask", "inputs": {"image": ["5", 0], "channel": "red"}},
        "8": {
            "class_type": "PConvInpaint",
            "inputs": {"model": ["2", 0], "image": ["3", 0], "mask": ["7", 0]},
        },
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "x"}},
    }
    mismatched["8"]["inputs"].update(threshold=0.5, grow=0, feather=0)
    error = _error(comfyui.run(mismatched))
    assert "2 images and 3 masks" in error["exception_message"]
    # and the server still works
    _ok(comfyui.run(example("example.png", threshold=0.6)))


def test_interrupt_stops_a_batch(comfyui: ComfyUIServer, photo: np.ndarray) -> None:
    big = np.tile(photo, (2, 2, 1))  # 452x300
    hole = np.zeros(big.shape[:2], dtype=bool)
    hole[100:200, 150:300] = True
    _write_rgba(comfyui.base / "input" / "big.png", big, hole)
    prompt = example("big.png", threshold=0.55)
    prompt["9"] = {"class_type": "RepeatImageBatch", "inputs": {"image": ["1", 0], "amount": 24}}
    prompt["3"]["inputs"]["image"] = ["9", 0]
    del prompt["5"]
    entry, progress = asyncio.run(comfyui.run_and_interrupt(prompt, node="3", after=1))
    messages = [m[0] for m in entry["status"]["messages"]]
    assert "execution_interrupted" in messages, entry["status"]
    assert progress and max(progress) < 24, progress
    assert "4" not in entry.get("outputs", {})
    assert comfyui.alive()


# -- the example workflows of example_workflows/ ----------------------------------------------


@pytest.fixture(scope="module")
def inputs(comfyui: ComfyUIServer) -> list[str]:
    """The example workflows' input images, copied into ComfyUI's input/ as the docs say."""
    return copy_example_inputs(comfyui.base)


def test_workflow_templates_are_served(comfyui: ComfyUIServer) -> None:
    """ComfyUI's template browser: our UI workflows under the pack's folder, thumbnails too."""
    templates = comfyui.get("/workflow_templates")
    ours = sorted(p.stem for p in UI_WORKFLOWS.glob("*.json"))
    assert sorted(templates[comfyui.pack.name]) == ours
    for name in ours:
        for suffix, start in ((".jpg", b"\xff\xd8\xff"), (".json", b"{")):
            url = f"{comfyui.url}/api/workflow_templates/{comfyui.pack.name}/{name}{suffix}"
            with urllib.request.urlopen(url, timeout=30) as resp:
                assert resp.read().startswith(start), url


def test_outpaint_workflow(comfyui: ComfyUIServer, inputs: list[str]) -> None:
    """Core ImagePadForOutpaint -> PConv Inpaint (the packaged default model), end to end."""
    prompt = load_workflow("pconv_outpaint.json")
    pad = prompt["2"]["inputs"]
    entry = comfyui.run(prompt, timeout=300)
    _ok(entry)
    [saved] = comfyui.output_images(entry, "5")
    out = _read(saved)
    photo = _read(EXAMPLE_INPUTS / prompt["1"]["inputs"]["image"])
    h, w = photo.shape[:2]
    assert out.shape == (h + pad["top"] + pad["bottom"], w + pad["left"] + pad["right"], 3)
    inside = out[pad["top"] : pad["top"] + h, pad["left"] : pad["left"] + w]
    assert np.array_equal(inside, photo)  # the photo itself bit for bit
    border = np.concatenate([out[:, : pad["left"]].reshape(-1, 3), out[h:].reshape(-1, 3)])
    assert (np.abs(border.astype(int) - 128) > 3).any(axis=-1).mean() > 0.5  # not the grey pad
    assert border.std() > 10


def test_regions_are_filled_each_from_its_own_neighbourhood(
    comfyui: ComfyUIServer, inputs: list[str]
) -> None:
    """Four separate holes, one mask: each is filled from a crop around it at native size, so
    changing the picture near one of them changes that fill only."""
    prompt = load_workflow("pconv_regions.json")
    source = EXAMPLE_INPUTS / prompt["1"]["inputs"]["image"]
    rgba = np.asarray(Image.open(source))
    hole = rgba[..., 3] == 0
    regions = _label_boxes(hole)
    assert len(regions) == 4
    entry = comfyui.run(prompt, timeout=300)
    _ok(entry)
    first = _read(comfyui.output_images(entry, "5")[0])
    assert np.array_equal(first[~hole], rgba[..., :3][~hole])
    # the same photo with the sky above the first region painted over (outside every hole)
    changed = rgba.copy()
    y0, _y1, x0, x1 = regions[0]
    changed[: max(0, y0 - 5), max(0, x0 - 30) : x1 + 30, :3] = (250, 20, 20)
    Image.fromarray(changed, "RGBA").save(comfyui.base / "input" / "regions_changed.png")
    prompt["1"]["inputs"]["image"] = "regions_changed.png"
    second_entry = comfyui.run(prompt, timeout=300)
    _ok(second_entry)
    second = _read(comfyui.output_images(second_entry, "5")[0])
    for n, (y0, y1, x0, x1) in enumerate(regions):
        same = np.array_equal(first[y0:y1, x0:x1], second[y0:y1, x0:x1])
        assert same == (n != 0), f"region {n} at {(y0, y1, x0, x1)}"


def _label_boxes(hole: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (y0, y1, x0, x1) of the hole's connected parts, top-left first."""
    from scipy import ndimage

    labels, _count = ndimage.label(hole)
    boxes = [(s[0].start, s[0].stop, s[1].start, s[1].stop) for s in ndimage.find_objects(labels)]
    return sorted(boxes)


def test_prefill_workflow_validates_up_to_the_checkpoint(
    comfyui: ComfyUIServer, inputs: list[str]
) -> None:
    """The diffusion pre-fill: everything validates but the checkpoint, which isn't here; the
    pre-fill part runs."""
    prompt = load_workflow("pconv_prefill_diffusion.json")
    status, body = comfyui.queue(prompt)
    loader = next(k for k, v in prompt.items() if v["class_type"] == "CheckpointLoaderSimple")
    save = next(k for k, v in prompt.items() if v["class_type"] == "SaveImage")
    assert set(body["node_errors"]) == {loader}, body["node_errors"]
    [error] = body["node_errors"][loader]["errors"]
    assert error["type"] == "value_not_in_list" and "ckpt_name" in error["details"], error
    assert body["node_errors"][loader]["dependent_outputs"] == [save]
    if status == 200:  # this ComfyUI queues the outputs that validate: the pre-fill preview
        entry = comfyui.wait(body["prompt_id"], timeout=300)
        _ok(entry)
        assert save not in entry["outputs"]
    needs_checkpoint = {loader}
    for _ in prompt:  # everything downstream of the checkpoint loader
        needs_checkpoint |= {
            k
            for k, v in prompt.items()
            if any(isinstance(x, list) and x[0] in needs_checkpoint for x in v["inputs"].values())
        }
    prefill = {k: v for k, v in prompt.items() if k not in needs_checkpoint}
    assert {v["class_type"] for v in prefill.values()} == {
        "LoadImage",
        "PConvModelLoader",
        "PConvInpaint",
        "PreviewImage",
    }
    entry = comfyui.run(prefill, timeout=300)
    _ok(entry)
    preview = next(k for k, v in prefill.items() if v["class_type"] == "PreviewImage")
    assert entry["outputs"][preview]["images"]


@pytest.mark.parametrize("method", ["biharmonic", "telea", "navier-stokes"])
def test_classical_fill_node(comfyui: ComfyUIServer, inputs: list[str], method: str) -> None:
    prompt = load_workflow("pconv_fill_classical.json")
    prompt["2"]["inputs"]["method"] = method
    rgba = np.asarray(Image.open(EXAMPLE_INPUTS / prompt["1"]["inputs"]["image"]))
    hole = rgba[..., 3] < 128
    entry = comfyui.run(prompt, timeout=120)
    _ok(entry)
    out = _read(comfyui.output_images(entry, "3")[0])
    assert np.array_equal(out[~hole], rgba[..., :3][~hole])
    assert not np.array_equal(out[hole], rgba[..., :3][hole])
