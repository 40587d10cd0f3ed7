"""The networks, one folder each (spandrel's layout): ``pconv/archs/<name>/`` holds the module
and its config, its loss, its training recipe and, in its ``__init__.py``, its registration in
:mod:`pconv.architectures`. Importing this package imports every folder in it, so each network
registers itself; adding one is adding a folder.

A network folder imports the core (the rest of ``pconv``), never another network folder
(``tests/test_layout.py``). Its training recipe (``recipe.py``) is imported by
:mod:`pconv.training.recipes`, not here, so that ``import pconv`` stays free of the trainer.
"""

from __future__ import annotations

import importlib
import pkgutil

#: The network folders found here, in name order (``pconv.archs.<name>``).
NETWORKS: tuple[str, ...] = tuple(
    info.name for info in pkgutil.iter_modules(__path__) if info.ispkg
)

for _name in NETWORKS:
    importlib.import_module(f"{__name__}.{_name}")
