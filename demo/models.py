"""Which models the demo offers, and loading each of them once for all users.

The zoo's ``default`` model is always offered (it ships inside the package; until it does, using
it says so clearly). The other zoo entries are offered when they are already on this machine
(Hub cache or a local build), or when downloads are possible (``HF_HUB_OFFLINE`` not set): those
are fetched the first time someone picks them. Models given with ``--model`` come first.
Listing never touches the network.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

import pconv
from pconv.errors import PConvError
from zoo import resolve

log = logging.getLogger("demo")


@dataclass(frozen=True)
class ModelChoice:
    key: str  # what the dropdown (and the API) passes: a zoo name or a --model name
    label: str  # what the dropdown shows
    source: str  # what pconv.load_model gets: a zoo name or a path
    ready: bool = True  # loadable now, without a download
    problem: str = ""  # why it is not ready, shown on the page


def _zoo_choices() -> list[ModelChoice]:
    from pconv.hub import offline
    from zoo.hub import where_cached
    from zoo.registry import REGISTRY

    choices = []
    for name, entry in REGISTRY.items():
        try:
            where = where_cached(entry)
        except Exception as exc:  # a broken cache must not stop the demo from starting
            log.warning("%s: cannot tell whether it is cached (%s)", name, exc)
            where = "-"
        if where == "packaged":  # the default: it ships inside the package
            choices.append(ModelChoice(name, f"{name} (built in)", name))
        elif where in ("hub", "built"):
            choices.append(ModelChoice(name, f"{name} ({entry.resolution} px, cached)", name))
        elif not offline() and (entry.repo_id or entry.upstream):
            label = f"{name} ({entry.resolution} px, downloaded on first use)"
            choices.append(ModelChoice(name, label, name, ready=False))
    return choices


def model_choices(
    extra: Mapping[str, str | os.PathLike[str]] | None = None, *, zoo: bool = True
) -> list[ModelChoice]:
    """``--model`` files first (name -> path), then the zoo entries (see the module doc)."""
    choices = []
    for name, path in (extra or {}).items():
        p = Path(path).expanduser()
        problem = "" if p.exists() else f"{p}: no such file"
        choices.append(ModelChoice(name, f"{name} ({p.name})", str(p), not problem, problem))
    taken = {c.key for c in choices}
    if zoo:
        choices += [c for c in _zoo_choices() if c.key not in taken]
    if not any(c.key == "default" for c in choices) and (zoo or not choices):
        problem = "the model zoo is not available in this installation"
        choices.append(ModelChoice("default", "default", "default", False, problem if zoo else ""))
    return choices


def initial_choice(choices: list[ModelChoice]) -> str:
    """The one selected when the page opens: the first loadable one, else the first one."""
    return next((c.key for c in choices if c.ready), choices[0].key)


def parse_model_specs(specs: list[str]) -> dict[str, str]:
    """``--model PATH`` or ``--model NAME=PATH`` -> {name: path}; a bare path is named after
    its file (a folder after itself, ``model.safetensors`` after its folder)."""
    out: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or os.sep in name:
            path = spec
            p = Path(spec)
            name = p.parent.name if p.name == "model.safetensors" else p.stem
        out[name or "model"] = path
    return out


class ModelStore:
    """Loads a model the first time it is asked for and keeps the ``keep`` most recently used
    ones, shared by every request (and thread)."""

    def __init__(
        self, choices: list[ModelChoice], device: str | torch.device | None = "auto", keep: int = 2
    ) -> None:
        self.choices = {c.key: c for c in choices}
        self.device = pconv.pick_device(device)
        self.keep = max(1, keep)
        self._models: OrderedDict[str, nn.Module] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[nn.Module, float]:
        """The model and the seconds spent loading it now (0 when it was already loaded)."""
        choice = self.choices.get(key)
        if choice is None:
            raise PConvError(f"unknown model {key!r}; choose one of {', '.join(self.choices)}")
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key], 0.0
            start = time.perf_counter()
            model = pconv.load_model(resolve(choice.source), device=self.device)
            model.eval()
            self._models[key] = model
            while len(self._models) > self.keep:
                self._models.popitem(last=False)
            return model, time.perf_counter() - start

    def loaded(self) -> list[str]:
        return list(self._models)
