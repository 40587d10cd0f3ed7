"""Training settings: one flat dataclass, presets, TOML files, and the order they combine in.

Precedence, lowest first: the built-in defaults, the preset (``--preset``, which sets the model
and the schedule), the config file (``--config run.toml``), the command line. The resolved
values are written to ``RUN_DIR/config.toml``, which ``--config`` reads back unchanged, and
which ``--resume`` uses to continue a run.

Keys in a TOML file are the long option names, with ``-`` or ``_``: ``base-width = 32``.

Each field of :class:`TrainConfig` carries its documentation
(:func:`pconv.training.settings.setting`): its default is written once, there, and the command
line (``train.cli``) is generated from the fields. The settings every network shares are
declared here; those that shape one network are declared by its recipe
(``pconv/archs/<name>/recipe.py``) and join the type when it is built, below.
"""

from __future__ import annotations

import math
import sys
from dataclasses import MISSING, Field, asdict, dataclass, field, fields, make_dataclass, replace
from pathlib import Path
from typing import Any

from pconv import threads as cpu_threads
from pconv.errors import InputError
from pconv.masks import BORDER_RULES, GENERATORS, parse_border, parse_buckets
from pconv.precision import PRECISIONS
from pconv.training.errors import ConfigError, Setting
from pconv.training.recipes import (
    RECIPES,
    Preset,
    Recipe,
    check_recipe,
    default_recipe,
    get_recipe,
    load_recipes,
    recipe_of_preset,
)
from pconv.training.settings import (
    ADVERSARIAL,
    BOOKS,
    DATA,
    HARDWARE,
    LOSS,
    MASKS,
    MODEL,
    RUN,
    SCHEDULE,
    setting,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser from PyPI (tomli; declared for 3.10 only)
    import tomli as tomllib


load_recipes()
DEFAULT_ARCH = default_recipe().name

#: Every architecture's presets, by name (each belongs to one recipe, see
#: :mod:`pconv.training.recipes`): ``--preset`` picks one, and with it the ``--arch``.
PRESETS: dict[str, Preset] = {name: p for r in RECIPES.values() for name, p in r.presets.items()}
DEFAULT_PRESET = RECIPES[DEFAULT_ARCH].default_preset
#: Steps of a fine-tuning run started from ``--init`` when ``--steps`` is not given.
INIT_STEPS = 20_000

BORDER_CHOICES = tuple(BORDER_RULES)
CROP_CHOICES = ("random-scale", "native", "fit")
TENSORBOARD_CHOICES = ("auto", "on", "off")
PERCEPTUAL_CHOICES = ("auto", "vgg16-hub", "vgg19", "stlpips-vgg16", "none")
#: ``--perceptual`` values that name a file: the prefix, then the path
PERCEPTUAL_FILES = ("vgg16-file:", "vgg19-file:")
ADVERSARIAL_CHOICES = ("none", "global-local", "multiscale-patch")
#: ``--mask-pairing``: one mask per image (drawn from the mix), or one of each generator.
MASK_PAIRINGS = ("one", "each")
#: What each ``--adversarial`` design sets when the user does not (see :func:`resolve`):
#: Jersch et al.'s global-local design adds ``1/2000 * -log D`` and trains in three phases,
#: Iizuka et al.'s 90k / 10k / 400k of 500k iterations; Li et al.'s multiscale-patch design
#: (DeepGIN) trains both networks from the start with lambda_adv 0.001, Adam beta1 0.5, lr 1e-4
#: (G) and 4e-4 (D).
ADVERSARIAL_DEFAULTS: dict[str, dict[str, float]] = {
    "global-local": {
        "adv_weight": 1 / 2000, "adam_beta1": 0.9, "adv_warmup": 0.18, "adv_d_only": 0.02,
    },
    "multiscale-patch": {
        "adv_weight": 0.001, "adam_beta1": 0.5, "adv_warmup": 0.0, "adv_d_only": 0.0,
        "lr": 1e-4, "d_lr": 4e-4,
    },
}  # fmt: skip
#: Model keys that a preset sets and that an ``--init`` file fixes, over every recipe.
MODEL_KEYS = tuple(dict.fromkeys(k for r in RECIPES.values() for k in r.model_keys))
#: The settings that shape a network, over every recipe; each recipe refuses the others'.
MODEL_SETTINGS = tuple(dict.fromkeys(k for r in RECIPES.values() for k in r.settings))
#: The generator's phase 1 learning rate (the paper's), unless the adversarial design sets one.
LR = 2e-4


def _arch_help() -> str:
    listed = [f"{recipe.name} ({recipe.summary})" for recipe in RECIPES.values()]
    return (
        f"the network: {', '.join(listed)}, each with its own presets, loss and schedule; a "
        "preset of another network selects that network"
    )


@dataclass(frozen=True)
class SharedSettings:
    """The settings of a run that every network shares (the fields of :class:`TrainConfig`
    but the recipes' own); ``None`` means "derived" (from the preset, the data, the init)."""

    # setting() is field() with documentation; the list default is copied per instance
    data: list[str] = setting([], "training image folders", group=RUN, metavar="DIR")  # noqa: RUF009
    output: str | None = setting(
        None, "folder for this run's files", group=RUN, metavar="RUN_DIR", short="-o"
    )
    init: str | None = setting(
        None,
        "start from these weights (zoo name, Hub repo id, folder or .safetensors, or a "
        "checkpoint of another run: its model only, not its optimiser or step); the model's "
        "shape comes from them and training is phase 2 only unless --phase2-steps says otherwise",
        group=RUN,
        metavar="MODEL",
    )
    arch: str = setting(DEFAULT_ARCH, _arch_help(), group=RUN, choices=tuple(RECIPES))
    preset: str | None = setting(
        None,
        "model and schedule",
        group=RUN,
        choices=tuple(PRESETS),
        unset=f"{DEFAULT_PRESET}, or the default of another arch (listed below)",
    )
    name: str | None = setting(
        None, "model name in the exported metadata", group=RUN, unset="RUN_DIR's name"
    )
    licence: str = setting("other", "SPDX licence of the weights for the card", group=RUN)
    # model
    size: int | None = setting(
        None,
        "training crop size in px (a multiple of what the network's input needs)",
        group=MODEL,
        unset="the preset's",
    )
    # the recipes' own settings follow here (see TrainConfig)
    # schedule
    steps: int | None = setting(
        None,
        "total optimisation steps, both phases",
        group=SCHEDULE,
        unset=f"the preset's, {INIT_STEPS} with --init",
    )
    phase2_steps: int | None = setting(
        None,
        "how many of them fine-tune with the encoder's BatchNorm frozen",
        group=SCHEDULE,
        unset="the preset's share, or all with --init",
    )
    lr: float = setting(
        LR, "phase 1 Adam learning rate (1e-4 with --adversarial multiscale-patch)", group=SCHEDULE
    )
    finetune_lr: float = setting(5e-5, "phase 2 learning rate", group=SCHEDULE)
    lr_decay: float = setting(
        0.0,
        "share of --steps at the end over which every learning rate falls linearly to zero "
        "(DeepGIN's schedule; 0: constant)",
        group=SCHEDULE,
        metavar="SHARE",
    )
    batch_size: int | None = setting(
        None, "images per step and process", group=SCHEDULE, unset="the preset's"
    )
    clip_grad: float = setting(0.0, "clip the gradient norm (0 = off)", group=SCHEDULE)
    seed: int = setting(0, "seeds model init, data order, crops, masks", group=SCHEDULE)
    # loss
    perceptual: str = setting(
        "auto",
        "VGG for the perceptual and style terms: auto (the paper's VGG16 from the Hub cache, "
        "then the offline ST-LPIPS trunk, then none), vgg16-hub, vgg16-file:PATH, vgg19 "
        "(Li et al.'s VGG-19 conv1_1..conv5_1, timm/vgg19.tv_in1k from the Hub cache), "
        "vgg19-file:PATH, stlpips-vgg16, none (pixel + TV only); deepgin's default is the "
        "offline trunk",
        group=LOSS,
        metavar="BACKBONE",
    )
    loss_weights: str = setting(
        "",
        "term weights, e.g. hole=6,style=120 (paper: valid=1, hole=6, perceptual=0.05, "
        "style=120, tv=0.1; ssim, 1 - SSIM of the composite, is ours and 0 by default; deepgin: "
        "valid=1, hole=5, perceptual=0.05, style=80, tv=0.1)",
        group=LOSS,
        metavar="K=V,...",
        unset="the paper's",
    )
    # adversarial
    adversarial: str = setting(
        "none",
        "train against discriminators: global-local (Jersch et al.'s: a global and a local "
        "discriminator, + 1/2000 -log D, three phases) or multiscale-patch (Li et al.'s DeepGIN: "
        "two spectrally normalised conditional PatchGANs at full and half scale, hinge loss; "
        "lr 1e-4 unless --lr is given, D at 4e-4, Adam beta1 0.5)",
        group=ADVERSARIAL,
        choices=ADVERSARIAL_CHOICES,
    )
    adv_weight: float | None = setting(
        None,
        "weight of the generator's adversarial term",
        group=ADVERSARIAL,
        unset="1/2000 with global-local, 0.001 with multiscale-patch",
    )
    d_lr: float | None = setting(
        None,
        "the discriminators' Adam learning rate",
        group=ADVERSARIAL,
        unset="4e-4 with multiscale-patch, else --lr",
    )
    adam_beta1: float | None = setting(
        None,
        "Adam beta1 of the generator and the discriminators",
        group=ADVERSARIAL,
        unset="0.5 with multiscale-patch, else 0.9",
    )
    adv_warmup: float | None = setting(
        None,
        "share of --steps trained on the reconstruction loss alone, before any discriminator "
        "(deepgin: on its L1 terms alone, also without --adversarial)",
        group=ADVERSARIAL,
        metavar="SHARE",
        unset="0.18 with global-local, 0.1 with deepgin, else 0",
    )
    adv_d_only: float | None = setting(
        None,
        "share of --steps after that in which only the discriminators learn",
        group=ADVERSARIAL,
        metavar="SHARE",
        unset="0.02 with global-local, else 0",
    )
    # masks
    masks: str = setting(
        "irregular:1,freeform:1,lama-medium:1",
        f"generators and weights, e.g. irregular:2,lama-thick:1 (from: {', '.join(GENERATORS)}),"
        " or a named mix: deepgin (rect:1,freeform:1,cellular:1, deepgin's default)",
        group=MASKS,
        metavar="MIX",
    )
    mask_pairing: str = setting(
        "one",
        "one: each image gets one mask drawn from the mix; each: each image comes with one "
        "mask of every generator of the mix (DeepGIN's recipe and deepgin's default), so "
        "a step trains on that many pairs per image",
        group=MASKS,
        choices=MASK_PAIRINGS,
    )
    mask_dir: str | None = setting(
        None,
        "mask images (white = hole) for the 'folder' generator; alone it means --masks folder:1",
        group=MASKS,
        metavar="DIR",
    )
    border: str = setting(
        "any",
        "holes anywhere (any), kept clear of the image border (clear), or touching it "
        "(touch); pconv masks --border takes the same words",
        group=MASKS,
        choices=BORDER_CHOICES,
    )
    mask_buckets: str = setting(
        "",
        "hole-ratio buckets 0..5 to draw from, each mask from one of them",
        group=MASKS,
        metavar="0,1,..",
        unset="the generators' own distribution",
    )
    # data
    val: str | None = setting(
        None, "validation images (metrics, samples, best)", group=DATA, metavar="DIR"
    )
    val_holdout: int | None = setting(
        None,
        "validate on N images held out of --data",
        group=DATA,
        metavar="N",
        unset="without --val: 5%, max 32",
    )
    val_count: int = setting(64, "validate on at most N images", group=DATA, metavar="N")
    crop: str = setting(
        "random-scale",
        "random-scale (between native pixels and the whole short side), native (no "
        "rescaling), fit (short side = --size)",
        group=DATA,
        choices=CROP_CHOICES,
    )
    flip: bool = setting(True, "random mirror", group=DATA)
    workers: int = setting(2, "DataLoader processes per training process", group=DATA)
    # runtime
    device: str = setting("auto", "auto (CUDA, MPS, CPU), cpu, cuda, cuda:1 ...", group=HARDWARE)
    precision: str = setting(
        "auto",
        "autocast precision, the words of pconv's inference and the ComfyUI nodes: auto = "
        "bf16 on GPUs that have it, else fp16 with a grad scaler; fp32 on CPU",
        group=HARDWARE,
        choices=PRECISIONS,
    )
    threads: str | None = setting(
        None,
        "torch's CPU threads in each training process: a number, or auto (the usable cores "
        "less those other processes keep busy now); DataLoader workers use one each",
        group=HARDWARE,
        metavar="N|auto",
        unset="$PCONV_THREADS, else auto",
    )
    compile: bool = setting(False, "torch.compile", group=HARDWARE)
    channels_last: bool = setting(False, "NHWC memory layout", group=HARDWARE)
    # bookkeeping
    log_every: int = setting(20, "log losses every N steps", group=BOOKS, metavar="N")
    val_every: int = setting(
        1000, "validate, write samples every N steps", group=BOOKS, metavar="N"
    )
    ckpt_every: int = setting(1000, "checkpoint every N steps", group=BOOKS, metavar="N")
    keep: int = setting(3, "checkpoints kept", group=BOOKS, metavar="K")
    tensorboard: str = setting(
        "auto", "TensorBoard logs (auto: if installed)", group=BOOKS, choices=TENSORBOARD_CHOICES
    )


class _Derived:
    """What :class:`TrainConfig` derives from its values."""

    __slots__ = ()

    @property
    def phase1_steps(self) -> int:
        return max(0, int(self.steps or 0) - int(self.phase2_steps or 0))  # type: ignore[attr-defined]

    @property
    def warmup_steps(self) -> int:
        """Steps ``[0, warmup_steps)`` are the reconstruction warm-up (``adv_warmup``'s share):
        no discriminator learns or judges, and a recipe's warm-up loss is used."""
        return round((self.adv_warmup or 0.0) * int(self.steps or 0))  # type: ignore[attr-defined]

    def loss_weight_values(self) -> Any:
        """``loss_weights`` as the recipe's dataclass of term weights."""
        return parse_loss_weights(self.loss_weights, get_recipe(self.arch))  # type: ignore[attr-defined]

    def border_rule(self) -> bool | None:
        return parse_border(self.border)  # type: ignore[attr-defined]

    def buckets(self) -> tuple[int, ...] | None:
        return parse_buckets(self.mask_buckets)  # type: ignore[attr-defined]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]


def _copy(name: str, f: Field, type_: Any) -> tuple[str, Any, Any]:
    """A field spec for :func:`dataclasses.make_dataclass`: a copy of ``f``."""
    if f.default_factory is not MISSING:  # type: ignore[misc]
        return name, type_, field(default_factory=f.default_factory, metadata=f.metadata)  # type: ignore[misc]
    return name, type_, field(default=f.default, metadata=f.metadata)


def _recipe_settings() -> list[tuple[str, Any, Any]]:
    """Every recipe's settings, once each, in recipe order. A setting that several recipes
    declare (``base_width``) must have one type; its help names what each says of it."""
    owners: dict[str, list[tuple[Recipe, Field]]] = {}
    for recipe in RECIPES.values():
        for name, f in recipe.settings.items():
            owners.setdefault(name, []).append((recipe, f))
    specs = []
    for name, declared in owners.items():
        first = declared[0][1]
        if len({f.metadata["type"] for _, f in declared}) != 1:
            raise TypeError(f"recipes declare the setting {name!r} with different types")
        if len(declared) > 1:
            text = "; ".join(f"{recipe.name}: {f.metadata['help']}" for recipe, f in declared)
            first = field(default=first.default, metadata={**first.metadata, "help": text})
        specs.append(_copy(name, first, first.metadata["type"]))
    return specs


def _config_type() -> type:
    """:class:`SharedSettings`' fields with every recipe's after ``size``, frozen."""
    specs: list[tuple[str, Any, Any]] = []
    for f in fields(SharedSettings):
        specs.append(_copy(f.name, f, f.type))
        if f.name == "size":
            specs.extend(_recipe_settings())
    cls = make_dataclass("TrainConfig", specs, bases=(_Derived,), frozen=True)
    cls.__module__ = __name__
    cls.__doc__ = (
        "Every setting of a run: the shared ones (:class:`SharedSettings`) and the recipes' "
        'own. ``None`` means "derived" (from the preset, the data, the init). Each field\'s '
        "metadata documents it; the command line's options, their help and the TOML keys are "
        "generated from these fields, in this order."
    )
    return cls


TrainConfig: Any = _config_type()


FIELD_NAMES = tuple(f.name for f in fields(TrainConfig))


def parse_loss_weights(text: str, recipe: Recipe) -> Any:
    """``"hole=6,style=120"`` -> the recipe's dataclass of term weights (unnamed terms keep
    its paper's value); a recipe without one takes no ``loss_weights``."""
    if recipe.loss_weights is None:
        if text.strip():
            raise ConfigError(
                Setting("loss_weights"), " does not apply to ", Setting("arch"), f" {recipe.name}"
            )
        return None
    known = {f.name for f in fields(recipe.loss_weights)}
    values: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in known:
            raise ConfigError(
                Setting("loss_weights"),
                f" {item!r}: want NAME=NUMBER with NAME a term of ", Setting("arch"),
                f" {recipe.name}'s loss: {', '.join(sorted(known))}",
            )  # fmt: skip
        try:
            values[key] = float(value)
        except ValueError:
            raise ConfigError(
                Setting("loss_weights"), f" {item!r}: {value!r} is not a number"
            ) from None
        if not math.isfinite(values[key]) or values[key] < 0:
            raise ConfigError(Setting("loss_weights"), f" {item!r} must be a finite number >= 0")
    return recipe.loss_weights(**values)


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
    recipe = _recipe(given)
    preset_name = given.get("preset", recipe.default_preset)
    if preset_name not in PRESETS:
        raise ConfigError(f"unknown preset {preset_name!r} (choose from {', '.join(PRESETS)})")
    if preset_name not in recipe.presets:
        raise ConfigError(
            Setting("preset"), f" {preset_name} is a preset of ", Setting("arch"),
            f" {recipe_of_preset(preset_name).name}, not of {recipe.name} (its presets: "
            f"{', '.join(recipe.presets)})",
        )  # fmt: skip
    chosen = recipe.presets[preset_name]
    preset: dict[str, Any] = {
        **chosen.model, "size": chosen.size, "batch_size": chosen.batch_size,
        "steps": chosen.steps, "phase2_steps": chosen.phase2_steps,
    }  # fmt: skip
    if given.get("init"):
        # Fine-tuning: the file fixes the model; the schedule is phase 2 only by default.
        for key in (*recipe.model_keys, "size"):
            preset.pop(key)
        preset["steps"] = INIT_STEPS
        preset.pop("phase2_steps")
    merged = {**recipe.defaults, **preset, **given, "arch": recipe.name, "preset": preset_name}
    if given.get("init") and "phase2_steps" not in given:
        merged["phase2_steps"] = merged["steps"]
    elif "steps" in given and "phase2_steps" not in given:
        # Keep the preset's share of fine-tuning when only the total is given.
        share = chosen.phase2_steps / chosen.steps
        merged["phase2_steps"] = round(int(merged["steps"]) * share)
    adversarial = merged.get("adversarial", "none")
    for key, value in ADVERSARIAL_DEFAULTS.get(adversarial, {}).items():
        if key not in given and key not in recipe.defaults:  # the design's values, unless
            merged[key] = value  # the user (or the network's recipe) chose them
    if adversarial in ADVERSARIAL_DEFAULTS and "d_lr" not in merged:
        merged["d_lr"] = merged.get("lr", LR)
    config = TrainConfig(**merged)
    check(config)
    return config


def _recipe(given: dict[str, Any]) -> Recipe:
    """The recipe a run's given values select: ``arch``, else the preset's, else the U-Net."""
    if "arch" in given:
        return get_recipe(given["arch"])
    return recipe_of_preset(given.get("preset", "")) or RECIPES[DEFAULT_ARCH]


def with_model(config: TrainConfig, values: dict[str, Any]) -> TrainConfig:
    """Fill in the model keys from an ``--init`` file or a checkpoint (``values``: the
    recipe's ``settings_of`` its model config); explicit values must agree with it."""
    recipe = get_recipe(config.arch)
    for key in recipe.model_keys:
        mine, value = getattr(config, key), values[key]
        if mine is not None and mine != value:
            raise ConfigError(
                Setting(key), f" {mine} contradicts the ", Setting("init"),
                f" model ({key} {value}); leave it out when fine-tuning",
            )  # fmt: skip
    config = replace(
        config, **{k: values[k] for k in recipe.model_keys}, size=config.size or values["size"]
    )
    check(config)
    return config


def check(config: TrainConfig) -> None:
    """Reject values that cannot work, each with a one-line reason."""
    recipe = get_recipe(config.arch)
    for key in MODEL_SETTINGS:
        if key not in recipe.settings and getattr(config, key) is not None:
            raise ConfigError(
                Setting(key), " does not apply to ", Setting("arch"), f" {config.arch}"
            )
    for key in ("size", "batch_size", "steps"):
        value = getattr(config, key)
        if value is not None and value < 1:
            raise ConfigError(Setting(key), f" must be >= 1, got {value}")
    if config.steps is not None and not 0 <= (config.phase2_steps or 0) <= config.steps:
        raise ConfigError(
            Setting("phase2_steps"), f" {config.phase2_steps} must be between 0 and ",
            Setting("steps"), f" {config.steps}",
        )  # fmt: skip
    for key in ("lr", "finetune_lr"):
        if not (math.isfinite(getattr(config, key)) and getattr(config, key) > 0):
            raise ConfigError(Setting(key), " must be > 0")
    if not 0 <= config.lr_decay <= 1:
        raise ConfigError(Setting("lr_decay"), f" must be a share in [0, 1], got {config.lr_decay}")
    for key in ("log_every", "val_every", "ckpt_every", "keep", "val_count"):
        if getattr(config, key) < 1:
            raise ConfigError(Setting(key), " must be >= 1")
    if config.workers < 0 or config.clip_grad < 0 or (config.val_holdout or 0) < 0:
        raise ConfigError(
            Setting("workers"), ", ", Setting("clip_grad"), " and ", Setting("val_holdout"),
            " must be >= 0",
        )  # fmt: skip
    for key, f in recipe.settings.items():
        choices = f.metadata.get("choices")
        if choices and getattr(config, key) is not None and getattr(config, key) not in choices:
            raise ConfigError(Setting(key), f" must be one of {', '.join(choices)}")
    for key, choices in (
        ("precision", PRECISIONS),
        ("border", BORDER_CHOICES),
        ("crop", CROP_CHOICES),
        ("tensorboard", TENSORBOARD_CHOICES),
    ):
        if getattr(config, key) not in choices:
            raise ConfigError(Setting(key), f" must be one of {', '.join(choices)}")
    parse_loss_weights(config.loss_weights, recipe)
    if config.threads is not None:
        try:
            cpu_threads.parse(config.threads)
        except InputError:
            raise ConfigError(
                Setting("threads"), f" {config.threads!r}: want a whole number >= 1, or auto"
            ) from None
    if config.mask_pairing not in MASK_PAIRINGS:
        raise ConfigError(Setting("mask_pairing"), f" must be one of {', '.join(MASK_PAIRINGS)}")
    check_adversarial(config)
    if config.perceptual not in PERCEPTUAL_CHOICES and not any(
        config.perceptual.startswith(prefix) and len(config.perceptual) > len(prefix)
        for prefix in PERCEPTUAL_FILES
    ):
        raise ConfigError(
            Setting("perceptual"), f" {config.perceptual!r}: choose from "
            f"{', '.join(PERCEPTUAL_CHOICES)}, vgg16-file:PATH or vgg19-file:PATH",
        )  # fmt: skip
    try:
        config.buckets()
    except InputError:
        raise ConfigError(
            Setting("mask_buckets"), f" {config.mask_buckets!r}: want numbers 0..5"
        ) from None
    check_recipe(recipe, config)


def check_adversarial(config: TrainConfig) -> None:
    if config.adversarial not in ADVERSARIAL_CHOICES:
        raise ConfigError(
            Setting("adversarial"), f" must be one of {', '.join(ADVERSARIAL_CHOICES)}"
        )
    if config.adversarial == "none":
        if not 0 <= (config.adv_warmup or 0.0) <= 1:
            raise ConfigError(Setting("adv_warmup"), " must be a share in [0, 1]")
        return
    weight, beta1 = config.adv_weight or 0.0, config.adam_beta1 or 0.0
    if not (math.isfinite(weight) and weight >= 0):
        raise ConfigError(Setting("adv_weight"), " must be a finite number >= 0")
    if config.d_lr is None or not (math.isfinite(config.d_lr) and config.d_lr > 0):
        raise ConfigError(Setting("d_lr"), " must be > 0")
    if not 0 <= beta1 < 1:
        raise ConfigError(Setting("adam_beta1"), " must be in [0, 1)")
    warmup, d_only = config.adv_warmup or 0.0, config.adv_d_only or 0.0
    if not (0 <= warmup <= 1 and 0 <= d_only <= 1 and warmup + d_only <= 1):
        raise ConfigError(
            Setting("adv_warmup"), " and ", Setting("adv_d_only"),
            " must be shares in [0, 1] that add up to at most 1",
        )  # fmt: skip
    if config.adversarial == "global-local" and config.size is not None and config.size < 16:
        raise ConfigError(Setting("size"), " must be >= 16 for the global-local discriminator")
