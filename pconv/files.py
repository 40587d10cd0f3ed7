"""Writing files and folders so that a crash never leaves half of one, and hashing files.

Every writer here works the same way: the content goes to a hidden temporary sibling
(``.NAME.<random>.tmp``, same folder, so the rename cannot cross file systems), is flushed and
``fsync``-ed, then renamed over ``NAME`` in one step, and the folder is ``fsync``-ed so the rename
itself survives a power cut. Until the rename, ``NAME`` is the previous version (or absent);
after it, the new one: a reader, a crash, a ``SIGKILL``, a full disk or a ``KeyboardInterrupt``
never see a broken file. On any exception the temporary is removed; only a process killed
outright leaves one behind, which :func:`remove_temporaries` clears.

Permissions are those a plain ``open()`` would give (``0o666`` less the umask), not the
owner-only mode ``tempfile`` uses: outputs are meant to be shared like any other file.

The API, from the most to the least convenient:

* :func:`write_bytes` - bytes in memory;
* :func:`atomic_open` - an open file to stream into (downloads, CSV writers);
* :func:`atomic_path` - a temporary path, for writers that want a file name
  (``safetensors.torch.save_file``);
* :func:`atomic_folder` - a folder built in full, then swapped in;
* :func:`sha256_file` - the hash of a file, read in chunks;
* :func:`file_key` - what identifies a file, so that a writer can tell that its output is one
  of its inputs under another name.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import secrets
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

TEMP_SUFFIX = ".tmp"
_CHUNK = 1 << 20


def current_umask() -> int:
    """The process umask, read without changing it where Linux tells it (/proc/self/status):
    setting it to read it back would briefly give files other threads create (the demo's
    server threads) the wrong mode."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0)
    os.umask(umask)
    return umask


def fsync_folder(folder: str | os.PathLike[str]) -> None:
    """Make renames and new entries in ``folder`` durable; a no-op where the platform cannot
    open a folder (Windows), since there the rename is already as durable as it gets."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: The longest file name most file systems take, in bytes (``NAME_MAX``), where the system
#: does not say (Windows).
NAME_MAX = 255


def name_max(folder: str | os.PathLike[str]) -> int:
    """The longest file name, in bytes, that the file system holding ``folder`` (or its nearest
    existing ancestor) takes: 255 on most, 143 on eCryptfs."""
    existing = os.path.abspath(folder)
    while not os.path.isdir(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    try:
        return int(os.pathconf(existing, "PC_NAME_MAX"))
    except (AttributeError, OSError, ValueError):  # no pathconf (Windows), or no answer
        return NAME_MAX


def temporary_sibling(path: Path) -> Path:
    """A hidden, unused name beside ``path`` for its temporary (``.NAME.<random>.tmp``).

    ``NAME`` is cut short where the whole would be longer than the file system takes, so that
    any name that can be written can be written atomically (a 250-byte name included)."""
    tail = f".{secrets.token_hex(4)}{TEMP_SUFFIX}"
    room = name_max(path.parent) - 1 - len(tail)
    name = path.name
    while len(os.fsencode(name)) > room:  # whole characters off the end, never half of one
        name = name[:-1]
    return path.with_name(f".{name}{tail}")


def _commit(tmp: Path, path: Path, durable: bool) -> None:
    """``tmp`` (finished, closed) becomes ``path`` with ordinary permissions, in one rename."""
    os.chmod(tmp, 0o666 & ~current_umask())
    if durable:
        _fsync_file(tmp)
    os.replace(tmp, path)
    if durable:
        fsync_folder(path.parent)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, durable: bool = True) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to; it replaces ``path`` only if the
    block finishes. For writers that take a file name (``safetensors``' ``save_file``).

    ``durable=False`` skips the two ``fsync`` calls: for outputs that can be made again and are
    written by the thousand (nothing here needs it today).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    try:
        yield tmp
        _commit(tmp, path, durable)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str],
    mode: str = "wb",
    *,
    durable: bool = True,
    **open_kwargs: Any,
) -> Iterator[IO[Any]]:
    """An open file (``"wb"`` or text ``"w"``; ``open_kwargs`` go to :func:`open`) whose
    content replaces ``path`` when the block finishes, and is discarded if it raises."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open writes a new file: mode 'wb' or 'w', not {mode!r}")
    with atomic_path(path, durable=durable) as tmp, open(tmp, mode, **open_kwargs) as fh:
        yield fh
        fh.flush()


def write_bytes(path: str | os.PathLike[str], data: bytes, *, durable: bool = True) -> Path:
    """``data`` becomes the content of ``path``, all of it or none of it."""
    path = Path(path)
    with atomic_open(path, durable=durable) as fh:
        fh.write(data)
    return path


def write_text(
    path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8", durable: bool = True
) -> Path:
    """``text`` becomes the content of ``path`` (``encoding``), all of it or none of it."""
    return write_bytes(path, text.encode(encoding), durable=durable)


def _fsync_tree(folder: Path) -> None:
    for root, _dirs, files in os.walk(folder):
        for name in files:
            _fsync_file(Path(root, name))
        fsync_folder(root)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike[str], *, durable: bool = True) -> Iterator[Path]:
    """A temporary sibling folder that replaces the folder ``path`` only if the block succeeds.

    The old folder (if any) is renamed aside, the new one renamed in, then the old one removed:
    at every moment ``path`` is the complete old folder, the complete new one, or absent with
    the old one beside it under a hidden name (only if the process is killed in between two
    renames); never a mix of both.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    tmp.mkdir()  # mkdir respects the umask, unlike mkdtemp
    try:
        yield tmp
        if durable:
            _fsync_tree(tmp)
        old = None
        if path.exists():
            old = temporary_sibling(path)
            os.replace(path, old)
        try:
            os.replace(tmp, path)
        except BaseException:
            if old is not None:
                os.replace(old, path)
            raise
        if durable:
            fsync_folder(path.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_temporaries(folder: str | os.PathLike[str], name: str = "*") -> int:
    """Delete what killed writers left in ``folder`` for files named like ``name`` (a glob);
    returns how many. Call it only when no other writer is busy in that folder."""
    folder = Path(folder)
    stale = list(folder.glob(f".{name}.*{TEMP_SUFFIX}")) if folder.is_dir() else []
    for item in stale:
        if item.is_dir():
            shutil.rmtree(item, ignore_errors=True)
        else:
            item.unlink(missing_ok=True)
    return len(stale)


def file_key(path: str | os.PathLike[str]) -> tuple[object, ...]:
    """What identifies the file at ``path``: equal keys mean one file.

    Where the file exists, its device and inode, as :func:`os.path.samefile` compares them: a
    symlink, a ``..`` in the path, a hard link and another spelling on a case-insensitive file
    system (``Photo.PNG`` for ``photo.png``) all give the one file's key, whatever the names
    look like. A path that does not exist yet has no inode: its resolved, case-normalised path
    stands for it.
    """
    try:
        st = os.stat(path)
    except (OSError, ValueError):  # absent, a dangling link, a name the system refuses
        return ("path", os.path.normcase(os.path.realpath(path)))
    return ("file", st.st_dev, st.st_ino)


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether ``a`` and ``b`` name one file (see :func:`file_key`)."""
    return file_key(a) == file_key(b)


def package_file(package: str, parts: Sequence[str]) -> Path | None:
    """A data file inside an installed package (``parts`` below its folder), found without
    importing the package (some import what they do not need, or would download); None where
    the package or the file is not there."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    return path if path.is_file() else None


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file's content, read in 1 MiB chunks (weights run to gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
