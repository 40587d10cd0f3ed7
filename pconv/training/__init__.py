"""The training engine: train or fine-tune an inpainting network on your own images.

``python -m train`` (the ``train`` package) is its command line; everything it drives lives
here, one job per module: :mod:`~pconv.training.config` (settings, their documentation,
presets, TOML), :mod:`~pconv.training.data` (images, crops, masks, the step-seeded sampler),
:mod:`~pconv.training.recipes` (per ``--arch``: how each network is built, its loss, presets
and defaults), :mod:`~pconv.training.engine` (setup, the step, the loop),
:mod:`~pconv.training.hooks` (progress and logs, validation and best, signals, NaN guard,
checkpoints, final export),
:mod:`~pconv.training.state` (resumable checkpoints of named state holders),
:mod:`~pconv.training.validate` (validation with :mod:`pconv.evaluation.metrics`),
:mod:`~pconv.training.logs` (CSV / TensorBoard), :mod:`~pconv.training.export` (zoo-format
weights and model card), :mod:`~pconv.training.distributed` (DDP),
:mod:`~pconv.training.errors` (errors that name settings, not flags).

Imports flow one way: this package uses the rest of ``pconv`` only, never ``zoo`` or
``train``. Its submodules load torch-heavy pieces, so ``import pconv`` does not import it.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Where each public name lives; loaded on first use, so that a network's recipe can import
#: :mod:`pconv.training.recipes` without the config, which gathers every recipe, being built
#: halfway through that recipe's import.
_HOMES = {
    "PRESETS": "config",
    "TrainConfig": "config",
    "resolve": "config",
    "Summary": "engine",
    "Trainer": "engine",
    "TrainingDiverged": "engine",
    "ConfigError": "errors",
    "Setting": "errors",
    "SettingsError": "errors",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)


__all__ = [
    "PRESETS",
    "ConfigError",
    "Setting",
    "SettingsError",
    "Summary",
    "TrainConfig",
    "Trainer",
    "TrainingDiverged",
    "resolve",
]
