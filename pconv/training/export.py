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

import os
import platform
from pathlib import Path
from typing import Any

import torch
from torch import nn

import pconv
from pconv.checkpoint import WEIGHTS_NAME, read_metadata, save_model
from pconv.files import sha256_file, write_text
from pconv.model_card import model_card
from pconv.model_info import ModelInfo

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
        paper = info["loss"].get("paper_backbone", "ImageNet VGG16")  # the network's paper's
        limitations.append(
            f"Perceptual/style loss backbone: {backbone.get('name', 'none')} "
            f"(not the paper's {paper}), so these weights differ from the paper's recipe."
        )
    return ModelInfo(
        name=info["name"],
        summary=f"{info.get('title', 'PConv U-Net')} fine-tuned/trained with pconv on "
        f"{', '.join(info['data'])}.",
        licence=info["licence"],
        source=SOURCE,
        datasets=[],  # Hub dataset ids only; local folders go in "training"
        resolution=int(info["size"]),
        evaluation=evaluation,
        limitations=limitations,
        version=f"pconv-{pconv.__version__}",
        training=info["training"],
        loss=info["loss"],
        metrics=metrics,
        notes={
            "licence_note": licence_note(info["data"]),
            "command": info["command"],
            "hardware": info["hardware"],
            "created": info["created"],
        },
    ).to_metadata()


def export(model: nn.Module, folder: Path, meta: dict[str, str]) -> Path:
    """``folder/model.safetensors`` (atomic), float32, with ``meta``."""
    return save_model(model, Path(folder) / WEIGHTS_NAME, meta)


def write_card(folder: Path) -> Path:
    """``folder/MODEL_CARD.md``: the card draft for a person to complete before publishing,
    from the exported weights' own metadata (the one card writer,
    :func:`pconv.model_card.model_card`)."""
    weights = Path(folder) / WEIGHTS_NAME
    card = model_card(read_metadata(weights), sha256_file(weights), draft=True)
    return write_text(Path(folder) / CARD_NAME, card)
