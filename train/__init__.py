"""``python -m train``: train or fine-tune a PConv U-Net on your own images.

The pieces, one job each: :mod:`train.config` (settings, presets, TOML), :mod:`train.data`
(images, crops, the step-seeded sampler), :mod:`train.holes` (masks), :mod:`train.engine`
(the loop), :mod:`train.state` (resumable checkpoints), :mod:`train.validate` and
:mod:`train.metrics` (validation), :mod:`train.logs` (CSV / TensorBoard),
:mod:`train.export` (zoo-format weights and model card), :mod:`train.distributed` (DDP).
"""

from train.cli import main
from pconv.training.config import PRESETS, TrainConfig
from pconv.training.engine import Summary, Trainer, TrainingDiverged

__all__ = ["PRESETS", "Summary", "TrainConfig", "Trainer", "TrainingDiverged", "main"]
