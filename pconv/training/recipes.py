"""Training recipes: per trainable architecture (``--arch``), everything the trainer needs.

The network itself is registered in :mod:`pconv.architectures` (build, recognise, run); a
recipe says how to *train* it. Each network folder registers its own
(``pconv/archs/<name>/recipe.py``, found by :func:`load_recipes`), so the engine, the config
and the command line name no network:

* its presets (model and schedule defaults, ``--preset``) and which one is its default;
* the settings that shape it (``settings``: :func:`pconv.training.settings.setting` fields,
  which join :class:`~pconv.training.config.TrainConfig`; any other recipe's are refused),
  those a preset sets and an ``--init`` file fixes (``model_keys``), how to turn the settings
  into the architecture's config (``model_config``) and a model's config back into settings
  (``settings_of``);
* its loss: a :class:`TrainingLoss`, from the model's training outputs, the photo and the
  ``valid`` mask (1 = known) to a dict of named terms with ``"total"``, and optionally
  another loss for the reconstruction warm-up (an L1-only first stage); the dataclass of term
  weights that ``--loss-weights`` names (``loss_weights``; ``None``: the option is refused);
* the method that gives its training outputs (``train_method``: a dict with at least
  ``"output"``, the prediction the adversary and validation judge; ``None``: ``forward``);
* its defaults (``--adversarial`` kind, learning rates, shares of the adversarial phases,
  masks and their pairing, the perceptual network: they sit over the adversarial design's
  own defaults and under anything the user gives);
* what phase 2 does to the model (``freeze``: the U-Net's encoder BatchNorm) and how an
  ``--init`` model is adapted (``adapt_init``) and its settings recorded (``settle``);
* where ``--arch`` lists it (``order``) and whether it is the default network (``default``).

Nothing here or in a recipe imports :mod:`pconv.training.config` (which reads the registry
for its presets and settings); the callables receive a resolved ``TrainConfig``.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from pconv.architectures import Architecture, get_architecture
from pconv.training.errors import ConfigError, Setting

if TYPE_CHECKING:
    from pconv.training.config import TrainConfig

#: The training outputs of a model: at least ``"output"``, its prediction in ``[0, 1]``.
Outputs = Mapping[str, Tensor]


@dataclass(frozen=True)
class Preset:
    """Model and schedule defaults of one architecture; every value can still be overridden.

    ``model``: values of the recipe's model settings (``TrainConfig`` fields); ``network``:
    values the recipe itself reads when it builds the architecture's config (a named variant).
    """

    summary: str
    size: int
    batch_size: int
    steps: int
    phase2_steps: int
    model: Mapping[str, Any] = field(default_factory=dict)
    network: Mapping[str, Any] = field(default_factory=dict)


class TrainingLoss(nn.Module):
    """The trainer's view of a loss: ``forward(outputs, image, valid)`` -> named terms and
    ``"total"``; ``terms`` (their names besides the total, in log order), ``shown`` (those the
    progress line shows) and ``describe()`` (the record stored with trained weights).

    ``loss`` takes the prediction ``outputs["output"]`` (``key="output"``, a loss of one image
    such as the U-Net's) or every output (``key=None``: a loss that weighs intermediate
    outputs too, such as DeepGIN's coarse and low-resolution ones).

    ``warmup``: another loss with the same terms for the reconstruction warm-up, the first
    ``adv_warmup`` share of the steps (e.g. L1 terms alone there, then everything). The
    trainer sets :attr:`warming_up` before each step from the step alone
    (:meth:`pconv.training.config.TrainConfig.warmup_steps`), so a resumed run continues in
    the same stage; without a ``warmup`` loss the flag changes nothing. ``record``: more
    entries for :meth:`describe` (e.g. which network the perceptual terms ran on).
    """

    def __init__(
        self,
        loss: nn.Module,
        terms: tuple[str, ...],
        shown: tuple[str, ...],
        key: str | None,
        *,
        warmup: nn.Module | None = None,
        record: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.loss = loss
        self.warmup = warmup
        self.terms, self.shown, self.key = tuple(terms), tuple(shown), key
        self.record = dict(record or {})
        #: True during the warm-up steps (set by the trainer; only matters with ``warmup``).
        self.warming_up = False

    def forward(self, outputs: Outputs, image: Tensor, valid: Tensor) -> dict[str, Tensor]:
        loss = self.warmup if self.warming_up and self.warmup is not None else self.loss
        return loss(outputs if self.key is None else outputs[self.key], image, valid)

    def describe(self) -> dict[str, Any]:
        record = {**self.loss.describe(), **self.record}
        if self.warmup is not None:
            record["warmup"] = self.warmup.describe()
        return record


class TrainForward(nn.Module):
    """``forward`` = ``model.<method>``: a model whose training outputs come from another
    method than ``forward``, called through DistributedDataParallel / ``torch.compile``
    (which only wrap ``forward``)."""

    def __init__(self, model: nn.Module, method: str) -> None:
        super().__init__()
        self.model, self.method = model, method

    def forward(self, image: Tensor, valid: Tensor) -> Any:
        return getattr(self.model, self.method)(image, valid)


def at_size(model: nn.Module, config: TrainConfig) -> nn.Module:
    """An ``--init`` model, recorded as trained at the run's crop size (the scale inference
    will work at)."""
    model.config = replace(model.config, resolution=config.size)
    return model


def as_outputs(result: Tensor | Outputs) -> dict[str, Tensor]:
    """A model's result as training outputs: a tensor is the prediction."""
    if isinstance(result, Tensor):
        return {"output": result}
    if "output" not in result:
        raise TypeError(f"training outputs need an 'output' entry, got {sorted(result)}")
    return dict(result)


@dataclass(frozen=True)
class Recipe:
    """How the trainer trains one architecture (see the module docstring)."""

    name: str  # the --arch word
    title: str  # what the exported weights' summary calls it
    summary: str  # what --arch's help says of it
    architecture: str  # its name in pconv.architectures
    presets: Mapping[str, Preset]
    default_preset: str
    #: TrainConfig fields that shape this model (others are refused), declared with
    #: pconv.training.settings.setting(..., type=...)
    settings: Mapping[str, Field]
    model_keys: tuple[str, ...]  # of those, the ones a preset sets and an --init file fixes
    model_config: Callable[[TrainConfig], dict[str, Any]]  # -> the architecture's config data
    settings_of: Callable[[Any], dict[str, Any]]  # a model's config -> model_keys and "size"
    loss: Callable[[TrainConfig], TrainingLoss]
    loss_weights: type | None = None  # the dataclass of term weights --loss-weights names
    defaults: Mapping[str, Any] = field(default_factory=dict)
    train_method: str | None = None
    freeze: Callable[[nn.Module, bool], None] | None = None  # phase 2 (True) / phase 1
    adapt_init: Callable[[nn.Module, TrainConfig], nn.Module] = lambda model, c: at_size(model, c)
    settle: Callable[[TrainConfig, nn.Module], TrainConfig] | None = None
    check: Callable[[TrainConfig, Architecture], None] | None = None
    order: int = 100  # where --arch and the presets list it, lowest first
    default: bool = False  # the network of a run that names neither --arch nor a preset

    @property
    def arch(self) -> Architecture:
        return get_architecture(self.architecture)

    def build(self, config: TrainConfig) -> nn.Module:
        """A fresh model for the resolved settings."""
        arch = self.arch
        return arch.build(arch.config_from_dict(self.model_config(config)))

    def outputs(self, model: nn.Module, image: Tensor, valid: Tensor) -> dict[str, Tensor]:
        """The training outputs of the plain (unwrapped) ``model``."""
        call = getattr(model, self.train_method) if self.train_method else model
        return as_outputs(call(image, valid))

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module whose ``forward`` gives the training outputs (``model`` itself when its
        ``forward`` does)."""
        return TrainForward(model, self.train_method) if self.train_method else model


RECIPES: dict[str, Recipe] = {}


def register_recipe(recipe: Recipe) -> Recipe:
    """Add ``recipe`` (once per name; preset names are shared by all recipes)."""
    if recipe.name in RECIPES and RECIPES[recipe.name] != recipe:
        raise ValueError(f"recipe {recipe.name!r} is registered already")
    taken = {p for r in RECIPES.values() if r.name != recipe.name for p in r.presets}
    if taken & set(recipe.presets):
        raise ValueError(f"preset names {sorted(taken & set(recipe.presets))} are taken")
    if recipe.default_preset not in recipe.presets:
        raise ValueError(f"default preset {recipe.default_preset!r} is not one of its presets")
    RECIPES[recipe.name] = recipe
    return recipe


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ConfigError(Setting("arch"), f" must be one of {', '.join(RECIPES)}") from None


def recipe_of_preset(preset: str) -> Recipe | None:
    for recipe in RECIPES.values():
        if preset in recipe.presets:
            return recipe
    return None


def size_multiple(config: TrainConfig, arch: Architecture, recipe: Recipe) -> None:
    """Generic check: the crop size is a multiple of the architecture's input multiple."""
    if config.size is None:
        return
    try:
        multiple = arch.multiple(arch.config_from_dict(recipe.model_config(config)))
    except ValueError as exc:  # the network's own check, e.g. of its resolution
        raise ConfigError(
            f"the settings do not build a {recipe.architecture} model ({exc})"
        ) from None
    if config.size % multiple:
        raise ConfigError(Setting("size"), f" {config.size} is not a multiple of {multiple}")


def check_recipe(recipe: Recipe, config: TrainConfig) -> None:
    """The recipe's own checks, after the generic ones of ``config.check``."""
    arch = recipe.arch
    if recipe.check is not None:
        recipe.check(config, arch)
    elif all(getattr(config, key) is not None for key in recipe.model_keys):
        size_multiple(config, arch, recipe)


def load_recipes() -> dict[str, Recipe]:
    """Import the recipe of every network folder (``pconv.archs.<name>.recipe``, where one
    exists: a network may be for inference only), in ``order``; :data:`RECIPES`.
    :mod:`pconv.training.config` calls it before it reads the registry."""
    from pconv import archs

    for name in archs.NETWORKS:
        module = f"{archs.__name__}.{name}.recipe"
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)
    ordered = sorted(RECIPES.values(), key=lambda recipe: (recipe.order, recipe.name))
    RECIPES.clear()
    RECIPES.update((recipe.name, recipe) for recipe in ordered)
    return RECIPES


def default_recipe() -> Recipe:
    """The recipe of a run that names neither ``arch`` nor a preset."""
    chosen = [recipe for recipe in RECIPES.values() if recipe.default]
    if len(chosen) != 1:
        raise ValueError(f"want one default recipe, found {[r.name for r in chosen]}")
    return chosen[0]
