"""``python -m train``: the command line (options, config file, resume) around the Trainer."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pconv.errors import CheckpointError, PConvError
from pconv.masks import GENERATORS
from pconv.unet import PRIORS
from pconv.training.config import (
    AMP_CHOICES,
    BORDER_CHOICES,
    CROP_CHOICES,
    FIELD_NAMES,
    MODEL_KEYS,
    PRESETS,
    TENSORBOARD_CHOICES,
    ConfigError,
    TrainConfig,
    load_toml,
    resolve,
)

DESCRIPTION = """\
Train or fine-tune a partial-convolution inpainting model on your own images.

Fine-tune a zoo model on your photos (phase 2 of the paper only, 20000 steps by default):
  python -m train --data photos/ --output runs/birds --init places2

Train from scratch (phase 1 at lr 2e-4, then phase 2 at 5e-5 with the encoder's BatchNorm
frozen, as in the paper):
  python -m train --data photos/ more/ --output runs/scans --preset compact-256 --steps 50000

Continue a run that was stopped or killed (exactly where its last checkpoint left it):
  python -m train --resume runs/scans

Several GPUs (DistributedDataParallel; --batch-size is per process):
  torchrun --nproc_per_node 4 -m train --data photos/ --output runs/big --preset paper-512

Ctrl-C or SIGTERM finishes the current step, writes a checkpoint and exits (a second one
stops at once); a kill loses at most the steps since the last checkpoint.

Images are found recursively (.png .jpg .jpeg .bmp .tif .tiff .webp); unreadable ones are
skipped and listed in RUN_DIR/skipped.txt. Each sample is a random square crop at --size that
keeps the aspect ratio, with a hole mask drawn on the fly (or taken from --mask-dir).
"""

EPILOG = """\
presets (model and schedule defaults; any option overrides them):
{presets}

the run folder:
  config.toml       every resolved setting (reusable with --config)
  run.json          command, hardware and data of each session
  metrics.csv       step,tag,value,wall_time for train/* and val/* (and tensorboard/ when
                    the tensorboard package is installed)
  samples/          validation grids: input with holes, output, composite, ground truth
  checkpoints/      the last --keep resumable states (step-NNNNNNNN.safetensors)
  best/             weights with the best validation PSNR so far
  final/            model.safetensors (the zoo's format), MODEL_CARD.md, config.toml:
                    ready for `python -m zoo publish RUN_DIR/final --repo-id OWNER/NAME`

config file: TOML with the long option names as keys, e.g.
  data = ["photos/"]
  preset = "compact-256"
  steps = 50000
  masks = "irregular:2,lama-thick:1"
  loss-weights = "hole=6,style=120"
Precedence: built-in defaults < preset < config file < command line.
"""


def _presets_text() -> str:
    return "\n".join(
        f"  {name:<12} {p.summary}\n  {'':<12} {p.steps} steps, the last {p.phase2_steps} "
        "in phase 2"
        for name, p in PRESETS.items()
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m train",
        description=DESCRIPTION,
        epilog=EPILOG.format(presets=_presets_text()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=None,
    )
    g = parser.add_argument_group("run")
    g.add_argument("--data", nargs="+", metavar="DIR", help="training image folders")
    g.add_argument("--output", "-o", metavar="RUN_DIR", help="folder for this run's files")
    g.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")
    g.add_argument("--config", metavar="FILE.toml", help="settings file (see below)")
    g.add_argument(
        "--init",
        metavar="MODEL",
        help="start from these weights (zoo name, Hub repo id, folder or .safetensors, or a "
        "checkpoint of another run: its model only, not its optimiser or step); "
        "the model's shape comes from them and training is phase 2 only unless "
        "--phase2-steps says otherwise",
    )
    g.add_argument("--preset", choices=list(PRESETS), help="default: paper-256")
    g.add_argument("--name", help="model name in the exported metadata (default: RUN_DIR's name)")
    g.add_argument("--licence", help="SPDX licence of the weights for the card (default: other)")

    g = parser.add_argument_group("model (from the preset unless given)")
    g.add_argument("--size", type=int, help="training crop size in px (multiple of 2**depth)")
    g.add_argument("--depth", type=int, help="encoder levels (paper: 8 at 512, 7 at 256)")
    g.add_argument("--base-width", type=int, help="channels of the first layer (paper: 64)")
    g.add_argument("--max-width-mult", type=int, help="widest layer = base x this (paper: 8)")
    g.add_argument(
        "--prior",
        choices=list(PRIORS),
        help="smooth: a learned gate blends the prediction with a thin-plate fill (not in the "
        "paper; added to an --init model with its gate at 0.5); default: the --init model's, "
        "else none",
    )

    g = parser.add_argument_group("schedule")
    g.add_argument("--steps", type=int, help="total optimisation steps, both phases")
    g.add_argument(
        "--phase2-steps",
        type=int,
        help="how many of them fine-tune with the encoder's BatchNorm frozen "
        "(default: the preset's share, or all with --init)",
    )
    g.add_argument("--lr", type=float, help="phase 1 Adam learning rate (default: 2e-4)")
    g.add_argument("--finetune-lr", type=float, help="phase 2 learning rate (default: 5e-5)")
    g.add_argument("--batch-size", type=int, help="images per step and process")
    g.add_argument("--clip-grad", type=float, help="clip the gradient norm (default: 0 = off)")
    g.add_argument("--seed", type=int, help="seeds model init, data order, crops, masks (0)")

    g = parser.add_argument_group("loss")
    g.add_argument(
        "--perceptual",
        metavar="BACKBONE",
        help="VGG16 for the perceptual and style terms: auto (Hub cache, then the offline "
        "ST-LPIPS trunk, then none), vgg16-hub, vgg16-file:PATH, stlpips-vgg16, none "
        "(pixel + TV only). Default: auto",
    )
    g.add_argument(
        "--loss-weights",
        metavar="K=V,...",
        help="term weights, e.g. hole=6,style=120 (paper: valid=1, hole=6, perceptual=0.05, "
        "style=120, tv=0.1; ssim, 1 - SSIM of the composite, is ours and 0 by default)",
    )

    g = parser.add_argument_group("masks")
    g.add_argument(
        "--masks",
        metavar="MIX",
        help=f"generators and weights, e.g. irregular:2,lama-thick:1 (from: "
        f"{', '.join(GENERATORS)}); default: irregular:1,freeform:1,lama-medium:1",
    )
    g.add_argument(
        "--mask-dir",
        metavar="DIR",
        help="mask images (white = hole) for the 'folder' generator; alone it means "
        "--masks folder:1",
    )
    g.add_argument(
        "--border",
        choices=BORDER_CHOICES,
        help="holes: anywhere (any, default), kept clear of the image border, or touching it",
    )
    g.add_argument("--mask-buckets", metavar="0,1,..", help="hole-ratio buckets 0..5 to draw from")

    g = parser.add_argument_group("data")
    g.add_argument("--val", metavar="DIR", help="validation images (metrics, samples, best)")
    g.add_argument(
        "--val-holdout",
        type=int,
        metavar="N",
        help="validate on N images held out of --data (default without --val: 5%%, max 32)",
    )
    g.add_argument("--val-count", type=int, metavar="N", help="validate on at most N images (64)")
    g.add_argument(
        "--crop",
        choices=CROP_CHOICES,
        help="random-scale (default: between native pixels and the whole short side), "
        "native (no rescaling), fit (short side = --size)",
    )
    g.add_argument("--flip", action=argparse.BooleanOptionalAction, help="random mirror (on)")
    g.add_argument("--workers", type=int, help="DataLoader processes per training process (2)")

    g = parser.add_argument_group("hardware")
    g.add_argument("--device", help="auto (default: CUDA, MPS, CPU), cpu, cuda, cuda:1 ...")
    g.add_argument(
        "--amp",
        choices=AMP_CHOICES,
        help="mixed precision: auto = bf16 on GPUs that have it, else fp16 with a grad "
        "scaler; none on CPU",
    )
    g.add_argument("--compile", action=argparse.BooleanOptionalAction, help="torch.compile")
    g.add_argument(
        "--channels-last", action=argparse.BooleanOptionalAction, help="NHWC memory layout"
    )

    g = parser.add_argument_group("logging and checkpoints")
    g.add_argument("--log-every", type=int, metavar="N", help="log losses every N steps (20)")
    g.add_argument(
        "--val-every", type=int, metavar="N", help="validate, write samples every N steps (1000)"
    )
    g.add_argument("--ckpt-every", type=int, metavar="N", help="checkpoint every N steps (1000)")
    g.add_argument("--keep", type=int, metavar="K", help="checkpoints kept (3)")
    g.add_argument("--tensorboard", choices=TENSORBOARD_CHOICES, help="auto: if installed")
    return parser


def _absolute(values: dict[str, Any]) -> dict[str, Any]:
    """Paths as absolute, so a run resumes from any working directory."""
    out = dict(values)
    if out.get("data"):
        out["data"] = [str(Path(d).expanduser().resolve()) for d in out["data"]]
    for key in ("val", "mask_dir", "output"):
        if out.get(key):
            out[key] = str(Path(out[key]).expanduser().resolve())
    init = out.get("init")
    if init and Path(init).expanduser().exists():
        out["init"] = str(Path(init).expanduser().resolve())
    return out


def resolve_args(args: argparse.Namespace) -> tuple[TrainConfig, Path, bool]:
    """(config, run folder, resuming) from parsed arguments; :class:`ConfigError` on misuse."""
    cli = {k: v for k, v in vars(args).items() if v is not None and k in FIELD_NAMES}
    if args.resume:
        run_dir = Path(args.resume)
        if args.config:
            raise ConfigError("--resume uses the run's own config.toml; leave out --config")
        if args.output and Path(args.output).resolve() != run_dir.resolve():
            raise ConfigError("--resume RUN_DIR and --output differ; give only --resume")
        saved = run_dir / "config.toml"
        if not saved.is_file():
            raise CheckpointError(f"{run_dir}: no run to resume here (no config.toml)")
        file_values = load_toml(saved)
        for key in (*MODEL_KEYS, "size", "init", "preset"):
            if key in cli and cli[key] != file_values.get(key):
                raise ConfigError(f"--{key.replace('_', '-')} cannot change when resuming")
        if "steps" in cli and "phase2_steps" not in cli:
            # More steps extend phase 2; the switch to it stays where it was.
            phase1 = int(file_values["steps"]) - int(file_values.get("phase2_steps", 0))
            cli["phase2_steps"] = max(0, cli["steps"] - phase1)
        cli.pop("output", None)
        return resolve(file_values, _absolute(cli)), run_dir, True
    if not args.output:
        raise ConfigError("--output RUN_DIR is required (or --resume RUN_DIR)")
    file_values = _absolute(load_toml(args.config)) if args.config else {}
    cli = _absolute(cli)
    given_masks = "masks" in cli or "masks" in file_values
    if (cli.get("mask_dir") or file_values.get("mask_dir")) and not given_masks:
        cli["masks"] = "folder:1"
    config = resolve(file_values, cli)
    if not config.data:
        raise ConfigError("--data DIR is required (or data = [...] in the config file)")
    return config, Path(config.output or args.output), False


def main(argv: Sequence[str] | None = None) -> int:
    from pconv.training.distributed import setup, teardown
    from pconv.training.engine import Trainer

    args = build_parser().parse_args(argv)
    command = "python -m train " + shlex.join(sys.argv[1:] if argv is None else list(argv))
    info = None
    clean = False  # whether every rank reached the end normally (see teardown)
    try:
        config, run_dir, resuming = resolve_args(args)
        info, device = setup(config.device)
        if not info.main:  # library warnings (e.g. the loss backbone's) once, from rank 0
            logging.getLogger("pconv").setLevel(logging.ERROR)
        trainer = Trainer(
            config, run_dir, device=device, dist=info, resume=resuming, command=command
        )
        if trainer.step >= trainer.config.steps:
            clean = True
            if info.main:
                print(
                    f"{run_dir}: already complete at step {trainer.step}; give a larger "
                    "--steps to train further",
                    file=sys.stderr,
                )
            return 0
        summary = trainer.run()
        clean = True
        steps = trainer.config.steps
        del trainer  # its DistributedDataParallel must go before the process group does
        if info.main:
            scores = ", ".join(f"{k} {v:.4g}" for k, v in summary.metrics.items())
            where = (
                f"weights: {summary.final / 'model.safetensors'}"
                if summary.final
                else f"stopped; continue with: python -m train --resume {run_dir}"
            )
            print(
                f"step {summary.step}/{steps}, {summary.images_per_s:.1f} img/s"
                + (f", validation: {scores}" if scores else "")
                + (f", {summary.skipped} unreadable images skipped" if summary.skipped else "")
                + f"; {where}"
            )
        return 0 if summary.finished else 130
    except PConvError as exc:
        if info is None or info.main:
            print(f"python -m train: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if info is None or info.main:
            print("python -m train: interrupted", file=sys.stderr)
        return 130
    finally:
        if info is not None:
            teardown(info, clean)
