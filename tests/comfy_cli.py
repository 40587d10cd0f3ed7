"""comfy-cli (PyPI ``comfy-cli``) for the tests: the Comfy Registry's own validation and the
node archive it would publish. It lives in a venv of its own (``tests/install-test-deps.sh``
makes ``.venv-comfy-cli/``), or wherever ``$COMFY_CLI`` points; without it the tests that need
it skip locally and fail in CI."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ci import missing

REPO = Path(__file__).resolve().parents[1]


def comfy_cli() -> Path:
    """comfy-cli's ``comfy`` (its own venv, from tests/install-test-deps.sh, or $COMFY_CLI)."""
    candidates = [os.environ.get("COMFY_CLI"), REPO / ".venv-comfy-cli" / "bin" / "comfy"]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    reason = "comfy-cli is not installed: bash tests/install-test-deps.sh (or set COMFY_CLI)"
    missing(reason)


def _comfy(cli: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HOME=str(cwd.parent / "home"), COLUMNS="200", NO_COLOR="1")
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        [str(cli), "--skip-prompt", "--no-enable-telemetry", "node", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def checkout(target: Path) -> Path:
    """The files git would publish (tracked, or new and not ignored), in a git repository of
    their own: what ``comfy node pack``/``publish`` see in a clean clone of this tree."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q"], cwd=target, check=True)
    subprocess.run([*git, "add", "-A"], cwd=target, check=True)
    subprocess.run([*git, "commit", "-qm", "snapshot"], cwd=target, check=True)
    return target


def node_archive(tmp_path: Path) -> Path:
    """``comfy node pack``: the archive the Registry would serve, from this tree."""
    cli = comfy_cli()
    tree = checkout(tmp_path / "tree")
    done = _comfy(cli, tree, "pack")
    assert done.returncode == 0, done.stdout + done.stderr
    return tree / "node.zip"
