"""Training recipes: per trainable architecture (``--arch``), everything the trainer needs.

The network itself lives in :mod:`pconv.architectures` (build, recognise, run); a recipe says
how to *train* it, so that a new network is one :func:`register_recipe` call here and no
special case in the engine, the config or the command line:

* its presets (model and schedule defaults, ``--preset``) and which one is its default;
* the :class:`~pconv.training.config.TrainConfig` fields that shape it (``settings``; any
  other recipe's are refused), those a preset sets and an ``--init`` file fixes
  (``model_keys``), how to turn the settings into the architecture's config
  (``model_config``) and a model's config back into settings (``settings_of``);
* its loss: a :class:`TrainingLoss`, from the model's training outputs, the photo and the
  ``valid`` mask (1 = known) to a dict of named terms with ``"total"``, and optionally
  another loss for the reconstruction warm-up (DeepGIN's L1-only first stage);
* the method that gives its training outputs (``train_method``: a dict with at least
  ``"output"``, the prediction the adversary and validation judge; ``None``: ``forward``);
* its defaults (``--adversarial`` kind, learning rates, shares of the adversarial phases,
  masks and their pairing, the perceptual network: they sit over the adversarial design's
  own defaults and under anything the user gives);
* what phase 2 does to the model (``freeze``: the U-Net's encoder BatchNorm) and how an
  ``--init`` model is adapted (``adapt_init``) and its settings recorded (``settle``);
* the modules it needs (``modules``), imported only when the recipe is used: ``--arch
  deepgin`` without ``pconv.deepgin`` is one line naming what is missing.

Nothing here imports :mod:`pconv.training.config` (which reads the registry for its presets);
the callables receive a resolved ``TrainConfig``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
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
    such as :class:`pconv.losses.InpaintingLoss`) or every output (``key=None``: DeepGIN's,
    which weighs its coarse and low-resolution outputs too).

    ``warmup``: another loss with the same terms for the reconstruction warm-up, the first
    ``adv_warmup`` share of the steps (DeepGIN trains on its L1 terms alone there, then on
    everything). The trainer sets :attr:`warming_up` before each step from the step alone
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
    architecture: str  # its name in pconv.architectures
    presets: Mapping[str, Preset]
    default_preset: str
    settings: tuple[str, ...]  # TrainConfig fields that shape this model (others are refused)
    model_keys: tuple[str, ...]  # of those, the ones a preset sets and an --init file fixes
    model_config: Callable[[TrainConfig], dict[str, Any]]  # -> the architecture's config data
    settings_of: Callable[[Any], dict[str, Any]]  # a model's config -> model_keys and "size"
    loss: Callable[[TrainConfig], TrainingLoss]
    modules: tuple[str, ...] = ()  # imported on first use (they register the network)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    train_method: str | None = None
    freeze: Callable[[nn.Module, bool], None] | None = None  # phase 2 (True) / phase 1
    adapt_init: Callable[[nn.Module, TrainConfig], nn.Module] = lambda model, c: at_size(model, c)
    settle: Callable[[TrainConfig, nn.Module], TrainConfig] | None = None
    check: Callable[[TrainConfig, Architecture], None] | None = None

    def require(self) -> Architecture:
        """Import what the recipe needs and return its architecture; a missing module is a
        :class:`ConfigError` of one line (a broken one still raises as itself)."""
        for module in self.modules:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name is None or not module.startswith(exc.name):
                    raise
                raise ConfigError(
                    Setting("arch"), f" {self.name}: this installation has no {module} "
                    f"(the {self.title} network or its loss); use a pconv that includes it",
                ) from None  # fmt: skip
        return get_architecture(self.architecture)

    def build(self, config: TrainConfig) -> nn.Module:
        """A fresh model for the resolved settings."""
        arch = self.require()
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
DEFAULT_ARCH = "unet"


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


def _size_multiple(config: TrainConfig, arch: Architecture, recipe: Recipe) -> None:
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
    arch = recipe.require()
    if recipe.check is not None:
        recipe.check(config, arch)
    elif all(getattr(config, key) is not None for key in recipe.model_keys):
        _size_multiple(config, arch, recipe)


# -- the PConv U-Net (Liu et al.) --------------------------------------------------------------


def _unet_config(c: TrainConfig) -> dict[str, Any]:
    return {
        "depth": c.depth,
        "base_width": c.base_width,
        "max_width_mult": c.max_width_mult,
        "resolution": c.size,
        "prior": c.prior or "none",
    }


def _unet_settings(mc: Any) -> dict[str, Any]:
    return {
        "depth": mc.depth,
        "base_width": mc.base_width,
        "max_width_mult": mc.max_width_mult,
        "size": mc.resolution,
    }


def _unet_loss(c: TrainConfig) -> TrainingLoss:
    from pconv.losses import InpaintingLoss
    from pconv.losses.inpainting import TERM_NAMES

    loss = InpaintingLoss(c.loss_weight_values(), backbone=c.perceptual, offline=True)
    weights = loss.weights.per_term()
    return TrainingLoss(loss, TERM_NAMES, tuple(k for k in TERM_NAMES if weights[k]), "output")


def _unet_adapt_init(model: nn.Module, c: TrainConfig) -> nn.Module:
    """The init model at the run's resolution, gated with the smooth fill if ``prior`` asks."""
    from pconv.unet import add_smooth_prior

    model = at_size(model, c)
    if c.prior is None or c.prior == model.config.prior:
        return model
    if c.prior == "smooth":
        return add_smooth_prior(model)
    raise ConfigError(
        Setting("prior"), f" {c.prior} contradicts the ", Setting("init"),
        f" model (prior {model.config.prior}): a learned gate cannot be dropped",
    )  # fmt: skip


def _unet_check(c: TrainConfig, arch: Architecture) -> None:
    if c.size is not None and c.depth is not None and c.size % 2**c.depth:
        raise ConfigError(
            Setting("size"), f" {c.size} is not a multiple of 2**depth = {2**c.depth}"
        )


UNET = register_recipe(
    Recipe(
        name="unet",
        title="PConv U-Net",
        architecture="pconv-unet",
        presets={
            "paper-512": Preset(
                "the paper's U-Net at 512 px: 8 levels, 64..512 channels, batch 6",
                size=512,
                batch_size=6,
                steps=200_000,
                phase2_steps=50_000,
                model={"depth": 8, "base_width": 64, "max_width_mult": 8},
            ),
            "paper-256": Preset(
                "the paper's U-Net at 256 px (7 levels, as the zoo's places2 model), batch 6",
                size=256,
                batch_size=6,
                steps=200_000,
                phase2_steps=50_000,
                model={"depth": 7, "base_width": 64, "max_width_mult": 8},
            ),
            "compact-256": Preset(
                "a quarter of the paper's parameters at 256 px: 7 levels, 32..256 channels, "
                "batch 8",
                size=256,
                batch_size=8,
                steps=100_000,
                phase2_steps=25_000,
                model={"depth": 7, "base_width": 32, "max_width_mult": 8},
            ),
            "compact-128": Preset(
                "a small model for quick experiments and CPUs: 128 px, 6 levels, 16..128 channels",
                size=128,
                batch_size=8,
                steps=20_000,
                phase2_steps=5_000,
                model={"depth": 6, "base_width": 16, "max_width_mult": 8},
            ),
        },
        default_preset="paper-256",
        settings=("depth", "base_width", "max_width_mult", "prior"),
        model_keys=("depth", "base_width", "max_width_mult"),
        model_config=_unet_config,
        settings_of=_unet_settings,
        loss=_unet_loss,
        modules=("pconv.unet",),
        freeze=lambda model, frozen: model.freeze_encoder_bn(frozen),
        adapt_init=_unet_adapt_init,
        settle=lambda c, model: replace(c, prior=model.config.prior),
        check=_unet_check,
    )
)


# -- seed 002: the GAN with partial convolutions (Jersch, Lundgren, Bolin) --------------------


def _gan_pconv_loss(c: TrainConfig) -> TrainingLoss:
    from pconv.losses.gan_pconv import TERM_NAMES, GanPConvLoss

    return TrainingLoss(GanPConvLoss(), TERM_NAMES, TERM_NAMES, "output")


GAN_PCONV = register_recipe(
    Recipe(
        name="gan-pconv",
        title="GAN with partial convolutions (seed 002)",
        architecture="gan-pconv",
        presets={
            "gan-pconv-128": Preset(
                "seed 002's generator at 128 px, 64..256 channels, global + local D, batch 16",
                size=128,
                batch_size=16,
                steps=100_000,
                phase2_steps=0,
                model={"base_width": 64},
            ),
        },
        default_preset="gan-pconv-128",
        settings=("base_width",),
        model_keys=("base_width",),
        model_config=lambda c: {"base_width": c.base_width, "resolution": c.size},
        settings_of=lambda mc: {"base_width": mc.base_width, "size": mc.resolution},
        loss=_gan_pconv_loss,
        modules=("pconv.gan_pconv", "pconv.losses.gan_pconv"),
        # L_G = L_MSE - 1/2000 log D, reconstruction / discriminators alone / joint: the
        # global-local design's own defaults (pconv.training.config.ADVERSARIAL_DEFAULTS)
        defaults={"adversarial": "global-local"},
    )
)


# -- seed 004: DeepGIN (Li et al.) --------------------------------------------------------------
#
# pconv.deepgin registers the architecture "deepgin" (DeepGINConfig, its presets paper() and
# compact(); forward_train(image, valid) -> {"coarse", "output", "low_res"}); its loss,
# pconv.losses.deepgin.DeepGINLoss(features, weights), takes those outputs, the photo and the
# mask and returns DEEPGIN_TERMS and "total" (the hinge term is the trainer's).

#: The network the paper's perceptual and style terms run on (recorded beside the one used).
DEEPGIN_PAPER_BACKBONE = "ImageNet VGG-19 conv1_1..conv5_1"
#: --perceptual values that are that network.
DEEPGIN_FAITHFUL = ("vgg19", "vgg19-file")
#: What the progress line shows of DeepGIN's terms (all are logged).
DEEPGIN_SHOWN = ("out_valid", "out_hole", "perceptual", "style", "tv")


def _deepgin_config(c: TrainConfig) -> dict[str, Any]:
    import json

    from pconv.deepgin import DeepGINConfig

    # each preset names its DeepGINConfig preset (an --init file or a checkpoint its own)
    preset = DEEPGIN.presets.get(c.preset or "", DEEPGIN.presets[DEEPGIN.default_preset])
    variant = getattr(DeepGINConfig, preset.network.get("variant", "paper"))
    return {**json.loads(variant().to_json()), "resolution": c.size}


def _deepgin_weights(c: TrainConfig) -> dict[str, float]:
    """The terms named in ``--loss-weights`` (``DeepGINLossWeights`` keeps the paper's value
    of every other one; ``ssim`` is the U-Net loss's and refused)."""
    from pconv.losses.deepgin import DeepGINLossWeights

    given = {
        item.partition("=")[0].strip().replace("-", "_")
        for item in c.loss_weights.split(",")
        if item.strip()
    }
    known = set(DeepGINLossWeights.__dataclass_fields__)
    if given - known:
        raise ConfigError(
            Setting("loss_weights"), f" {', '.join(sorted(given - known))}: not a term of ",
            Setting("arch"), f" deepgin's loss ({', '.join(sorted(known))})",
        )  # fmt: skip
    parsed = c.loss_weight_values()  # the trainer's parsing and checks of the values
    return {key: float(getattr(parsed, key)) for key in sorted(given)}


def _deepgin_check(c: TrainConfig, arch: Architecture) -> None:
    """``--loss-weights`` names terms of this loss; the crop size fits the network."""
    _deepgin_weights(c)
    _size_multiple(c, arch, DEEPGIN)


def _deepgin_loss(c: TrainConfig) -> TrainingLoss:
    """Eq. (1)-(7) but the hinge term: the main stage's weights, and L1 alone for the warm-up
    (:meth:`DeepGINLossWeights.warmup`), both on one feature extractor. Without one
    (``--perceptual none``) the perceptual and style weights are 0, and the record says so."""
    from dataclasses import asdict

    from pconv.losses.backbones import resolve_backbone
    from pconv.losses.deepgin import DEEPGIN_TERMS, DeepGINLoss, DeepGINLossWeights

    requested = DeepGINLossWeights(**_deepgin_weights(c))
    if requested.needs_features():
        backbone = resolve_backbone(c.perceptual, offline=True)
    else:
        from pconv.losses.backbones import no_backbone

        backbone = no_backbone("not needed: perceptual and style weights are 0")
    trunk = backbone.trunk
    weights = requested if trunk is not None else replace(requested, perceptual=0.0, style=0.0)
    loss = DeepGINLoss(features=trunk, weights=weights)
    info = backbone.info.as_dict()
    # "faithful" is to this network's paper, whose terms run on VGG-19 (not the U-Net's VGG16)
    info["faithful"] = info["name"] in DEEPGIN_FAITHFUL
    record = {
        "backbone": info,
        "paper_backbone": DEEPGIN_PAPER_BACKBONE,
        "features": list(trunk.feature_names) if trunk is not None else [],
        "requested_weights": asdict(requested),
        "warmup_steps": c.warmup_steps,
    }
    shown = tuple(k for k in DEEPGIN_SHOWN if weights.per_term()[k])
    return TrainingLoss(
        loss,
        DEEPGIN_TERMS,
        shown,
        None,
        warmup=loss.with_weights(DeepGINLossWeights.warmup()),
        record=record,
    )


DEEPGIN = register_recipe(
    Recipe(
        name="deepgin",
        title="DeepGIN (seed 004)",
        architecture="deepgin",
        presets={
            "deepgin-256": Preset(
                "DeepGIN as its paper builds it (42.9 M parameters) at 256 px, batch 4 images "
                "x 3 masks",
                size=256,
                batch_size=4,
                steps=200_000,
                phase2_steps=0,
                network={"variant": "paper"},
            ),
            "deepgin-compact": Preset(
                "a compact DeepGIN for CPUs (1.29 M parameters) at 256 px, batch 4 images x 3 "
                "masks",
                size=256,
                batch_size=4,
                steps=20_000,
                phase2_steps=0,
                network={"variant": "compact"},
            ),
        },
        default_preset="deepgin-256",
        settings=(),
        model_keys=(),
        model_config=_deepgin_config,
        settings_of=lambda mc: {"size": mc.resolution},
        loss=_deepgin_loss,
        modules=("pconv.deepgin", "pconv.losses.deepgin"),
        # warm-up on the L1 terms (its loss's warm-up weights, no discriminator), then the
        # main stage: every term and both PatchGANs (hinge; lr 1e-4 / 4e-4 and beta1 0.5 are
        # the multiscale-patch design's own defaults), the learning rates constant, then
        # linearly to zero over the second half of the steps. Its data recipe: rectangles,
        # free-form strokes and cellular-automata masks, every image paired with one of each.
        # Its perceptual terms: VGG-19 with --perceptual vgg19 (the paper's, from the Hub
        # cache), else the offline ST-LPIPS VGG16 trunk (recorded as such).
        defaults={
            "adversarial": "multiscale-patch",
            "adv_warmup": 0.1,
            "lr_decay": 0.5,
            "masks": "deepgin",
            "mask_pairing": "each",
            "perceptual": "stlpips-vgg16",
        },
        train_method="forward_train",
        check=_deepgin_check,
    )
)
