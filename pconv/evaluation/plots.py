"""The two figures: metric against hole ratio, and a grid of examples.

Matplotlib's object API with the Agg canvas is used instead of ``pyplot``, so nothing here
changes the process-wide backend or keeps figures alive in pyplot's registry.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pconv.evaluation.buckets import N_BUCKETS, bucket_label
from pconv.evaluation.report import Cell
from pconv.evaluation.runner import Example
from pconv.io import to_uint8

#: x position of each bucket: its centre, (0.01+0.1)/2 for the first.
BUCKET_CENTRES = [0.055] + [i / 10 + 0.05 for i in range(1, N_BUCKETS)]


def _save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    fig.savefig(path)


def plot_metrics(cells: Sequence[Cell], methods: Sequence[str], path: Path) -> None:
    """PSNR, SSIM and (when computed) LPIPS per bucket; one colour per method, solid = no
    border, dashed = border."""
    panels = [("psnr", "PSNR (dB)"), ("ssim", "SSIM")]
    if any(math.isfinite(c.lpips) for c in cells):
        panels.append(("lpips", "LPIPS (ST-LPIPS AlexNet, lower is better)"))
    fig = Figure(figsize=(5.5 * len(panels), 4.2), dpi=110, layout="constrained")
    axes = fig.subplots(1, len(panels))
    index = {(c.method, c.border, c.bucket): c for c in cells}
    colours = [f"C{i % 10}" for i in range(len(methods))]
    # methods often score alike; a small sideways shift keeps every line visible
    shifts = [(i - (len(methods) - 1) / 2) * 0.004 for i in range(len(methods))]
    for ax, (key, label) in zip(axes, panels, strict=True):
        for method, colour, shift in zip(methods, colours, shifts, strict=True):
            for side, style, marker in (("N", "-", "o"), ("B", "--", "s")):
                xs, ys = [], []
                for b, x in enumerate(BUCKET_CENTRES):
                    cell = index.get((method, side, bucket_label(b)))
                    if cell and cell.pairs and math.isfinite(getattr(cell, key)):
                        xs.append(x + shift)
                        ys.append(getattr(cell, key))
                if xs:
                    ax.plot(xs, ys, style, marker=marker, color=colour, label=f"{method} {side}")
        ax.set_xlabel("hole ratio")
        ax.set_ylabel(label)
        ax.set_xticks([0.01, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside right", fontsize="small")
    fig.suptitle("Whole-image scores by hole ratio (N: holes away from the border, B: touching)")
    _save(fig, path)


def show_hole(truth: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The input as the methods saw it: the hole painted white."""
    return to_uint8(np.where(hole[..., None], 1.0, truth))


def plot_grid(examples: Sequence[Example], methods: Sequence[str], path: Path) -> None:
    """Rows: examples by hole ratio. Columns: input with hole, each method, ground truth."""
    columns = ["input", *methods, "ground truth"]
    rows = max(len(examples), 1)
    fig = Figure(figsize=(1.9 * len(columns), 1.9 * rows + 0.3), dpi=110, layout="constrained")
    axes = np.atleast_2d(fig.subplots(rows, len(columns), squeeze=False))
    for r, example in enumerate(examples):
        s = example.sample
        images = [show_hole(s.truth, s.hole)]
        images += [example.outputs[m] for m in methods]
        images.append(to_uint8(s.truth))
        for c, image in enumerate(images):
            axes[r, c].imshow(image, interpolation="nearest")
        side = "B" if s.mask_class.border else "N"
        label = f"{s.mask_class.label} {side}\nhole {s.eval_ratio:.3f}"
        axes[r, 0].set_ylabel(label, fontsize="small")
    for c, name in enumerate(columns):
        axes[0, c].set_title(name, fontsize="small")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    _save(fig, path)
