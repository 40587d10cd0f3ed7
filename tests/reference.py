"""Plain float64 implementations of the paper's equations, written for the tests only."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def partial_conv_reference(
    x: torch.Tensor,
    mask: torch.Tensor | None,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. (1)-(2), window by window, in float64.

    For every output location and group: sum(M) counts valid inputs over the group's
    C_in/groups x kh x kw window (zero padding counts as hole); the output is
    W^T(X*M) * sum(1)/sum(M) + b, or 0 (bias included) where sum(M) == 0.
    new_mask is 1 where the window, over all input channels, has any valid input.
    """
    b, c_in, h, w = x.shape
    c_out, c_per_group, kh, kw = weight.shape
    if mask is None:
        mask = torch.ones(b, 1, h, w)
    valid = (mask > 0.5).to(torch.float64).expand(b, c_in, h, w)
    xs = torch.where(valid > 0, x.to(torch.float64), torch.zeros((), dtype=torch.float64))
    ph, pw = padding
    xs = F.pad(xs, (pw, pw, ph, ph))
    valid = F.pad(valid, (pw, pw, ph, ph))
    sh, sw = stride
    dh, dw = dilation
    out_h = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    out_w = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    wd = weight.to(torch.float64)
    y = torch.zeros(b, c_out, out_h, out_w, dtype=torch.float64)
    new_mask = torch.zeros(b, 1, out_h, out_w, dtype=torch.float64)
    out_per_group = c_out // groups
    sum1 = c_per_group * kh * kw
    for i in range(out_h):
        for j in range(out_w):
            rows = slice(i * sh, i * sh + dh * (kh - 1) + 1, dh)
            cols = slice(j * sw, j * sw + dw * (kw - 1) + 1, dw)
            win_x = xs[:, :, rows, cols]  # [B, C_in, kh, kw]
            win_m = valid[:, :, rows, cols]
            new_mask[:, 0, i, j] = (win_m.sum(dim=(1, 2, 3)) > 0).to(torch.float64)
            for g in range(groups):
                cin = slice(g * c_per_group, (g + 1) * c_per_group)
                cout = slice(g * out_per_group, (g + 1) * out_per_group)
                sum_m = win_m[:, cin].sum(dim=(1, 2, 3))  # [B]
                raw = torch.einsum("bchw,ochw->bo", win_x[:, cin], wd[cout])
                if bias is not None:
                    raw_b = bias.to(torch.float64)[cout]
                else:
                    raw_b = torch.zeros(out_per_group, dtype=torch.float64)
                scaled = raw * (sum1 / sum_m.clamp(min=1))[:, None] + raw_b
                y[:, cout, i, j] = torch.where((sum_m > 0)[:, None], scaled, 0.0)
    return y, new_mask
