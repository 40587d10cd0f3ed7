"""The generator of Jersch, Lundgren, Bolin, "Image Inpainting using GANs with Partial
Convolutions", its Table 1 at 128 x 128, as a registered architecture ("gan-pconv").

The table lists nine partial convolutions and a head::

    encoder   5x5/2 64   5x5/2 128   3x3/2 256   3x3/2 256               LeakyReLU
    decoder   3x3/1 256  3x3/1 256   3x3/1 128   3x3/1 64    3x3/1 3     LeakyReLU
    head      1x1 3, sigmoid

and its text calls it a U-Net with skip connections. The table gives neither the upsampling nor
which decoder layer joins which skip; how we read it (documented in docs/architecture.md):

* The first decoder layer (3x3/1 256) works at the bottleneck, 8x8 at 128 px, on the last
  encoder layer's output, without upsampling.
* Each of the other four (256, 128, 64, 3) upsamples its input x2 (nearest neighbour, as Liu
  et al.'s U-Net, whose partial convolutions the paper takes), concatenates the skip of the
  mirrored encoder level (features and masks) and convolves: the 256 joins the third encoder
  layer (256 channels), the 128 the second (128), the 64 the first (64), the 3 the input image.
  So every such layer outputs as many channels as its skip has: exactly Liu et al.'s rule, and
  the only reading in which the four upsamplings bring 8x8 back to 128x128 with the five listed
  layers and no other.
* Every partial convolution is followed by LeakyReLU (slope 0.2, Liu et al.'s decoder slope);
  no batch normalisation (the table lists none). The 3-channel layer's LeakyReLU feeds the 1x1
  convolution and the sigmoid, whose output is the image in ``[0, 1]``: the model takes and
  gives images in ``[0, 1]`` with no normalisation inside.

``base_width`` scales every width (the paper: 64, giving 64/128/256/256); the trainer's tests
use 8. Inputs must be multiples of 16 (four stride-2 layers). Known pixels are *not*
composited here; :func:`pconv.inpaint` does that. Hole inputs are selected away, so the output
does not depend on what a hole holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pconv.architectures import JsonConfig
from pconv.layer import PartialConv2d, zero_holes

#: The encoder of Table 1 at base width 64: (kernel, stride-2 output channels / 64).
ENCODER = ((5, 1), (5, 2), (3, 4), (3, 4))
#: The input multiple: four stride-2 layers.
MULTIPLE = 16


@dataclass(frozen=True)
class GanPConvConfig(JsonConfig):
    """Everything needed to rebuild Jersch et al.'s generator; round-trips through JSON."""

    config_name: ClassVar[str] = "gan-pconv"

    base_width: int = 64  # the paper's: encoder widths 64, 128, 256, 256
    leaky_slope: float = 0.2
    resolution: int = 128  # training resolution: the scale inference works at

    def __post_init__(self) -> None:
        if self.base_width < 1:
            raise ValueError("base_width must be positive")

    @property
    def encoder_widths(self) -> list[int]:
        return [self.base_width * mult for _, mult in ENCODER]


class _Layer(nn.Module):
    """A partial convolution with LeakyReLU; optionally upsampling x2 and joining a skip."""

    def __init__(
        self, c_in: int, c_skip: int, c_out: int, kernel: int, stride: int, slope: float
    ) -> None:
        super().__init__()
        self.c_in, self.c_skip, self.slope = c_in, c_skip, slope
        self.up = c_skip > 0
        self.conv = PartialConv2d(
            c_in + c_skip, c_out, kernel, stride=stride, padding=kernel // 2, bias=True
        )

    def forward(
        self, x: Tensor, mask: Tensor, skip: Tensor | None = None, skip_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """``x`` (and ``skip``) already zero in their holes; ``mask`` [B,1,H,W] 1 = valid."""
        if self.up:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            mask = F.interpolate(mask, scale_factor=2.0, mode="nearest")
            count = mask * self.c_in + skip_mask * self.c_skip
            x = torch.cat([x, skip], dim=1)
        else:
            count = mask * self.c_in
        y, new_mask = self.conv.forward_counted(x, count)
        return zero_holes(F.leaky_relu(y, self.slope), new_mask), new_mask


class GanPConvGenerator(nn.Module):
    """Jersch et al.'s generator (see the module docstring): ``forward(image, valid)`` in
    ``[0, 1]``."""

    def __init__(self, config: GanPConvConfig | None = None) -> None:
        super().__init__()
        self.config = config or GanPConvConfig()
        cfg = self.config
        widths = cfg.encoder_widths
        self.encoders = nn.ModuleList()
        c_prev = 3
        for (kernel, _), width in zip(ENCODER, widths, strict=True):
            self.encoders.append(_Layer(c_prev, 0, width, kernel, 2, cfg.leaky_slope))
            c_prev = width
        self.bottleneck = _Layer(c_prev, 0, widths[-1], 3, 1, cfg.leaky_slope)
        # decoders[i] upsamples and joins skip i (0 = the input image): output width = skip's
        skips = [3, *widths[:-1]]
        self.decoders = nn.ModuleList(
            _Layer(skips[i + 1] if i < len(skips) - 1 else widths[-1], skips[i], skips[i], 3, 1,
                   cfg.leaky_slope)
            for i in range(len(skips))
        )  # fmt: skip
        self.head = nn.Conv2d(3, 3, 1)

    def forward(self, image: Tensor, valid: Tensor) -> Tensor:
        return self.predict(image, valid)[0]

    def predict(self, image: Tensor, valid: Tensor) -> tuple[Tensor, None]:
        """The prediction in ``[0, 1]``; no gate (this network has no prior)."""
        if image.dim() != 4 or image.shape[1] != 3 or valid.shape[1:2] != (1,):
            raise ValueError(
                f"expected image [B,3,H,W] and mask [B,1,H,W], got {tuple(image.shape)} and "
                f"{tuple(valid.shape)}"
            )
        h, w = image.shape[-2:]
        if h % MULTIPLE or w % MULTIPLE:
            raise ValueError(
                f"input {h}x{w} is not a multiple of {MULTIPLE} (pconv.inpaint pads automatically)"
            )
        m = (valid > 0.5).to(torch.float32)
        x = zero_holes(image, m)
        skips = [(x, m)]
        for enc in self.encoders:
            x, m = enc(x, m)
            skips.append((x, m))
        x, m = self.bottleneck(x, m)
        for i in reversed(range(len(self.decoders))):
            x, m = self.decoders[i](x, m, *skips[i])
        return torch.sigmoid(self.head(x)), None


def layer_table(config: GanPConvConfig) -> list[tuple[str, int, int, int, int]]:
    """(name, kernel, stride, input channels, output channels) of every convolution, in the
    order the image meets them: the shape of Table 1 under our reading (the module docstring)."""
    widths = config.encoder_widths
    rows = []
    c_prev = 3
    for i, ((kernel, _), width) in enumerate(zip(ENCODER, widths, strict=True)):
        rows.append((f"encoders.{i}", kernel, 2, c_prev, width))
        c_prev = width
    rows.append(("bottleneck", 3, 1, c_prev, widths[-1]))
    skips = [3, *widths[:-1]]
    c_prev = widths[-1]
    for i in reversed(range(len(skips))):
        rows.append((f"decoders.{i}", 3, 1, c_prev + skips[i], skips[i]))
        c_prev = skips[i]
    rows.append(("head", 1, 1, 3, 3))
    return rows
