"""The package layout of docs/architecture.md: imports flow one way between the top-level
packages, lazy imports inside functions included.

    pconv  <-  zoo  <-  train, demo, nodes
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: what each top-level package may import from this repository
ALLOWED = {
    "pconv": {"pconv"},
    "zoo": {"pconv", "zoo"},
    "train": {"pconv", "zoo", "train"},
    "demo": {"pconv", "zoo", "demo"},
    "nodes": {"pconv", "zoo", "nodes"},
}


def _imports(path: Path) -> set[str]:
    """Top-level names of every absolute import in the file, wherever it stands."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_flow_one_way(package):
    ours = set(ALLOWED)
    wrong = {
        str(path.relative_to(ROOT)): sorted((_imports(path) & ours) - ALLOWED[package])
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    wrong = {k: v for k, v in wrong.items() if v}
    assert not wrong, f"{package} may import only {sorted(ALLOWED[package])}: {wrong}"


def test_the_zoo_reaches_pconv_through_its_entry_point():
    """pconv.load_model resolves zoo names without importing the zoo: the zoo declares itself
    as a model source in the package metadata."""
    from importlib.metadata import entry_points

    import pconv.loader

    sources = entry_points(group=pconv.loader.SOURCES_GROUP)
    assert [ep.value for ep in sources] == ["zoo:resolve"]
    assert pconv.loader.resolve_weights("default").name == "default.safetensors"


def test_only_the_model_source_in_use_is_imported(monkeypatch):
    """Another package declaring the group (sorted after ours) is never imported: a broken
    or unwanted source cannot run code in a process that loads our models."""
    from importlib.metadata import EntryPoint, entry_points

    import pconv.loader

    ours = list(entry_points(group=pconv.loader.SOURCES_GROUP))
    other = EntryPoint("zzz-other", "no_such_module_here:resolve", pconv.loader.SOURCES_GROUP)
    monkeypatch.setattr(pconv.loader, "entry_points", lambda group: [other, *ours])
    assert pconv.loader.resolve_weights("default").name == "default.safetensors"
