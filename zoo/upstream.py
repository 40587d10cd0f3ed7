"""Fetch a pinned upstream checkpoint, convert it, verify it, and write a Hub-ready folder.

``PCONV_UPSTREAM_MIRROR`` (a base URL) replaces every upstream host: the file is fetched from
``$PCONV_UPSTREAM_MIRROR/<file name>`` - for mirrors behind a firewall, and for the tests.

Google Drive (``Upstream.drive_id``) answers a download of a large file with a page instead:
"can't scan this file for viruses", whose form (``download-form``: the id, ``confirm`` and a
``uuid``) asks for the file again; :func:`_download` submits it once, with the cookies Drive
set. When Drive refuses (the file is not shared, or gone) or rate-limits (its download quota for
a popular file, reset within 24 h), the page says so, and so does the one-line error.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from hashlib import sha256
from html.parser import HTMLParser
from pathlib import Path
from typing import IO

from pconv.files import atomic_open
from pconv.hub import unreachable

from .card import write_folder
from .convert import convert_file
from .files import check_sha256, upstream_cache
from .registry import ModelEntry, Upstream, ZooError

log = logging.getLogger("zoo")

CHUNK = 1 << 20
#: Google Drive's download endpoint (a file's id and ``export=download`` as the query)
DRIVE_ENDPOINT = "https://drive.usercontent.google.com/download"
#: the most of a web page read to see what it says (Drive's pages are a few kB)
PAGE_BYTES = 1 << 20
#: what Drive's pages say when it rate-limits a file, or refuses it
_DRIVE_QUOTA = (
    "too many users have viewed or downloaded this file",
    "quota exceeded",
    "download quota",
    "unusual traffic",
)
_DRIVE_DENIED = ("you need access", "request access", "accounts.google.com", "sign in")


def drive_url(file_id: str) -> str:
    """The download URL of a Google Drive file (the first request; see the module docstring)."""
    return f"{DRIVE_ENDPOINT}?{urllib.parse.urlencode({'id': file_id, 'export': 'download'})}"


def upstream_url(upstream: Upstream) -> str:
    mirror = os.environ.get("PCONV_UPSTREAM_MIRROR")
    if mirror:
        return f"{mirror.rstrip('/')}/{upstream.filename}"
    return drive_url(upstream.drive_id) if upstream.drive_id else upstream.url


class _DriveForm(HTMLParser):
    """The confirmation a Drive page asks for: its ``download-form`` (action and hidden
    fields), or the older page's ``uc-download-link``."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.link: str | None = None
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id") == "download-form":
            self.action, self._in_form = a.get("action", ""), True
        elif tag == "input" and self._in_form and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")
        elif tag == "a" and a.get("id") == "uc-download-link":
            self.link = a.get("href")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False

    def next_url(self, page_url: str) -> str | None:
        if self.action is not None:
            action = urllib.parse.urljoin(page_url, self.action)
            return f"{action}?{urllib.parse.urlencode(self.fields)}"
        return urllib.parse.urljoin(page_url, self.link) if self.link else None


def _page_error(url: str, status: int, page: str) -> ZooError:
    """One line for a web page where a file was expected: Drive's quota and refusal pages
    (and statuses) are told apart, anything else is a page, not the file."""
    text = page.lower()
    if status == 429 or any(s in text for s in _DRIVE_QUOTA):
        return ZooError(
            f"{url}: Google Drive refuses the download for now: the file's download quota is "
            "used up (too many downloads recently; it resets within 24 hours); try again later"
        )
    if status in (401, 403) or any(s in text for s in _DRIVE_DENIED):
        return ZooError(
            f"{url}: the server refuses the download (HTTP {status}: the file is not shared "
            "publicly, or was removed)"
        )
    if status == 404:
        return ZooError(f"{url}: no such file there (HTTP 404: removed, or a wrong address)")
    return ZooError(f"{url}: answered with a web page (HTTP {status}), not the file")


def _read_page(resp: IO[bytes]) -> str:
    """The start of a page's text ("" if even that cannot be read: the status still speaks)."""
    try:
        return resp.read(PAGE_BYTES).decode("utf-8", "replace")
    except OSError:
        return ""


def _is_page(resp: object) -> bool:
    headers = getattr(resp, "headers", None)
    kind = headers.get("Content-Type", "") if headers is not None else ""
    return kind.split(";")[0].strip().lower() in ("text/html", "application/xhtml+xml")


def _stream(resp: IO[bytes], dest: Path, url: str) -> str:
    """``resp``'s body into ``dest`` (atomically); its sha256."""
    digest = sha256()
    expected = resp.headers.get("Content-Length")  # type: ignore[attr-defined]
    total = 0
    with atomic_open(dest) as out:
        while chunk := resp.read(CHUNK):
            out.write(chunk)
            digest.update(chunk)
            total += len(chunk)
        if expected is not None and int(expected) != total:
            raise ZooError(f"{url}: download cut short ({total} of {expected} bytes)")
    return digest.hexdigest()


def _download(url: str, dest: Path, timeout: float = 60.0) -> str:
    """Stream ``url`` into ``dest`` (atomically), through Drive's confirmation page if it
    answers with one; returns the sha256 of what was written. Nothing is left on failure."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    first = url
    for _ in range(2):  # the file, or Drive's page, then the file
        request = urllib.request.Request(url, headers={"User-Agent": "pconv-zoo"})
        try:
            with contextlib.closing(opener.open(request, timeout=timeout)) as resp:
                if not _is_page(resp):
                    return _stream(resp, dest, first)
                page, page_url = _read_page(resp), resp.geturl()
        except urllib.error.HTTPError as exc:
            raise _page_error(first, exc.code, _read_page(exc)) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ZooError(f"{first}: download failed ({exc})") from None
        form = _DriveForm()
        form.feed(page)
        following = form.next_url(page_url)
        if following is None:
            raise _page_error(first, 200, page)
        url = following
    raise ZooError(f"{first}: Google Drive asked for its confirmation again; not the file")


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


def upstream_cached(upstream: Upstream) -> bool:
    """Whether the upstream file is in our cache already (a build then needs no network)."""
    return (upstream_cache() / upstream.filename).is_file()


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
    if (why := unreachable(url)) is not None:  # at once, not after the download's timeout
        raise ZooError(f"{url}: cannot be reached from here ({why})")
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
    up = entry.upstream
    by_hand = (
        f"download {up.filename} from {up.url} (see {up.homepage}) and run "
        f"`python -m zoo build {entry.name} --upstream-file PATH`"
    )
    if upstream_file is not None:
        source, digest = Path(upstream_file), check_upstream(Path(upstream_file), up)
    else:
        try:
            source, digest = fetch_upstream(up)
        except ZooError as exc:
            raise ZooError(f"{exc}; or {by_hand}") from None
    try:
        conversion = convert_file(source, layout=up.layout, resolution=entry.resolution)
    except ZooError as exc:
        if upstream_file is None:
            # Unpinned downloads (e.g. a web page instead of the file) must not stay cached as
            # if they were the upstream file.
            source.unlink(missing_ok=True)
            raise ZooError(
                f"{exc}. If {upstream_url(up)} cannot be downloaded automatically, {by_hand}"
            ) from None
        raise
    return write_folder(
        conversion.model, out_dir, entry=entry, conversion=conversion, upstream_sha256=digest
    )
