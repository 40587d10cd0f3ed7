"""Training throughput (images/s) of ``python -m train``'s step, at 256x256, batch 4.

    python benchmarks/train_bench.py [--device auto] [--models paper-256,compact-256]
        [--init MODEL] [--sizes 256,128] [--layouts contiguous,channels-last]
        [--perceptual auto] [--precision auto] [--steps 5] [--warmup 2] [--data DIR]

Every model runs at every crop size and memory layout, side by side in one run. The CPU
fine-tune of the shipped default with the paper's loss, before (256 px crops) and after (128 px,
channels-last):

    python benchmarks/train_bench.py --init default --sizes 256,128 \
        --layouts contiguous,channels-last --perceptual stlpips-vgg16 --batch-size 8 --threads 1

Each model runs :meth:`pconv.training.Trainer.train_step` (forward, the paper's loss with the chosen
perceptual backbone, backward, gradient-norm check, Adam) on real crops and masks drawn by the
training pipeline from real photos (scikit-image's, or ``--data``). Batches are prepared
beforehand, so the figure is the optimisation step alone; in a real run DataLoader workers
prepare the next batches in parallel. Phase 1 (BatchNorm training) is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import default_collate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, too

from pconv.devices import pick_device
from pconv.training import Trainer, resolve
from pconv.training.config import PRECISIONS
from pconv.training.data import StepSampler
from pconv.training.engine import precision_name


def _sample_photos(folder: Path) -> Path:
    from PIL import Image
    from skimage import data

    for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry"):
        Image.fromarray(getattr(data, name)()).save(folder / f"{name}.png")
    return folder


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench(
    preset: str,
    size: int,
    channels_last: bool,
    args: argparse.Namespace,
    data: Path,
    device: torch.device,
) -> dict:
    config = resolve(
        {},
        {
            "data": [str(data)],
            **({"init": preset} if args.init else {"preset": preset}),
            "size": size,
            "batch_size": args.batch_size,
            "steps": 1_000_000,
            "perceptual": args.perceptual,
            "precision": args.precision,
            "channels_last": channels_last,
            "compile": args.compile,
            "workers": 0,
            "val_holdout": 0,
            "tensorboard": "off",
        },
    )
    with tempfile.TemporaryDirectory(prefix="train-bench-") as run_dir:
        trainer = Trainer(config, run_dir, device=device, log=lambda _: None)
        sampler = StepSampler(len(trainer.train_set), args.batch_size, 0, 0, 1)
        batches = [
            default_collate([trainer.train_set[k] for k in sampler.keys(step)])
            for step in range(args.warmup + args.steps)
        ]
        for batch in batches[: args.warmup]:
            trainer.train_step(batch["image"], batch["valid"])
        _sync(device)
        start = time.perf_counter()
        for batch in batches[args.warmup :]:
            trainer.train_step(batch["image"], batch["valid"])
        _sync(device)
        seconds = time.perf_counter() - start
        params = sum(p.numel() for p in trainer.model.parameters())
        backbone = trainer.loss_fn.describe().get("backbone", {}).get("name", "none")
        amp = precision_name(trainer.amp_dtype)
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {
        "preset": preset,
        "params_m": round(params / 1e6, 2),
        "size": size,
        "layout": "channels-last" if channels_last else "contiguous",
        "batch": args.batch_size,
        "backbone": backbone,
        "precision": amp,
        "ms_per_step": round(1000 * seconds / args.steps, 1),
        "images_per_s": round(args.batch_size * args.steps / seconds, 2),
        "peak_gib": None if peak is None else round(peak, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--models", default="paper-256,compact-256", help="presets, comma-separated"
    )
    parser.add_argument("--sizes", default="256", help="crop sizes, comma-separated")
    parser.add_argument(
        "--layouts", default="contiguous", help="contiguous and/or channels-last, comma-separated"
    )
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--perceptual", default="auto", help="loss backbone (as python -m train)")
    parser.add_argument("--precision", default="auto", choices=list(PRECISIONS))
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--init", help="fine-tune these weights (e.g. default) instead of a preset")
    parser.add_argument("--data", type=Path, help="photo folder (default: scikit-image's)")
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    device = pick_device(args.device)
    what = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"# {what}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"batch {args.batch_size}, {args.steps} steps after "
        f"{args.warmup} warm-up",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="train-bench-photos-") as tmp:
        data = args.data or _sample_photos(Path(tmp))
        models = [args.init] if args.init else [m.strip() for m in args.models.split(",")]
        layouts = [name.strip() for name in args.layouts.split(",")]
        if unknown := set(layouts) - {"contiguous", "channels-last"}:
            parser.error(f"--layouts: unknown {', '.join(sorted(unknown))}")
        first = None
        for preset in models:
            for size in (int(v) for v in args.sizes.split(",")):
                for layout in layouts:
                    result = bench(preset, size, layout == "channels-last", args, data, device)
                    first = first or result
                    ratio = result["images_per_s"] / first["images_per_s"]
                    if args.json:
                        print(json.dumps({**result, "vs_first": round(ratio, 2)}), flush=True)
                        continue
                    print(
                        f"{result['preset']:<12} {result['params_m']:>6} M params  "
                        f"{size:>4} px {result['layout']:<13} "
                        f"loss backbone {result['backbone']:<14} {result['precision']:<5} "
                        f"{result['ms_per_step']:>8} ms/step  {result['images_per_s']:>7} img/s"
                        f"  {ratio:5.2f}x the first row"
                        + (f"  peak {result['peak_gib']} GiB" if result["peak_gib"] else ""),
                        flush=True,
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
