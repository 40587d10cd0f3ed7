"""Pick generators by name, hit a hole-ratio bucket and a border rule, mix generators.

:func:`sample_mask` is the one place that enforces the paper's evaluation settings:
the hole-to-image ratio buckets (0.01, 0.1], (0.1, 0.2], ... (0.5, 0.6] and the "no border"
split (holes at least 50 px from the edge at 512 px, scaled with the image size).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np

from pconv.errors import InputError
from pconv.masks.core import (
    BUCKETS,
    MaskGenerator,
    MaskSamplingError,
    Seed,
    Size,
    WorkerSeeded,
    as_rng,
    as_shape,
    border_margin,
    bucket_bounds,
    bucket_label,
    bucket_of,
    hole_ratio,
    nudge_ratio,
    touches_border,
)
from pconv.masks.folder import MaskFolder
from pconv.masks.shapes import CellularGenerator, CenterGenerator, RectGenerator
from pconv.masks.strokes import FreeFormGenerator, IrregularGenerator, LamaGenerator

#: Generator name -> factory taking keyword options (``folder`` needs ``root=``).
GENERATORS: dict[str, Callable[..., MaskGenerator]] = {
    "irregular": IrregularGenerator,
    "freeform": FreeFormGenerator,
    "lama-thin": partial(LamaGenerator, kind="thin"),
    "lama-medium": partial(LamaGenerator, kind="medium"),
    "lama-thick": partial(LamaGenerator, kind="thick"),
    "cellular": CellularGenerator,
    "rect": RectGenerator,
    "center": CenterGenerator,
    "folder": MaskFolder,
}

#: Named mixes: a recipe name stands for its whole mix wherever a mix is read (``--masks
#: deepgin``). DeepGIN (Li et al., AIM 2020) trains on rectangles of 30-70 % of each side,
#: DeepFillv2's free-form strokes and cellular-automata blobs, each image paired with one of
#: each (:meth:`MaskSampler.draw_each`); drawn one a sample, the mix gives them equal shares.
MASK_RECIPES: dict[str, str] = {"deepgin": "rect:1,freeform:1,cellular:1"}

#: A near miss this close to the target (as a factor) is fixed by even growth / shrinkage;
#: further off, the draw is redone so that strokes keep their own widths.
NUDGE_FACTOR = 1.6


def get_generator(name: str, **options: Any) -> MaskGenerator:
    """Build the generator registered as ``name`` with keyword ``options``."""
    try:
        factory = GENERATORS[name]
    except KeyError:
        raise InputError(
            f"unknown mask generator {name!r} (choose from {', '.join(GENERATORS)})"
        ) from None
    try:
        return factory(**options)
    except TypeError as exc:
        hint = " (it needs root=FOLDER)" if name == "folder" else ""
        raise InputError(f"mask generator {name!r}{hint}: {exc}") from None


def sample_mask(
    generator: str | MaskGenerator,
    size: Size,
    rng: Seed = None,
    bucket: int | None = None,
    border: bool | None = None,
    *,
    margin: int | None = None,
    max_tries: int = 100,
) -> np.ndarray:
    """One mask of ``size`` (``(height, width)`` or int), True = hole.

    ``bucket``: index 0..5 of the paper's hole-ratio bucket the mask must fall in (None: the
    generator's own distribution). ``border``: False keeps every hole pixel at least
    ``margin`` px from the edge (default 50 px at 512, scaled with the short side), True
    requires a hole pixel within that frame (the paper's "border" split), None: either.
    Raises :class:`MaskSamplingError` when ``max_tries`` draws cannot satisfy the request.
    """
    gen = get_generator(generator) if isinstance(generator, str) else generator
    shape, rng = as_shape(size), as_rng(rng)
    margin = border_margin(shape) if margin is None else int(margin)
    low, high = bucket_bounds(bucket) if bucket is not None else (0.0, 1.0)
    canvas = _canvas_shape(shape, margin, border)
    area_scale = (shape[0] * shape[1]) / (canvas[0] * canvas[1])  # full / drawable area
    if low * area_scale >= 1.0:
        raise MaskSamplingError(
            f"bucket {bucket} cannot be reached with holes {margin} px clear of the border "
            f"of a {shape[1]}x{shape[0]} image"
        )
    for _ in range(max_tries):
        target = None if bucket is None else min(1.0, rng.uniform(low, high) * area_scale)
        hole = gen(canvas, rng, target=target)
        if target is not None and _should_nudge(gen, hole_ratio(hole), target, area_scale, bucket):
            hole = nudge_ratio(hole, target)
        full = _pad_to(hole, shape, margin) if border is False else hole
        if _meets(full, bucket, border, margin):
            return full
    where = "" if bucket is None else f" in bucket {bucket} {bucket_label(bucket)}"
    rule = {None: "", True: " touching the border", False: f" {margin} px clear of the border"}
    raise MaskSamplingError(
        f"could not draw a {_name(generator)} mask{where}{rule[border]} "
        f"at {shape[1]}x{shape[0]} in {max_tries} tries"
    )


def _canvas_shape(shape: tuple[int, int], margin: int, border: bool | None) -> tuple[int, int]:
    """Where holes may be drawn: the whole image, or inside the margin for border=False."""
    if border is not False:
        return shape
    inner = (shape[0] - 2 * margin, shape[1] - 2 * margin)
    if min(inner) < 1:
        raise MaskSamplingError(
            f"a {shape[1]}x{shape[0]} image has no room for holes {margin} px from its border"
        )
    return inner


def _pad_to(hole: np.ndarray, shape: tuple[int, int], margin: int) -> np.ndarray:
    full = np.zeros(shape, bool)
    full[margin : shape[0] - margin, margin : shape[1] - margin] = hole
    return full


def _should_nudge(
    gen: MaskGenerator, ratio: float, target: float, area_scale: float, bucket: int | None
) -> bool:
    """A near miss of the bucket that even growth / shrinkage may fix (ratios here are of
    the drawable canvas; ``area_scale`` converts them to the whole image)."""
    if not gen.nudgeable or ratio <= 0 or bucket_of(ratio / area_scale) == bucket:
        return False
    return 1 / NUDGE_FACTOR <= ratio / target <= NUDGE_FACTOR


def _meets(hole: np.ndarray, bucket: int | None, border: bool | None, margin: int) -> bool:
    if bucket is not None and bucket_of(hole_ratio(hole)) != bucket:
        return False
    if border is None:
        return True
    return touches_border(hole, margin) == border


def _name(generator: str | MaskGenerator) -> str:
    return repr(generator if isinstance(generator, str) else generator.name)


# --------------------------------------------------------------------------------------------
# Mixing generators for training.


def parse_mix(mix: str | Mapping[str, float] | Sequence[str]) -> dict[str, float]:
    """Generator weights from ``"freeform:2,lama-thick:1,rect"`` (weight 1 when left out),
    a recipe name of :data:`MASK_RECIPES` (``"deepgin"``), a ``{name: weight}`` mapping, or
    a list of names. Names and weights are checked."""
    if isinstance(mix, str) and mix.strip().lower() in MASK_RECIPES:
        mix = MASK_RECIPES[mix.strip().lower()]
    if isinstance(mix, str):
        weights: dict[str, float] = {}
        for item in filter(None, (part.strip() for part in mix.split(","))):
            name, _, weight = item.partition(":")
            try:
                weights[name.strip()] = float(weight) if weight else 1.0
            except ValueError:
                raise InputError(
                    f"bad weight in mask mix item {item!r} (want NAME:NUMBER)"
                ) from None
    elif isinstance(mix, Mapping):
        weights = {str(k): float(v) for k, v in mix.items()}
    else:
        weights = {str(name): 1.0 for name in mix}
    if not weights:
        raise InputError("empty mask generator mix")
    for name, weight in weights.items():
        if name not in GENERATORS:
            raise InputError(
                f"unknown mask generator {name!r} (choose from {', '.join(GENERATORS)}, "
                f"or a recipe: {', '.join(MASK_RECIPES)})"
            )
        if not (math.isfinite(weight) and weight > 0):
            raise InputError(f"mask generator {name!r}: weight must be > 0, got {weight}")
    return weights


#: The border rule's one vocabulary (``pconv masks --border``, the trainer's ``border``):
#: holes anywhere, kept clear of the border frame, or touching it; the value is
#: :func:`sample_mask`'s ``border`` argument.
BORDER_RULES: dict[str, bool | None] = {"any": None, "clear": False, "touch": True}


def border_name(text: str) -> str:
    """The canonical name (``any``/``clear``/``touch``) of a border rule, in any case."""
    name = text.strip().lower()
    if name not in BORDER_RULES:
        raise InputError(f"border rule must be one of {', '.join(BORDER_RULES)}, got {text!r}")
    return name


def parse_border(text: str) -> bool | None:
    """``"any"``/``"clear"``/``"touch"`` -> ``border`` of :func:`sample_mask`."""
    return BORDER_RULES[border_name(text)]


def parse_buckets(text: str | Sequence[int] | None) -> tuple[int, ...] | None:
    """``None`` / ``""`` / ``"any"`` -> None; ``"2"`` / ``"0,1,2"`` (or a list) -> bucket
    indices, checked against the paper's six: the one parser of a bucket list."""
    if text is None:
        return None
    if not isinstance(text, str):
        return _as_buckets(tuple(text)) if len(text) else None
    if text.strip().lower() in ("", "any", "none"):
        return None
    buckets = []
    for item in text.split(","):
        item = item.strip()
        if not item.isdigit() or int(item) >= len(BUCKETS):
            raise InputError(
                f"buckets must be 0..{len(BUCKETS) - 1} (comma-separated), got {text!r}"
            )
        buckets.append(int(item))
    return tuple(buckets)


def _as_buckets(bucket: int | Sequence[int] | None) -> tuple[int, ...] | None:
    if bucket is None:
        return None
    buckets = (bucket,) if isinstance(bucket, (int, np.integer)) else tuple(bucket)
    for b in buckets:
        bucket_bounds(b)  # validates
    if not buckets:
        raise InputError("empty list of buckets")
    return tuple(int(b) for b in buckets)


class MaskSampler(WorkerSeeded):
    """Masks on the fly from a weighted mix of generators, e.g. one per training image.

    ``mix``: see :func:`parse_mix`. ``bucket``: one index, several (one is drawn uniformly
    per mask) or None. ``border``, ``margin``: as in :func:`sample_mask`. ``options``:
    keyword options per generator name, e.g. ``{"folder": {"root": "masks/"}}``.
    Picklable; inside a torch DataLoader worker it reseeds itself from the worker's seed,
    so workers draw different masks, reproducibly under ``torch.manual_seed``.
    """

    def __init__(
        self,
        mix: str | Mapping[str, float] | Sequence[str],
        size: Size = 512,
        *,
        bucket: int | Sequence[int] | None = None,
        border: bool | None = None,
        margin: int | None = None,
        seed: int | None = None,
        options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__(seed)
        self.weights = parse_mix(mix)
        options = dict(options or {})
        self.generators = {
            name: get_generator(name, **options.get(name, {})) for name in self.weights
        }
        self.size = as_shape(size)
        self.buckets = _as_buckets(bucket)
        self.border = border
        self.margin = margin
        total = sum(self.weights.values())
        self._names = list(self.weights)
        self._probs = np.array([w / total for w in self.weights.values()])

    def __repr__(self) -> str:
        return (
            f"MaskSampler({self.weights}, size={self.size}, bucket={self.buckets}, "
            f"border={self.border}, seed={self.seed})"
        )

    def sample(self, size: Size | None = None) -> tuple[str, np.ndarray]:
        """``(generator name, mask)``; ``size`` overrides the sampler's size for this mask."""
        return self.draw(self.rng, size)

    def draw(self, rng: np.random.Generator, size: Size | None = None) -> tuple[str, np.ndarray]:
        """:meth:`sample` with the caller's generator instead of the sampler's own: the
        trainer seeds one per sample, so a mask is a function of (seed, step) alone."""
        name = self._names[int(rng.choice(len(self._names), p=self._probs))]
        return name, self._draw_from(name, rng, size)

    def _draw_from(self, name: str, rng: np.random.Generator, size: Size | None) -> np.ndarray:
        """One mask of generator ``name`` under the sampler's bucket and border rules."""
        bucket = (
            None if self.buckets is None else self.buckets[int(rng.integers(len(self.buckets)))]
        )
        return sample_mask(
            self.generators[name],
            self.size if size is None else size,
            rng,
            bucket,
            self.border,
            margin=self.margin,
        )

    def draw_each(
        self, rng: np.random.Generator, size: Size | None = None
    ) -> list[tuple[str, np.ndarray]]:
        """One mask of *each* generator of the mix, in the mix's order (weights are ignored):
        DeepGIN's pairing of every training image with one mask of each kind. The bucket and
        border rules apply to each, as in :meth:`draw`; :meth:`stack_each` gives an array."""
        return [(name, self._draw_from(name, rng, size)) for name in self._names]

    def stack_each(self, rng: np.random.Generator, size: Size | None = None) -> np.ndarray:
        """:meth:`draw_each` as one bool ``[K, H, W]`` array (K = generators in the mix)."""
        return np.stack([hole for _, hole in self.draw_each(rng, size)])

    def __call__(self, size: Size | None = None) -> np.ndarray:
        """One mask (bool ``[H, W]``, True = hole)."""
        return self.sample(size)[1]
