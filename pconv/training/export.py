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
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

import pconv
from pconv.checkpoint import WEIGHTS_NAME, read_metadata, save_model
from pconv.files import sha256_file, write_text
from pconv.model_card import model_card
from pconv.model_info import ModelInfo
from pconv.precision import precision_name

if TYPE_CHECKING:
    from pconv.training.engine import Trainer

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


def run_metadata(trainer: Trainer, metrics: dict[str, float]) -> dict[str, str]:
    """What the weights a run exports say about it: data, schedule, loss, scores."""
    c = trainer.config
    val = trainer.val_description if trainer.valset is not None else "none"
    protocol = (
        f"{c.size}x{c.size} centre crops (short side scaled to {c.size}), fixed masks "
        f"({c.masks}), output composited over the known pixels, 8-bit rounding, "
        "SSIM 11x11 Gaussian sigma 1.5"
    )
    training = {
        "data": list(c.data), "images": len(trainer.train_set),
        "skipped": len(trainer.scan.bad) + len(trainer.skipped_decode),
        "val": val, "val_protocol": protocol,
        "steps": trainer.step, "phase1_steps": min(trainer.step, c.phase1_steps),
        "phase2_steps": max(0, trainer.step - c.phase1_steps),
        "lr": c.lr, "finetune_lr": c.finetune_lr, "batch_size": c.batch_size,
        "world": trainer.dist.world, "crop": c.crop, "flip": c.flip,
        "masks": masks_text(trainer), "init": trainer.init_path,
        "precision": precision_name(trainer.amp_dtype),
        "clip_grad": c.clip_grad, "seed": c.seed, "hours": trainer.elapsed() / 3600,
        **({"lr_decay": c.lr_decay} if c.lr_decay else {}),
        "images_seen": trainer.images_seen,
    }  # fmt: skip
    if trainer.adversary is not None:
        training["adversarial"] = {"kind": c.adversarial, **trainer.adversary.describe()}
    info = {
        "name": c.name or trainer.run_dir.resolve().name,
        "data": list(c.data),
        "images": len(trainer.train_set),
        "step": trainer.step,
        "size": c.size,
        "licence": c.licence,
        "metrics": metrics,
        "val_description": val,
        "val_protocol": protocol,
        "loss": trainer.loss_fn.describe(),
        "title": trainer.recipe.title,
        "training": training,
        "command": trainer.command,
        "hardware": hardware(trainer.device, trainer.dist.world),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    return build_metadata(info)


def masks_text(trainer: Trainer) -> str:
    """The run's masks in words, for the training record."""
    c = trainer.config
    where = {"any": "anywhere", "clear": "clear of the border", "touch": "touching the border"}
    text = f"{c.masks} on the fly, holes {where[c.border]}"
    if c.mask_dir:
        text += f", folder masks from {c.mask_dir}"
    if c.mask_buckets:
        text += f", hole-ratio buckets {c.mask_buckets}"
    if c.mask_pairing == "each":
        k = trainer.train_set.masks_per_image
        text += f", each image paired with one mask of each generator ({k} per image)"
    return text
