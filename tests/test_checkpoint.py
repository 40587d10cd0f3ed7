"""Our safetensors weights format: round trip, and every kind of bad file refused clearly."""

from __future__ import annotations

import pickle

import pytest
import torch

import pconv
from pconv import CheckpointError


def _model(**overrides) -> pconv.PConvUNet:
    torch.manual_seed(0)
    return pconv.PConvUNet(pconv.UNetConfig(**{"depth": 2, "base_width": 4, **overrides}))


def test_round_trip_with_config_and_fp16_storage(tmp_path):
    model = _model(base_width=6, input_mean=(0.4, 0.5, 0.6), resolution=96)
    path = pconv.save_model(model, tmp_path / "m.safetensors", {"licence": "test"}, torch.float16)
    loaded, meta = pconv.load_weights(path)
    assert loaded.config == model.config and meta["licence"] == "test"
    for name, tensor in model.state_dict().items():
        expected = tensor.half().float() if tensor.is_floating_point() else tensor
        assert torch.equal(loaded.state_dict()[name], expected), name


@pytest.mark.parametrize("prefix", [b"\x80", b"PK"])
def test_header_lengths_that_look_like_a_pickle_still_load(tmp_path, prefix):
    """A safetensors file starts with its header length: any bytes, pickle's 0x80 or zip's PK
    included. Find metadata that makes the file start that way; it must load all the same."""
    model = _model()
    base = pconv.save_model(model, tmp_path / "m.safetensors", {"note": ""})
    length = int.from_bytes(base.read_bytes()[:8], "little")
    # each metadata character adds one byte to the (8-byte aligned) header length
    span = 1 << (8 * len(prefix))
    aim = (int.from_bytes(prefix, "little") - length) % span
    for n in range(max(0, aim - 16), aim + 16):
        path = pconv.save_model(model, tmp_path / "m.safetensors", {"note": "x" * n})
        if path.read_bytes().startswith(prefix):
            break
    else:
        pytest.fail(f"no header length starting with {prefix!r} found")
    assert pconv.load_model(path).config == model.config


def test_pickles_are_refused(tmp_path):
    zipped = tmp_path / "model.pth"
    torch.save(_model().state_dict(), zipped)
    raw = tmp_path / "model.pkl"
    raw.write_bytes(pickle.dumps({"weights": [1, 2, 3]}, protocol=4))
    for path in (zipped, raw):
        with pytest.raises(CheckpointError, match="pickles are never loaded"):
            pconv.load_model(path)


def test_truncated_foreign_and_mismatched_files(tmp_path):
    path = pconv.save_model(_model(), tmp_path / "m.safetensors")
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=r"truncated or corrupt|not a readable"):
        pconv.load_model(cut)
    text = tmp_path / "notes.safetensors"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        pconv.load_model(text)
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="not a pconv model"):
        pconv.load_model(foreign)
    wrong = tmp_path / "wrong.safetensors"
    state = _model().state_dict()
    state["encoders.0.conv.weight"] = torch.zeros(1)
    save_file(
        {k: v.contiguous() for k, v in state.items()}, wrong, metadata=pconv.read_metadata(path)
    )
    with pytest.raises(CheckpointError, match="do not fit the architecture"):
        pconv.load_model(wrong)
