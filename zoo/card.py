"""The Hub folder of a model: ``model.safetensors``, ``config.json``, a model card README and
the weights' ``LICENSE``.

Everything in ``config.json``, the card and ``LICENSE`` is derived from the weights file's own
metadata, so a folder can be (re)made from any of our files, and they can never disagree.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData
from torch import nn

import pconv
from pconv.architectures import config_of, detect, get_architecture
from pconv.checkpoint import WEIGHTS_NAME, save_model
from pconv.errors import CheckpointError
from pconv.model_info import ModelInfo
from zoo.convert.common import Conversion
from zoo.files import sha256_file, staging_folder, verify_weights, write_sha256_sidecar
from zoo.registry import ModelEntry, ZooError, is_registered

ZOO_FORMAT = "1"
CONFIG_NAME = "config.json"
CARD_NAME = "README.md"
LICENCE_NAME = "LICENSE"
#: Full licence texts, shipped as package data: a licence like MIT or Apache-2.0 asks that its
#: text travel with every copy of the weights, so a folder must be complete without a network.
LICENCE_DIR = Path(__file__).parent / "licences"
LICENCE_TEXTS = {"apache-2.0": "Apache-2.0.txt", "mit": "MIT.txt"}
#: A template's own copyright line (MIT's), replaced by the holder's notice.
COPYRIGHT_PLACEHOLDER = "Copyright (c) <year> <copyright holders>"
#: The licence of pconv's own code, which converts and runs every model.
CODE_LICENCE = "Apache-2.0"
TAGS = ("image-inpainting", "inpainting", "partial-convolution", "pconv", "safetensors")
#: SPDX -> the Hub's licence ids
HUB_LICENSES = {
    "apache-2.0": "apache-2.0",
    "mit": "mit",
    "bsd-3-clause": "bsd-3-clause",
    "cc-by-4.0": "cc-by-4.0",
    "cc-by-nc-4.0": "cc-by-nc-4.0",
}
REQUIRED_SECTIONS = (
    "## Model",
    "## Usage",
    "## How it was made",
    "## Evaluation",
    "## Limitations",
    "## License",
)


def entry_info(
    entry: ModelEntry, conversion: Conversion | None = None, upstream_sha256: str | None = None
) -> ModelInfo:
    """The record a registry entry's weights file carries."""
    info = ModelInfo(
        name=entry.name,
        summary=entry.summary,
        licence=entry.licence,
        data_terms=entry.data_terms,
        source=entry.source,
        datasets=list(entry.datasets),
        resolution=entry.resolution,
        evaluation=[
            {
                "dataset": e.dataset,
                "metrics": e.metrics,
                "protocol": e.protocol,
                "reported_by": e.reported_by,
            }
            for e in entry.evaluation
        ],
        limitations=list(entry.limitations),
        hub_repo_id=entry.repo_id or "",
        version=f"zoo-{ZOO_FORMAT}/pconv-{pconv.__version__}",
        upstream={"upstream_mask_convention": entry.mask_convention},
        conversion=conversion.record() if conversion is not None else None,
    )
    up = entry.upstream
    if up is not None:
        info.upstream.update(
            source_url=up.url,
            homepage=up.homepage,
            upstream_file=up.filename,
            upstream_licence=up.licence,
            copyright=up.copyright,
            citation=up.citation,
            upstream_sha256_pinned=(
                "full"
                if up.sha256
                else (f"prefix {up.sha256_prefix}" if up.sha256_prefix else "no")
            ),
        )
    if upstream_sha256:
        info.upstream["upstream_sha256"] = upstream_sha256
    return info


def licence_text(licence: str, notice: str = "") -> str | None:
    """The full text of ``licence`` carrying the holder's copyright ``notice``: the ``LICENSE``
    file that must accompany the weights. ``None`` for licences without a text here (``other``:
    the card states their terms)."""
    name = LICENCE_TEXTS.get(licence.lower())
    if name is None:
        return None
    text = (LICENCE_DIR / name).read_text()
    if COPYRIGHT_PLACEHOLDER in text:
        return text.replace(COPYRIGHT_PLACEHOLDER + "\n\n", f"{notice}\n\n" if notice else "")
    return f"{notice}\n\n{text}" if notice else text


def data_terms(info: ModelInfo) -> str:
    """The training data's terms as the weights record them (``data_terms``; the trainer's
    ``licence_note`` for files it wrote before it recorded them), or ``""`` if they do not."""
    return info.data_terms or info.notes.get("licence_note", "")


def hub_config(meta: dict[str, str], weights_sha256: str) -> dict[str, object]:
    config = json.loads(meta["config"])
    info = ModelInfo.from_metadata(meta)
    return {
        "library_name": "pconv",
        "architecture": detect(meta).name,
        "format": meta.get("format", "pconv"),
        "format_version": meta.get("format_version", "1"),
        "config": config,
        "resolution": config.get("resolution"),
        "input_mean": config.get("input_mean"),
        "input_std": config.get("input_std"),
        "mask_convention": meta.get("mask_convention"),
        "name": info.name or None,
        "licence": info.licence,
        "data_terms": data_terms(info) or None,
        "source": info.source or None,
        "source_url": info.upstream.get("source_url"),
        "datasets": info.datasets,
        "version": info.version or None,
        "conversion": info.conversion,
        "weights": {"filename": WEIGHTS_NAME, "sha256": weights_sha256},
    }


def _value(value: object) -> str:
    """A measured figure as a card shows it: floats to 3 significant digits, lists joined."""
    if isinstance(value, bool) or not isinstance(value, (float, list, tuple, dict)):
        return str(value)
    if isinstance(value, float):
        return f"{value:.3g}" if value == 0 or abs(value) >= 1e-3 else f"{value:.2e}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_value(v)}" for k, v in value.items())
    return ", ".join(_value(v) for v in value)


def _usage(name: str, repo: str) -> list[str]:
    """The four ways in: Python, the CLI, ComfyUI, and ``hf_hub_download`` for any Hub copy."""
    zoo_name = name if is_registered(name) else None
    handle = zoo_name or repo or WEIGHTS_NAME
    also = f'  # or "{repo}"' if zoo_name and repo else ""
    hub_repo = repo or "OWNER/REPO"
    comfy = (
        f"choose `{zoo_name}` in the **Load PConv Model** node (downloaded once into the Hugging "
        f"Face cache), or put `{WEIGHTS_NAME}` into `ComfyUI/models/inpaint` (any file name, "
        f"e.g. `{zoo_name}.safetensors`) and choose that file."
        if zoo_name
        else f"put `{WEIGHTS_NAME}` into `ComfyUI/models/inpaint` (any file name) and choose it "
        "in the **Load PConv Model** node."
    )
    return [
        "## Usage",
        "",
        "Python (masks: white = fill):",
        "",
        "```python",
        "from PIL import Image",
        "",
        "import pconv",
        "",
        f'model = pconv.load_model("{handle}"){also}',
        'filled = pconv.inpaint(Image.open("photo.png"), Image.open("mask.png"), model)',
        'filled.save("filled.png")',
        "```",
        "",
        "Command line:",
        "",
        "```bash",
        f"pconv inpaint photo.png --mask mask.png --output filled.png --model {handle}",
        "```",
        "",
        f"ComfyUI (pconv's node pack): {comfy}",
        "",
        "Straight from the Hub:",
        "",
        "```python",
        "from huggingface_hub import hf_hub_download",
        "",
        "import pconv",
        "",
        f'path = hf_hub_download("{hub_repo}", "{WEIGHTS_NAME}")',
        "model = pconv.load_model(path)",
        "```",
        "",
    ]


def _licence_section(info: ModelInfo) -> list[str]:
    """Three separate statements: the weights' licence (with its holder's notice), the training
    data's terms, and pconv's code licence. A permissive weights licence says nothing about the
    data behind the weights, and a user deciding on a product must see both."""
    licence = info.licence
    notice = info.upstream.get("copyright", "")
    weights = f"- **Weights**: {licence}"
    if info.upstream.get("homepage"):
        weights += f", as published upstream by their authors ({info.upstream['homepage']})"
    weights += "."
    if notice:
        weights += f" {notice}" + ("" if notice.endswith(".") else ".")
    if licence.lower() in LICENCE_TEXTS:
        weights += (
            f" This notice and the licence text (`{LICENCE_NAME}`, next to the weights) must "
            "accompany every copy of the weights."
        )
    terms = data_terms(info)
    if terms:
        data = (
            f"- **Training data**: {terms} These are the data owners' terms, apart from the "
            "weights' licence above, which does not lift them: check them before using the "
            "weights in a product."
        )
    else:
        datasets = ", ".join(info.datasets) or "not recorded"
        data = (
            f"- **Training data** ({datasets}): its terms are not recorded in the weights' "
            "metadata; check each dataset's terms before using the weights in a product."
        )
    code = (
        f"- **Code**: pconv, which converted these weights and runs them, is {CODE_LICENCE}."
        if info.conversion is not None
        else f"- **Code**: pconv, which runs these weights, is {CODE_LICENCE}."
    )
    return ["## License", "", weights, data, code, ""]


def _training_lines(info: ModelInfo) -> list[str]:
    """How ``python -m train`` made the weights, from the trainer's record."""
    t = info.training or {}
    loss = info.loss or {}
    backbone = loss.get("backbone", {})
    lines = [
        f"- Data: {', '.join(t.get('data', []))}: {t.get('images')} training images"
        f" ({t.get('skipped', 0)} unreadable skipped).",
        f"- Steps: {t.get('steps')} ({t.get('phase1_steps')} at lr {t.get('lr')} with "
        f"BatchNorm on, {t.get('phase2_steps')} at lr {t.get('finetune_lr')} with the "
        f"encoder's BatchNorm frozen), Adam, batch {t.get('batch_size')} x {t.get('world')} "
        f"process(es), crops of {info.resolution} px ({t.get('crop')}).",
        f"- Started from: {t.get('init') or 'random initialisation'}.",
        f"- Masks: {t.get('masks')}.",
        f"- Loss: {loss.get('loss')} with weights {loss.get('weights')}; perceptual backbone "
        f"{backbone.get('name')} (faithful to the paper: {backbone.get('faithful')}).",
        f"- Precision {t.get('precision', t.get('amp'))}; hardware: "
        f"{info.notes.get('hardware', 'not recorded')}; {float(t.get('hours', 0)):.2f} h.",
    ]
    if info.notes.get("command"):
        lines.append(f"- Command: `{info.notes['command']}`")
    return lines


def model_card(
    meta: dict[str, str], weights_sha256: str, repo_id: str | None = None, draft: bool = False
) -> str:
    """The card for weights with metadata ``meta``: the Hub's README for zoo builds and
    publishing, and (``draft=True``) the trainer's ``MODEL_CARD.md``, which a person completes
    before publishing. ``repo_id`` (default: the Hub repo recorded in ``meta``) is the
    repository the usage examples download from."""
    arch = detect(meta)
    config = config_of(arch, meta)
    info = ModelInfo.from_metadata(meta)
    name = info.name or "pconv model"
    licence = info.licence
    hub_licence = HUB_LICENSES.get(licence.lower(), "other")
    data = ModelCardData(
        license=hub_licence,
        datasets=info.datasets or None,
        tags=list(TAGS),
        library_name="pconv",
        pipeline_tag="image-to-image",
        **({"license_name": licence} if hub_licence == "other" else {}),
    )
    repo = repo_id or info.hub_repo_id
    conversion = info.conversion or {}
    upstream = info.upstream

    lines = [f"# {name}: image inpainting with partial convolutions", ""]
    if draft:
        lines += [
            "> Draft written by `python -m train`. Fill in what only you know (what the images "
            "are, who may use them), then run `python -m zoo publish` on this folder: it "
            "uploads this file as the card (a `README.md` next to it wins).",
            "",
        ]
    lines += [info.summary, ""]
    lines += [
        "## Model",
        "",
        f"- Architecture (`{arch.name}`): {arch.describe(config)}; "
        f"{arch.parameter_count(config) / 1e6:.2f} M parameters.",
        f"- Training resolution: {arch.resolution(config)}x{arch.resolution(config)}; inputs "
        f"must be multiples of {arch.multiple(config)} (`pconv.inpaint` pads, crops and "
        "rescales for you).",
        "- Input: RGB in [0, 1] and a mask, 1 = known pixel (user-facing masks: white = fill)"
        + (
            f". The input normalisation (mean {list(config.input_mean)}, std "
            f"{list(config.input_std)}) is applied inside the model."
            if hasattr(config, "input_mean")
            else "."
        ),
        "- Format: `model.safetensors` (never pickled code); its metadata holds the "
        "architecture config, normalisation, resolution, mask convention, licence, training "
        "data's terms and source.",
        f"- Weights sha256: `{weights_sha256}`",
        "",
    ]
    lines += _usage(name, repo)
    lines += ["## How it was made", ""]
    if info.source:
        homepage = upstream.get("homepage")
        lines.append(f"- Source: {info.source}" + (f" ({homepage})" if homepage else ""))
    if upstream.get("source_url"):
        lines.append(
            f"- Upstream file: `{upstream.get('upstream_file', '')}` from "
            f"{upstream['source_url']}, sha256 `{upstream.get('upstream_sha256', 'unknown')}` "
            f"(pinned: {upstream.get('upstream_sha256_pinned', 'no')})."
        )
    if conversion:
        exact = "exact" if conversion.get("exact") else "approximate"
        lines.append(
            f"- Converted with `python -m zoo build` ({conversion.get('layout')} "
            f"layout, {exact}): largest difference from the upstream network, "
            f"re-implemented from its code, {conversion.get('max_abs_diff', 0):.2e} "
            "on a [0, 1] scale."
        )
        for note in conversion.get("notes", []):
            lines.append(f"  - {note}")
        measured = conversion.get("measured") or {}
        if measured:
            lines.append(
                "- Measured on real photos (these weights in float32 against the upstream "
                "network, [0, 1] scale):"
            )
            lines += [f"  - {key.replace('_', ' ')}: {_value(v)}" for key, v in measured.items()]
    if info.training is not None:
        lines += _training_lines(info)
    elif not info.source and not conversion:
        lines.append("- Trained with pconv.")
    lines.append("")
    lines += ["## Evaluation", ""]
    if info.evaluation:
        metric_names = sorted({m for e in info.evaluation for m in e["metrics"]})
        lines.append("| Dataset | " + " | ".join(metric_names) + " | Protocol | Reported by |")
        lines.append("|" + "---|" * (len(metric_names) + 3))
        for e in info.evaluation:
            values = " | ".join(str(e["metrics"].get(m, "")) for m in metric_names)
            lines.append(f"| {e['dataset']} | {values} | {e['protocol']} | {e['reported_by']} |")
        published = info.training is None
        lines += [
            "",
            "Figures as published upstream (not re-measured here)."
            if published
            else "Figures from the trainer's validation images (see the protocol).",
            "",
        ]
    else:
        lines += ["No evaluation figures were published for these weights.", ""]
    lines += ["## Limitations", ""]
    lines += [f"- {item}" for item in info.limitations] or ["- None documented."]
    lines += [
        "- Partial-convolution inpainting fills small and medium holes plausibly; large holes "
        "come out blurry, and it invents content: do not use it where authenticity matters.",
        "",
    ]
    lines += _licence_section(info)
    if upstream.get("citation"):
        lines += ["## Citation", "", "```bibtex", upstream["citation"], "```", ""]
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))
    return str(card)


def write_card_files(folder: Path, weights: Path, repo_id: str | None = None) -> None:
    """``config.json``, ``README.md`` and (for licences with a text) ``LICENSE`` for
    ``weights``, into ``folder``."""
    meta = verify_weights(weights)
    digest = sha256_file(weights)
    (folder / CONFIG_NAME).write_text(json.dumps(hub_config(meta, digest), indent=2) + "\n")
    (folder / CARD_NAME).write_text(model_card(meta, digest, repo_id))
    text = licence_text(meta.get("licence", "other"), meta.get("copyright", ""))
    if text is not None:
        (folder / LICENCE_NAME).write_text(text)


def write_folder(
    model: nn.Module,
    out_dir: Path,
    *,
    entry: ModelEntry | None = None,
    conversion: Conversion | None = None,
    upstream_sha256: str | None = None,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Save ``model`` with full metadata and its card files (config, card, licence, sha256);
    ``out_dir`` replaced atomically."""
    if entry is not None:
        meta = entry_info(entry, conversion, upstream_sha256).to_metadata()
    else:
        meta = {} if conversion is None else ModelInfo(conversion=conversion.record()).to_metadata()
    meta.update(metadata or {})
    with staging_folder(Path(out_dir)) as tmp:
        weights = save_model(model, tmp / WEIGHTS_NAME, meta)
        write_card_files(tmp, weights)
        write_sha256_sidecar(weights)
        validate_folder(tmp)
    return Path(out_dir)


def folder_from_weights(weights: Path, out_dir: Path, repo_id: str | None = None) -> Path:
    """A Hub folder for an existing weights file (its card files made from its metadata);
    ``repo_id``: the repository it is for, which the card's examples download from."""
    verify_weights(weights)
    with staging_folder(Path(out_dir)) as tmp:
        shutil.copyfile(weights, tmp / WEIGHTS_NAME)
        write_card_files(tmp, tmp / WEIGHTS_NAME, repo_id)
        validate_folder(tmp)
    return Path(out_dir)


def _licence_problems(folder: Path, meta: dict[str, str]) -> list[str]:
    """A licence with a text (MIT, Apache-2.0) asks for it, and the holder's notice, to travel
    with the weights: a folder without them may not be redistributed. Whitespace aside, the
    terms must be the licence's own (a hand-made LICENSE may wrap them differently)."""
    licence = meta.get("licence", "other")
    if licence.lower() not in LICENCE_TEXTS:
        return []
    try:
        text = (folder / LICENCE_NAME).read_text()
    except OSError:
        return [f"{LICENCE_NAME}: missing (the {licence} licence text must accompany it)"]
    problems = []
    # the terms proper: what follows a template's copyright line (MIT's), else all of it
    terms = (LICENCE_DIR / LICENCE_TEXTS[licence.lower()]).read_text()
    terms = terms.split(COPYRIGHT_PLACEHOLDER)[-1]
    if " ".join(terms.split()) not in " ".join(text.split()):
        problems.append(f"{LICENCE_NAME}: not the {licence} licence text")
    notice = meta.get("copyright", "")
    if notice not in text:
        problems.append(f"{LICENCE_NAME}: lacks the notice {notice!r}")
    return problems


def validate_folder(folder: Path) -> dict[str, object]:
    """Check a Hub folder: weights verify, config.json, card and LICENSE agree with them;
    returns the parsed config.json. :class:`ZooError` lists every problem found."""
    problems: list[str] = []
    weights = folder / WEIGHTS_NAME
    meta = verify_weights(weights)
    digest = sha256_file(weights)
    config: dict[str, object] = {}
    try:
        config = json.loads((folder / CONFIG_NAME).read_text())
    except (OSError, ValueError) as exc:
        problems.append(f"{CONFIG_NAME}: unreadable ({exc})")
    if config:
        if config.get("config") != json.loads(meta["config"]):
            problems.append(f"{CONFIG_NAME}: architecture differs from the weights' metadata")
        try:
            get_architecture(str(config["architecture"])).config_from_dict(config["config"])
        except (KeyError, TypeError, ValueError, CheckpointError) as exc:
            problems.append(f"{CONFIG_NAME}: invalid architecture config ({exc})")
        if (config.get("weights") or {}).get("sha256") != digest:  # type: ignore[union-attr]
            problems.append(f"{CONFIG_NAME}: sha256 does not match {WEIGHTS_NAME}")
        if config.get("library_name") != "pconv":
            problems.append(f"{CONFIG_NAME}: library_name is not pconv")
    try:
        card = ModelCard.load(folder / CARD_NAME)
    except Exception as exc:  # yaml errors, missing file
        problems.append(f"{CARD_NAME}: unreadable model card ({exc})")
    else:
        data = card.data.to_dict()
        for key in ("license", "tags", "library_name"):
            if not data.get(key):
                problems.append(f"{CARD_NAME}: YAML header lacks {key}")
        if data.get("library_name") != "pconv":
            problems.append(f"{CARD_NAME}: library_name is not pconv")
        if "datasets" in meta and json.loads(meta["datasets"]) and not data.get("datasets"):
            problems.append(f"{CARD_NAME}: YAML header lacks datasets")
        problems += [
            f"{CARD_NAME}: no '{s}' section" for s in REQUIRED_SECTIONS if s not in card.text
        ]
        if digest not in card.text:
            problems.append(f"{CARD_NAME}: does not state the weights' sha256")
        if meta.get("data_terms") and meta["data_terms"] not in card.text:
            problems.append(f"{CARD_NAME}: does not state the training data's terms")
    problems += _licence_problems(folder, meta)
    if problems:
        raise ZooError(f"{folder}: invalid Hub folder: " + "; ".join(problems))
    return config
