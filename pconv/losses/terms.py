"""The loss terms of Liu et al., ECCV 2018 (eq. 1-6), as plain functions on tensors.

Conventions: images are ``[B, 3, H, W]`` in ``[0, 1]``; ``valid`` is ``[B, 1, H, W]`` (or
``[B, 3, H, W]``) with **1 = known pixel, 0 = hole**.

Normalisations, exactly as in the paper and applied per sample, then averaged over the batch
(the samples of a batch all have the same size, so this equals a mean over every element):

* ``L_valid``/``L_hole``: L1 of the masked difference divided by ``N_Igt = C*H*W`` - the number
  of *all* elements, not of the masked ones. A batch with small holes therefore has a small
  ``L_hole``; that is what the 1 : 6 weights were tuned for.
* ``L_perceptual``: per layer, L1 divided by ``N_Psi_p = C_p*H_p*W_p`` (a plain mean).
* ``L_style``: Gram matrix ``K_p * Psi^T Psi`` with ``K_p = 1/(C_p*H_p*W_p)``; the L1 over the
  ``C_p x C_p`` Gram entries is **averaged** (divided by ``C_p**2``). The paper's eq. 4-5 carry
  that ``1/(C_p*C_p)`` factor in front of the norm, and both public ports (NVIDIA's and
  naoto0804's) take a mean, so the published weight of 120 is calibrated for the mean.
* ``L_tv``: summed over the pairs of neighbours that both lie in P (the hole dilated by one
  pixel with a 3x3 square), divided by ``N_Icomp = C*H*W`` (again all elements).
* ``L_ssim`` (not in the paper, weight 0 by default): ``1 - SSIM(I_comp, I_gt)`` with the
  settings ``pconv eval`` scores with (Gaussian window sigma 1.5 truncated at 3.5 sigma, i.e.
  11 x 11, population covariance, per channel, windows that fit inside the image). Windows of
  known pixels only have SSIM 1, so the term only sees the hole and its surround.

Everything that compares features is done in float32 with autocast switched off, because a
Gram matrix sums ``H*W`` products and overflows/loses all precision in fp16/bf16.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor

#: A pixel of a soft ``valid`` mask counts as hole (for the TV region) below this value.
HOLE_THRESHOLD = 0.5


@contextmanager
def full_precision(device_type: str) -> Iterator[None]:
    """Switch autocast off: matmuls inside would otherwise be cast back to fp16/bf16."""
    with torch.autocast(device_type=device_type, enabled=False):
        yield


def composite(out: Tensor, gt: Tensor, valid: Tensor) -> Tensor:
    """``I_comp``: the output with the known pixels replaced by the ground truth."""
    return valid * gt + (1.0 - valid) * out


def valid_loss(out: Tensor, gt: Tensor, valid: Tensor) -> Tensor:
    """Eq. 2: ``||M * (I_out - I_gt)||_1 / N_Igt``."""
    return (valid * (out.float() - gt.float())).abs().mean()


def hole_loss(out: Tensor, gt: Tensor, valid: Tensor) -> Tensor:
    """Eq. 1: ``||(1 - M) * (I_out - I_gt)||_1 / N_Igt``."""
    return ((1.0 - valid) * (out.float() - gt.float())).abs().mean()


def gram_matrix(feat: Tensor) -> Tensor:
    """``K_p * Psi^T Psi`` of ``[B, C, H, W]`` features: ``[B, C, C]``, float32."""
    b, c, h, w = feat.shape
    with full_precision(feat.device.type):
        flat = feat.float().reshape(b, c, h * w)
        return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def perceptual_loss(
    feats_out: Sequence[Tensor], feats_comp: Sequence[Tensor], feats_gt: Sequence[Tensor]
) -> Tensor:
    """Eq. 3: per layer mean L1 of the features of ``I_out`` and of ``I_comp`` vs ``I_gt``."""
    total = feats_gt[0].new_zeros((), dtype=torch.float32)
    with full_precision(feats_gt[0].device.type):
        for fo, fc, fg in zip(feats_out, feats_comp, feats_gt, strict=True):
            fg = fg.float()
            total = total + (fo.float() - fg).abs().mean() + (fc.float() - fg).abs().mean()
    return total


def style_loss(feats: Sequence[Tensor], feats_gt: Sequence[Tensor]) -> Tensor:
    """Eq. 4/5: per layer, mean over the Gram entries of ``|G(x) - G(gt)|``, summed over layers."""
    total = feats_gt[0].new_zeros((), dtype=torch.float32)
    with full_precision(feats_gt[0].device.type):
        for fx, fg in zip(feats, feats_gt, strict=True):
            total = total + (gram_matrix(fx) - gram_matrix(fg)).abs().mean()
    return total


#: SSIM of Wang et al. 2004 as scikit-image computes it with gaussian_weights=True:
#: sigma 1.5 truncated at 3.5 sigma (an 11 x 11 window), K1 0.01, K2 0.03, data range 1.
SSIM_SIGMA = 1.5
SSIM_RADIUS = int(3.5 * SSIM_SIGMA + 0.5)
SSIM_C1 = 0.01**2
SSIM_C2 = 0.03**2


def _gaussian_window(device: torch.device, dtype: torch.dtype) -> Tensor:
    x = torch.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=dtype, device=device)
    g = torch.exp(-(x**2) / (2 * SSIM_SIGMA**2))
    return g / g.sum()


def ssim_map(x: Tensor, y: Tensor) -> Tensor:
    """Per-channel SSIM of every window that fits inside ``[B, C, H, W]`` images in [0, 1].

    Computed in float64 for float64 inputs (the validation metric), else in float32.
    """
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    c = x.shape[1]
    g = _gaussian_window(x.device, dtype)
    # Separable Gaussian blur, no padding: the windows of scikit-image's cropped mean.
    kernel_h = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    kernel_v = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(F.conv2d(t, kernel_h, groups=c), kernel_v, groups=c)

    with full_precision(x.device.type):
        x, y = x.to(dtype), y.to(dtype)
        mu_x, mu_y = blur(x), blur(y)
        var_x = blur(x * x) - mu_x**2
        var_y = blur(y * y) - mu_y**2
        cov = blur(x * y) - mu_x * mu_y
        num = (2 * mu_x * mu_y + SSIM_C1) * (2 * cov + SSIM_C2)
        den = (mu_x**2 + mu_y**2 + SSIM_C1) * (var_x + var_y + SSIM_C2)
        return num / den


def ssim_loss(comp: Tensor, gt: Tensor) -> Tensor:
    """``1 - SSIM(I_comp, I_gt)``, SSIM averaged per sample, then over the batch."""
    return (1.0 - ssim_map(comp, gt).flatten(1).mean(1)).mean()


def dilated_hole_region(valid: Tensor) -> Tensor:
    """P: the hole dilated by one pixel (3x3 square, clipped at the border), as bool."""
    hole = (valid.detach().float() < HOLE_THRESHOLD).float()
    # max_pool pads with -inf, so the border is neither grown nor shrunk.
    return F.max_pool2d(hole, kernel_size=3, stride=1, padding=1) > 0


def tv_loss(comp: Tensor, valid: Tensor) -> Tensor:
    """Eq. 6: L1 of horizontal and vertical neighbour differences of ``I_comp`` inside P."""
    comp = comp.float()
    region = dilated_hole_region(valid)
    n_elements = comp.shape[1] * comp.shape[2] * comp.shape[3]
    pairs_h = (region[..., :, 1:] & region[..., :, :-1]).float()
    pairs_v = (region[..., 1:, :] & region[..., :-1, :]).float()
    diff_h = (comp[..., :, 1:] - comp[..., :, :-1]).abs() * pairs_h
    diff_v = (comp[..., 1:, :] - comp[..., :-1, :]).abs() * pairs_v
    per_sample = diff_h.flatten(1).sum(1) + diff_v.flatten(1).sum(1)
    return (per_sample / n_elements).mean()
