"""Trained weights in the zoo's format, and a model card draft next to them.

``FOLDER/model.safetensors`` is written with :func:`pconv.save_model`; its metadata says what
the zoo's card and config writers read (``name``, ``summary``, ``licence``, ``source``,
``datasets``, ``evaluation``, ``limitations``) and what a reader of the file needs to judge it
(``training``: data, steps, schedule, masks, hardware; ``loss``: the loss's ``describe()``;
``metrics``; ``licence_note``; ``command``). ``MODEL_CARD.md`` is a draft in the zoo's card
layout (YAML header, the sections ``python -m zoo publish`` checks, the weights' sha256):
edit it in place (or save an edited copy as ``README.md``, which wins) and ``zoo publish``
uploads it as the card.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import ModelCardData

import pconv
from pconv.checkpoint import WEIGHTS_NAME, save_model
from pconv.unet import PConvUNet

CARD_NAME = "MODEL_CARD.md"
SOURCE = "pconv train (python -m train)"


def hardware(device: torch.device, world: int) -> str:
    if device.type == "cuda":
        what = torch.cuda.get_device_name(device)
    else:
        what = f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores"
    return f"{world} x {what}, torch {torch.__version__}"


def licence_note(data: list[str]) -> str:
    return f"trained on {', '.join(data)}: check the data's licences"


def build_metadata(info: dict[str, Any]) -> dict[str, str]:
    """String metadata for the weights file from the trainer's run ``info``."""
    metrics = info.get("metrics") or {}
    evaluation = []
    if metrics:
        evaluation.append(
            {
                "dataset": info["val_description"],
                "metrics": {k: round(v, 4) for k, v in metrics.items() if k != "loss"},
                "protocol": info["val_protocol"],
                "reported_by": SOURCE,
            }
        )
    limitations = [
        f"Trained on {info['images']} images ({', '.join(info['data'])}) for {info['step']} "
        "steps: it knows that kind of picture, not the world at large.",
        licence_note(info["data"]) + ".",
    ]
    backbone = info["loss"].get("backbone", {})
    if not backbone.get("faithful", False):
        limitations.append(
            f"Perceptual/style loss backbone: {backbone.get('name', 'none')} "
            "(not the paper's ImageNet VGG16), so these weights differ from the paper's recipe."
        )
    return {
        "name": info["name"],
        "summary": f"PConv U-Net fine-tuned/trained with pconv on {', '.join(info['data'])}.",
        "licence": info["licence"],
        "source": SOURCE,
        "datasets": json.dumps([]),  # Hub dataset ids only; local folders go in "training"
        "resolution": str(info["size"]),
        "evaluation": json.dumps(evaluation),
        "limitations": json.dumps(limitations),
        "version": f"pconv-{pconv.__version__}",
        "training": json.dumps(info["training"], sort_keys=True),
        "loss": json.dumps(info["loss"], sort_keys=True),
        "metrics": json.dumps(metrics, sort_keys=True),
        "licence_note": licence_note(info["data"]),
        "command": info["command"],
        "hardware": info["hardware"],
        "created": info["created"],
    }


def export(model: PConvUNet, folder: Path, meta: dict[str, str]) -> Path:
    """``folder/model.safetensors`` (atomic), float32, with ``meta``."""
    return save_model(model, Path(folder) / WEIGHTS_NAME, meta)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_card(folder: Path, meta: dict[str, str], model: PConvUNet) -> Path:
    """``folder/MODEL_CARD.md``: a draft for a person to complete before publishing."""
    weights = Path(folder) / WEIGHTS_NAME
    training = json.loads(meta["training"])
    loss = json.loads(meta["loss"])
    metrics = json.loads(meta["metrics"])
    config = model.config
    params = sum(p.numel() for p in model.parameters())
    licence = meta["licence"]
    header = ModelCardData(
        license=licence.lower() if licence.lower() != "other" else "other",
        tags=["image-inpainting", "inpainting", "partial-convolution", "pconv", "safetensors"],
        library_name="pconv",
        pipeline_tag="image-to-image",
        **({"license_name": "see-card"} if licence.lower() == "other" else {}),
    )
    lines = [
        "---",
        header.to_yaml(),
        "---",
        "",
        f"# {meta['name']}: image inpainting with partial convolutions",
        "",
        "> Draft written by `python -m train`. Fill in what only you know (what the images "
        "are, who may use them), then run `python -m zoo publish` on this folder: it uploads "
        "this file as the card (a `README.md` next to it wins).",
        "",
        "## Model",
        "",
        f"- PConv U-Net (Liu et al., ECCV 2018), {config.depth} levels, widths {config.widths}, "
        f"{params / 1e6:.2f} M parameters, trained at {config.resolution}x{config.resolution}.",
        *(
            [
                "- Smooth prior (not in the paper): a learned per-pixel gate blends the prediction "
                "with a thin-plate fill of the holes (`pconv.smooth`)."
            ]
            if config.prior == "smooth"
            else []
        ),
        "- Input: RGB in [0, 1] and a mask, 1 = known pixel (user masks: white = fill).",
        f"- Weights sha256: `{_sha256(weights)}`",
        "",
        "## Usage",
        "",
        "```python",
        "import pconv",
        "",
        'model = pconv.load_model("path/to/this/folder")',
        "filled = pconv.inpaint(image, hole_mask, model)",
        "```",
        "",
        "## How it was made",
        "",
        f"- Data: {', '.join(training['data'])}: {training['images']} training images"
        f" ({training['skipped']} unreadable skipped).",
        f"- Steps: {training['steps']} ({training['phase1_steps']} at lr {training['lr']} with "
        f"BatchNorm on, {training['phase2_steps']} at lr {training['finetune_lr']} with the "
        "encoder's BatchNorm frozen), Adam, batch "
        f"{training['batch_size']} x {training['world']} process(es), crops of "
        f"{config.resolution} px ({training['crop']}).",
        f"- Started from: {training['init'] or 'random initialisation'}.",
        f"- Masks: {training['masks']}.",
        f"- Loss: {loss.get('loss')} with weights {loss.get('weights')}; perceptual backbone "
        f"{loss.get('backbone', {}).get('name')} "
        f"(faithful to the paper: {loss.get('backbone', {}).get('faithful')}).",
        f"- Precision {training['precision']}; hardware: {meta['hardware']}; "
        f"{training['hours']:.2f} h.",
        f"- Command: `{meta['command']}`",
        "",
        "## Evaluation",
        "",
    ]
    if metrics:
        lines += [
            "| Data | l1 (%) | PSNR (dB) | SSIM |",
            "|---|---|---|---|",
            f"| {training['val']} | {metrics.get('l1', float('nan')):.3f} | "
            f"{metrics.get('psnr', float('nan')):.2f} | {metrics.get('ssim', float('nan')):.4f} |",
            "",
            f"Protocol: {training['val_protocol']}.",
            "",
        ]
    else:
        lines += ["No validation images were used; no figures.", ""]
    lines += ["## Limitations", ""]
    lines += [f"- {item}" for item in json.loads(meta["limitations"])]
    lines += [
        "- Large holes come out blurry, and the model invents content: do not use it where "
        "authenticity matters.",
        "",
        "## License",
        "",
        f"Weights: {licence} (to be confirmed). {meta['licence_note']}: weights inherit the "
        "terms of the images they were trained on.",
        "",
    ]
    path = Path(folder) / CARD_NAME
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
