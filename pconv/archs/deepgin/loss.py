"""DeepGIN's reconstruction loss (Li et al., AIM 2020, eq. 1-7), without the adversarial part.

The generator's objective is

    L_G = sum over (I_coarse, I_out, I_lr) of [ L_valid + lambda_hole * L_hole ]
          + lambda_perc * L_perc + lambda_style * (L_style(I_out) + L_style(I_complt))
          + lambda_tv * L_tv + lambda_adv * L_adv

with ``I_complt`` the output composited with the known pixels and ``I_lr`` (Back Projection's
low-resolution output) compared with ``I_gt`` and the mask downsampled x4 the way the network
downsamples (:func:`pconv.archs.deepgin.downsample4`, a 4x4 mean; the mask becomes the fraction of
known pixels). The hinge adversarial term is the trainer's (its discriminators are in
:mod:`pconv.discriminators`); this module gives every other term and their ``total``.

Each term is the one of :mod:`pconv.losses.terms` (one implementation of each job): L1 over
all elements (Liu et al.'s normalisation), per-layer mean L1 of the features of ``I_out`` and
``I_complt`` against ``I_gt``, the mean-L1 Gram style term, and TV over the dilated hole. The
paper does not give per-layer weights or the TV's norm; these are read as Liu et al.'s, which
DeepGIN's loss is written after. Weights: ``lambda_hole`` 5, perceptual 0.05, style 80, TV 0.1.
The warm-up stage trains on the L1 terms alone (:meth:`DeepGINLossWeights.warmup`).

``features`` is any callable ``image [B,3,H,W] in [0,1] -> list of feature maps`` (VGG-19
conv1_1..conv5_1 in the paper; any trunk of :mod:`pconv.losses.backbones` works), so that the
backbone is chosen, and loaded, by the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from pconv.archs.deepgin.model import downsample4
from pconv.losses import terms

Features = Callable[[Tensor], Sequence[Tensor]]

#: The named terms, in the order they are logged; ``total`` follows them.
DEEPGIN_TERMS = (
    "coarse_valid",
    "coarse_hole",
    "out_valid",
    "out_hole",
    "lr_valid",
    "lr_hole",
    "perceptual",
    "style",
    "tv",
)


@dataclass(frozen=True)
class DeepGINLossWeights:
    """The factors of eq. (7) (the adversarial one lives with the trainer)."""

    valid: float = 1.0
    hole: float = 5.0
    perceptual: float = 0.05
    style: float = 80.0
    tv: float = 0.1

    @classmethod
    def warmup(cls) -> DeepGINLossWeights:
        """The first stage: the L1 terms only."""
        return cls(perceptual=0.0, style=0.0, tv=0.0)

    def needs_features(self) -> bool:
        return bool(self.perceptual or self.style)

    def per_term(self) -> dict[str, float]:
        return {
            **{f"{stage}_valid": self.valid for stage in ("coarse", "out", "lr")},
            **{f"{stage}_hole": self.hole for stage in ("coarse", "out", "lr")},
            "perceptual": self.perceptual,
            "style": self.style,
            "tv": self.tv,
        }


def deepgin_loss(
    outputs: Mapping[str, Tensor],
    gt: Tensor,
    valid: Tensor,
    features: Features | None = None,
    weights: DeepGINLossWeights | None = None,
) -> dict[str, Tensor]:
    """Every term of eq. (1)-(7) but the adversarial one, and their weighted ``total``.

    ``outputs``: :meth:`pconv.archs.deepgin.DeepGIN.forward_train`'s ``coarse``, ``output`` and
    ``low_res``; ``gt`` ``[B,3,H,W]`` in [0, 1]; ``valid`` ``[B,1,H,W]``, 1 = known pixel.
    Without ``features`` the perceptual and style weights must be 0 (a :class:`ValueError`
    otherwise: a silently missing term would train another model than the one asked for).
    """
    weights = weights or DeepGINLossWeights()
    if features is None and weights.needs_features():
        raise ValueError("perceptual and style terms need a feature extractor (features=)")
    gt = gt.detach().float()
    valid = valid.detach().float()
    coarse, out, low_res = (outputs[k].float() for k in ("coarse", "output", "low_res"))
    if low_res.shape[-2:] != (gt.shape[-2] // 4, gt.shape[-1] // 4):
        raise ValueError(f"low_res {tuple(low_res.shape)} is not a quarter of {tuple(gt.shape)}")
    gt_lr, valid_lr = downsample4(gt), downsample4(valid)
    comp = terms.composite(out, gt, valid)
    values = {
        "coarse_valid": terms.valid_loss(coarse, gt, valid),
        "coarse_hole": terms.hole_loss(coarse, gt, valid),
        "out_valid": terms.valid_loss(out, gt, valid),
        "out_hole": terms.hole_loss(out, gt, valid),
        "lr_valid": terms.valid_loss(low_res, gt_lr, valid_lr),
        "lr_hole": terms.hole_loss(low_res, gt_lr, valid_lr),
        "tv": terms.tv_loss(comp, valid),
    }
    zero = out.new_zeros(())
    if features is not None and weights.needs_features():
        with torch.no_grad():
            feats_gt = [f.float() for f in features(gt)]
        both = [f.float() for f in features(torch.cat([out, comp]))]
        feats_out = [f[: out.shape[0]] for f in both]
        feats_comp = [f[out.shape[0] :] for f in both]
        values["perceptual"] = terms.perceptual_loss(feats_out, feats_comp, feats_gt)
        values["style"] = terms.style_loss(feats_out, feats_gt) + terms.style_loss(
            feats_comp, feats_gt
        )
    else:
        values["perceptual"] = values["style"] = zero
    factors = weights.per_term()
    values["total"] = sum(factors[name] * values[name] for name in DEEPGIN_TERMS)
    return {name: values[name] for name in (*DEEPGIN_TERMS, "total")}


class DeepGINLoss(nn.Module):
    """:func:`deepgin_loss` with its feature extractor held as a submodule (``.to`` moves it)."""

    def __init__(
        self, features: Features | None = None, weights: DeepGINLossWeights | None = None
    ) -> None:
        super().__init__()
        self.features = features
        self.weights = weights or DeepGINLossWeights()

    def with_weights(self, weights: DeepGINLossWeights) -> DeepGINLoss:
        """The same extractor with other weights (the warm-up and main stages)."""
        return DeepGINLoss(self.features, weights)

    def forward(
        self, outputs: Mapping[str, Tensor], gt: Tensor, valid: Tensor
    ) -> dict[str, Tensor]:
        return deepgin_loss(outputs, gt, valid, self.features, self.weights)

    def describe(self) -> dict[str, Any]:
        """JSON-able record of the loss, for a trained model's metadata."""
        return {"loss": "deepgin", "weights": asdict(self.weights)}


__all__ = [
    "DEEPGIN_TERMS",
    "DeepGINLoss",
    "DeepGINLossWeights",
    "deepgin_loss",
]
