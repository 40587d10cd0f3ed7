"""Our weights format: one ``model.safetensors`` whose metadata rebuilds the model.

Metadata keys (all strings, as safetensors requires):

* ``format`` = ``"pconv"`` and ``format_version``;
* ``architecture``: the network's name in :mod:`pconv.architectures` (files without it, such
  as the packaged default model, are recognised from their config: they are PConv U-Nets);
* ``config``: that architecture's config as JSON (for the U-Net
  :class:`pconv.archs.unet.UNetConfig`: input normalisation and training resolution included);
* ``mask_convention``: how masks are read (fixed; stored so a reader of the file knows);
* anything else the writer adds (licence, source, training data, loss used ...).

Loading never unpickles anything: a pickled ``.pth``/``.ckpt`` is refused with a message that
says how to convert it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from pconv.architectures import Architecture, architecture_of, config_of, detect, unwrap
from pconv.errors import CheckpointError
from pconv.files import atomic_path

FORMAT = "pconv"
FORMAT_VERSION = "1"
MASK_CONVENTION = "network input: 1 = valid pixel; user-facing masks: white/1 = fill"
WEIGHTS_NAME = "model.safetensors"


def save_model(
    model: nn.Module,
    path: str | os.PathLike[str],
    metadata: dict[str, str] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write ``model`` atomically; ``dtype`` (e.g. ``torch.float16``) shrinks floating weights."""
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path / WEIGHTS_NAME
    inner = unwrap(model)  # DDP and torch.compile wrappers would rename the keys
    tensors = {}
    for name, tensor in inner.state_dict().items():
        t = tensor.detach().to("cpu")
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        tensors[name] = t.contiguous()
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    meta.update(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        architecture=architecture_of(inner).name,
        config=inner.config.to_json(),
        mask_convention=MASK_CONVENTION,
    )
    with atomic_path(path) as tmp:  # durable: a checkpoint must survive a power cut
        save_file(tensors, str(tmp), metadata=meta)
    return path


def _looks_pickled(path: Path) -> bool:
    """A torch.save zip archive or a raw pickle (protocol 2+).

    Only asked once the file failed to open as safetensors: a safetensors file starts with its
    header length, whose bytes can be anything, 0x80 or "PK" included.
    """
    with path.open("rb") as fh:
        head = fh.read(4)
    return head == b"PK\x03\x04" or (head[:1] == b"\x80" and head[1:2] in b"\x02\x03\x04\x05")


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The metadata of one of our files, checked for format; no tensors are read."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("no such file", path=path)
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        if _looks_pickled(path):
            raise CheckpointError(
                "a pickled PyTorch checkpoint, not safetensors; pickles are never loaded "
                "(convert published weights with `python -m zoo convert`)",
                path=path,
            ) from None
        raise CheckpointError(f"not a readable safetensors file ({exc})", path=path) from None
    if meta.get("format") != FORMAT or "config" not in meta:
        raise CheckpointError(
            "a safetensors file, but not a pconv model (no pconv config in its metadata)",
            path=path,
        )
    return meta


def layout_mismatch(
    expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]]
) -> str | None:
    """How tensor names and shapes differ from what an architecture expects; None if they fit."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(k for k in expected if k in found and found[k] != expected[k])
    parts = [
        f"{what}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
        for what, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
        if keys
    ]
    return "; ".join(parts) or None


@dataclass(frozen=True)
class Inspected:
    """What a weights file's header says: its architecture, config and metadata."""

    architecture: Architecture
    config: Any
    metadata: dict[str, str]


def _header_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    try:
        with safe_open(str(path), framework="pt") as fh:
            return {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"truncated or corrupt weights ({exc})", path=path) from None


def inspect_weights(path: str | os.PathLike[str]) -> Inspected:
    """Everything short of reading tensors: our format, a registered architecture and config,
    and tensor names and shapes (from the header) that fit it. The one check every reader of
    weights files goes through."""
    path = Path(path)
    meta = read_metadata(path)
    try:
        arch = detect(meta)
        config = config_of(arch, meta)
    except CheckpointError as exc:
        raise CheckpointError(exc.reason, path=path) from None
    detail = layout_mismatch(arch.expected_shapes(config), _header_shapes(path))
    if detail:
        raise CheckpointError(
            f"weights do not fit the architecture its config names ({detail})", path=path
        )
    return Inspected(arch, config, meta)


def load_weights(
    path: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> tuple[nn.Module, dict[str, str]]:
    """Build the model the file describes and load its weights; returns (model, metadata)."""
    path = Path(path)
    found = inspect_weights(path)
    model = found.architecture.build(found.config)
    try:
        with safe_open(str(path), framework="pt") as fh:
            state = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"truncated or corrupt weights ({exc})", path=path) from None
    expected = model.state_dict()
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})
    model.to(device=device, dtype=dtype).eval()
    return model, found.metadata
