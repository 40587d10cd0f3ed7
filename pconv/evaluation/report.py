"""Table 1 from the per-pair records: aggregation, Markdown and CSV.

Every cell is a plain mean over the pairs in it (per-image PSNR averaged, as in the paper).
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
from pconv.evaluation.runner import Evaluation, Record
from pconv.files import atomic_open, write_text

METRICS = (("l1", "l1 (%)", 2), ("psnr", "PSNR (dB)", 2), ("ssim", "SSIM", 3))
LOWER_IS_BETTER = {"l1"}
#: The metrics a model must beat every baseline on, cell by cell, in the verdict.
VERDICT_METRICS = (("psnr", "PSNR", 2), ("ssim", "SSIM", 3))
ALL = "all"


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
    methods: Sequence[str], cells: Sequence[Cell], columns: Sequence[tuple[str, str]]
) -> list[str]:
    """Per model: in how many cells it beats every baseline on PSNR and on SSIM; cells lost."""
    baselines = [m for m in methods if m in BASELINES]
    models = [m for m in methods if m not in BASELINES]
    if not baselines or not models:
        return []
    index = {(c.method, c.border, c.bucket): c for c in cells}
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
            wins.append(f"{name} in {won}/{total} cells")
        out.append(
            f"- `{model}` beats every baseline ({', '.join(baselines)}): {'; '.join(wins)}."
            + (f" Lost: {'; '.join(lost)}." if lost else "")
        )
    return out


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def markdown(
    evaluation: Evaluation, cells: Sequence[Cell], *, title: str, context: Sequence[str]
) -> str:
    """Summary table, then one Table-1-style table per metric (columns: bucket x N/B)."""
    index = {(c.method, c.border, c.bucket): c for c in cells}
    labels = [bucket_label(b) for b in bucket_ids(evaluation.records)]
    columns = [(label, side) for label in labels for side in ("N", "B")]
    out = [f"# {title}", "", *context, ""]

    out += ["## Summary", ""]
    summary = []
    for m in evaluation.methods:
        c = index[(m, ALL, ALL)]
        summary.append(
            [m, str(c.pairs), _fmt(c.l1, 2), _fmt(c.psnr, 2), _fmt(c.ssim, 3), _fmt(c.seconds, 3)]
        )
    out += _table(["method", "pairs", "l1 (%)", "PSNR (dB)", "SSIM", "s / image"], summary)

    header = ["method", *(f"{label} {side}" for label, side in columns), "all"]
    first = evaluation.methods[0]
    counts = ["pairs", *(str(index[(first, s, lab)].pairs) for lab, s in columns)]
    counts.append(str(index[(first, ALL, ALL)].pairs))
    keys = [(lab, s) for lab, s in columns] + [(ALL, ALL)]
    for key, name, digits in METRICS:
        out += ["", f"## {name}", ""]
        by_column = [
            _bold_best(key, digits, [getattr(index[(m, s, lab)], key) for m in evaluation.methods])
            for lab, s in keys
        ]
        rows = [counts]
        for i, m in enumerate(evaluation.methods):
            rows.append([m, *(column[i] for column in by_column)])
        out += _table(header, rows)
    out += verdict(evaluation.methods, cells, columns)
    return "\n".join(out) + "\n"


def write_reports(
    evaluation: Evaluation, folder: Path, *, title: str, context: Sequence[str]
) -> tuple[Path, Path, Path, str]:
    """``results.md``, ``results.csv`` (cells), ``per_image.csv`` (every record)."""
    folder.mkdir(parents=True, exist_ok=True)
    cells = aggregate(evaluation)
    text = markdown(evaluation, cells, title=title, context=context)
    md, table, per_image = folder / "results.md", folder / "results.csv", folder / "per_image.csv"
    write_text(md, text)
    write_csv(cells, table)
    write_csv(evaluation.records, per_image)
    return md, table, per_image, text
