"""The paper's total loss (eq. 7) as one module that returns every term for logging.

``L_total = L_valid + 6 L_hole + 0.05 L_perceptual + 120 (L_style_out + L_style_comp)
+ 0.1 L_tv``; see :mod:`pconv.losses.terms` for each term's exact normalisation. An optional
``ssim`` term (``1 - SSIM`` of the composite, weight 0 unless asked for) is not the paper's: it
targets the metric ``pconv eval`` reports and is useful when no perceptual backbone is at hand.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from pconv.losses import terms
from pconv.losses.backbones import PerceptualBackbone, no_backbone, resolve_backbone

#: Keys of the dict returned by :meth:`InpaintingLoss.forward`, besides ``"total"``.
TERM_NAMES = ("valid", "hole", "perceptual", "style_out", "style_comp", "tv", "ssim")

#: Bumped whenever a term's definition or normalisation changes; stored by describe().
LOSS_VERSION = "liu2018-v1"


@dataclass(frozen=True)
class LossWeights:
    """Term weights; the defaults are the paper's (eq. 7). ``style`` weighs out and comp."""

    valid: float = 1.0
    hole: float = 6.0
    perceptual: float = 0.05
    style: float = 120.0
    tv: float = 0.1
    ssim: float = 0.0  # not in the paper

    def needs_features(self) -> bool:
        return self.perceptual != 0 or self.style != 0

    def pixel_only(self) -> LossWeights:
        return replace(self, perceptual=0.0, style=0.0)

    def per_term(self) -> dict[str, float]:
        """The factor each entry of :data:`TERM_NAMES` is multiplied by in the total."""
        return {
            "valid": self.valid,
            "hole": self.hole,
            "perceptual": self.perceptual,
            "style_out": self.style,
            "style_comp": self.style,
            "tv": self.tv,
            "ssim": self.ssim,
        }


def _check_shapes(out: Tensor, gt: Tensor, valid: Tensor) -> None:
    if out.ndim != 4 or out.shape[1] != 3 or out.shape != gt.shape:
        raise ValueError(f"out {tuple(out.shape)} and gt {tuple(gt.shape)} must be [B,3,H,W]")
    b, _, h, w = out.shape
    fits = valid.ndim == 4 and valid.shape[0] == b and valid.shape[2:] == (h, w)
    if not fits or valid.shape[1] not in (1, 3):
        raise ValueError(f"valid {tuple(valid.shape)} must be [B,1,H,W] for out {(b, 3, h, w)}")


class InpaintingLoss(nn.Module):
    """Liu et al. 2018 loss. ``forward(out, gt, valid)`` -> dict of each term and ``"total"``.

    ``backbone`` is a spec for :func:`~pconv.losses.backbones.resolve_backbone` or an already
    loaded :class:`PerceptualBackbone`. Without a backbone the perceptual and style weights are
    set to 0 (``describe()`` records both the requested and the effective weights). When the
    requested weights need no features, no backbone is loaded at all.
    """

    def __init__(
        self,
        weights: LossWeights | None = None,
        backbone: str | PerceptualBackbone = "auto",
        **resolve_kwargs: Any,
    ) -> None:
        super().__init__()
        self.requested_weights = weights or LossWeights()
        if isinstance(backbone, PerceptualBackbone):
            loaded = backbone
        elif self.requested_weights.needs_features():
            loaded = resolve_backbone(backbone, **resolve_kwargs)
        else:
            loaded = no_backbone("not needed: perceptual and style weights are 0")
        self.backbone_info = loaded.info
        self.trunk = loaded.trunk  # registered as a submodule, so .to(device) moves it
        has_trunk = self.trunk is not None
        self.weights = self.requested_weights if has_trunk else self.requested_weights.pixel_only()

    def forward(self, out: Tensor, gt: Tensor, valid: Tensor) -> dict[str, Tensor]:
        _check_shapes(out, gt, valid)
        # Targets and masks are data: no gradient may reach them through the loss.
        gt = gt.detach().float()
        valid = valid.detach().float()
        out = out.float()
        comp = terms.composite(out, gt, valid)
        values = {
            "valid": terms.valid_loss(out, gt, valid),
            "hole": terms.hole_loss(out, gt, valid),
            "tv": terms.tv_loss(comp, valid),
        }
        # Skipped at weight 0: eight blurs of the batch that would only be logged.
        values["ssim"] = terms.ssim_loss(comp, gt) if self.weights.ssim else out.new_zeros(())
        values.update(self._feature_terms(out, comp, gt))
        factors = self.weights.per_term()
        values["total"] = sum(factors[name] * values[name] for name in TERM_NAMES)
        return {name: values[name] for name in (*TERM_NAMES, "total")}

    def _feature_terms(self, out: Tensor, comp: Tensor, gt: Tensor) -> dict[str, Tensor]:
        if self.trunk is None or not self.weights.needs_features():
            zero = out.new_zeros(())
            return {"perceptual": zero, "style_out": zero, "style_comp": zero}
        with torch.no_grad():
            feats_gt = [f.float() for f in self.trunk(gt)]
        # One trunk pass for out and comp together: half the kernel launches.
        both = [f.float() for f in self.trunk(torch.cat([out, comp]))]
        feats_out = [f[: out.shape[0]] for f in both]
        feats_comp = [f[out.shape[0] :] for f in both]
        return {
            "perceptual": terms.perceptual_loss(feats_out, feats_comp, feats_gt),
            "style_out": terms.style_loss(feats_out, feats_gt),
            "style_comp": terms.style_loss(feats_comp, feats_gt),
        }

    def describe(self) -> dict[str, Any]:
        """JSON-able record of the loss, for the checkpoint metadata of trained weights."""
        return {
            "loss": LOSS_VERSION,
            "backbone": self.backbone_info.as_dict(),
            "weights": asdict(self.weights),
            "requested_weights": asdict(self.requested_weights),
            "features": self.trunk.feature_names if self.trunk is not None else [],
            "gram_l1": "mean over C_p x C_p entries, K_p = 1/(C_p H_p W_p)",
            "tv_region": "hole dilated by 1 px (3x3 square)",
            "ssim": "1 - SSIM(comp, gt), Gaussian 11x11 sigma 1.5, as pconv eval",
            "reduction": "per-sample normalisation as in the paper, mean over the batch",
        }
