"""The paper's three image metrics, computed over the whole composited image.

* **Composite first.** A method's output only counts inside the hole; known pixels are taken
  from the ground truth (``composite``), as the paper does. Scores are over the whole image,
  so they depend on the hole ratio by construction, which is why Table 1 is bucketed.
* **8-bit rounding.** Outputs are rounded to the 8-bit grid before scoring: that is what a
  user saves, and it puts the float methods (ours, biharmonic) on the same footing as the
  8-bit ones (OpenCV, PatchMatch). The ground truth is already on that grid (``pairing``).
* **l1 (%)**: mean absolute error over all pixels and channels, times 100.
* **PSNR**: ``10 log10(1 / MSE)`` with data range 1 (identical images give ``inf``).
* **SSIM**: ``skimage.metrics.structural_similarity`` with the settings of Wang et al. (2004):
  11x11 Gaussian window with sigma 1.5, population (not sample) covariance, K1=0.01, K2=0.03,
  data range 1, computed per RGB channel and averaged.
"""

from __future__ import annotations

import math

import numpy as np
from skimage.metrics import structural_similarity

#: Why the perceptual metrics are absent; recorded in the report and printed by the CLI.
PERCEPTUAL_NOTE = (
    "LPIPS and FID not computed: both need pretrained networks (AlexNet/VGG for LPIPS, "
    "Inception-v3 for FID) that are not available offline here."
)

SSIM_SETTINGS = {
    "gaussian_weights": True,
    "sigma": 1.5,
    "use_sample_covariance": False,
    "data_range": 1.0,
    "channel_axis": -1,
}


def to_8bit_grid(image: np.ndarray) -> np.ndarray:
    """float [0,1] -> float64 values k/255, as if saved to and read back from a PNG."""
    return np.rint(np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0) * 255.0) / 255.0


def composite(output: np.ndarray, truth: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The method's pixels inside the hole, the ground truth everywhere else."""
    return np.where(hole[..., None], output, truth)


def l1_percent(pred: np.ndarray, truth: np.ndarray) -> float:
    diff = np.asarray(pred, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    return float(np.mean(np.abs(diff)) * 100.0)


def psnr(pred: np.ndarray, truth: np.ndarray) -> float:
    diff = np.asarray(pred, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    mse = float(np.mean(diff * diff))
    return math.inf if mse == 0.0 else 10.0 * math.log10(1.0 / mse)


def ssim(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(
        structural_similarity(
            np.asarray(truth, dtype=np.float64), np.asarray(pred, dtype=np.float64), **SSIM_SETTINGS
        )
    )


def score(output: np.ndarray, truth: np.ndarray, hole: np.ndarray) -> dict[str, float]:
    """All three metrics for one method's output on one pair."""
    truth = to_8bit_grid(truth)  # float32 k/255 -> exact float64 k/255, same as the output
    pred = composite(to_8bit_grid(output), truth, hole)
    return {"l1": l1_percent(pred, truth), "psnr": psnr(pred, truth), "ssim": ssim(pred, truth)}
