"""What the demo does with a photo and a mask, without any user interface.

Masks: **white / painted = fill**. From the editor, a pixel is to be filled where any painted
layer is not fully transparent (alpha > 0), whatever the brush colour; an uploaded mask file is
read like ``pconv inpaint --mask`` reads it (:func:`pconv.io.load_mask`: white = fill, binarised
at 0.5, a transparent brush layer's alpha counts). When both are given, their union is filled.

Transparent photos stay transparent: the alpha channel comes back exactly as it was, holes
included (only the colour is filled), and the result is an RGBA PNG.

Big photos: the long side is capped (:data:`MAX_SIDE`, ``--max-side``): a bigger photo is scaled
down to it before inpainting, and the notes say so. Files with more than :data:`MAX_PIXELS`
pixels are refused before they are decoded, so memory stays bounded.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import nn

import pconv
from pconv.errors import InputError, PConvError
from pconv.holes import fills_everything, nothing_to_fill
from pconv.io import load_mask, read_image, resize_mask, save_image, to_uint8

#: Photos with a longer side than this are scaled down before inpainting.
MAX_SIDE = 4096
#: Image files with more pixels than this are refused without being decoded.
MAX_PIXELS = 64_000_000

NO_PHOTO = "No photo: upload one (or pick an example) first."
NO_MASK = "No mask: upload a mask file (white = fill) with the photo."
NOTHING_PAINTED = (
    "Nothing was painted, so the photo comes back unchanged: paint over what should "
    "disappear (or upload a mask, white = fill) and press Inpaint again."
)
FULL_MASK = (
    "The mask covers the whole photo: nothing is left to fill it from. "
    "Leave part of the photo unpainted."
)


class DemoError(PConvError):
    """Something the user can fix; its message is shown as it is."""


@dataclass
class Job:
    """A photo and the pixels to fill, ready to inpaint."""

    image: np.ndarray  # uint8 [H, W, 3], or [H, W, 4] for a transparent photo
    hole: np.ndarray  # bool [H, W], True = fill
    notes: list[str] = field(default_factory=list)  # things the user should know (downscaling)


@dataclass
class Result:
    image: np.ndarray  # uint8 [H, W, 3] or [H, W, 4], as the job's
    hole: np.ndarray
    seconds: float
    notes: list[str]

    @property
    def filled_fraction(self) -> float:
        return float(self.hole.mean())


# -- reading ---------------------------------------------------------------------------------------


def check_file(path: str | os.PathLike[str], what: str) -> tuple[int, int]:
    """Size of an image file from its header; refuse unreadable and oversized files."""
    name = Path(path).name
    try:
        with Image.open(path) as img:
            size = img.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        message = f"The {what} {name!r} is not a readable image (PNG, JPEG, WebP ...)."
        raise DemoError(message) from None
    except Image.DecompressionBombError:
        size = (MAX_PIXELS, MAX_PIXELS)
    if size[0] * size[1] > MAX_PIXELS:
        raise DemoError(
            f"The {what} {name!r} is {size[0]}x{size[1]} pixels; the demo accepts up to "
            f"{MAX_PIXELS / 1e6:.0f} megapixels."
        )
    return size


def _decode_reduced(
    path: str | os.PathLike[str], size: tuple[int, int], max_side: int
) -> Image.Image:
    """Decode a file bigger than ``max_side`` at a reduced size: JPEGs are decoded small
    directly (``draft``), others are reduced by an integer factor right after decoding."""
    factor = max(1, max(size) // max_side)
    img = Image.open(path)
    if img.format == "JPEG":
        img.draft("RGB", (max(1, size[0] // factor), max(1, size[1] // factor)))
    img.load()
    if img.mode.startswith("I"):  # 16/32-bit integers: keep the top 8 bits
        img = img.convert("I").point(lambda v: v / 256).convert("L")
    elif img.mode == "F":  # floats in [0, 1]
        img = img.point(lambda v: v * 255).convert("L")
    elif img.mode not in ("L", "LA", "RGB", "RGBA"):  # "1", palettes, CMYK ...
        img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
    reduce = max(1, max(img.size) // max_side)
    return img.reduce(reduce) if reduce > 1 else img


def _unreadable(what: str, path: str | os.PathLike[str], exc: Exception) -> DemoError:
    """The reason without the server-side path that ``pconv.io`` puts in front of it."""
    reason = exc.reason if isinstance(exc, InputError) else f"({exc})"
    if not reason.startswith("not a readable image"):
        reason = f"not a readable image {reason}"
    return DemoError(f"The {what} {Path(path).name!r} is {reason}.")


def read_photo(
    path: str | os.PathLike[str], max_side: int = MAX_SIDE
) -> tuple[np.ndarray, str | None]:
    """An image file as uint8 RGB (RGBA where it is transparent), capped to ``max_side``
    (with a note when it was)."""
    size = check_file(path, "photo")
    try:
        if max(size) <= max_side:
            return photo_from_array(to_uint8(read_image(path)[0])), None
        img = _decode_reduced(path, size, max_side)
    except (InputError, OSError, SyntaxError, ValueError) as exc:
        raise _unreadable("photo", path, exc) from None
    return cap_photo(photo_from_array(np.asarray(img)), max_side, original=size)


def read_mask(path: str | os.PathLike[str], max_side: int = MAX_SIDE) -> np.ndarray:
    """A mask file as bool, True = fill (white), read as :func:`pconv.io.load_mask` reads it;
    one bigger than ``max_side`` is first scaled down (area average), then read."""
    size = check_file(path, "mask")
    try:
        if max(size) <= max_side:
            return load_mask(path)
        img = _decode_reduced(path, size, max_side)
        with tempfile.TemporaryDirectory(prefix="pconv-demo-") as tmp:
            small = Path(tmp) / "mask.png"
            img.save(small)
            return load_mask(small)
    except (InputError, OSError, SyntaxError, ValueError) as exc:
        raise _unreadable("mask", path, exc) from None


def photo_from_array(array: np.ndarray) -> np.ndarray:
    """The editor's background (uint8 RGB/RGBA/grey) as uint8 RGB, or RGBA where it is
    transparent: the alpha goes through the fill as it was (:func:`pconv.inpaint`), so the
    result is transparent where the photo was."""
    arr = np.asarray(array)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    alpha = arr[..., -1:] if arr.shape[-1] in (2, 4) else None
    if alpha is not None and (alpha == 255).all():  # opaque: nothing to keep
        alpha = None
    colour = arr[..., :-1] if arr.shape[-1] in (2, 4) else arr
    if colour.shape[-1] == 1:
        colour = np.repeat(colour, 3, axis=-1)
    rgb = colour[..., :3]
    return np.ascontiguousarray(rgb if alpha is None else np.concatenate([rgb, alpha], axis=-1))


def mask_from_layers(layers: Sequence[np.ndarray | None]) -> np.ndarray | None:
    """Union of the painted layers: True where any layer's alpha is > 0. None if no layers."""
    hole = None
    for layer in layers:
        if layer is None:
            continue
        arr = np.asarray(layer)
        if arr.ndim == 3 and arr.shape[-1] in (2, 4):
            painted = arr[..., -1] > 0
        else:  # a layer without alpha: anything not black counts as paint
            painted = (arr.max(axis=-1) if arr.ndim == 3 else arr) > 0
        if hole is None:
            hole = painted
        elif hole.shape == painted.shape:
            hole = hole | painted
        else:
            hole = hole | resize_mask(painted, (hole.shape[1], hole.shape[0]), keep_strokes=True)
    return hole


# -- sizes -----------------------------------------------------------------------------------------


def cap_photo(
    image: np.ndarray, max_side: int, original: tuple[int, int] | None = None
) -> tuple[np.ndarray, str | None]:
    """Scale a photo down so that its long side is at most ``max_side``; a note if it was.

    ``original``: the (width, height) of the file, when ``image`` was already decoded smaller.
    """
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        if original is None or original == (w, h):
            return image, None
        w0, h0 = original
        return image, (
            f"The photo is {w0}x{h0} pixels: it was scaled down to {w}x{h} "
            f"(this demo's limit is {max_side} pixels on the long side), and so is the result."
        )
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))
    w0, h0 = original or (w, h)
    note = (
        f"The photo is {w0}x{h0} pixels: it was scaled down to {size[0]}x{size[1]} "
        f"(this demo's limit is {max_side} pixels on the long side), and so is the result."
    )
    return small, note


def make_job(
    image: np.ndarray | None,
    painted: np.ndarray | None,
    uploaded: np.ndarray | None,
    max_side: int = MAX_SIDE,
    *,
    notes: Sequence[str] = (),
    original_size: tuple[int, int] | None = None,
) -> Job:
    """Check and combine the inputs: the capped photo and the union of both masks.

    ``notes`` and ``original_size`` (width, height) come from :func:`read_photo` when the photo
    was read from a file (and perhaps already scaled down there).
    """
    if image is None:
        raise DemoError(NO_PHOTO)
    photo = photo_from_array(image)
    original = original_size or (photo.shape[1], photo.shape[0])
    photo, note = cap_photo(photo, max_side)
    all_notes = [*notes, *([note] if note else [])]
    h, w = photo.shape[:2]
    hole = np.zeros((h, w), dtype=bool)
    if painted is not None:
        hole |= resize_mask(np.asarray(painted, dtype=bool), (w, h), keep_strokes=True)
    if uploaded is not None:
        uploaded = np.asarray(uploaded, dtype=bool)
        mh, mw = uploaded.shape
        if abs(mw / mh - original[0] / original[1]) > 0.01 * original[0] / original[1]:
            all_notes.append(
                f"The mask ({mw}x{mh} pixels) and the photo ({original[0]}x{original[1]}) have "
                "different shapes: the mask was stretched to fit."
            )
        hole |= resize_mask(uploaded, (w, h), keep_strokes=True)
    if fills_everything(hole):  # an empty mask is fine: run_job returns the photo unchanged
        raise DemoError(FULL_MASK)
    return Job(photo, hole, all_notes)


# -- running and writing ---------------------------------------------------------------------------


def run_job(job: Job, model: nn.Module, device: str | torch.device | None = "auto") -> Result:
    """Inpaint; known pixels come back unchanged (the core guarantees it). An empty mask gives
    the photo back as it is, with a note saying so (:mod:`pconv.holes`' policy)."""
    if nothing_to_fill(job.hole):
        return Result(job.image.copy(), job.hole, 0.0, [*job.notes, NOTHING_PAINTED])
    start = time.perf_counter()
    try:
        out = pconv.inpaint(job.image, job.hole, model, device=device)
    except InputError as exc:
        raise DemoError(str(exc)) from None
    seconds = time.perf_counter() - start
    return Result(np.asarray(out), job.hole, seconds, list(job.notes))


def write_png(image: np.ndarray, folder: Path, name: str) -> Path:
    """``folder/<unique>/name``: a file name users see when they download it."""
    path = folder / uuid.uuid4().hex / name
    save_image(image, path)
    return path


def prune(folder: Path, max_age_s: float = 3600.0) -> None:
    """Remove result files older than ``max_age_s`` (the demo's outputs, nothing else)."""
    if not folder.is_dir():
        return
    cutoff = time.time() - max_age_s
    for sub in folder.iterdir():
        try:
            if sub.is_dir() and sub.stat().st_mtime < cutoff:
                for f in sub.iterdir():
                    f.unlink(missing_ok=True)
                sub.rmdir()
        except OSError:  # another request may be cleaning the same folder
            continue
