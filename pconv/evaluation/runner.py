"""Run every method on every pair, score it, time it, and keep a few outputs for the grid."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from pconv.errors import InputError
from pconv.evaluation.baselines import Method
from pconv.evaluation.metrics import score
from pconv.evaluation.pairing import Pair, Sample, prepare
from pconv.holes import composite
from pconv.io import to_uint8

if TYPE_CHECKING:
    from pconv.evaluation.perceptual import Perceptual
    from pconv.evaluation.reuse import ReusedScores

#: Inception features by method, then by pair index; the ground truths under :data:`TRUTH`.
Features = dict[str, dict[int, np.ndarray]]
TRUTH = "ground truth"


@dataclass(frozen=True)
class Record:
    """One method on one pair."""

    pair: int
    image: str
    mask: str
    method: str
    bucket: int  # -1: outside (0.01, 0.6]
    border: bool
    ratio: float  # hole ratio the bucket came from (mask at its own resolution)
    eval_ratio: float  # hole ratio at the evaluation size
    l1: float
    psnr: float
    ssim: float
    seconds: float
    lpips: float = math.nan  # nan: not computed (package missing, or an older run's file)


@dataclass
class Example:
    """A pair kept for the example grid, with every method's output (uint8)."""

    sample: Sample
    outputs: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Evaluation:
    methods: list[str]
    records: list[Record]
    examples: list[Example]
    skipped: list[str]  # one line per pair that could not be scored, and why
    features: Features = field(default_factory=dict)  # empty without the Inception network
    large_holes: list[Example] = field(default_factory=list)  # hardest of the largest bucket


def hide_hole(truth: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """What the methods see: the hole painted white, so no method can read the answer."""
    return np.where(hole[..., None], np.float32(1.0), truth).astype(np.float32)


def unscorable(sample: Sample) -> str | None:
    if not sample.hole.any():
        return "mask has no hole at this size"
    if sample.hole.all():
        return "mask leaves no known pixel"
    return None


class ExamplePicker:
    """Keeps up to ``n`` samples per bucket so the grid can span the hole ratios.

    Outputs are only stored for these few samples, so memory does not grow with the run.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.by_bucket: dict[int, list[Example]] = {}

    def offer(self, sample: Sample) -> Example | None:
        kept = self.by_bucket.setdefault(sample.mask_class.bucket, [])
        if len(kept) >= self.n:
            return None
        kept.append(Example(sample))
        return kept[-1]

    def pick(self) -> list[Example]:
        """Round-robin over buckets (smallest holes first), then sorted by hole ratio."""
        queues = [self.by_bucket[b] for b in sorted(self.by_bucket, key=lambda b: (b < 0, b))]
        chosen: list[Example] = []
        for rank in range(self.n):
            for queue in queues:
                if rank < len(queue) and len(chosen) < self.n:
                    chosen.append(queue[rank])
        return sorted(chosen, key=lambda e: e.sample.mask_class.ratio)


def evaluate(
    pairs: Sequence[Pair],
    methods: Sequence[Method],
    *,
    size: int,
    rule: str = "pixels",
    examples: int = 6,
    large_holes: int = 0,
    progress: bool = True,
    reused: ReusedScores | None = None,
    example_methods: Sequence[Method] = (),
    perceptual: Perceptual | None = None,
) -> Evaluation:
    """Score ``methods`` on every pair. ``reused``: scores of further methods from an earlier
    run, checked pair by pair; ``example_methods`` (some of those) are run on the example pairs
    only, so the grid still shows them; ``perceptual``: the LPIPS and Inception judges, if any
    (LPIPS per record, Inception features kept for FID and KID); ``large_holes``: how many of
    :func:`hardest_large_holes` to fill again with every method, for their own sheet."""
    names = [m.name for m in methods] + (reused.methods if reused else [])
    if not names:
        raise InputError("nothing to evaluate: no model given and no baseline available")
    if len(set(names)) != len(names):
        raise InputError(f"two methods share a name: {', '.join(names)}")
    records: list[Record] = []
    skipped: list[str] = []
    features: Features = {}
    picker = ExamplePicker(examples)
    bar = tqdm(pairs, desc="pconv eval", unit="pair", disable=not progress, dynamic_ncols=True)
    for pair in bar:
        sample = prepare(pair, size, rule)
        reason = unscorable(sample)
        if reason:
            skipped.append(f"{pair.name} + {pair.mask.name}: {reason}")
            continue
        example = picker.offer(sample)
        shown = hide_hole(sample.truth, sample.hole)
        if reused is not None:
            records.extend(reused.for_sample(sample))
            for method, by_pair in reused.features_for(pair.index).items():
                features.setdefault(method, {})[pair.index] = by_pair
        composites, times = [], []
        for method in methods:
            bar.set_postfix_str(method.name, refresh=False)
            start = time.perf_counter()
            output = method(shown.copy(), sample.hole.copy())  # copies: a method may write
            times.append(time.perf_counter() - start)
            if output.shape != sample.truth.shape:
                # a bug in the method, not a user mistake: let it show a traceback
                raise RuntimeError(
                    f"{method.name} returned {output.shape}, not {sample.truth.shape}"
                )
            composites.append(_composited(output, sample))
        records.extend(_score(sample, methods, composites, times, perceptual, features))
        if example is not None:
            for method, image in zip(methods, composites, strict=True):
                example.outputs[method.name] = image
    bar.close()
    if reused is not None:
        reused.check_all_used()
    chosen = picker.pick()
    for example in chosen:  # reused methods run on the grid's few pairs only
        _fill(example, example_methods)
    by_index = {pair.index: pair for pair in pairs}
    hardest = [
        _fill(Example(prepare(by_index[index], size, rule)), [*methods, *example_methods])
        for index in hardest_large_holes(records, large_holes)
    ]
    return Evaluation(names, records, chosen, skipped, features, hardest)


def _fill(example: Example, methods: Sequence[Method]) -> Example:
    """``example`` with the composited output of each of ``methods`` added."""
    shown = hide_hole(example.sample.truth, example.sample.hole)
    for method in methods:
        output = method(shown.copy(), example.sample.hole.copy())
        example.outputs[method.name] = _composited(output, example.sample)
    return example


def hardest_large_holes(records: Sequence[Record], n: int) -> list[int]:
    """Up to ``n`` pairs of the largest hole bucket scored, those every method fills worst
    first: by the mean over the methods of LPIPS (l1 where LPIPS was not measured).

    Where the averages (and the example grid's spread of sizes) hide what a method does with
    the holes that matter most, these show it.
    """
    buckets = [r.bucket for r in records if r.bucket >= 0]
    if n <= 0 or not buckets:
        return []
    largest = max(buckets)
    scores: dict[int, list[float]] = {}
    for r in records:
        if r.bucket == largest:
            scores.setdefault(r.pair, []).append(r.l1 if math.isnan(r.lpips) else r.lpips)
    return sorted(scores, key=lambda pair: -float(np.mean(scores[pair])))[:n]


def _score(
    sample: Sample,
    methods: Sequence[Method],
    composites: Sequence[np.ndarray],
    times: Sequence[float],
    perceptual: Perceptual | None,
    features: Features,
) -> list[Record]:
    """The records of one pair: pixel metrics per method, the perceptual ones in one batch."""
    truth = sample.truth
    images = np.stack(composites).astype(np.float32) / np.float32(255.0) if composites else None
    lpips = [math.nan] * len(composites)
    if perceptual is not None and images is not None:
        lpips = list(perceptual.lpips_batch(images, truth))
    if perceptual is not None and perceptual.inception is not None:
        batch = truth[None] if images is None else np.concatenate([truth[None], images])
        feats = perceptual.features(batch)
        assert feats is not None
        index = sample.pair.index
        features.setdefault(TRUTH, {})[index] = feats[0].astype(np.float32)
        for method, row in zip(methods, feats[1:], strict=True):
            features.setdefault(method.name, {})[index] = row.astype(np.float32)
    records = []
    mc = sample.mask_class
    for k, method in enumerate(methods):
        metrics = score(composites[k] / 255.0, truth, sample.hole)
        records.append(
            Record(
                pair=sample.pair.index,
                image=sample.pair.name,
                mask=sample.pair.mask.name,
                method=method.name,
                bucket=mc.bucket,
                border=mc.border,
                ratio=mc.ratio,
                eval_ratio=sample.eval_ratio,
                l1=metrics["l1"],
                psnr=metrics["psnr"],
                ssim=metrics["ssim"],
                seconds=times[k],
                lpips=float(lpips[k]),
            )
        )
    return records


def _composited(output: np.ndarray, sample: Sample) -> np.ndarray:
    return to_uint8(composite(sample.truth, output, sample.hole[..., None]))
