"""Settings for the trainer's tests: a network and a run small enough for a CPU test."""

from __future__ import annotations

#: a 4-level U-Net at 64 px, no perceptual backbone, no workers, no TensorBoard
TINY = {
    "depth": 4,
    "base_width": 8,
    "size": 64,
    "batch_size": 2,
    "perceptual": "none",
    "workers": 0,
    "tensorboard": "off",
    "log_every": 1,
}
