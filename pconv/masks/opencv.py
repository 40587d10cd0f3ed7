"""OpenCV for the mask generators, imported at its first use, never at import time.

OpenCV is an optional extra (``masks``, part of ``train`` and ``eval``): its
``opencv-python-headless`` wheel clashes with the ``opencv-python`` that ComfyUI packs
install, so the library, the nodes and ``pconv inpaint`` must work without it. The generators
write ``cv2.line(...)`` as before; :data:`cv2` imports the real module on the first attribute
it is asked for, or raises :class:`pconv.errors.MissingDependency` saying what to install.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from pconv.errors import MissingDependency
from pconv.threads import import_opencv

INSTALL_HINT = (
    "pip install opencv-python-headless, which the masks, train and eval extras bring "
    '(in a checkout: pip install -e ".[train]" for training, ".[masks]" for the '
    "generators alone), or keep any one OpenCV wheel that is already there (opencv-python)"
)


def load() -> ModuleType:
    """The ``cv2`` module, or :class:`MissingDependency` (one line) when it is not installed."""
    try:
        return import_opencv()
    except ImportError:
        raise MissingDependency(
            f"the mask generators need OpenCV (cv2), which is not installed: {INSTALL_HINT}"
        ) from None


class _LazyOpenCV:
    """Stands for ``cv2``: the first attribute asked for imports it and copies its names in,
    so that later look-ups are plain attribute reads (the generators call it per stroke)."""

    def __getattr__(self, name: str) -> Any:  # only called for names not copied in yet
        module = load()
        self.__dict__.update(vars(module))
        return getattr(module, name)


cv2: Any = _LazyOpenCV()
