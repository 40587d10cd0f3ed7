"""The thread setting (pconv.threads) and its plumbing into the CLI, the demo and the nodes.

Its speed under load is measured side by side in ``benchmarks/threads_under_load.py``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from pconv import threads
from pconv.cli import main
from pconv.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("text", "setting"), [("1", 1), ("3", 3), (" 12 ", 12), ("auto", "auto")])
def test_parse(text, setting):
    assert threads.parse(text) == setting
    assert threads.parse("AUTO") == "auto"


@pytest.mark.parametrize("text", ["0", "-1", "x", "1.5", "", "two"])
def test_parse_refuses_with_the_name_of_the_setting(text):
    with pytest.raises(InputError, match=r"^--threads '.*': want a whole number"):
        threads.parse(text, "--threads")


def test_configure_sets_torch_and_opencv():
    assert threads.configure(3) == 3
    assert torch.get_num_threads() == 3 and cv2.getNumThreads() == 3
    assert threads.configure("1") == 1
    assert torch.get_num_threads() == 1 and cv2.getNumThreads() == 1
    assert threads.configure(None) == 1  # None: leave them as they are
    assert torch.get_num_threads() == 1


def test_auto_stays_within_the_usable_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    usable = threads.usable_cpus()
    assert 1 <= usable <= (os.cpu_count() or 1)
    chosen = threads.auto_threads()
    assert 1 <= chosen <= min(usable, threads.torch_default())
    # a user's OMP_NUM_THREADS is their decision, even beyond the cores
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    assert threads.auto_threads() == 7


def test_auto_leaves_the_cores_others_keep_busy(monkeypatch):
    """The arithmetic on what the kernel reports: busy cores are subtracted, never below 1."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "usable_cpus", lambda: 4)
    monkeypatch.setattr(threads, "torch_default", lambda: 4)
    for busy, chosen in [(0.0, 4), (1.0, 3), (2.4, 2), (3.0, 1), (9.0, 1)]:
        monkeypatch.setattr(threads, "busy_cpus", lambda usable, b=busy: b)
        assert threads.auto_threads() == chosen


def test_busy_cpus_is_scaled_to_our_share_of_the_host(monkeypatch):
    counts = iter([9, 9, 9, 9, 9])  # 9 runnable, less this process: 8 busy on a 16-core host
    monkeypatch.setattr(threads, "_procs_running", lambda: next(counts))
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert threads.busy_cpus(usable=4) == pytest.approx(2.0)


def test_environment(monkeypatch):
    monkeypatch.delenv(threads.ENVIRONMENT, raising=False)
    assert threads.from_environment() is None and threads.default_setting() == "auto"
    before = torch.get_num_threads()
    assert threads.configure_from_environment() is None  # the nodes: untouched without it
    assert torch.get_num_threads() == before
    monkeypatch.setenv(threads.ENVIRONMENT, "3")
    assert threads.configure_from_environment() == 3 and torch.get_num_threads() == 3
    assert threads.apply(None) == 3  # the front ends' default
    assert threads.apply("1") == 1  # a flag wins
    monkeypatch.setenv(threads.ENVIRONMENT, "many")
    with pytest.raises(InputError, match=r"^PCONV_THREADS 'many'"):
        threads.apply(None)


def _inputs(tmp_path: Path) -> tuple[Path, Path]:
    image = tmp_path / "i.png"
    mask = tmp_path / "m.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 48, 3), np.uint8)).save(image)
    hole = np.zeros((40, 48), np.uint8)
    hole[10:20, 10:30] = 255
    Image.fromarray(hole).save(mask)
    return image, mask


@pytest.mark.parametrize("value", ["0", "x"])
@pytest.mark.parametrize("command", ["inpaint", "eval"])
def test_cli_refuses_bad_threads_in_one_line(tmp_path, capsys, value, command):
    image, mask = _inputs(tmp_path)
    out = tmp_path / "out"
    if command == "inpaint":
        argv = ["inpaint", str(image), "-m", str(mask), "-o", str(out / "o.png")]
    else:
        argv = ["eval", "--images", str(tmp_path), "--masks", str(tmp_path), "--output", str(out)]
    assert main([*argv, "--threads", value]) == 2
    err = capsys.readouterr().err
    want = f"pconv {command}: error: --threads '{value}': want a whole number of threads >= 1"
    assert err == want + ", or auto\n"
    assert not out.exists()


_REPORT = "import sys, torch; from pconv.cli import main; rc = main(sys.argv[1:]); "
_REPORT += "print('threads', torch.get_num_threads(), 'rc', rc)"


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The real command in a fresh process (torch's thread count is per process), with what
    torch uses after it printed last."""
    environ = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "PCONV_THREADS")}
    environ.update(env, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-c", _REPORT, *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        env=environ,
    )


@pytest.mark.slow
def test_cli_sets_torch_threads_in_a_real_run(tmp_path, tiny_model_file):
    image, mask = _inputs(tmp_path)
    args = ["inpaint", str(image), "-m", str(mask), "--model", str(tiny_model_file)]
    # 3 on a 2-core machine: a count torch would not pick by itself
    for n, (extra, env) in enumerate(
        [
            (["--threads", "3"], {}),
            ([], {"PCONV_THREADS": "3"}),
            (["--threads", "1"], {"PCONV_THREADS": "3"}),
        ]
    ):
        out = tmp_path / f"o{n}.png"
        proc = _cli([*args, "-o", str(out), *extra], env)
        assert proc.returncode == 0, proc.stderr
        want = "1" if extra[-1:] == ["1"] else "3"
        assert proc.stdout.splitlines()[-1] == f"threads {want} rc 0"
        assert out.is_file()
    # auto: at least one, never more than the usable cores
    proc = _cli([*args, "-o", str(tmp_path / "auto.png")], {})
    count = int(proc.stdout.splitlines()[-1].split()[1])
    assert 1 <= count <= len(os.sched_getaffinity(0)), proc.stdout


def test_demo_refuses_bad_threads_before_starting(capsys, monkeypatch):
    from demo.__main__ import build_parser
    from demo.__main__ import main as demo_main

    assert build_parser().parse_args(["--threads", "2"]).threads == "2"
    assert demo_main(["--threads", "0"]) == 2
    err = capsys.readouterr().err
    assert (
        err
        == "python -m demo: error: --threads '0': want a whole number of threads >= 1, or auto\n"
    )
    monkeypatch.setenv("PCONV_THREADS", "-3")
    assert demo_main([]) == 2
    assert "PCONV_THREADS '-3'" in capsys.readouterr().err


def test_nodes_leave_threads_to_comfyui_unless_asked():
    """The pack (which needs a running ComfyUI to import) changes threads only through
    pconv.threads.configure_from_environment (tested above), at its entry point."""
    sources = {p.name: p.read_text() for p in (ROOT / "nodes").glob("*.py")}
    assert "threads.configure_from_environment()" in sources["extension.py"]
    assert not [name for name, text in sources.items() if "set_num_threads" in text]


def test_configure_leaves_opencv_unimported_and_sets_it_when_pconv_imports_it():
    # configuring on every start used to import OpenCV (~0.16 s) just to set its threads
    code = (
        "import sys, pconv.threads as t\n"
        "t.configure(2)\n"
        "assert 'cv2' not in sys.modules\n"
        "from pconv.masks.opencv import cv2\n"
        "print(cv2.getNumThreads())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2"
