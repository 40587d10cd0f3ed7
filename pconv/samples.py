"""The sample photos that ship with pconv: the demo's examples, the README's first command, and
the real photos a zoo conversion is measured on.

They live in the package (``pconv/examples/``, licences in its ``LICENSE.md``: CC0 and public
domain) so that every front end and the zoo find the same files in a wheel as in a checkout.
"""

from __future__ import annotations

from pathlib import Path

EXAMPLES = Path(__file__).parent / "examples"


def example_photos() -> list[Path]:
    """The sample photos (JPEG), sorted by name."""
    return sorted(EXAMPLES.glob("*.jpg"))
