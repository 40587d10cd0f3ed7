"""Training settings: one flat dataclass, presets, TOML files, and the order they combine in.

Precedence, lowest first: the built-in defaults, the preset (``--preset``, which sets the model
and the schedule), the config file (``--config run.toml``), the command line. The resolved
values are written to ``RUN_DIR/config.toml``, which ``--config`` reads back unchanged, and
which ``--resume`` uses to continue a run.

Keys in a TOML file are the long option names, with ``-`` or ``_``: ``base-width = 32``.
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from pconv.errors import PConvError
from pconv.losses import LossWeights
from pconv.unet import PRIORS

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser from PyPI (tomli; declared for 3.10 only)
    import tomli as tomllib


class ConfigError(PConvError):
    """A setting that is unknown, malformed or contradicts another."""


@dataclass(frozen=True)
class Preset:
    """Model and schedule defaults; every value can still be overridden."""

    summary: str
    depth: int
    base_width: int
    max_width_mult: int
    size: int
    batch_size: int
    steps: int
    phase2_steps: int


PRESETS: dict[str, Preset] = {
    "paper-512": Preset(
        "the paper's U-Net at 512 px: 8 levels, 64..512 channels, batch 6",
        depth=8,
        base_width=64,
        max_width_mult=8,
        size=512,
        batch_size=6,
        steps=200_000,
        phase2_steps=50_000,
    ),
    "paper-256": Preset(
        "the paper's U-Net at 256 px (7 levels, as the zoo's places2 model), batch 6",
        depth=7,
        base_width=64,
        max_width_mult=8,
        size=256,
        batch_size=6,
        steps=200_000,
        phase2_steps=50_000,
    ),
    "compact-256": Preset(
        "a quarter of the paper's parameters at 256 px: 7 levels, 32..256 channels, batch 8",
        depth=7,
        base_width=32,
        max_width_mult=8,
        size=256,
        batch_size=8,
        steps=100_000,
        phase2_steps=25_000,
    ),
    "compact-128": Preset(
        "a small model for quick experiments and CPUs: 128 px, 6 levels, 16..128 channels",
        depth=6,
        base_width=16,
        max_width_mult=8,
        size=128,
        batch_size=8,
        steps=20_000,
        phase2_steps=5_000,
    ),
}
DEFAULT_PRESET = "paper-256"
#: Steps of a fine-tuning run started from ``--init`` when ``--steps`` is not given.
INIT_STEPS = 20_000

AMP_CHOICES = ("auto", "bf16", "fp16", "none")
BORDER_CHOICES = ("any", "clear", "touch")
CROP_CHOICES = ("random-scale", "native", "fit")
TENSORBOARD_CHOICES = ("auto", "on", "off")
PERCEPTUAL_CHOICES = ("auto", "vgg16-hub", "stlpips-vgg16", "none")
#: Model keys that a preset sets and that an ``--init`` file fixes.
MODEL_KEYS = ("depth", "base_width", "max_width_mult")


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a run. ``None`` means "derived" (from the preset, the data, the init)."""

    data: list[str] = field(default_factory=list)
    output: str | None = None
    init: str | None = None
    preset: str = DEFAULT_PRESET
    name: str | None = None
    licence: str = "other"
    # model
    depth: int | None = None
    base_width: int | None = None
    max_width_mult: int | None = None
    size: int | None = None
    prior: str | None = None  # None: the --init model's, else "none"
    # schedule
    steps: int | None = None
    phase2_steps: int | None = None
    lr: float = 2e-4
    finetune_lr: float = 5e-5
    batch_size: int | None = None
    workers: int = 2
    clip_grad: float = 0.0
    seed: int = 0
    # loss
    perceptual: str = "auto"
    loss_weights: str = ""
    # masks
    masks: str = "irregular:1,freeform:1,lama-medium:1"
    mask_dir: str | None = None
    border: str = "any"
    mask_buckets: str = ""
    # data
    crop: str = "random-scale"
    flip: bool = True
    val: str | None = None
    val_holdout: int | None = None
    val_count: int = 64
    # runtime
    device: str = "auto"
    amp: str = "auto"
    compile: bool = False
    channels_last: bool = False
    # bookkeeping
    log_every: int = 20
    val_every: int = 1000
    ckpt_every: int = 1000
    keep: int = 3
    tensorboard: str = "auto"

    # -- derived values --------------------------------------------------------------------

    @property
    def phase1_steps(self) -> int:
        return max(0, int(self.steps or 0) - int(self.phase2_steps or 0))

    def loss_weight_values(self) -> LossWeights:
        return parse_loss_weights(self.loss_weights)

    def border_rule(self) -> bool | None:
        return {"any": None, "clear": False, "touch": True}[self.border]

    def buckets(self) -> list[int] | None:
        if not self.mask_buckets.strip():
            return None
        return [int(b) for b in self.mask_buckets.split(",") if b.strip()]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


FIELD_NAMES = tuple(f.name for f in fields(TrainConfig))


def parse_loss_weights(text: str) -> LossWeights:
    """``"hole=6,style=120"`` -> :class:`LossWeights` (unnamed terms keep the paper's value)."""
    known = {f.name for f in fields(LossWeights)}
    values: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in known:
            raise ConfigError(
                f"loss weight {item!r}: want NAME=NUMBER with NAME in {', '.join(sorted(known))}"
            )
        try:
            values[key] = float(value)
        except ValueError:
            raise ConfigError(f"loss weight {item!r}: {value!r} is not a number") from None
        if not math.isfinite(values[key]) or values[key] < 0:
            raise ConfigError(f"loss weight {item!r} must be a finite number >= 0")
    return LossWeights(**values)


# -- files ---------------------------------------------------------------------------------


def load_toml(path: str | Path) -> dict[str, Any]:
    """A config file as a dict of known keys (``-`` or ``_`` accepted); one-line errors."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name == "loss_weights" and isinstance(value, dict):  # a [loss-weights] table
            value = ",".join(f"{k}={v}" for k, v in value.items())
        if name not in FIELD_NAMES:
            raise ConfigError(f"{path}: unknown setting {key!r}")
        values[name] = value
    if isinstance(values.get("data"), str):
        values["data"] = [values["data"]]
    return values


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def dump_toml(config: TrainConfig, header: str = "") -> str:
    """The resolved config as TOML that :func:`load_toml` reads back to the same values.

    TOML has no null: unset (``None``) values are written as comments.
    """
    lines = [f"# {line}" for line in header.splitlines()]
    for key, value in config.to_dict().items():
        toml_key = key.replace("_", "-")
        if value is None:
            lines.append(f"# {toml_key} = (unset)")
        else:
            lines.append(f"{toml_key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


# -- combining -------------------------------------------------------------------------------


def _coerce(values: dict[str, Any], where: str) -> dict[str, Any]:
    """Check the types of values from a file (argparse already typed the command line)."""
    out: dict[str, Any] = {}
    types = {f.name: f.type for f in fields(TrainConfig)}
    for key, value in values.items():
        kind = str(types[key])
        try:
            if value is None or key == "data":
                out[key] = [str(v) for v in value] if key == "data" else None
            elif kind.startswith("bool"):
                if not isinstance(value, bool):
                    raise TypeError
                out[key] = value
            elif kind.startswith("int"):
                if isinstance(value, bool) or not float(value).is_integer():
                    raise TypeError
                out[key] = int(value)
            elif kind.startswith("float"):
                if isinstance(value, bool):
                    raise TypeError
                out[key] = float(value)
            else:
                out[key] = str(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{where}: {key.replace('_', '-')} = {value!r} has the wrong type"
            ) from None
    return out


def resolve(
    file_values: dict[str, Any] | None = None,
    cli_values: dict[str, Any] | None = None,
) -> TrainConfig:
    """Defaults < preset < file < command line, then checked. Model keys may stay ``None``
    when ``init`` is set (the init file decides them later, see :func:`with_model`)."""
    file_values = _coerce(file_values or {}, "config file")
    cli_values = cli_values or {}
    given = {**file_values, **cli_values}
    preset_name = given.get("preset", DEFAULT_PRESET)
    if preset_name not in PRESETS:
        raise ConfigError(f"unknown preset {preset_name!r} (choose from {', '.join(PRESETS)})")
    preset = asdict(PRESETS[preset_name])
    preset.pop("summary")
    if given.get("init"):
        # Fine-tuning: the file fixes the model; the schedule is phase 2 only by default.
        for key in (*MODEL_KEYS, "size"):
            preset.pop(key)
        preset["steps"] = INIT_STEPS
        preset.pop("phase2_steps")
    merged = {**preset, **given}
    if given.get("init") and "phase2_steps" not in given:
        merged["phase2_steps"] = merged["steps"]
    elif "steps" in given and "phase2_steps" not in given:
        # Keep the preset's share of fine-tuning when only the total is given.
        share = PRESETS[preset_name].phase2_steps / PRESETS[preset_name].steps
        merged["phase2_steps"] = round(int(merged["steps"]) * share)
    config = TrainConfig(**merged)
    check(config)
    return config


def with_model(
    config: TrainConfig, depth: int, base_width: int, max_width_mult: int, size: int
) -> TrainConfig:
    """Fill in the model keys from an ``--init`` file; explicit values must agree with it."""
    for key, value in zip(MODEL_KEYS, (depth, base_width, max_width_mult), strict=True):
        mine = getattr(config, key)
        if mine is not None and mine != value:
            raise ConfigError(
                f"--{key.replace('_', '-')} {mine} contradicts the --init model ({key} {value}); "
                "leave it out when fine-tuning"
            )
    config = replace(
        config,
        depth=depth,
        base_width=base_width,
        max_width_mult=max_width_mult,
        size=config.size or size,
    )
    check(config)
    return config


def check(config: TrainConfig) -> None:
    """Reject values that cannot work, each with a one-line reason."""
    if config.depth is not None and not 1 <= config.depth <= 10:
        raise ConfigError(f"--depth must be 1..10, got {config.depth}")
    for key in ("base_width", "max_width_mult", "size", "batch_size", "steps"):
        value = getattr(config, key)
        if value is not None and value < 1:
            raise ConfigError(f"--{key.replace('_', '-')} must be >= 1, got {value}")
    if config.size is not None and config.depth is not None and config.size % 2**config.depth:
        raise ConfigError(f"--size {config.size} is not a multiple of 2**depth = {2**config.depth}")
    if config.steps is not None and not 0 <= (config.phase2_steps or 0) <= config.steps:
        raise ConfigError(
            f"--phase2-steps {config.phase2_steps} must be between 0 and --steps {config.steps}"
        )
    for key in ("lr", "finetune_lr"):
        if not (math.isfinite(getattr(config, key)) and getattr(config, key) > 0):
            raise ConfigError(f"--{key.replace('_', '-')} must be > 0")
    for key in ("log_every", "val_every", "ckpt_every", "keep", "val_count"):
        if getattr(config, key) < 1:
            raise ConfigError(f"--{key.replace('_', '-')} must be >= 1")
    if config.workers < 0 or config.clip_grad < 0 or (config.val_holdout or 0) < 0:
        raise ConfigError("--workers, --clip-grad and --val-holdout must be >= 0")
    if config.prior is not None and config.prior not in PRIORS:
        raise ConfigError(f"--prior must be one of {', '.join(PRIORS)}")
    for key, choices in (
        ("amp", AMP_CHOICES),
        ("border", BORDER_CHOICES),
        ("crop", CROP_CHOICES),
        ("tensorboard", TENSORBOARD_CHOICES),
    ):
        if getattr(config, key) not in choices:
            raise ConfigError(f"--{key} must be one of {', '.join(choices)}")
    parse_loss_weights(config.loss_weights)
    if config.perceptual not in PERCEPTUAL_CHOICES and not (
        config.perceptual.startswith("vgg16-file:") and len(config.perceptual) > 11
    ):
        raise ConfigError(
            f"--perceptual {config.perceptual!r}: choose from "
            f"{', '.join(PERCEPTUAL_CHOICES)} or vgg16-file:PATH"
        )
    try:
        config.buckets()
    except ValueError:
        raise ConfigError(f"--mask-buckets {config.mask_buckets!r}: want numbers 0..5") from None
