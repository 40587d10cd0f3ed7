"""Scalars to ``metrics.csv`` (always) and TensorBoard (when the package is installed).

``metrics.csv`` has one row per value: ``step,tag,value,wall_time`` (tags such as
``train/total``, ``val/psnr``), the same shape as TensorBoard's scalars. On resume, rows of
steps after the checkpoint (logged before the kill, then trained again) are dropped, and
TensorBoard is told to purge them too, so curves never double back.
"""

from __future__ import annotations

import csv
import importlib.util
import time
from pathlib import Path

from pconv.files import atomic_open

CSV_NAME = "metrics.csv"
CSV_FIELDS = ("step", "tag", "value", "wall_time")
TB_DIR = "tensorboard"


def tensorboard_available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


class MetricLog:
    def __init__(self, run_dir: Path, tensorboard: str = "auto", resume_step: int | None = None):
        self.path = Path(run_dir) / CSV_NAME
        if resume_step is not None and self.path.is_file():
            self._truncate_after(resume_step)
        new = not self.path.is_file()
        self._fh = open(self.path, "a", newline="", encoding="utf-8")  # noqa: SIM115 (kept open)
        self._csv = csv.writer(self._fh)
        if new:
            self._csv.writerow(CSV_FIELDS)
        self.tb = None
        if tensorboard == "on" or (tensorboard == "auto" and tensorboard_available()):
            from torch.utils.tensorboard import SummaryWriter

            # purge_step drops events at steps >= it: the resumed step itself was kept
            purge = None if resume_step is None else resume_step + 1
            self.tb = SummaryWriter(str(Path(run_dir) / TB_DIR), purge_step=purge)

    def _truncate_after(self, step: int) -> None:
        with open(self.path, newline="", encoding="utf-8") as fh:
            rows = [r for r in csv.DictReader(fh) if r.get("step", "").isdigit()]
        keep = [r for r in rows if int(r["step"]) <= step]
        with atomic_open(self.path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, CSV_FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(keep)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        now = time.time()
        for tag, value in values.items():
            self._csv.writerow((step, tag, repr(float(value)), f"{now:.3f}"))
            if self.tb is not None:
                self.tb.add_scalar(tag, value, step, walltime=now)
        self._fh.flush()

    def image(self, step: int, tag: str, hwc_uint8) -> None:
        if self.tb is not None:
            self.tb.add_image(tag, hwc_uint8, step, dataformats="HWC")

    def close(self) -> None:
        self._fh.close()
        if self.tb is not None:
            self.tb.close()


def read_metrics(run_dir: Path) -> dict[str, dict[int, float]]:
    """``{tag: {step: value}}`` from a run's ``metrics.csv`` (for tests and reports)."""
    out: dict[str, dict[int, float]] = {}
    with open(Path(run_dir) / CSV_NAME, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            out.setdefault(row["tag"], {})[int(row["step"])] = float(row["value"])
    return out
