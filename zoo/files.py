"""Our cache folder, sha256 checks, and checking a weights file before anyone loads it."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from pconv.checkpoint import WEIGHTS_NAME, inspect_weights
from pconv.errors import CheckpointError
from pconv.files import sha256_file, write_text

from .registry import ZooError

SHA256_SUFFIX = ".sha256"


def cache_root() -> Path:
    """``$PCONV_CACHE``, else ``$XDG_CACHE_HOME/pconv``, else ``~/.cache/pconv``."""
    explicit = os.environ.get("PCONV_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "pconv"


def upstream_cache() -> Path:
    """Upstream checkpoints as downloaded (kept: a rebuild needs no second download)."""
    return cache_root() / "upstream"


def built_folder(name: str) -> Path:
    """Where a model converted here from its upstream is kept (a Hub-ready folder)."""
    return cache_root() / "models" / name


def check_sha256(
    path: Path, sha256: str | None = None, prefix: str | None = None, label: str | None = None
) -> str:
    """The file's sha256, after checking it against the pinned value or prefix."""
    actual = sha256_file(path)
    label = label or str(path)
    if sha256 is not None and actual != sha256.lower():
        raise ZooError(
            f"{label}: sha256 mismatch (expected {sha256}, got {actual}); "
            "the file is corrupt or not the pinned version"
        )
    if prefix is not None and not actual.startswith(prefix.lower()):
        raise ZooError(
            f"{label}: sha256 {actual} does not start with the pinned {prefix}; "
            "the file is corrupt or not the pinned version"
        )
    return actual


def verify_weights(
    path: Path, *, sha256: str | None = None, label: str | None = None
) -> dict[str, str]:
    """Everything short of loading: sha256 (if pinned), safetensors (never a pickle), our
    metadata, and tensors that fit the architecture it names. Returns the metadata."""
    label = label or str(path)
    if sha256 is not None:
        check_sha256(path, sha256, label=label)
    try:
        return inspect_weights(path).metadata
    except CheckpointError as exc:
        raise ZooError(exc.reason, path=label) from None


def weights_in(path: Path) -> Path:
    """``path`` itself, or the ``model.safetensors`` in the folder ``path``."""
    if path.is_dir():
        candidate = path / WEIGHTS_NAME
        if not candidate.is_file():
            raise ZooError(f"{path}: folder has no {WEIGHTS_NAME}")
        return candidate
    if not path.is_file():
        raise ZooError(f"{path}: no such file or folder")
    return path


def write_sha256_sidecar(path: Path) -> str:
    digest = sha256_file(path)
    write_text(path.with_name(path.name + SHA256_SUFFIX), f"{digest}  {path.name}\n")
    return digest


def read_sha256_sidecar(path: Path) -> str | None:
    sidecar = path.with_name(path.name + SHA256_SUFFIX)
    if not sidecar.is_file():
        return None
    return sidecar.read_text().split()[0] if sidecar.read_text().strip() else None


def evict_hub_file(path: Path) -> None:
    """Remove a file ``hf_hub_download`` put in its cache: the snapshot entry and its blob."""
    path = Path(path)
    blob = path.resolve() if path.is_symlink() else None
    path.unlink(missing_ok=True)
    if blob is not None:
        blob.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()  # the snapshot folder, if this was its only file


def remove_incomplete(cache_dir: Path | None, repo_id: str) -> None:
    """Drop partial downloads (``blobs/*.incomplete``) left by a failed transfer."""
    if cache_dir is None:
        return
    blobs = cache_dir / f"models--{repo_id.replace('/', '--')}" / "blobs"
    for partial in blobs.glob("*.incomplete") if blobs.is_dir() else ():
        partial.unlink(missing_ok=True)
