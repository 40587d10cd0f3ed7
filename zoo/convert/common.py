"""What every upstream PConv U-Net has in common, and the one conversion into ours.

Each upstream parser (``mmagic``, ``naoto``, ``keras``) turns a checkpoint into an
:class:`UpstreamNet`: its layers' tensors in *upstream* orientation (OIHW kernels, upstream input
channel order) plus the few conventions in which the published models differ:

* ``ratio``: the numerator of the partial convolution's renormalisation. The paper (NVIDIA,
  mmagic) uses ``sum(1) = C_in*k*k``; naoto0804 divides by ``sum(M)`` alone (numerator 1); the Keras
  layer uses ``k*k`` (it forgot the channels). The convolution is linear in its weights, so
  ``W * n / sum(M) == (W * n / sum(1)) * sum(1) / sum(M)``: rescaling each kernel makes every
  variant exactly ours.
* ``bias_in_holes``: Keras adds the bias where ``sum(M) = 0`` too, we output 0 there.
* ``skip_first``: decoder concatenation order ([skip, upsampled] in Keras, ours is
  [upsampled, skip]): a permutation of the kernel's input channels.
* ``head``: Keras ends in LeakyReLU -> 1x1 conv -> sigmoid after the last partial conv (our
  config's ``head="sigmoid"``).
* ``channel_order``: mmagic's models were trained on BGR images (OpenCV loading, no conversion
  to RGB anywhere in its pipeline). Ours take RGB, so enc1's input channels, dec1's image-skip
  input channels and dec1's output channels (and bias) are reversed: a permutation, exact.

:func:`to_pconv` maps an ``UpstreamNet`` onto :class:`pconv.archs.unet.PConvUNet`, and
:func:`reference_forward` runs the ``UpstreamNet`` with the upstream's own semantics (float64,
written from the upstream's layer formula, independent of :mod:`pconv.layer`), which
:func:`max_abs_diff` uses to *measure* each conversion.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pconv.archs.unet.model import ENCODER_KERNELS, PConvUNet, UNetConfig

from ..registry import ZooError

Ratio = Literal["window", "kernel", "none"]
ChannelOrder = Literal["rgb", "bgr"]

#: BatchNorm eps of our model (torch's default); other eps values are folded into running_var.
OUR_BN_EPS = 1e-5


@dataclass
class BatchNorm:
    weight: Tensor
    bias: Tensor
    running_mean: Tensor
    running_var: Tensor
    eps: float = 1e-5
    num_batches_tracked: Tensor | None = None


@dataclass
class Layer:
    """One partial convolution with what follows it (BatchNorm)."""

    weight: Tensor  # [C_out, C_in, k, k], upstream input-channel order
    bias: Tensor | None = None
    bn: BatchNorm | None = None

    @property
    def c_out(self) -> int:
        return int(self.weight.shape[0])

    @property
    def c_in(self) -> int:
        return int(self.weight.shape[1])

    @property
    def kernel(self) -> int:
        return int(self.weight.shape[-1])


@dataclass
class Head:
    """Keras' extra output head: ``sigmoid(weight @ leaky_relu(x, slope) + bias)``."""

    weight: Tensor  # [3, 3] (out, in)
    bias: Tensor  # [3]
    slope: float = 0.2


@dataclass
class UpstreamNet:
    layout: str
    encoders: list[Layer]
    decoders: list[Layer]  # decoders[i] is dec{i+1}, as in ours
    ratio: Ratio
    bias_in_holes: bool
    skip_first: bool
    input_mean: tuple[float, float, float]  # in the upstream's channel order
    input_std: tuple[float, float, float]
    head: Head | None = None
    leaky_slope: float = 0.2
    channel_order: ChannelOrder = "rgb"  # of the images the upstream network takes and returns
    ignored: list[str] = field(default_factory=list)  # upstream keys that are not weights

    @property
    def depth(self) -> int:
        return len(self.encoders)


@dataclass
class Conversion:
    """A converted model and what is known about its fidelity."""

    model: nn.Module
    layout: str
    exact: bool
    max_abs_diff: float  # vs the upstream reference, [0,1] output space, on a check input
    notes: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    #: the same comparison on real photos with irregular holes (:func:`measure_on_photos`)
    measured: dict[str, object] = field(default_factory=dict)

    def record(self) -> dict[str, object]:
        """What the weights' :class:`pconv.model_info.ModelInfo` keeps of the conversion."""
        return {
            "layout": self.layout,
            "exact": self.exact,
            "max_abs_diff": self.max_abs_diff,
            "measured": self.measured,
            "notes": self.notes,
        }


# -- reading upstream files ----------------------------------------------------------------------


#: the largest checkpoint read out of a zip archive (a bound on what a small archive may unpack)
MAX_ARCHIVED_BYTES = 4 << 30


def _archived_checkpoint(path: Path) -> io.BytesIO | None:
    """The one checkpoint inside a plain zip archive, read into memory (a file shared on Google
    Drive may come zipped: rlct1/gin's ``checkpoints/gin/`` folder holds ``latest_net_G.pth``,
    perhaps with ``latest_net_D.pth`` beside it, whose generator is the one taken). ``None``
    when ``path`` is no such archive; torch's own zip format holds a ``data.pkl`` instead."""
    if not zipfile.is_zipfile(path):
        return None
    with zipfile.ZipFile(path) as archive:
        members = [i for i in archive.infolist() if not i.is_dir()]
        if any(i.filename.rsplit("/", 1)[-1] == "data.pkl" for i in members):
            return None
        found = [i for i in members if i.filename.endswith((".pth", ".pt"))]
        found = [i for i in found if i.filename.endswith("_net_G.pth")] or found
        if len(found) != 1:
            names = ", ".join(i.filename for i in found) or "none"
            raise ZooError(f"{path}: a zip archive; expected one checkpoint in it, found {names}")
        if found[0].file_size > MAX_ARCHIVED_BYTES:
            raise ZooError(f"{path}: {found[0].filename} unpacks to {found[0].file_size} bytes")
        return io.BytesIO(archive.read(found[0]))


def load_torch_checkpoint(path: str | Path) -> Mapping[str, object]:
    """A pickled upstream ``.pth`` (or the one in a zip archive), read with
    ``weights_only=True``: tensors and plain containers only, no code runs. Called on pinned,
    sha256-verified upstream files, unpinned ones (then layout and numbers are the check), or
    the user's own."""
    try:
        source = _archived_checkpoint(Path(path)) or str(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ZooError(f"{path}: unreadable zip archive ({exc})") from None
    try:
        obj = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle refusals, zip errors, truncation: all mean "cannot read"
        raise ZooError(
            f"{path}: cannot read as a PyTorch checkpoint with weights_only=True "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None
    if not isinstance(obj, Mapping):
        raise ZooError(f"{path}: expected a dict of tensors, found {type(obj).__name__}")
    return obj


def find_state_dict(obj: Mapping[str, object], nestings: tuple[str, ...]) -> dict[str, Tensor]:
    """The tensor dict, at the top or under one of ``nestings`` (``state_dict``, ``model``);
    empty if there is none."""
    for key in nestings:
        inner = obj.get(key)
        if isinstance(inner, Mapping) and any(isinstance(v, Tensor) for v in inner.values()):
            obj = inner
            break
    return {k: v for k, v in obj.items() if isinstance(v, Tensor)}


def batch_norm(state: Mapping[str, Tensor], prefix: str, eps: float) -> BatchNorm | None:
    """The BatchNorm stored under ``prefix`` (``...bn.``), or None if there is none."""
    if f"{prefix}weight" not in state:
        return None
    try:
        return BatchNorm(
            weight=state[f"{prefix}weight"],
            bias=state[f"{prefix}bias"],
            running_mean=state[f"{prefix}running_mean"],
            running_var=state[f"{prefix}running_var"],
            eps=eps,
            num_batches_tracked=state.get(f"{prefix}num_batches_tracked"),
        )
    except KeyError as exc:
        raise ZooError(f"incomplete BatchNorm at {prefix}: missing {exc.args[0]}") from None


# -- the conversion ------------------------------------------------------------------------------


def config_for(net: UpstreamNet, resolution: int) -> UNetConfig:
    """Our config for an upstream net; :class:`ZooError` if ours cannot express its shape."""
    widths = [layer.c_out for layer in net.encoders]
    if not widths:
        raise ZooError(f"{net.layout}: no encoder layers found")
    base = widths[0]
    top = max(widths)
    if top % base:
        raise ZooError(f"{net.layout}: encoder widths {widths} are not a doubling of {base}")
    mean, std = net.input_mean, net.input_std
    if net.channel_order == "bgr":
        mean, std = mean[::-1], std[::-1]
    config = UNetConfig(
        depth=len(widths),
        base_width=base,
        max_width_mult=top // base,
        batch_norm=True,
        leaky_slope=net.leaky_slope,
        input_mean=mean,
        input_std=std,
        resolution=resolution,
        head="none" if net.head is None else "sigmoid",
    )
    if config.widths != widths:
        raise ZooError(f"{net.layout}: encoder widths {widths} differ from ours {config.widths}")
    _check_shapes(net, config)
    return config


def _check_shapes(net: UpstreamNet, config: UNetConfig) -> None:
    widths = config.widths
    c_prev = 3
    for i, (layer, width) in enumerate(zip(net.encoders, widths, strict=True)):
        kernel = ENCODER_KERNELS[i] if i < len(ENCODER_KERNELS) else 3
        expected = (width, c_prev, kernel, kernel)
        if tuple(layer.weight.shape) != expected:
            raise ZooError(
                f"{net.layout}: enc{i + 1} kernel {tuple(layer.weight.shape)}, expected {expected}"
            )
        if (layer.bn is None) != (i == 0):
            raise ZooError(f"{net.layout}: enc{i + 1} BatchNorm where ours has none, or vice versa")
        c_prev = width
    skips = [3, *widths[:-1]]
    if len(net.decoders) != config.depth:
        raise ZooError(
            f"{net.layout}: {len(net.decoders)} decoder layers for {config.depth} encoders"
        )
    for i, layer in enumerate(net.decoders):
        c_up = widths[-1] if i == config.depth - 1 else skips[i + 1]
        expected = (skips[i], c_up + skips[i], 3, 3)
        if tuple(layer.weight.shape) != expected:
            raise ZooError(
                f"{net.layout}: dec{i + 1} kernel {tuple(layer.weight.shape)}, expected {expected}"
            )
        if (layer.bn is None) != (i == 0):
            raise ZooError(f"{net.layout}: dec{i + 1} BatchNorm where ours has none, or vice versa")


def _ratio_scale(layer: Layer, ratio: Ratio) -> float:
    """Factor that turns an upstream kernel into ours (ours renormalises by C_in*k*k/sum(M))."""
    window = layer.c_in * layer.kernel * layer.kernel
    if ratio == "window":
        return 1.0
    if ratio == "kernel":
        return layer.kernel * layer.kernel / window  # = 1 / C_in
    return 1.0 / window


def _our_layer(
    layer: Layer, ratio: Ratio, skip_channels: int | None
) -> tuple[Tensor, Tensor | None, BatchNorm | None]:
    """Kernel, bias and BatchNorm of our layer, in float64."""
    weight = layer.weight.to(torch.float64) * _ratio_scale(layer, ratio)
    if skip_channels is not None:  # upstream [skip, up] -> ours [up, skip]
        weight = torch.cat([weight[:, skip_channels:], weight[:, :skip_channels]], dim=1)
    bias = None if layer.bias is None else layer.bias.to(torch.float64)
    bn = layer.bn
    if bn is None:
        return weight, bias, None
    # Our conv has no bias before a BatchNorm: BN(y + b) == BN'(y) with running_mean' = mean - b,
    # also inside holes, where upstream convs that add the bias everywhere give BN(b) and ours
    # gives BN'(0) = BN(b). A different eps goes into running_var: var' + 1e-5 = var + eps.
    mean = bn.running_mean.to(torch.float64)
    if bias is not None:
        mean = mean - bias
    var = bn.running_var.to(torch.float64) + (bn.eps - OUR_BN_EPS)
    folded = BatchNorm(
        weight=bn.weight.to(torch.float64),
        bias=bn.bias.to(torch.float64),
        running_mean=mean,
        running_var=var.clamp(min=0.0),
        eps=OUR_BN_EPS,
        num_batches_tracked=bn.num_batches_tracked,
    )
    return weight, None, folded


def _to_rgb(state: dict[str, Tensor], c_up: int) -> None:
    """Make a network trained on BGR images take and return RGB: reverse enc1's input channels,
    dec1's image-skip input channels (the last three: ours concatenates [upsampled, skip]) and
    dec1's RGB outputs with their bias. Nothing else sees colour channels."""
    rgb = torch.tensor([2, 1, 0])
    state["encoders.0.conv.weight"] = state["encoders.0.conv.weight"][:, rgb]
    dec1 = state["decoders.0.conv.weight"]
    order = torch.cat([torch.arange(c_up), c_up + rgb])
    rows = torch.cat([rgb, torch.arange(3, dec1.shape[0])])
    state["decoders.0.conv.weight"] = dec1[:, order][rows]
    if "decoders.0.conv.bias" in state:
        state["decoders.0.conv.bias"] = state["decoders.0.conv.bias"][rows]


def to_pconv(net: UpstreamNet, resolution: int) -> PConvUNet:
    """Our model with the upstream weights, exactly (float32 rounding aside)."""
    config = config_for(net, resolution)
    model = PConvUNet(config)
    target = model.state_dict()
    state: dict[str, Tensor] = {}
    skips = [3, *config.widths[:-1]]
    for kind, layers in (("encoders", net.encoders), ("decoders", net.decoders)):
        for i, layer in enumerate(layers):
            skip = skips[i] if kind == "decoders" and net.skip_first else None
            weight, bias, bn = _our_layer(layer, net.ratio, skip)
            prefix = f"{kind}.{i}."
            state[prefix + "conv.weight"] = weight
            if prefix + "conv.bias" in target:
                state[prefix + "conv.bias"] = (
                    bias if bias is not None else torch.zeros(weight.shape[0], dtype=torch.float64)
                )
            if bn is not None:
                for name in ("weight", "bias", "running_mean", "running_var"):
                    state[f"{prefix}bn.{name}"] = getattr(bn, name)
                tracked = bn.num_batches_tracked
                state[f"{prefix}bn.num_batches_tracked"] = (
                    tracked.to(torch.long).reshape(())
                    if tracked is not None
                    else torch.zeros((), dtype=torch.long)
                )
    if net.head is not None:  # the head maps RGB to RGB: [out, in] -> a 1x1 kernel
        state["head.weight"] = net.head.weight.to(torch.float64)[:, :, None, None]
        state["head.bias"] = net.head.bias.to(torch.float64)
    if net.channel_order == "bgr":
        if net.head is not None:
            raise ZooError(f"{net.layout}: a BGR network with an output head is not supported")
        _to_rgb(state, c_up=config.widths[0])
    missing = sorted(set(target) - set(state))
    unexpected = sorted(set(state) - set(target))
    if missing or unexpected:
        raise ZooError(
            f"{net.layout}: conversion left missing={missing[:3]} unexpected={unexpected[:3]}"
        )
    model.load_state_dict({k: v.to(target[k].dtype) for k, v in state.items()})
    return model.eval()


# -- the upstream reference ----------------------------------------------------------------------


def _reference_pconv(
    x: Tensor, mask: Tensor, layer: Layer, stride: int, ratio: Ratio, bias_in_holes: bool
) -> tuple[Tensor, Tensor]:
    """One upstream partial convolution with a channel-wide mask, as their code computes it."""
    weight = layer.weight.to(x.dtype)
    k = layer.kernel
    pad = k // 2
    msum = F.conv2d(mask, torch.ones_like(weight), None, stride, pad)  # sum(M), per output channel
    raw = F.conv2d(x * mask, weight, None, stride, pad)
    numerator = {"window": layer.c_in * k * k, "kernel": k * k, "none": 1}[ratio]
    seen = msum > 0
    out = raw * torch.where(seen, numerator / msum.clamp(min=1e-12), torch.zeros((), dtype=x.dtype))
    if layer.bias is not None:
        b = layer.bias.to(x.dtype).view(1, -1, 1, 1)
        out = out + (b if bias_in_holes else b * seen)
    return out, seen.to(x.dtype)


def _reference_bn(x: Tensor, bn: BatchNorm) -> Tensor:
    shape = (1, -1, 1, 1)
    return (x - bn.running_mean.to(x.dtype).view(shape)) / torch.sqrt(
        bn.running_var.to(x.dtype).view(shape) + bn.eps
    ) * bn.weight.to(x.dtype).view(shape) + bn.bias.to(x.dtype).view(shape)


def reference_forward(
    net: UpstreamNet, image: Tensor, valid: Tensor, *, pre_head: bool = False
) -> Tensor:
    """The upstream network on ``image`` in [0,1] and ``valid`` [B,1,H,W]; output in [0,1] space.

    ``pre_head=True`` returns the last partial convolution's output before Keras' head.
    """
    return reference_run(net, image, valid, pre_head=pre_head)[0]


def reference_run(
    net: UpstreamNet, image: Tensor, valid: Tensor, *, pre_head: bool = False
) -> tuple[Tensor, Tensor]:
    """:func:`reference_forward` and the last layer's mask ``[B,1,H,W]`` (1 = saw valid input).

    ``image`` is RGB and so is the result: a BGR network gets the image's channels reversed and
    its output reversed back, as its authors' pipeline loads images and saves results.
    """
    dtype = image.dtype
    bgr = net.channel_order == "bgr"
    if bgr:
        image = image.flip(1)
    mean = torch.tensor(net.input_mean, dtype=dtype).view(1, 3, 1, 1)
    std = torch.tensor(net.input_std, dtype=dtype).view(1, 3, 1, 1)
    x = (image - mean) / std
    m = (valid > 0.5).to(dtype).expand(-1, 3, -1, -1)
    feats = [(x, m)]
    for layer in net.encoders:
        x, m = _reference_pconv(x, m, layer, 2, net.ratio, net.bias_in_holes)
        if layer.bn is not None:
            x = _reference_bn(x, layer.bn)
        x = F.relu(x)
        feats.append((x, m))
    for i in reversed(range(net.depth)):
        layer = net.decoders[i]
        up = F.interpolate(x, scale_factor=2.0, mode="nearest")
        up_m = F.interpolate(m, scale_factor=2.0, mode="nearest")
        skip, skip_m = feats[i]
        pair = [(skip, skip_m), (up, up_m)] if net.skip_first else [(up, up_m), (skip, skip_m)]
        x = torch.cat([p[0] for p in pair], dim=1)
        m = torch.cat([p[1] for p in pair], dim=1)
        x, m = _reference_pconv(x, m, layer, 1, net.ratio, net.bias_in_holes)
        if layer.bn is not None:
            x = _reference_bn(x, layer.bn)
        if i > 0:
            x = F.leaky_relu(x, net.leaky_slope)
    final_mask = m[:, :1]
    if net.head is None:
        out = x * std + mean
        return (out.flip(1) if bgr else out), final_mask
    if pre_head:
        return x, final_mask
    return apply_head(net.head, x), final_mask


def apply_head(head: Head, x: Tensor) -> Tensor:
    """Keras' ``sigmoid(1x1 conv(leaky_relu(x)))``."""
    a = F.leaky_relu(x, head.slope)
    return torch.sigmoid(
        torch.einsum("oi,bihw->bohw", head.weight.to(x.dtype), a)
        + head.bias.to(x.dtype).view(1, -1, 1, 1)
    )


# -- check inputs and measurement ----------------------------------------------------------------


def check_inputs(size: int, batch: int = 2, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Deterministic smooth images and masks with strokes, boxes and one large hole.

    The large hole makes some windows see nothing valid (the hole-handling branch), the strokes
    make partial windows at every level.
    """
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch, 3, 4, 4, generator=gen, dtype=torch.float64)
    image = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    image = image + 0.15 * torch.rand(batch, 3, size, size, generator=gen, dtype=torch.float64)
    image = image.clamp(0, 1)
    valid = torch.ones(batch, 1, size, size, dtype=torch.float64)
    for b in range(batch):
        s = size
        valid[b, :, s // 4 : s // 4 + s // 3, s // 5 : s // 5 + s // 3] = 0  # large hole
        for _ in range(6):
            y, x = (int(v) for v in torch.randint(0, s, (2,), generator=gen))
            h, w = (int(v) for v in torch.randint(1, max(2, s // 8), (2,), generator=gen))
            valid[b, :, y : y + h, x : x + w] = 0
    return image, valid


#: An upstream's reference forward: (net, image, valid) -> (output in [0,1] space, the mask of
#: output pixels it defines); :func:`reference_run` for the U-Nets.
Reference = Callable[[Any, Tensor, Tensor], tuple[Tensor, Tensor]]
#: What of our model is compared with it: (model, image, valid) -> output; ``forward`` for the
#: U-Nets.
Output = Callable[[nn.Module, Tensor, Tensor], Tensor]


def _forward(model: nn.Module, image: Tensor, valid: Tensor) -> Tensor:
    return model(image, valid)


@torch.no_grad()
def max_abs_diff(
    model: nn.Module,
    net: Any,
    size: int | None = None,
    *,
    reference: Reference = reference_run,
    output: Output = _forward,
) -> float:
    """Largest difference between our model and the upstream reference (float64 inputs),
    relative to the output's magnitude where it exceeds the [0,1] scale (random test weights)."""
    size = size or max(model.config.multiple, 32)
    image, valid = check_inputs(size)
    ours = output(_float64_copy(model), image, valid)
    theirs, seen = reference(net, image, valid)
    # Where the last layer saw no valid input (none in practice), upstreams that add the bias in
    # holes (Keras) differ from the paper's 0; every other pixel must agree.
    scale = max(1.0, float(theirs.abs().max()))
    return float(((ours - theirs).abs() * seen).max()) / scale


#: hole-ratio buckets of the irregular masks a conversion is measured with, one per photo in turn
MEASURE_BUCKETS = (0, 2, 4)


def photo_inputs(photos: Sequence[Path], size: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Real photos (centre square, Lanczos to ``size``) in float64 [0,1] and one irregular
    hole mask each (:mod:`pconv.masks`, buckets cycling through :data:`MEASURE_BUCKETS`),
    as ``valid`` masks (1 = known)."""
    from PIL import Image

    from pconv.masks import sample_mask

    images, valids = [], []
    for i, path in enumerate(photos):
        with Image.open(path) as im:
            rgb = im.convert("RGB")
        side = min(rgb.size)
        left, top = (rgb.width - side) // 2, (rgb.height - side) // 2
        rgb = rgb.crop((left, top, left + side, top + side)).resize((size, size), Image.LANCZOS)
        images.append(torch.from_numpy(np.asarray(rgb, dtype=np.float64) / 255).permute(2, 0, 1))
        bucket = MEASURE_BUCKETS[i % len(MEASURE_BUCKETS)]
        hole = sample_mask("irregular", size, rng=seed + i, bucket=bucket)
        valids.append(torch.from_numpy(~hole).to(torch.float64)[None])
    return torch.stack(images), torch.stack(valids)


@torch.no_grad()
def measure_on_photos(
    model: nn.Module,
    net: Any,
    photos: Sequence[Path],
    size: int | None = None,
    *,
    reference: Reference = reference_run,
    output: Output = _forward,
) -> dict[str, object]:
    """The converted model as it ships (float32) against the upstream reference (float64) on
    real photos with irregular holes, in [0, 1] units: over every pixel the last layer saw
    (``max_abs_diff``) and over the hole pixels, the only ones a composite keeps."""
    photos = list(photos)
    if not photos:
        raise ZooError("no photos to measure the conversion on")
    size = size or max(model.config.multiple, min(model.config.resolution, 256))
    image, valid = photo_inputs(photos, size)
    diffs, holes = [], []
    for b in range(len(photos)):  # one at a time: the float64 reference of a 512 net is large
        ours = output(model, image[b : b + 1].float(), valid[b : b + 1].float()).double()
        theirs, seen = reference(net, image[b : b + 1], valid[b : b + 1])
        diff = (ours - theirs).abs() * seen
        diffs.append(float(diff.max()))
        holes.append(diff[(valid[b : b + 1] < 0.5).expand_as(diff)])
    hole = torch.cat(holes)
    return {
        "photos": [Path(p).name for p in photos],
        "size": size,
        "masks": f"pconv irregular, hole-ratio buckets {list(MEASURE_BUCKETS)} in turn",
        "max_abs_diff": max(diffs),
        "hole_mean_abs_diff": float(hole.mean()),
    }


def _float64_copy(model: nn.Module) -> nn.Module:
    """A fresh float64 copy of ``model`` (built from its config: no cached state comes along)."""
    copy = type(model)(replace(model.config))
    copy.load_state_dict(model.state_dict())
    return copy.to(torch.float64).eval()


def check_finite(state: Mapping[str, Tensor], layout: str) -> None:
    bad = [
        k for k, t in state.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())
    ]
    if bad:
        raise ZooError(f"{layout}: non-finite values in {', '.join(bad[:3])}")
