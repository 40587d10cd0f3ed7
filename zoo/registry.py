"""The named models: where each lives on the Hub, where it came from, and how good it is.

Each entry pins a Hub repository, revision, file name and sha256 (``None`` until the file is
published: the sha256 of the *published* file is only known once it exists), and the upstream
checkpoint it is converted from, so that :func:`zoo.resolve` can rebuild it when the Hub copy is
not reachable or not yet published. Each states the weights' licence and, apart from it, the terms
of the data they were trained on: whether a product may use a model depends on both.

The Hub ids live under the ``pconv`` organisation the project would own; none is published yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pconv.errors import CheckpointError

#: Hub organisation of the project (placeholder until it is created).
HUB_ORG = "pconv"


class ZooError(CheckpointError):
    """A named model that cannot be resolved, downloaded, verified or converted."""


@dataclass(frozen=True)
class Evaluation:
    """Published figures, quoted as the upstream reports them (not re-measured here)."""

    dataset: str
    metrics: dict[str, float]
    protocol: str
    reported_by: str


@dataclass(frozen=True)
class Upstream:
    """A published checkpoint in another format, and how to turn it into ours."""

    url: str  # where its authors publish it (for a Google Drive file: the page they link)
    filename: str
    layout: str  # converter name: "mmagic", "naoto", "keras" or "deepgin"
    licence: str
    homepage: str
    # Full sha256 where known. OpenMMLab's file names carry the first 8 hex digits of the file's
    # sha256 (their publish_model.py appends sha256sum[:8]); that prefix is all we can pin offline.
    sha256: str | None = None
    sha256_prefix: str | None = None
    copyright: str = ""  # the notice the licence asks redistributions to keep
    citation: str = ""
    # A file on Google Drive: downloaded by id through Drive's confirmation step for large
    # files (zoo.upstream.drive_url), not from ``url``.
    drive_id: str | None = None


@dataclass(frozen=True)
class ModelEntry:
    name: str
    summary: str
    repo_id: str | None
    resolution: int
    licence: str  # SPDX id of the weights (as their authors released them), "other" if none
    source: str  # who trained it, with what code
    datasets: tuple[str, ...]
    mask_convention: str
    # The training data's terms, in plain words: each dataset and what its owners allow. Kept
    # apart from ``licence`` because a permissive weights licence does not make the data
    # behind it free to use commercially, and a user deciding that must see both.
    data_terms: str
    revision: str = "main"  # pin to a commit hash once published
    filename: str = "model.safetensors"
    sha256: str | None = None  # of the published file; None until it exists
    evaluation: tuple[Evaluation, ...] = ()
    upstream: Upstream | None = None
    packaged: str | None = None  # file name under zoo/weights/ for models shipped in the package
    limitations: tuple[str, ...] = ()
    aliases: tuple[str, ...] = field(default=())


_MMAGIC_BASE = "https://download.openmmlab.com/mmediting/inpainting/pconv/"
_MMAGIC_HOME = "https://github.com/open-mmlab/mmagic/tree/main/configs/partial_conv"
_PAPER = (
    "@inproceedings{liu2018image,\n  title={Image inpainting for irregular holes using partial "
    "convolutions},\n  author={Liu, Guilin and Reda, Fitsum A and Shih, Kevin J and Wang, "
    "Ting-Chun and Tao, Andrew and Catanzaro, Bryan},\n  booktitle={ECCV},\n  year={2018}\n}"
)
# mmagic's get_irregular_mask(num_vertices=(4, 10), ...) draws with np.random.randint, so the
# upper bounds are exclusive: 4-9 start points, brush widths 10-44 px, segments 20-127 px.
_MMAGIC_MASKS = (
    "mmagic irregular masks (get_irregular_mask: 4-9 start points, each drawing 1-5 connected "
    "strokes of 20-127 px, brush width 10-44 px, redrawn until the hole covers 15-65% of the "
    "image)"
)
_MMAGIC_IMAGES = "random 384x384 crops resized to 256x256"
_NOT_COMMERCIAL = "Not for commercial use."
_PLACES_TERMS = (
    "for non-commercial research and educational purposes only (MIT CSAIL's Places365 terms of "
    "use)."
)
_IMAGENET_TERMS = (
    "ImageNet: non-commercial research and educational purposes only (ImageNet terms of access)."
)
_ADE20K_TERMS = (
    "ADE20K (MIT CSAIL; its images come from the SUN and Places databases, and MIT does not own "
    "their copyright): non-commercial research and educational purposes only (ADE20K terms of "
    "use)."
)
_DEEPGIN_PAPER = (
    "@misc{li2020deepgin,\n  title={DeepGIN: Deep Generative Inpainting Network for Extreme "
    "Image Inpainting},\n  author={Chu-Tak Li and Wan-Chi Siu and Zhi-Song Liu and Li-Wen Wang "
    "and Daniel Pak-Kong Lun},\n  year={2020},\n  eprint={2008.07173},\n  "
    "archivePrefix={arXiv},\n  primaryClass={cs.CV}\n}"
)
_LOW_RES = (
    "Trained at 256x256: pconv.inpaint works on larger images at that scale (crop or downscale), "
    "so fine detail in large holes is limited."
)

REGISTRY: dict[str, ModelEntry] = {
    "default": ModelEntry(
        name="default",
        summary=(
            "Small PConv U-Net (7 levels, 24..192 channels, 3.6 M parameters, fp16) with a "
            "learned gate to a thin-plate fill (smooth prior), trained by this project on 1348 "
            "photos; ships inside the package, so everything works offline."
        ),
        repo_id=f"{HUB_ORG}/pconv-default",
        resolution=256,
        licence="other",
        source="pconv (this project's train/ package), see zoo/weights/default.md",
        datasets=(
            "imagenet-1k (800 images)",
            "bsds500",
            "urban100",
            "kodak24",
            "mcmaster",
            "debian wallpapers (38)",
        ),
        mask_convention="network input: 1 = valid pixel",
        data_terms=(
            f"{_IMAGENET_TERMS} BSDS500: non-commercial research and educational use. "
            "Urban100, McMaster: research use. Kodak24: free use. Debian wallpapers: LGPL-3 / "
            "GPL-2+ / CC-BY(-SA) / CC0, as their packages state. "
            f"{_NOT_COMMERCIAL}"
        ),
        sha256="cb1cc1720a72a99006644ae9c4624cef8a42c020b9f2a2b660240c582745e73f",
        packaged="default.safetensors",
        evaluation=(
            Evaluation(
                dataset="pconv dev split (100 ImageNet + 100 BSDS500 photos, 600 NVIDIA masks)",
                metrics={"l1 error": 2.57, "PSNR": 25.67, "SSIM": 0.833},
                protocol="pconv eval, 256x256 centre crops, whole composited image",
                reported_by="this project (README, Evaluation)",
            ),
            Evaluation(
                dataset="pconv dev split (100 ImageNet + 100 BSDS500 photos, 600 NVIDIA masks)",
                metrics={"l1 error": 2.59, "PSNR": 25.60, "SSIM": 0.851},
                protocol="pconv eval, 512x512 centre crops, whole composited image",
                reported_by="this project (README, Evaluation)",
            ),
        ),
        limitations=(
            "Trained for 10068 steps (4.6 h) on a 2-core CPU: large holes come out blurry.",
            "Non-commercial research use only: most of its training photos are licensed so.",
        ),
    ),
    "places2": ModelEntry(
        name="places2",
        summary="PConv U-Net (7 levels, 256x256) trained on Places365-Challenge by OpenMMLab.",
        repo_id=f"{HUB_ORG}/pconv-places2-256",
        resolution=256,
        licence="Apache-2.0",
        source=(
            "OpenMMLab mmediting/mmagic, config pconv_stage2_4xb2_places-256x256 (stage 2, "
            "fine-tuned from a stage-1 checkpoint; 500k iterations: config max_iters=500000 and "
            f"README agree), Places365-Challenge training list, {_MMAGIC_IMAGES}"
        ),
        datasets=("places365",),
        mask_convention="upstream: mask 1 = hole outside the generator; converted: 1 = valid",
        data_terms=f"Places365-Challenge: {_PLACES_TERMS} {_NOT_COMMERCIAL}",
        evaluation=(
            Evaluation(
                dataset="Places365-val",
                metrics={"l1 error": 8.776, "PSNR": 22.762, "SSIM": 0.801},
                protocol=f"256x256, {_MMAGIC_MASKS}",
                reported_by="OpenMMLab (configs/partial_conv/README.md)",
            ),
        ),
        upstream=Upstream(
            url=_MMAGIC_BASE + "pconv_256x256_stage2_4x2_places_20200619-1ffed0e8.pth",
            filename="pconv_256x256_stage2_4x2_places_20200619-1ffed0e8.pth",
            layout="mmagic",
            licence="Apache-2.0",
            homepage=_MMAGIC_HOME,
            sha256_prefix="1ffed0e8",
            copyright="Copyright (c) OpenMMLab. All rights reserved.",
            citation=_PAPER,
        ),
        limitations=(_LOW_RES, "Scenes: weak on faces and text."),
    ),
    "celeba-hq": ModelEntry(
        name="celeba-hq",
        summary="PConv U-Net (7 levels, 256x256) trained on CelebA-HQ faces by OpenMMLab.",
        repo_id=f"{HUB_ORG}/pconv-celeba-hq-256",
        resolution=256,
        licence="Apache-2.0",
        source=(
            "OpenMMLab mmediting/mmagic, config pconv_stage2_4xb2_celeba-256x256 (stage 2, "
            "fine-tuned from a stage-1 checkpoint; iterations: max_iters=300002 in that config, "
            "500k in the README's table), data/CelebA-HQ with train_celeba_img_list.txt, "
            f"{_MMAGIC_IMAGES}"
        ),
        datasets=("celeba-hq",),
        mask_convention="upstream: mask 1 = hole outside the generator; converted: 1 = valid",
        data_terms=(
            "CelebA-HQ (derived from CelebA, CUHK): non-commercial research purposes only "
            f"(CelebA agreement). {_NOT_COMMERCIAL}"
        ),
        evaluation=(
            Evaluation(
                dataset="CelebA-HQ val (README: 'CelebA-val'; val_celeba_img_list.txt)",
                metrics={"l1 error": 5.990, "PSNR": 25.404, "SSIM": 0.853},
                protocol=f"256x256, {_MMAGIC_MASKS}",
                reported_by="OpenMMLab (configs/partial_conv/README.md)",
            ),
        ),
        upstream=Upstream(
            url=_MMAGIC_BASE + "pconv_256x256_stage2_4x2_celeba_20200619-860f8b95.pth",
            filename="pconv_256x256_stage2_4x2_celeba_20200619-860f8b95.pth",
            layout="mmagic",
            licence="Apache-2.0",
            homepage=_MMAGIC_HOME,
            sha256_prefix="860f8b95",
            copyright="Copyright (c) OpenMMLab. All rights reserved.",
            citation=_PAPER,
        ),
        limitations=(_LOW_RES, "Aligned, centred face crops only; CelebA-HQ's demographic bias."),
        aliases=("celeba",),
    ),
    "imagenet": ModelEntry(
        name="imagenet",
        summary="PConv U-Net (8 levels, 512x512) trained on ImageNet with Keras by M. Gruber.",
        repo_id=f"{HUB_ORG}/pconv-imagenet-512",
        resolution=512,
        licence="MIT",
        source="MathiasGruber/PConv-Keras, ImageNet weights (phase 2, epoch 26)",
        datasets=("imagenet-1k",),
        mask_convention="upstream: mask 1 = valid pixel; converted: 1 = valid",
        data_terms=f"{_IMAGENET_TERMS} {_NOT_COMMERCIAL}",
        upstream=Upstream(
            # The weights are published on Google Drive (README of the repository).
            url="https://drive.google.com/file/d/1OdbuNJj4gV9KUoknQG063jJrJ1srhBvU/view",
            drive_id="1OdbuNJj4gV9KUoknQG063jJrJ1srhBvU",
            filename="pconv_imagenet.26-1.07.h5",
            layout="keras",
            licence="MIT",
            homepage="https://github.com/MathiasGruber/PConv-Keras",
            copyright="Copyright (c) 2018 Mathias Gruber",
            citation=_PAPER,
        ),
        limitations=(
            "Not the paper's output layer: the Keras model ends in LeakyReLU -> 1x1 conv -> "
            "sigmoid after the last partial convolution; the converted model keeps it exactly "
            "(head='sigmoid', 12 parameters), and its measured error is in the metadata.",
            "No evaluation figures were published upstream.",
        ),
    ),
    "places2-naoto": ModelEntry(
        name="places2-naoto",
        summary="PConv U-Net (7 levels, 256x256) trained on Places2 by N. Inoue (PyTorch).",
        repo_id=f"{HUB_ORG}/pconv-places2-naoto-256",
        resolution=256,
        licence="MIT",
        source="naoto0804/pytorch-inpainting-with-partial-conv release v0.0.0 (1M iterations)",
        datasets=("places365",),
        mask_convention="upstream: mask 1 = valid pixel; converted: 1 = valid",
        data_terms=f"Places2 (Places365): {_PLACES_TERMS} {_NOT_COMMERCIAL}",
        upstream=Upstream(
            url="https://github.com/naoto0804/pytorch-inpainting-with-partial-conv/releases/"
            "download/v0.0.0/1000000.pth",
            filename="1000000.pth",
            layout="naoto",
            licence="MIT",
            homepage="https://github.com/naoto0804/pytorch-inpainting-with-partial-conv",
            copyright="Copyright (c) 2018 Naoto Inoue",
            citation=_PAPER,
        ),
        limitations=(
            _LOW_RES,
            "The author notes the re-implementation does not fully reproduce the paper's results.",
            "No evaluation figures were published upstream.",
        ),
    ),
    "deepgin-aim2020": ModelEntry(
        name="deepgin-aim2020",
        summary=(
            "DeepGIN (Li et al.; 42.9 M parameters, coarse G1 + refinement G2, 256x256) as its "
            "authors trained it for the AIM 2020 Extreme Image Inpainting challenge, Track 1, "
            "on ADE20K."
        ),
        repo_id=f"{HUB_ORG}/deepgin-aim2020-256",
        resolution=256,
        licence="BSD-2-Clause",
        source=(
            "rlct1/gin (Li, Siu, Liu, Wang, Lun), the generator they entered in AIM 2020 Track 1 "
            "(Classic), tested with their test_ensemble.py: the ADE20K training images resized to "
            "512x512, rotated by a random multiple of 90 degrees, flipped at random and "
            "sub-sampled by 2 to 256x256, each paired with one mask of each AIM 2020 Track 1 kind "
            "(a rectangle of 30-70% of each side, cellular-automata blobs, free-form strokes)"
        ),
        datasets=("ade20k",),
        mask_convention="upstream: mask 1 = hole, holes painted white; converted: 1 = valid",
        data_terms=f"{_ADE20K_TERMS} {_NOT_COMMERCIAL}",
        upstream=Upstream(
            url="https://drive.google.com/file/d/1yOtMELWwTBc-PMSY69x1FH8D1anUN7tD/view",
            drive_id="1yOtMELWwTBc-PMSY69x1FH8D1anUN7tD",
            # test_ensemble.py loads checkpoints/gin/latest_net_G.pth (which_epoch "latest",
            # the generator "G"); the Drive file's own name is not stated anywhere.
            filename="latest_net_G.pth",
            layout="deepgin",
            licence="BSD-2-Clause",
            homepage="https://github.com/rlct1/gin",
            copyright="Copyright (c) 2020, ronctl. All rights reserved.",
            citation=_DEEPGIN_PAPER,
        ),
        limitations=(
            "Trained at 256x256: pconv.inpaint fills larger photos through 256 px sub-images "
            "of every k-th pixel (its default strategy for DeepGIN); test_ensemble.py's own "
            "resizing to multiples of 256, its five-view average (pconv.inpaint(ensemble=True) "
            "offers it, for every model) and its final half-size blur are not applied by default.",
            "Scenes (ADE20K): faces, text and fine regular structure are weak; no evaluation "
            "figures are quoted here (the challenge scored its test set, whose ground truth is "
            "not public).",
            "The BSD-2-Clause licence is rlct1/gin's repository licence, the only one its authors "
            "state; the file on Google Drive carries none of its own. Their LICENSE also keeps "
            "the BSD notices of pix2pixHD (NVIDIA) and pytorch-CycleGAN-and-pix2pix, whose code "
            "theirs builds on; pconv uses none of that code.",
            "The file's sha256 is not pinned (it could not be downloaded when this entry was "
            "written): a build checks layout and numbers, and records and prints the sha256.",
        ),
    ),
}


def names() -> list[str]:
    """The zoo's model names, for menus (CLI choices, the ComfyUI loader, the demo)."""
    return list(REGISTRY)


def get_entry(name: str) -> ModelEntry:
    """The entry for ``name`` (or one of its aliases); :class:`ZooError` if there is none."""
    key = name.strip().lower()
    if key in REGISTRY:
        return REGISTRY[key]
    for entry in REGISTRY.values():
        if key in entry.aliases:
            return entry
    raise ZooError(f"{name}: no such model; known: {', '.join(REGISTRY)}")


def is_registered(name: str) -> bool:
    try:
        get_entry(name)
    except ZooError:
        return False
    return True
