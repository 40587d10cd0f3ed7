"""``python -m zoo``: list, download, build, convert and publish pretrained PConv models."""

from __future__ import annotations

import argparse
import logging
import textwrap
from collections.abc import Sequence
from pathlib import Path

from pconv.checkpoint import WEIGHTS_NAME, read_metadata
from pconv.cli import run_command

from .files import built_folder
from .registry import REGISTRY, get_entry

#: licence of each upstream family's published weights
LAYOUT_LICENCES = {
    "mmagic": "Apache-2.0",
    "naoto": "MIT",
    "keras": "MIT",
    "deepgin": "BSD-2-Clause",
}
#: ``zoo list`` fits a 100-column terminal: long fields wrap under their label
LIST_WIDTH = 100


def _detail(label: str, text: str) -> str:
    """An indented ``label: text`` line under an entry, wrapped to :data:`LIST_WIDTH`."""
    head = f"    {label + ':':<8}"
    return textwrap.fill(text, LIST_WIDTH, initial_indent=head, subsequent_indent=" " * len(head))


def _list(args: argparse.Namespace) -> int:
    """One line per model (name, resolution, weights licence, cache, Hub repo), then its source
    and its training data's terms: the licence alone does not say whether a product may use it."""
    from .hub import where_cached

    header = ("NAME", "RES", "LICENCE", "CACHED", "HUB REPO")
    entries = list(REGISTRY.values())
    rows = [
        (e.name, str(e.resolution), e.licence, where_cached(e), e.repo_id or "-") for e in entries
    ]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()

    print(line(header))
    for entry, row in zip(entries, rows, strict=True):
        print(line(row))
        print(_detail("source", entry.source))
        print(_detail("data", entry.data_terms))
    return 0


def _download(args: argparse.Namespace) -> int:
    from .hub import download

    print(download(args.name, force=args.force))
    return 0


def _build(args: argparse.Namespace) -> int:
    from .card import validate_folder
    from .upstream import build_entry

    entry = get_entry(args.name)
    out = Path(args.output) if args.output else built_folder(entry.name)
    folder = build_entry(entry, out, Path(args.upstream_file) if args.upstream_file else None)
    config = validate_folder(folder)
    conversion = config.get("conversion") or {}
    kind = "exact" if conversion.get("exact") else "approximate"
    print(f"{entry.name}: {folder} ({kind}, max abs diff {conversion.get('max_abs_diff', 0):.2e})")
    # what was converted, so that an unpinned upstream file can be pinned (zoo/registry.py)
    upstream = read_metadata(folder / WEIGHTS_NAME).get("upstream_sha256")
    print(f"  from {entry.upstream.filename if entry.upstream else '?'}, sha256 {upstream}")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from .card import write_folder
    from .convert import convert_file

    entry = get_entry(args.name) if args.name else None
    resolution = args.resolution or (entry.resolution if entry else None)
    conversion = convert_file(args.path, layout=args.layout, resolution=resolution)
    meta = None
    if entry is None:  # the upstream's licence travels with its weights
        meta = {
            "source": f"converted from {Path(args.path).name} ({conversion.layout} layout)",
            "licence": LAYOUT_LICENCES[conversion.layout],
        }
    folder = write_folder(
        conversion.model, Path(args.output), entry=entry, conversion=conversion, metadata=meta
    )
    kind = "exact" if conversion.exact else "approximate"
    print(f"{folder} ({conversion.layout}, {kind}, max abs diff {conversion.max_abs_diff:.2e})")
    return 0


def _publish(args: argparse.Namespace) -> int:
    from .publish import publish

    result = publish(
        Path(args.path),
        args.repo_id,
        dry_run=args.dry_run,
        out_dir=Path(args.output) if args.output else None,
        private=args.private,
        token=args.token,
        revision=args.revision,
    )
    if result.folder is not None:
        print(f"dry run: wrote {result.folder}; would upload to {result.repo_id}:")
    else:
        print(f"uploaded to {result.repo_id}:")
    width = max(len(name) for name, _ in result.files)
    for name, size in result.files:
        digest = f"  sha256 {result.sha256}" if name == WEIGHTS_NAME else ""
        print(f"  {name:<{width}}  {size:>12,} bytes{digest}")
    if result.folder is not None:
        print("nothing uploaded")
    else:
        print(
            f"published {result.repo_id} at {result.commit}: pin revision={result.commit!r}, "
            f"sha256={result.sha256!r} in zoo/registry.py"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m zoo",
        description="List, download, build, convert and publish pretrained PConv models.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "list", help="the named models, what is cached, licence, source and data terms"
    )
    p.set_defaults(run=_list)

    p = sub.add_parser("download", help="fetch a named model (Hub, else built from upstream)")
    p.add_argument(
        "name", choices=sorted(REGISTRY), metavar="NAME", help=f"one of {', '.join(REGISTRY)}"
    )
    p.add_argument("--force", action="store_true", help="download again even if cached")
    p.set_defaults(run=_download)

    p = sub.add_parser(
        "build", help="download the upstream file, convert, verify, write the Hub folder"
    )
    upstreams = sorted(n for n, e in REGISTRY.items() if e.upstream)
    p.add_argument("name", choices=upstreams, metavar="NAME", help=f"one of {', '.join(upstreams)}")
    p.add_argument("--output", help="folder to write (default: the local model cache)")
    p.add_argument("--upstream-file", help="use this already downloaded upstream file")
    p.set_defaults(run=_build)

    p = sub.add_parser("convert", help="convert a local upstream checkpoint (.pth/.h5)")
    p.add_argument("path", help="the upstream checkpoint file (.pth, .h5; --layout names its kind)")
    p.add_argument("--output", required=True, help="folder to write (Hub layout)")
    p.add_argument("--layout", choices=sorted(LAYOUT_LICENCES), help="default: detected")
    p.add_argument("--name", choices=sorted(REGISTRY), help="registry entry it corresponds to")
    p.add_argument("--resolution", type=int, help="training resolution (default: by layout)")
    p.set_defaults(run=_convert)

    p = sub.add_parser(
        "publish", help="create a Hub repo and upload weights, config, card and licence"
    )
    p.add_argument("path", help="a model.safetensors or a folder holding one")
    p.add_argument("--repo-id", required=True, help="the Hub repository, OWNER/NAME")
    p.add_argument("--dry-run", action="store_true", help="write the folder, upload nothing")
    p.add_argument("--output", help="dry-run folder (default: ./publish-OWNER--NAME)")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("--revision", help="branch to upload to (default: main)")
    p.add_argument("--token", help="Hub token (default: HF_TOKEN or the saved login)")
    p.set_defaults(run=_publish)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="zoo: %(message)s")
    return run_command(args, "zoo")
