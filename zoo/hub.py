"""Name -> verified local weights file: the Hub first, then a copy built here from upstream.

Downloads go through :mod:`pconv.hub` (``huggingface_hub.hf_hub_download`` underneath), whose
rules on offline mode, cache folder, endpoint and token are those of every Hub access in pconv.
A file that fails verification is removed from the cache before the error is raised: nothing
bad stays cached.
"""

from __future__ import annotations

import logging
import os
import re
from importlib import resources
from pathlib import Path

from pconv import hub
from pconv.files import sha256_file
from pconv.hub import HubUnavailable, HubUnreachable

from .files import (
    built_folder,
    cache_root,
    evict_hub_file,
    read_sha256_sidecar,
    remove_incomplete,
    verify_weights,
    weights_in,
)
from .registry import ModelEntry, ZooError, get_entry, is_registered, names

log = logging.getLogger("zoo")

_WEIGHT_SUFFIXES = {".safetensors", ".pth", ".pt", ".ckpt", ".bin", ".h5"}
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(@[\w./-]+)?$")


def hub_file(
    repo_id: str,
    filename: str,
    revision: str,
    *,
    sha256: str | None = None,
    force: bool = False,
    progress: type | None = None,
) -> Path:
    """Download (or find in the cache) one file and verify it; :class:`HubUnavailable` if the
    Hub cannot provide it, :class:`ZooError` (after evicting it) if it is not what it should be.
    ``progress``: a ``tqdm`` subclass for the download (:func:`pconv.hub.download`)."""
    try:
        path = hub.download(repo_id, filename, revision, force=force, progress=progress)
    except HubUnavailable:
        remove_incomplete(hub.cache_dir(), repo_id)
        raise
    try:
        verify_weights(path, sha256=sha256, label=f"{repo_id}/{filename}@{revision}")
    except ZooError:
        evict_hub_file(path)
        raise
    return path


def cached_hub_file(entry: ModelEntry) -> Path | None:
    """The entry's file if the Hub cache has it (no network)."""
    if entry.repo_id is None:
        return None
    return hub.cached_file(entry.repo_id, entry.filename, entry.revision)


def packaged_path(entry: ModelEntry) -> Path:
    assert entry.packaged is not None
    return Path(str(resources.files(__package__).joinpath("weights", entry.packaged)))


def built_file(entry: ModelEntry) -> Path | None:
    """The copy converted here from upstream, if present and intact."""
    path = built_folder(entry.name) / "model.safetensors"
    if not path.is_file():
        return None
    recorded = read_sha256_sidecar(path)
    if recorded is None or sha256_file(path) != recorded:
        log.warning("%s: discarding a damaged local build (%s)", entry.name, path.parent)
        return None
    return path


def _resolve_packaged(entry: ModelEntry) -> Path:
    path = packaged_path(entry)
    if not path.is_file():
        # the file ships inside the package: only a damaged installation lacks it
        raise ZooError(
            f"{entry.name}: its packaged weights are missing from this installation (expected "
            f"at {path}); reinstall pconv"
        )
    verify_weights(path, sha256=entry.sha256, label=f"{entry.name} ({path})")
    return path


def offline_fix(name: str) -> str:
    """What to do where a named model is not cached and cannot be downloaded from here."""
    hub_cache = hub.cache_dir() or "~/.cache/huggingface/hub"
    return (
        f"run `python -m zoo download {name}` on a machine with internet access and copy its "
        f"caches ({hub_cache}, {cache_root()}) here, or pass a .safetensors file instead; "
        "HF_HUB_OFFLINE=1 uses the cache without trying the network"
    )


def resolve_entry(
    entry: ModelEntry, *, force: bool = False, build: bool = True, progress: type | None = None
) -> Path:
    """The entry's weights: packaged, Hub (cache or download), local build, or a new build.
    ``progress``: a ``tqdm`` subclass for a Hub download's progress bar.

    Where the Hub cannot be reached at all (:class:`pconv.hub.HubUnreachable`) and the
    upstream file is neither cached nor reachable, this fails at once, in one line that says
    how to get the model here, without a warning or a retry before it."""
    if entry.packaged is not None:
        return _resolve_packaged(entry)
    reasons = []
    cut_off = False  # the Hub cannot be reached from here at all
    if entry.repo_id is not None:
        try:
            return hub_file(
                entry.repo_id,
                entry.filename,
                entry.revision,
                sha256=entry.sha256,
                force=force,
                progress=progress,
            )
        except HubUnavailable as exc:
            reasons.append(str(exc))
            cut_off = isinstance(exc, HubUnreachable)
    if not force and (local := built_file(entry)) is not None:
        verify_weights(local, label=f"{entry.name} (local build {local})")
        return local
    if entry.upstream is None or not build:
        fix = f": {offline_fix(entry.name)}" if cut_off else ""
        raise ZooError(f"{entry.name}: not available ({'; '.join(reasons) or 'no Hub copy'}){fix}")
    if hub.offline():
        raise ZooError(
            f"{entry.name}: not in the cache and offline mode is on "
            f"({reasons[0] if reasons else 'no Hub copy'})."
            f" Run `python -m zoo download {entry.name}` once with internet access."
        )
    from .upstream import build_entry, upstream_cached, upstream_url

    url = upstream_url(entry.upstream)
    if not upstream_cached(entry.upstream) and (why := hub.unreachable(url)) is not None:
        if cut_off:  # the reason in a few words (remembered: no second connection)
            hub_why = hub.unreachable(hub.endpoint() or hub.PUBLIC_ENDPOINT) or reasons[0]
        else:
            hub_why = reasons[0] if reasons else "no Hub copy"
        raise ZooError(
            f"{entry.name}: not in the cache, and neither the Hub ({hub_why}) nor its upstream "
            f"({why}) can be reached from here: {offline_fix(entry.name)}"
        )

    log.warning(
        "%s: Hub copy unavailable (%s); building it from %s",
        entry.name,
        reasons[0] if reasons else "none",
        entry.upstream.url,
    )
    folder = build_entry(entry, built_folder(entry.name))
    return folder / "model.safetensors"


def split_repo_id(text: str) -> tuple[str, str] | None:
    """``user/repo`` or ``user/repo@revision`` -> (repo_id, revision); None if not one."""
    if not _REPO_ID.match(text):
        return None
    repo_id, _, revision = text.partition("@")
    return repo_id, revision or "main"


def resolve(name_or_path: str | os.PathLike[str]) -> Path:
    """A verified local ``model.safetensors`` for a zoo name, a Hub repo id, a folder or a file.

    * a zoo name (:func:`zoo.registry.names`, ``python -m zoo list``), ahead of any file or
      folder of the same name in the working directory;
    * ``"user/repo"`` or ``"user/repo@revision"``: that repo's ``model.safetensors``;
    * a folder holding ``model.safetensors``, or a ``.safetensors`` file.
    """
    text = str(name_or_path)
    path = Path(text).expanduser()
    # A registered name means the entry, even beside a folder of that name (use ./name for it).
    if isinstance(name_or_path, str) and is_registered(text):
        return resolve_entry(get_entry(text))
    if path.exists():
        return weights_in(path)
    if path.suffix.lower() in _WEIGHT_SUFFIXES:
        raise ZooError(f"{text}: no such file")
    repo = split_repo_id(text)
    if repo is not None:
        repo_id, revision = repo
        try:
            return hub_file(repo_id, "model.safetensors", revision)
        except HubUnavailable as exc:
            raise ZooError(f"{text}: cannot get it from the Hub ({exc})") from None
    raise ZooError(
        f"{text}: not a file, a folder, a zoo name ({', '.join(names())}) or a Hub "
        "repo id (owner/name)"
    )


def download(name: str, *, force: bool = False) -> Path:
    """``python -m zoo download NAME``: make a named model available offline."""
    return resolve_entry(get_entry(name), force=force)


def where_cached(entry: ModelEntry) -> str:
    """``hub``, ``built``, ``packaged`` or ``-`` (no network)."""
    if entry.packaged is not None:
        return "packaged"
    try:
        if cached_hub_file(entry) is not None:
            return "hub"
    except Exception:  # an unreadable cache is "not cached" for a listing
        pass
    return "built" if built_file(entry) is not None else "-"
