"""Table 1 from the per-pair records: aggregation, Markdown and CSV.

Every cell is a plain mean over the pairs in it (per-image PSNR averaged, as in the paper).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pconv.evaluation.buckets import N_BUCKETS, bucket_label
from pconv.evaluation.runner import Evaluation, Record

METRICS = (("l1", "l1 (%)", 2), ("psnr", "PSNR (dB)", 2), ("ssim", "SSIM", 3))
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
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(dicts[0]) if dicts else [])
        writer.writeheader()
        writer.writerows(dicts)


def _fmt(value: float, digits: int) -> str:
    return "–" if math.isnan(value) else f"{value:.{digits}f}"


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
    for key, name, digits in METRICS:
        out += ["", f"## {name}", ""]
        rows = [counts]
        for m in evaluation.methods:
            values = [getattr(index[(m, s, lab)], key) for lab, s in columns]
            values.append(getattr(index[(m, ALL, ALL)], key))
            rows.append([m, *(_fmt(v, digits) for v in values)])
        out += _table(header, rows)
    return "\n".join(out) + "\n"


def write_reports(
    evaluation: Evaluation, folder: Path, *, title: str, context: Sequence[str]
) -> tuple[Path, Path, Path, str]:
    """``results.md``, ``results.csv`` (cells), ``per_image.csv`` (every record)."""
    folder.mkdir(parents=True, exist_ok=True)
    cells = aggregate(evaluation)
    text = markdown(evaluation, cells, title=title, context=context)
    md, table, per_image = folder / "results.md", folder / "results.csv", folder / "per_image.csv"
    md.write_text(text, encoding="utf-8")
    write_csv(cells, table)
    write_csv(evaluation.records, per_image)
    return md, table, per_image, text
