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

import pconv
from pconv.checkpoint import WEIGHTS_NAME, save_model
from pconv.files import atomic_folder, sha256_file
from pconv.unet import PConvUNet, UNetConfig
from zoo.convert.common import Conversion
from zoo.files import verify_weights, write_sha256_sidecar
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


def entry_metadata(
    entry: ModelEntry, conversion: Conversion | None = None, upstream_sha256: str | None = None
) -> dict[str, str]:
    """The metadata a registry entry's weights file carries (all strings, as safetensors wants)."""
    meta = {
        "name": entry.name,
        "summary": entry.summary,
        "licence": entry.licence,
        "data_terms": entry.data_terms,
        "source": entry.source,
        "datasets": json.dumps(list(entry.datasets)),
        "resolution": str(entry.resolution),
        "evaluation": json.dumps(
            [
                {
                    "dataset": e.dataset,
                    "metrics": e.metrics,
                    "protocol": e.protocol,
                    "reported_by": e.reported_by,
                }
                for e in entry.evaluation
            ]
        ),
        "limitations": json.dumps(list(entry.limitations)),
        "upstream_mask_convention": entry.mask_convention,
        "version": f"zoo-{ZOO_FORMAT}/pconv-{pconv.__version__}",
    }
    if entry.repo_id:
        meta["hub_repo_id"] = entry.repo_id
    up = entry.upstream
    if up is not None:
        meta.update(
            source_url=up.url,
            homepage=up.homepage,
            upstream_file=up.filename,
            upstream_licence=up.licence,
            copyright=up.copyright,
            citation=up.citation,
        )
        meta["upstream_sha256_pinned"] = (
            "full" if up.sha256 else (f"prefix {up.sha256_prefix}" if up.sha256_prefix else "no")
        )
    if upstream_sha256:
        meta["upstream_sha256"] = upstream_sha256
    if conversion is not None:
        meta.update(conversion.metadata())
    return meta


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


def data_terms(meta: dict[str, str]) -> str:
    """The training data's terms as the weights record them (``data_terms``; the trainer's
    ``licence_note`` for files it wrote), or ``""`` if they do not."""
    return meta.get("data_terms") or meta.get("licence_note") or ""


def _json(meta: dict[str, str], key: str, default: object) -> object:
    try:
        return json.loads(meta[key]) if key in meta else default
    except ValueError:
        return default


def hub_config(meta: dict[str, str], weights_sha256: str) -> dict[str, object]:
    config = json.loads(meta["config"])
    return {
        "library_name": "pconv",
        "architecture": "PConvUNet",
        "format": meta.get("format", "pconv"),
        "format_version": meta.get("format_version", "1"),
        "config": config,
        "resolution": config.get("resolution"),
        "input_mean": config.get("input_mean"),
        "input_std": config.get("input_std"),
        "mask_convention": meta.get("mask_convention"),
        "name": meta.get("name"),
        "licence": meta.get("licence"),
        "data_terms": data_terms(meta) or None,
        "source": meta.get("source"),
        "source_url": meta.get("source_url"),
        "datasets": _json(meta, "datasets", []),
        "version": meta.get("version"),
        "conversion": _json(meta, "conversion", None),
        "weights": {"filename": WEIGHTS_NAME, "sha256": weights_sha256},
    }


def _params(config: UNetConfig) -> int:
    import torch

    with torch.device("meta"):
        return sum(p.numel() for p in PConvUNet(config).parameters())


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


def _licence_section(meta: dict[str, str]) -> list[str]:
    """Three separate statements: the weights' licence (with its holder's notice), the training
    data's terms, and pconv's code licence. A permissive weights licence says nothing about the
    data behind the weights, and a user deciding on a product must see both."""
    licence = meta.get("licence", "other")
    notice = meta.get("copyright", "")
    weights = f"- **Weights**: {licence}"
    if meta.get("homepage"):
        weights += f", as published upstream by their authors ({meta['homepage']})"
    weights += "."
    if notice:
        weights += f" {notice}" + ("" if notice.endswith(".") else ".")
    if licence.lower() in LICENCE_TEXTS:
        weights += (
            f" This notice and the licence text (`{LICENCE_NAME}`, next to the weights) must "
            "accompany every copy of the weights."
        )
    terms = data_terms(meta)
    if terms:
        data = (
            f"- **Training data**: {terms} These are the data owners' terms, apart from the "
            "weights' licence above, which does not lift them: check them before using the "
            "weights in a product."
        )
    else:
        datasets = ", ".join(_json(meta, "datasets", []) or []) or "not recorded"  # type: ignore[arg-type]
        data = (
            f"- **Training data** ({datasets}): its terms are not recorded in the weights' "
            "metadata; check each dataset's terms before using the weights in a product."
        )
    code = (
        f"- **Code**: pconv, which converted these weights and runs them, is {CODE_LICENCE}."
        if "conversion" in meta
        else f"- **Code**: pconv, which runs these weights, is {CODE_LICENCE}."
    )
    return ["## License", "", weights, data, code, ""]


def model_card(meta: dict[str, str], weights_sha256: str, repo_id: str | None = None) -> str:
    """The Hub card for weights with metadata ``meta``; ``repo_id`` (default: the entry's Hub
    repo recorded in ``meta``) is the repository the usage examples download from."""
    config = UNetConfig.from_dict(json.loads(meta["config"]))
    name = meta.get("name", "pconv model")
    licence = meta.get("licence", "other")
    hub_licence = HUB_LICENSES.get(licence.lower(), "other")
    datasets = list(_json(meta, "datasets", []))  # type: ignore[arg-type]
    data = ModelCardData(
        license=hub_licence,
        datasets=datasets or None,
        tags=list(TAGS),
        library_name="pconv",
        pipeline_tag="image-to-image",
        **({"license_name": licence} if hub_licence == "other" else {}),
    )
    repo = repo_id or meta.get("hub_repo_id", "")
    conversion = _json(meta, "conversion", None) or {}
    evaluation = _json(meta, "evaluation", []) or []
    limitations = _json(meta, "limitations", []) or []

    lines = [f"# {name}: image inpainting with partial convolutions", ""]
    lines += [meta.get("summary", ""), ""]
    lines += [
        "## Model",
        "",
        f"- Architecture: PConv U-Net (Liu et al., ECCV 2018), {config.depth} levels, widths "
        f"{config.widths}, {_params(config) / 1e6:.1f} M parameters, nearest-neighbour "
        "upsampling, decoder input [upsampled, skip].",
        f"- Training resolution: {config.resolution}x{config.resolution}; inputs must be "
        f"multiples of {config.multiple} (`pconv.inpaint` pads, crops and rescales for you).",
        "- Input: RGB in [0, 1] and a mask, 1 = known pixel (user-facing masks: white = fill). "
        f"The input normalisation (mean {list(config.input_mean)}, std "
        f"{list(config.input_std)}) is applied inside the model.",
        "- Format: `model.safetensors` (never pickled code); its metadata holds the "
        "architecture config, normalisation, resolution, mask convention, licence, training "
        "data's terms and source.",
        f"- Weights sha256: `{weights_sha256}`",
        "",
    ]
    lines += _usage(name, repo)
    lines += ["## How it was made", ""]
    if meta.get("source"):
        lines.append(
            f"- Source: {meta['source']}"
            + (f" ({meta['homepage']})" if meta.get("homepage") else "")
        )
    if meta.get("source_url"):
        lines.append(
            f"- Upstream file: `{meta.get('upstream_file', '')}` from "
            f"{meta['source_url']}, sha256 `{meta.get('upstream_sha256', 'unknown')}` "
            f"(pinned: {meta.get('upstream_sha256_pinned', 'no')})."
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
    elif "source" not in meta:
        lines.append("- Trained with pconv.")
    lines.append("")
    lines += ["## Evaluation", ""]
    if evaluation:
        metric_names = sorted({m for e in evaluation for m in e["metrics"]})
        lines.append("| Dataset | " + " | ".join(metric_names) + " | Protocol | Reported by |")
        lines.append("|" + "---|" * (len(metric_names) + 3))
        for e in evaluation:
            values = " | ".join(str(e["metrics"].get(m, "")) for m in metric_names)
            lines.append(f"| {e['dataset']} | {values} | {e['protocol']} | {e['reported_by']} |")
        lines += ["", "Figures as published upstream (not re-measured here).", ""]
    else:
        lines += ["No evaluation figures were published for these weights.", ""]
    lines += ["## Limitations", ""]
    lines += [f"- {item}" for item in limitations] or ["- None documented."]
    lines += [
        "- Partial-convolution inpainting fills small and medium holes plausibly; large holes "
        "come out blurry, and it invents content: do not use it where authenticity matters.",
        "",
    ]
    lines += _licence_section(meta)
    if meta.get("citation"):
        lines += ["## Citation", "", "```bibtex", meta["citation"], "```", ""]
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
    model: PConvUNet,
    out_dir: Path,
    *,
    entry: ModelEntry | None = None,
    conversion: Conversion | None = None,
    upstream_sha256: str | None = None,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Save ``model`` with full metadata and its card files (config, card, licence, sha256);
    ``out_dir`` replaced atomically."""
    meta = entry_metadata(entry, conversion, upstream_sha256) if entry is not None else {}
    if conversion is not None and entry is None:
        meta.update(conversion.metadata())
    meta.update(metadata or {})
    with atomic_folder(out_dir) as tmp:
        weights = save_model(model, tmp / WEIGHTS_NAME, meta)
        write_card_files(tmp, weights)
        write_sha256_sidecar(weights)
        validate_folder(tmp)
    return Path(out_dir)


def folder_from_weights(weights: Path, out_dir: Path, repo_id: str | None = None) -> Path:
    """A Hub folder for an existing weights file (its card files made from its metadata);
    ``repo_id``: the repository it is for, which the card's examples download from."""
    verify_weights(weights)
    with atomic_folder(out_dir) as tmp:
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
            UNetConfig.from_dict(config["config"])  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError) as exc:
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
