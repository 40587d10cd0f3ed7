"""Bad input tried as a new user would (issue 26's second round): each case ends in one line
naming the problem (exit status 2 at a command, a pconv error in the library), never a
traceback, never lost or half-written output. docs/bad-input.md lists every case tried."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import pconv
from pconv.cli import main
from pconv.errors import DeviceError, PConvError

#: a device no torch has, and one index past the GPUs this machine has (none on a CPU build)
TYPO = "gpu"
MISSING_GPU = f"cuda:{torch.cuda.device_count()}"


def _save(arr: np.ndarray, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def _hole(shape: tuple[int, ...]) -> np.ndarray:
    hole = np.zeros(shape[:2], dtype=bool)
    hole[20:60, 30:90] = True
    return hole


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


# -- devices ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", [TYPO, MISSING_GPU])
def test_a_device_this_torch_lacks_is_one_error_naming_those_it_has(device):
    with pytest.raises(DeviceError) as info:
        pconv.pick_device(device)
    assert device in str(info.value) and "auto, cpu" in str(info.value)
    assert "\n" not in str(info.value)
    assert pconv.pick_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("device", [TYPO, MISSING_GPU])
def test_inpaint_and_load_model_raise_a_device_error(device, photos, tiny_model, tiny_model_file):
    image = photos["chelsea"]
    with pytest.raises(DeviceError):
        pconv.inpaint(image, _hole(image.shape), tiny_model, device=device)
    with pytest.raises(DeviceError):
        pconv.load_model(tiny_model_file, device=device)
    with pytest.raises(DeviceError):  # before the zoo is asked (no download for nothing)
        pconv.load_model("places2", device=device)


@pytest.mark.parametrize("device", [TYPO, MISSING_GPU])
def test_commands_say_which_devices_there_are(device, tmp_path, photos, tiny_model_file, capsys):
    image = _save(photos["chelsea"], tmp_path / "photo.png")
    mask = _save(_hole(photos["chelsea"].shape).astype(np.uint8) * 255, tmp_path / "mask.png")
    out = tmp_path / "out.png"
    run = ["inpaint", str(image), "-m", str(mask), "-o", str(out), "--model", str(tiny_model_file)]
    assert main([*run, "--device", device]) == 2
    assert "auto, cpu" in _one_line(capsys) and not out.exists()

    from train.cli import main as train

    run_dir = tmp_path / "run"
    data = ["--data", str(image.parent), "--output", str(run_dir), "--steps", "1"]
    assert train([*data, "--perceptual", "none", "--workers", "0", "--device", device]) == 2
    assert "auto, cpu" in _one_line(capsys) and not run_dir.exists()

    from demo.__main__ import main as demo

    assert demo(["--device", device, "--no-zoo"]) == 2
    assert "auto, cpu" in _one_line(capsys)


# -- mask arrays with channels ---------------------------------------------------------------------


def _mask_files(tmp_path, shape: tuple[int, ...]) -> dict[str, object]:
    """One hole drawn four ways: a white RGB mask, a red RGB brush, a colourless RGBA brush
    layer (only its alpha draws) and a grey PNG."""
    hole = _hole(shape)
    rgb = np.repeat(hole[..., None], 3, axis=2).astype(np.uint8) * 255
    red = np.zeros_like(rgb)
    red[..., 0] = hole * 255
    layer = np.zeros((*shape[:2], 4), dtype=np.uint8)
    layer[..., 3] = hole * 255
    grey = hole.astype(np.uint8) * 255
    return {
        name: _save(arr, tmp_path / f"{name}.png")
        for name, arr in {"rgb": rgb, "red": red, "layer": layer, "grey": grey}.items()
    }


def test_mask_arrays_with_channels_are_read_as_mask_files(tmp_path, photos, tiny_model):
    from pconv.io import load_mask

    image = photos["chelsea"]
    expected = pconv.inpaint(image, _hole(image.shape), tiny_model)
    for name, path in _mask_files(tmp_path, image.shape).items():
        assert np.array_equal(load_mask(path), _hole(image.shape)), name
        array = np.asarray(Image.open(path))  # [H,W,3], [H,W,4] or [H,W]
        assert np.array_equal(pconv.inpaint(image, array, tiny_model), expected), name
        with Image.open(path) as pil:  # a PIL mask with alpha is read by its alpha too
            assert np.array_equal(pconv.inpaint(image, pil, tiny_model), expected), name
    rgb = np.asarray(Image.open(tmp_path / "rgb.png"))
    batch = pconv.inpaint(np.stack([image, image]), np.stack([rgb, rgb]), tiny_model)
    assert np.array_equal(batch[1], expected)  # [B,H,W,3] masks, one per image
    tensor = pconv.inpaint(image, torch.from_numpy(rgb.copy()), tiny_model)  # a tensor [H,W,3] too
    assert np.array_equal(tensor, expected)


def test_mask_shapes_that_cannot_be_read_say_which_can(photos, tiny_model):
    image = photos["chelsea"]
    h, w = image.shape[:2]
    for shape in [(2, 3, h, w, 1), (h,), (3, h, w)]:
        with pytest.raises(PConvError) as info:
            pconv.inpaint(image, np.zeros(shape, dtype=bool), tiny_model)
        assert "[H,W,C]" in str(info.value) and "[B,H,W]" in str(info.value), shape
