"""Stroke masks: the paper's irregular holes, DeepFillv2 free-form brushes, LaMa stroke sets.

Each generator plans an endless stream of stroke *groups* (a polyline, a circle, a box) and
says how many of them its published recipe draws. Without a target we draw that many; with a
target hole ratio we keep adding strokes until the target is reached, dropping any stroke
that would overshoot it by far. That converges in one pass, with no rejection loop, and the
strokes keep their published widths and lengths.

Parameters follow the published code (PConv-Keras ``MaskGenerator``, DeepFillv2
``brush_stroke_mask``, LaMa ``configs/data_gen/random_{thin,medium,thick}_{256,512}.yaml``);
the implementation here is our own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import count, islice, pairwise

import numpy as np

from pconv.errors import InputError
from pconv.masks.core import MaskGenerator, hole_ratio
from pconv.masks.opencv import cv2

#: One primitive: a function drawing it onto a ``uint8`` canvas (1 = hole) in place, and an
#: upper bound of the pixels it can cover (lets target mode skip most pixel counts).
Op = tuple[Callable[[np.ndarray], None], float]
#: A stroke group: the ops of one polyline / shape; the rest is dropped when one overshoots.
Group = list[Op]


class StrokeGenerator(MaskGenerator):
    """Base for generators made of stroke groups (see the module docstring)."""

    #: Hard cap on ops in target mode, so an unreachable target cannot loop forever.
    max_ops: int = 5000
    #: Strokes that overshoot the target in a row before we settle for the nearest result.
    patience: int = 12

    def _plan(
        self, shape: tuple[int, int], rng: np.random.Generator
    ) -> tuple[int, Iterator[Group]]:
        """``(number of groups of the published recipe, endless stream of groups)``."""
        raise NotImplementedError

    def _finish(self, canvas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Last touch on the whole canvas (e.g. random flips); identity by default."""
        return canvas

    def _draw(
        self, shape: tuple[int, int], rng: np.random.Generator, target: float | None
    ) -> np.ndarray:
        canvas = np.zeros(shape, np.uint8)
        native, groups = self._plan(shape, rng)
        if target is None:
            for group in islice(groups, native):
                for draw, _ in group:
                    draw(canvas)
        else:
            canvas = self._grow(canvas, groups, target)
        return self._finish(canvas, rng).astype(bool)

    def _grow(self, canvas: np.ndarray, groups: Iterator[Group], target: float) -> np.ndarray:
        """Add strokes until the hole ratio reaches ``target``.

        A stroke that would overshoot by more than the tolerance is undone and its group
        abandoned (the rest of a polyline would start from a point we never drew to).
        Pixels are counted only when a stroke's area bound could reach the target.
        """
        total = canvas.size
        want = target * total
        # Overshoot we accept; sample_mask trims the rest with an even erosion.
        limit = want + 0.25 * want + 0.005 * total
        have = 0  # exact hole count, as of the last count
        bound = 0.0  # upper bound of the hole count now
        ops = misses = 0
        best, best_gap = canvas, math.inf  # nearest overshoot seen, in case patience runs out
        for group in groups:
            for draw, area in group:
                ops += 1
                if bound + area < want:  # cannot reach the target: draw blind
                    draw(canvas)
                    bound += area
                    continue
                have = int(np.count_nonzero(canvas))
                before = canvas.copy() if have + area > limit else None
                draw(canvas)
                now = int(np.count_nonzero(canvas))
                if now > limit and before is not None:
                    if now - want < best_gap:
                        best, best_gap = canvas.copy(), now - want
                    canvas = before
                    misses += 1
                    break
                have, bound, misses = now, float(now), 0
                if have >= want:
                    return canvas
            if misses >= self.patience or ops >= self.max_ops:
                break
        have = int(np.count_nonzero(canvas))
        return canvas if want - have <= best_gap else best


def _scale_of(shape: tuple[int, int], reference: int) -> float:
    """Length scale of this canvas relative to a recipe's reference size (short side)."""
    return min(shape) / reference


def _clamp(value: float, low: float, high: float) -> float:
    """Scalar clip (``np.clip`` costs microseconds a call on scalars)."""
    return float(min(max(value, low), high))


def _random_flips(canvas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Flip left-right and top-bottom with probability 1/2 each (DeepFillv2 does this so
    that its left-leaning angle recipe covers all directions)."""
    if rng.random() < 0.5:
        canvas = canvas[:, ::-1]
    if rng.random() < 0.5:
        canvas = canvas[::-1]
    return np.ascontiguousarray(canvas)


# --------------------------------------------------------------------------------------------
# The paper's irregular masks, as PConv-Keras draws them: lines, circles and elliptic arcs.


@dataclass(frozen=True)
class IrregularGenerator(StrokeGenerator):
    """Random lines, filled circles and elliptic arcs (PConv-Keras ``MaskGenerator``).

    1..``max_shapes`` of each kind; thickness and radius 3..``(H + W) * size_factor`` px.
    """

    max_shapes: int = 20
    size_factor: float = 0.03
    name = "irregular"

    def _plan(
        self, shape: tuple[int, int], rng: np.random.Generator
    ) -> tuple[int, Iterator[Group]]:
        kinds = [
            kind for kind in ("line", "circle", "ellipse")
            for _ in range(int(rng.integers(1, self.max_shapes + 1)))
        ]  # fmt: skip
        return len(kinds), self._groups(shape, rng, kinds)

    def _groups(
        self, shape: tuple[int, int], rng: np.random.Generator, kinds: list[str]
    ) -> Iterator[Group]:
        """The recipe's shapes in order, then endlessly more of a random kind."""
        height, width = shape
        thick = max(4, int((height + width) * self.size_factor))
        makers = {"line": self._line, "circle": self._circle, "ellipse": self._ellipse}
        for kind in kinds:
            yield [makers[kind](shape, rng, thick)]
        names = list(makers)
        while True:
            yield [makers[names[int(rng.integers(3))]](shape, rng, thick)]

    @staticmethod
    def _point(shape: tuple[int, int], rng: np.random.Generator) -> tuple[int, int]:
        return int(rng.integers(0, shape[1])), int(rng.integers(0, shape[0]))

    def _line(self, shape: tuple[int, int], rng: np.random.Generator, thick: int) -> Op:
        p0, p1 = self._point(shape, rng), self._point(shape, rng)
        width = int(rng.integers(3, thick + 1))
        return (lambda c: cv2.line(c, p0, p1, 1, width)), _line_area(p0, p1, width)

    def _circle(self, shape: tuple[int, int], rng: np.random.Generator, thick: int) -> Op:
        centre, radius = self._point(shape, rng), int(rng.integers(3, thick + 1))
        return (lambda c: cv2.circle(c, centre, radius, 1, -1)), (2.0 * radius + 3) ** 2

    def _ellipse(self, shape: tuple[int, int], rng: np.random.Generator, thick: int) -> Op:
        height, width = shape
        centre = self._point(shape, rng)
        axes = (int(rng.integers(1, width + 1)), int(rng.integers(1, height + 1)))
        angle, start, end = (int(a) for a in rng.integers(3, 181, size=3))
        line = int(rng.integers(3, thick + 1))
        area = (2.0 * axes[0] + line + 3) * (2.0 * axes[1] + line + 3)  # bounding box
        return (lambda c: cv2.ellipse(c, centre, axes, angle, start, end, 1, line)), area


# --------------------------------------------------------------------------------------------
# DeepFillv2 free-form brush strokes.


@dataclass(frozen=True)
class FreeFormGenerator(StrokeGenerator):
    """A few wide brush strokes of several vertices (DeepFillv2 ``brush_stroke_mask``).

    Published values: 1..3 strokes of 4..11 vertices, turning angles around 2*pi/5 +- up to
    2*pi/15, segment length ~ N(d/8, d/16) clipped to [0, d/4] (d = image diagonal), brush
    width 12..40 px. DeepFillv2 trains at 256 px, so widths scale with the short side / 256.
    """

    max_strokes: int = 3
    min_vertices: int = 4
    max_vertices: int = 12  # exclusive, as in the published recipe
    mean_angle: float = 2 * math.pi / 5
    angle_range: float = 2 * math.pi / 15
    min_width: float = 12.0
    max_width: float = 40.0
    reference_size: int = 256
    name = "freeform"

    def _plan(
        self, shape: tuple[int, int], rng: np.random.Generator
    ) -> tuple[int, Iterator[Group]]:
        native = int(rng.integers(1, self.max_strokes + 1))
        return native, (self._stroke(shape, rng) for _ in count())

    def _stroke(self, shape: tuple[int, int], rng: np.random.Generator) -> Group:
        """One brush stroke: a zig-zag polyline with round joints."""
        height, width = shape
        radius = math.hypot(height, width) / 8
        low = self.mean_angle - rng.uniform(0, self.angle_range)
        high = self.mean_angle + rng.uniform(0, self.angle_range)
        n = int(rng.integers(self.min_vertices, self.max_vertices))
        scale = _scale_of(shape, self.reference_size)
        brush = max(1, int(rng.uniform(self.min_width, self.max_width) * scale))
        x, y = float(rng.integers(0, width)), float(rng.integers(0, height))
        points = [(int(x), int(y))]
        for i in range(n):
            angle = rng.uniform(low, high)
            angle = 2 * math.pi - angle if i % 2 == 0 else angle  # zig-zag
            step = _clamp(rng.normal(radius, radius // 2), 0, 2 * radius)
            x = _clamp(x + step * math.cos(angle), 0, width)
            y = _clamp(y + step * math.sin(angle), 0, height)
            points.append((int(x), int(y)))
        return [_brush_segment(p, q, brush) for p, q in pairwise(points)]

    def _finish(self, canvas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return _random_flips(canvas, rng)


def _brush_segment(p: tuple[int, int], q: tuple[int, int], brush: int) -> Op:
    """A thick segment with round ends, so consecutive segments join without notches."""

    def draw(canvas: np.ndarray) -> None:
        cv2.line(canvas, p, q, 1, brush)
        cv2.circle(canvas, p, brush // 2, 1, -1)
        cv2.circle(canvas, q, brush // 2, 1, -1)

    return draw, _line_area(p, q, brush)


# --------------------------------------------------------------------------------------------
# LaMa's thin / medium / thick random masks.


@dataclass(frozen=True)
class LamaStrokes:
    """LaMa ``RandomIrregularMaskGenerator`` settings (lengths in px at the preset size)."""

    min_times: int
    max_times: int
    max_width: int
    max_len: int
    max_angle: int = 4


@dataclass(frozen=True)
class LamaBoxes:
    """LaMa ``RandomRectangleMaskGenerator`` settings (lengths in px at the preset size)."""

    margin: int
    min_size: int
    max_size: int
    min_times: int
    max_times: int


@dataclass(frozen=True)
class LamaPreset:
    """One ``random_<kind>_<size>.yaml``: strokes, and optionally boxes drawn instead of the
    strokes with odds ``box_weight : 1`` (LaMa picks one of the two per mask, never both)."""

    size: int
    strokes: LamaStrokes
    boxes: LamaBoxes | None = None
    box_weight: float = 0.0


#: LaMa's published evaluation-mask recipes, by (kind, preset size).
LAMA_PRESETS: dict[tuple[str, int], LamaPreset] = {
    ("thin", 256): LamaPreset(256, LamaStrokes(4, 50, 10, 40)),
    ("thin", 512): LamaPreset(512, LamaStrokes(4, 70, 20, 100)),
    ("medium", 256): LamaPreset(256, LamaStrokes(4, 5, 50, 100), LamaBoxes(0, 10, 50, 1, 5), 0.3),
    ("medium", 512): LamaPreset(
        512, LamaStrokes(4, 10, 100, 200), LamaBoxes(0, 30, 150, 1, 5), 0.3
    ),
    ("thick", 256): LamaPreset(256, LamaStrokes(1, 5, 100, 200), LamaBoxes(10, 30, 150, 1, 3), 0.3),
    ("thick", 512): LamaPreset(512, LamaStrokes(1, 5, 250, 450), LamaBoxes(10, 30, 300, 1, 4), 0.3),
}
LAMA_KINDS = ("thin", "medium", "thick")


@dataclass(frozen=True)
class LamaGenerator(StrokeGenerator):
    """LaMa thin / medium / thick masks: short straight polylines, sometimes boxes instead.

    The 256 preset serves canvases whose short side is below 384 px, the 512 preset the rest;
    lengths scale with the short side / preset size. Like LaMa's mask generation
    (``max_tamper_area``), published-recipe masks covering more than ``max_ratio`` are redrawn.
    """

    kind: str = "thin"
    max_ratio: float = 0.5

    def __post_init__(self) -> None:
        if self.kind not in LAMA_KINDS:
            raise InputError(f"LaMa mask kind must be one of {LAMA_KINDS}, got {self.kind!r}")

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"lama-{self.kind}"

    def preset(self, shape: tuple[int, int]) -> LamaPreset:
        """The recipe used for a canvas of this shape."""
        return LAMA_PRESETS[(self.kind, 256 if min(shape) < 384 else 512)]

    def _draw(
        self, shape: tuple[int, int], rng: np.random.Generator, target: float | None
    ) -> np.ndarray:
        hole = super()._draw(shape, rng, target)
        for _ in range(20 if target is None else 0):
            if hole_ratio(hole) <= self.max_ratio:
                break
            hole = super()._draw(shape, rng, target)
        return hole

    def _plan(
        self, shape: tuple[int, int], rng: np.random.Generator
    ) -> tuple[int, Iterator[Group]]:
        preset = self.preset(shape)
        scale = _scale_of(shape, preset.size)
        box_odds = preset.box_weight / (1.0 + preset.box_weight)
        if preset.boxes is not None and rng.random() < box_odds:
            boxes = preset.boxes
            native = int(rng.integers(boxes.min_times, boxes.max_times + 1))
            return native, (self._box(shape, rng, boxes, scale) for _ in count())
        strokes = preset.strokes
        native = int(rng.integers(strokes.min_times, strokes.max_times + 1))
        return native, (self._polyline(shape, rng, strokes, scale, i) for i in count())

    @staticmethod
    def _polyline(
        shape: tuple[int, int], rng: np.random.Generator, p: LamaStrokes, scale: float, index: int
    ) -> Group:
        """1..5 straight segments; LaMa's angles are whole radians (+0.01), mirrored on every
        other polyline."""
        height, width = shape
        x, y = (int(v) for v in rng.integers(0, (width, height)))
        segments = 1 + int(rng.integers(5))
        highs = (p.max_angle, max(1, p.max_len), max(1, p.max_width))
        ops: Group = []
        for turn, extra_len, extra_width in rng.integers(0, highs, size=(segments, 3)).tolist():
            angle = 0.01 + turn
            angle = 2 * math.pi - angle if index % 2 == 0 else angle
            length = (10 + extra_len) * scale  # drawn in preset pixels, scaled to this canvas
            brush = max(1, round((5 + extra_width) * scale))
            x1 = int(_clamp(x + length * math.sin(angle), 0, width))
            y1 = int(_clamp(y + length * math.cos(angle), 0, height))
            ops.append(_line_op((x, y), (x1, y1), brush))
            x, y = x1, y1
        return ops

    @staticmethod
    def _box(shape: tuple[int, int], rng: np.random.Generator, p: LamaBoxes, scale: float) -> Group:
        """One axis-aligned box, ``margin`` px clear of the edge."""
        height, width = shape
        margin = int(p.margin * scale)
        largest = min(int(p.max_size * scale), height - 2 * margin, width - 2 * margin)
        smallest = max(1, min(int(p.min_size * scale), largest - 1))
        bw = int(rng.integers(smallest, max(smallest + 1, largest)))
        bh = int(rng.integers(smallest, max(smallest + 1, largest)))
        x0 = int(rng.integers(margin, max(margin + 1, width - margin - bw + 1)))
        y0 = int(rng.integers(margin, max(margin + 1, height - margin - bh + 1)))

        def draw(canvas: np.ndarray) -> None:
            canvas[y0 : y0 + bh, x0 : x0 + bw] = 1

        return [(draw, float(bw * bh))]


def _line_op(p: tuple[int, int], q: tuple[int, int], brush: int) -> Op:
    return (lambda c: cv2.line(c, p, q, 1, brush)), _line_area(p, q, brush)


def _line_area(p: tuple[int, int], q: tuple[int, int], brush: int) -> float:
    """Upper bound of the pixels of a ``brush``-thick segment with round ends."""
    return (math.hypot(q[0] - p[0], q[1] - p[1]) + brush + 3) * (brush + 3)
