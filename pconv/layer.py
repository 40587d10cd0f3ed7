"""The partial convolution (Liu et al., ECCV 2018, eq. 1-2), exact and cheap.

Per sliding window, with ``M`` the binary validity mask over all ``C_in x k x k`` inputs::

    x' = W^T (X * M) * sum(1) / sum(M) + b    if sum(M) > 0, else 0
    m' = 1                                    if sum(M) > 0, else 0

Why it is fast: ``sum(M)`` only needs the number of valid input channels at each pixel
(one channel, or one per group), window-summed with a ``k x k`` ones kernel. The reference
implementation instead convolves a ``C_out x C_in`` ones kernel over a full-width mask, which
costs as much as the feature convolution itself. When every input is valid the ratio depends
only on the image shape (the zero padding is the only "hole"), so it is computed once and cached.

Why it compiles to one graph and never waits for a GPU: whether a mask is all valid is a
question about the data. It is asked only where the answer is already on the host (a CPU
tensor in eager mode, see :func:`known_all_valid`); on a GPU, or inside ``torch.compile``, the
general path runs, which gives the same result for an all-valid mask (the window sums are small
integers, exact in float32), so the shortcut is a saving, never a different answer.

Why it is safe under fp16/bf16 autocast: the mask arithmetic always runs in float32 (window sums
reach ``C_in*k*k`` = 4608 for 512 channels, beyond fp16's exact integers), the ratio is never
divided by zero, and the scaled result saturates at the largest finite value of the output dtype.

Why it is hole-agnostic to the last bit: hole inputs are *selected away* (``torch.where``), not
multiplied by zero, so NaN or inf sitting in a hole cannot leak into the sums.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def known_all_valid(values: Tensor, at_least: float) -> bool:
    """True only if every one of ``values`` is known to be ``>= at_least`` at no cost.

    On a CPU tensor in eager mode the check is one cheap reduction with no device to wait for,
    and it pays for itself: the U-Net's masks become all valid after a few strided layers. On
    an accelerator it would be a host synchronisation per layer (and rule out CUDA graphs), and
    under ``torch.compile`` a data-dependent branch that breaks the graph, so there the answer
    is "not known" and callers take their general path, which is exact for all-valid input too.
    """
    if values.device.type != "cpu" or torch.compiler.is_compiling():
        return False
    return bool((values >= at_least).all())


def zero_holes(x: Tensor, mask: Tensor, fresh: bool = False) -> Tensor:
    """Select away hole features (``mask`` 0): NaN or inf in a hole cannot leak, and a block's
    output is zero in its holes whatever its activation did. Skipped when the mask is known to
    be all valid (:func:`known_all_valid`).

    ``fresh``: ``x`` is a temporary of the caller's, which may be overwritten where no gradient
    needs it (one full-size tensor less at the peak).
    """
    if known_all_valid(mask, 0.5):
        return x
    hole = mask < 0.5
    if fresh and not x.requires_grad:
        return x.masked_fill_(hole, 0)
    return x.masked_fill(hole, 0)


class PartialConv2d(nn.Conv2d):
    """Drop-in for :class:`torch.nn.Conv2d` computing a partial convolution.

    ``forward(x, mask)`` returns ``(y, new_mask)``:

    * ``mask``: ``[B,1,H,W]`` (shared by every channel) or ``[B,C_in,H,W]`` (per channel),
      1 = valid, 0 = hole. Values are read as binary (> 0.5 is valid).
    * ``mask=None``: *partial-convolution padding*; every pixel is valid and the zero-padded
      border counts as hole.
    * ``new_mask``: ``[B,1,H',W']`` float, 1 where the window saw any valid input.

    With ``groups > 1`` and a per-channel mask each group is renormalised by its own count
    (its window spans ``C_in/groups x k x k`` inputs) and outputs zero where its own count is
    zero; ``new_mask`` is 1 where any input of the window, over all channels, is valid.

    ``return_mask=False`` makes ``forward`` return ``y`` alone, for use as a padding-aware
    replacement of ``nn.Conv2d`` inside existing networks.
    """

    def __init__(self, *args, return_mask: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.padding_mode != "zeros" or isinstance(self.padding, str):
            raise ValueError("PartialConv2d supports numeric zero padding only")
        self.return_mask = return_mask
        self._ratio_cache: dict[tuple, Tensor] = {}

    @property
    def window_size(self) -> int:
        """``sum(1)``: inputs in one window of one group, C_in/groups * kh * kw."""
        kh, kw = self.kernel_size
        return self.in_channels // self.groups * kh * kw

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:
        if mask is None:
            y, new_mask = self._forward_all_valid(x)
        else:
            if mask.dim() != 4 or mask.shape[1] not in (1, self.in_channels):
                raise ValueError(
                    f"mask must be [B,1,H,W] or [B,{self.in_channels},H,W], got {tuple(mask.shape)}"
                )
            valid = mask > 0.5
            x = torch.where(valid, x, torch.zeros((), dtype=x.dtype, device=x.device))
            y, new_mask = self.forward_counted(x, self._valid_channel_count(valid))
        return (y, new_mask) if self.return_mask else y

    def forward_counted(self, x: Tensor, count: Tensor) -> tuple[Tensor, Tensor]:
        """Core step for callers that already zeroed the holes of ``x``.

        ``count`` is ``[B,G,H,W]`` float32: the number of valid input channels at each pixel,
        for each of the ``G`` groups (``G`` = 1 or ``groups``). The U-Net uses this to avoid
        building channel-wide masks when it concatenates skip connections.
        """
        if known_all_valid(count, self.in_channels // self.groups):
            return self._forward_all_valid(x)
        window_sum = self._window_sum(count)  # [B,G,H',W'] float32
        has_valid = window_sum > 0
        ratio = self.window_size / window_sum.clamp(min=1.0) * has_valid
        y = self._scale(
            F.conv2d(x, self.weight, None, self.stride, self.padding, self.dilation, self.groups),
            ratio,
            has_valid,
        )
        new_mask = has_valid.any(dim=1, keepdim=True).to(torch.float32)
        return y, new_mask

    # -- helpers -------------------------------------------------------------------------------

    def _valid_channel_count(self, valid: Tensor) -> Tensor:
        """Binary mask -> number of valid channels per pixel and group, float32."""
        if valid.shape[1] == 1:  # shared by all channels: every group sees C_in/groups of them
            return valid.to(torch.float32) * (self.in_channels // self.groups)
        b, c, h, w = valid.shape
        if self.groups == 1:
            return valid.sum(dim=1, keepdim=True, dtype=torch.float32)
        return valid.view(b, self.groups, c // self.groups, h, w).sum(dim=2, dtype=torch.float32)

    def _window_sum(self, count: Tensor) -> Tensor:
        """Window sums of the per-pixel counts: ``sum(M)`` for every output location."""
        kernel = torch.ones(
            count.shape[1], 1, *self.kernel_size, dtype=torch.float32, device=count.device
        )
        with torch.autocast(count.device.type, enabled=False):
            return F.conv2d(
                count.to(torch.float32),
                kernel,
                None,
                self.stride,
                self.padding,
                self.dilation,
                groups=count.shape[1],
            )

    def _forward_all_valid(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Every input valid: only the zero padding is hole, so the ratio depends on shape."""
        ratio = self._padding_ratio(x)
        if ratio is None:  # no padding: exactly nn.Conv2d
            y = F.conv2d(
                x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
            )
            new_mask = torch.ones(y.shape[0], 1, *y.shape[2:], device=y.device)
            return y, new_mask
        y = F.conv2d(x, self.weight, None, self.stride, self.padding, self.dilation, self.groups)
        has_valid = ratio > 0
        y = self._scale(y, ratio, has_valid)
        return y, has_valid.to(torch.float32).expand(y.shape[0], 1, -1, -1)

    def _padding_ratio(self, x: Tensor) -> Tensor | None:
        """``sum(1)/sum(M)`` of an all-valid input, ``[1,1,H',W']``; None where it is all 1."""
        if all(p == 0 for p in self.padding):
            return None
        key = (x.shape[-2], x.shape[-1], x.device)
        # Inside torch.compile the shape-only ratio is constant-folded; no cache to guard on.
        ratio = None if torch.compiler.is_compiling() else self._ratio_cache.get(key)
        if ratio is None:
            ones = torch.ones(1, 1, *x.shape[-2:], dtype=torch.float32, device=x.device)
            window_sum = self._window_sum(ones) * (self.in_channels // self.groups)
            # Dilation larger than the image can leave windows that see only padding.
            ratio = self.window_size / window_sum.clamp(min=1.0) * (window_sum > 0)
            if torch.compiler.is_compiling():
                return ratio
            if len(self._ratio_cache) > 32:
                self._ratio_cache.clear()
            self._ratio_cache[key] = ratio
        return ratio

    def _scale(self, y: Tensor, ratio: Tensor, has_valid: Tensor) -> Tensor:
        """``y * ratio + bias`` with the bias dropped where nothing was valid.

        ``ratio`` is ``[B,G,H,W]``; with G groups it applies to each group's output channels.
        The product is formed in float32 and saturated to the output dtype's finite range.
        """
        b, c, h, w = y.shape
        groups = ratio.shape[1]
        out = y.view(b, groups, c // groups, h, w)
        # In place on the fresh convolution output (or its one float32 copy): neither product's
        # backward needs it, and a full-size temporary per step is what would raise the peak.
        if y.dtype != torch.float32:
            out = out.float()
        out.mul_(ratio.unsqueeze(2))
        if self.bias is not None:
            bias = self.bias.to(torch.float32).view(1, groups, c // groups, 1, 1)
            out.addcmul_(has_valid.unsqueeze(2).to(torch.float32), bias)
        out = out.view(b, c, h, w)
        if y.dtype in (torch.float16, torch.bfloat16):
            limit = torch.finfo(y.dtype).max
            # clamp's backward reads its input: in place only where no gradient is kept
            out = out.clamp_(-limit, limit) if not out.requires_grad else out.clamp(-limit, limit)
        return out.to(y.dtype)
