"""Exact (or measured) conversion of published PConv weights into our safetensors format.

``convert_file(path)`` detects the layout from the file itself (spandrel style: key names and
shapes, never the file name): OpenMMLab mmagic/mmediting ``.pth``, naoto0804's ``.pth``,
MathiasGruber's Keras ``.h5`` (PConv U-Nets, :mod:`.common`), or rlct1/gin's DeepGIN generator
``.pth`` (:mod:`.deepgin`). Pickled ``.pth`` files are read with ``torch.load(...,
weights_only=True)``: tensors and plain containers only, no code runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from pconv.samples import example_photos

from ..registry import ZooError
from . import deepgin, keras, mmagic, naoto
from .common import (
    Conversion,
    UpstreamNet,
    check_finite,
    find_state_dict,
    load_torch_checkpoint,
    max_abs_diff,
    measure_on_photos,
    to_pconv,
)

#: layout name -> parser module (``detect``, ``parse``, ``notes``)
LAYOUTS: dict[str, ModuleType] = {
    "mmagic": mmagic,
    "naoto": naoto,
    "keras": keras,
    "deepgin": deepgin,
}
#: training resolution of each upstream family (the weights do not say)
DEFAULT_RESOLUTION = {"mmagic": 256, "naoto": 256, "keras": 512, "deepgin": 256}
#: an exact conversion must match the upstream reference this closely, relative to the output's
#: magnitude (at least 1 = the [0,1] scale): float32 rounding, measured ~1e-6 on real weights
EXACT_TOLERANCE = 1e-4

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _is_hdf5(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(8) == _HDF5_MAGIC


def _is_safetensors(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def read_upstream(path: str | Path, layout: str | None = None) -> UpstreamNet | deepgin.GinNet:
    """Parse an upstream checkpoint into an :class:`UpstreamNet` (layout detected if None)."""
    path = Path(path)
    if not path.is_file():
        raise ZooError(f"{path}: no such file")
    if layout is not None and layout not in LAYOUTS:
        raise ZooError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    if _is_hdf5(path):
        if layout not in (None, "keras"):
            raise ZooError(f"{path}: an HDF5 (Keras) file, not a {layout} checkpoint")
        layers = keras.read_h5(path)
        if not keras.detect(layers):
            raise ZooError(f"{path}: a Keras file without PConv2D layers (no img_kernel weights)")
        return keras.parse(layers)
    if _is_safetensors(path):
        raise ZooError(f"{path}: a safetensors file; it needs no conversion (load it directly)")
    if layout == "keras":
        raise ZooError(f"{path}: not an HDF5 file, so not Keras weights")
    obj = load_torch_checkpoint(path)
    candidates = [LAYOUTS[layout]] if layout else [mmagic, naoto, deepgin]
    for module in candidates:
        state = find_state_dict(obj, module.NESTINGS)
        if module.detect(state):
            check_finite(state, module.LAYOUT)
            return module.parse(state)
    raise ZooError(
        f"{path}: not a known PConv layout, nor rlct1/gin's DeepGIN (mmagic: "
        "generator.encoder.enc1.conv.weight; naoto: enc_1.conv.input_conv.weight; deepgin: "
        "lr_coarse_tinker.1.weight; keras: .h5)"
    )


def convert(
    net: UpstreamNet | deepgin.GinNet,
    resolution: int | None = None,
    photos: Sequence[Path] | None = None,
) -> Conversion:
    """Our model for ``net``, checked against the upstream reference forward pass on synthetic
    inputs and measured on real ``photos`` (default: the sample photos shipped with pconv)."""
    resolution = resolution or DEFAULT_RESOLUTION[net.layout]
    if isinstance(net, deepgin.GinNet):
        model = deepgin.to_deepgin(net, resolution)
        check = {"reference": deepgin.reference_run, "output": deepgin.model_output}
    else:
        model, check = to_pconv(net, resolution), {}
    diff = max_abs_diff(model, net, **check)
    if not diff <= EXACT_TOLERANCE:
        raise ZooError(
            f"{net.layout}: converted model differs from the upstream reference by {diff:.3g} "
            f"(> {EXACT_TOLERANCE}); refusing to write it"
        )
    module = LAYOUTS[net.layout]
    measured = measure_on_photos(
        model, net, example_photos() if photos is None else photos, **check
    )
    return Conversion(
        model=model,
        layout=net.layout,
        exact=True,
        max_abs_diff=diff,
        notes=module.notes(),
        ignored=net.ignored,
        measured=measured,
    )


def convert_file(
    path: str | Path,
    layout: str | None = None,
    resolution: int | None = None,
    photos: Sequence[Path] | None = None,
) -> Conversion:
    return convert(read_upstream(path, layout), resolution, photos)


__all__ = [
    "DEFAULT_RESOLUTION",
    "LAYOUTS",
    "Conversion",
    "UpstreamNet",
    "convert",
    "convert_file",
    "read_upstream",
]
