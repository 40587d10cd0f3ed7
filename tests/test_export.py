"""``pconv export --onnx``: one graph for any size, matching torch on real photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pconv import PConvUNet, UNetConfig, save_model
from pconv.cli import main
from pconv.export import export_onnx
from pconv.smooth import smooth_fill

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


def _run(path, image: torch.Tensor, mask: torch.Tensor) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": image.numpy(), "mask": mask.numpy()})


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
        outputs = _run(path, image, mask)
        known = mask.expand_as(image).numpy() < 0.5
        assert np.array_equal(outputs[0][known], image.numpy()[known])  # bit for bit
        with torch.no_grad():
            pred, gate = model.predict(image, 1 - mask)
        if prior == "none":
            np.testing.assert_allclose(outputs[0], _eager(model, image, mask), atol=1e-5)
            assert len(outputs) == 1
            continue
        # Gated: the graph gives the prediction and the gate; the documented blend with the
        # smooth fill is what pconv computes in eager mode.
        np.testing.assert_allclose(outputs[1], pred.clamp(0, 1).numpy(), atol=1e-5)
        np.testing.assert_allclose(outputs[2], gate.numpy(), atol=1e-5)
        smooth = smooth_fill(image, 1 - mask)
        gate_, pred_ = torch.from_numpy(outputs[2]), torch.from_numpy(outputs[1])
        blended = torch.where(mask > 0.5, gate_ * pred_ + (1 - gate_) * smooth, image)
        np.testing.assert_allclose(blended.numpy(), _eager(model, image, mask), atol=1e-5)


def test_cli_writes_a_graph_that_runs_and_refuses_bad_output_names(photos, tmp_path, capsys):
    torch.manual_seed(0)
    weights = save_model(
        PConvUNet(UNetConfig(depth=3, base_width=4)).eval(), tmp_path / "m.safetensors", {}
    )
    out = tmp_path / "m.onnx"
    assert main(["export", str(weights), "--onnx", str(out)]) == 0
    assert "multiples of 8" in capsys.readouterr().out
    image, mask = _photo_and_mask(photos, "chelsea", 40, 56)
    assert _run(out, image, mask)[0].shape == (1, 3, 40, 56)

    assert main(["export", str(weights), "--onnx", str(tmp_path / "m.txt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "must end in .onnx" in err
    assert main(["export", str(tmp_path / "missing.safetensors"), "--onnx", str(out)]) == 2
