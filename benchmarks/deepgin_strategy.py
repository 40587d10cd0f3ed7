"""DeepGIN's sub-sampling test-time strategy against pconv's crop strategy, side by side.

    python benchmarks/deepgin_strategy.py [--model FILE] [--pairs 12] [--size 512]

On ``--size`` px dev images (``../shared/data/dev``, centre squares as ``pconv eval`` takes
them) with the NVIDIA dev masks, the same model inpaints every pair twice through
:func:`pconv.inpaint`: ``strategy="crop"`` (context crops around hole clusters, downscaled
where a hole is larger than the training size) and ``strategy="subsample"`` (every k-th pixel
into sub-images of the training size, completed in one batch, regrouped). It prints PSNR,
SSIM (:mod:`pconv.evaluation.metrics`, composited, 8-bit) and ST-LPIPS
(:mod:`pconv.evaluation.perceptual`) per strategy, and the time of each with their ratio.

Without ``--model`` a compact DeepGIN with seeded random weights is saved and loaded back
(through :func:`pconv.load_model`) only to prove the script runs: its figures say nothing
about either strategy's quality. Pass a trained DeepGIN (or any model) for figures that do.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import pconv
from pconv.archs.deepgin import DeepGIN, DeepGINConfig
from pconv.evaluation.metrics import score
from pconv.evaluation.pairing import collect_images, collect_masks, make_pairs, prepare
from pconv.evaluation.perceptual import load_perceptual

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev"
STRATEGIES = ("crop", "subsample")


def untrained_compact(folder: Path) -> torch.nn.Module:
    """A compact DeepGIN with seeded random weights, saved and loaded like any model file."""
    torch.manual_seed(0)
    path = pconv.save_model(DeepGIN(DeepGINConfig.compact()), folder / "compact.safetensors")
    return pconv.load_model(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="weights file or zoo name (default: untrained compact)")
    parser.add_argument("--pairs", type=int, default=12, help="image/mask pairs (default 12)")
    parser.add_argument("--size", type=int, default=512, help="image side in px (default 512)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dev", type=Path, default=DEV, help="dev folder (scenes, objects, masks)")
    args = parser.parse_args()

    images = collect_images([args.dev / "scenes", args.dev / "objects"])
    pairs = make_pairs(images, collect_masks(args.dev / "masks"), seed=0, count=args.pairs)
    samples = [prepare(pair, args.size) for pair in pairs]
    judges = load_perceptual()
    with tempfile.TemporaryDirectory() as tmp:
        model = pconv.load_model(args.model) if args.model else untrained_compact(Path(tmp))
        label = args.model or "untrained compact DeepGIN (random weights: proves it runs only)"
        results: dict[str, dict[str, list[float]]] = {
            s: {"psnr": [], "ssim": [], "lpips": [], "seconds": []} for s in STRATEGIES
        }
        for sample in samples:
            for strategy in STRATEGIES:
                start = time.perf_counter()
                out = pconv.inpaint(
                    sample.truth, sample.hole, model, device=args.device, strategy=strategy
                )
                results[strategy]["seconds"].append(time.perf_counter() - start)
                scores = score(out, sample.truth, sample.hole)
                results[strategy]["psnr"].append(scores["psnr"])
                results[strategy]["ssim"].append(scores["ssim"])
                results[strategy]["lpips"].append(
                    float(judges.lpips_batch(out[None], sample.truth)[0])
                )
    print(f"model: {label}")
    print(f"{len(samples)} pairs at {args.size} px from {args.dev}, holes "
          f"{np.mean([s.hole.mean() for s in samples]):.1%} on average")  # fmt: skip
    print(f"{'strategy':<10} {'PSNR dB':>8} {'SSIM':>7} {'LPIPS':>7} {'s/image':>8}")
    for strategy, r in results.items():
        finite = [p for p in r["psnr"] if np.isfinite(p)]
        print(
            f"{strategy:<10} {np.mean(finite):8.2f} {np.mean(r['ssim']):7.4f} "
            f"{np.nanmean(r['lpips']):7.4f} {np.mean(r['seconds']):8.3f}"
        )
    ratio = np.sum(results["subsample"]["seconds"]) / np.sum(results["crop"]["seconds"])
    print(f"time subsample / crop: {ratio:.2f}x (measured side by side, same pairs)")


if __name__ == "__main__":
    main()
