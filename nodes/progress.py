"""A ``tqdm`` class that mirrors a download onto ComfyUI's progress bar; free of ComfyUI imports.

``huggingface_hub`` reports a download through the ``tqdm`` class it is given (``tqdm_class``),
instantiated once per file with the byte total. :func:`progress_class` makes such a class that
also calls ``report(done, total)`` (in bytes) at every update, so the loader node can show the
first download of a zoo model in the node's own progress bar instead of a console nobody sees.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from tqdm.auto import tqdm

#: ``report(done, total)``: bytes written so far, and the file's size (0 when unknown).
Report = Callable[[int, int], None]


def progress_class(report: Report) -> type[tqdm]:
    """A ``tqdm`` subclass whose every update (and its close) is also sent to ``report``."""

    class ComfyProgress(tqdm):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("name", None)  # huggingface_hub's own keyword for its tqdm
            # counted here: a disabled tqdm (no terminal, HF_HUB_DISABLE_PROGRESS_BARS) counts
            # nothing, and ComfyUI's bar must move all the same
            self._done = int(kwargs.get("initial") or 0)
            self._size = int(kwargs.get("total") or 0)
            super().__init__(*args, **kwargs)
            self._report()

        def _report(self) -> None:
            with contextlib.suppress(Exception):  # a progress bar must never fail a download
                report(self._done, self._size or int(self.total or 0))

        def update(self, n: float | None = 1) -> bool | None:
            self._done += int(n or 0)
            shown = super().update(n)
            self._report()
            return shown

        def close(self) -> None:
            if not getattr(self, "_closed_once", False):
                self._closed_once = True
                self._report()
            super().close()

    return ComfyProgress
