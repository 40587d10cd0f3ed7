"""Validation metrics in torch (any device, no SciPy): l1 (%), PSNR and SSIM.

Same conventions as ``pconv.evaluation.metrics``: the output counts only inside the hole
(composited with the ground truth), both are rounded to the 8-bit grid, scores are over the
whole image; SSIM uses Wang et al.'s settings (11x11 Gaussian window, sigma 1.5, population
covariance, K1 0.01, K2 0.03, data range 1, per channel then averaged, borders the window
does not fit excluded), which is what ``skimage.metrics.structural_similarity`` computes; the
same function as the training loss's SSIM term, here in float64.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from pconv.losses.terms import ssim_map


def ssim_per_image(pred: Tensor, truth: Tensor) -> Tensor:
    """``[B,3,H,W]`` in [0,1] -> ``[B]`` mean SSIM, in float64."""
    return ssim_map(pred.double(), truth.double()).mean(dim=(1, 2, 3))


def to_8bit_grid(x: Tensor) -> Tensor:
    return torch.round(x.double().clamp(0, 1) * 255.0) / 255.0


def score_batch(output: Tensor, truth: Tensor, valid: Tensor) -> dict[str, Tensor]:
    """Per-image ``l1`` (%), ``psnr`` (dB, capped at 100 for identical images) and ``ssim``."""
    truth = to_8bit_grid(truth)
    pred = torch.where(valid.bool(), truth, to_8bit_grid(output))
    diff = pred - truth
    l1 = diff.abs().mean(dim=(1, 2, 3)) * 100.0
    mse = (diff * diff).mean(dim=(1, 2, 3))
    psnr = torch.where(
        mse > 0, -10.0 * torch.log10(mse.clamp(min=1e-10)), torch.full_like(mse, 100.0)
    )
    return {"l1": l1, "psnr": psnr, "ssim": ssim_per_image(pred, truth)}


def mean_scores(parts: list[dict[str, Tensor]]) -> dict[str, float]:
    keys = parts[0].keys() if parts else ()
    out = {k: float(torch.cat([p[k].cpu() for p in parts]).mean()) for k in keys}
    return {k: v for k, v in out.items() if math.isfinite(v)}
