"""rlct1/gin: DeepGIN's generator as its authors trained it for AIM 2020 Track 1 (class
``ImageTinker2`` of ``models/networks.py``, pix2pixHD skeleton, PyTorch 1.5).

Layout of the released ``latest_net_G.pth`` (``BaseModel.save_network``:
``torch.save(netG.cpu().state_dict())``, the generator alone, no wrapper, no ``module.``
prefix: ``netG`` is not the DataParallel module; PyTorch 1.5 wrote the legacy, non-zip pickle):

* ``lr_coarse_tinker.{i}.{weight,bias}``: G1, one ``nn.Sequential`` whose indices count the
  weightless pads, LeakyReLUs and upsamplings too: 7x7 conv at 1 (4 -> 32), 4x4/2 convs at 4, 7
  and 10 (-> 64, 128, 256), six SPD blocks at 12..17, 3x3 convs after a bilinear x2 at 20, 24
  and 28 (-> 128, 64, 32), the 7x7 conv to RGB at 31;
* ``lr_coarse_tinker.{12..17}.branch{1..8}.conv.*`` (3x3, 256 -> 32, dilations 2, 3, 4, 5, 6,
  8, 10, 1 in that order, each padded by its dilation, then ReLU) and ``.fusion9.conv.*``
  (3x3, 256 -> 256, no activation; the block adds its input);
* ``r_en_conv{1..5}``: G2's encoder (7x7 4 -> 32; 4x4/2 to 64, 128, 256, 512);
  ``r_en_skp_conv3`` / ``r_en_skp_conv4``: 3x3 convs halving the 64x64 and 32x32 features;
* ``r_md_mres{1,2,5,3,4,6}.branch{1..4}.conv.*`` (512 -> 128, dilations 2, 3, 4, 5) and
  ``.fusion5.conv.*``, applied in that order with ``r_md_satn1`` between mres5 and mres3;
* ``r_md_satn1`` (16x16, 512 ch), ``r_de_satn2`` (32x32 skip, 128 ch), ``r_de_satn3`` (64x64
  skip, 64 ch): ``NonLocalBlock(sub_sample=False, bn_layer=False)``, 1x1 ``theta`` (query),
  ``phi`` (key), ``g`` (value) to C/2 and ``W`` back to C, ``x + W(softmax(theta^T phi) g)``
  with no scaling and no gamma;
* ``r_de_conv1`` / ``r_de_mix_conv1`` (32x32), ``r_de_conv2`` / ``r_de_mix_conv2`` (64x64),
  ``r_de_conv2_lr`` / ``r_de_conv3_lr`` (Back Projection's 64x64 ``I_lr``), ``r_de_conv3``,
  ``r_de_conv4``, ``r_de_conv5`` (7x7 to RGB) and ``r_de_conv5_lr_alpha`` (3x3 to 1, sigmoid).

Every convolution has a bias; no normalisation layer exists (``define_G`` passes a BatchNorm
that ``ImageTinker2`` never uses). Replicate padding, LeakyReLU(0.2) after every plain conv but
the RGB and ``I_lr`` outputs, ``nn.UpsamplingBilinear2d`` (``align_corners=True``) for every x2,
the x4 and the x0.25 of Back Projection.

Semantics (``ImageTinker2.forward``, ``test_ensemble.py``): RGB images in [0, 1] (PIL, then
``ToTensor``, no normalisation), holes painted white (255), the mask 1 = hole as the fourth
channel of both generators; G2 sees G1's output composited with the known pixels; the result is
``reconst_img``: ``C(I_rec) + alpha * up4(I_lr - down4(C(I_rec)))``, linear, clipped to
[0, 255] when saved. That is :meth:`pconv.archs.deepgin.DeepGINConfig.aim2020` exactly: the
conversion concatenates each block's branch kernels into one spread kernel in the branch order
(which the config's ``coarse_rates`` keep), renames, and sets each attention's ``gamma`` to 1.

What the file cannot say: the dilation rates are not stored in it (a branch kernel is 3x3 at
any rate); they are read from ``networks.py``, the code that wrote it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pconv.archs.deepgin.model import AIM2020_COARSE_RATES, REFINE_RATES, DeepGIN, DeepGINConfig

from ..registry import ZooError

LAYOUT = "deepgin"
NESTINGS = ("state_dict",)  # the release saves the bare state dict; a wrapped one reads too
SEQ = "lr_coarse_tinker"
#: the plain convolutions of G1's Sequential, at these offsets from the first SPD block
#: (index 12): encoder at -11, -8, -5, -2; decoder at n + 2, n + 6, n + 10; RGB at n + 13
_COARSE_ENCODER = (1, 4, 7, 10)
_FIRST_BLOCK = 12
#: G2's SPD blocks before and after its 16x16 attention, in the order forward applies them
REFINE_BEFORE = ("r_md_mres1", "r_md_mres2", "r_md_mres5")
REFINE_AFTER = ("r_md_mres3", "r_md_mres4", "r_md_mres6")
#: our attention block <- the release's non-local block
ATTENTIONS = {
    "refine.attend16": "r_md_satn1",
    "refine.attend32": "r_de_satn2",
    "refine.attend64": "r_de_satn3",
}
#: our projection <- the non-local block's
ATTENTION_PARTS = {"query": "theta", "key": "phi", "value": "g", "out": "W"}
#: our plain convolution <- the release's, for G2
REFINE_CONVS = {
    **{f"refine.encoder.{i}": f"r_en_conv{i + 1}" for i in range(5)},
    "refine.skip64": "r_en_skp_conv3",
    "refine.skip32": "r_en_skp_conv4",
    "refine.up32": "r_de_conv1",
    "refine.mix32": "r_de_mix_conv1",
    "refine.up64": "r_de_conv2",
    "refine.mix64": "r_de_mix_conv2",
    "refine.low_res.0": "r_de_conv2_lr",
    "refine.low_res.1": "r_de_conv3_lr",
    "refine.up128": "r_de_conv3",
    "refine.up256": "r_de_conv4",
    "refine.to_rgb": "r_de_conv5",
    "refine.alpha": "r_de_conv5_lr_alpha",
}
_PLAIN = re.compile(rf"^{SEQ}\.(\d+)\.weight$")
_BLOCK = re.compile(rf"^{SEQ}\.(\d+)\.fusion9\.conv\.weight$")


@dataclass
class GinNet:
    """The release's state dict (its own key names) and the shape it implies."""

    state: dict[str, Tensor]
    base_width: int  # the release's ngf
    coarse_blocks: int
    attention_reduction: int
    layout: str = LAYOUT
    ignored: list[str] = field(default_factory=list)

    def coarse_index(self) -> dict[str, int]:
        """G1's Sequential index of each of our coarse convolutions."""
        n = self.coarse_blocks
        index = {f"coarse.encoder.{i}": j for i, j in enumerate(_COARSE_ENCODER)}
        index |= {f"coarse.decoder.{i}": _FIRST_BLOCK + n + 2 + 4 * i for i in range(3)}
        return index | {"coarse.to_rgb": _FIRST_BLOCK + n + 13}

    def spd_blocks(self) -> dict[str, tuple[str, int, str]]:
        """Our SPD block -> (the release's block prefix, its branch count, its fusion name)."""
        coarse = (len(AIM2020_COARSE_RATES), "fusion9")
        blocks = {
            f"coarse.blocks.{b}": (f"{SEQ}.{_FIRST_BLOCK + b}", *coarse)
            for b in range(self.coarse_blocks)
        }
        for part, names in (("blocks_before", REFINE_BEFORE), ("blocks_after", REFINE_AFTER)):
            for b, name in enumerate(names):
                blocks[f"refine.{part}.{b}"] = (name, len(REFINE_RATES), "fusion5")
        return blocks

    def config(self, resolution: int) -> DeepGINConfig:
        return DeepGINConfig.aim2020(
            base_width=self.base_width,
            coarse_blocks=self.coarse_blocks,
            attention_reduction=self.attention_reduction,
            resolution=resolution,
        )


def _strip(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Without a ``module.`` prefix (a generator saved from inside DataParallel)."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module.") :]: v for k, v in state.items()}
    return dict(state)


def detect(state: Mapping[str, Tensor]) -> bool:
    """The release's names: G1's ``lr_coarse_tinker`` Sequential and G2's ``r_en_conv1``."""
    keys = _strip(state)
    return f"{SEQ}.1.weight" in keys and "r_en_conv1.weight" in keys


def _get(state: Mapping[str, Tensor], key: str) -> Tensor:
    tensor = state.get(key)
    if tensor is None:
        raise ZooError(f"{LAYOUT}: missing {key}")
    return tensor


def parse(state: Mapping[str, Tensor]) -> GinNet:
    state = _strip(state)
    first = _get(state, "r_en_conv1.weight")
    width = 2 * int(first.shape[0])
    blocks = sorted(int(m[1]) for k in state if (m := _BLOCK.match(k)))
    if blocks != list(range(_FIRST_BLOCK, _FIRST_BLOCK + len(blocks))) or not blocks:
        raise ZooError(
            f"{LAYOUT}: {SEQ} SPD blocks at indices {blocks}, expected 12, 13, ... (the release's "
            "Sequential)"
        )
    attention = _get(state, "r_md_satn1.g.weight")
    inner = int(attention.shape[0])
    if inner < 1 or (8 * width) % inner:
        shape = tuple(attention.shape)
        raise ZooError(f"{LAYOUT}: r_md_satn1.g.weight {shape} is not a 1x1 C -> C/r projection")
    net = GinNet(
        state=state,
        base_width=width,
        coarse_blocks=len(blocks),
        attention_reduction=8 * width // inner,
    )
    plain = sorted(int(m[1]) for k in state if (m := _PLAIN.match(k)))
    expected = sorted(net.coarse_index().values())
    if plain != expected:
        raise ZooError(f"{LAYOUT}: {SEQ} convolutions at {plain}, expected {expected}")
    extra = sorted(set(state) - set(_mapping(net).values()))
    if extra:  # another version of the network: nothing may be dropped quietly
        raise ZooError(f"{LAYOUT}: keys no layer of the release holds: {', '.join(extra[:3])}")
    return net


def _mapping(net: GinNet) -> dict[str, str]:
    """Our key -> the release's key, for everything but the SPD spreads and attention gammas
    (those are assembled from several tensors, or from none)."""
    mapping: dict[str, str] = {}
    plain = {ours: f"{SEQ}.{j}" for ours, j in net.coarse_index().items()} | REFINE_CONVS
    for ours, theirs in plain.items():
        for p in ("weight", "bias"):
            mapping[f"{ours}.{p}"] = f"{theirs}.{p}"
    for ours, (theirs, branches, fusion) in net.spd_blocks().items():
        for p in ("weight", "bias"):
            mapping[f"{ours}.fuse.{p}"] = f"{theirs}.{fusion}.conv.{p}"
            for b in range(1, branches + 1):
                mapping[f"{ours}.spread.{p}#{b}"] = f"{theirs}.branch{b}.conv.{p}"
    for ours, theirs in ATTENTIONS.items():
        for part, name in ATTENTION_PARTS.items():
            for p in ("weight", "bias"):
                mapping[f"{ours}.{part}.{p}"] = f"{theirs}.{name}.{p}"
    return mapping


def to_deepgin(net: GinNet, resolution: int) -> DeepGIN:
    """Our model with the release's weights, exactly (float32 as stored)."""
    try:
        config = net.config(resolution)
    except ValueError as exc:
        raise ZooError(f"{LAYOUT}: the checkpoint's shape does not fit DeepGIN ({exc})") from None
    model = DeepGIN(config)
    target = model.state_dict()
    state: dict[str, Tensor] = {}
    spread: dict[str, list[Tensor]] = {}
    for ours, theirs in _mapping(net).items():
        tensor = _get(net.state, theirs)
        if "#" in ours:  # the branches of one spread kernel, in branch order
            spread.setdefault(ours.split("#")[0], []).append(tensor)
        else:
            state[ours] = tensor
    state |= {k: torch.cat(parts) for k, parts in spread.items()}
    for ours in ATTENTIONS:
        state[f"{ours}.gamma"] = torch.ones(())  # the release adds W(y) unscaled
    missing, unexpected = sorted(set(target) - set(state)), sorted(set(state) - set(target))
    if missing or unexpected:
        raise ZooError(
            f"{LAYOUT}: conversion left missing={missing[:3]} unexpected={unexpected[:3]}"
        )
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(target[key].shape):
            raise ZooError(
                f"{LAYOUT}: {key} would be {tuple(tensor.shape)}, DeepGIN.aim2020 needs "
                f"{tuple(target[key].shape)} (base width {net.base_width})"
            )
    model.load_state_dict({k: v.to(target[k].dtype) for k, v in state.items()})
    return model.eval()


# -- the release's forward pass, from its code ---------------------------------------------------


def reference_run(net: GinNet, image: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """``ImageTinker2.forward`` on the release's keys: ``reconst_img`` (unclipped, [0, 1]
    space) for an RGB ``image`` in [0, 1] and ``valid`` (1 = known), and an all-ones map (every
    output pixel is the network's). Written from ``networks.py``, in ``image``'s dtype."""
    sd = {k: v.to(image.dtype) for k, v in net.state.items()}
    pad = nn.ReplicationPad2d
    up2, up4 = nn.UpsamplingBilinear2d(scale_factor=2), nn.UpsamplingBilinear2d(scale_factor=4)
    down = nn.UpsamplingBilinear2d(scale_factor=0.25)

    def conv(x: Tensor, name: str, stride: int = 1, padding: int | None = None) -> Tensor:
        w = sd[f"{name}.weight"]
        p = w.shape[-1] // 2 if padding is None else padding
        return F.conv2d(pad(p)(x), w, sd[f"{name}.bias"], stride)

    def act(x: Tensor) -> Tensor:
        return F.leaky_relu(x, 0.2)

    def spd(x: Tensor, name: str, rates: tuple[int, ...], fusion: str) -> Tensor:
        parts = [
            F.relu(
                F.conv2d(
                    pad(r)(x), sd[f"{name}.branch{b}.conv.weight"],
                    sd[f"{name}.branch{b}.conv.bias"], dilation=r,
                )
            )
            for b, r in enumerate(rates, start=1)
        ]  # fmt: skip
        return x + conv(torch.cat(parts, dim=1), f"{name}.{fusion}.conv")

    def non_local(x: Tensor, name: str) -> Tensor:
        b, _, h, w = x.shape

        def proj(part: str) -> Tensor:
            return F.conv2d(x, sd[f"{name}.{part}.weight"], sd[f"{name}.{part}.bias"])

        g = proj("g").flatten(2).permute(0, 2, 1)
        theta = proj("theta").flatten(2).permute(0, 2, 1)
        phi = proj("phi").flatten(2)
        y = torch.matmul(F.softmax(torch.matmul(theta, phi), dim=-1), g)
        y = y.permute(0, 2, 1).reshape(b, -1, h, w)
        return x + F.conv2d(y, sd[f"{name}.W.weight"], sd[f"{name}.W.bias"])

    msk = (valid <= 0.5).to(image.dtype)  # test_ensemble.py: mask > 0 is a hole
    rimg = image * (1 - msk) + msk  # holes painted white
    index = net.coarse_index()
    x = torch.cat([rimg, msk], dim=1)
    for i in range(4):
        name = f"{SEQ}.{index[f'coarse.encoder.{i}']}"
        x = act(conv(x, name) if i == 0 else conv(x, name, 2, 1))
    for b in range(net.coarse_blocks):
        x = spd(x, f"{SEQ}.{_FIRST_BLOCK + b}", AIM2020_COARSE_RATES, "fusion9")
    for i in range(3):
        x = act(conv(up2(x), f"{SEQ}.{index[f'coarse.decoder.{i}']}"))
    lr_x = conv(x, f"{SEQ}.{index['coarse.to_rgb']}")
    hr_x = lr_x * msk + rimg * (1 - msk)

    y = torch.cat([hr_x, msk], dim=1)
    e1 = act(conv(y, "r_en_conv1"))
    e2 = act(conv(e1, "r_en_conv2", 2, 1))
    e3 = act(conv(e2, "r_en_conv3", 2, 1))
    e4 = act(conv(e3, "r_en_conv4", 2, 1))
    e5 = act(conv(e4, "r_en_conv5", 2, 1))
    de3 = non_local(act(conv(e3, "r_en_skp_conv3")), "r_de_satn3")
    de4 = non_local(act(conv(e4, "r_en_skp_conv4")), "r_de_satn2")
    m = e5
    for name in REFINE_BEFORE:
        m = spd(m, name, REFINE_RATES, "fusion5")
    m = non_local(m, "r_md_satn1")
    for name in REFINE_AFTER:
        m = spd(m, name, REFINE_RATES, "fusion5")
    d1 = act(conv(up2(m), "r_de_conv1"))
    md1 = act(conv(torch.cat([d1, de4], dim=1), "r_de_mix_conv1"))
    d2 = act(conv(up2(md1), "r_de_conv2"))
    md2 = act(conv(torch.cat([d2, de3], dim=1), "r_de_mix_conv2"))
    d3_lr = conv(act(conv(md2, "r_de_conv2_lr")), "r_de_conv3_lr")
    d3 = act(conv(up2(md2), "r_de_conv3"))
    d4 = act(conv(up2(d3), "r_de_conv4"))
    d5 = conv(d4, "r_de_conv5")
    alpha = torch.sigmoid(conv(d4, "r_de_conv5_lr_alpha"))
    d5 = d5 * msk + rimg * (1 - msk)
    reconst = d5 + up4(d3_lr - down(d5)) * alpha
    return reconst, torch.ones_like(valid)


def model_output(model: nn.Module, image: Tensor, valid: Tensor) -> Tensor:
    """What :func:`reference_run` computes, from ours: ``I_out`` before the clamp that
    ``forward`` applies (as the release clips when it saves), so nothing is hidden by it."""
    return model.forward_train(image, valid)["output"]


def notes() -> list[str]:
    return [
        "rlct1/gin ImageTinker2 generator (latest_net_G.pth): keys renamed; each SPD block's "
        "branch kernels concatenated into one spread kernel in branch order (coarse rates "
        "2, 3, 4, 5, 6, 8, 10, 1; refinement 2, 3, 4, 5; read from networks.py, the file "
        "does not store them); non-local blocks as self-attention with gamma = 1 (exact)",
        "RGB images in [0,1], holes painted white, mask 1 = hole as the fourth channel; "
        "bilinear resampling with align_corners=True (nn.UpsamplingBilinear2d) for every x2, "
        "the x4 and the x0.25 of Back Projection: DeepGINConfig.aim2020()",
        "compared before the output clamp (the release clips to [0, 255] when it saves)",
    ]
