"""The paper's three image metrics, computed over the whole composited image: the one
implementation, used by ``pconv eval`` (NumPy images, :func:`score`) and by the trainer's
validation (batches of tensors on any device, :func:`score_batch`).

* **Composite first.** A method's output only counts inside the hole; known pixels are taken
  from the ground truth (``composite``), as the paper does. Scores are over the whole image,
  so they depend on the hole ratio by construction, which is why Table 1 is bucketed.
* **8-bit rounding.** Outputs are rounded to the 8-bit grid before scoring: that is what a
  user saves, and it puts the float methods (ours, biharmonic) on the same footing as the
  8-bit ones (OpenCV, PatchMatch). The ground truth is already on that grid (``pairing``).
* **l1 (%)**: mean absolute error over all pixels and channels, times 100.
* **PSNR**: ``10 log10(1 / MSE)`` with data range 1. Identical images give ``inf``: a table
  says so honestly. Logs and curves cannot hold ``inf`` (the trainer's ``metrics.csv``,
  TensorBoard, progress line and model card), so they replace it by :data:`PSNR_CAP` with
  :func:`finite_psnr` at the point where they log; the scores themselves are never capped.
* **SSIM**: what ``skimage.metrics.structural_similarity`` computes with the settings of Wang
  et al. (2004), :data:`SSIM_SETTINGS`: 11x11 Gaussian window with sigma 1.5, population (not
  sample) covariance, K1=0.01, K2=0.03, data range 1, per RGB channel and averaged, borders
  the window does not fit excluded. It is :func:`pconv.losses.terms.ssim_map` (the training
  loss's SSIM term) in float64, so this module needs neither SciPy nor scikit-image, and the
  trainer's figures are ``pconv eval``'s.

Everything runs in float64. The perceptual measures (LPIPS, FID, KID) need networks and live
in :mod:`pconv.evaluation.perceptual`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from pconv.losses.terms import ssim_map

#: ``skimage.metrics.structural_similarity`` keywords that give the same SSIM as :func:`ssim`
#: (the reference the tests check it against).
SSIM_SETTINGS = {
    "gaussian_weights": True,
    "sigma": 1.5,
    "use_sample_covariance": False,
    "data_range": 1.0,
    "channel_axis": -1,
}

#: The PSNR (dB) logged for identical images instead of ``inf`` (see :func:`finite_psnr`):
#: far above any real inpainting score (30 dB is good), so it never hides one.
PSNR_CAP = 100.0


# -- batches of tensors [B, 3, H, W] in [0, 1] ---------------------------------------------------


def to_8bit_grid_tensor(x: Tensor) -> Tensor:
    """float [0,1] -> float64 values k/255, as if saved to and read back from a PNG."""
    return torch.round(x.double().clamp(0, 1) * 255.0) / 255.0


def l1_batch(pred: Tensor, truth: Tensor) -> Tensor:
    """Per-image mean absolute error (%), ``[B]``."""
    return (pred.double() - truth.double()).abs().mean(dim=(1, 2, 3)) * 100.0


def psnr_batch(pred: Tensor, truth: Tensor) -> Tensor:
    """Per-image PSNR (dB, data range 1), ``[B]``; ``inf`` for identical images."""
    diff = pred.double() - truth.double()
    mse = (diff * diff).mean(dim=(1, 2, 3))
    finite = -10.0 * torch.log10(mse.clamp(min=1e-10))
    return torch.where(mse > 0, finite, torch.full_like(mse, math.inf))


def ssim_batch(pred: Tensor, truth: Tensor) -> Tensor:
    """Per-image mean SSIM, ``[B]`` (see the module docstring for the settings)."""
    return ssim_map(pred.double(), truth.double()).mean(dim=(1, 2, 3))


def score_batch(output: Tensor, truth: Tensor, valid: Tensor) -> dict[str, Tensor]:
    """Per-image ``l1`` (%), ``psnr`` (dB) and ``ssim``, each ``[B]`` float64, of ``output``
    composited over ``truth`` where ``valid`` (``[B, 1, H, W]``, 1 = known) says."""
    truth = to_8bit_grid_tensor(truth)
    pred = torch.where(valid.bool(), truth, to_8bit_grid_tensor(output))
    return {
        "l1": l1_batch(pred, truth),
        "psnr": psnr_batch(pred, truth),
        "ssim": ssim_batch(pred, truth),
    }


def finite_psnr(psnr: Tensor) -> Tensor:
    """``inf`` (identical images) replaced by :data:`PSNR_CAP`: for logs, which need numbers."""
    return torch.where(torch.isinf(psnr), torch.full_like(psnr, PSNR_CAP), psnr)


# -- NumPy images [H, W, 3] in [0, 1] -------------------------------------------------------------


def _batch(image: np.ndarray) -> Tensor:
    return torch.from_numpy(np.asarray(image, dtype=np.float64)).permute(2, 0, 1)[None]


def to_8bit_grid(image: np.ndarray) -> np.ndarray:
    """float [0,1] -> float64 values k/255, as if saved to and read back from a PNG."""
    return np.rint(np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0) * 255.0) / 255.0


def l1_percent(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(l1_batch(_batch(pred), _batch(truth))[0])


def psnr(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(psnr_batch(_batch(pred), _batch(truth))[0])


def ssim(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(ssim_batch(_batch(pred), _batch(truth))[0])


def score(output: np.ndarray, truth: np.ndarray, hole: np.ndarray) -> dict[str, float]:
    """All three metrics for one method's output on one pair (``hole``: bool ``[H, W]``)."""
    valid = torch.from_numpy(~np.asarray(hole, dtype=bool))[None, None]
    scores = score_batch(_batch(output), _batch(truth), valid)
    return {k: float(v[0]) for k, v in scores.items()}
