"""``pconv.inpaint(ensemble=True)`` (DeepGIN's five-view average) against one view, side by side.

    python benchmarks/ensemble.py [--model default] [--pairs 24] [--size 256] [--strategy S]

On ``--size`` px dev images (``../shared/data/dev``, centre squares as ``pconv eval`` takes
them) with the NVIDIA dev masks, the same model inpaints every pair twice through
:func:`pconv.inpaint`: as it is, and averaged over the five views of rlct1/gin's
``test_ensemble.py`` (:data:`pconv.inpaint.ENSEMBLE_VIEWS`). It prints PSNR, SSIM
(:mod:`pconv.evaluation.metrics`, composited, 8-bit) and ST-LPIPS
(:mod:`pconv.evaluation.perceptual`) for each, the time of each and their ratio.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import pconv
from pconv.evaluation.metrics import score
from pconv.evaluation.pairing import collect_images, collect_masks, make_pairs, prepare
from pconv.evaluation.perceptual import load_perceptual

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev"
RUNS = {"one view": False, "ensemble": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="weights file or zoo name")
    parser.add_argument("--pairs", type=int, default=24, help="image/mask pairs (default 24)")
    parser.add_argument("--size", type=int, default=256, help="image side in px (default 256)")
    parser.add_argument("--strategy", help="pconv.inpaint's strategy (default: the model's)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dev", type=Path, default=DEV, help="dev folder (scenes, objects, masks)")
    args = parser.parse_args()

    images = collect_images([args.dev / "scenes", args.dev / "objects"])
    pairs = make_pairs(images, collect_masks(args.dev / "masks"), seed=0, count=args.pairs)
    samples = [prepare(pair, args.size) for pair in pairs]
    judges = load_perceptual()
    model = pconv.load_model(args.model)
    results = {r: {"psnr": [], "ssim": [], "lpips": [], "seconds": []} for r in RUNS}
    for sample in samples:
        for run, ensemble in RUNS.items():
            start = time.perf_counter()
            out = pconv.inpaint(
                sample.truth, sample.hole, model, device=args.device, strategy=args.strategy,
                ensemble=ensemble,
            )  # fmt: skip
            results[run]["seconds"].append(time.perf_counter() - start)
            scores = score(out, sample.truth, sample.hole)
            results[run]["psnr"].append(scores["psnr"])
            results[run]["ssim"].append(scores["ssim"])
            results[run]["lpips"].append(float(judges.lpips_batch(out[None], sample.truth)[0]))
    print(f"model: {args.model}")
    print(f"{len(samples)} pairs at {args.size} px from {args.dev}, holes "
          f"{np.mean([s.hole.mean() for s in samples]):.1%} on average")  # fmt: skip
    print(f"{'run':<10} {'PSNR dB':>8} {'SSIM':>7} {'LPIPS':>7} {'s/image':>8}")
    for run, r in results.items():
        finite = [p for p in r["psnr"] if np.isfinite(p)]
        print(
            f"{run:<10} {np.mean(finite):8.2f} {np.mean(r['ssim']):7.4f} "
            f"{np.nanmean(r['lpips']):7.4f} {np.mean(r['seconds']):8.3f}"
        )
    ratio = np.sum(results["ensemble"]["seconds"]) / np.sum(results["one view"]["seconds"])
    print(f"time ensemble / one view: {ratio:.2f}x (measured side by side, same pairs)")


if __name__ == "__main__":
    main()
