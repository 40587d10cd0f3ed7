"""pconv.io's readers and writer on hostile and unusual files: decompression bombs, one-pixel
images, EXIF orientation and metadata, unusable output paths."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pconv.errors import InputError
from pconv.io import DEFAULT_MAX_PIXELS, load_image, load_mask, save_image


def bomb_png(path: Path, width: int = 40000, height: int = 40000, mode: str = "RGB") -> Path:
    """An 8x8 PNG whose IHDR claims ``width`` x ``height`` (CRC fixed, so it looks valid)."""
    buf = io.BytesIO()
    Image.new(mode, (8, 8), 10).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


def test_default_limit_is_pils_default():
    assert Image.MAX_IMAGE_PIXELS == DEFAULT_MAX_PIXELS


@pytest.mark.parametrize("size", [(40000, 40000), (10000, 10000)])  # error, warning variant
@pytest.mark.parametrize("reader", [load_image, load_mask])
def test_decompression_bomb_is_one_clear_error(tmp_path, reader, size):
    bomb = bomb_png(tmp_path / "bomb.png", *size)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL's DecompressionBombWarning must not escape either
        with pytest.raises(InputError, match=r"\d+x\d+ .*over the limit") as info:
            reader(bomb)
    assert info.value.path == bomb and info.value.fix == "max_pixels=N"
    assert f"{size[0]}x{size[1]}" in str(info.value)


def test_max_pixels_lets_a_user_who_means_it_through(tmp_path):
    """Raised limit: the header is believed, so the 8x8 data is then a truncated image."""
    bomb = bomb_png(tmp_path / "bomb.png", 400, 300)
    with pytest.raises(InputError, match="over the limit"):
        load_image(bomb, max_pixels=400 * 300 - 1)
    with pytest.raises(InputError, match="not a readable image"):
        load_image(bomb, max_pixels=400 * 300)
    # a real image over a small limit, and through with the limit off
    ok = tmp_path / "ok.png"
    Image.new("RGB", (50, 40), (1, 2, 3)).save(ok)
    with pytest.raises(InputError, match="50x40 = 2000 pixels"):
        load_image(ok, max_pixels=1999)
    assert load_image(ok, max_pixels=None).shape == (40, 50, 3)
    # a limit above PIL's own: PIL's check must not stand in the way
    # (greyscale, just over twice PIL's limit: PIL's error, not its warning; 182 MB at most)
    big = bomb_png(tmp_path / "big.png", 14000, 13000, mode="L")
    with pytest.raises(InputError, match="not a readable image"):
        load_mask(big, max_pixels=14000 * 13000)
    assert Image.MAX_IMAGE_PIXELS == DEFAULT_MAX_PIXELS  # PIL's global left as it was


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 321, 3), (481, 1, 3), (1, 1), (5, 1, 1)])
def test_save_image_keeps_one_pixel_sides(tmp_path, shape):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, shape, dtype=np.uint8)
    out = tmp_path / "o.png"
    save_image(arr, out)
    back = np.asarray(Image.open(out))
    assert back.shape == (shape if len(shape) == 3 and shape[2] == 3 else shape[:2])
    assert np.array_equal(back.reshape(arr.shape), arr)
