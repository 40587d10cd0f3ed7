"""The package layout of docs/architecture.md: imports flow one way between the top-level
packages, lazy imports inside functions included.

    pconv  <-  zoo  <-  train, demo, nodes

and inside pconv, between the core and the network folders (``pconv/archs/<name>/``):

    core  <-  each network folder (never another one)
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


ARCHS = ROOT / "pconv" / "archs"


def _modules(path: Path) -> set[str]:
    """Full names of every absolute import in the file (``from pconv.archs import unet`` names
    ``pconv.archs.unet``), wherever it stands."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _network_of(module: str) -> str | None:
    """The network folder a module name lies in, if any."""
    parts = module.split(".")
    if parts[:2] == ["pconv", "archs"] and len(parts) > 2 and (ARCHS / parts[2]).is_dir():
        return parts[2]
    return None


def test_network_folders_import_the_core_and_never_each_other():
    """A network folder imports the core (the rest of pconv) and itself; the core imports no
    network folder (it finds them through pconv.archs' discovery), but pconv/__init__.py,
    which re-exports the public classes."""
    networks = sorted(p.name for p in ARCHS.iterdir() if (p / "__init__.py").is_file())
    assert {"unet", "deepgin", "gan_pconv"} <= set(networks)
    wrong = {}
    for path in sorted((ROOT / "pconv").rglob("*.py")):
        rel = path.relative_to(ROOT)
        home = rel.parts[2] if rel.parts[:2] == ("pconv", "archs") and len(rel.parts) > 3 else None
        reached = {n for n in map(_network_of, _modules(path)) if n is not None} - {home}
        if home is None and rel == Path("pconv/__init__.py"):
            continue
        if reached:
            wrong[str(rel)] = sorted(reached)
    assert not wrong, f"network folders imported from outside themselves: {wrong}"


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
