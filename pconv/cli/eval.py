"""``pconv eval``: the paper's Table 1 protocol for our models and classical baselines."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pconv.errors import InputError
from pconv.evaluation.baselines import DEFAULT_BASELINES, Method, load_baselines, parse_names
from pconv.evaluation.buckets import RULES

#: What ``pip`` needs for this command; its modules are imported only when it runs, so that
#: ``pconv inpaint`` and ``pconv --help`` work without them.
EXTRA_HINT = "pconv eval needs scikit-image and matplotlib: pip install 'pconv[eval]'"
MIN_SIZE = 64


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="score models and baselines per hole ratio (the paper's Table 1)",
        description=(
            "Pair images with masks (seeded), fill each hole with every method, and report "
            "l1 (%%), PSNR and SSIM over the whole image per hole-ratio bucket, for masks "
            "touching the image border (B) and not (N). Writes results.md, results.csv, "
            "per_image.csv, metrics.png and examples.png to --output."
        ),
    )
    parser.add_argument(
        "--images",
        nargs="+",
        action="extend",
        required=True,
        metavar="DIR",
        help="image folder(s), searched recursively; may be repeated",
    )
    parser.add_argument("--masks", required=True, metavar="DIR", help="mask folder, white = hole")
    parser.add_argument("--output", required=True, metavar="DIR", help="where to write results")
    parser.add_argument(
        "--model",
        nargs="+",
        action="extend",
        default=[],
        metavar="NAME_OR_PATH",
        help="our model(s): a zoo name or a .safetensors file; may be repeated",
    )
    parser.add_argument(
        "--baselines",
        metavar="LIST",
        help=f"comma-separated, from {','.join(DEFAULT_BASELINES)}, or 'none' "
        "(default: every one that is installed)",
    )
    parser.add_argument(
        "--size",
        type=int,
        default=256,
        help="square side the pairs are evaluated at; the paper uses 512 (default: 256)",
    )
    parser.add_argument("--seed", type=int, default=0, help="pairing seed (default: 0)")
    parser.add_argument(
        "--pairs",
        type=int,
        metavar="N",
        help="number of pairs (default: max(#images, #masks), so every file is used)",
    )
    parser.add_argument(
        "--mask-rule",
        choices=RULES,
        default="pixels",
        help="bucket and border from the mask pixels (any folder), or from NVIDIA test-mask "
        "file ids (default: pixels)",
    )
    parser.add_argument(
        "--examples", type=int, default=6, metavar="N", help="rows in examples.png (default: 6)"
    )
    parser.add_argument("--device", help="device for our models (default: pconv's choice)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def _methods(args: argparse.Namespace) -> tuple[list[Method], list[str]]:
    """Models first (they are what is being evaluated), then baselines."""
    from pconv.evaluation.models import ModelMethod

    explicit = args.baselines is not None
    names = parse_names(args.baselines) if explicit else list(DEFAULT_BASELINES)
    methods: list[Method] = [ModelMethod(m, device=args.device) for m in args.model]
    baselines, notes = load_baselines(names, explicit=explicit)
    return methods + baselines, notes


def run(args: argparse.Namespace) -> int:
    try:
        from pconv.evaluation.metrics import PERCEPTUAL_NOTE
        from pconv.evaluation.pairing import (
            check_readable,
            collect_images,
            collect_masks,
            make_pairs,
        )
        from pconv.evaluation.plots import plot_grid, plot_metrics
        from pconv.evaluation.report import aggregate, write_reports
        from pconv.evaluation.runner import evaluate
    except ImportError as exc:
        raise InputError(f"{EXTRA_HINT} ({exc})") from None

    if args.size < MIN_SIZE:
        raise InputError(f"--size must be at least {MIN_SIZE}, got {args.size}")
    if args.examples < 0:
        raise InputError(f"--examples must be >= 0, got {args.examples}")
    images = collect_images(args.images)
    masks = collect_masks(args.masks)
    pairs = make_pairs(images, masks, seed=args.seed, count=args.pairs)
    used = sorted({p.image for p in pairs} | {p.mask for p in pairs})
    check_readable(used)  # before the long run, not in the middle of it
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    methods, notes = _methods(args)
    for note in notes:
        print(f"pconv eval: {note}", file=sys.stderr)
    print(f"pconv eval: {PERCEPTUAL_NOTE}", file=sys.stderr)

    result = evaluate(
        pairs,
        methods,
        size=args.size,
        rule=args.mask_rule,
        examples=args.examples,
        progress=not args.no_progress,
    )
    if not result.records:
        raise InputError("no pair could be scored: " + "; ".join(result.skipped[:3]))
    for line in result.skipped:
        print(f"pconv eval: skipped {line}", file=sys.stderr)

    context = [
        f"- images: {', '.join(map(str, args.images))} ({len(images)} files)",
        f"- masks: {args.masks} ({len(masks)} files); bucket and border rule: {args.mask_rule}",
        f"- {len(pairs)} pairs, seed {args.seed}; {len(result.skipped)} skipped",
        f"- {args.size} px: centre square crop, Lanczos resize (masks: nearest)",
        "- metrics over the whole composited image, outputs rounded to 8 bits; "
        "SSIM: Gaussian window sigma 1.5, population covariance (Wang et al. 2004)",
        "- s / image: mean wall time of the method alone (no loading or scoring)",
        f"- {PERCEPTUAL_NOTE}",
        *(f"- {note}" for note in notes),
    ]
    title = f"pconv eval, {args.size} px"
    md, csv_path, per_image, text = write_reports(result, out, title=title, context=context)
    plot_metrics(aggregate(result), result.methods, out / "metrics.png")
    if args.examples:
        plot_grid(result.examples, result.methods, out / "examples.png")
    print(text)
    print(f"pconv eval: wrote {md}, {csv_path}, {per_image}, {out / 'metrics.png'}", end="")
    print(f", {out / 'examples.png'}" if args.examples else "")
    return 0
