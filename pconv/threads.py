"""How many CPU threads pconv's work uses: the one place that decides it, for every front end.

Why this exists: PyTorch (and OpenCV) start one thread per core and their parallel loops wait
for the slowest thread at every barrier. When another process holds a core, one of our threads
is descheduled and every layer waits for it: on a 2-core machine with one busy competitor a
512x512 fill took 1.9-25.8 s with two threads against 0.8-1.05 s with one (0.44-0.56 s quiet;
issue 17, and ``benchmarks/threads_under_load.py``). Fewer threads than cores costs at most the
missing parallelism; more threads than free cores can cost 5-25x.

The setting, spelled the same everywhere (``pconv inpaint --threads``, ``pconv eval
--threads``, ``python -m demo --threads``, the environment variable ``PCONV_THREADS`` read by
those defaults and by the ComfyUI pack):

``N`` (a whole number >= 1)
    exactly N threads for torch's intra-op pool and OpenCV.
``auto`` (the front ends' default)
    the cores this process may use (CPU affinity, and a cgroup CPU quota when one is set),
    minus the cores other processes keep busy right now, at least 1 and at most torch's own
    default (one per physical core). "Busy right now" is the kernel's count of runnable tasks
    (``procs_running`` in ``/proc/stat``), sampled a few times over ~20 ms, less this process:
    an instant count, unlike the load average, which trails by a minute and would count the
    previous run of a script that calls ``pconv`` in a loop as a competitor. Where
    ``/proc/stat`` is absent (macOS) the 1-minute load average stands in. Inside a container
    both are the host's: they are scaled by this process's share of the host's CPUs. If
    ``OMP_NUM_THREADS`` is set, ``auto`` keeps it (the user already decided).

The decision is made once, when a command or the demo starts: a long-running demo does not
follow the load afterwards (its own requests would count as load).
"""

from __future__ import annotations

import importlib
import math
import os
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Literal

from pconv.errors import InputError

ENVIRONMENT = "PCONV_THREADS"
AUTO = "auto"
ThreadSetting = int | Literal["auto"]

_SAMPLES = 5
_SAMPLE_GAP_S = 0.004
_TORCH_DEFAULT: int | None = None


def parse(value: str | int, what: str = "threads") -> ThreadSetting:
    """``"auto"`` or a whole number >= 1, from a flag or the environment; :class:`InputError`
    naming ``what`` (``--threads``, ``PCONV_THREADS``) otherwise."""
    text = str(value).strip()
    if text.lower() == AUTO:
        return AUTO
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise InputError(f"{what} {str(value)!r}: want a whole number of threads >= 1, or auto")


def from_environment() -> ThreadSetting | None:
    """``PCONV_THREADS`` parsed, or None when it is unset or empty."""
    value = os.environ.get(ENVIRONMENT, "").strip()
    return parse(value, ENVIRONMENT) if value else None


def default_setting() -> ThreadSetting:
    """What a front end uses without a flag: ``PCONV_THREADS``, else ``auto``."""
    setting = from_environment()
    return AUTO if setting is None else setting


def apply(flag: str | None, name: str = "--threads") -> int:
    """A front end's setting: its flag's value (``None``: not given, then ``PCONV_THREADS``,
    else ``auto``) configured; returns the count. A bad value is an :class:`InputError`
    naming the flag or the variable it came from."""
    return configure(default_setting() if flag is None else parse(flag, name))


def configure_from_environment() -> int | None:
    """For a host application that owns the process (the ComfyUI pack): ``PCONV_THREADS``
    applied when it is set (returns the count), nothing touched otherwise (returns None). A
    bad value is an :class:`InputError` naming the variable."""
    setting = from_environment()
    return None if setting is None else configure(setting)


def usable_cpus() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup v2 CPU quota."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        count = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, count)


def _procs_running() -> int | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("procs_running "):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def busy_cpus(usable: int | None = None) -> float:
    """Cores other processes keep busy now, on this process's share of the machine.

    The median of a few instant counts of runnable tasks (less 1: this process, sampling) or,
    without ``/proc/stat``, the 1-minute load average; 0 when neither can be read.
    """
    usable = usable or usable_cpus()
    samples = []
    for index in range(_SAMPLES):
        count = _procs_running()
        if count is None:
            break
        samples.append(count - 1)
        if index + 1 < _SAMPLES:
            time.sleep(_SAMPLE_GAP_S)
    if samples:
        busy = float(statistics.median(samples))
    else:
        try:
            busy = os.getloadavg()[0]
        except (AttributeError, OSError):  # Windows
            return 0.0
    host = os.cpu_count() or usable
    # the kernel's counts are host-wide; in a container we hold only our share of the host
    return max(0.0, busy * usable / host if host > usable else busy)


def torch_default() -> int:
    """torch's own thread count before pconv first changed it (one per physical core)."""
    global _TORCH_DEFAULT
    if _TORCH_DEFAULT is None:
        import torch

        _TORCH_DEFAULT = torch.get_num_threads()
    return _TORCH_DEFAULT


def auto_threads() -> int:
    """The ``auto`` choice (see the module's docstring)."""
    omp = os.environ.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and int(omp) >= 1:
        return int(omp)
    usable = usable_cpus()
    free = round(usable - busy_cpus(usable))
    return max(1, min(free, usable, torch_default()))


def resolve(setting: ThreadSetting) -> int:
    """The thread count a setting stands for here and now."""
    if setting == AUTO:
        return auto_threads()
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 1:
        raise InputError(f"threads {setting!r}: want a whole number of threads >= 1, or auto")
    return setting


#: OpenCV's thread count as :func:`configure` last set it; :func:`import_opencv` applies it
#: when OpenCV is first imported, so that configuring does not import it (about 0.16 s).
_opencv_threads: int | None = None


def configure(setting: ThreadSetting | str | None) -> int:
    """Set torch's intra-op threads (and OpenCV's) from a setting; returns the count in use.

    ``None`` leaves both as they are (what the ComfyUI pack does without ``PCONV_THREADS``:
    the host application owns the process). A string is parsed as by :func:`parse`. OpenCV
    is set now if it is loaded, else by :func:`import_opencv` when pconv first needs it.
    """
    import torch

    global _opencv_threads
    if setting is None:
        return torch.get_num_threads()
    if isinstance(setting, str):
        setting = parse(setting)
    count = resolve(setting)
    torch_default()  # remember torch's own default before changing it
    torch.set_num_threads(count)
    _opencv_threads = count
    if "cv2" in sys.modules:
        sys.modules["cv2"].setNumThreads(count)
    return count


def import_opencv() -> ModuleType:
    """``cv2`` with the configured thread count: the one place pconv imports OpenCV.

    Raises ``ImportError`` where it is not installed (it is optional: the masks extra).
    """
    first = "cv2" not in sys.modules  # once loaded, configure set it, or its owner did since
    cv2 = importlib.import_module("cv2")
    if first and _opencv_threads is not None:
        cv2.setNumThreads(_opencv_threads)
    return cv2
