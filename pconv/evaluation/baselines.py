"""The classical inpainting methods a user would otherwise reach for, behind one call shape.

Every method — baselines here, our models in ``models`` — is an object with a ``name`` and
``__call__(image, hole) -> image`` on float32 ``[H, W, 3]`` in ``[0, 1]`` and bool ``[H, W]``
(True = fill), returning float32 ``[H, W, 3]`` whose known pixels equal the input.

Their libraries are optional extras: a factory imports lazily and raises ``ImportError`` when
its library is absent, and ``load_baselines`` turns that into one line saying what to install.
Anything with this shape can be added to ``BASELINES`` (the tests register a trivial one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from pconv.errors import InputError
from pconv.holes import composite
from pconv.io import to_uint8

#: OpenCV's neighbourhood radius for both of its methods; 3 px is the value OpenCV's own
#: documentation and samples use, and larger radii only blur more.
OPENCV_RADIUS = 3
#: PatchMatch patch radius (patches of 2r+1 px). The library default, 15, costs ~10x more;
#: on 36 dev pairs at 256 px, r=3 beat r=5 and r=7 on all three metrics and was the fastest.
PATCHMATCH_RADIUS = 3
PATCHMATCH_SEED = 0


class Method(Protocol):
    name: str

    def __call__(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray: ...


def keep_known(output: np.ndarray, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Put the input back outside the hole: libraries working in 8 bits would otherwise
    round known pixels of a float input."""
    out = composite(image, np.asarray(output, dtype=np.float32), hole[..., None])
    return out.astype(np.float32, copy=False)


class OpenCVInpaint:
    """``cv2.inpaint``: Telea (2004) fast marching, or Bertalmio et al. (2001) Navier-Stokes."""

    def __init__(self, name: str, flag_name: str) -> None:
        from pconv.threads import import_opencv

        cv2 = import_opencv()
        self.name = name
        self._cv2 = cv2
        self._flag = getattr(cv2, flag_name)

    def __call__(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        mask = hole.astype(np.uint8) * 255
        out = self._cv2.inpaint(to_uint8(image), mask, OPENCV_RADIUS, self._flag)
        return keep_known(out / np.float32(255.0), image, hole)


class Biharmonic:
    """``skimage.restoration.inpaint_biharmonic``: smooth biharmonic fill, per channel."""

    name = "biharmonic"

    def __init__(self) -> None:
        from skimage.restoration import inpaint_biharmonic

        self._inpaint = inpaint_biharmonic

    def __call__(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        out = self._inpaint(np.asarray(image, dtype=np.float64), hole, channel_axis=-1)
        return keep_known(np.clip(out, 0.0, 1.0), image, hole)


class PatchMatch:
    """Barnes et al. (2009) PatchMatch fill, from PyPI ``pypatchmatch`` (prebuilt wheels)."""

    name = "patchmatch"

    def __init__(self) -> None:
        import patchmatch

        if not patchmatch.patchmatch_available:
            # The package installed but its native library did not (a source build failed).
            raise ImportError("pypatchmatch is installed but its native library did not load")
        # Fixed seed: its randomised search would otherwise differ from run to run.
        patchmatch.set_random_seed(PATCHMATCH_SEED)
        self._pm = patchmatch

    def __call__(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        out = self._pm.inpaint(to_uint8(image), hole, patch_size=PATCHMATCH_RADIUS)
        return keep_known(out / np.float32(255.0), image, hole)


@dataclass(frozen=True)
class Baseline:
    name: str
    install: str  # the one command that makes it available
    factory: Callable[[], Method]  # raises ImportError (or OSError) when not installed


BASELINES: dict[str, Baseline] = {
    "telea": Baseline(
        "telea",
        "pip install opencv-python-headless",
        lambda: OpenCVInpaint("telea", "INPAINT_TELEA"),
    ),
    "ns": Baseline(
        "ns", "pip install opencv-python-headless", lambda: OpenCVInpaint("ns", "INPAINT_NS")
    ),
    "biharmonic": Baseline("biharmonic", "pip install scikit-image", Biharmonic),
    "patchmatch": Baseline("patchmatch", "pip install pypatchmatch", PatchMatch),
}

#: What ``pconv eval`` runs when ``--baselines`` is not given (all of them that are installed).
DEFAULT_BASELINES = ("telea", "ns", "biharmonic", "patchmatch")


def parse_names(spec: str) -> list[str]:
    """``"telea, ns"`` -> ``["telea", "ns"]``; ``"none"`` or ``""`` -> ``[]``."""
    names = [n.strip().lower() for n in spec.split(",") if n.strip()]
    if names == ["none"]:
        return []
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise InputError(
            f"unknown baseline {', '.join(map(repr, unknown))} "
            f"(choose from {', '.join(BASELINES)}, or none)"
        )
    return list(dict.fromkeys(names))  # drop repeats, keep order


def load_baselines(names: Sequence[str], *, explicit: bool) -> tuple[list[Method], list[str]]:
    """Instantiate baselines. A missing one is an error if the user asked for it by name,
    otherwise it is skipped and reported in the returned notes (one line each)."""
    methods: list[Method] = []
    notes: list[str] = []
    for name in names:
        spec = BASELINES[name]
        try:
            methods.append(spec.factory())
        except (ImportError, OSError) as exc:
            line = f"baseline {name!r} is missing ({exc}); install it with: {spec.install}"
            if explicit:
                raise InputError(line) from None
            notes.append(line)
    return methods, notes
