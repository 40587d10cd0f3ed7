"""Hole masks for training and evaluation: generators, ratio buckets, border rule, mixing.

Masks are ``bool [H, W]`` arrays with ``True`` = hole (white in files); the network's
"1 = valid" form comes from :func:`pconv.io.hole_to_valid`. Sizes are ``(height, width)``.

Quick use::

    from pconv.masks import MaskSampler, sample_mask
    hole = sample_mask("freeform", 512, rng=0, bucket=2, border=False)
    sampler = MaskSampler("irregular:1,lama-thick:1,rect:0.5", size=256, seed=0)
    hole = sampler()

Modules: :mod:`~pconv.masks.core` (ratios, buckets, border, seeding),
:mod:`~pconv.masks.strokes` (irregular, freeform, LaMa), :mod:`~pconv.masks.shapes`
(cellular, rect, center), :mod:`~pconv.masks.augment`, :mod:`~pconv.masks.folder`,
:mod:`~pconv.masks.sampling` (registry, bucket / border control, mixing),
:mod:`~pconv.masks.preview` (contact sheets).
"""

from pconv.masks.augment import MaskAugment, augment_mask
from pconv.masks.core import (
    BUCKET_EDGES,
    BUCKETS,
    MaskGenerator,
    MaskSamplingError,
    as_rng,
    border_margin,
    bucket_bounds,
    bucket_label,
    bucket_of,
    hole_ratio,
    nudge_ratio,
    nvidia_id_info,
    touches_border,
)
from pconv.masks.folder import MaskFolder, fit_mask
from pconv.masks.preview import contact_sheet
from pconv.masks.sampling import (
    BORDER_RULES,
    GENERATORS,
    MASK_RECIPES,
    MaskSampler,
    border_name,
    get_generator,
    parse_border,
    parse_buckets,
    parse_mix,
    sample_mask,
)
from pconv.masks.shapes import CellularGenerator, CenterGenerator, RectGenerator
from pconv.masks.strokes import (
    LAMA_PRESETS,
    FreeFormGenerator,
    IrregularGenerator,
    LamaGenerator,
)

__all__ = [
    "BORDER_RULES",
    "BUCKETS",
    "BUCKET_EDGES",
    "GENERATORS",
    "LAMA_PRESETS",
    "MASK_RECIPES",
    "CellularGenerator",
    "CenterGenerator",
    "FreeFormGenerator",
    "IrregularGenerator",
    "LamaGenerator",
    "MaskAugment",
    "MaskFolder",
    "MaskGenerator",
    "MaskSampler",
    "MaskSamplingError",
    "RectGenerator",
    "as_rng",
    "augment_mask",
    "border_margin",
    "border_name",
    "bucket_bounds",
    "bucket_label",
    "bucket_of",
    "contact_sheet",
    "fit_mask",
    "get_generator",
    "hole_ratio",
    "nudge_ratio",
    "nvidia_id_info",
    "parse_border",
    "parse_buckets",
    "parse_mix",
    "sample_mask",
    "touches_border",
]
