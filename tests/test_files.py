"""pconv.files: all of a file or folder, or none of it, whatever happens while it is written."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pconv.files
from pconv.files import (
    atomic_folder,
    atomic_open,
    atomic_path,
    remove_temporaries,
    sha256_file,
    write_bytes,
    write_text,
)


class Boom(Exception):
    pass


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("error", [Boom, KeyboardInterrupt])
@pytest.mark.parametrize("existing", [True, False])
def test_a_writer_that_raises_leaves_the_old_file_and_no_temporary(tmp_path, error, existing):
    target = tmp_path / "out.bin"
    if existing:
        target.write_bytes(b"old content")
    with pytest.raises(error), atomic_open(target) as fh:
        fh.write(b"half of the new")
        fh.flush()
        raise error
    assert (target.read_bytes() == b"old content") if existing else not target.exists()
    assert _leftovers(tmp_path) == []


def test_a_path_writer_that_raises_leaves_nothing(tmp_path):
    target = tmp_path / "model.safetensors"
    with pytest.raises(Boom), atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise Boom
    assert list(tmp_path.iterdir()) == []


def test_writers_replace_the_content_whole(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    write_text(target, "first")
    write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    with atomic_open(target, "w", newline="", encoding="utf-8") as fh:
        fh.write("third\n")
    assert target.read_text() == "third\n"
    with atomic_path(target) as tmp:
        tmp.write_text("fourth")
        assert target.read_text() == "third\n"  # not replaced before the block ends
    assert target.read_text() == "fourth"
    assert _leftovers(target.parent) == []


def test_files_get_the_permissions_open_would_give(tmp_path):
    old = os.umask(0o027)
    try:
        write_bytes(tmp_path / "a", b"x")
        with atomic_folder(tmp_path / "folder") as staged:
            (staged / "b").write_bytes(b"y")
    finally:
        os.umask(old)
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "folder").stat().st_mode & 0o777 == 0o750


@pytest.mark.parametrize("error", [Boom, KeyboardInterrupt])
def test_a_folder_that_fails_to_build_leaves_the_old_one(tmp_path, error):
    final = tmp_path / "model"
    with atomic_folder(final) as staged:
        (staged / "weights").write_bytes(b"v1")
    with pytest.raises(error), atomic_folder(final) as staged:
        (staged / "weights").write_bytes(b"v2")
        (staged / "card").write_text("half")
        raise error
    assert sorted(p.name for p in final.iterdir()) == ["weights"]
    assert (final / "weights").read_bytes() == b"v1"
    assert _leftovers(tmp_path) == []
    with atomic_folder(final) as staged:  # and a good build replaces it entirely
        (staged / "card").write_text("v3")
    assert sorted(p.name for p in final.iterdir()) == ["card"]
    assert _leftovers(tmp_path) == []


def test_remove_temporaries_clears_what_a_killed_writer_left(tmp_path):
    (tmp_path / ".step-1.safetensors.abcd1234.tmp").write_bytes(b"half")
    (tmp_path / ".model.0000ffff.tmp").mkdir()
    (tmp_path / "step-1.safetensors").write_bytes(b"whole")
    assert remove_temporaries(tmp_path, "step-*") == 1
    assert remove_temporaries(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-1.safetensors"]


def test_sha256_file_matches_hashlib(tmp_path):
    data = os.urandom(3 << 20) + b"tail"  # more than one chunk
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()


_CHILD = """
import importlib.util, sys, time
from pathlib import Path

# pconv/files.py itself, without pconv/__init__ (which imports torch: seconds per child)
spec = importlib.util.spec_from_file_location("pconv_files", sys.argv[4])
files = importlib.util.module_from_spec(spec)
spec.loader.exec_module(files)
atomic_folder, atomic_open = files.atomic_folder, files.atomic_open

target, generation, kind = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
block = bytes([generation]) * (1 << 20)

def write(fh):
    for i in range(64):
        fh.write(block)
        fh.flush()
        if i == 8:
            print("writing", flush=True)
            time.sleep(60)  # the parent kills us here

if kind == "file":
    with atomic_open(target) as fh:
        write(fh)
else:
    with atomic_folder(target) as staged:
        with open(staged / "weights", "wb") as fh:
            write(fh)
"""

SIZE = 64 << 20


def _write_in_child(target: Path, generation: int, kind: str, kill: bool) -> None:
    script = _CHILD if kill else _CHILD.replace("time.sleep(60)", "pass")
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(target), str(generation), kind, pconv.files.__file__],
        stdout=subprocess.PIPE,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == b"writing"
    if kill:
        time.sleep(0.1)
        os.kill(child.pid, signal.SIGKILL)
    assert child.wait(timeout=120) == (-signal.SIGKILL if kill else 0)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["file", "folder"])
def test_sigkill_while_writing_leaves_the_previous_version_or_none(tmp_path, kind):
    """A real child process, killed with SIGKILL in the middle of a 64 MiB write."""
    target = tmp_path / "big"
    weights = target if kind == "file" else target / "weights"
    _write_in_child(target, 1, kind, kill=True)
    assert not target.exists()  # no previous version: none, never a part of one
    assert remove_temporaries(tmp_path) == 1

    _write_in_child(target, 2, kind, kill=False)
    assert weights.read_bytes() == bytes([2]) * SIZE

    _write_in_child(target, 3, kind, kill=True)
    data = weights.read_bytes()
    assert len(data) == SIZE and data == bytes([2]) * SIZE  # the previous version, whole
    assert remove_temporaries(tmp_path) == 1  # the killed writer's temporary, only that
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big"]
