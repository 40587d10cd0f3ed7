"""Errors of the training engine that name settings, in words its caller chooses.

A message is a sequence of text and :class:`Setting` parts. ``str(error)`` writes each
setting as its field name in :class:`~pconv.training.config.TrainConfig` (the words of a
Python caller: ``lr``, ``mask_dir``); the command line renders the same error with its option
names (``--lr``, ``--mask-dir``) through :meth:`SettingsError.render`. So the engine never
speaks of flags, and no caller cuts words out of a message string.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pconv.errors import CheckpointError, PConvError


@dataclass(frozen=True)
class Setting:
    """A reference to a setting inside a message: a config field, or ``resume`` (the
    :class:`~pconv.training.engine.Trainer`'s own argument)."""

    name: str


class SettingsError(PConvError):
    """A :class:`PConvError` whose message may name settings (see the module docstring)."""

    def __init__(self, *parts: str | Setting) -> None:
        self.parts = parts
        super().__init__(self.render())

    @property
    def settings(self) -> tuple[str, ...]:
        """The settings the message names, in order."""
        return tuple(p.name for p in self.parts if isinstance(p, Setting))

    def render(self, name: Callable[[str], str] = str) -> str:
        """The message with each setting written as ``name(field)``."""
        return "".join(name(p.name) if isinstance(p, Setting) else p for p in self.parts)


class ConfigError(SettingsError):
    """A setting that is unknown, malformed or contradicts another."""


class InitError(ConfigError, CheckpointError):
    """The ``init`` weights cannot be used (missing, damaged, or not a model)."""


class TrainingDiverged(SettingsError):
    """The loss or the gradients became NaN or infinite."""
