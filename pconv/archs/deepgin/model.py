"""DeepGIN (Li, Siu, Liu, Wang and Lun, "DeepGIN: Deep Generative Inpainting Network for
Extreme Image Inpainting", AIM 2020 / ECCV workshops), built from a plain config.

Two generators, no normalisation layers anywhere, 256 x 256 input, LeakyReLU(0.2) after every
plain convolution, replicate padding (as the authors' release pads)::

    G1 (coarse), on [I_in, 1 - M]:
        7x7/1 w/2 -> 4x4/2 w -> 4x4/2 2w -> 4x4/2 4w                        (256 -> 32)
        6 SPD ResNet blocks, 8 dilation rates (1, 2, 3, 4, 5, 6, 8, 10)
        3 x (bilinear x2, 3x3/1) to w/2, 7x7/1 to 3: I_coarse
    G2 (refinement), on [I_coarse composited with the known pixels, 1 - M]:
        7x7/1 w/2 -> 4x4/2 w -> 4x4/2 2w (64x64) -> 4x4/2 4w (32x32) -> 4x4/2 8w (16x16)
        skips: 3x3 convs halve the 64x64 and 32x32 features, then a self-attention block each
        3 SPD blocks (4 rates: 2, 3, 4, 5), self-attention at 16x16, 3 SPD blocks
        up x2, 3x3 to 4w, concat the 32x32 attended skip, 3x3 to 4w
        up x2, 3x3 to 2w, concat the 64x64 attended skip, 3x3 to 2w   <- the 64x64 layer
            Back Projection: 3x3 to w/2, 3x3 to 3: I_lr (64 x 64)
        up x2, 3x3 to w, up x2, 3x3 to w/2; 7x7 to 3 (I_rec), 3x3 to 1 + sigmoid (alpha)
        I_out = C(I_rec) + alpha * up4(I_lr - down4(C(I_rec))), C = composite with known pixels

*Spatial Pyramid Dilation (SPD) ResNet block*: the block's first 3x3 convolution (C -> C) is
split into equal groups of output channels, one per dilation rate, each group convolving the
whole input at its own rate; the groups (each through a ReLU) are concatenated, fused by a
second 3x3 convolution and added to the input. Splitting costs no parameters: the block has
exactly the parameters of a plain two-convolution ResNet block.

*Multi-Scale Self-Attention*: the self-attention block of Zhang et al.'s SAGAN (1x1 query, key
and value projections to ``C / attention_reduction`` channels, softmax over positions without
scaling, a 1x1 projection back to C, ``x + gamma * o`` with ``gamma`` starting at 0) at 16x16
(the bottleneck), 32x32 and 64x64 (the skips, after their channel-halving convolutions).
SAGAN reduces by 8; the authors' release uses a non-local block that reduces by 2, which is
what Table 1's 42.930 M counts, so :meth:`DeepGINConfig.paper` reduces by 2 (the layout of a
reduction-2 SAGAN block has exactly the non-local block's parameters, plus ``gamma``).

What the paper leaves open and how it is read here (docs/architecture.md repeats this):

* the channel widths, kernels and dilation rates come from the authors' release, which is the
  only layout that gives Table 1's counts (coarse 8.168 M, total 42.930 M);
* images are mapped to [-1, 1] inside, hole pixels set to 0 there (mid-grey) and the hole map
  (1 = hole) is the fourth input channel; outputs are linear and mapped back to [0, 1];
* ``down4`` is a 4x4 average pool and ``up4`` bilinear (``align_corners=False``); the loss
  downsamples ``I_gt`` with the same pool (:func:`downsample4`);
* SA placements follow the release: between blocks 3 and 4 of G2's six, and on the skips.

The authors' trained generator (rlct1/gin, AIM 2020 Track 1) settles the two readings above
differently, and :meth:`DeepGINConfig.aim2020` builds it that way, so that its weights compute
what they were trained to compute: ``encoding="unit-white"`` (images stay in [0, 1] and holes
are painted white, 1.0, as its data loader and ``test_ensemble.py`` feed it) and
``resampling="corners"`` (its ``nn.UpsamplingBilinear2d`` everywhere: bilinear with
``align_corners=True`` for every x2 and x4 upsampling *and* for ``down4``, which samples rather
than averages). Its coarse SPD blocks concatenate their branches in the order
2, 3, 4, 5, 6, 8, 10, 1 (the rate-1 branch last), which ``coarse_rates`` records; its non-local
blocks add their output without a scale, i.e. ``gamma = 1``.

``forward(image, valid)`` returns ``I_out`` clamped to [0, 1] (known pixels are *not* pasted
here; :func:`pconv.inpaint` does that); ``forward_train`` returns the unclamped
``coarse``/``output``/``low_res`` tensors the loss (:mod:`pconv.archs.deepgin.loss`) needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pconv.architectures import JsonConfig

#: Dilation rates of the coarse generator's SPD blocks (8 groups) and of the refinement's (4).
COARSE_RATES = (1, 2, 3, 4, 5, 6, 8, 10)
REFINE_RATES = (2, 3, 4, 5)
#: The release's coarse rates, in the order its SPD blocks concatenate their branches.
AIM2020_COARSE_RATES = (2, 3, 4, 5, 6, 8, 10, 1)
PADDINGS = ("replicate", "reflect", "zeros")
#: How images and holes enter the network and its output leaves it: ``signed-grey``: [-1, 1],
#: holes 0 (mid-grey); ``unit-white``: [0, 1] as given, holes 1 (white), the release's.
ENCODINGS = ("signed-grey", "unit-white")
#: How it resamples: ``half-pixel``: bilinear x2/x4 with ``align_corners=False`` and a 4x4
#: mean for ``down4``; ``corners``: bilinear with ``align_corners=True`` for all three, as
#: the release's ``nn.UpsamplingBilinear2d`` does.
RESAMPLINGS = ("half-pixel", "corners")
#: Test-time strategies of :func:`pconv.inpaint` this network may default to.
STRATEGIES = ("subsample", "crop")


@dataclass(frozen=True)
class DeepGINConfig(JsonConfig):
    """Everything needed to rebuild a DeepGIN generator pair; round-trips through JSON."""

    config_name: ClassVar[str] = "DeepGIN"

    base_width: int = 64  # the release's ngf: G1 runs at 4w, G2's bottleneck at 8w
    coarse_blocks: int = 6
    coarse_rates: tuple[int, ...] = COARSE_RATES
    refine_blocks: int = 6
    refine_rates: tuple[int, ...] = REFINE_RATES
    attention_reduction: int = 2  # SAGAN's C -> C/r projections (SAGAN: 8, the release: 2)
    leaky_slope: float = 0.2
    padding: str = "replicate"
    resolution: int = 256  # training resolution: the scale inference works at
    strategy: str = "subsample"  # pconv.inpaint's default for this model (the paper's)
    encoding: str = "signed-grey"  # ENCODINGS; files written before the field read as this
    resampling: str = "half-pixel"  # RESAMPLINGS; likewise
    extra: dict = field(default_factory=dict)  # free-form notes carried along (not used here)

    @classmethod
    def paper(cls, **overrides: Any) -> DeepGINConfig:
        """Table 1's model: 42.930 M parameters, the coarse stage 8.168 M."""
        return cls(**overrides)

    @classmethod
    def aim2020(cls, **overrides: Any) -> DeepGINConfig:
        """The generator the authors trained for AIM 2020 Track 1 (rlct1/gin): the paper's
        layout with the release's branch order, [0, 1] images with white holes, and
        ``align_corners=True`` resampling (the module docstring says why)."""
        return cls(
            **{
                "coarse_rates": AIM2020_COARSE_RATES,
                "encoding": "unit-white",
                "resampling": "corners",
                **overrides,
            }
        )

    @classmethod
    def compact(cls, **overrides: Any) -> DeepGINConfig:
        """The same layout at a quarter of the width and half the blocks: trains on a CPU."""
        return cls(**{"base_width": 16, "coarse_blocks": 3, "refine_blocks": 2, **overrides})

    def __post_init__(self) -> None:
        if self.base_width < 2 or self.base_width % 2:
            raise ValueError(f"base_width must be an even number >= 2, got {self.base_width}")
        if self.coarse_blocks < 0 or self.refine_blocks < 0:
            raise ValueError("coarse_blocks and refine_blocks must be >= 0")
        object.__setattr__(self, "coarse_rates", tuple(int(r) for r in self.coarse_rates))
        object.__setattr__(self, "refine_rates", tuple(int(r) for r in self.refine_rates))
        for name, rates, channels in (
            ("coarse_rates", self.coarse_rates, 4 * self.base_width),
            ("refine_rates", self.refine_rates, 8 * self.base_width),
        ):
            if not rates or min(rates) < 1:
                raise ValueError(f"{name} must be positive dilation rates, got {rates}")
            if channels % len(rates):
                raise ValueError(
                    f"{name}: {channels} channels do not split into {len(rates)} equal groups"
                )
        smallest = self.base_width  # the 64x64 skip's attended channels
        if self.attention_reduction < 1 or smallest % self.attention_reduction:
            raise ValueError(
                f"attention_reduction must divide the attended channels ({smallest}), "
                f"got {self.attention_reduction}"
            )
        if self.padding not in PADDINGS:
            raise ValueError(f"padding must be one of {', '.join(PADDINGS)}, got {self.padding!r}")
        for name, value, choices in (
            ("encoding", self.encoding, ENCODINGS),
            ("resampling", self.resampling, RESAMPLINGS),
        ):
            if value not in choices:
                raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}"
            )
        if self.resolution < self.multiple or self.resolution % self.multiple:
            raise ValueError(f"resolution must be a multiple of {self.multiple}")

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this (G2 halves them four times)."""
        return 16


def _pad(x: Tensor, amount: int, mode: str) -> Tensor:
    if amount == 0:
        return x
    if mode == "zeros":
        return F.pad(x, (amount,) * 4)
    if mode == "reflect" and amount >= min(x.shape[-2:]):
        mode = "replicate"  # reflection needs more pixels than the pad
    return F.pad(x, (amount,) * 4, mode=mode)


class PadConv(nn.Conv2d):
    """A convolution that pads its input itself (replicate / reflect / zeros), so that a
    stride-2 4x4 convolution halves even sides exactly like the release's ``pad(1) + conv``."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int = 1, pad: int | None = None,
        mode: str = "replicate",
    ) -> None:  # fmt: skip
        super().__init__(c_in, c_out, kernel, stride=stride, padding=0)
        self.pad_amount = kernel // 2 if pad is None else pad
        self.pad_mode = mode

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(_pad(x, self.pad_amount, self.pad_mode))


class SPDBlock(nn.Module):
    """Spatial Pyramid Dilation ResNet block: ``x + fuse(cat_g relu(conv_{r_g}(x)))``.

    ``spread`` is one C -> C 3x3 convolution whose output channels are cut into
    ``len(rates)`` equal groups; group ``g`` convolves the whole input with dilation
    ``rates[g]`` (padding ``rates[g]``, so the size is kept).
    """

    def __init__(self, channels: int, rates: tuple[int, ...], mode: str) -> None:
        super().__init__()
        if channels % len(rates):
            raise ValueError(f"{channels} channels do not split into {len(rates)} groups")
        self.rates = tuple(rates)
        self.group = channels // len(rates)
        self.mode = mode
        self.spread = nn.Conv2d(channels, channels, 3, padding=0)
        self.fuse = PadConv(channels, channels, 3, mode=mode)

    def forward(self, x: Tensor) -> Tensor:
        parts = []
        for g, rate in enumerate(self.rates):
            sl = slice(g * self.group, (g + 1) * self.group)
            y = F.conv2d(
                _pad(x, rate, self.mode), self.spread.weight[sl], self.spread.bias[sl],
                dilation=rate,
            )  # fmt: skip
            parts.append(F.relu(y))
        return x + self.fuse(torch.cat(parts, dim=1))


class SelfAttention(nn.Module):
    """SAGAN's self-attention block (Zhang et al., 2019) on ``[B, C, H, W]`` features.

    ``beta = softmax_j(q_i . k_j)`` (no 1/sqrt(d) scaling, as in SAGAN), ``o = W_o (beta v)``,
    ``y = x + gamma * o`` with ``gamma`` a learned scalar that starts at 0, so a fresh block
    is the identity and the network learns how much non-local evidence to use.
    """

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        inner = channels // reduction
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, inner, 1)
        self.out = nn.Conv2d(inner, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        q, k, v = (f(x).flatten(2).transpose(1, 2) for f in (self.query, self.key, self.value))
        # The fused kernels do not hold the (HW)^2 matrix: 64x64 positions at 512 px input
        # would otherwise take 1 GB a sample. Unscaled logits are sums of C/r products, which
        # can overflow fp16: the attention itself always runs in fp32.
        with torch.autocast(x.device.type, enabled=False):
            o = F.scaled_dot_product_attention(
                q.float()[:, None], k.float()[:, None], v.float()[:, None], scale=1.0
            )[:, 0]
        o = o.to(q.dtype).transpose(1, 2).reshape(b, -1, h, w)
        return x + self.gamma * self.out(o)


class CoarseGenerator(nn.Module):
    """G1: encoder to 1/8, SPD blocks with ``coarse_rates``, bilinear decoder; linear output."""

    def __init__(self, cfg: DeepGINConfig) -> None:
        super().__init__()
        w, mode, slope = cfg.base_width, cfg.padding, cfg.leaky_slope
        self.slope = slope
        self.corners = cfg.resampling == "corners"
        self.encoder = nn.ModuleList(
            [
                PadConv(4, w // 2, 7, mode=mode),
                PadConv(w // 2, w, 4, 2, 1, mode),
                PadConv(w, 2 * w, 4, 2, 1, mode),
                PadConv(2 * w, 4 * w, 4, 2, 1, mode),
            ]
        )
        self.blocks = nn.Sequential(
            *(SPDBlock(4 * w, cfg.coarse_rates, mode) for _ in range(cfg.coarse_blocks))
        )
        self.decoder = nn.ModuleList(
            [
                PadConv(4 * w, 2 * w, 3, mode=mode),
                PadConv(2 * w, w, 3, mode=mode),
                PadConv(w, w // 2, 3, mode=mode),
            ]
        )
        self.to_rgb = PadConv(w // 2, 3, 7, mode=mode)

    def forward(self, x: Tensor) -> Tensor:
        for conv in self.encoder:
            x = F.leaky_relu(conv(x), self.slope)
        x = self.blocks(x)
        for conv in self.decoder:
            x = F.leaky_relu(conv(_up(x, 2, self.corners)), self.slope)
        return self.to_rgb(x)


class RefinementGenerator(nn.Module):
    """G2: encoder to 1/16, SPD blocks with ``refine_rates`` around a 16x16 self-attention,
    attended skips at 32x32 and 64x64, and Back Projection at the 64x64 decoding layer."""

    def __init__(self, cfg: DeepGINConfig) -> None:
        super().__init__()
        w, mode, r = cfg.base_width, cfg.padding, cfg.attention_reduction
        self.slope = cfg.leaky_slope
        self.corners = cfg.resampling == "corners"
        self.encoder = nn.ModuleList(
            [
                PadConv(4, w // 2, 7, mode=mode),
                PadConv(w // 2, w, 4, 2, 1, mode),
                PadConv(w, 2 * w, 4, 2, 1, mode),  # 64x64
                PadConv(2 * w, 4 * w, 4, 2, 1, mode),  # 32x32
                PadConv(4 * w, 8 * w, 4, 2, 1, mode),  # 16x16
            ]
        )
        # "Channels reduced by plain convolutions first", then SA on the skips.
        self.skip64 = PadConv(2 * w, w, 3, mode=mode)
        self.skip32 = PadConv(4 * w, 2 * w, 3, mode=mode)
        self.attend64 = SelfAttention(w, r)
        self.attend32 = SelfAttention(2 * w, r)
        half = cfg.refine_blocks // 2
        self.blocks_before = nn.Sequential(
            *(SPDBlock(8 * w, cfg.refine_rates, mode) for _ in range(half))
        )
        self.attend16 = SelfAttention(8 * w, r)
        self.blocks_after = nn.Sequential(
            *(SPDBlock(8 * w, cfg.refine_rates, mode) for _ in range(cfg.refine_blocks - half))
        )
        self.up32 = PadConv(8 * w, 4 * w, 3, mode=mode)
        self.mix32 = PadConv(4 * w + 2 * w, 4 * w, 3, mode=mode)
        self.up64 = PadConv(4 * w, 2 * w, 3, mode=mode)
        self.mix64 = PadConv(2 * w + w, 2 * w, 3, mode=mode)
        # Back Projection: the low-resolution output at the 64x64 layer.
        self.low_res = nn.ModuleList(
            [PadConv(2 * w, w // 2, 3, mode=mode), PadConv(w // 2, 3, 3, mode=mode)]
        )
        self.up128 = PadConv(2 * w, w, 3, mode=mode)
        self.up256 = PadConv(w, w // 2, 3, mode=mode)
        self.to_rgb = PadConv(w // 2, 3, 7, mode=mode)
        self.alpha = PadConv(w // 2, 1, 3, mode=mode)

    def _act(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.slope)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(I_rec, alpha, I_lr)`` in the network's [-1, 1] space."""
        feats = []
        for conv in self.encoder:
            x = self._act(conv(x))
            feats.append(x)
        skip64 = self.attend64(self._act(self.skip64(feats[2])))
        skip32 = self.attend32(self._act(self.skip32(feats[3])))
        x = self.blocks_after(self.attend16(self.blocks_before(x)))
        x = self._act(self.up32(_up(x, 2, self.corners)))
        x = self._act(self.mix32(torch.cat([x, skip32], dim=1)))
        x = self._act(self.up64(_up(x, 2, self.corners)))
        x = self._act(self.mix64(torch.cat([x, skip64], dim=1)))
        low_res = self.low_res[1](self._act(self.low_res[0](x)))
        x = self._act(self.up128(_up(x, 2, self.corners)))
        x = self._act(self.up256(_up(x, 2, self.corners)))
        return self.to_rgb(x), torch.sigmoid(self.alpha(x)), low_res


def _up(x: Tensor, factor: int, corners: bool = False) -> Tensor:
    """Bilinear x``factor``; ``corners``: ``align_corners=True``, ``nn.UpsamplingBilinear2d``'s."""
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=corners)


def downsample4(x: Tensor) -> Tensor:
    """The x4 downsample of Back Projection and of ``I_gt`` in the loss: a 4x4 mean."""
    return F.avg_pool2d(x, 4)


def _down4(x: Tensor, corners: bool) -> Tensor:
    """Back Projection's ``down4``: the 4x4 mean, or (``corners``) the release's
    ``nn.UpsamplingBilinear2d(scale_factor=0.25)``, which samples the image at
    ``align_corners=True`` positions instead of averaging it."""
    if not corners:
        return downsample4(x)
    return F.interpolate(x, scale_factor=0.25, mode="bilinear", align_corners=True)


class DeepGIN(nn.Module):
    """The coarse and refinement generators; ``forward(image, valid)`` -> ``I_out`` in [0, 1]."""

    def __init__(self, config: DeepGINConfig | None = None) -> None:
        super().__init__()
        self.config = config or DeepGINConfig()
        self.coarse = CoarseGenerator(self.config)
        self.refine = RefinementGenerator(self.config)

    def _check(self, image: Tensor, valid: Tensor) -> None:
        if image.dim() != 4 or image.shape[1] != 3 or valid.shape[1:2] != (1,):
            raise ValueError(
                f"expected image [B,3,H,W] and mask [B,1,H,W], got {tuple(image.shape)} and "
                f"{tuple(valid.shape)}"
            )
        h, w = image.shape[-2:]
        m = self.config.multiple
        if h % m or w % m:
            raise ValueError(
                f"input {h}x{w} is not a multiple of {m} (pconv.inpaint pads automatically)"
            )

    def forward_train(self, image: Tensor, valid: Tensor) -> dict[str, Tensor]:
        """What the loss needs, unclamped, in [0, 1] space: ``coarse`` (I_coarse),
        ``output`` (I_out) and ``low_res`` (I_lr, a quarter of each side)."""
        self._check(image, valid)
        known = (valid > 0.5).to(image.dtype)
        hole = 1.0 - known
        white = self.config.encoding == "unit-white"
        # The known pixels in the network's space; holes get a constant (0: mid-grey in
        # [-1, 1]; 1: white in [0, 1]), so their content never enters.
        x = (image if white else image * 2.0 - 1.0) * known
        inp = x + hole if white else x
        coarse = self.coarse(torch.cat([inp, hole], dim=1))
        coarse_comp = coarse * hole + x
        rec, alpha, low_res = self.refine(torch.cat([coarse_comp, hole], dim=1))
        rec_comp = rec * hole + x
        corners = self.config.resampling == "corners"
        residual = low_res - _down4(rec_comp, corners)
        out = rec_comp + alpha * _up(residual, 4, corners)

        def decode(y: Tensor) -> Tensor:
            return y if white else (y + 1.0) / 2.0

        return {"coarse": decode(coarse), "output": decode(out), "low_res": decode(low_res)}

    def forward(self, image: Tensor, valid: Tensor) -> Tensor:
        return self.forward_train(image, valid)["output"].clamp(0.0, 1.0)

    def predict(self, image: Tensor, valid: Tensor) -> tuple[Tensor, None]:
        """The prediction and no gate: DeepGIN has no smooth-fill prior."""
        return self.forward(image, valid), None
