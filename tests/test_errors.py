"""pconv.errors: errors carry their parts, read as one line, and front ends add their flags."""

from __future__ import annotations

import pickle

import pytest

from pconv.cli import FLAGS
from pconv.errors import CheckpointError, InputError, PConvError
from pconv.io import load_image


def test_fields_and_one_line(tmp_path):
    with pytest.raises(InputError) as info:
        load_image(tmp_path / "absent.png")
    err = info.value
    assert err.path == tmp_path / "absent.png" and err.reason == "no such file"
    assert str(err) == f"{tmp_path / 'absent.png'}: no such file"
    assert str(CheckpointError("line one\nline two")) == "line one line two"


def test_the_fix_is_a_python_argument_that_a_cli_renders_as_its_flag():
    err = InputError("mask is 2x2 but the image is 4x4", fix="resize_mask_to_image=True")
    assert str(err) == "mask is 2x2 but the image is 4x4 (pass resize_mask_to_image=True)"
    assert err.describe(FLAGS) == "mask is 2x2 but the image is 4x4 (pass --resize-mask)"
    assert PConvError("plain").describe(FLAGS) == "plain"


def test_errors_survive_pickling_as_their_message():
    """multiprocessing pickles an exception to send it back: its message must survive."""
    err = pickle.loads(pickle.dumps(InputError("no such file", path="a.png")))
    assert str(err) == "a.png: no such file"
