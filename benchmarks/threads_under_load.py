"""A 512x512 fill of the shipped ``default`` model at threads = 1, 2 and auto, on a quiet
machine and beside busy competitor processes, as ratios measured side by side in one run.

    python benchmarks/threads_under_load.py [--repeats 3] [--busy 0,1] [--settings 1,2,auto]

Why: PyTorch's parallel loops wait for their slowest thread at every barrier, so a thread that
shares its core with another busy process stalls the whole layer (issue 17: 0.44-0.56 s quiet,
a median 13.5 s with two threads beside one busy process, about 1 s with one thread). This
measures the thing ``pconv.threads``' ``auto`` is meant to avoid, and what ``auto`` chooses in
each condition (it is decided once per round, as a command decides it once at start).

A competitor is a process spinning single-threaded numpy matmuls (``OMP_NUM_THREADS=1``);
``--busy 0,1`` runs the quiet condition, then one competitor. "Quiet" is only as quiet as the
machine: the load that was already there is printed with the results.

Within a condition the settings run in alternation (1, 2, auto, 1, 2, auto, ...) after a
warm-up, and the median is reported, so drift in the background load hits them alike.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pconv import inpaint, load_model, threads  # noqa: E402

SIDE = 512


def _spin(stop: mp.synchronize.Event) -> None:  # type: ignore[name-defined]
    """A competitor: one core of numpy matmuls until told to stop."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((256, 256))
    while not stop.is_set():
        a = np.tanh(a @ a.T / 256.0)


def _inputs() -> tuple[np.ndarray, np.ndarray]:
    """A 512x512 photo (the shipped example, resized) and a ~20 % hole of strokes and a box."""
    from PIL import Image

    with Image.open(ROOT / "pconv" / "examples" / "chelsea.jpg") as photo:
        image = np.asarray(photo.convert("RGB").resize((SIDE, SIDE), Image.BICUBIC))
    hole = np.zeros((SIDE, SIDE), bool)
    hole[180:330, 150:360] = True
    for row in range(40, SIDE - 40, 90):
        hole[row : row + 14, 30 : SIDE - 30] = True
    return image, hole


def _fill_seconds(model: torch.nn.Module, image: np.ndarray, hole: np.ndarray) -> float:
    start = time.perf_counter()
    inpaint(image, hole, model, device="cpu")
    return time.perf_counter() - start


def measure(
    model: torch.nn.Module, settings: list[str], repeats: int
) -> tuple[dict[str, float], list[int]]:
    """Median seconds per fill for each setting, interleaved; the counts auto chose."""
    image, hole = _inputs()
    times: dict[str, list[float]] = {s: [] for s in settings}
    chosen: list[int] = []
    threads.configure(1)
    _fill_seconds(model, image, hole)  # warm-up
    for _ in range(repeats):
        for setting in settings:
            time.sleep(0.3)  # our own OpenMP threads stop spinning before auto looks
            count = threads.configure(threads.parse(setting))
            if setting == "auto":
                chosen.append(count)
            times[setting].append(_fill_seconds(model, image, hole))
    return {s: statistics.median(t) for s, t in times.items()}, chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="rounds per condition (3)")
    parser.add_argument("--busy", default="0,1", help="competitor counts, in order (0,1)")
    parser.add_argument("--settings", default="1,2,auto", help="thread settings (1,2,auto)")
    args = parser.parse_args()
    settings = [str(threads.parse(s, "--settings")) for s in args.settings.split(",")]
    os.environ.pop("OMP_NUM_THREADS", None)  # auto would keep it
    model = load_model("default", device="cpu")
    print(
        f"# 512x512 fill, default model, torch {torch.__version__}, {threads.usable_cpus()} "
        f"usable cores (torch default {threads.torch_default()} threads), "
        f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
        f"median of {args.repeats}"
    )
    rows = []
    ctx = mp.get_context("spawn")
    for busy in (int(b) for b in args.busy.split(",")):
        stop = ctx.Event()
        env_before = os.environ.get("OMP_NUM_THREADS")
        os.environ["OMP_NUM_THREADS"] = "1"  # the competitors are single-threaded
        workers = [ctx.Process(target=_spin, args=(stop,), daemon=True) for _ in range(busy)]
        for worker in workers:
            worker.start()
        if env_before is None:
            del os.environ["OMP_NUM_THREADS"]
        time.sleep(1.5 if busy else 0)  # the competitors are up and spinning
        try:
            medians, chosen = measure(model, settings, args.repeats)
        finally:
            stop.set()
            for worker in workers:
                worker.join(10)
        rows.append((busy, medians, chosen))
        base = medians[settings[0]]
        cells = "  ".join(f"threads={s}: {t:6.2f} s ({t / base:4.2f}x)" for s, t in medians.items())
        picked = f"  auto chose {chosen}" if chosen else ""
        print(f"busy={busy}:  {cells}{picked}", flush=True)
    if len(rows) > 1:
        quiet = rows[0][1]
        for busy, medians, _ in rows[1:]:
            slow = "  ".join(f"threads={s}: {medians[s] / quiet[s]:5.2f}x" for s in settings)
            print(f"busy={busy} vs busy={rows[0][0]}:  {slow}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
