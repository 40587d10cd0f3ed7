"""``python -m train``: the command line of the training engine, :mod:`pconv.training`.

Only the command lives here (:mod:`train.cli`); the engine is ``pconv.training``.
"""

from train.cli import main

__all__ = ["main"]
