"""The one way pconv reaches the Hugging Face Hub, with one set of rules for every caller.

The zoo (model weights) and the perceptual loss (the VGG16 trunk) both come through here, so
they agree on what "offline" means and where the cache is. The rules, all read from the
environment **at each call** (``huggingface_hub`` reads its own copies once, at import, so a
process that changes them later would otherwise be half-obeyed):

* **Offline** when ``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE`` is ``1``, ``on``, ``yes`` or
  ``true`` (any case). Offline, only the cache is read and no request is made; callers may
  also ask for it per call (``offline_only=True``). Setting it later in a process is obeyed
  at once; *lifting* it is not entirely: ``huggingface_hub``, imported while it was set, keeps
  refusing requests by its own flag (``huggingface_hub.constants.HF_HUB_OFFLINE``, read once).
  pconv does not overwrite another library's setting; the tests' ``hub_env`` fixture does.
* **Cache**: ``HF_HUB_CACHE``, else ``HUGGINGFACE_HUB_CACHE``, else ``$HF_HOME/hub``, else
  ``huggingface_hub``'s default (``~/.cache/huggingface/hub``). An explicit ``cache_dir`` wins.
* **Endpoint**: ``HF_ENDPOINT`` (a mirror, or the tests' loopback Hub), else huggingface.co.
* **Token**: ``huggingface_hub``'s own (``HF_TOKEN``, ``hf auth login``); nothing here.
* **No route**: before a request, one TCP connection to the endpoint (or to the proxy that
  reaches it) tells whether the Hub can be reached at all. Where it cannot (no network, a
  failed name look-up, a refused port), only the cache is read and the failure is one line at
  once, not half a minute of ``huggingface_hub``'s retries; the verdict is kept for
  :data:`REMEMBER_S`, so that every other file asked for meanwhile fails at once too.
"""

from __future__ import annotations

import inspect
import os
import socket
import time
import urllib.parse
import urllib.request
from pathlib import Path

from pconv.errors import PConvError

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
_TRUE = {"1", "ON", "YES", "TRUE"}
#: The public Hub, where ``HF_ENDPOINT`` names no other.
PUBLIC_ENDPOINT = "https://huggingface.co"
#: Seconds to wait for the TCP connection that tells whether a host can be reached.
CONNECT_TIMEOUT = 3.0
#: Seconds an unreachable host is taken to stay so (a laptop may come back online).
REMEMBER_S = 60.0
_UNREACHABLE: dict[str, tuple[float, str]] = {}  # "host:port" -> (when, why)


class HubUnavailable(PConvError):
    """A file the Hub could not provide: not published, unreachable, or offline and not cached.

    ``path`` names the file (``repo/filename@revision``), ``reason`` says why, in one line.
    """


class HubUnreachable(HubUnavailable):
    """The file is not in the cache and the Hub cannot be reached from here at all (no
    network, or a firewall): asking again, or for another file, will not help."""


def offline() -> bool:
    """Whether the environment asks for no network access to the Hub (now, not at import)."""
    return any(os.environ.get(name, "").strip().upper() in _TRUE for name in OFFLINE_VARIABLES)


def cache_dir() -> Path | None:
    """The Hub cache the environment names now; None for ``huggingface_hub``'s default."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("HF_HOME")
    return Path(home).expanduser() / "hub" if home else None


def endpoint() -> str | None:
    """``HF_ENDPOINT`` without its trailing slash, or None for the public Hub."""
    value = os.environ.get("HF_ENDPOINT")
    return value.rstrip("/") if value else None


def unreachable(url: str) -> str | None:
    """Why the host of ``url`` cannot be reached from here, in a few words, or None if it can.

    One TCP connection with a :data:`CONNECT_TIMEOUT`, to the proxy that the environment names
    for the URL's scheme where there is one (``HTTPS_PROXY``, ``NO_PROXY``): what a request
    would connect to first. It tells "no route" (no network, no name resolution, a refused
    port, a firewall that drops) from everything else, which only a request can tell. An
    unreachable host is remembered for :data:`REMEMBER_S`.
    """
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        via = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = via.hostname or host, via.port or 80
    key = f"{host}:{port}"
    seen = _UNREACHABLE.get(key)
    if seen is not None and time.monotonic() - seen[0] < REMEMBER_S:
        return seen[1]
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:  # refused, no route, name not resolved, timed out
        why = f"{key}: {exc.strerror or exc or type(exc).__name__}"
        _UNREACHABLE[key] = (time.monotonic(), why)
        return why
    _UNREACHABLE.pop(key, None)
    return None


def _summary(exc: BaseException) -> str:
    """An exception as one line: huggingface_hub's messages run to several paragraphs."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _label(repo_id: str, filename: str, revision: str | None) -> str:
    return f"{repo_id}/{filename}@{revision or 'main'}"


def cached_file(
    repo_id: str,
    filename: str,
    revision: str | None = None,
    *,
    cache: str | os.PathLike[str] | None = None,
) -> Path | None:
    """The file if the Hub cache already holds it, else None; never touches the network."""
    try:
        return download(repo_id, filename, revision, cache=cache, offline_only=True)
    except HubUnavailable:  # any failure of a cache look-up means "not in the cache"
        return None


def download(
    repo_id: str,
    filename: str,
    revision: str | None = None,
    *,
    cache: str | os.PathLike[str] | None = None,
    offline_only: bool | None = None,
    force: bool = False,
    progress: type | None = None,
) -> Path:
    """The file, from the cache or downloaded, by the rules above; :class:`HubUnavailable`
    (with the client's reason in one line) when it cannot be had.

    ``offline_only``: None follows the environment; True never makes a request; False may
    (unless the environment is offline). ``force`` downloads again even if cached.
    ``progress``: a ``tqdm`` subclass for the download's progress bar (the ComfyUI nodes pass
    one that drives ComfyUI's own bar); ignored by a client too old to take one.
    """
    from huggingface_hub import hf_hub_download

    import pconv

    folder = cache if cache is not None else cache_dir()
    local_only = offline() or bool(offline_only)
    kwargs: dict[str, object] = {}
    if (url := endpoint()) is not None:
        kwargs["endpoint"] = url
    if progress is not None and "tqdm_class" in inspect.signature(hf_hub_download).parameters:
        kwargs["tqdm_class"] = progress
    no_route = None if local_only else unreachable(url or PUBLIC_ENDPOINT)
    if no_route is not None:  # what the cache holds, without the client's retries
        local_only = True
    try:
        return Path(
            hf_hub_download(
                repo_id,
                filename,
                revision=revision,
                cache_dir=str(folder) if folder is not None else None,
                local_files_only=local_only,
                force_download=force,
                library_name="pconv",
                library_version=pconv.__version__,
                **kwargs,
            )
        )
    except Exception as exc:  # every way the Hub can fail: not found, HTTP, network, offline
        label = _label(repo_id, filename, revision)
        if no_route is not None:
            reason = f"the Hub cannot be reached ({no_route}) and the file is not in the cache"
            raise HubUnreachable(reason, path=label) from None
        raise HubUnavailable(_summary(exc), path=label) from None
