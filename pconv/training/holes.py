"""Training holes: a weighted mix of mask generators (and/or a folder of masks), drawn with the
random generator the caller passes, so that every mask is a function of its sample's seed."""

from __future__ import annotations

import numpy as np

from pconv.errors import InputError
from pconv.masks import get_generator, parse_mix, sample_mask


class HoleSource:
    """``draw(rng) -> bool [size, size]`` (True = hole) from ``mix`` such as
    ``"irregular:1,freeform:1"``; ``folder`` in the mix reads ``mask_dir`` (white = hole)."""

    def __init__(
        self,
        mix: str,
        size: int,
        *,
        border: bool | None = None,
        buckets: list[int] | None = None,
        mask_dir: str | None = None,
    ) -> None:
        self.weights = parse_mix(mix)
        if "folder" in self.weights and not mask_dir:
            raise InputError("the mask mix names 'folder' but no --mask-dir was given")
        if mask_dir and "folder" not in self.weights:
            raise InputError(f"--mask-dir {mask_dir} given, but --masks {mix!r} has no folder:W")
        options = {"folder": {"root": mask_dir}}
        self.generators = [get_generator(n, **options.get(n, {})) for n in self.weights]
        total = sum(self.weights.values())
        self.probs = np.array([w / total for w in self.weights.values()])
        self.size = int(size)
        self.border = border
        self.buckets = buckets

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        gen = self.generators[int(rng.choice(len(self.generators), p=self.probs))]
        bucket = None if not self.buckets else self.buckets[int(rng.integers(len(self.buckets)))]
        return sample_mask(gen, self.size, rng, bucket, self.border)
