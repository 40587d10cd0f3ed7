"""``pconv.inpaint(ensemble=True)``: DeepGIN's test-time average over five views of the input."""

from __future__ import annotations

import torch
from torch import Tensor, nn

#: ``inpaint(ensemble=True)``'s views of the photo, as DeepGIN's ``test_ensemble.py`` (rlct1/gin)
#: takes them: its loops read each sub-image in transposed (``[j, i]``), then it runs that turned
#: by 0, 90, 180 and 270 degrees counter-clockwise, and flipped left-right. Each is
#: ``(transpose, quarter turns, flip)``, applied in that order.
ENSEMBLE_VIEWS = ((True, 0, False), (True, 1, False), (True, 2, False), (True, 3, False),
                  (True, 0, True))  # fmt: skip


class ViewAverage(nn.Module):
    """``module`` on each of :data:`ENSEMBLE_VIEWS` of its input, every result turned back and
    averaged (each clamped to [0, 1] first, as the release saves each as an image). Any
    architecture: :func:`pconv.architectures.unwrap` finds the model in ``.module``."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    @staticmethod
    def _turn(x: Tensor, view: tuple[bool, int, bool], back: bool = False) -> Tensor:
        transpose, turns, flip = view
        if not back:
            x = x.transpose(-2, -1) if transpose else x
            x = torch.rot90(x, turns, dims=(-2, -1))
            return x.flip(-1) if flip else x
        x = x.flip(-1) if flip else x
        x = torch.rot90(x, -turns, dims=(-2, -1))
        return x.transpose(-2, -1) if transpose else x

    def forward(self, image: Tensor, valid: Tensor) -> Tensor:
        outs = [
            self._turn(self.module(self._turn(image, v), self._turn(valid, v)), v, True).clamp(0, 1)
            for v in ENSEMBLE_VIEWS
        ]
        return torch.stack(outs).mean(0)

    def predict(self, image: Tensor, valid: Tensor) -> tuple[Tensor, Tensor | None]:
        preds, gates = [], []
        for v in ENSEMBLE_VIEWS:
            pred, gate = self.module.predict(self._turn(image, v), self._turn(valid, v))
            preds.append(self._turn(pred, v, True))
            gates.append(None if gate is None else self._turn(gate, v, True))
        gate = None if gates[0] is None else torch.stack(gates).mean(0)
        return torch.stack(preds).mean(0), gate
