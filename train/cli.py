"""``python -m train``: the command line (options, config file, resume) around the Trainer.

The engine is :mod:`pconv.training`; this module only turns arguments into a
:class:`~pconv.training.config.TrainConfig` (its options are generated from the config's
fields) and reports the engine's errors with option names (``--lr`` for the field ``lr``).
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Sequence
from dataclasses import MISSING, Field, fields
from pathlib import Path
from typing import Any

from pconv import threads as cpu_threads
from pconv.errors import CheckpointError, PConvError
from pconv.training.config import (
    FIELD_NAMES,
    MODEL_KEYS,
    TrainConfig,
    load_toml,
    resolve,
)
from pconv.training.errors import ConfigError, SettingsError
from pconv.training.recipes import RECIPES

DESCRIPTION = """\
Train or fine-tune a partial-convolution inpainting model on your own images.

Fine-tune a zoo model on your photos (phase 2 of the paper only, 20000 steps by default):
  python -m train --data photos/ --output runs/birds --init places2

Train from scratch (phase 1 at lr 2e-4, then phase 2 at 5e-5 with the encoder's BatchNorm
frozen, as in the paper):
  python -m train --data photos/ more/ --output runs/scans --preset compact-256 --steps 50000

Another network, with its own loss, discriminators and schedule (Jersch et al.'s GAN with
partial convolutions: reconstruction, then its global and local discriminators alone, then both):
  python -m train --data photos/ --output runs/gan --arch gan-pconv

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
    lines = []
    for arch, recipe in RECIPES.items():
        lines.append(f"  --arch {arch}: {recipe.title}, default {recipe.default_preset}")
        for name, p in recipe.presets.items():
            phase2 = f", the last {p.phase2_steps} in phase 2" if p.phase2_steps else ""
            lines.append(f"    {name:<16} {p.summary}\n    {'':<16} {p.steps} steps{phase2}")
    return "\n".join(lines)


def option(name: str) -> str:
    """The command line's name of a setting (a config field, or ``resume``)."""
    return "--" + name.replace("_", "-")


def _default_text(f: Field) -> str:
    """The help's "(default: ...)", from the field's default or its ``unset`` note."""
    value = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
    if f.metadata.get("unset") and value in (None, "", []):
        return f"default: {f.metadata['unset']}"
    if value in (None, "", []):  # nothing to say: a required or optional value
        return ""
    if isinstance(value, bool):
        return f"default: {'on' if value else 'off'}"
    if isinstance(value, float):
        return f"default: {value:g}"
    return f"default: {value}"


def _add_setting(group: argparse._ArgumentGroup, f: Field) -> None:
    meta = f.metadata
    default = _default_text(f)
    text = meta["help"] + (f" ({default})" if default else "")
    kwargs: dict[str, Any] = {"help": text.replace("%", "%%"), "dest": f.name}
    kind = str(f.type)
    if kind == "bool":
        kwargs["action"] = argparse.BooleanOptionalAction
    elif kind.startswith("list"):
        kwargs["nargs"] = "+"
    elif kind.startswith("int"):
        kwargs["type"] = int
    elif kind.startswith("float"):
        kwargs["type"] = float
    for key in ("metavar", "choices"):
        if meta.get(key):
            kwargs[key] = list(meta[key]) if key == "choices" else meta[key]
    names = [option(f.name), *([meta["short"]] if meta.get("short") else [])]
    group.add_argument(*names, **kwargs)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help lines wrapped at spaces only: a break after a hyphen would print option values
    and names (``vgg16-file:PATH``, ``ST-LPIPS``) as two words."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        import textwrap

        text = " ".join(text.split())
        return textwrap.wrap(text, width, break_on_hyphens=False)


def build_parser() -> argparse.ArgumentParser:
    """The options, generated from :class:`TrainConfig`'s fields (their help, choices and
    defaults are written there once), plus ``--resume`` and ``--config``."""
    parser = argparse.ArgumentParser(
        prog="python -m train",
        description=DESCRIPTION,
        epilog=EPILOG.format(presets=_presets_text()),
        formatter_class=HelpFormatter,
        argument_default=None,  # None = not given: the config decides (see resolve)
    )
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f in fields(TrainConfig):
        name = f.metadata["group"]
        if name not in groups:
            groups[name] = parser.add_argument_group(name)
            if not len(groups) - 1:  # the first group: how a run starts
                groups[name].add_argument(
                    "--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR"
                )
                groups[name].add_argument(
                    "--config", metavar="FILE.toml", help="settings file (see below)"
                )
        _add_setting(groups[name], f)
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
        for key in (*MODEL_KEYS, "size", "init", "preset", "adversarial", "arch"):
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
    from pconv.checkpoint import WEIGHTS_NAME
    from pconv.training import Trainer
    from pconv.training.distributed import setup, teardown
    from pconv.training.hooks import FINAL_DIR

    args = build_parser().parse_args(argv)
    command = "python -m train " + shlex.join(sys.argv[1:] if argv is None else list(argv))
    info = None
    clean = False  # whether every rank reached the end normally (see teardown)
    try:
        config, run_dir, resuming = resolve_args(args)
        # before any tensor work: torch's pool is sized once, and workers take one each
        cpu_threads.configure(
            cpu_threads.default_setting() if config.threads is None else config.threads
        )
        info, device = setup(config.device)
        if not info.main:  # library warnings (e.g. the loss backbone's) once, from rank 0
            logging.getLogger("pconv").setLevel(logging.ERROR)
        trainer = Trainer(
            config, run_dir, device=device, dist=info, resume=resuming, command=command
        )
        # A run cut short by resuming with --steps at its last checkpoint has nothing left to
        # train but still owes its final export: run() does it without a step.
        exported = (run_dir / FINAL_DIR / WEIGHTS_NAME).is_file()
        if trainer.step >= trainer.config.steps and exported:
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
            message = exc.render(option) if isinstance(exc, SettingsError) else str(exc)
            print(f"python -m train: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if info is None or info.main:
            print("python -m train: interrupted", file=sys.stderr)
        return 130
    finally:
        if info is not None:
            teardown(info, clean)
