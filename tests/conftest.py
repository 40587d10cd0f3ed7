"""Shared fixtures: real photos shipped with scikit-image / scikit-learn, small models."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/reference.py and friends

from ci import missing

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    """A few real photographs as uint8 RGB arrays of various sizes."""
    from skimage import data
    from sklearn.datasets import load_sample_images

    china, flower = load_sample_images().images  # 427x640
    return {
        "astronaut": data.astronaut(),  # 512x512
        "coffee": data.coffee(),  # 400x600
        "chelsea": data.chelsea(),  # 300x451
        "china": china,
        "flower": flower,
    }


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory, photos) -> Path:
    """The photos as JPEG files in one folder: training data for the trainer's tests."""
    from PIL import Image

    root = tmp_path_factory.mktemp("photos")
    for name, pixels in sorted(photos.items()):
        Image.fromarray(pixels).save(root / f"{name}.jpg")
    return root


@pytest.fixture(scope="session")
def tiny_model():
    """A small random PConv U-Net (depth 5: inputs padded to multiples of 32)."""
    import torch

    from pconv import PConvUNet, UNetConfig

    torch.manual_seed(0)
    return PConvUNet(UNetConfig(depth=5, base_width=8, resolution=128)).eval()


@pytest.fixture
def tiny_model_file(tmp_path, tiny_model) -> Path:
    from pconv import save_model

    return save_model(tiny_model, tmp_path / "tiny.safetensors", {"licence": "test"})


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real photos and the NVIDIA test masks; see its README).

    A user's fresh clone does not have it, so tests that need it skip there, saying why; CI has
    it and must run them, so with ``CI`` set its absence fails them instead.
    """
    if not (SHARED_DATA / "dev" / "masks").is_dir():
        reason = f"{SHARED_DATA} (the project's photos and NVIDIA masks) is not present"
        missing(reason, ", and CI must not skip these tests")
    return SHARED_DATA


@pytest.fixture(scope="session")
def real_inputs(photos, shared_data):
    """``real_inputs(size)``: real photos (centre square, Lanczos) as float64 RGB [0,1] NCHW and
    NVIDIA irregular test masks (one per photo, from small to large holes, border and not) as
    ``valid`` masks, 1 = known, nearest-resized to ``size``."""
    import torch
    from PIL import Image

    mask_ids = (10, 1020, 2030, 5040, 8010, 11030)  # bucket = id // 2000; odd thousands: border

    def make(size: int) -> tuple[torch.Tensor, torch.Tensor]:
        images, valids = [], []
        for (_, photo), mask_id in zip(sorted(photos.items()), mask_ids, strict=False):
            im = Image.fromarray(photo)
            side = min(im.size)
            left, top = (im.width - side) // 2, (im.height - side) // 2
            im = im.crop((left, top, left + side, top + side)).resize((size, size), Image.LANCZOS)
            images.append(torch.from_numpy(np.asarray(im, np.float64) / 255).permute(2, 0, 1))
            with Image.open(shared_data / "dev" / "masks" / f"{mask_id:05d}.png") as m:
                hole = np.asarray(m.convert("L").resize((size, size), Image.NEAREST)) > 127
            valids.append(torch.from_numpy(~hole).to(torch.float64)[None])
        return torch.stack(images), torch.stack(valids)

    return make


@pytest.fixture
def hub_env(tmp_path, monkeypatch):
    """Empty Hub cache and pconv cache in tmp_path; no offline mode; no stray endpoint.

    Shared by the zoo's and pconv.hub's tests: both talk to the loopback Hub through the real
    huggingface_hub client."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("PCONV_CACHE", str(tmp_path / "pconv"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.delenv("PCONV_UPSTREAM_MIRROR", raising=False)
    # huggingface_hub reads HF_HUB_OFFLINE once, at import: the suite may run under
    # HF_HUB_OFFLINE=1 (the README's test command), so switch the client back on explicitly.
    # Only the loopback Hub of these tests is ever reachable.
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    # pconv.hub remembers unreachable hosts for a minute: a loopback port closed in one test
    # may be another test's live Hub
    monkeypatch.setattr("pconv.hub._UNREACHABLE", {})
    return tmp_path


@pytest.fixture
def hub(hub_env, monkeypatch):
    """The loopback Hub of zoo_fixtures.local_hub, as HF_ENDPOINT (and the upstream mirror)."""
    from zoo_fixtures import local_hub

    with local_hub() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("PCONV_UPSTREAM_MIRROR", server.url + "/upstream")
        yield server


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A real ComfyUI or browser is end-to-end by definition: ``-m "not slow"`` leaves it out."""
    for item in items:
        if item.get_closest_marker("comfyui") or item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models on a shared 2-core machine: OpenMP threads only fight over the cores
    (``pytestmark = pytest.mark.usefixtures("one_thread")`` in the trainer's test modules)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _keep_thread_counts():
    """The commands set torch's and OpenCV's thread counts (``--threads``, default auto): a
    test that runs one in-process must not change them for the tests after it."""
    import cv2
    import torch

    before = torch.get_num_threads(), cv2.getNumThreads()
    yield
    if (torch.get_num_threads(), cv2.getNumThreads()) != before:
        torch.set_num_threads(before[0])
        cv2.setNumThreads(before[1])
