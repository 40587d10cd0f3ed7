"""``pconv export --onnx``: one graph for any size, matching torch on real photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pconv import PConvUNet, UNetConfig, save_model
from pconv.cli import main
from pconv.export import FillGraph, export_onnx

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
ort = pytest.importorskip("onnxruntime")

pytestmark = pytest.mark.slow  # an export traces the whole network: tens of seconds


def _photo_and_mask(photos, name: str, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    image = torch.from_numpy(photos[name][:h, :w].copy()).permute(2, 0, 1)[None].float() / 255
    mask = torch.zeros(1, 1, h, w)
    mask[..., h // 4 : h // 2, w // 5 : w // 2] = 1  # 1 = fill
    mask[..., -6:, -w // 3 :] = 1  # touching the edge
    return image, mask


def _run(path, image: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": image.numpy(), "mask": mask.numpy()})[0]


def _eager(model, image: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """What pconv computes in eager mode: the model, composited into the photo."""
    with torch.no_grad():
        out = model(image, 1 - mask).clamp(0, 1)
    return torch.where(mask > 0.5, out, image).numpy()


@pytest.mark.parametrize("prior", ["none", "smooth"])
def test_onnx_matches_torch_on_photos_at_several_sizes(photos, tmp_path, prior):
    torch.manual_seed(0)
    model = PConvUNet(UNetConfig(depth=4, base_width=8, prior=prior)).eval()
    path = export_onnx(model, tmp_path / "model.onnx")
    for name, (h, w) in {"astronaut": (64, 96), "coffee": (112, 48)}.items():
        image, mask = _photo_and_mask(photos, name, h, w)
        got = _run(path, image, mask)
        with torch.no_grad():
            graph = FillGraph(model)(image, mask).numpy()
        np.testing.assert_allclose(got, graph, atol=1e-5)  # the graph is what torch traced
        known = mask.expand_as(image).numpy() < 0.5
        assert np.array_equal(got[known], image.numpy()[known])  # bit for bit
        # Against eager pconv: the same network; a gated model's fill differs only by the
        # solver's coarsest level (fixed in the graph), far below one 8-bit level on average.
        eager = _eager(model, image, mask)
        gap = np.abs(got - eager)[~known]
        assert gap.mean() < (0.25 if prior == "smooth" else 1e-4) / 255, gap.mean() * 255
        assert gap.max() < (4.0 if prior == "smooth" else 1e-3) / 255, gap.max() * 255


def test_cli_writes_a_graph_that_runs_and_refuses_bad_output_names(photos, tmp_path, capsys):
    torch.manual_seed(0)
    weights = save_model(
        PConvUNet(UNetConfig(depth=3, base_width=4)).eval(), tmp_path / "m.safetensors", {}
    )
    out = tmp_path / "m.onnx"
    assert main(["export", str(weights), "--onnx", str(out)]) == 0
    assert "multiples of 8" in capsys.readouterr().out
    image, mask = _photo_and_mask(photos, "chelsea", 40, 56)
    assert _run(out, image, mask).shape == (1, 3, 40, 56)

    assert main(["export", str(weights), "--onnx", str(tmp_path / "m.txt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "must end in .onnx" in err
    assert main(["export", str(tmp_path / "missing.safetensors"), "--onnx", str(out)]) == 2
