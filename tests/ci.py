"""Whether the tests run in CI, where nothing they need may be missing (skips become failures)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(reason: str, ci_note: str = "") -> NoReturn:
    """Something a test needs is absent: skip with ``reason`` here; in CI, where nothing may be
    missing, fail with ``reason`` and ``ci_note``."""
    if in_ci():
        pytest.fail(reason + ci_note, pytrace=False)
    pytest.skip(reason)
