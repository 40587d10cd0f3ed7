"""The PConv U-Net of the paper's supplementary material, built from a plain config.

Layout (512 input, depth 8)::

    enc1 7x7/2 64 (no BN) -> enc2 5x5/2 128 -> enc3 5x5/2 256 -> enc4..enc8 3x3/2 512   BN, ReLU
    dec8..dec2: nearest x2, concat [upsampled, skip of the mirrored encoder] (features *and*
    masks), 3x3/1, BN, LeakyReLU(0.2); dec1 concatenates the input image and its mask, 3x3/1
    to 3 channels, no BN, no activation.

``prior="smooth"`` (not in the paper) adds a fourth output channel to dec1: a per-pixel gate
that blends the network's prediction with the thin-plate fill of :mod:`pconv.smooth`. Where
the network cannot tell what belongs in a hole, the safest guess is smooth; the gate lets it
keep that guess there and draw its own content where it knows better.

``head="sigmoid"`` (not in the paper) ends the network the way PConv-Keras does: LeakyReLU, a
1x1 convolution and a sigmoid after dec1, whose output is then the image in ``[0, 1]`` directly
(the input normalisation is not undone on it). It exists so that the published Keras ImageNet
weights convert exactly; it costs 12 parameters and a per-pixel 3x3 product.

The model takes images in ``[0, 1]`` and ``valid`` masks (1 = known pixel) and returns its raw
prediction in ``[0, 1]`` space: the input normalisation of the config is applied inside, so
every model, ours or converted, is called the same way. Known pixels are *not* composited here;
:func:`pconv.inpaint` does that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pconv.architectures import JsonConfig
from pconv.layer import PartialConv2d, zero_holes
from pconv.smooth import blend, smooth_fill

#: Encoder kernel sizes of the paper; layers past the third use 3x3.
ENCODER_KERNELS = (7, 5, 5)

#: What the prediction is blended with: nothing (the paper), or the smooth fill.
PRIORS = ("none", "smooth")
#: What follows dec1: nothing (the paper), or PConv-Keras' LeakyReLU -> 1x1 conv -> sigmoid.
HEADS = ("none", "sigmoid")


@dataclass(frozen=True)
class UNetConfig(JsonConfig):
    """Everything needed to rebuild a PConv U-Net; round-trips through JSON."""

    config_name: ClassVar[str] = "U-Net"

    depth: int = 8  # encoder layers; input sides must be multiples of 2**depth
    base_width: int = 64  # channels of enc1; doubled each layer up to max_width_mult * base
    max_width_mult: int = 8
    batch_norm: bool = True
    leaky_slope: float = 0.2
    # Normalisation applied to [0,1] input inside the model (and undone on its output).
    input_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    input_std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    resolution: int = 512  # training resolution: the scale inference works at
    prior: str = "none"  # "smooth": gate the prediction with pconv.smooth's fill
    head: str = "none"  # "sigmoid": PConv-Keras' output head after dec1
    extra: dict = field(default_factory=dict)  # free-form notes carried along (not used here)

    @classmethod
    def paper512(cls, **overrides) -> UNetConfig:
        return cls(**{"depth": 8, "resolution": 512, **overrides})

    @classmethod
    def paper256(cls, **overrides) -> UNetConfig:
        return cls(**{"depth": 7, "resolution": 256, **overrides})

    def __post_init__(self) -> None:
        if self.depth < 1 or self.base_width < 1 or self.max_width_mult < 1:
            raise ValueError("depth, base_width and max_width_mult must be positive")
        if len(self.input_mean) != 3 or len(self.input_std) != 3:
            raise ValueError("input_mean and input_std need three values (RGB)")
        if self.prior not in PRIORS:
            raise ValueError(f"prior must be one of {', '.join(PRIORS)}, got {self.prior!r}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}, got {self.head!r}")
        # JSON gives lists; keep tuples so configs compare equal after a round trip.
        object.__setattr__(self, "input_mean", tuple(float(v) for v in self.input_mean))
        object.__setattr__(self, "input_std", tuple(float(v) for v in self.input_std))

    @property
    def widths(self) -> list[int]:
        """Output channels of enc1..enc{depth}."""
        top = self.base_width * self.max_width_mult
        return [min(self.base_width * 2**i, top) for i in range(self.depth)]

    @property
    def out_channels(self) -> int:
        """dec1's channels: RGB, plus the gate's logit with a prior."""
        return 3 if self.prior == "none" else 4

    @property
    def multiple(self) -> int:
        """Input height and width must be multiples of this."""
        return 2**self.depth


class EncoderBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, bn: bool) -> None:
        super().__init__()
        # A bias before BatchNorm would be cancelled by it; the upstream models drop it too.
        self.conv = PartialConv2d(c_in, c_out, kernel, stride=2, padding=kernel // 2, bias=not bn)
        self.bn = nn.BatchNorm2d(c_out) if bn else nn.Identity()

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """``x`` must already be zero in its holes (``mask`` 0): every block output is."""
        y, new_mask = self.conv.forward_counted(x, mask * self.conv.in_channels)
        # In place: BatchNorm's backward reads its input, not its output.
        y = F.relu(self.bn(y), inplace=True)
        return zero_holes(y, new_mask, fresh=True), new_mask


class DecoderBlock(nn.Module):
    def __init__(self, c_up: int, c_skip: int, c_out: int, bn: bool, slope: float | None) -> None:
        super().__init__()
        self.c_up, self.c_skip = c_up, c_skip
        self.conv = PartialConv2d(c_up + c_skip, c_out, 3, padding=1, bias=not bn)
        self.bn = nn.BatchNorm2d(c_out) if bn else nn.Identity()
        self.slope = slope

    def forward(
        self, x: Tensor, mask: Tensor, skip: Tensor, skip_mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Upsample ``x`` and join ``skip``; both already zero in their holes."""
        # The concatenated masks enter only through their per-pixel channel count, so the
        # channel-wide mask of the reference implementation is never built. The upsampled
        # features are a temporary of the concatenation only: the 4x-size copy is never held.
        count = F.interpolate(mask, scale_factor=2.0, mode="nearest") * self.c_up
        count = count.add_(skip_mask * self.c_skip)
        joined = torch.cat([F.interpolate(x, scale_factor=2.0, mode="nearest"), skip], dim=1)
        y, new_mask = self.conv.forward_counted(joined, count)
        del joined, count
        if self.slope is None:  # the output layer: no BN, no activation, zero in holes already
            return y, new_mask
        y = F.leaky_relu(self.bn(y), self.slope, inplace=True)
        return zero_holes(y, new_mask, fresh=True), new_mask


class PConvUNet(nn.Module):
    """Partial-convolution U-Net: ``forward(image [B,3,H,W] in [0,1], valid [B,1,H,W])``."""

    def __init__(self, config: UNetConfig | None = None) -> None:
        super().__init__()
        self.config = config or UNetConfig()
        cfg = self.config
        widths = cfg.widths
        bn = cfg.batch_norm
        self.encoders = nn.ModuleList()
        c_prev = 3
        for i, width in enumerate(widths):
            kernel = ENCODER_KERNELS[i] if i < len(ENCODER_KERNELS) else 3
            self.encoders.append(EncoderBlock(c_prev, width, kernel, bn=bn and i > 0))
            c_prev = width
        # decoders[i] is dec{i+1}: it upsamples dec{i+2} (or the bottleneck) and joins enc{i}.
        skip_widths = [3, *widths[:-1]]
        self.decoders = nn.ModuleList()
        for i in range(cfg.depth):
            c_up = widths[-1] if i == cfg.depth - 1 else skip_widths[i + 1]
            last = i == 0
            self.decoders.append(
                DecoderBlock(
                    c_up,
                    skip_widths[i],
                    cfg.out_channels if last else skip_widths[i],
                    bn=bn and not last,
                    slope=None if last else cfg.leaky_slope,
                )
            )
        # PConv-Keras' head: its 1x1 convolution, after a LeakyReLU of dec1's RGB channels.
        self.head = nn.Conv2d(3, 3, 1) if cfg.head == "sigmoid" else None
        self.register_buffer(
            "mean", torch.tensor(cfg.input_mean).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer("std", torch.tensor(cfg.input_std).view(1, 3, 1, 1), persistent=False)
        self._encoder_bn_frozen = False

    def forward(self, image: Tensor, valid: Tensor) -> Tensor:
        pred, gate = self.predict(image, valid)
        if gate is None:
            return pred
        return blend(pred, gate, smooth_fill(image, valid))

    def predict(self, image: Tensor, valid: Tensor) -> tuple[Tensor, Tensor | None]:
        """The network's own prediction and, with a prior, its gate (None without one).

        ``forward`` blends them with the smooth fill; :func:`pconv.inpaint` calls this directly
        when it works at a reduced scale, so that the fill is computed at full resolution.
        """
        if image.dim() != 4 or image.shape[1] != 3 or valid.shape[1:2] != (1,):
            raise ValueError(
                f"expected image [B,3,H,W] and mask [B,1,H,W], got {tuple(image.shape)} and "
                f"{tuple(valid.shape)}"
            )
        h, w = image.shape[-2:]
        if h % self.config.multiple or w % self.config.multiple:
            raise ValueError(
                f"input {h}x{w} is not a multiple of {self.config.multiple} "
                "(pconv.inpaint pads automatically)"
            )
        m = (valid > 0.5).to(torch.float32)
        x = (image - self.mean.to(image.dtype)) / self.std.to(image.dtype)
        x = zero_holes(x, m, fresh=True)
        skips = [(x, m)]
        for enc in self.encoders:
            x, m = enc(x, m)
            skips.append((x, m))
        skips.pop()  # the bottleneck is x itself
        # Each skip is released as soon as its decoder has used it.
        for i in reversed(range(self.config.depth)):
            x, m = self.decoders[i](x, m, *skips.pop())
        if self.head is None:
            pred = x[:, :3] * self.std.to(x.dtype) + self.mean.to(x.dtype)
        else:
            pred = torch.sigmoid(self.head(F.leaky_relu(x[:, :3], self.config.leaky_slope)))
        if self.config.prior == "none":
            return pred, None
        return pred, torch.sigmoid(x[:, 3:4].float())

    # -- the paper's fine-tuning phase ---------------------------------------------------------

    def freeze_encoder_bn(self, frozen: bool = True) -> None:
        """Freeze the encoder's BatchNorm statistics and affine parameters (phase 2).

        The decoder's BatchNorm keeps training. Survives later ``model.train()`` calls.
        """
        self._encoder_bn_frozen = frozen
        for module in self._encoder_bns():
            for p in module.parameters():
                p.requires_grad_(not frozen)
        self.train(self.training)

    def _encoder_bns(self) -> list[nn.BatchNorm2d]:
        return [m for m in self.encoders.modules() if isinstance(m, nn.BatchNorm2d)]

    def train(self, mode: bool = True) -> PConvUNet:
        super().train(mode)
        if self._encoder_bn_frozen:
            for module in self._encoder_bns():
                module.eval()
        return self


def add_smooth_prior(model: PConvUNet, gate: float = 0.5) -> PConvUNet:
    """A copy of ``model`` with ``prior="smooth"`` that starts from the same prediction.

    The gate's weights start at zero and its bias at ``logit(gate)``: every pixel begins as
    that fixed blend of the network and the smooth fill, and training takes it from there.
    """
    if model.config.prior != "none":
        raise ValueError(f"the model already has prior {model.config.prior!r}")
    if not 0 < gate < 1:
        raise ValueError(f"gate must be in (0, 1), got {gate}")
    gated = PConvUNet(replace(model.config, prior="smooth"))
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    conv = gated.decoders[0].conv
    w = torch.zeros_like(conv.weight)
    w[:3] = weights["decoders.0.conv.weight"]
    b = torch.full_like(conv.bias, math.log(gate / (1 - gate)))
    b[:3] = weights["decoders.0.conv.bias"]
    weights["decoders.0.conv.weight"], weights["decoders.0.conv.bias"] = w, b
    gated.load_state_dict(weights)
    return gated.to(next(model.parameters()).device).train(model.training)
