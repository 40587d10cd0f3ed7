"""Which image meets which mask, and how both are brought to the evaluation size.

Pairing is deterministic for a seed: the images and the masks are each shuffled with
``numpy.random.default_rng(seed)`` and walked side by side, cycling the shorter list. With the
default count, ``max(#images, #masks)``, every image and every mask is used at least once
(the 600 dev masks give 50 pairs per Table 1 cell; 200 images are each used three times).

Geometry: images are centre-cropped to a square and resized with Lanczos (a=3, PIL), which
low-pass filters when shrinking (no aliasing of fine texture into the ground truth) and
stays sharp when enlarging. It is done on 8-bit pixels, so the ground truth stays on the
8-bit grid that every method's output is also rounded to (see ``metrics``). Masks get the
same centre-crop and are resized nearest-neighbour, so they stay binary.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from pconv.errors import InputError
from pconv.evaluation.buckets import MaskClass, classify
from pconv.io import list_images, load_image, load_mask, resize_mask, to_uint8

SIZES = (256, 512)


@dataclass(frozen=True)
class Pair:
    index: int
    image: Path
    mask: Path
    name: str  # the image as shown in reports: "<folder>/<relative path>"


@dataclass
class Sample:
    """One prepared pair: ground truth, hole, and where it falls in Table 1."""

    pair: Pair
    truth: np.ndarray  # float32 [S, S, 3] in [0, 1], on the 8-bit grid
    hole: np.ndarray  # bool [S, S], True = to fill
    mask_class: MaskClass  # from the mask at its own resolution (see buckets)

    @property
    def eval_ratio(self) -> float:
        return float(self.hole.mean())


def _listed(root: Path, what: str) -> list[Path]:
    """The image files of a folder, sorted; a clear error if it is no folder or holds none."""
    if not root.is_dir():
        raise InputError("not a folder", path=root)
    paths = list_images(root)
    if not paths:
        raise InputError(f"no {what} found", path=root)
    return paths


def collect_images(folders: Sequence[str | os.PathLike[str]]) -> list[tuple[Path, str]]:
    """Images of several folders, each sorted, in the order the folders were given."""
    found: list[tuple[Path, str]] = []
    for folder in folders:
        root = Path(folder)
        paths = _listed(root, "images")
        found += [(p, f"{root.name}/{p.relative_to(root).as_posix()}") for p in paths]
    return found


def collect_masks(folder: str | os.PathLike[str]) -> list[Path]:
    return _listed(Path(folder), "masks")


def make_pairs(
    images: Sequence[tuple[Path, str]],
    masks: Sequence[Path],
    *,
    seed: int = 0,
    count: int | None = None,
) -> list[Pair]:
    """Deterministic pairs; ``count`` defaults to ``max(len(images), len(masks))``."""
    if not images or not masks:
        raise InputError("need at least one image and one mask")
    n = max(len(images), len(masks)) if count is None else count
    if n < 1:
        raise InputError(f"the number of pairs must be at least 1, got {n}")
    rng = np.random.default_rng(seed)
    image_order = rng.permutation(len(images))
    mask_order = rng.permutation(len(masks))
    pairs = []
    for k in range(n):
        path, name = images[image_order[k % len(images)]]
        pairs.append(Pair(k, path, masks[mask_order[k % len(masks)]], name))
    return pairs


def check_readable(paths: Sequence[Path]) -> None:
    """Fail before the long run, not in the middle of it, on a file that is not an image.

    ``verify`` reads the header and structure without decoding every pixel, so this is cheap.
    """
    for path in paths:
        try:
            with Image.open(path) as img:
                img.verify()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise InputError(f"not a readable image ({exc})", path=path) from None


def centre_square(arr: np.ndarray) -> np.ndarray:
    h, w = arr.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return arr[top : top + s, left : left + s]


def load_truth(path: Path, size: int) -> np.ndarray:
    """Centre-crop, Lanczos-resize, return float32 [size, size, 3] on the 8-bit grid."""
    square = Image.fromarray(to_uint8(centre_square(load_image(path))))
    if square.size != (size, size):
        square = square.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(square, dtype=np.float32) / np.float32(255.0)


def prepare(pair: Pair, size: int, rule: str = "pixels") -> Sample:
    truth = load_truth(pair.image, size)
    native = centre_square(load_mask(pair.mask))
    mask_class = classify(pair.mask, native, rule)
    hole = native if native.shape == (size, size) else resize_mask(native, (size, size))
    return Sample(pair, truth, np.ascontiguousarray(hole), mask_class)
