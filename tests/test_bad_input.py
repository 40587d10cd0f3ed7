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
from pconv.errors import DeviceError

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
