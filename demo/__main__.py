"""``python -m demo``: start the web demo (``--help`` for the options)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from demo.processing import MAX_SIDE
from pconv import threads
from pconv.devices import pick_device
from pconv.errors import PConvError

log = logging.getLogger("demo")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m demo", description="pconv's inpainting web demo.")
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="[NAME=]PATH",
        help="a weights file (or folder) to offer, listed first and selected; repeatable",
    )
    p.add_argument("--no-zoo", action="store_true", help="offer only the --model files")
    p.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda:1 ...")
    p.add_argument(
        "--max-side",
        type=int,
        default=MAX_SIDE,
        help=f"scale bigger photos down to this many pixels on the long side ({MAX_SIDE})",
    )
    p.add_argument(
        "--concurrency", type=int, default=1, help="inpaintings run at once; others queue (1)"
    )
    p.add_argument(
        "--threads",
        metavar="N|auto",
        help="CPU threads for torch and OpenCV, shared by concurrent inpaintings: a number, or "
        "auto, decided once at start (default: $PCONV_THREADS, else auto: the usable cores "
        "less those other processes keep busy now)",
    )
    p.add_argument("--max-file-size", default="50mb", help="largest upload (50mb)")
    p.add_argument("--share", action="store_true", help="also make a public gradio.live link")
    p.add_argument("--server-name", help="address to listen on (127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--server-port", type=int, help="port (7860, or the next free one)")
    return p


def launch_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """What ``Blocks.launch`` gets; None lets Gradio use its defaults and environment
    (``GRADIO_SERVER_NAME``/``GRADIO_SERVER_PORT``, as on Hugging Face Spaces)."""
    from demo.app import CSS

    return {
        "share": args.share,
        "server_name": args.server_name,
        "server_port": args.server_port,
        "max_file_size": args.max_file_size,
        "show_error": True,
        "css": CSS,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(format="%(name)s: %(message)s")
    log.setLevel(logging.INFO)
    try:  # before any model work, and a bad value before gradio's import (seconds)
        count = threads.apply(args.threads)
        pick_device(args.device)
    except PConvError as exc:
        print(f"python -m demo: error: {exc.describe()}", file=sys.stderr)
        return 2
    try:
        from demo.app import build_app
        from demo.models import initial_choice, parse_model_specs
    except ImportError as exc:
        print(f"the demo needs gradio ({exc}): pip install 'pconv[demo]'", file=sys.stderr)
        return 2
    blocks = build_app(
        parse_model_specs(args.model),
        zoo=not args.no_zoo,
        device=args.device,
        max_side=args.max_side,
        concurrency_limit=max(1, args.concurrency),
    )
    app = blocks.pconv_app  # type: ignore[attr-defined]
    first = initial_choice(app.choices)
    try:  # load the model people will use first now, not on their first click
        _, seconds = app.store.get(first)
        log.info(
            "model %s loaded in %.2f s on %s; %d CPU thread%s",
            first,
            seconds,
            app.store.device,
            count,
            "" if count == 1 else "s",
        )
    except Exception as exc:  # the page says what is wrong; the demo still starts
        log.warning("model %s not loaded: %s", first, exc)
    blocks.launch(**launch_kwargs(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
