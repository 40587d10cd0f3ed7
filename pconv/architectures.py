"""One registry of the networks pconv can build, recognise, load and run.

In the spirit of spandrel's ``Architecture`` and timm's ``register_model``: each network
registers, once, next to its own code, everything the rest of the project needs to know about it

* its config type (a frozen dataclass with ``from_dict`` / ``to_json``) and its module type;
* how to build it from a config;
* how to recognise its weights file from the file's own metadata (never from the file name);
* the call contract: the input multiple its sides must be padded to, the resolution it was
  trained at (the scale inference works at) and the precisions it runs in.

Weights loading, :func:`pconv.inpaint`, the zoo, the trainer, the nodes and the demo go through
this registry, so adding a network means registering it here and nowhere else. Every registered
module is called ``model(image [B,3,H,W] in [0,1], valid [B,1,H,W], 1 = known)`` and returns the
prediction in ``[0,1]``; ``model.predict(image, valid)`` returns ``(prediction, gate)`` where the
gate (or None) blends the prediction with :func:`pconv.smooth.smooth_fill`, so that inference at
a reduced scale can compute that fill at full resolution.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from pconv.errors import CheckpointError

_Config = TypeVar("_Config", bound="JsonConfig")


class JsonConfig:
    """``to_json`` / ``from_dict`` / ``from_json`` for a network's frozen dataclass config: how
    the registry stores it in a weights file's metadata. Unknown keys are refused (a file from
    another network, or a newer pconv, must not build a wrong model quietly)."""

    #: what the refusal calls this network ("U-Net", "DeepGIN" ...)
    config_name: ClassVar[str] = "network"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[_Config], data: dict) -> _Config:
        unknown = set(data) - {f.name for f in fields(cls)}  # type: ignore[arg-type]
        if unknown:
            raise ValueError(f"unknown {cls.config_name} config keys: {sorted(unknown)}")
        return cls(**data)

    @classmethod
    def from_json(cls: type[_Config], text: str) -> _Config:
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True)
class Architecture:
    """A registered network: build, recognise and run it without naming its classes."""

    name: str  # stored in the weights' metadata as "architecture"
    config_type: type  # a frozen dataclass with ``from_dict(data)`` and ``to_json()`` (JsonConfig)
    module_type: type[nn.Module]
    build: Callable[[Any], nn.Module]
    #: does a weights file's metadata (from a writer that predates the "architecture" key)
    #: describe this network? Files that carry the key are matched by name.
    recognise: Callable[[Mapping[str, str]], bool]
    multiple: Callable[[Any], int]  # input sides must be multiples of this
    resolution: Callable[[Any], int]  # the training resolution: the scale inference works at
    describe: Callable[[Any], str]  # one line for model cards: shape, widths, heads
    #: does ``predict`` return a gate to the smooth fill (inference then upscales only the
    #: prediction and gate, and computes the fill at full resolution)?
    gated: Callable[[Any], bool] = lambda config: False
    #: :func:`pconv.inpaint`'s default test-time strategy for large images (its
    #: ``STRATEGIES``): ``"crop"`` (context crops around hole clusters) or ``"subsample"``
    #: (DeepGIN's: every k-th pixel into sub-images of the training size, regrouped)
    strategy: Callable[[Any], str] = lambda config: "crop"
    #: what it may run in (pconv.precision's names); inference refuses the others
    precisions: tuple[str, ...] = ("fp32", "bf16", "fp16")
    #: bytes of activations one fp32 forward over ``pixels`` pixels holds at its peak, an
    #: estimate that errs high: what a host such as ComfyUI frees before it runs the model
    activation_bytes: Callable[[Any, int], int] = lambda config, pixels: pixels * 64 * 4 * 24

    def config_from_dict(self, data: dict) -> Any:
        return self.config_type.from_dict(data)

    def expected_shapes(self, config: Any) -> dict[str, tuple[int, ...]]:
        """Tensor names and shapes of a state dict for ``config``; no memory is allocated."""
        with torch.device("meta"):
            return {k: tuple(v.shape) for k, v in self.build(config).state_dict().items()}

    def parameter_count(self, config: Any) -> int:
        with torch.device("meta"):
            return sum(p.numel() for p in self.build(config).parameters())


ARCHITECTURES: dict[str, Architecture] = {}


def register_architecture(arch: Architecture) -> Architecture:
    """Add ``arch`` to the registry (once per name)."""
    if arch.name in ARCHITECTURES and ARCHITECTURES[arch.name] != arch:
        raise ValueError(f"architecture {arch.name!r} is registered already")
    ARCHITECTURES[arch.name] = arch
    return arch


def get_architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        known = ", ".join(ARCHITECTURES) or "none"
        raise CheckpointError(f"unknown architecture {name!r} (known: {known})") from None


def architecture_of(model: nn.Module) -> Architecture:
    """The registered architecture of a model (also inside DDP or ``torch.compile`` wrappers)."""
    inner = unwrap(model)
    for arch in ARCHITECTURES.values():
        if isinstance(inner, arch.module_type):
            return arch
    raise TypeError(f"{type(model).__name__} is not a registered pconv architecture")


def unwrap(model: nn.Module) -> nn.Module:
    """The registered module inside DDP or ``torch.compile`` wrappers."""
    inner = getattr(model, "_orig_mod", model)  # torch.compile
    return getattr(inner, "module", inner)  # DistributedDataParallel


def detect(meta: Mapping[str, str]) -> Architecture:
    """The architecture a weights file's metadata describes."""
    name = meta.get("architecture")
    if name is not None:
        return get_architecture(name)
    for arch in ARCHITECTURES.values():
        if arch.recognise(meta):
            return arch
    raise CheckpointError("its metadata names no known architecture")


def config_of(arch: Architecture, meta: Mapping[str, str]) -> Any:
    """The architecture config stored in a weights file's metadata."""
    try:
        return arch.config_from_dict(json.loads(meta["config"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"invalid {arch.name} config in metadata ({exc})") from None


def input_multiple(model: nn.Module) -> int:
    """Sides of the model's input must be multiples of this (inference pads to it)."""
    return architecture_of(model).multiple(unwrap(model).config)


def training_resolution(model: nn.Module) -> int:
    """The resolution the model was trained at: the scale inference works at."""
    return architecture_of(model).resolution(unwrap(model).config)


def is_gated(model: nn.Module) -> bool:
    """Whether the model blends its prediction with the smooth fill through a gate."""
    return architecture_of(model).gated(unwrap(model).config)


def default_strategy(model: nn.Module) -> str:
    """The test-time strategy :func:`pconv.inpaint` uses for the model unless told."""
    return architecture_of(model).strategy(unwrap(model).config)


def memory_required(model: nn.Module, pixels: int) -> int:
    """Bytes a forward over ``pixels`` pixels needs on its device: its state dict's tensors
    plus the architecture's estimate of its activations."""
    inner = unwrap(model)
    weights = sum(t.nelement() * t.element_size() for t in inner.state_dict().values())
    return weights + architecture_of(model).activation_bytes(inner.config, pixels)


def check_precision(model: nn.Module, precision: str) -> None:
    """:class:`CheckpointError` unless the model's architecture runs in ``precision``."""
    arch = architecture_of(model)
    if precision not in arch.precisions:
        raise CheckpointError(
            f"{arch.name} models run in {', '.join(arch.precisions)}, not {precision}"
        )
