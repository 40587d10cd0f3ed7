"""What a weights file says about itself: one typed record, written to and read from the
safetensors metadata (timm's ``PretrainedCfg`` is the model).

The trainer's export, the zoo's conversions, the cards, ``config.json`` and ``zoo list`` all
write or read this record, so a field is added in one place. On disk the keys stay flat strings
(safetensors metadata is ``dict[str, str]``; structured fields are JSON), which is also how
every file written so far stores them. The format keys (``format``, ``architecture``, ``config``,
``mask_convention``) belong to :func:`pconv.save_model`, not to this record.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field, fields
from typing import Any

#: Keys save_model owns; never part of the record.
FORMAT_KEYS = ("format", "format_version", "architecture", "config", "mask_convention")
#: Fields stored as JSON text.
_JSON_FIELDS = (
    "datasets",
    "evaluation",
    "limitations",
    "conversion",
    "training",
    "loss",
    "metrics",
)
#: Where a published upstream checkpoint came from (flat keys, as zoo builds have written them).
UPSTREAM_KEYS = (
    "source_url",
    "homepage",
    "upstream_file",
    "upstream_licence",
    "upstream_sha256",
    "upstream_sha256_pinned",
    "upstream_mask_convention",
    "copyright",
    "citation",
)


@dataclass
class ModelInfo:
    name: str = ""
    summary: str = ""
    licence: str = "other"  # of the weights: an SPDX id, or "other" (then the card says)
    data_terms: str = ""  # the training data's terms: apart from the licence, never lifted by it
    source: str = ""  # who made the weights, with what
    datasets: list[str] = field(default_factory=list)  # Hub dataset ids
    resolution: int | None = None
    evaluation: list[dict[str, Any]] = field(default_factory=list)  # dataset, metrics, protocol,
    limitations: list[str] = field(default_factory=list)  # reported_by
    hub_repo_id: str = ""
    version: str = ""  # of the software that wrote the file
    upstream: dict[str, str] = field(default_factory=dict)  # UPSTREAM_KEYS
    conversion: dict[str, Any] | None = None  # zoo.convert: layout, exact, errors measured
    training: dict[str, Any] | None = None  # the trainer's record: data, steps, schedule, ...
    loss: dict[str, Any] | None = None
    metrics: dict[str, float] | None = None  # the trainer's validation figures
    notes: dict[str, str] = field(default_factory=dict)  # any other key (command, hardware ...)

    def to_metadata(self) -> dict[str, str]:
        meta: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "upstream" or f.name == "notes":
                meta.update({k: str(v) for k, v in value.items()})
            elif f.name in _JSON_FIELDS:
                if value is not None:
                    meta[f.name] = json.dumps(value, sort_keys=True)
            elif value not in (None, ""):
                meta[f.name] = str(value)
        return meta

    @classmethod
    def from_metadata(cls, meta: dict[str, str]) -> ModelInfo:
        """The record in a file's metadata; missing keys take their defaults and unreadable
        JSON counts as missing (a card is still written for an odd file)."""
        known = {f.name for f in fields(cls)} - {"upstream", "notes"}
        info = cls()
        for key, text in meta.items():
            if key in FORMAT_KEYS:
                continue
            if key in UPSTREAM_KEYS:
                info.upstream[key] = text
            elif key not in known:
                info.notes[key] = text
            elif key in _JSON_FIELDS:
                with contextlib.suppress(ValueError):
                    setattr(info, key, json.loads(text))
            elif key == "resolution":
                info.resolution = int(text) if text.strip().isdigit() else None
            else:
                setattr(info, key, text)
        return info
