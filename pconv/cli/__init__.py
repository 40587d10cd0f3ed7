"""The ``pconv`` command: one subcommand a module, each with ``add_parser`` and ``run``.

User mistakes raise :class:`pconv.errors.PConvError`; they are printed as one line and the
command exits with status 2, never with a traceback. The library's errors speak of Python
arguments (``resize_mask_to_image=True``); :data:`FLAGS` turns them into the flags here.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from collections.abc import Sequence

from pconv import threads
from pconv.errors import PConvError
from pconv.io import short_name

#: How the commands spell the library's arguments that fix an error (``PConvError.fix``).
FLAGS = {
    "resize_mask_to_image=True": "--resize-mask",
    "max_pixels=N": "--max-pixels N",
    "overwrite=True": "--overwrite",
}

#: subcommand name -> module under pconv.cli that implements it
SUBCOMMANDS = {
    "inpaint": "pconv.cli.inpaint",
    "masks": "pconv.cli.masks",
    "eval": "pconv.cli.eval",
    "export": "pconv.cli.export",
}


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """``--threads N|auto`` for a command that computes on the CPU; applied by
    :func:`run_command` before the command runs (:mod:`pconv.threads` decides ``auto``)."""
    parser.add_argument(
        "--threads",
        metavar="N|auto",
        help="CPU threads for torch and OpenCV: a number, or auto (default: $PCONV_THREADS, "
        "else auto: the usable cores less those other processes keep busy now, so that a busy "
        "machine is not oversubscribed)",
    )


def add_overwrite_argument(
    parser: argparse.ArgumentParser,
    help: str = "allow outputs to replace input files (refused by default, before any work)",
    *aliases: str,
) -> None:
    """``--overwrite``: let a command write over its own input files. Without it, an output
    that is one of the inputs (:func:`pconv.io.refuse_overwriting_inputs`) is refused before
    any work, so that a typo cannot replace a photo. ``aliases``: older names, still read,
    not shown in ``--help``."""
    parser.add_argument("--overwrite", action="store_true", help=help)
    for alias in aliases:
        parser.add_argument(alias, dest="overwrite", action="store_true", help=argparse.SUPPRESS)


def apply_threads(args: argparse.Namespace) -> None:
    """Set the thread count a parsed command asked for (flag, else ``PCONV_THREADS``, else
    auto); a bad value is a :class:`PConvError` naming the flag or the variable."""
    if hasattr(args, "threads"):
        threads.apply(args.threads)


def version() -> str:
    """``pconv 0.1.0 (torch 2.13.0+cpu)``: the torch build says whether CUDA is in it."""
    import torch

    import pconv

    return f"pconv {pconv.__version__} (torch {torch.__version__})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pconv",
        description="Image inpainting with partial convolutions (Liu et al., ECCV 2018).",
    )
    parser.add_argument("--version", action="version", version=version())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in SUBCOMMANDS.values():
        module = importlib.import_module(module_name)
        module.add_parser(sub)
    return parser


def run_command(args: argparse.Namespace, prog: str) -> int:
    """Run a parsed subcommand (``args.run``): user mistakes become one line and status 2."""
    try:
        apply_threads(args)
        return int(args.run(args) or 0)
    except PConvError as exc:
        print(f"{prog} {args.command}: error: {exc.describe(FLAGS)}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            raise
        # a name the file system will not even look up (pathlib's exists() and is_dir() raise
        # for it): the user's, whichever path it was
        name = short_name(os.fsdecode(exc.filename or ""))
        print(f"{prog} {args.command}: error: {name}: {exc.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog} {args.command}: interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser().parse_args(argv), "pconv")


if __name__ == "__main__":
    sys.exit(main())
