"""The resumable training state: one safetensors file per checkpoint, never a pickle.

``RUN_DIR/checkpoints/step-00001000.safetensors`` holds the trainer's registry of named state
holders (:data:`Holders`: models, optimisers, grad scalers; ``--adversarial`` adds the
discriminators, their optimiser and their scaler) and the torch / CUDA random states
(``rng/``). As tensors: each module's ``state_dict`` (``<prefix>/<key>``) and each
optimiser's per-parameter state (``<prefix>/<index>/<name>``); in the metadata, as JSON: each
optimiser's hyper-parameters (``<prefix>_groups``), every other holder's ``state_dict``
(``<name>``), step, phase, the Python and NumPy random states and what the trainer adds (best
score, skipped files, time spent...). The prefix is the holder's name, except the first run
format's two names kept so that old run folders resume: ``model`` and ``optimizer`` ->
``optim``. Loading runs no code.

Writes are atomic: the bytes go to a hidden temporary file in the same folder, are flushed to
disk, and only then renamed over the final name (``os.replace``), so a kill at any moment
leaves either the previous set of checkpoints or the new one, never half a file.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

from pconv.architectures import Architecture, get_architecture
from pconv.errors import CheckpointError
from pconv.files import atomic_open, remove_temporaries

CKPT_DIR = "checkpoints"
STATE_FORMAT = "pconv-train-state"
STATE_VERSION = "1"
_NAME = re.compile(r"^step-(\d{8,})\.safetensors$")
#: Tensor prefixes of holders whose name differs from it (the first format's names).
PREFIXES = {"optimizer": "optim"}

#: What a checkpoint captures: name -> a module, an optimiser, or anything with a JSON-able
#: ``state_dict()`` / ``load_state_dict()`` (a grad scaler).
Holders = Mapping[str, Any]


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CKPT_DIR / f"step-{step:08d}.safetensors"


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run, oldest first (temporary files are not listed)."""
    folder = Path(run_dir) / CKPT_DIR
    found = []
    for path in folder.iterdir() if folder.is_dir() else ():
        match = _NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def write_bytes(fh: BinaryIO, data: bytes) -> None:
    """Where a checkpoint's bytes go into its temporary file. A seam for the tests: they
    slow it down to kill a process halfway through a write."""
    fh.write(data)


def atomic_write(path: Path, data: bytes) -> None:
    """``data`` to ``path`` through :func:`pconv.files.atomic_open` (temporary file, fsync,
    rename, folder fsync): a kill at any moment leaves the previous checkpoint or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as fh:
        write_bytes(fh, data)


def remove_stale_temporaries(run_dir: Path) -> int:
    """Temporary files left by a process killed while writing; returns how many."""
    return remove_temporaries(Path(run_dir) / CKPT_DIR, "step-*")


# -- capture and restore ---------------------------------------------------------------------


def _rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{i}"] = state
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    tensors["rng/numpy"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    py_version, py_state, py_gauss = random.getstate()
    meta = {
        "numpy": [kind, int(pos), int(has_gauss), float(gauss)],
        "python": [py_version, list(py_state), py_gauss],
    }
    return tensors, meta


def _restore_rng(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["rng/torch"])
    cuda = sorted(k for k in tensors if k.startswith("rng/cuda/"))
    if cuda and torch.cuda.is_available():
        states = [tensors[k] for k in cuda][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all(states)
    kind, pos, has_gauss, gauss = meta["numpy"]
    keys = tensors["rng/numpy"].numpy().astype(np.uint32)
    np.random.set_state((kind, keys, pos, has_gauss, gauss))
    py_version, py_state, py_gauss = meta["python"]
    random.setstate((py_version, tuple(py_state), py_gauss))


def _prefix(name: str) -> str:
    return PREFIXES.get(name, name)


def capture(holders: Holders) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and the JSON metadata of every holder (see the module docstring)."""
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {}
    for name, holder in holders.items():
        prefix = _prefix(name)
        if isinstance(holder, torch.nn.Module):
            for key, value in holder.state_dict().items():
                tensors[f"{prefix}/{key}"] = value.detach().to("cpu").contiguous()
        elif isinstance(holder, torch.optim.Optimizer):
            optim = holder.state_dict()
            for index, per_param in optim["state"].items():
                for key, value in per_param.items():
                    if not torch.is_tensor(value):
                        raise TypeError(f"optimiser state {key!r} is not a tensor")
                    tensors[f"{prefix}/{index}/{key}"] = value.detach().to("cpu").contiguous()
            meta[f"{prefix}_groups"] = optim["param_groups"]
        else:
            meta[name] = holder.state_dict()
    return tensors, meta


def save_state(
    path: Path, *, step: int, phase: int, holders: Holders, extra: dict[str, Any]
) -> Path:
    """Write one checkpoint of ``holders`` atomically (see the module docstring)."""
    tensors, held = capture(holders)
    rng_tensors, rng_meta = _rng_state()
    tensors.update(rng_tensors)
    meta = {
        "format": STATE_FORMAT,
        "format_version": STATE_VERSION,
        "step": step,
        "phase": phase,
        **held,
        "rng": rng_meta,
        "extra": extra,
    }
    data = safetensors_bytes(tensors, metadata={"state": json.dumps(meta)})
    atomic_write(Path(path), data)
    return Path(path)


@dataclass
class LoadedState:
    path: Path
    step: int
    phase: int
    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]

    @property
    def extra(self) -> dict[str, Any]:
        return self.meta.get("extra", {})

    def module_state(self, name: str) -> dict[str, torch.Tensor]:
        """The ``state_dict`` saved for the module registered as ``name``."""
        start = _prefix(name) + "/"
        return {k[len(start) :]: v for k, v in self.tensors.items() if k.startswith(start)}

    def model_state(self) -> dict[str, torch.Tensor]:
        return self.module_state("model")

    def restore(self, holders: Holders) -> None:
        """Put every holder and the global random generators back as saved; a holder the
        checkpoint does not know is a :class:`CheckpointError`."""
        for name, holder in holders.items():
            prefix = _prefix(name)
            if isinstance(holder, torch.nn.Module):
                state = self.module_state(name)
                if not state:
                    raise CheckpointError(f"{self.path}: no state for {name!r}")
                holder.load_state_dict(state)
            elif isinstance(holder, torch.optim.Optimizer):
                if f"{prefix}_groups" not in self.meta:
                    raise CheckpointError(f"{self.path}: no state for {name!r}")
                per_param: dict[int, dict[str, torch.Tensor]] = {}
                for key, value in self.tensors.items():
                    if key.startswith(prefix + "/"):
                        _, index, rest = key.split("/", 2)
                        per_param.setdefault(int(index), {})[rest] = value
                groups = self.meta[f"{prefix}_groups"]
                holder.load_state_dict({"state": per_param, "param_groups": groups})
            elif self.meta.get(name):  # an empty state (a disabled scaler) has nothing to load
                holder.load_state_dict(self.meta[name])
        _restore_rng(self.tensors, self.meta["rng"])


def model_architecture(loaded: LoadedState) -> tuple[Architecture, Any]:
    """The architecture and config of the model a training checkpoint holds."""
    config = loaded.extra.get("model_config")
    name = loaded.extra.get("model_architecture")
    if not isinstance(config, dict) or not isinstance(name, str):
        raise CheckpointError(f"{loaded.path}: training checkpoint without its model config")
    try:
        arch = get_architecture(name)
        return arch, arch.config_from_dict(config)
    except (CheckpointError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{loaded.path}: {exc}") from None


def model_from_state(loaded: LoadedState) -> torch.nn.Module:
    """The model a training checkpoint holds, as it was at that step (float32, train mode)."""
    arch, config = model_architecture(loaded)
    model = arch.build(config)
    try:
        model.load_state_dict(loaded.model_state())
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"{loaded.path}: model weights do not fit ({first})") from None
    return model


def _state_meta(fh: Any) -> dict[str, Any] | None:
    """The state record of an open safetensors file, or None if it is not a checkpoint."""
    meta = json.loads((fh.metadata() or {}).get("state", "{}"))
    return meta if isinstance(meta, dict) and meta.get("format") == STATE_FORMAT else None


def is_state_file(path: Path) -> bool:
    """Whether ``path`` is a training checkpoint (not a model file); False if unreadable."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            return _state_meta(fh) is not None
    except (SafetensorError, OSError, ValueError):
        return False


def load_state(path: Path) -> LoadedState:
    """A checkpoint written by :func:`save_state`; :class:`CheckpointError` if not one."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = _state_meta(fh)
            if meta is None:
                raise CheckpointError(f"{path}: not a pconv training checkpoint")
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: unreadable training checkpoint ({exc})") from None
    return LoadedState(Path(path), int(meta["step"]), int(meta["phase"]), tensors, meta)


def latest_state(run_dir: Path) -> LoadedState | None:
    """The newest checkpoint that loads (older ones are tried if the newest does not)."""
    for _, path in reversed(list_checkpoints(run_dir)):
        try:
            return load_state(path)
        except CheckpointError:
            continue
    return None


def prune(run_dir: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` checkpoints; returns the deleted paths."""
    found = list_checkpoints(run_dir)
    doomed = [path for _, path in found[: max(0, len(found) - keep)]]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed
