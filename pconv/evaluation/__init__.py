"""The paper's Table 1 protocol on any image folder and mask folder.

``pairing`` pairs images with masks (seeded) and brings them to the evaluation size;
``buckets`` places each mask in a hole-ratio bucket and the border / no-border split;
``baselines`` and ``models`` are the methods; ``metrics`` scores one output; ``perceptual``
holds the judge networks (ST-LPIPS, Inception for FID and KID) and the rule that no training
loss's network judges; ``runner`` runs
everything; ``report`` and ``plots`` write the results. ``pconv eval`` (``pconv.cli.eval``)
puts these together.

Names are imported lazily (PEP 562): scikit-image and matplotlib belong to the optional
``eval`` extra, and importing ``pconv.evaluation.buckets`` must not need them.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BASELINES": "baselines",
    "Baseline": "baselines",
    "Method": "baselines",
    "load_baselines": "baselines",
    "MaskClass": "buckets",
    "bucket_label": "buckets",
    "bucket_of": "buckets",
    "classify": "buckets",
    "l1_percent": "metrics",
    "psnr": "metrics",
    "score": "metrics",
    "ssim": "metrics",
    "ModelMethod": "models",
    "Perceptual": "perceptual",
    "check_judges": "perceptual",
    "fid": "perceptual",
    "frechet_distance": "perceptual",
    "kid": "perceptual",
    "load_perceptual": "perceptual",
    "mmd2_unbiased": "perceptual",
    "Pair": "pairing",
    "Sample": "pairing",
    "collect_images": "pairing",
    "make_pairs": "pairing",
    "prepare": "pairing",
    "Evaluation": "runner",
    "Record": "runner",
    "evaluate": "runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
