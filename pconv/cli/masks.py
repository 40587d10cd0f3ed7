"""``pconv masks``: write a folder of generated hole masks (PNG, white = hole) and a contact
sheet to look at them.

    pconv masks out/freeform -g freeform -n 200 --size 512 --mask-buckets 2 --border clear
    pconv masks out/mix -g "irregular:2,lama-thick:1,rect" -n 1000 --mask-buckets 0,1,2,3,4,5

The mask flags are the trainer's (``python -m train --border --mask-buckets``), one vocabulary:
``--border any/clear/touch``, ``--mask-buckets LIST``. The older spellings ``--bucket`` and
``--border yes/no`` (yes = touch, no = clear) are still accepted, not shown in ``--help``.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from pconv.cli import add_overwrite_argument
from pconv.errors import InputError
from pconv.io import OVERWRITE_FIX, list_images, refuse_overwriting_inputs, save_image
from pconv.masks import (
    BORDER_RULES,
    BUCKETS,
    GENERATORS,
    MaskSampler,
    border_name,
    bucket_label,
    contact_sheet,
    hole_ratio,
    parse_buckets,
    parse_mix,
)

#: Masks shown on the contact sheet (the first ones written).
SHEET_MASKS = 48


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    buckets = ", ".join(f"{i}={bucket_label(i)}" for i in range(len(BUCKETS)))
    parser = subparsers.add_parser(
        "masks",
        help="generate a folder of hole masks (white = hole) and a contact sheet",
        description="Generate hole masks (PNG, white = hole) into a folder, plus a contact "
        "sheet PNG next to it (<out>-sheet.png) showing the first masks with their "
        "generator and hole ratio.",
    )
    parser.add_argument("out", type=Path, help="output folder (created if missing)")
    parser.add_argument(
        "-g",
        "--generator",
        default="irregular",
        help=f"generator, or a weighted mix like 'freeform:2,rect:1'; one of: "
        f"{', '.join(GENERATORS)} (default: irregular)",
    )
    parser.add_argument("-n", "--count", type=int, default=100, help="masks to write (100)")
    parser.add_argument(
        "--size", default="512", help="WIDTHxHEIGHT, or one number for a square (512)"
    )
    parser.add_argument(
        "--mask-buckets",
        "--bucket",  # the older name, still accepted
        dest="bucket",
        metavar="0,1,..",
        default=None,
        help=f"hole-ratio bucket index, or several comma-separated ones drawn evenly: "
        f"{buckets} (default: the generator's own distribution)",
    )
    parser.add_argument(
        "--border",
        type=_border,
        metavar="{" + ",".join(BORDER_RULES) + "}",
        default="any",
        help="'clear': holes stay >= 50 px (at 512, scaled) from the border; 'touch': they "
        "touch that frame; 'any' (default)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--folder", type=Path, help="mask folder for the 'folder' generator")
    parser.add_argument("--sheet", type=Path, help="contact sheet path (<out>-sheet.png)")
    parser.add_argument("--no-sheet", action="store_true", help="do not write a contact sheet")
    add_overwrite_argument(
        parser,
        "write into an output folder that has images (replacing NNNNN.png), or over masks of "
        "--folder; refused by default, before any work",
        "--force",  # the older name, still accepted
    )
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    if args.count <= 0:
        raise InputError(f"--count must be > 0, got {args.count}")
    width, height = parse_size(args.size)
    try:
        buckets = parse_buckets(args.bucket)
    except InputError as exc:
        raise InputError(f"--mask-buckets: {exc}") from None
    mix = parse_mix(args.generator)
    options = {}
    if "folder" in mix:
        if args.folder is None:
            raise InputError("the 'folder' generator needs --folder DIR")
        options["folder"] = {"root": args.folder}
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    sheet = None if args.no_sheet else args.sheet or default_sheet_path(out)
    if not args.overwrite:
        if out.is_dir() and list_images(out):
            raise InputError("already holds images", path=out, fix=OVERWRITE_FIX)
        if "folder" in mix and sheet is not None:  # out holds no images, so no mask of it
            refuse_overwriting_inputs([sheet], list_images(args.folder))
    sampler = MaskSampler(
        mix,
        (height, width),
        bucket=buckets,
        border=BORDER_RULES[args.border],
        seed=args.seed,
        options=options,
    )
    shown: list[np.ndarray] = []
    labels: list[str] = []
    for i in tqdm(range(args.count), desc="masks", unit="mask", disable=None):
        name, hole = sampler.sample()
        save_image(hole.astype(np.uint8) * 255, out / mask_name(i))
        if len(shown) < SHEET_MASKS:
            shown.append(hole)
            labels.append(f"{name} {hole_ratio(hole):.1%}")
    print(f"wrote {args.count} masks ({width}x{height}) to {out}")
    if sheet is not None:
        save_image(contact_sheet(shown, labels), sheet)
        print(f"contact sheet: {sheet}")
    return 0


def mask_name(index: int) -> str:
    """The file name of the ``index``-th mask written."""
    return f"{index:05d}.png"


def default_sheet_path(out: Path) -> Path:
    """``<out>-sheet.png`` beside the folder, so that the sheet never counts as a mask."""
    out = out.resolve()
    return out.with_name(f"{out.name}-sheet.png")


def parse_size(text: str) -> tuple[int, int]:
    """``"512"`` or ``"640x480"`` -> ``(width, height)``, each 16..8192."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", text)
    if match is None:
        raise InputError(f"--size must be WIDTHxHEIGHT or one number, got {text!r}")
    width = int(match[1])
    height = int(match[2]) if match[2] else width
    if not (16 <= width <= 8192 and 16 <= height <= 8192):
        raise InputError(f"--size sides must be 16..8192 px, got {width}x{height}")
    return width, height


def _border(text: str) -> str:
    """argparse type of ``--border``: the canonical name, old ``yes``/``no`` included."""
    try:
        return border_name(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
