"""Fetch a pinned upstream checkpoint, convert it, verify it, and write a Hub-ready folder.

``PCONV_UPSTREAM_MIRROR`` (a base URL) replaces every upstream host: the file is fetched from
``$PCONV_UPSTREAM_MIRROR/<file name>`` - for mirrors behind a firewall, and for the tests.
"""

from __future__ import annotations

import logging
import os
import urllib.error
import urllib.request
from hashlib import sha256
from pathlib import Path

from pconv.files import atomic_open

from .card import write_folder
from .convert import convert_file
from .files import check_sha256, upstream_cache
from .registry import ModelEntry, Upstream, ZooError

log = logging.getLogger("zoo")

CHUNK = 1 << 20


def upstream_url(upstream: Upstream) -> str:
    mirror = os.environ.get("PCONV_UPSTREAM_MIRROR")
    return f"{mirror.rstrip('/')}/{upstream.filename}" if mirror else upstream.url


def _download(url: str, dest: Path, timeout: float = 60.0) -> str:
    """Stream ``url`` into ``dest`` (atomically); returns the sha256 of what was written."""
    digest = sha256()
    request = urllib.request.Request(url, headers={"User-Agent": "pconv-zoo"})
    try:
        with atomic_open(dest) as out, urllib.request.urlopen(request, timeout=timeout) as resp:
            expected = resp.headers.get("Content-Length")
            total = 0
            while chunk := resp.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                total += len(chunk)
            if expected is not None and int(expected) != total:
                raise ZooError(f"{url}: download cut short ({total} of {expected} bytes)")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ZooError(f"{url}: download failed ({exc})") from None
    return digest.hexdigest()


def check_upstream(path: Path, upstream: Upstream) -> str:
    """Check a local upstream file against the pinned sha256 (or its pinned prefix)."""
    digest = check_sha256(
        path, upstream.sha256, upstream.sha256_prefix, label=f"{upstream.filename} ({path})"
    )
    if upstream.sha256 is None and upstream.sha256_prefix is None:
        # Nothing pinned (the file could not be fetched when the registry was written): the
        # conversion still checks layout and numbers; record the hash so it can be pinned.
        log.warning("%s: sha256 not pinned; got %s", upstream.filename, digest)
    return digest


def fetch_upstream(upstream: Upstream) -> tuple[Path, str]:
    """The upstream file in our cache (downloaded if needed), verified; (path, sha256)."""
    dest = upstream_cache() / upstream.filename
    if dest.is_file():
        try:
            return dest, check_upstream(dest, upstream)
        except ZooError:
            log.warning("%s: cached copy fails its checksum; downloading again", dest)
            dest.unlink()
    url = upstream_url(upstream)
    log.warning("downloading %s", url)
    _download(url, dest)
    try:
        return dest, check_upstream(dest, upstream)
    except ZooError:
        dest.unlink(missing_ok=True)  # never keep a file that failed its check
        raise


def build_entry(entry: ModelEntry, out_dir: Path, upstream_file: Path | None = None) -> Path:
    """Upstream file -> converted, verified Hub folder at ``out_dir`` (model, config, card).

    ``out_dir`` is replaced only once everything succeeded: a failed build leaves nothing.
    """
    if entry.upstream is None:
        raise ZooError(f"{entry.name}: has no upstream checkpoint to build from")
    if upstream_file is not None:
        source, digest = Path(upstream_file), check_upstream(Path(upstream_file), entry.upstream)
    else:
        source, digest = fetch_upstream(entry.upstream)
    try:
        conversion = convert_file(source, layout=entry.upstream.layout, resolution=entry.resolution)
    except ZooError as exc:
        if upstream_file is None:
            # Unpinned downloads (e.g. Google Drive's HTML page instead of the file) must not
            # stay cached as if they were the upstream file.
            source.unlink(missing_ok=True)
            raise ZooError(
                f"{exc}. If {upstream_url(entry.upstream)} cannot be downloaded automatically, "
                f"download {entry.upstream.filename} from {entry.upstream.homepage} and run "
                f"`python -m zoo build {entry.name} --upstream-file PATH`"
            ) from None
        raise
    return write_folder(
        conversion.model, out_dir, entry=entry, conversion=conversion, upstream_sha256=digest
    )
