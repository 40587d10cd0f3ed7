"""Training and validation images: finding them, skipping broken ones, crops and batches.

Exact resume rests on one rule: **what a step sees is a function of (seed, step)**. Sample
``p`` of the run (counting over steps, ranks and the batch) is position ``p % N`` of epoch
``p // N``, whose order is a permutation seeded by (seed, epoch); its crop, flip and mask come
from a generator seeded by (seed, epoch, position). Nothing depends on DataLoader workers,
their number or their own random state, so a run resumed at step ``s`` sees exactly what the
uninterrupted run saw at ``s``, on any number of processes.
"""

from __future__ import annotations

import math
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset, Sampler, default_collate

from pconv.errors import InputError
from pconv.io import hole_to_valid, list_images, load_image, to_uint8
from pconv.masks import MaskSampler, parse_mix
from pconv.training.errors import ConfigError, Setting

#: Salts that keep the training, holdout and validation random streams apart.
_ORDER, _SAMPLE, _HOLDOUT, _VAL = 1, 2, 3, 4


def find_images(dirs: Sequence[str | Path]) -> list[Path]:
    """Image files under every folder (recursively), in a stable order, duplicates once."""
    found: dict[Path, None] = {}
    for folder in dirs:
        root = Path(folder).expanduser()
        if not root.is_dir():
            raise InputError(f"{root}: not a folder")
        for path in list_images(root):
            found.setdefault(path.resolve(), None)
    if not found:
        raise InputError(f"no images (.png, .jpg, ...) found in {', '.join(map(str, dirs))}")
    return list(found)


@dataclass
class Scan:
    """Files whose header opens, and those skipped with the reason."""

    good: list[Path]
    bad: list[tuple[Path, str]] = field(default_factory=list)


def scan_images(paths: Sequence[Path]) -> Scan:
    """Read each file's header (cheap; no decoding): unreadable files are set aside. Files
    broken further in (truncated data) are caught when decoded, see :class:`TrainImages`."""
    scan = Scan(good=[])
    for path in paths:
        try:
            with Image.open(path) as img:
                width, height = img.size
            if width < 1 or height < 1:
                raise ValueError("empty image")
        except Exception as exc:  # any decoder error means "skip", never a crash
            scan.bad.append((path, f"{type(exc).__name__}: {exc}".splitlines()[0][:200]))
        else:
            scan.good.append(path)
    return scan


def training_masks(
    mix: str,
    size: int,
    *,
    border: bool | None = None,
    buckets: Sequence[int] | None = None,
    mask_dir: str | None = None,
) -> MaskSampler:
    """The run's hole masks: ``pconv.masks``' sampler over ``mix`` (``folder`` in it reads
    ``mask_dir``, white = hole). The trainer draws with :meth:`MaskSampler.draw` and one
    generator per sample, so every mask is a function of its sample's seed."""
    weights = parse_mix(mix)
    if "folder" in weights and not mask_dir:
        raise ConfigError(
            "the ",
            Setting("masks"),
            " mix names 'folder' but no ",
            Setting("mask_dir"),
            " was given",
        )
    if mask_dir and "folder" not in weights:
        raise ConfigError(
            Setting("mask_dir"), f" {mask_dir} given, but ", Setting("masks"),
            f" {mix!r} has no folder:W",
        )  # fmt: skip
    options = {"folder": {"root": mask_dir}} if mask_dir else None
    return MaskSampler(weights, size, bucket=buckets, border=border, options=options)


def split_holdout(paths: list[Path], count: int, seed: int) -> tuple[list[Path], list[Path]]:
    """``count`` images set aside for validation (the same ones for the same seed)."""
    if count <= 0:
        return paths, []
    if count >= len(paths):
        raise ConfigError(
            Setting("val_holdout"), f" {count} leaves no training images of {len(paths)}"
        )
    rng = np.random.default_rng([seed, _HOLDOUT])
    chosen = set(rng.choice(len(paths), size=count, replace=False).tolist())
    train = [p for i, p in enumerate(paths) if i not in chosen]
    val = [p for i, p in enumerate(paths) if i in chosen]
    return train, val


# -- crops -----------------------------------------------------------------------------------


def crop_scale(height: int, width: int, size: int, mode: str, rng: np.random.Generator) -> float:
    """The one scale factor applied to both sides (so the aspect ratio is kept).

    ``native``: pixels as they are (small images are enlarged to fit); ``fit``: the short side
    becomes ``size``; ``random-scale``: log-uniform between the two, so the model sees both
    the whole scene and full-resolution detail.
    """
    fit = size / min(height, width)
    if mode == "fit" or fit >= 1.0:
        return fit
    if mode == "native":
        return 1.0
    return math.exp(rng.uniform(math.log(fit), 0.0))


def scaled_shape(height: int, width: int, size: int, scale: float) -> tuple[int, int]:
    """The image's size after scaling by ``scale``, never below the crop."""
    return max(size, round(height * scale)), max(size, round(width * scale))


def crop_from(
    image: np.ndarray, size: int, shape: tuple[int, int], flip: bool, rng: np.random.Generator
) -> torch.Tensor:
    """Resize ``[H, W, 3]`` to ``shape`` (if it is not already), then a random ``size`` crop,
    mirrored half of the time when ``flip``: ``[3, size, size]``."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
    if tuple(x.shape[1:]) != tuple(shape):
        x = F.interpolate(
            x[None], size=shape, mode="bilinear", antialias=True, align_corners=False
        )[0].clamp_(0, 1)
    y0 = int(rng.integers(0, x.shape[1] - size + 1))
    x0 = int(rng.integers(0, x.shape[2] - size + 1))
    x = x[:, y0 : y0 + size, x0 : x0 + size]
    if flip and rng.random() < 0.5:
        x = x.flip(-1)
    return x.contiguous()


def random_crop(
    image: np.ndarray, size: int, mode: str, flip: bool, rng: np.random.Generator
) -> torch.Tensor:
    """``[H, W, 3]`` float in [0,1] -> ``[3, size, size]``: scaled, cropped, maybe mirrored."""
    height, width = image.shape[:2]
    scale = crop_scale(height, width, size, mode, rng)
    return crop_from(image, size, scaled_shape(height, width, size, scale), flip, rng)


def load_crop(
    path: Path, size: int, mode: str, flip: bool, rng: np.random.Generator
) -> torch.Tensor:
    """:func:`random_crop` of an image file, drawing the same random numbers. A JPEG that is
    about to be shrunk by half or more is decoded at reduced size (the decoder skips the
    detail the resize would discard): a 12 MP photo costs ~10x less."""
    with Image.open(path) as img:
        width, height = img.size
        scale = crop_scale(height, width, size, mode, rng)
        shape = scaled_shape(height, width, size, scale)
        pixels = None
        if img.format == "JPEG" and scale <= 0.5:
            img.draft("RGB", (shape[1], shape[0]))  # at least this big, in 1/2..1/8 steps
            pixels = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    if pixels is None:
        pixels = load_image(path)  # every mode, 16 bit and alpha handled
    return crop_from(pixels, size, shape, flip, rng)


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Validation view: short side scaled to ``size``, centre crop, as uint8 ``[size, size, 3]``."""
    height, width = image.shape[:2]
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
    scale = size / min(height, width)
    new_h, new_w = max(size, round(height * scale)), max(size, round(width * scale))
    if (new_h, new_w) != (height, width):
        x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", antialias=True)
    y0, x0 = (new_h - size) // 2, (new_w - size) // 2
    crop = x[0, :, y0 : y0 + size, x0 : x0 + size].permute(1, 2, 0).clamp(0, 1).numpy()
    return to_uint8(crop)


# -- training set ----------------------------------------------------------------------------


class TrainImages(Dataset):
    """Map-style dataset keyed by ``(file index, sample seed)`` (see :class:`StepSampler`).

    An image that fails to decode is replaced by the next file in the list, and the item
    reports the failed index (``failed``, -1 if none) so the trainer can count it.

    ``pairing="one"``: an item is one image and one mask drawn from the mix (``valid``
    ``[1, S, S]``). ``"each"``: one mask of *every* generator of the mix (DeepGIN's recipe:
    :meth:`MaskSampler.stack_each`, ``valid`` ``[K, 1, S, S]``), drawn from the same sample
    generator after the crop, so still a function of (seed, step); :func:`collate` turns a
    batch of B such items into B x K image-mask pairs (each image repeated K times).
    """

    def __init__(
        self,
        paths: Sequence[Path],
        size: int,
        holes: MaskSampler,
        crop: str,
        flip: bool,
        pairing: str = "one",
    ) -> None:
        self.paths = list(paths)
        self.size = size
        self.holes = holes
        self.crop = crop
        self.flip = flip
        self.pairing = pairing

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor | int]:
        index, seed = key
        rng = np.random.default_rng(seed)
        failed = -1
        for attempt in range(len(self.paths)):
            i = (index + attempt) % len(self.paths)
            try:
                pixels = load_crop(self.paths[i], self.size, self.crop, self.flip, rng)
            except Exception:  # a truncated or corrupt file is skipped, never fatal
                failed = i if failed < 0 else failed
                # the fallback file draws from a fresh stream: same as if drawn directly
                rng = np.random.default_rng(seed)
                continue
            break
        else:
            raise InputError("none of the training images could be decoded")
        if self.pairing == "each":
            valid = torch.from_numpy(hole_to_valid(self.holes.stack_each(rng)))[:, None]
        else:
            valid = torch.from_numpy(hole_to_valid(self.holes.draw(rng)[1]))[None]
        return {"image": pixels, "valid": valid, "failed": failed}

    @property
    def masks_per_image(self) -> int:
        """Image-mask pairs each image gives a step."""
        return len(self.holes.weights) if self.pairing == "each" else 1


def collate(items: list[dict[str, torch.Tensor | int]]) -> dict[str, torch.Tensor]:
    """The DataLoader's batches: torch's default collation, then, for items with one mask of
    each kind (``valid`` ``[B, K, 1, S, S]``), every image repeated next to each of its K
    masks: ``image`` ``[B*K, 3, S, S]``, ``valid`` ``[B*K, 1, S, S]`` (``failed`` stays one
    entry per image). Items with one mask come out exactly as the default collation gives."""
    batch = default_collate(items)
    valid = batch["valid"]
    if valid.dim() == 5:
        k = valid.shape[1]
        batch["image"] = batch["image"].repeat_interleave(k, dim=0)
        batch["valid"] = valid.flatten(0, 1)
    return batch


class StepSampler(Sampler):
    """Keys ``(file index, sample seed)`` for steps ``start..end-1`` of one rank.

    The global batch of a step is ``batch_size * world`` samples; rank ``r`` takes its
    ``r``-th slice, so ranks never share a sample and the union is the same for any world.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int,
        start: int,
        end: int,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.start, self.end, self.rank, self.world = start, end, rank, world
        self._perms: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return max(0, self.end - self.start) * self.batch_size

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            if len(self._perms) > 2:
                self._perms.pop(min(self._perms))
            rng = np.random.default_rng([self.seed, _ORDER, epoch])
            self._perms[epoch] = rng.permutation(self.n)
        return self._perms[epoch]

    def keys(self, step: int) -> list[tuple[int, int]]:
        first = (step * self.world + self.rank) * self.batch_size
        out = []
        for p in range(first, first + self.batch_size):
            epoch, pos = divmod(p, self.n)
            sample_seed = np.random.SeedSequence([self.seed, _SAMPLE, epoch, pos])
            out.append((int(self._perm(epoch)[pos]), int(sample_seed.generate_state(1)[0])))
        return out

    def epoch_of(self, step: int) -> float:
        return step * self.world * self.batch_size / self.n

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for step in range(self.start, self.end):
            yield from self.keys(step)


# -- validation set --------------------------------------------------------------------------


@dataclass
class ValSet:
    """Fixed validation crops and masks (the same for every evaluation of a run)."""

    images: torch.Tensor  # uint8 [N, 3, S, S]
    valid: torch.Tensor  # float32 [N, 1, S, S], 1 = known
    names: list[str]
    skipped: list[tuple[Path, str]]

    def __len__(self) -> int:
        return int(self.images.shape[0])


def load_valset(paths: Sequence[Path], size: int, holes: MaskSampler, seed: int) -> ValSet:
    images, valid, names, skipped = [], [], [], []
    for i, path in enumerate(paths):
        try:
            pixels = center_crop(load_image(path), size)
        except Exception as exc:  # skipped and counted, like training images
            skipped.append((path, f"{type(exc).__name__}: {exc}".splitlines()[0][:200]))
            continue
        rng = np.random.default_rng([seed, _VAL, i])
        images.append(torch.from_numpy(pixels).permute(2, 0, 1))
        valid.append(torch.from_numpy(hole_to_valid(holes.draw(rng)[1]))[None])
        names.append(path.name)
    if not images:
        raise InputError("none of the validation images could be read")
    return ValSet(torch.stack(images), torch.stack(valid), names, skipped)


def worker_init(_: int) -> None:
    """DataLoader workers: deaf to Ctrl-C / SIGTERM sent to the whole process group: the
    trainer finishes its step, checkpoints and then shuts the workers down itself (they also
    exit if it dies). Threads are set in the parent (:func:`single_threaded_opencv`): thread
    pools are not fork-safe, and resizing one in a forked worker can deadlock."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def single_threaded_opencv() -> None:
    """Before forking workers: one OpenCV thread, inherited by every worker (the workers are
    the parallelism). PyTorch already gives each worker one torch thread."""
    from pconv.masks.opencv import load

    load().setNumThreads(1)
