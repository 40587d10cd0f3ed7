"""``python -m zoo publish``: put a model's Hub folder on the Hub with ``HfApi``."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from zoo.card import CARD_NAME, CONFIG_NAME, folder_from_weights, validate_folder
from zoo.files import sha256_file, weights_in
from zoo.registry import ZooError

UPLOADED = ("model.safetensors", CONFIG_NAME, CARD_NAME)
#: Cards a weights folder may already hold, in order of preference: a Hub card, then the
#: draft ``python -m train`` writes next to its ``final/model.safetensors``.
CARD_SOURCES = (CARD_NAME, "MODEL_CARD.md")


@dataclass
class Published:
    repo_id: str
    folder: Path | None  # the folder written (dry run) or None
    commit: str | None  # the Hub commit to pin as the entry's revision
    sha256: str  # of model.safetensors, to pin as the entry's sha256


def prepare(path: Path, out_dir: Path) -> Path:
    """Exactly the folder that would be uploaded: weights, config.json, README.md, validated.

    A folder that already has a card (README.md, else the trainer's MODEL_CARD.md) keeps it:
    hand-edited cards win. config.json is always regenerated from the weights so it cannot
    drift from them.
    """
    weights = weights_in(Path(path))
    cards = [weights.parent / name for name in CARD_SOURCES] if Path(path).is_dir() else []
    existing_card = next((card for card in cards if card.is_file()), None)
    folder_from_weights(weights, out_dir)
    if existing_card is not None:
        (out_dir / CARD_NAME).write_text(existing_card.read_text())
    validate_folder(out_dir)
    return out_dir


def publish(
    path: Path,
    repo_id: str,
    *,
    dry_run: bool = False,
    out_dir: Path | None = None,
    private: bool = False,
    token: str | None = None,
    revision: str | None = None,
    message: str | None = None,
) -> Published:
    if "/" not in repo_id:
        raise ZooError(f"{repo_id}: a repo id is 'owner/name'")
    if dry_run:
        target = Path(out_dir or f"publish-{repo_id.replace('/', '--')}")
        prepare(path, target)
        return Published(repo_id, target, None, sha256_file(target / "model.safetensors"))

    from huggingface_hub import HfApi

    endpoint = os.environ.get("HF_ENDPOINT")
    api = HfApi(endpoint=endpoint.rstrip("/") if endpoint else None, token=token)
    with tempfile.TemporaryDirectory(prefix="pconv-publish-") as tmp:
        folder = prepare(path, Path(tmp) / "repo")
        digest = sha256_file(folder / "model.safetensors")
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        info = api.upload_folder(
            repo_id=repo_id,
            repo_type="model",
            folder_path=str(folder),
            allow_patterns=list(UPLOADED),
            revision=revision,
            commit_message=message or f"pconv model (sha256 {digest[:12]})",
        )
    commit = getattr(info, "oid", None)
    return Published(repo_id, None, commit, digest)
