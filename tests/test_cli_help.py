"""Help texts read as plain text: no argparse escapes (``%%``) or RST markup left in them."""

from __future__ import annotations

import argparse

import pytest

from pconv.cli import build_parser as pconv_parser
from zoo.cli import build_parser as zoo_parser

PCONV_COMMANDS = ("inpaint", "masks", "eval", "export")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _helps() -> dict[str, str]:
    pconv, zoo = pconv_parser(), zoo_parser()
    helps = {"pconv": pconv.format_help(), "python -m zoo": zoo.format_help()}
    subs = _subparsers(pconv)
    helps |= {f"pconv {name}": subs[name].format_help() for name in PCONV_COMMANDS}
    helps |= {f"zoo {name}": p.format_help() for name, p in _subparsers(zoo).items()}
    return helps


@pytest.mark.parametrize("command", sorted(_helps()))
def test_help_has_no_escapes_or_markup(command):
    text = _helps()[command]
    assert "%%" not in text and "``" not in text and ":func:" not in text, text
