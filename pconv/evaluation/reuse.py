"""Baseline scores taken from an earlier ``pconv eval`` run instead of recomputed.

Classical baselines do not change between runs, and PatchMatch at 512 px costs seconds a pair:
evaluating a new model against them should not redo that. ``per_image.csv`` holds every
record; a record is only reused for the same pair (index, image, mask), the same bucket and
border, and the same hole ratio at the evaluation size, so a run made with other folders, seed,
``--pairs``, ``--size`` or ``--mask-rule`` is refused rather than silently mixed in.

The perceptual scores travel too: LPIPS is a column of ``per_image.csv``, and the Inception
features that FID and KID need are in ``features.npz`` (float32, by method and pair, with the
sha256 of the network that made them). A method whose earlier scores lack them (a run from
before perceptual scores, or one without their packages, or with another Inception file) is
**recomputed**, with a note, rather than refused: FID and KID need every method's features,
and mixing a reused baseline without LPIPS into the LPIPS tables would leave holes in them.
"""

from __future__ import annotations

import csv
import math
import zipfile
from collections.abc import Collection, Sequence
from dataclasses import MISSING, fields
from pathlib import Path

import numpy as np

from pconv.errors import InputError
from pconv.evaluation.pairing import Pair, Sample
from pconv.evaluation.runner import Features, Record
from pconv.files import atomic_open

PER_IMAGE = "per_image.csv"
FEATURES = "features.npz"
_TYPES = {f.name: f.type for f in fields(Record)}
#: Columns an older per_image.csv may lack (they have defaults: LPIPS is nan there).
_OPTIONAL = {f.name for f in fields(Record) if f.default is not MISSING}


def _record(row: dict[str, str], where: str) -> Record:
    try:
        values = {}
        for name, kind in _TYPES.items():
            if name in _OPTIONAL and row.get(name) in (None, ""):
                continue
            text = row[name]
            if kind == "int":
                values[name] = int(text)
            elif kind == "float":
                values[name] = float(text)
            elif kind == "bool":
                if text not in ("True", "False"):
                    raise ValueError(f"{name}={text!r}")
                values[name] = text == "True"
            else:
                values[name] = text
    except (KeyError, ValueError, TypeError) as exc:
        raise InputError(f"{where}: not a pconv eval per_image.csv row ({exc})") from None
    return Record(**values)


def save_features(path: Path, features: Features, network: str) -> None:
    """``features.npz``: per method (the ground truths included) its pairs and features."""
    arrays: dict[str, np.ndarray] = {
        "network": np.array(network),
        "methods": np.array(list(features)),
    }
    for i, by_pair in enumerate(features.values()):
        pairs = sorted(by_pair)
        arrays[f"pairs{i}"] = np.array(pairs, dtype=np.int64)
        arrays[f"features{i}"] = np.stack([by_pair[p] for p in pairs]).astype(np.float32)
    with atomic_open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def load_features(folder: str | Path, methods: Collection[str], network: str) -> Features:
    """The features of ``methods`` in ``folder/features.npz`` made by ``network`` (sha256);
    empty where the file is absent or came from another network."""
    path = Path(folder) / FEATURES if Path(folder).is_dir() else Path(folder).parent / FEATURES
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["network"]) != network:
                return {}
            found: Features = {}
            for i, method in enumerate(data["methods"].tolist()):
                if method in methods:
                    rows = data[f"features{i}"]
                    found[method] = dict(zip(data[f"pairs{i}"].tolist(), rows, strict=True))
            return found
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError(f"cannot read the features to reuse ({exc})", path=path) from None


def stale(
    records: dict[str, list[Record]], features: Features, *, lpips: bool, inception: bool
) -> list[str]:
    """The methods whose earlier scores lack what this run measures (to be recomputed)."""
    out = []
    for method, rows in records.items():
        no_lpips = lpips and any(math.isnan(r.lpips) for r in rows)
        no_features = inception and not {r.pair for r in rows} <= set(features.get(method, {}))
        if no_lpips or no_features:
            out.append(method)
    return out


def load_records(folder: str | Path, methods: Collection[str]) -> dict[str, list[Record]]:
    """Records of ``methods`` in ``folder/per_image.csv``, by method (absent methods left out)."""
    path = Path(folder) / PER_IMAGE if Path(folder).is_dir() else Path(folder)
    if not path.is_file():
        raise InputError(f"no {PER_IMAGE} to reuse there (the output of pconv eval)", path=folder)
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read the scores to reuse ({exc})", path=path) from None
    found: dict[str, list[Record]] = {}
    for line, row in enumerate(rows, start=2):
        if row.get("method") in methods:
            found.setdefault(row["method"], []).append(_record(row, f"{path}, line {line}"))
    return found


class ReusedScores:
    """Hands out, pair by pair, the reused records after checking the pair is the same one."""

    def __init__(
        self, records: dict[str, list[Record]], source: str, features: Features | None = None
    ) -> None:
        self.source = source
        self.methods = list(records)
        self.features = features or {}
        self._by_pair: dict[int, list[Record]] = {}
        for method_records in records.values():
            for record in method_records:
                self._by_pair.setdefault(record.pair, []).append(record)
        self._seen: set[int] = set()

    def check_pairs(self, pairs: Sequence[Pair]) -> None:
        """Before the run: every reused pair is one of ``pairs``, with the same files."""
        here = {p.index: (p.name, p.mask.name) for p in pairs}
        for index, records in self._by_pair.items():
            there = (records[0].image, records[0].mask)
            if here.get(index) != there:
                now = " + ".join(here[index]) if index in here else "not there"
                raise self._mismatch(f"pair {index} is {' + '.join(there)} there, {now} here")

    def for_sample(self, sample: Sample) -> list[Record]:
        pair = sample.pair
        records = self._by_pair.get(pair.index, [])
        have = {r.method for r in records}
        if have != set(self.methods):
            missing = ", ".join(sorted(set(self.methods) - have))
            raise self._mismatch(f"pair {pair.index} has no score for {missing} there")
        mc = sample.mask_class
        for r in records:
            same = (r.image, r.mask, r.bucket, r.border) == (
                pair.name,
                pair.mask.name,
                mc.bucket,
                mc.border,
            )
            if not same or not math.isclose(r.eval_ratio, sample.eval_ratio, abs_tol=1e-9):
                raise self._mismatch(
                    f"pair {pair.index} is {r.image} + {r.mask} (hole {r.eval_ratio:.4f}) there, "
                    f"{pair.name} + {pair.mask.name} (hole {sample.eval_ratio:.4f}) here"
                )
        self._seen.add(pair.index)
        return sorted(records, key=lambda r: self.methods.index(r.method))

    def features_for(self, index: int) -> dict[str, np.ndarray]:
        """The reused methods' Inception features of pair ``index`` (those that have them)."""
        return {
            m: self.features[m][index] for m in self.methods if index in self.features.get(m, {})
        }

    def check_all_used(self) -> None:
        """Every reused pair was scored here too (a run with more pairs is another run)."""
        extra = sorted(set(self._by_pair) - self._seen)
        if extra:
            raise self._mismatch(f"{len(extra)} pairs scored there are not scored here")

    def _mismatch(self, what: str) -> InputError:
        return InputError(
            f"the reused scores were made with other pairs ({what}); use the same images, "
            "masks, seed, number of pairs, size and mask rule, or recompute the baselines",
            path=self.source,
        )
