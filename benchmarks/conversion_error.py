"""Conversion error of each upstream layout at its published size, on the sample photos.

The published checkpoints cannot be downloaded everywhere (this project's CI has no network), so
this builds checkpoints in each upstream's exact on-disk layout and published shape (mmagic
Places2/CelebA-HQ: 7 levels at 256; naoto0804: 7 levels at 256; PConv-Keras ImageNet: 8 levels
at 512) with random weights, converts them with ``zoo.convert`` and prints what
``measure_on_photos`` finds against the upstream reference (float64) on real photos with
irregular holes. ``python -m zoo build NAME`` measures the real weights the same way and writes
the figures into the card. Random weights give outputs far outside [0, 1], so the error is also
printed relative to the output's magnitude.

    python benchmarks/conversion_error.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the layout fixtures

from zoo_fixtures import (
    keras_model,
    mmagic_checkpoint,
    naoto_checkpoint,
    write_keras_h5,
)

from pconv.samples import example_photos
from zoo.convert import convert_file
from zoo.convert.common import photo_inputs, reference_run


def main() -> None:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    photos = example_photos()
    with tempfile.TemporaryDirectory() as tmp:
        files = {
            "mmagic (places2, celeba-hq)": (Path(tmp) / "mm.pth", 256),
            "naoto (places2-naoto)": (Path(tmp) / "naoto.pth", 256),
            "keras (imagenet)": (Path(tmp) / "keras.h5", 512),
        }
        torch.save(mmagic_checkpoint(depth=7), files["mmagic (places2, celeba-hq)"][0])
        torch.save(naoto_checkpoint(depth=7), files["naoto (places2-naoto)"][0])
        write_keras_h5(keras_model(depth=8), files["keras (imagenet)"][0])
        print(f"photos: {', '.join(p.name for p in photos)}")
        print("| layout | size | exact | max abs diff | hole mean abs diff | relative | s |")
        print("|---|---|---|---|---|---|---|")
        for name, (path, resolution) in files.items():
            start = time.perf_counter()
            conversion = convert_file(path, resolution=resolution)
            m = conversion.measured
            from zoo.convert import read_upstream

            image, valid = photo_inputs(photos, int(m["size"]))
            theirs, _ = reference_run(read_upstream(path), image[:1], valid[:1])
            scale = max(1.0, float(theirs.abs().max()))
            print(
                f"| {name} | {m['size']} | {conversion.exact} | {m['max_abs_diff']:.3g} | "
                f"{m['hole_mean_abs_diff']:.3g} | {m['max_abs_diff'] / scale:.2e} | "
                f"{time.perf_counter() - start:.0f} |"
            )


if __name__ == "__main__":
    main()
