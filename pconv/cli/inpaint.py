"""``pconv inpaint``: one image and mask, or two folders paired by file stem."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from torch import nn
from tqdm import tqdm

from pconv.cli import FLAGS
from pconv.errors import InputError, PConvError
from pconv.holes import fit_to_image, nothing_to_fill
from pconv.inpaint import inpaint
from pconv.io import (
    DEFAULT_MAX_PIXELS,
    check_folder_writable,
    check_output,
    list_images,
    load_image,
    load_mask,
    save_image,
)
from pconv.loader import load_model
from pconv.precision import PRECISIONS

MASK_SUFFIXES = ("", "_mask", "-mask", ".mask")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inpaint",
        help="fill the masked region of an image (or of every image in a folder)",
        description=(
            "Fill the white region of MASK in IMAGE. With folders, each image is paired with the "
            "mask of the same file stem (also accepted: STEM_mask.png) and results are written "
            "to OUTPUT/STEM.png. Masks: white = fill; grey levels are binarised at 50%%."
        ),
    )
    p.add_argument("image", type=Path, help="image file, or a folder of images")
    p.add_argument("--mask", "-m", type=Path, required=True, help="mask file, or a folder of masks")
    p.add_argument("--output", "-o", type=Path, required=True, help="output file, or a folder")
    p.add_argument(
        "--model",
        default="default",
        help="zoo name (`python -m zoo list`), Hub repo id, folder or .safetensors file "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--resize-mask",
        action="store_true",
        help="resize a mask of another size to the image (nearest neighbour)",
    )
    p.add_argument(
        "--max-pixels",
        type=_pixels,
        default=DEFAULT_MAX_PIXELS,
        metavar="N",
        help="refuse images and masks declaring more than N pixels before reading them, "
        "against decompression bombs (default: %(default)s, PIL's limit; 0: no limit)",
    )
    p.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda, cuda:1 ...")
    p.add_argument(
        "--dtype",
        default="fp32",
        choices=PRECISIONS,
        help="compute precision (autocast); default %(default)s",
    )
    p.set_defaults(run=run)


def _pixels(text: str) -> int | None:
    """argparse type of ``--max-pixels``: a count, 0 for no limit."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0 (0: no limit)")
    return value or None


def _find_mask(masks: Path, stem: str) -> Path | None:
    for suffix in MASK_SUFFIXES:
        for candidate in sorted(masks.glob(f"{stem}{suffix}.*")):
            if candidate.is_file():
                return candidate
    return None


def _inpaint_file(
    model: nn.Module, image: Path, mask: Path, output: Path, args: argparse.Namespace
) -> str:
    """Inpaint one pair; returns a short word for the summary."""
    pixels = load_image(image, max_pixels=args.max_pixels)
    # pconv.holes' policy, in the API's order: the size is checked first, then an empty mask
    # writes the input unchanged
    holes = load_mask(mask, max_pixels=args.max_pixels)
    hole = fit_to_image(holes, pixels.shape[:2], resize=args.resize_mask)
    if nothing_to_fill(hole):
        save_image(pixels, output)
        return "copied (empty mask)"
    result = inpaint(
        pixels,
        hole,
        model,
        device=args.device,
        dtype=args.dtype,
        resize_mask_to_image=args.resize_mask,
    )
    save_image(np.asarray(result), output)
    return "filled"


def run(args: argparse.Namespace) -> int:
    if not args.image.exists():
        raise InputError("no such file or folder", path=args.image)
    if not args.mask.exists():
        raise InputError("no such file or folder", path=args.mask)
    if args.image.is_dir() != args.mask.is_dir():
        raise InputError("IMAGE and --mask must both be files or both be folders")
    if not args.image.is_dir():
        output = args.output / f"{args.image.stem}.png" if args.output.is_dir() else args.output
        check_output(output)  # before the model: a wrong output must not cost the work
        model = load_model(args.model, device=args.device)
        word = _inpaint_file(model, args.image, args.mask, output, args)
        print(f"{word}: {output}")
        return 0
    images = list_images(args.image)
    if not images:
        raise InputError("no images found", path=args.image)
    if args.output.exists() and not args.output.is_dir():
        raise InputError("exists and is not a folder", path=args.output)
    check_folder_writable(args.output)
    return _run_folder(load_model(args.model, device=args.device), images, args)


def _run_folder(model: nn.Module, images: list[Path], args: argparse.Namespace) -> int:
    counts: dict[str, int] = {}
    failures: list[str] = []
    start = time.perf_counter()
    for image in tqdm(images, desc="inpaint", unit="img", file=sys.stderr):
        mask = _find_mask(args.mask, image.stem)
        if mask is None:
            failures.append(f"{image.name}: no mask named {image.stem}.* in {args.mask}")
            continue
        try:
            word = _inpaint_file(model, image, mask, args.output / f"{image.stem}.png", args)
        except PConvError as exc:
            failures.append(exc.describe(FLAGS))
            continue
        counts[word] = counts.get(word, 0) + 1
    elapsed = time.perf_counter() - start
    done = ", ".join(f"{n} {word}" for word, n in counts.items()) or "nothing written"
    print(f"{done}; {len(failures)} failed; {elapsed:.1f} s; results in {args.output}")
    for line in failures:
        print(f"  failed: {line}", file=sys.stderr)
    return 1 if failures else 0
