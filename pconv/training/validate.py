"""Validation: metrics and loss on the fixed validation crops, and a PNG grid of samples.

The metrics are :mod:`pconv.evaluation.metrics`' (the ones ``pconv eval`` reports). What is
logged must be a number: a validation image whose hole the model fills exactly has PSNR
``inf``, logged as :data:`~pconv.evaluation.metrics.PSNR_CAP` (100 dB) before the mean.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from pconv.evaluation.metrics import finite_psnr, score_batch
from pconv.holes import composite
from pconv.io import save_image, to_uint8
from pconv.training.data import ValSet
from pconv.training.recipes import TrainingLoss, as_outputs

#: Validation images shown in the grid (rows); columns: input, output, composite, truth.
GRID_ROWS = 4


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loss_fn: TrainingLoss,
    valset: ValSet,
    device: torch.device,
    batch_size: int,
    autocast: torch.autocast | None = None,
    forward: Callable[[nn.Module, Tensor, Tensor], dict[str, Tensor]] | None = None,
) -> tuple[dict[str, float], np.ndarray]:
    """``({"l1", "psnr", "ssim", "loss"}, grid uint8 [H, W, 3])``; the model is put back in
    training mode afterwards. ``forward(model, image, valid)`` gives the training outputs
    (the recipe's; default: ``model(image, valid)`` is the prediction) the loss is taken of;
    the metrics judge ``"output"``."""
    forward = forward or (lambda m, image, valid: as_outputs(m(image, valid)))
    was_training = model.training
    model.eval()
    parts: list[dict[str, Tensor]] = []
    shown: list[tuple[Tensor, Tensor, Tensor]] = []
    loss_sum, count = 0.0, 0
    try:
        for start in range(0, len(valset), batch_size):
            image = valset.images[start : start + batch_size].to(device).float() / 255.0
            valid = valset.valid[start : start + batch_size].to(device)
            with autocast or nullcontext():
                outputs = {k: v.float() for k, v in forward(model, image, valid).items()}
            out = outputs["output"]
            terms = loss_fn(outputs, image, valid)
            loss_sum += float(terms["total"]) * image.shape[0]
            count += image.shape[0]
            scores = score_batch(out, image, valid)
            parts.append({**scores, "psnr": finite_psnr(scores["psnr"])})
            for i in range(image.shape[0]):
                if len(shown) < GRID_ROWS:
                    shown.append((image[i].cpu(), valid[i].cpu(), out[i].cpu()))
    finally:
        model.train(was_training)
    scores = mean_scores(parts)
    scores["loss"] = loss_sum / max(count, 1)
    return scores, make_grid(shown)


def mean_scores(parts: list[dict[str, Tensor]]) -> dict[str, float]:
    """The mean of each per-image score over the batches; a non-finite mean is left out."""
    keys = parts[0].keys() if parts else ()
    out = {k: float(torch.cat([p[k].cpu() for p in parts]).mean()) for k in keys}
    return {k: v for k, v in out.items() if math.isfinite(v)}


def make_grid(rows: list[tuple[Tensor, Tensor, Tensor]], gap: int = 4) -> np.ndarray:
    """One row per sample: input (holes white), raw output, composite, ground truth."""
    tiles = []
    for image, valid, out in rows:
        out = out.clamp(0, 1)
        shown_input = image * valid + (1 - valid)
        tiles.append([shown_input, out, composite(image, out, valid < 0.5), image])
    size = rows[0][0].shape[-1]
    height = len(tiles) * size + (len(tiles) - 1) * gap
    width = 4 * size + 3 * gap
    canvas = torch.ones(3, height, width)
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            y, x = r * (size + gap), c * (size + gap)
            canvas[:, y : y + size, x : x + size] = tile
    return to_uint8(canvas.permute(1, 2, 0).numpy())


def save_grid(grid: np.ndarray, path: Path) -> None:
    save_image(grid, path)  # atomic
