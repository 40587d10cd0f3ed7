"""The Hub folder of a model: ``model.safetensors``, ``config.json``, a model card README and
the weights' ``LICENSE``.

Everything in ``config.json``, the card and ``LICENSE`` is derived from the weights file's own
metadata, so a folder can be (re)made from any of our files, and they can never disagree.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from huggingface_hub import ModelCard
from torch import nn

import pconv
from pconv.architectures import detect, get_architecture
from pconv.checkpoint import WEIGHTS_NAME, save_model
from pconv.errors import CheckpointError
from pconv.files import atomic_folder, sha256_file
from pconv.model_card import REQUIRED_SECTIONS, data_terms, model_card
from pconv.model_info import ModelInfo

from .convert.common import Conversion
from .files import verify_weights, write_sha256_sidecar
from .registry import ModelEntry, ZooError, is_registered

ZOO_FORMAT = "1"
CONFIG_NAME = "config.json"
CARD_NAME = "README.md"
LICENCE_NAME = "LICENSE"
#: Full licence texts, shipped as package data: a licence like MIT or Apache-2.0 asks that its
#: text travel with every copy of the weights, so a folder must be complete without a network.
LICENCE_DIR = Path(__file__).parent / "licences"
LICENCE_TEXTS = {
    "apache-2.0": "Apache-2.0.txt",
    "mit": "MIT.txt",
    "bsd-2-clause": "BSD-2-Clause.txt",
}
#: A template's own copyright line (MIT's, BSD's), replaced by the holder's notice.
COPYRIGHT_PLACEHOLDER = "Copyright (c) <year> <copyright holders>"


def entry_info(
    entry: ModelEntry, conversion: Conversion | None = None, upstream_sha256: str | None = None
) -> ModelInfo:
    """The record a registry entry's weights file carries."""
    info = ModelInfo(
        name=entry.name,
        summary=entry.summary,
        licence=entry.licence,
        data_terms=entry.data_terms,
        source=entry.source,
        datasets=list(entry.datasets),
        resolution=entry.resolution,
        evaluation=[
            {
                "dataset": e.dataset,
                "metrics": e.metrics,
                "protocol": e.protocol,
                "reported_by": e.reported_by,
            }
            for e in entry.evaluation
        ],
        limitations=list(entry.limitations),
        hub_repo_id=entry.repo_id or "",
        version=f"zoo-{ZOO_FORMAT}/pconv-{pconv.__version__}",
        upstream={"upstream_mask_convention": entry.mask_convention},
        conversion=conversion.record() if conversion is not None else None,
    )
    up = entry.upstream
    if up is not None:
        info.upstream.update(
            source_url=up.url,
            homepage=up.homepage,
            upstream_file=up.filename,
            upstream_licence=up.licence,
            copyright=up.copyright,
            citation=up.citation,
            upstream_sha256_pinned=(
                "full"
                if up.sha256
                else (f"prefix {up.sha256_prefix}" if up.sha256_prefix else "no")
            ),
        )
    if upstream_sha256:
        info.upstream["upstream_sha256"] = upstream_sha256
    return info


def licence_text(licence: str, notice: str = "") -> str | None:
    """The full text of ``licence`` carrying the holder's copyright ``notice``: the ``LICENSE``
    file that must accompany the weights. ``None`` for licences without a text here (``other``:
    the card states their terms)."""
    name = LICENCE_TEXTS.get(licence.lower())
    if name is None:
        return None
    text = (LICENCE_DIR / name).read_text()
    if COPYRIGHT_PLACEHOLDER in text:
        return text.replace(COPYRIGHT_PLACEHOLDER + "\n\n", f"{notice}\n\n" if notice else "")
    return f"{notice}\n\n{text}" if notice else text


def hub_card(meta: dict[str, str], weights_sha256: str, repo_id: str | None = None) -> str:
    """The Hub README for weights with metadata ``meta`` (see :func:`pconv.model_card`)."""
    name = meta.get("name", "")
    return model_card(
        meta,
        weights_sha256,
        repo_id=repo_id,
        zoo_name=name if is_registered(name) else None,
        licence_file=LICENCE_NAME if meta.get("licence", "").lower() in LICENCE_TEXTS else None,
    )


def hub_config(meta: dict[str, str], weights_sha256: str) -> dict[str, object]:
    config = json.loads(meta["config"])
    info = ModelInfo.from_metadata(meta)
    return {
        "library_name": "pconv",
        "architecture": detect(meta).name,
        "format": meta.get("format", "pconv"),
        "format_version": meta.get("format_version", "1"),
        "config": config,
        "resolution": config.get("resolution"),
        "input_mean": config.get("input_mean"),
        "input_std": config.get("input_std"),
        "mask_convention": meta.get("mask_convention"),
        "name": info.name or None,
        "licence": info.licence,
        "data_terms": data_terms(info) or None,
        "source": info.source or None,
        "source_url": info.upstream.get("source_url"),
        "datasets": info.datasets,
        "version": info.version or None,
        "conversion": info.conversion,
        "weights": {"filename": WEIGHTS_NAME, "sha256": weights_sha256},
    }


def write_card_files(folder: Path, weights: Path, repo_id: str | None = None) -> None:
    """``config.json``, ``README.md`` and (for licences with a text) ``LICENSE`` for
    ``weights``, into ``folder``."""
    meta = verify_weights(weights)
    digest = sha256_file(weights)
    (folder / CONFIG_NAME).write_text(json.dumps(hub_config(meta, digest), indent=2) + "\n")
    (folder / CARD_NAME).write_text(hub_card(meta, digest, repo_id))
    text = licence_text(meta.get("licence", "other"), meta.get("copyright", ""))
    if text is not None:
        (folder / LICENCE_NAME).write_text(text)


def write_folder(
    model: nn.Module,
    out_dir: Path,
    *,
    entry: ModelEntry | None = None,
    conversion: Conversion | None = None,
    upstream_sha256: str | None = None,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Save ``model`` with full metadata and its card files (config, card, licence, sha256);
    ``out_dir`` replaced atomically."""
    if entry is not None:
        meta = entry_info(entry, conversion, upstream_sha256).to_metadata()
    else:
        meta = {} if conversion is None else ModelInfo(conversion=conversion.record()).to_metadata()
    meta.update(metadata or {})
    with atomic_folder(out_dir) as tmp:
        weights = save_model(model, tmp / WEIGHTS_NAME, meta)
        write_card_files(tmp, weights)
        write_sha256_sidecar(weights)
        validate_folder(tmp)
    return Path(out_dir)


def folder_from_weights(weights: Path, out_dir: Path, repo_id: str | None = None) -> Path:
    """A Hub folder for an existing weights file (its card files made from its metadata);
    ``repo_id``: the repository it is for, which the card's examples download from."""
    verify_weights(weights)
    with atomic_folder(out_dir) as tmp:
        shutil.copyfile(weights, tmp / WEIGHTS_NAME)
        write_card_files(tmp, tmp / WEIGHTS_NAME, repo_id)
        validate_folder(tmp)
    return Path(out_dir)


def _licence_problems(folder: Path, meta: dict[str, str]) -> list[str]:
    """A licence with a text (MIT, Apache-2.0) asks for it, and the holder's notice, to travel
    with the weights: a folder without them may not be redistributed. Whitespace aside, the
    terms must be the licence's own (a hand-made LICENSE may wrap them differently)."""
    licence = meta.get("licence", "other")
    if licence.lower() not in LICENCE_TEXTS:
        return []
    try:
        text = (folder / LICENCE_NAME).read_text()
    except OSError:
        return [f"{LICENCE_NAME}: missing (the {licence} licence text must accompany it)"]
    problems = []
    # the terms proper: what follows a template's copyright line (MIT's), else all of it
    terms = (LICENCE_DIR / LICENCE_TEXTS[licence.lower()]).read_text()
    terms = terms.split(COPYRIGHT_PLACEHOLDER)[-1]
    if " ".join(terms.split()) not in " ".join(text.split()):
        problems.append(f"{LICENCE_NAME}: not the {licence} licence text")
    notice = meta.get("copyright", "")
    if notice not in text:
        problems.append(f"{LICENCE_NAME}: lacks the notice {notice!r}")
    return problems


def validate_folder(folder: Path) -> dict[str, object]:
    """Check a Hub folder: weights verify, config.json, card and LICENSE agree with them;
    returns the parsed config.json. :class:`ZooError` lists every problem found."""
    problems: list[str] = []
    weights = folder / WEIGHTS_NAME
    meta = verify_weights(weights)
    digest = sha256_file(weights)
    config: dict[str, object] = {}
    try:
        config = json.loads((folder / CONFIG_NAME).read_text())
    except (OSError, ValueError) as exc:
        problems.append(f"{CONFIG_NAME}: unreadable ({exc})")
    if config:
        if config.get("config") != json.loads(meta["config"]):
            problems.append(f"{CONFIG_NAME}: architecture differs from the weights' metadata")
        try:
            get_architecture(str(config["architecture"])).config_from_dict(config["config"])
        except (KeyError, TypeError, ValueError, CheckpointError) as exc:
            problems.append(f"{CONFIG_NAME}: invalid architecture config ({exc})")
        if (config.get("weights") or {}).get("sha256") != digest:  # type: ignore[union-attr]
            problems.append(f"{CONFIG_NAME}: sha256 does not match {WEIGHTS_NAME}")
        if config.get("library_name") != "pconv":
            problems.append(f"{CONFIG_NAME}: library_name is not pconv")
    try:
        card = ModelCard.load(folder / CARD_NAME)
    except Exception as exc:  # yaml errors, missing file
        problems.append(f"{CARD_NAME}: unreadable model card ({exc})")
    else:
        data = card.data.to_dict()
        for key in ("license", "tags", "library_name"):
            if not data.get(key):
                problems.append(f"{CARD_NAME}: YAML header lacks {key}")
        if data.get("library_name") != "pconv":
            problems.append(f"{CARD_NAME}: library_name is not pconv")
        if "datasets" in meta and json.loads(meta["datasets"]) and not data.get("datasets"):
            problems.append(f"{CARD_NAME}: YAML header lacks datasets")
        problems += [
            f"{CARD_NAME}: no '{s}' section" for s in REQUIRED_SECTIONS if s not in card.text
        ]
        if digest not in card.text:
            problems.append(f"{CARD_NAME}: does not state the weights' sha256")
        if meta.get("data_terms") and meta["data_terms"] not in card.text:
            problems.append(f"{CARD_NAME}: does not state the training data's terms")
    problems += _licence_problems(folder, meta)
    if problems:
        raise ZooError(f"{folder}: invalid Hub folder: " + "; ".join(problems))
    return config
