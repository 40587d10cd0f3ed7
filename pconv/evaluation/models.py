"""Our own models as evaluation methods, through the public ``pconv`` API only.

``pconv.load_model`` takes a zoo name or a ``.safetensors`` path; ``pconv.inpaint`` takes
float32 ``[H, W, 3]`` and a bool hole mask and returns the composited image, which is exactly
the call shape of the baselines.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pconv.errors import PConvError


def display_name(name_or_path: str) -> str:
    """A file is shown by its stem (``runs/x/best.safetensors`` -> ``best``), a zoo name as is."""
    path = Path(name_or_path)
    looks_like_file = path.suffix == ".safetensors" or len(path.parts) > 1 or path.is_file()
    return path.stem if looks_like_file else name_or_path


def loss_backbone(name_or_path: str) -> dict[str, str]:
    """The perceptual-loss network a model was trained with, as its weights record it
    (``loss.backbone``: name, sha256 prefix, ...); empty if not recorded. ``pconv eval`` checks
    that no judge network is this one."""
    import json

    from pconv.checkpoint import read_metadata
    from pconv.loader import resolve_weights

    try:
        loss = json.loads(read_metadata(resolve_weights(name_or_path)).get("loss") or "{}")
    except (PConvError, ValueError):
        return {}
    backbone = loss.get("backbone") if isinstance(loss, dict) else None
    return {k: str(v) for k, v in backbone.items()} if isinstance(backbone, dict) else {}


class ModelMethod:
    """A trained partial-convolution U-Net, loaded once and run per image."""

    def __init__(self, name_or_path: str, *, device: str | None = None) -> None:
        import pconv  # late: the evaluation package must import without the model core

        if not hasattr(pconv, "load_model") or not hasattr(pconv, "inpaint"):
            raise PConvError("this pconv has no model core (pconv.load_model / pconv.inpaint)")
        self.name = display_name(name_or_path)
        self.device = device
        self._inpaint = pconv.inpaint
        self.model = pconv.load_model(name_or_path, device=device)
        self.loss_backbone = loss_backbone(name_or_path)

    def __call__(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        out = self._inpaint(image, hole, self.model, device=self.device)
        return np.asarray(out, dtype=np.float32)
