"""The reconstruction loss of Jersch, Lundgren, Bolin ("Image Inpainting using GANs with
Partial Convolutions"): ``L_MSE = L+ + 1/6 L-``.

The paper's text was not at hand (it is not in any corpus this project can search), so this is
how we read its two terms: ``L+`` is the squared error over the hole (the pixels the generator
has to invent) and ``L-`` over the known pixels, each normalised like Liu et al.'s ``L_hole`` /
``L_valid`` (the masked sum divided by the number of *all* elements, ``C*H*W`` per image, mean
over the batch), i.e. Liu et al.'s 6 : 1 weighting of hole to valid with the L1 replaced by a
squared error. The generator's full loss ``L_G = L_MSE - 1/2000 log D`` adds the adversarial
term in the trainer (``--adversarial global-local``, :mod:`pconv.training.adversarial`).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

#: Keys of :meth:`GanPConvLoss.forward`'s dict besides ``"total"``: ``L+`` and ``L-``.
TERM_NAMES = ("hole_mse", "valid_mse")
#: The weight of ``L-`` in ``L_MSE``.
VALID_WEIGHT = 1 / 6
LOSS_VERSION = "jersch-mse-v1"


def hole_mse(out: Tensor, gt: Tensor, valid: Tensor) -> Tensor:
    """``L+``: ``||(1 - M) * (I_out - I_gt)||_2^2 / N`` (N = all elements)."""
    return ((1.0 - valid) * (out.float() - gt.float()).square()).mean()


def valid_mse(out: Tensor, gt: Tensor, valid: Tensor) -> Tensor:
    """``L-``: ``||M * (I_out - I_gt)||_2^2 / N`` (N = all elements)."""
    return (valid * (out.float() - gt.float()).square()).mean()


class GanPConvLoss(nn.Module):
    """``forward(out, gt, valid)`` -> ``{"hole_mse", "valid_mse", "total"}``, total =
    ``L+ + 1/6 L-``. ``valid`` is 1 = known pixel, ``[B,1,H,W]``."""

    def forward(self, out: Tensor, gt: Tensor, valid: Tensor) -> dict[str, Tensor]:
        if out.shape != gt.shape or valid.shape[0] != out.shape[0]:
            raise ValueError(f"out {tuple(out.shape)}, gt {tuple(gt.shape)} must match")
        gt, valid = gt.detach().float(), valid.detach().float()
        plus, minus = hole_mse(out, gt, valid), valid_mse(out, gt, valid)
        return {"hole_mse": plus, "valid_mse": minus, "total": plus + VALID_WEIGHT * minus}

    def describe(self) -> dict[str, Any]:
        """JSON-able record of the loss, for the metadata of trained weights."""
        return {
            "loss": LOSS_VERSION,
            "formula": "L+ + 1/6 L-: squared error over the hole + 1/6 over the known pixels",
            "weights": {"hole_mse": 1.0, "valid_mse": VALID_WEIGHT},
            "reduction": "masked sum / (C*H*W) per image, mean over the batch",
            "backbone": {"name": "none", "faithful": True},
        }
