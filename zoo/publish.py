"""``python -m zoo publish``: put a model's Hub folder on the Hub with ``HfApi``."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pconv import hub
from pconv.checkpoint import WEIGHTS_NAME
from pconv.files import sha256_file, write_text

from .card import CARD_NAME, CONFIG_NAME, LICENCE_NAME, folder_from_weights, validate_folder
from .files import weights_in
from .registry import ZooError

#: What a Hub repository of ours holds; LICENSE only where the licence has a text (not "other").
UPLOADED = (WEIGHTS_NAME, CONFIG_NAME, CARD_NAME, LICENCE_NAME)
#: Hand-made files a weights folder may already hold, which win over generated ones (a person
#: wrote them on purpose), each with its sources in order of preference: a Hub card, then the
#: draft ``python -m train`` writes next to its ``final/model.safetensors``; a LICENSE.
KEPT = {CARD_NAME: (CARD_NAME, "MODEL_CARD.md"), LICENCE_NAME: (LICENCE_NAME,)}


@dataclass
class Published:
    repo_id: str
    folder: Path | None  # the folder written (dry run) or None
    commit: str | None  # the Hub commit to pin as the entry's revision
    sha256: str  # of model.safetensors, to pin as the entry's sha256
    files: list[tuple[str, int]] = field(default_factory=list)  # (name, bytes), as uploaded


def upload_list(folder: Path) -> list[tuple[str, int]]:
    """(name, size in bytes) of every file of ``folder`` an upload sends: a dry run reports
    this list and a real upload sends exactly it."""
    return [
        (name, (folder / name).stat().st_size) for name in UPLOADED if (folder / name).is_file()
    ]


def prepare(path: Path, out_dir: Path, repo_id: str | None = None) -> Path:
    """Exactly the folder that would be uploaded: weights, config.json, README.md and LICENSE,
    validated; ``repo_id`` is the repository the generated card's examples download from.

    A folder that already has a card (README.md, else the trainer's MODEL_CARD.md) or a LICENSE
    keeps them: hand-edited files win. config.json is always regenerated from the weights so it
    cannot drift from them.
    """
    weights = weights_in(Path(path))
    folder_from_weights(weights, out_dir, repo_id)
    if Path(path).is_dir():
        for target, sources in KEPT.items():
            existing = next(
                (weights.parent / s for s in sources if (weights.parent / s).is_file()), None
            )
            if existing is not None:
                write_text(out_dir / target, existing.read_text())
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
        prepare(path, target, repo_id)
        return Published(
            repo_id, target, None, sha256_file(target / WEIGHTS_NAME), upload_list(target)
        )

    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub.endpoint(), token=token)
    with tempfile.TemporaryDirectory(prefix="pconv-publish-") as tmp:
        folder = prepare(path, Path(tmp) / "repo", repo_id)
        digest = sha256_file(folder / WEIGHTS_NAME)
        files = upload_list(folder)
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        info = api.upload_folder(
            repo_id=repo_id,
            repo_type="model",
            folder_path=str(folder),
            allow_patterns=[name for name, _ in files],
            revision=revision,
            commit_message=message or f"pconv model (sha256 {digest[:12]})",
        )
    commit = getattr(info, "oid", None)
    return Published(repo_id, None, commit, digest, files)
