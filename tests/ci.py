"""Whether the tests run in CI, where nothing they need may be missing (skips become failures)."""

from __future__ import annotations

import os


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
