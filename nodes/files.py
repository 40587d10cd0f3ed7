"""Which files in ``models/inpaint`` are pconv models; free of ComfyUI imports (testable alone).

The folder is shared with other inpainting packs (LaMa, MAT, Fooocus patches ...), which keep
``.safetensors`` files there too, so the extension says nothing. A file is listed only when its
header says it is one of ours (:func:`pconv.checkpoint.read_metadata`, which reads no tensors).
Anything else (another pack's model, an empty or corrupt file, a renamed pickle, a file we may
not read) is left out, never an error: the list is built for every ``/object_info`` and prompt
validation, and one odd file must not take the node, or the whole node list, down with it. Which
files were left out and why goes to the log once per file and version of it, so that a user
whose file is missing from the list can find out without the log repeating it on every refresh.

ComfyUI asks for the list often, so each verdict is cached per (path, size, mtime): a header is
read again only when its file changes.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable

from pconv.checkpoint import read_metadata
from pconv.errors import CheckpointError

log = logging.getLogger("pconv.comfyui")

#: Raises (a CheckpointError, normally) unless the file at the path is a model we can load.
Check = Callable[[str], object]
#: (size, mtime in ns) of a file when it was judged; None where it could not even be stat'ed.
_Stamp = tuple[int, int] | None


class ModelFiles:
    """Filters ComfyUI's file list down to pconv models, remembering each file's verdict."""

    def __init__(self, check: Check = read_metadata) -> None:
        self._check = check
        self._verdicts: dict[str, tuple[_Stamp, str | None]] = {}  # path -> (stamp, why not)
        self._lock = threading.Lock()  # /object_info and prompt validation may ask at once

    def __call__(self, names: Iterable[str], full_path: Callable[[str], str | None]) -> list[str]:
        """The ``names`` (in their order) whose file, ``full_path(name)``, is a pconv model.

        Files newly left out (new, or changed since last time) are logged together in one line.
        """
        kept: list[str] = []
        skipped: list[str] = []
        with self._lock:
            seen: dict[str, tuple[_Stamp, str | None]] = {}
            for name in names:
                try:
                    path = full_path(name)
                except Exception:  # a vanished folder or a name ComfyUI can't resolve: not ours
                    path = None
                if path is None:
                    continue
                verdict, fresh = self._judge(path)
                seen[path] = verdict
                if verdict[1] is None:
                    kept.append(name)
                elif fresh:
                    skipped.append(verdict[1])
            self._verdicts = seen  # forget files that are gone; a file put back is judged anew
        if skipped:
            log.info(
                "pconv: %d file(s) left out of the model list, not pconv models: %s",
                len(skipped),
                "; ".join(skipped),
            )
        return kept

    def _judge(self, path: str) -> tuple[tuple[_Stamp, str | None], bool]:
        """((stamp, why not or None), whether the file was judged now rather than cached)."""
        try:
            st = os.stat(path)
            stamp: _Stamp = (st.st_size, st.st_mtime_ns)
        except OSError as exc:
            stamp, reason = None, f"{path}: cannot be read ({exc.strerror or exc})"
        else:
            reason = None
        cached = self._verdicts.get(path)
        if cached is not None and cached[0] == stamp:
            return cached, False
        if stamp is not None:
            reason = why_not(path, self._check)
        return (stamp, reason), True


def why_not(path: str, check: Check = read_metadata) -> str | None:
    """None when ``path`` is a pconv model, else one line saying why it isn't (never raises)."""
    try:
        check(path)
    except CheckpointError as exc:
        return str(exc)
    except OSError as exc:  # e.g. a permission error while sniffing for a pickle
        return f"{path}: cannot be read ({exc.strerror or exc})"
    except Exception as exc:  # whatever a strange file makes the reader raise: not ours
        return f"{path}: not a readable safetensors file ({type(exc).__name__}: {exc})"
    return None
