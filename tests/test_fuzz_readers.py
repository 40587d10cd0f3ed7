"""Fuzzing the readers of user files: real images and weights, truncated, bit-flipped or with a
patched header. Whatever the bytes, a reader answers with the library's error (one line for the
CLI) or a result, never another exception, never a hang; the CLI then writes nothing.

Bounded on purpose (100 examples in all, each under a deadline): it runs in CI.
"""

from __future__ import annotations

import io
import signal
import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pconv.checkpoint import inspect_weights, read_metadata
from pconv.cli import main
from pconv.errors import CheckpointError, InputError
from pconv.io import load_image, load_mask

pytestmark = pytest.mark.slow

#: Each example must finish well inside this; hypothesis reports slower ones.
DEADLINE_MS = 3000
#: A reader stuck in Python code longer than this is interrupted and the test fails.
HANG_S = 10

#: Sides a patched PNG header claims: empty, small, and far too large (their products stay
#: small unless they are over the pixel limit, so no example asks for gigabytes).
SIDES = st.sampled_from([0, 1, 7, 64, 65535, 40000, 2**31 - 1, 2**32 - 1])

FUZZ = settings(
    max_examples=20,
    deadline=DEADLINE_MS,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # the same examples on every run: a failure reproduces
    database=None,
)


def _png() -> bytes:
    from skimage import data

    buf = io.BytesIO()
    Image.fromarray(data.astronaut()[200:248, 180:244]).save(buf, "PNG")
    return buf.getvalue()


def _jpeg() -> bytes:
    from skimage import data

    buf = io.BytesIO()
    Image.fromarray(data.chelsea()[100:164, 150:230]).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _weights() -> bytes:
    import torch

    from pconv import PConvUNet, UNetConfig, save_model

    torch.manual_seed(0)
    model = PConvUNet(UNetConfig(depth=3, base_width=4, resolution=64))
    with _tmpdir() as folder:
        return save_model(model, folder / "m.safetensors").read_bytes()


@contextmanager
def _tmpdir() -> Iterator[Path]:
    import tempfile

    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


SEEDS: dict[str, Callable[[], bytes]] = {"png": _png, "jpeg": _jpeg, "weights": _weights}
_CACHE: dict[str, bytes] = {}


def seed(kind: str) -> bytes:
    if kind not in _CACHE:
        _CACHE[kind] = SEEDS[kind]()
    return _CACHE[kind]


@st.composite
def mutated(draw: st.DrawFn, kind: str) -> bytes:
    """A real file cut short, with bits flipped, or with bytes of its header overwritten
    (sizes, lengths, JSON of a safetensors header), often several of these at once."""
    data = bytearray(seed(kind))
    header = 8 + struct.unpack("<Q", data[:8])[0] if kind == "weights" else 64
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["truncate", "flip", "patch"]))
        if how == "truncate" and len(data) > 1:
            data = data[: draw(st.integers(0, len(data) - 1))]
        elif how == "flip" and data:
            at = draw(st.integers(0, min(len(data), header) - 1))
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif how == "patch" and data:
            at = draw(st.integers(0, min(len(data), header) - 1))
            patch = draw(st.binary(min_size=1, max_size=8))
            data[at : at + len(patch)] = patch
    return bytes(data)


@st.composite
def resized_png(draw: st.DrawFn) -> bytes:
    """The PNG claiming other sides in a header that stays valid (CRC fixed): empty, one
    pixel, or a decompression bomb; sometimes cut short as well."""
    data = bytearray(seed("png"))
    data[16:24] = struct.pack(">II", draw(SIDES), draw(SIDES))
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    if draw(st.booleans()):
        data = data[: draw(st.integers(33, len(data)))]
    return bytes(data)


@contextmanager
def _no_hang() -> Iterator[None]:
    def stop(_signum: int, _frame: object) -> None:
        raise AssertionError(f"a reader ran for more than {HANG_S} s")

    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(HANG_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _read(path: Path, data: bytes, reader: Callable[[Path], object], allowed: type) -> None:
    path.write_bytes(data)
    with _no_hang():
        try:
            reader(path)
        except allowed as exc:
            assert "\n" not in str(exc) and str(exc).strip()


@FUZZ
@given(data=mutated("png") | mutated("jpeg"))
def test_image_reader(tmp_path, data):
    _read(tmp_path / "f.img", data, load_image, InputError)


@FUZZ
@given(data=mutated("png") | mutated("jpeg"))
def test_mask_reader(tmp_path, data):
    _read(tmp_path / "f.img", data, load_mask, InputError)


@settings(FUZZ, max_examples=20)
@given(data=resized_png())
def test_image_and_mask_readers_on_patched_png_headers(tmp_path, data):
    _read(tmp_path / "f.png", data, load_image, InputError)
    _read(tmp_path / "f.png", data, load_mask, InputError)


@FUZZ
@given(data=mutated("weights"))
def test_weights_header_reader(tmp_path, data):
    _read(tmp_path / "m.safetensors", data, read_metadata, CheckpointError)


@FUZZ
@given(data=mutated("weights"))
def test_weights_inspector(tmp_path, data):
    _read(tmp_path / "m.safetensors", data, inspect_weights, CheckpointError)


@pytest.mark.parametrize("case", ["truncated", "flipped", "patched"])
@pytest.mark.parametrize("which", ["image", "mask"])
def test_cli_writes_nothing_for_a_broken_file(tmp_path, capsys, case, which):
    data = bytearray(_png())
    if case == "truncated":
        data = data[: len(data) // 2]
    elif case == "flipped":
        data[40] ^= 0x10  # in the first IDAT chunk's header: its CRC no longer matches
    else:
        data[16:24] = struct.pack(">II", 0, 7)  # IHDR: a zero width
    broken = tmp_path / "broken.png"
    broken.write_bytes(bytes(data))
    good = tmp_path / "good.png"
    good.write_bytes(_png())
    hole = np.zeros((48, 64), np.uint8)
    hole[10:20, 10:20] = 255
    Image.fromarray(hole).save(tmp_path / "m.png")
    image = broken if which == "image" else good
    mask = broken if which == "mask" else tmp_path / "m.png"
    out = tmp_path / "out"
    args = ["inpaint", str(image), "-m", str(mask), "-o", str(out / "r.png")]
    assert main([*args, "--model", str(tmp_path / "none.safetensors")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "broken.png" in err[0] and "Traceback" not in err[0]
    assert not out.exists()
