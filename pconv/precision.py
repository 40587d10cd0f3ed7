"""One precision vocabulary for the library, the trainer and every front end.

``auto``, ``fp32``, ``bf16``, ``fp16``: weights stay float32 and ``bf16``/``fp16`` run under
autocast (the partial convolution's mask arithmetic stays float32 either way). ``auto`` is
bf16 on CUDA devices that have it, fp16 on older CUDA devices and fp32 elsewhere, since CPU
autocast is slower than fp32 on most CPUs. ComfyUI's nodes let ComfyUI decide what ``auto``
means on its devices.
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger("pconv")

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: precision -> autocast dtype (None: plain float32)
DTYPES: dict[str, torch.dtype | None] = {
    "fp32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}
#: torch's own spellings, accepted where a dtype name is given
ALIASES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


#: The half precisions already said to be slow on the CPU in this process (said once).
_NOTED: set[str] = set()


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device``; ``None`` for plain fp32.

    bf16 or fp16 asked for on the CPU is honoured, and said once per process to be slow
    there: CPU autocast converts at every layer, and on CPUs without native half-precision
    arithmetic it runs several times slower than fp32 (``auto`` never picks it there)."""
    precision = ALIASES.get(precision, precision)
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if precision not in DTYPES:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if DTYPES[precision] is not None and device.type == "cpu" and precision not in _NOTED:
        _NOTED.add(precision)
        log.warning(
            "note: %s on the CPU is usually slower than fp32 (several times on CPUs without "
            "native %s arithmetic), not faster; fp32 (or auto) is the CPU's choice",
            precision,
            precision,
        )
    return DTYPES[precision]


def precision_name(dtype: torch.dtype | None) -> str:
    """``fp32``/``bf16``/``fp16``: how run.json and the weights' metadata name a dtype."""
    return {None: "fp32", torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[
        dtype
    ]
