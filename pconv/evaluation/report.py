"""Table 1 from the per-pair records: aggregation, Markdown and CSV.

Every cell is a plain mean over the pairs in it (per-image PSNR averaged, as in the paper);
LPIPS too. FID and KID are distances between *sets* (each method's composites against their
ground truths), so they have no per-pair value and come per hole-size group instead
(:func:`distribution`): overall, holes up to 30 % and over 30 % of the mask.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pconv.evaluation.baselines import BASELINES
from pconv.evaluation.buckets import N_BUCKETS, bucket_label
from pconv.evaluation.perceptual import LARGE_HOLE
from pconv.evaluation.runner import TRUTH, Evaluation, Record
from pconv.files import atomic_open, write_text

METRICS = (
    ("l1", "l1 (%)", 2),
    ("psnr", "PSNR (dB)", 2),
    ("ssim", "SSIM", 3),
    ("lpips", "LPIPS (ST-LPIPS AlexNet)", 4),
)
LOWER_IS_BETTER = {"l1", "lpips", "fid", "kid"}
#: The metrics a model must beat every baseline on, cell by cell, in the verdict.
VERDICT_METRICS = (("psnr", "PSNR", 2), ("ssim", "SSIM", 3), ("lpips", "LPIPS", 4))
ALL = "all"
#: FID / KID groups: (key, label, test on a record's mask hole ratio, as the buckets use it).
GROUPS: tuple[tuple[str, str, Callable[[float], bool]], ...] = (
    (ALL, "all", lambda r: True),
    ("small", f"holes <= {LARGE_HOLE:.0%}", lambda r: r <= LARGE_HOLE),
    ("large", f"holes > {LARGE_HOLE:.0%}", lambda r: r > LARGE_HOLE),
)
#: KID is shown times 1000 in results.md (results.csv and distribution.csv keep it as is).
KID_SCALE = 1000.0


@dataclass(frozen=True)
class Cell:
    method: str
    border: str  # "N", "B" or "all"
    bucket: str  # a bucket label or "all"
    pairs: int
    l1: float
    psnr: float
    ssim: float
    seconds: float  # mean time of the method per image
    lpips: float = math.nan


@dataclass(frozen=True)
class Distribution:
    """FID and KID of one method's composites against their ground truths, in one group."""

    method: str
    group: str  # "all", "small" (holes <= 30 %), "large" (> 30 %)
    pairs: int
    fid: float
    kid: float
    kid_std: float  # over KID's subsets; 0 when a subset is the whole set


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def _cell(method: str, border: str, bucket: str, records: Sequence[Record]) -> Cell:
    return Cell(
        method,
        border,
        bucket,
        len(records),
        _mean([r.l1 for r in records]),
        _mean([r.psnr for r in records]),
        _mean([r.ssim for r in records]),
        _mean([r.seconds for r in records]),
        _mean([r.lpips for r in records]),
    )


def bucket_ids(records: Sequence[Record]) -> list[int]:
    """The paper's six buckets, plus "other" only if some pair fell outside them."""
    ids = list(range(N_BUCKETS))
    return [*ids, -1] if any(r.bucket < 0 for r in records) else ids


def aggregate(evaluation: Evaluation) -> list[Cell]:
    """Per method: every (border, bucket) cell, each border class overall, and overall."""
    cells: list[Cell] = []
    buckets = bucket_ids(evaluation.records)
    for method in evaluation.methods:
        mine = [r for r in evaluation.records if r.method == method]
        for border_name, border in (("N", False), ("B", True)):
            side = [r for r in mine if r.border == border]
            for b in buckets:
                cells.append(
                    _cell(method, border_name, bucket_label(b), [r for r in side if r.bucket == b])
                )
            cells.append(_cell(method, border_name, ALL, side))
        cells.append(_cell(method, ALL, ALL, mine))
    return cells


def distribution(evaluation: Evaluation) -> list[Distribution]:
    """FID and KID per method and group; empty without Inception features."""
    from pconv.evaluation.perceptual import FidReference, kid

    truth = evaluation.features.get(TRUTH)
    if not truth:
        return []
    out = []
    for key, _, test in GROUPS:
        chosen = {r.pair for r in evaluation.records if test(r.ratio)}
        pairs = sorted(p for p in chosen if p in truth)
        reference = FidReference(np.stack([truth[p] for p in pairs])) if len(pairs) > 1 else None
        for method in evaluation.methods:
            mine = evaluation.features.get(method, {})
            if reference is None or any(p not in mine for p in pairs):
                out.append(Distribution(method, key, len(pairs), math.nan, math.nan, math.nan))
                continue
            fake = np.stack([mine[p] for p in pairs]).astype(np.float64)
            kid_mean, kid_std = kid(reference.features, fake)
            out.append(
                Distribution(method, key, len(pairs), reference.fid(fake), kid_mean, kid_std)
            )
    return out


def write_csv(rows: Sequence[object], path: str | os.PathLike[str]) -> None:
    """Dataclass rows to CSV (``inf``/``nan`` written as such, readable by ``float``)."""
    dicts = [asdict(r) for r in rows]  # type: ignore[call-overload]
    with atomic_open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(dicts[0]) if dicts else [])
        writer.writeheader()
        writer.writerows(dicts)


def _fmt(value: float, digits: int) -> str:
    return "–" if math.isnan(value) else f"{value:.{digits}f}"


def _better(key: str, a: float, b: float) -> bool:
    return a < b if key in LOWER_IS_BETTER else a > b


def _best(key: str) -> Callable[..., Any]:
    """``min`` or ``max``: what picks the best value of metric ``key``."""
    return min if key in LOWER_IS_BETTER else max


def _bold_best(key: str, digits: int, column: Sequence[float]) -> list[str]:
    """The column formatted, its best value(s) in bold (as shown: ties are all bold)."""
    shown = [_fmt(v, digits) for v in column]
    finite = [v for v in column if not math.isnan(v)]
    if len(finite) < 2:
        return shown
    best = _fmt(_best(key)(finite), digits)
    return [f"**{text}**" if text == best else text for text in shown]


def verdict(
    methods: Sequence[str],
    cells: Sequence[Cell],
    columns: Sequence[tuple[str, str]],
    distributions: Sequence[Distribution] = (),
) -> list[str]:
    """Per model: in how many cells it beats every baseline on PSNR, SSIM and LPIPS, and the
    cells lost; then FID and KID overall and for large holes, won or lost."""
    baselines = [m for m in methods if m in BASELINES]
    models = [m for m in methods if m not in BASELINES]
    if not baselines or not models:
        return []
    index = {(c.method, c.border, c.bucket): c for c in cells}
    sets = {(d.method, d.group): d for d in distributions}
    out = ["", "## Models against the baselines", ""]
    for model in models:
        lost: list[str] = []
        wins = []
        for key, name, digits in VERDICT_METRICS:
            won = total = 0
            for label, side in columns:
                mine = getattr(index[(model, side, label)], key)
                theirs = {b: getattr(index[(b, side, label)], key) for b in baselines}
                if math.isnan(mine):
                    continue
                total += 1
                best = _best(key)(theirs, key=lambda b: theirs[b])
                if all(_better(key, mine, v) for v in theirs.values() if not math.isnan(v)):
                    won += 1
                else:
                    lost.append(
                        f"{name} {label} {side}: {_fmt(mine, digits)} vs {best} "
                        f"{_fmt(theirs[best], digits)}"
                    )
            if total:
                wins.append(f"{name} in {won}/{total} cells")
        for key, name, scale, digits in (("fid", "FID", 1.0, 2), ("kid", "KID", KID_SCALE, 2)):
            for group, label in ((ALL, "overall"), ("large", "holes > 30%")):
                mine_set = sets.get((model, group))
                if mine_set is None or math.isnan(getattr(mine_set, key)):
                    continue
                theirs = {b: getattr(sets[(b, group)], key) for b in baselines}
                finite = {b: v for b, v in theirs.items() if not math.isnan(v)}
                mine = getattr(mine_set, key)
                if all(mine < v for v in finite.values()):
                    wins.append(f"{name} {label} won")
                else:
                    best = min(finite, key=lambda b: finite[b])
                    theirs_text = f"{best} {_fmt(finite[best] * scale, digits)}"
                    wins.append(f"{name} {label} lost")
                    lost.append(f"{name} {label}: {_fmt(mine * scale, digits)} vs {theirs_text}")
        out.append(
            f"- `{model}` beats every baseline ({', '.join(baselines)}): {'; '.join(wins)}."
            + (f" Lost: {'; '.join(lost)}." if lost else "")
        )
    return out


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _computed(cells: Sequence[Cell], key: str) -> bool:
    return any(not math.isnan(getattr(c, key)) for c in cells)


def _kid_text(d: Distribution) -> str:
    if math.isnan(d.kid):
        return "–"
    text = f"{d.kid * KID_SCALE:.2f}"
    return text + (f" ± {d.kid_std * KID_SCALE:.2f}" if d.kid_std > 0 else "")


def distribution_table(methods: Sequence[str], distributions: Sequence[Distribution]) -> list[str]:
    """FID and KID (x 1000) per method: overall, small and large holes; best in bold."""
    sets = {(d.method, d.group): d for d in distributions}
    header = ["method", *(f"FID {label}" for _, label, _ in GROUPS)]
    header += [f"KID x10^3 {label}" for _, label, _ in GROUPS]
    counts = ["pairs", *(str(sets[(methods[0], g)].pairs) for g, _, _ in GROUPS)]
    counts += [str(sets[(methods[0], g)].pairs) for g, _, _ in GROUPS]
    columns: list[list[str]] = []
    for group, _, _ in GROUPS:
        columns.append(_bold_best("fid", 2, [sets[(m, group)].fid for m in methods]))
    for group, _, _ in GROUPS:
        texts = [_kid_text(sets[(m, group)]) for m in methods]
        values = [sets[(m, group)].kid for m in methods]
        finite = [v for v in values if not math.isnan(v)]
        if len(finite) > 1:
            best = f"{min(finite) * KID_SCALE:.2f}"
            texts = [
                f"**{t}**" if not math.isnan(v) and f"{v * KID_SCALE:.2f}" == best else t
                for t, v in zip(texts, values, strict=True)
            ]
        columns.append(texts)
    rows = [counts] + [[m, *(c[i] for c in columns)] for i, m in enumerate(methods)]
    return _table(header, rows)


def markdown(
    evaluation: Evaluation,
    cells: Sequence[Cell],
    *,
    title: str,
    context: Sequence[str],
    distributions: Sequence[Distribution] = (),
) -> str:
    """Summary table, one Table-1-style table per metric (columns: bucket x N/B), then FID and
    KID per hole-size group, then the verdict. Metrics not computed are left out."""
    index = {(c.method, c.border, c.bucket): c for c in cells}
    sets = {(d.method, d.group): d for d in distributions}
    labels = [bucket_label(b) for b in bucket_ids(evaluation.records)]
    columns = [(label, side) for label in labels for side in ("N", "B")]
    metrics = [m for m in METRICS if m[0] != "lpips" or _computed(cells, "lpips")]
    with_lpips = len(metrics) == len(METRICS)
    with_fid = any(not math.isnan(d.fid) for d in distributions)
    out = [f"# {title}", "", *context, ""]

    out += ["## Summary", ""]
    summary = []
    for m in evaluation.methods:
        c = index[(m, ALL, ALL)]
        row = [m, str(c.pairs), _fmt(c.l1, 2), _fmt(c.psnr, 2), _fmt(c.ssim, 3)]
        if with_lpips:
            row.append(_fmt(c.lpips, 4))
        if with_fid:
            row += [_fmt(sets[(m, ALL)].fid, 2), _kid_text(sets[(m, ALL)])]
        summary.append([*row, _fmt(c.seconds, 3)])
    head = ["method", "pairs", "l1 (%)", "PSNR (dB)", "SSIM"]
    head += ["LPIPS"] * with_lpips + ["FID", "KID x10^3"] * with_fid
    out += _table([*head, "s / image"], summary)

    header = ["method", *(f"{label} {side}" for label, side in columns), "all"]
    first = evaluation.methods[0]
    counts = ["pairs", *(str(index[(first, s, lab)].pairs) for lab, s in columns)]
    counts.append(str(index[(first, ALL, ALL)].pairs))
    keys = [(lab, s) for lab, s in columns] + [(ALL, ALL)]
    for key, name, digits in metrics:
        out += ["", f"## {name}", ""]
        by_column = [
            _bold_best(key, digits, [getattr(index[(m, s, lab)], key) for m in evaluation.methods])
            for lab, s in keys
        ]
        rows = [counts]
        for i, m in enumerate(evaluation.methods):
            rows.append([m, *(column[i] for column in by_column)])
        out += _table(header, rows)
    if with_fid:
        out += ["", "## FID and KID (composites against their ground truths)", ""]
        out += distribution_table(evaluation.methods, distributions)
    out += verdict(evaluation.methods, cells, columns, distributions)
    return "\n".join(out) + "\n"


def write_reports(
    evaluation: Evaluation,
    folder: Path,
    *,
    title: str,
    context: Sequence[str],
    network: str = "",
) -> tuple[Path, Path, Path, str]:
    """``results.md``, ``results.csv`` (cells), ``per_image.csv`` (every record); with
    Inception features also ``distribution.csv`` (FID and KID) and ``features.npz`` (for
    ``--reuse``; ``network``: the sha256 of the Inception file that made them)."""
    from pconv.evaluation.reuse import FEATURES, save_features

    folder.mkdir(parents=True, exist_ok=True)
    cells = aggregate(evaluation)
    distributions = distribution(evaluation)
    text = markdown(evaluation, cells, title=title, context=context, distributions=distributions)
    md, table, per_image = folder / "results.md", folder / "results.csv", folder / "per_image.csv"
    write_text(md, text)
    write_csv(cells, table)
    write_csv(evaluation.records, per_image)
    if distributions:
        write_csv(distributions, folder / "distribution.csv")
        save_features(folder / FEATURES, evaluation.features, network)
    return md, table, per_image, text
