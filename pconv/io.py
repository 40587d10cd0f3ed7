"""Reading and writing images and masks: the one place where user conventions meet ours.

Users (files, CLI, ComfyUI, the demo) draw masks with **white / 1 = fill this**. Inside the
network ``1 = valid pixel``. :func:`hole_to_valid` is the single conversion between the two;
everything that crosses the boundary goes through it.

Images are ``float32`` arrays ``[H, W, 3]`` in ``[0, 1]``; masks are ``bool`` arrays ``[H, W]``
with ``True`` where the user wants the pixel filled.
"""

from __future__ import annotations

import os
import tempfile
import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from PIL import Image, ImageOps

from pconv.errors import InputError
from pconv.files import atomic_open, file_key, name_max

if TYPE_CHECKING:
    import torch

    ArrayOrTensor = TypeVar("ArrayOrTensor", np.ndarray, torch.Tensor)
else:
    ArrayOrTensor = TypeVar("ArrayOrTensor")

#: Soft masks (anti-aliased brushes, JPEG-compressed masks) are binarised at this level:
#: a pixel is a hole where its grey value is >= 0.5 of full white.
MASK_THRESHOLD = 0.5

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

#: The most pixels a file may declare before it is read: PIL's own default
#: (``Image.MAX_IMAGE_PIXELS``, about 89.5 million, a quarter GiB of RGB), written out so that
#: a host which turned PIL's check off (ComfyUI does) still gets it. A PNG of a few bytes can
#: claim 40000x40000 and ask for gigabytes of memory: a *decompression bomb*.
DEFAULT_MAX_PIXELS = 1024 * 1024 * 1024 // 4 // 3
#: The ``fix`` of a refused bomb; front ends render it as their flag (``--max-pixels N``).
MAX_PIXELS_FIX = "max_pixels=N"

#: The ``fix`` of an output refused because it is one of the inputs; front ends render it as
#: their flag (``--overwrite``).
OVERWRITE_FIX = "overwrite=True"
#: Inputs named in the one line of a refused overwrite; the rest are counted.
_NAMED = 3

#: EXIF's orientation tag: how a camera's stored pixels are turned to be seen upright.
ORIENTATION = 0x0112
#: Formats whose writer takes the input's ICC profile and EXIF (and ``quality``: JPEG, WebP).
METADATA_FORMATS = ("PNG", "JPEG", "WEBP")
QUALITY_FORMATS = ("JPEG", "WEBP")
#: Formats whose files keep an alpha channel; the others get the colour only (a front end
#: says so, :func:`drops_alpha`).
ALPHA_FORMATS = ("PNG", "WEBP", "TIFF", "AVIF", "JPEG2000", "TGA", "QOI")


@dataclass(frozen=True)
class Metadata:
    """What a result keeps of its input: the colour profile (so the colours mean the same) and
    the EXIF (camera, date, GPS ...) with its orientation reset to 1, since the pixels read by
    :func:`load_image` are already turned upright."""

    icc_profile: bytes | None = None
    exif: bytes | None = None


#: PIL's limit is a module global: it is lifted only under this lock, for a caller whose own
#: ``max_pixels`` is higher, and put back at once.
_PIL_LIMIT = threading.Lock()


def hole_to_valid(hole: ArrayOrTensor) -> ArrayOrTensor:
    """User mask (True/1 = fill) -> network mask (1.0 = valid pixel), float32.

    Takes a numpy array or a torch tensor and returns the same kind.
    """
    if isinstance(hole, np.ndarray) or not hasattr(hole, "logical_not"):
        return (~np.asarray(hole, dtype=bool)).astype(np.float32)
    return hole.bool().logical_not().float()


def _header(path: Path) -> Image.Image:
    """The file opened lazily (header only), PIL's own bomb check out of the way: the caller
    applies its ``max_pixels``, which may be higher or lower than PIL's."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(path)
        except Image.DecompressionBombError:
            pass
    with _PIL_LIMIT:  # PIL refused a size the caller may accept: look at the header only
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            return Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _open(path: str | os.PathLike[str], max_pixels: int | None) -> tuple[Image.Image, Metadata]:
    """The decoded image, turned upright as its EXIF orientation says, and its metadata."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=path)
    try:
        img = _header(path)
    except Exception as exc:  # PIL's parsers raise many kinds on corrupt files
        raise InputError(f"not a readable image ({exc})", path=path) from None
    width, height = img.size
    if max_pixels is not None and width * height > max_pixels:
        img.close()
        raise InputError(
            f"{width}x{height} = {width * height} pixels, over the limit of {max_pixels} "
            "(a decompression bomb, or a file this large on purpose)",
            path=path,
            fix=MAX_PIXELS_FIX,
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img.load()  # decode now, so a truncated file fails here and not later
            upright = img
            if img.getexif().get(ORIENTATION, 1) != 1:
                # a phone's photo: the user sees it (and draws its mask) turned upright
                upright = ImageOps.exif_transpose(img)
            metadata = _metadata(img)  # after the turn: it resets the tag it was turned by
            img = upright
    except Exception as exc:  # as above: every decoder failure is the file's
        img.close()
        raise InputError(f"not a readable image ({exc})", path=path) from None
    return img, metadata


def _metadata(img: Image.Image) -> Metadata:
    """The ICC profile (an RGB one only: a result is RGB, a grey or CMYK profile would lie about
    it) and the EXIF with its orientation reset to 1."""
    icc = img.info.get("icc_profile") or None
    if icc is not None and icc[16:20] != b"RGB ":
        icc = None
    exif = img.getexif()
    if ORIENTATION in exif:
        exif[ORIENTATION] = 1
    return Metadata(icc_profile=icc, exif=exif.tobytes() if len(exif) else None)


def _to_float(img: Image.Image) -> np.ndarray:
    """Any PIL mode -> float32 array in [0, 1] with a trailing channel axis."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        scale = 65535.0 if arr.max(initial=0) > 255 or img.mode.startswith("I;16") else 255.0
        return np.clip(arr / scale, 0, 1).astype(np.float32)[..., None]
    if img.mode == "F":
        return np.clip(np.asarray(img, dtype=np.float32), 0, 1)[..., None]
    if img.mode == "1":
        return np.asarray(img, dtype=np.float32)[..., None]
    if img.mode not in ("L", "LA", "RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in img.getbands() or "transparency" in img.info else "RGB")
    arr = np.asarray(img, dtype=np.float32) / 255.0
    return arr if arr.ndim == 3 else arr[..., None]


def load_image(
    path: str | os.PathLike[str], *, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Read any common image as RGB float32 ``[H, W, 3]`` in ``[0, 1]``.

    Greyscale is repeated to three channels, alpha is dropped (the colour underneath is kept;
    :func:`read_image` keeps it), 16-bit images are scaled from 65535. A file declaring more
    than ``max_pixels`` pixels is refused before it is decoded (``None``: no limit, for
    callers who trust their files). An EXIF orientation is applied: the pixels come as a
    viewer shows them.
    """
    return np.ascontiguousarray(read_image(path, max_pixels=max_pixels)[0][..., :3])


def read_image(
    path: str | os.PathLike[str], *, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, Metadata]:
    """:func:`load_image`, but an image with an alpha channel (RGBA, LA, a palette with
    transparency) comes as RGBA ``[H, W, 4]``, and with the file's :class:`Metadata`: what a
    result keeps of its input (:func:`save_image` writes them back)."""
    img, metadata = _open(path, max_pixels)
    arr = _to_float(img)
    channels = arr.shape[2]
    if channels in (1, 2):  # L or LA
        arr = np.concatenate([np.repeat(arr[..., :1], 3, axis=2), arr[..., 1:]], axis=2)
    return np.ascontiguousarray(arr), metadata


def load_mask(
    path: str | os.PathLike[str], *, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Read a mask file as ``bool [H, W]``, True = fill (white in the file), by
    :func:`holes_from_pixels`' rule: a red or white brush both count, and a transparent brush
    layer's alpha is the mask. ``max_pixels`` and the EXIF orientation as for
    :func:`load_image`: a mask drawn on a phone's photo as it is seen fits that photo.
    """
    return mask_from_image(_open(path, max_pixels)[0])


def mask_from_image(img: Image.Image) -> np.ndarray:
    """A PIL mask of any mode as ``bool [H, W]``, True = fill, read as mask files are."""
    return holes_from_pixels(_to_float(img))


def holes_from_pixels(pixels: np.ndarray) -> np.ndarray:
    """Mask pixels ``[..., H, W, C]`` in [0, 1] -> ``bool [..., H, W]``, True = fill: how every
    mask with channels is read (files, PIL images, ``[H,W,3]`` arrays), one mask at a time
    over any leading batch axes.

    ``C`` is 1 (grey), 2 (grey, alpha), 3 (RGB) or 4 (RGBA). The colour is reduced to its
    brightest channel, so a red or a white brush both count. With alpha, a mask whose colour
    is black everywhere is its alpha (a brush layer that only its transparency draws); any
    other is its colour times its alpha (transparent is never a hole). Binarised at
    :data:`MASK_THRESHOLD`.
    """
    colour = pixels[..., :3] if pixels.shape[-1] >= 3 else pixels[..., :1]
    grey = colour.max(axis=-1)
    if pixels.shape[-1] in (2, 4):
        alpha = pixels[..., -1]
        colourless = grey.max(axis=(-2, -1), keepdims=True, initial=0) == 0
        grey = np.where(colourless, alpha, grey * alpha)
    return grey >= MASK_THRESHOLD


def resize_mask(
    hole: np.ndarray, size: tuple[int, int], *, keep_strokes: bool = False
) -> np.ndarray:
    """Resize a bool mask to ``(width, height)``, nearest-neighbour. ``keep_strokes``: when
    shrinking, a pixel is a hole if any of the pixels it covers is, so that a thin painted
    stroke never vanishes (the demo's brush)."""
    if hole.shape == (size[1], size[0]):
        return hole
    img = Image.fromarray(hole.astype(np.uint8) * 255)
    shrinking = size[0] < hole.shape[1] or size[1] < hole.shape[0]
    if keep_strokes and shrinking:
        return np.asarray(img.resize(size, Image.Resampling.BOX)) > 0
    return np.asarray(img.resize(size, Image.Resampling.NEAREST)) >= 128


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float [0,1] -> uint8, rounding so that x/255 round-trips exactly."""
    return np.clip(np.rint(np.asarray(image, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def output_format(path: str | os.PathLike[str]) -> str:
    """PIL's format name for writing ``path``, from its extension; an :class:`InputError` for
    an extension PIL cannot write, so a front end can refuse it before any work."""
    path = Path(path)
    if not path.suffix:
        raise InputError(
            "has no extension to choose the image format from (.png, .jpg, .webp ...)", path=path
        )
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise InputError(
            f"cannot write images with the extension {path.suffix!r} (use "
            f"{', '.join(IMAGE_SUFFIXES)}, or another extension that PIL writes)",
            path=path,
        )
    return fmt


def short_name(name: str, keep: int = 24) -> str:
    """A long file name cut to its first and last ``keep`` characters, for a message."""
    return name if len(name) <= 2 * keep + 1 else f"{name[:keep]}…{name[-keep:]}"


def check_name_lengths(path: str | os.PathLike[str]) -> None:
    """An :class:`InputError` for a file or folder name in ``path`` longer than its file system
    takes (``NAME_MAX`` bytes, 255 on most): before any work, not when the result is written."""
    path = Path(path)
    limit = name_max(path.parent)
    for part in path.parts:
        size = len(os.fsencode(part))
        if size > limit:
            raise InputError(
                f"{short_name(part)}: a name of {size} bytes; this file system takes at most "
                f"{limit}: shorten it"
            )


def check_folder_writable(folder: str | os.PathLike[str]) -> None:
    """An :class:`InputError` unless files can be created in ``folder`` (or, where it does
    not exist yet, in its nearest existing ancestor, where it would be created).

    It tries: a hidden probe file is created and removed at once, because permission bits
    tell nothing about read-only mounts, /proc, or root. Nothing else is written.
    """
    check_name_lengths(folder)
    existing = Path(os.path.abspath(folder))
    while not os.path.exists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError("not a folder, so no output can be written under it", path=existing)
    try:
        fd, probe = tempfile.mkstemp(prefix=".pconv-probe-", suffix=".tmp", dir=existing)
    except OSError as exc:
        raise InputError(f"cannot write here ({exc.strerror or exc})", path=existing) from None
    os.close(fd)
    os.unlink(probe)


def check_output(path: str | os.PathLike[str]) -> str:
    """Refuse, before any work, an output file that could not be written: an extension PIL
    cannot write, a name longer than the file system takes, or a folder where files cannot be
    created. Returns the format's name."""
    fmt = output_format(path)
    check_name_lengths(path)
    check_folder_writable(Path(path).parent)
    return fmt


def refuse_overwriting_inputs(
    outputs: Iterable[str | os.PathLike[str]],
    inputs: Iterable[str | os.PathLike[str]],
    *,
    folder: str | os.PathLike[str] | None = None,
) -> None:
    """An :class:`InputError` (``fix`` :data:`OVERWRITE_FIX`) if writing any of ``outputs``
    would replace one of ``inputs``: the user's photo or mask, lost for good.

    Same file means the file system's one file (:func:`pconv.files.file_key`), however the two
    are spelled: through symlinks, ``..``, hard links or another case on a case-insensitive
    file system. Called before any work; ``folder`` names the output folder of a folder job in
    the message, which then counts the clashes and names the first few.
    """
    known = {file_key(p): Path(p) for p in inputs}
    clashes = [(Path(out), known[key]) for out in outputs if (key := file_key(out)) in known]
    if not clashes:
        return
    if folder is None or len(clashes) == 1:
        out, original = clashes[0]
        what = "an input" if str(out) == str(original) else f"the input {original} by another name"
        raise InputError(f"is {what}: the result would replace it", path=out, fix=OVERWRITE_FIX)
    named = ", ".join(str(original) for _, original in clashes[:_NAMED])
    more = f" and {len(clashes) - _NAMED} more" if len(clashes) > _NAMED else ""
    raise InputError(
        f"{len(clashes)} results would replace their inputs ({named}{more})",
        path=folder,
        fix=OVERWRITE_FIX,
    )


def drops_alpha(image: np.ndarray, path: str | os.PathLike[str]) -> bool:
    """Whether writing ``image`` to ``path`` loses transparency: it has a not fully opaque
    alpha channel and the format cannot hold one (JPEG). :func:`save_image` then writes the
    colour alone; front ends say so in a note."""
    if image.ndim != 3 or image.shape[2] != 4 or output_format(path) in ALPHA_FORMATS:
        return False
    alpha = image[..., 3]
    return bool((alpha < (255 if alpha.dtype == np.uint8 else 1.0)).any())


def save_image(
    image: np.ndarray,
    path: str | os.PathLike[str],
    *,
    quality: int | None = None,
    metadata: Metadata | None = None,
) -> None:
    """Write ``[H, W, 3]`` (or greyscale ``[H, W]``/``[H, W, 1]``, or RGBA) float in [0,1] or
    uint8, atomically (:func:`pconv.files.atomic_open`). Sides of one pixel are kept as they are.
    RGBA into a format without alpha (:data:`ALPHA_FORMATS`; JPEG) writes its colour alone.

    The format comes from the extension. ``quality`` (1-100) is for JPEG (default 95) and WebP
    (default PIL's); ``metadata`` (an input's ICC profile and EXIF) is written into PNG, JPEG
    and WebP files. A crash or a full disk never leaves a half-written output behind; a
    failed write is an :class:`InputError` naming the file.
    """
    path = Path(path)
    arr = image if image.dtype == np.uint8 else to_uint8(image)
    fmt = output_format(path)
    save_kwargs: dict[str, object] = {"quality": 95} if fmt == "JPEG" else {}
    if quality is not None:
        if fmt not in QUALITY_FORMATS:
            raise InputError(f"quality applies to JPEG and WebP, not {fmt}", path=path)
        save_kwargs["quality"] = int(quality)
    if metadata is not None and fmt in METADATA_FORMATS:
        if metadata.icc_profile:
            save_kwargs["icc_profile"] = metadata.icc_profile
        if metadata.exif:
            save_kwargs["exif"] = metadata.exif
    if arr.ndim == 3 and arr.shape[2] == 1:  # [H, W, 1] is greyscale; never squeeze H or W
        arr = arr[..., 0]
    if arr.ndim == 3 and arr.shape[2] == 4 and fmt not in ALPHA_FORMATS:
        arr = arr[..., :3]  # a JPEG cannot hold it: the colour underneath, as load_image reads
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise InputError(f"cannot write an image array of shape {arr.shape}", path=path)
    try:
        with atomic_open(path) as fh:
            Image.fromarray(np.ascontiguousarray(arr)).save(fh, format=fmt, **save_kwargs)
    except OSError as exc:
        raise InputError(f"cannot write ({exc.strerror or exc})", path=path) from None


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files in a folder and its subfolders, sorted, hidden files skipped."""
    root = Path(folder)
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )
