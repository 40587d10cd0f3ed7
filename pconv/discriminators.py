"""Discriminators for adversarial training (``python -m train --adversarial``), and their losses.

Two designs, one class each, as their papers describe them:

- :class:`GlobalLocalDiscriminator`: Jersch, Lundgren, Bolin ("Image Inpainting using
  GANs with Partial Convolutions", Table 2), the global + local pair of Iizuka et al. that it
  adopts: 5x5 stride-2 convolutions on the whole image and on a crop around the hole, each
  branch ending in a fully connected layer, the two concatenated into one fully connected
  output (one logit per image). Its loss is the log loss (:func:`log_d_loss`,
  :func:`log_g_loss`: the generator minimises ``-log D``).
- :class:`MultiScalePatchDiscriminator`: Li et al. ("DeepGIN: Deep Generative
  Inpainting Network for Extreme Image Inpainting"), two conditional PatchGAN discriminators
  at full and half scale (pix2pixHD's multi-scale design, which DeepGIN trains), spectral
  normalisation after every convolution, hinge loss (:func:`hinge_d_loss`,
  :func:`hinge_g_loss`).

They judge the *composite* (known pixels from the photo, the hole from the generator), the
image a user gets; a real sample is the photo itself. The networks are training-only: nothing
here is saved in a model file, and inference never builds them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = [
    "DISCRIMINATORS",
    "GlobalLocalDiscriminator",
    "MultiScalePatchDiscriminator",
    "build_discriminator",
    "hinge_d_loss",
    "hinge_g_loss",
    "hole_boxes",
    "local_crops",
    "log_d_loss",
    "log_g_loss",
    "parameter_count",
]

#: Widths of the 5x5 stride-2 convolutions (Iizuka et al., as Jersch et al.'s Table 2): 64 doubling
#: up to 512, then 512 for every further layer.
GL_WIDTHS = (64, 128, 256, 512)
#: Features each branch's fully connected layer gives the concatenation.
GL_FEATURES = 1024
#: The branches convolve down to about this many pixels a side before their FC layer.
GL_FINAL = 4


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# -- global + local (Jersch et al.) ------------------------------------------------------------


def _gl_branch(size: int) -> tuple[nn.Sequential, int]:
    """5x5 stride-2 convolutions + ReLU from ``size`` down to ``GL_FINAL`` px, and the number of
    features they leave (``channels * side**2``) for the fully connected layer."""
    layers: list[nn.Module] = []
    channels, side = 3, size
    count = max(1, math.ceil(math.log2(size / GL_FINAL)))
    for i in range(count):
        width = GL_WIDTHS[min(i, len(GL_WIDTHS) - 1)]
        layers += [nn.Conv2d(channels, width, 5, stride=2, padding=2), nn.ReLU(inplace=True)]
        channels, side = width, (side + 1) // 2  # ceil(side / 2) with padding 2
    return nn.Sequential(*layers), channels * side * side


class GlobalLocalDiscriminator(nn.Module):
    """Jersch et al.'s discriminators (their Table 2, after Iizuka et al. 2017): a global branch
    on the whole ``size`` x ``size`` composite and a local branch on a ``size // 2`` crop around the
    hole, both 5x5 stride-2 convolutions with ReLU (64, 128, 256, 512, then 512 channels) down
    to 4x4, each flattened into a fully connected layer of 1024 features; the two are
    concatenated and a last fully connected layer gives one logit (``D = sigmoid(logit)``).

    At 256 px this is Iizuka's network exactly: 6 global and 5 local convolutions. Other sizes
    keep the 4x4 end, so the layer count follows the size. No batch normalisation: real and
    fake go through in one batch (one forward, as DDP wants), and batch statistics would mix
    them.

    ``forward(image, boxes)``: images ``[N, 3, size, size]``, the local crop boxes ``[N, 2]``
    (top, left) from :func:`hole_boxes`.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        if size < 2 * GL_FINAL * 2:
            raise ValueError(f"global-local discriminator needs images of >= 16 px, got {size}")
        self.size = size
        self.local_size = size // 2
        self.global_convs, global_features = _gl_branch(size)
        self.local_convs, local_features = _gl_branch(self.local_size)
        self.global_fc = nn.Linear(global_features, GL_FEATURES)
        self.local_fc = nn.Linear(local_features, GL_FEATURES)
        self.out = nn.Linear(2 * GL_FEATURES, 1)

    def forward(self, image: Tensor, boxes: Tensor) -> Tensor:
        crops = local_crops(image, boxes, self.local_size)
        g = F.relu(self.global_fc(self.global_convs(image).flatten(1)))
        loc = F.relu(self.local_fc(self.local_convs(crops).flatten(1)))
        return self.out(torch.cat([g, loc], dim=1)).squeeze(1)


def hole_boxes(valid: Tensor, crop: int) -> Tensor:
    """The local discriminator's crop per image, ``[N, 2]`` (top, left) as int64.

    How we read "a crop around the hole": a fixed ``crop`` x ``crop`` box (half the image side,
    Iizuka's 128 of 256) centred on the centre of the hole's bounding box, then shifted to lie
    inside the image (clamped, never shrunk), so that every crop has one size and a batch stacks.
    A hole larger than the box is seen around its centre; an image without a hole (never drawn
    in training) gets the centre crop. Real and fake of one image use the same box.
    """
    hole = (valid < 0.5).any(dim=1)  # [N, H, W]
    n, height, width = hole.shape
    rows, cols = hole.any(dim=2), hole.any(dim=1)
    out = torch.empty(n, 2, dtype=torch.int64)
    for i, (r, c) in enumerate(zip(rows.cpu(), cols.cpu(), strict=True)):
        for axis, (line, extent) in enumerate(((r, height), (c, width))):
            where = torch.nonzero(line).flatten()
            centre = (int(where[0]) + int(where[-1]) + 1) // 2 if where.numel() else extent // 2
            out[i, axis] = min(max(centre - crop // 2, 0), extent - crop)
    return out


def local_crops(image: Tensor, boxes: Tensor, crop: int) -> Tensor:
    """``crop`` x ``crop`` windows of ``image`` at ``boxes`` (differentiable slicing)."""
    return torch.stack(
        [
            image[i, :, top : top + crop, left : left + crop]
            for i, (top, left) in enumerate(boxes.tolist())
        ]
    )


# -- multi-scale conditional PatchGAN (Li et al.) ----------------------------------------------


def _sn_conv(cin: int, cout: int, stride: int) -> nn.Module:
    return spectral_norm(nn.Conv2d(cin, cout, 4, stride=stride, padding=2))


class PatchDiscriminator(nn.Module):
    """One conditional PatchGAN (pix2pixHD's ``n_layers = 3``): 4x4 convolutions with 64, 128
    and 256 channels at stride 2, 512 at stride 1, then one channel at stride 1, LeakyReLU 0.2
    between them, spectral normalisation on every convolution (in place of a normalisation
    layer). Output: a map of logits, one per overlapping patch."""

    def __init__(self, in_channels: int = 6) -> None:
        super().__init__()
        widths = (64, 128, 256, 512)
        layers: list[nn.Module] = []
        channels = in_channels
        for i, width in enumerate(widths):
            layers += [_sn_conv(channels, width, 2 if i < 3 else 1), nn.LeakyReLU(0.2)]
            channels = width
        layers.append(_sn_conv(channels, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class MultiScalePatchDiscriminator(nn.Module):
    """Li et al.'s two discriminators (DeepGIN, Li et al. 2020; its discriminator section: two
    PatchGANs at the original and half scale, spectrally normalised, hinge loss), pix2pixHD's
    multi-scale layout: :class:`PatchDiscriminator` on the full image and another on it
    average-pooled 3x3, stride 2 (``count_include_pad=False``).

    Conditional: the input is the masked image (holes at 0) concatenated with the completed one,
    6 channels, so it judges a fill against the context it was given. ``forward(masked,
    completed)`` returns the two logit maps, full scale first.
    """

    def __init__(self, scales: int = 2) -> None:
        super().__init__()
        self.scales = nn.ModuleList(PatchDiscriminator(6) for _ in range(scales))

    def forward(self, masked: Tensor, completed: Tensor) -> list[Tensor]:
        x = torch.cat([masked, completed], dim=1)
        outputs = []
        for i, d in enumerate(self.scales):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(d(x))
        return outputs


# -- losses -----------------------------------------------------------------------------------


def _as_list(logits: Tensor | list[Tensor]) -> list[Tensor]:
    return [t.float() for t in (logits if isinstance(logits, list) else [logits])]


def hinge_d_loss(real: Tensor | list[Tensor], fake: Tensor | list[Tensor]) -> tuple[Tensor, Tensor]:
    """The discriminator's hinge loss, summed over scales: (``mean(relu(1 - D(real)))``,
    ``mean(relu(1 + D(fake)))``)."""
    r = sum(F.relu(1.0 - t).mean() for t in _as_list(real))
    f = sum(F.relu(1.0 + t).mean() for t in _as_list(fake))
    return r, f  # type: ignore[return-value]


def hinge_g_loss(fake: Tensor | list[Tensor]) -> Tensor:
    """The generator's hinge loss, summed over scales: ``-mean(D(fake))``."""
    return sum(-t.mean() for t in _as_list(fake))  # type: ignore[return-value]


def log_d_loss(real: Tensor | list[Tensor], fake: Tensor | list[Tensor]) -> tuple[Tensor, Tensor]:
    """The discriminator's log loss on logits: (``-mean(log D(real))``,
    ``-mean(log(1 - D(fake)))``) with ``D = sigmoid``, computed as softplus for stability."""
    r = sum(F.softplus(-t).mean() for t in _as_list(real))
    f = sum(F.softplus(t).mean() for t in _as_list(fake))
    return r, f  # type: ignore[return-value]


def log_g_loss(fake: Tensor | list[Tensor]) -> Tensor:
    """Jersch et al.'s generator term ``-log D(fake)`` (the non-saturating loss), on logits."""
    return sum(F.softplus(-t).mean() for t in _as_list(fake))  # type: ignore[return-value]


#: ``--adversarial`` choices besides ``none``.
DISCRIMINATORS = ("global-local", "multiscale-patch")


def build_discriminator(kind: str, size: int) -> nn.Module:
    if kind == "global-local":
        return GlobalLocalDiscriminator(size)
    if kind == "multiscale-patch":
        return MultiScalePatchDiscriminator()
    raise ValueError(f"unknown discriminator {kind!r} (choose from {', '.join(DISCRIMINATORS)})")
