"""The ``pconv`` command: one subcommand a module, each with ``add_parser`` and ``run``.

User mistakes raise :class:`pconv.errors.PConvError`; they are printed as one line and the
command exits with status 2, never with a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from pconv.errors import PConvError

#: subcommand name -> module under pconv.cli that implements it
SUBCOMMANDS = {
    "inpaint": "pconv.cli.inpaint",
    "masks": "pconv.cli.masks",
    "eval": "pconv.cli.eval",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pconv",
        description="Image inpainting with partial convolutions (Liu et al., ECCV 2018).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in SUBCOMMANDS.values():
        module = importlib.import_module(module_name)
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except PConvError as exc:
        print(f"pconv {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"pconv {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
