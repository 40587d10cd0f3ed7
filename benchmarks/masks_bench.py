"""Mask generation speed: masks per second per generator, single core.

    python benchmarks/masks_bench.py [--seconds 0.4]

Columns: the generator's own distribution at 256 and 512 px, and :func:`sample_mask` at 512 px
asked for a random bucket (0..5) with a random border rule, which is what a training run with
ratio control pays. ``folder`` is timed on the NVIDIA dev masks when ../shared/data is present.
Each cell runs for about ``--seconds``; the whole table takes ~15 s.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from pconv.masks import GENERATORS, CenterGenerator, MaskGenerator, get_generator, sample_mask

DEV_MASKS = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev" / "masks"


def rate(draw: Callable[[np.random.Generator], object], seconds: float) -> float:
    """Masks per second of ``draw`` over about ``seconds`` (at least 5 calls)."""
    rng = np.random.default_rng(0)
    draw(rng)  # warm-up: imports, caches
    calls, start = 0, time.perf_counter()
    while calls < 5 or time.perf_counter() - start < seconds:
        draw(rng)
        calls += 1
    return calls / (time.perf_counter() - start)


def bucketed(gen: MaskGenerator, size: int) -> Callable[[np.random.Generator], object]:
    """A draw that asks for a random bucket and a random border rule, like a training mix."""
    rules = (None, False, True)

    def draw(rng: np.random.Generator) -> object:
        bucket = int(rng.integers(6))
        border = rules[int(rng.integers(3))]
        if isinstance(gen, CenterGenerator) and border is True:
            border = None  # a centred hole never touches the border
        return sample_mask(gen, size, rng, bucket=bucket, border=border)

    return draw


def generators() -> dict[str, MaskGenerator]:
    gens = {}
    for name in GENERATORS:
        if name == "folder":
            if DEV_MASKS.is_dir():
                gens[name] = get_generator(name, root=DEV_MASKS)
            continue
        gens[name] = get_generator(name)
    return gens


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.4, help="time per cell (0.4)")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)  # single core: what one DataLoader worker gets
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    header = f"{'generator':<12} {'256 native':>11} {'512 native':>11} {'512 bucketed':>13}"
    print("masks/second, single core")
    print(header)
    print("-" * len(header))
    for name, gen in generators().items():
        cells = [
            rate(lambda rng, g=gen: g(256, rng), args.seconds),
            rate(lambda rng, g=gen: g(512, rng), args.seconds),
            rate(bucketed(gen, 512), args.seconds),
        ]
        print(f"{name:<12} {cells[0]:>11.0f} {cells[1]:>11.0f} {cells[2]:>13.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
