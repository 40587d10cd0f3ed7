"""Contact sheets: a grid of mask thumbnails with a caption each, for people to look at."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

#: Colours of the sheet: holes white (as in the files), background / gaps grey, text dark.
_HOLE, _KEPT, _GAP, _TEXT = 255, 0, (200, 200, 200), (20, 20, 20)


def contact_sheet(
    masks: Sequence[np.ndarray],
    labels: Sequence[str] | None = None,
    *,
    columns: int = 8,
    thumb: int = 128,
    gap: int = 4,
) -> np.ndarray:
    """``uint8 [H, W, 3]`` grid of masks (white = hole), each ``thumb`` px on its long side,
    with its label underneath when ``labels`` is given."""
    if not masks:
        raise ValueError("contact_sheet needs at least one mask")
    font = ImageFont.load_default()
    caption = 0 if labels is None else _text_height(font) + 4
    th, tw = _thumb_shape(masks[0].shape, thumb)
    columns = max(1, min(columns, len(masks)))
    rows = math.ceil(len(masks) / columns)
    cell_w, cell_h = tw + gap, th + caption + gap
    sheet = Image.new("RGB", (columns * cell_w + gap, rows * cell_h + gap), _GAP)
    draw = ImageDraw.Draw(sheet)
    for i, hole in enumerate(masks):
        x, y = gap + (i % columns) * cell_w, gap + (i // columns) * cell_h
        small = Image.fromarray(np.where(hole, _HOLE, _KEPT).astype(np.uint8))
        sheet.paste(small.resize((tw, th), Image.Resampling.BOX).convert("RGB"), (x, y))
        if labels is not None:
            draw.text((x + 2, y + th + 2), labels[i], fill=_TEXT, font=font)
    return np.asarray(sheet)


def _thumb_shape(shape: tuple[int, ...], thumb: int) -> tuple[int, int]:
    """Thumbnail ``(height, width)`` with the long side ``thumb`` px and the mask's aspect."""
    height, width = shape[:2]
    scale = thumb / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def _text_height(font: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> int:
    _, top, _, bottom = font.getbbox("Ag%0")
    return int(bottom - top) + 2
