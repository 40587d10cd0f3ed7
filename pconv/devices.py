"""Which torch device a model runs on: ``auto``, or one this torch has here.

A device this torch does not have is refused at once with a
:class:`~pconv.errors.DeviceError` listing the ones it has: torch itself would fail later, with a
traceback, at the first tensor moved there.
"""

from __future__ import annotations

import torch

from pconv.errors import DeviceError


def available_devices() -> list[str]:
    """The devices this torch can run on here, as ``--device`` spells them: ``cpu``, then
    ``cuda`` (and ``cuda:N`` for each of several GPUs), ``mps``, ``xpu`` where present."""
    found = ["cpu"]
    for kind in ("cuda", "mps", "xpu"):
        if _available(torch.device(kind)):
            count = _count(kind)
            found += [kind, *(f"{kind}:{i}" for i in range(count) if count > 1)]
    return found


def _backend(kind: str) -> object | None:
    """``torch.cuda``, ``torch.backends.mps``, ``torch.xpu`` ...: whatever says if ``kind`` is
    there; None for a kind this torch has no such module for (``meta``, ``vulkan`` ...)."""
    if kind == "mps":
        return getattr(torch.backends, "mps", None)
    return getattr(torch, kind, None)


def _count(kind: str) -> int:
    count = getattr(_backend(kind), "device_count", None)
    return int(count()) if callable(count) else 1


def _available(device: torch.device) -> bool:
    if device.type == "cpu":
        return True
    is_available = getattr(_backend(device.type), "is_available", None)
    try:
        present = callable(is_available) and bool(is_available())
    except Exception:  # a driver that fails to initialise: not usable here
        return False
    return present and (device.index is None or device.index < _count(device.type))


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/``"auto"``: CUDA if present, then Apple MPS, then CPU. Anything else must be a
    device this torch has here, or a :class:`~pconv.errors.DeviceError` lists those it has."""
    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    have = f"this torch ({torch.__version__}) has auto, {', '.join(available_devices())}"
    try:
        chosen = torch.device(device)  # type: ignore[arg-type]
    except (RuntimeError, TypeError, ValueError):
        raise DeviceError(f"unknown device {str(device)!r}; {have}") from None
    if not _available(chosen):
        raise DeviceError(f"device {str(device)!r} is not available here; {have}")
    return chosen
