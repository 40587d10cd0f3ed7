"""Bad input tried as a new user would (issue 26's second round): each case ends in one line
naming the problem (exit status 2 at a command, a pconv error in the library), never a
traceback, never lost or half-written output. docs/bad-input.md lists every case tried."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import pconv
from pconv.cli import main
from pconv.errors import DeviceError, PConvError

REPO = Path(__file__).resolve().parents[1]
#: a device no torch has, and one index past the GPUs this machine has (none on a CPU build)
TYPO = "gpu"
MISSING_GPU = f"cuda:{torch.cuda.device_count()}"


@pytest.fixture
def photo(photos) -> np.ndarray:
    """A real photo, small enough that a dozen fills cost little."""
    return np.ascontiguousarray(photos["chelsea"][:128, :160])


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
def test_inpaint_and_load_model_raise_a_device_error(device, photo, tiny_model, tiny_model_file):
    image = photo
    with pytest.raises(DeviceError):
        pconv.inpaint(image, _hole(image.shape), tiny_model, device=device)
    with pytest.raises(DeviceError):
        pconv.load_model(tiny_model_file, device=device)
    with pytest.raises(DeviceError):  # before the zoo is asked (no download for nothing)
        pconv.load_model("places2", device=device)


@pytest.mark.parametrize("device", [TYPO, MISSING_GPU])
def test_commands_say_which_devices_there_are(device, tmp_path, photo, tiny_model_file, capsys):
    image = _save(photo, tmp_path / "photo.png")
    mask = _save(_hole(photo.shape).astype(np.uint8) * 255, tmp_path / "mask.png")
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


def test_mask_arrays_with_channels_are_read_as_mask_files(tmp_path, photo, tiny_model):
    from pconv.io import load_mask

    image = photo
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


def test_mask_shapes_that_cannot_be_read_say_which_can(photo, tiny_model):
    image = photo
    h, w = image.shape[:2]
    for shape in [(2, 3, h, w, 1), (h,), (3, h, w)]:
        with pytest.raises(PConvError) as info:
            pconv.inpaint(image, np.zeros(shape, dtype=bool), tiny_model)
        assert "[H,W,C]" in str(info.value) and "[B,H,W]" in str(info.value), shape


# -- transparency ----------------------------------------------------------------------------------


def _transparent(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` with an alpha channel: clear on the left, half on a band, opaque elsewhere."""
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[:, :40] = 0
    alpha[:, 40:80] = 128
    return np.dstack([rgb, alpha])


def test_the_api_keeps_the_alpha_channel_as_it_was(photo, tiny_model):
    rgba = _transparent(photo)
    hole = _hole(rgba.shape)  # crosses the clear, the half and the opaque parts
    known = ~hole
    out = pconv.inpaint(rgba, hole, tiny_model)
    assert out.shape == rgba.shape and out.dtype == np.uint8
    assert np.array_equal(out[..., 3], rgba[..., 3])  # holes keep their alpha too
    assert np.array_equal(out[known], rgba[known])  # known pixels: all four channels
    assert not np.array_equal(out[hole][:, :3], rgba[hole][:, :3])
    as_float = pconv.inpaint(rgba / 255.0, hole, tiny_model)
    assert np.array_equal(as_float[..., 3], rgba[..., 3] / 255.0)

    pil = pconv.inpaint(Image.fromarray(rgba), hole, tiny_model)
    assert pil.mode == "RGBA" and np.array_equal(np.asarray(pil), out)
    grey_alpha = Image.fromarray(rgba).convert("LA")
    result = pconv.inpaint(grey_alpha, hole, tiny_model)
    assert result.mode == "RGBA"
    assert np.array_equal(np.asarray(result)[..., 3], np.asarray(grey_alpha)[..., 1])
    opaque = pconv.inpaint(Image.fromarray(photo), hole, tiny_model)
    assert opaque.mode == "RGB"  # no alpha invented


def test_the_cli_keeps_alpha_and_notes_a_jpeg_that_cannot(tmp_path, photo, tiny_model_file, capsys):
    rgba = _transparent(photo)
    src = _save(rgba, tmp_path / "in" / "a.png")
    _save(rgba, tmp_path / "in" / "b.png")
    hole = _hole(rgba.shape)
    mask = _save(hole.astype(np.uint8) * 255, tmp_path / "m.png")
    model = ["--model", str(tiny_model_file)]
    assert main(["inpaint", str(src), "-m", str(mask), "-o", str(tmp_path / "a.png"), *model]) == 0
    out = np.asarray(Image.open(tmp_path / "a.png"))
    assert out.shape == rgba.shape and np.array_equal(out[..., 3], rgba[..., 3])
    assert np.array_equal(out[~hole], rgba[~hole])
    assert capsys.readouterr().err == ""
    assert main(["inpaint", str(src), "-m", str(mask), "-o", str(tmp_path / "a.jpg"), *model]) == 0
    note = _one_line(capsys)
    assert "note: JPEG has no transparency" in note and "a.png" in note
    with Image.open(tmp_path / "a.jpg") as jpeg:
        assert jpeg.mode == "RGB"
    folder = ["inpaint", str(src.parent), "-m", str(mask), "-o", str(tmp_path / "jpegs")]
    assert main([*folder, "--format", "jpg", *model]) == 0
    assert capsys.readouterr().err.count("note: JPEG") == 1  # once a folder, not once a photo


def test_the_demo_keeps_alpha(tmp_path, photo, tiny_model):
    from demo import processing as proc

    rgba = _transparent(photo)
    photo, note = proc.read_photo(_save(rgba, tmp_path / "a.png"))
    assert note is None and np.array_equal(photo, rgba)
    hole = _hole(rgba.shape)
    result = proc.run_job(proc.make_job(rgba, hole, None), tiny_model, "cpu")
    assert np.array_equal(result.image[..., 3], rgba[..., 3])
    assert np.array_equal(result.image[~hole], rgba[~hole])
    written = proc.write_png(result.image, tmp_path / "out", "inpainted.png")
    assert np.array_equal(np.asarray(Image.open(written)), result.image)
    opaque = np.dstack([photo, np.full(hole.shape, 255, np.uint8)])
    assert proc.photo_from_array(opaque).shape[-1] == 3  # opaque alpha carries nothing


# -- long names ------------------------------------------------------------------------------------


def _never_load(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("the model was loaded although the run had to be refused first")


@pytest.mark.parametrize("name", ["x" * 251 + ".png", "é" * 125 + ".png"])  # 255 and 254 bytes
def test_the_longest_names_are_written_atomically(tmp_path, name):
    from pconv.files import write_bytes

    path = write_bytes(tmp_path / name, b"data")
    assert path.read_bytes() == b"data"
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary left beside it


def test_a_long_output_name_is_written_and_a_too_long_one_refused(
    tmp_path, photo, tiny_model_file, capsys, monkeypatch
):
    image = _save(photo, tmp_path / "photo.png")
    mask = _save(_hole(photo.shape).astype(np.uint8) * 255, tmp_path / "mask.png")
    run = ["inpaint", str(image), "-m", str(mask), "--model", str(tiny_model_file)]
    long = tmp_path / ("x" * 246 + ".png")  # 250 characters
    assert main([*run, "-o", str(long)]) == 0
    assert long.is_file()
    capsys.readouterr()

    monkeypatch.setattr("pconv.cli.inpaint.load_model", _never_load)
    before = sorted(tmp_path.iterdir())
    for too_long in (tmp_path / ("y" * 300 + ".png"), tmp_path / ("z" * 300) / "out.png"):
        assert main([*run, "-o", str(too_long)]) == 2
        assert "shorten it" in _one_line(capsys)
        assert main(["inpaint", str(too_long), "-m", str(mask), "-o", str(tmp_path / "o.png")]) == 2
        assert "shorten it" in _one_line(capsys)
    assert main(["masks", str(tmp_path / ("w" * 300)), "-n", "1", "--size", "64"]) == 2
    assert "File name too long" in _one_line(capsys)
    assert sorted(tmp_path.iterdir()) == before


# -- zoo names without a route to the Hub ----------------------------------------------------------


@pytest.fixture
def no_route(hub_env, monkeypatch):
    """The Hub and the upstream mirror on a loopback port where nothing listens."""
    import socket

    with socket.socket() as probe:  # a free port, closed again: connections are refused
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.setenv("PCONV_UPSTREAM_MIRROR", url)
    return url


def _no_retries(caplog) -> None:
    assert not [r.getMessage() for r in caplog.records if "Retry" in r.getMessage()]


def test_a_zoo_name_without_a_route_fails_at_once_with_the_fix(
    no_route, tmp_path, photo, capsys, caplog
):
    image = _save(photo, tmp_path / "photo.png")
    mask = _save(_hole(photo.shape).astype(np.uint8) * 255, tmp_path / "mask.png")
    out = tmp_path / "out.png"
    assert main(["inpaint", str(image), "-m", str(mask), "-o", str(out), "--model", "places2"]) == 2
    line = _one_line(capsys)
    for part in (
        "places2",
        "be reached from here",
        "python -m zoo download places2",
        "HF_HUB_OFFLINE",
    ):
        assert part in line, line
    _no_retries(caplog)
    assert not out.exists()


def test_the_nodes_and_the_demo_get_the_same_line(no_route, caplog):
    """The nodes call the zoo's resolve_entry, the demo zoo.resolve: the same one line."""
    from demo.models import ModelStore, model_choices
    from zoo.hub import resolve_entry
    from zoo.registry import get_entry

    with pytest.raises(PConvError) as node:
        resolve_entry(get_entry("celeba-hq"))
    store = ModelStore(model_choices(), device="cpu")
    with pytest.raises(PConvError) as demo:
        store.get("celeba-hq")
    for err in (node.value, demo.value):
        assert "python -m zoo download celeba-hq" in str(err) and "\n" not in str(err)
    _no_retries(caplog)


def test_without_a_route_the_hub_cache_still_serves(hub, monkeypatch, caplog):
    from pconv import hub as pconv_hub

    hub.repos["someone/cached"] = {"model.safetensors": b"weights"}
    path = pconv_hub.download("someone/cached", "model.safetensors", "main")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard: nothing listens
    assert pconv_hub.download("someone/cached", "model.safetensors", "main") == path
    with pytest.raises(pconv_hub.HubUnreachable) as info:
        pconv_hub.download("someone/cached", "other.safetensors", "main")
    assert "cannot be reached" in str(info.value)
    _no_retries(caplog)


# -- smaller things --------------------------------------------------------------------------------


def test_half_precision_on_the_cpu_is_said_once_to_be_slow(photo, tiny_model, monkeypatch, caplog):
    monkeypatch.setattr("pconv.precision._NOTED", set())
    hole = _hole(photo.shape)
    for _ in range(2):
        pconv.inpaint(photo, hole, tiny_model, dtype="bf16", device="cpu")
    pconv.inpaint(photo, hole, tiny_model, dtype="fp32", device="cpu")
    notes = [r.getMessage() for r in caplog.records if "slower than fp32" in r.getMessage()]
    assert len(notes) == 1 and "bf16 on the CPU" in notes[0], notes


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert (
        capsys.readouterr().out.strip() == f"pconv {pconv.__version__} (torch {torch.__version__})"
    )


def test_the_trainer_names_flags_and_counts_files(tmp_path, photo, capsys, caplog):
    from pconv.losses.backbones import resolve_backbone

    resolve_backbone("auto", offline=True, cache_dir=str(tmp_path), stlpips_package="no_such_pkg")
    hint = " ".join(r.getMessage() for r in caplog.records)
    assert "--perceptual vgg16-file:PATH" in hint, hint

    from train.cli import main as train

    data = tmp_path / "data"
    whole = _save(photo, data / "cut.png").read_bytes()
    (data / "cut.png").write_bytes(whole[: len(whole) // 2])  # opens, does not decode
    (data / "text.png").write_text("not an image")  # does not open
    run = ["--data", str(data), "--output", str(tmp_path / "run"), "--steps", "1"]
    assert train([*run, "--perceptual", "none", "--workers", "0"]) == 2
    line = _one_line(capsys)
    assert "none of the 2 images" in line and "1 open" in line and "1 do not open" in line


def test_the_opencv_hint_is_the_readme_s(monkeypatch):
    import sys

    from pconv.errors import MissingDependency
    from pconv.masks import opencv

    monkeypatch.setitem(sys.modules, "cv2", None)  # as if it were not installed
    with pytest.raises(MissingDependency) as info:
        opencv.load()
    readme = (REPO / "README.md").read_text()
    assert 'pip install -e ".[train]"' in readme and '".[train]"' in str(info.value)
    assert "pconv[masks]" not in str(info.value)  # a name for PyPI, where pconv is not


def test_the_unknown_extension_message_lists_what_is_accepted(tmp_path):
    from pconv.io import IMAGE_SUFFIXES, output_format

    with pytest.raises(PConvError) as info:
        output_format(tmp_path / "out.xyz")
    for suffix in IMAGE_SUFFIXES:
        assert suffix in str(info.value)
        output_format(tmp_path / f"out{suffix}")  # and each one listed is accepted


def test_every_zoo_option_has_help():
    import argparse

    from zoo.cli import build_parser

    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    silent = [
        f"{name} {action.dest}"
        for name, parser in sub.choices.items()
        for action in parser._actions
        if not action.help and not isinstance(action, argparse._HelpAction)
    ]
    assert not silent


def _blocks(section: str) -> list[str]:
    """The ```bash blocks of a README section."""
    text = (REPO / "README.md").read_text().split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return [b.split("```", 1)[0] for b in text.split("```bash\n")[1:]]


def test_the_readme_set_up_is_copyable_and_leaves_the_checkout_clean():
    import shutil
    import subprocess

    (first,) = _blocks("Inpaint a photo (default model, offline)")
    lines = first.strip().splitlines()
    cpu = "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
    assert cpu in lines  # its own command, not inside a one-liner or the prose
    assert cpu in _blocks("Run the tests")[0].splitlines()
    output = lines[-1].split("--output ", 1)[1].split()[0]
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(["git", "check-ignore", "-q", output], cwd=REPO, check=False)
    assert ignored.returncode == 0, f"{output} would show in git status"
    tests = (REPO / "README.md").read_text().split("## Run the tests\n", 1)[1].split("\n## ")[0]
    assert "../shared/data" in tests and "GB of disk" in tests and "minutes" in tests
