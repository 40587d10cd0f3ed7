"""How a training setting is declared: :func:`setting`, a dataclass field with its
documentation, and the help sections it is listed under.

:class:`~pconv.training.config.TrainConfig` declares the settings every network shares this
way; a network's recipe (``pconv.archs.<name>.recipe``) declares its own the same way, and the
config type gathers both, so the command line, the TOML keys and the checks come from one
declaration per setting.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any

RUN, MODEL, SCHEDULE, LOSS = "run", "model (from the preset unless given)", "schedule", "loss"
ADVERSARIAL = "adversarial training"
MASKS, DATA, HARDWARE, BOOKS = "masks", "data", "hardware", "logging and checkpoints"


def setting(
    default: Any,
    help: str,
    *,
    group: str,
    unset: str | None = None,
    metavar: str | None = None,
    choices: tuple[str, ...] | None = None,
    short: str | None = None,
    type: str | None = None,
) -> Any:
    """A setting with its documentation: the one place of its default and its help text,
    from which the command line is generated (``train.cli``).

    ``unset``: what a ``None`` (or empty) default means, for the help ("the preset's").
    ``group``: the help section. ``choices``, ``metavar``, ``short``: as in argparse.
    ``type``: the annotation as text (``"int | None"``), for a recipe's settings, which are
    not declared in a class body.
    """
    meta = {
        "help": help,
        "group": group,
        "unset": unset,
        "metavar": metavar,
        "choices": choices,
        "short": short,
        "type": type,
    }
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)
