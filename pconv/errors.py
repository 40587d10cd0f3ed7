"""Errors that mean "the user gave us something wrong", reported as one line, never a traceback.

Each carries its parts as fields, so callers never cut them out of the message:

* ``reason``: what is wrong, in the library's words;
* ``path``: the file or folder concerned, if any (``str()`` puts it in front: ``PATH: reason``);
* ``fix``: the setting that would make it work, spelled as a Python argument
  (``resize_mask_to_image=True``). ``str()`` says "pass ``fix``"; a front end with its own
  vocabulary (``pconv inpaint``'s ``--resize-mask``) renders it with :meth:`PConvError.describe`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


class PConvError(Exception):
    """A problem with the user's input (files, sizes, masks, checkpoints)."""

    def __init__(
        self,
        reason: str = "",
        *,
        path: str | os.PathLike[str] | None = None,
        fix: str | None = None,
    ) -> None:
        self.reason = reason
        self.path = path
        self.fix = fix
        super().__init__(self.describe())

    def describe(self, flags: Mapping[str, str] | None = None) -> str:
        """The error as one line; ``flags`` maps a ``fix`` (a Python argument) to the way the
        caller's front end spells it (a command-line flag)."""
        text = f"{self.path}: {self.reason}" if self.path is not None else self.reason
        if self.fix is not None:
            text += f" (pass {(flags or {}).get(self.fix, self.fix)})"
        return " ".join(text.split("\n"))


class InputError(PConvError):
    """An image or mask that cannot be read or does not fit."""


class CheckpointError(PConvError):
    """A weights file that is missing, corrupt or of the wrong architecture."""


class DeviceError(PConvError):
    """A device that this torch does not have: a typo (``gpu``), or CUDA asked of a CPU-only
    build or of a machine without a GPU. The message lists the devices there are."""


class MissingDependency(PConvError, ImportError):
    """An optional library that the asked-for feature needs is not installed (OpenCV for the
    mask generators); an ``ImportError`` too, so ``except ImportError`` still catches it."""
