"""``pconv inpaint``: one image and mask, or a folder of images with a folder of masks paired by
file stem.

Everything that can be checked without the model is checked before it is loaded: inputs exist,
outputs can be written, no output is one of the input images or masks (unless ``--overwrite``),
no two images of a folder would write the same result. A batch then
follows one rule: every image is attempted; each failure (always the user's input: an
unreadable file, a missing mask, a mask of another size) is one line on stderr naming its file,
printed as it happens; the summary on stdout says what was written and, only if something was,
where; the exit status is 2 if any image failed, 0 if all succeeded. Each result is written
atomically as soon as its image is done, so a crash keeps everything finished before it.
"""

from __future__ import annotations

import argparse
import glob
import sys
import time
from pathlib import Path

import numpy as np
from torch import nn
from tqdm import tqdm

from pconv.cli import FLAGS, add_overwrite_argument, add_threads_argument
from pconv.errors import InputError, PConvError
from pconv.holes import fit_to_image, nothing_to_fill
from pconv.inpaint import STRATEGIES, inpaint
from pconv.io import (
    DEFAULT_MAX_PIXELS,
    QUALITY_FORMATS,
    Metadata,
    check_folder_writable,
    check_name_lengths,
    check_output,
    drops_alpha,
    list_images,
    load_mask,
    output_format,
    read_image,
    refuse_overwriting_inputs,
    save_image,
)
from pconv.loader import load_model
from pconv.precision import PRECISIONS

MASK_SUFFIXES = ("", "_mask", "-mask", ".mask")
#: ``--format`` for results written into a folder -> their extension
FORMATS = {"png": ".png", "jpg": ".jpg", "webp": ".webp"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inpaint",
        help="fill the masked region of an image (or of every image in a folder)",
        description=(
            "Fill the white region of MASK in IMAGE. With folders, IMAGE is searched with its "
            "subfolders; each image is paired with the mask of the same file stem in the same "
            "subfolder of MASK, or at its top (also accepted: STEM_mask.png), or MASK is one "
            "file for all of them; each result is written to the same subfolder of OUTPUT as "
            "STEM.png (--format), as soon as it is done. EXIF orientation is applied on reading; "
            "the ICC profile and EXIF are kept on writing. Every image is attempted; each "
            "failure is one line naming its file; the exit status is 2 if any failed. Masks: "
            "white = fill; grey levels are binarised at 50%."
        ),
    )
    p.add_argument("image", type=Path, help="image file, or a folder of images")
    p.add_argument(
        "--mask",
        "-m",
        type=Path,
        required=True,
        help="mask file, or a folder of masks; one file for a folder of images is used for each",
    )
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
        "--format",
        choices=FORMATS,
        help="format of the results written into an OUTPUT folder (default: png); an OUTPUT "
        "file's format is its extension's",
    )
    p.add_argument(
        "--quality",
        type=_quality,
        metavar="1-100",
        help="JPEG or WebP quality (default: 95 for JPEG, 80 for WebP)",
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
    add_overwrite_argument(
        p,
        "allow a result to replace its own image or mask (OUTPUT the same file as IMAGE, or an "
        "OUTPUT folder that holds the images); refused by default, before any work",
    )
    add_threads_argument(p)
    p.add_argument(
        "--strategy",
        choices=STRATEGIES,
        help="how a photo larger than the model's training size is worked on: context crops "
        "around the holes (crop), or DeepGIN's sub-images of every k-th pixel (subsample); "
        "default: the model's own (crop for the U-Net, subsample for DeepGIN)",
    )
    p.set_defaults(run=run)


def _quality(text: str) -> int:
    """argparse type of ``--quality``: 1..100."""
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise argparse.ArgumentTypeError(f"must be a whole number 1..100, got {text!r}")
    return int(text)


def _pixels(text: str) -> int | None:
    """argparse type of ``--max-pixels``: a count, 0 for no limit."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0 (0: no limit)")
    return value or None


def _find_mask(masks: Path, rel: Path) -> Path | None:
    """The mask of the image at ``rel`` (relative to the image folder): in the same subfolder
    of ``masks`` first, then at its top (a flat folder of masks for nested images)."""
    folders = [masks / rel.parent] if rel.parent != Path(".") else []
    for folder in [*folders, masks]:
        for suffix in MASK_SUFFIXES:
            for candidate in sorted(folder.glob(f"{glob.escape(rel.stem)}{suffix}.*")):
                if candidate.is_file():
                    return candidate
    return None


def _prepare(
    image: Path, mask: Path | np.ndarray, args: argparse.Namespace
) -> tuple[np.ndarray, np.ndarray, Metadata]:
    """The image read (first: its errors are reported first), then its mask (a file, or bool
    holes read once for a whole folder; white = fill) fitted to it: everything that can go
    wrong with the user's files, before any model work."""
    pixels, metadata = read_image(image, max_pixels=args.max_pixels)
    hole = load_mask(mask, max_pixels=args.max_pixels) if isinstance(mask, Path) else mask
    # pconv.holes' policy, in the API's order: the size is checked first, then an empty mask
    # writes the input unchanged (in _fill)
    return pixels, fit_to_image(hole, pixels.shape[:2], resize=args.resize_mask), metadata


def _fill(
    model: nn.Module,
    prepared: tuple[np.ndarray, np.ndarray, Metadata],
    output: Path,
    args: argparse.Namespace,
) -> str:
    """Inpaint one prepared image and write it at once; returns a word for the summary."""
    pixels, hole, metadata = prepared
    if nothing_to_fill(hole):
        save_image(pixels, output, quality=args.quality, metadata=metadata)
        return "copied (empty mask)"
    result = inpaint(
        pixels,
        hole,
        model,
        device=args.device,
        dtype=args.dtype,
        resize_mask_to_image=args.resize_mask,
        strategy=args.strategy,
    )
    save_image(np.asarray(result), output, quality=args.quality, metadata=metadata)
    return "filled"


def _alpha_note(image: Path, pixels: np.ndarray, output: Path) -> bool:
    """One note on stderr when ``output``'s format cannot hold the photo's transparency (the
    result gets its colour alone); whether it was given."""
    if not drops_alpha(pixels, output):
        return False
    fmt = output_format(output)
    tqdm.write(
        f"pconv inpaint: note: {fmt} has no transparency: the alpha channel of {image} is "
        f"left out of {output} (write .png, .webp or .tif to keep it)",
        file=sys.stderr,
    )
    return True


def _check_quality(fmt: str, args: argparse.Namespace) -> None:
    if args.quality is not None and fmt not in QUALITY_FORMATS:
        raise InputError(f"--quality applies to JPEG and WebP output, not {fmt}")


def run(args: argparse.Namespace) -> int:
    for path in (args.image, args.mask, args.output):
        check_name_lengths(path)  # first: the file system refuses to even look at such a name
    if not args.image.exists():
        raise InputError("no such file or folder", path=args.image)
    if not args.mask.exists():
        raise InputError("no such file or folder", path=args.mask)
    if args.mask.is_dir() and not args.image.is_dir():
        raise InputError("a folder of masks needs a folder of images (IMAGE is a file)")
    suffix = FORMATS[args.format or "png"]
    if not args.image.is_dir():
        output = args.output
        if output.is_dir():
            output = output / f"{args.image.stem}{suffix}"
        elif args.format is not None and output.suffix.lower() != suffix:
            raise InputError("--format is for an OUTPUT folder; a file's extension sets its format")
        _check_quality(check_output(output), args)  # before the model: it must not cost work
        if not args.overwrite:
            refuse_overwriting_inputs([output], [args.image, args.mask])
        prepared = _prepare(args.image, args.mask, args)
        _alpha_note(args.image, prepared[0], output)
        word = _fill(load_model(args.model, device=args.device), prepared, output, args)
        print(f"{word}: {output}")
        return 0
    if args.output.exists() and not args.output.is_dir():
        raise InputError("exists and is not a folder", path=args.output)
    _check_quality(output_format(Path("result" + suffix)), args)
    check_folder_writable(args.output)
    jobs = _plan(args, suffix)
    if not args.overwrite:
        masks = list_images(args.mask) if args.mask.is_dir() else [args.mask]
        refuse_overwriting_inputs(
            [out for _, out in jobs], [image for image, _ in jobs] + masks, folder=args.output
        )
    # one mask file for the whole folder (a watermark): read once, fitted to each image
    shared = None if args.mask.is_dir() else load_mask(args.mask, max_pixels=args.max_pixels)
    return _run_folder(load_model(args.model, device=args.device), jobs, shared, args)


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def _plan(args: argparse.Namespace, suffix: str) -> list[tuple[Path, Path]]:
    """Each image of the folder with its output (the same subfolder of OUTPUT, STEM.png), all
    decided before the model loads; two images that would write one result are refused here,
    all of them in one line."""
    root: Path = args.image
    # a mask or output folder kept inside the image folder holds no images to fill
    inner = [f for f in (args.mask, args.output) if f.is_dir() and f.resolve() != root.resolve()]
    images = [
        p for p in list_images(root) if not any(_inside(p, f) and _inside(f, root) for f in inner)
    ]
    if not images:
        raise InputError("no images found", path=root)
    by_result: dict[Path, list[Path]] = {}
    for image in images:
        rel = image.relative_to(root)
        by_result.setdefault(rel.with_suffix(suffix), []).append(rel)
    clashes = {result: rels for result, rels in by_result.items() if len(rels) > 1}
    if clashes:
        listed = "; ".join(
            f"{', '.join(r.as_posix() for r in rels)} -> {result.as_posix()}"
            for result, rels in clashes.items()
        )
        raise InputError(
            f"images with the same name would overwrite each other's result: {listed} "
            "(rename them, or run them separately)",
            path=root,
        )
    jobs = [(root / rel, args.output / result) for result, (rel,) in by_result.items()]
    for _, output in jobs:  # a .tif of 254 bytes gives a .webp of 255
        check_name_lengths(output)
    return jobs


def _failed(line: str) -> None:
    tqdm.write(f"  failed: {line}", file=sys.stderr)


def _run_folder(
    model: nn.Module,
    jobs: list[tuple[Path, Path]],
    shared: np.ndarray | None,
    args: argparse.Namespace,
) -> int:
    """Every image attempted, each result written as soon as it is done; see the module's
    docstring for the report and the exit status."""
    counts: dict[str, int] = {}
    failures = 0
    noted = False  # the note on transparency a format cannot hold: once, at the first photo
    start = time.perf_counter()
    for image, output in tqdm(jobs, desc="inpaint", unit="img", file=sys.stderr):
        rel = image.relative_to(args.image)
        mask = args.mask if shared is not None else _find_mask(args.mask, rel)
        if mask is None:
            failures += 1
            _failed(f"{image}: no mask named {rel.stem}.* in {args.mask / rel.parent}")
            continue
        try:
            prepared = _prepare(image, mask if shared is None else shared, args)
            noted = noted or _alpha_note(image, prepared[0], output)
            word = _fill(model, prepared, output, args)
        except PConvError as exc:
            failures += 1
            described = exc.describe(FLAGS)
            _failed(described if exc.path is not None else f"{image} (mask {mask}): {described}")
            continue
        counts[word] = counts.get(word, 0) + 1
    elapsed = time.perf_counter() - start
    done = ", ".join(f"{n} {word}" for word, n in counts.items()) or "nothing written"
    where = f"; results in {args.output}" if counts else ""
    print(f"{done}; {failures} failed; {elapsed:.1f} s{where}")
    return 2 if failures else 0
