"""The model card: one writer for the Hub's README (zoo builds, publishing) and the trainer's
``MODEL_CARD.md`` draft, derived from the weights' own metadata (:mod:`pconv.model_info`).

The sections are those ``python -m zoo publish`` checks (:data:`REQUIRED_SECTIONS`). The card
states the weights' licence, the training data's terms and pconv's code licence apart: a
permissive weights licence says nothing about the data behind the weights.
"""

from __future__ import annotations

from huggingface_hub import ModelCard, ModelCardData

from pconv.architectures import config_of, detect
from pconv.checkpoint import WEIGHTS_NAME
from pconv.model_info import ModelInfo

#: The licence of pconv's own code, which converts and runs every model.
CODE_LICENCE = "Apache-2.0"
TAGS = ("image-inpainting", "inpainting", "partial-convolution", "pconv", "safetensors")
#: SPDX -> the Hub's licence ids
HUB_LICENSES = {
    "apache-2.0": "apache-2.0",
    "mit": "mit",
    "bsd-2-clause": "bsd-2-clause",
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


def data_terms(info: ModelInfo) -> str:
    """The training data's terms as the weights record them (``data_terms``; the trainer's
    ``licence_note`` for files it wrote before it recorded them), or ``""`` if they do not."""
    return info.data_terms or info.notes.get("licence_note", "")


def _value(value: object) -> str:
    """A measured figure as a card shows it: floats to 3 significant digits, lists joined."""
    if isinstance(value, bool) or not isinstance(value, (float, list, tuple, dict)):
        return str(value)
    if isinstance(value, float):
        return f"{value:.3g}" if value == 0 or abs(value) >= 1e-3 else f"{value:.2e}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_value(v)}" for k, v in value.items())
    return ", ".join(_value(v) for v in value)


def _usage(zoo_name: str | None, repo: str) -> list[str]:
    """The four ways in: Python, the CLI, ComfyUI, and ``hf_hub_download`` for any Hub copy."""
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


def _licence_section(info: ModelInfo, licence_file: str | None) -> list[str]:
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
    if licence_file:
        weights += (
            f" This notice and the licence text (`{licence_file}`, next to the weights) must "
            "accompany every copy of the weights."
        )
    terms = data_terms(info)
    if terms:
        terms += "" if terms.endswith(".") else "."
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
    if t.get("phase2_steps"):  # the U-Net's two phases
        steps = (
            f"{t.get('steps')} ({t.get('phase1_steps')} at lr {t.get('lr')} with BatchNorm on, "
            f"{t.get('phase2_steps')} at lr {t.get('finetune_lr')} with the encoder's "
            "BatchNorm frozen)"
        )
    else:  # one phase (networks without BatchNorm, or a U-Net never fine-tuned)
        steps = f"{t.get('steps')} at lr {t.get('lr')}"
    lines = [
        f"- Data: {', '.join(t.get('data', []))}: {t.get('images')} training images"
        f" ({t.get('skipped', 0)} unreadable skipped).",
        f"- Steps: {steps}, Adam, batch {t.get('batch_size')} x {t.get('world')} "
        f"process(es), crops of {info.resolution} px ({t.get('crop')}).",
        f"- Started from: {t.get('init') or 'random initialisation'}.",
        f"- Masks: {t.get('masks')}.",
        f"- Loss: {loss.get('loss')} with weights {loss.get('weights')}; perceptual backbone "
        f"{backbone.get('name')} (faithful to the paper: {backbone.get('faithful')}).",
        *(
            [
                f"- Warm-up: the first {loss.get('warmup_steps')} steps with weights "
                f"{loss['warmup'].get('weights')} and no discriminator."
            ]
            if loss.get("warmup") and loss.get("warmup_steps")
            else []
        ),
        # "amp": what the packaged default model's training record calls its precision
        f"- Precision {t.get('precision', t.get('amp'))}; hardware: "
        f"{info.notes.get('hardware', 'not recorded')}; {float(t.get('hours', 0)):.2f} h.",
    ]
    if info.notes.get("command"):
        lines.append(f"- Command: `{info.notes['command']}`")
    return lines


def model_card(
    meta: dict[str, str],
    weights_sha256: str,
    *,
    repo_id: str | None = None,
    zoo_name: str | None = None,
    licence_file: str | None = None,
    draft: bool = False,
) -> str:
    """The card for weights with metadata ``meta``: the Hub's README for zoo builds and
    publishing, and (``draft=True``) the trainer's ``MODEL_CARD.md``, which a person completes
    before publishing. ``repo_id`` (default: the Hub repo recorded in ``meta``) is the
    repository the usage examples download from; ``zoo_name`` the name the zoo knows the
    weights by, if any; ``licence_file`` the licence text shipped next to the weights, if any."""
    info = ModelInfo.from_metadata(meta)
    name = info.name or "pconv model"
    lines = [f"# {name}: image inpainting with partial convolutions", ""]
    if draft:
        lines += [
            "> Draft written by `python -m train`. Fill in what only you know (what the images "
            "are, who may use them), then run `python -m zoo publish` on this folder: it "
            "uploads this file as the card (a `README.md` next to it wins).",
            "",
        ]
    lines += [info.summary, ""]
    lines += _model_section(meta, weights_sha256)
    lines += _usage(zoo_name, repo_id or info.hub_repo_id)
    lines += _made_section(info)
    lines += _evaluation_section(info)
    lines += ["## Limitations", ""]
    lines += [f"- {item}" for item in info.limitations] or ["- None documented."]
    lines += [
        "- Partial-convolution inpainting fills small and medium holes plausibly; large holes "
        "come out blurry, and it invents content: do not use it where authenticity matters.",
        "",
    ]
    lines += _licence_section(info, licence_file)
    if info.upstream.get("citation"):
        lines += ["## Citation", "", "```bibtex", info.upstream["citation"], "```", ""]
    card = ModelCard(f"---\n{_card_data(info).to_yaml()}\n---\n\n" + "\n".join(lines))
    return str(card)


def _card_data(info: ModelInfo) -> ModelCardData:
    """The card's YAML header: licence (the Hub's word for it), datasets, tags."""
    hub_licence = HUB_LICENSES.get(info.licence.lower(), "other")
    return ModelCardData(
        license=hub_licence,
        datasets=info.datasets or None,
        tags=list(TAGS),
        library_name="pconv",
        pipeline_tag="image-to-image",
        **({"license_name": info.licence} if hub_licence == "other" else {}),
    )


def _model_section(meta: dict[str, str], weights_sha256: str) -> list[str]:
    """The network, its call contract and the file, from the registry."""
    arch = detect(meta)
    config = config_of(arch, meta)
    return [
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


def _made_section(info: ModelInfo) -> list[str]:
    """Where the weights come from: upstream file and conversion, or the training record."""
    upstream, conversion = info.upstream, info.conversion or {}
    lines = ["## How it was made", ""]
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
    return [*lines, ""]


def _evaluation_section(info: ModelInfo) -> list[str]:
    """The published or validated figures, as a table."""
    lines = ["## Evaluation", ""]
    if not info.evaluation:
        return [*lines, "No evaluation figures were published for these weights.", ""]
    metric_names = sorted({m for e in info.evaluation for m in e["metrics"]})
    lines.append("| Dataset | " + " | ".join(metric_names) + " | Protocol | Reported by |")
    lines.append("|" + "---|" * (len(metric_names) + 3))
    for e in info.evaluation:
        values = " | ".join(str(e["metrics"].get(m, "")) for m in metric_names)
        lines.append(f"| {e['dataset']} | {values} | {e['protocol']} | {e['reported_by']} |")
    published = info.training is None
    return [
        *lines,
        "",
        "Figures as published upstream (not re-measured here)."
        if published
        else "Figures from the trainer's validation images (see the protocol).",
        "",
    ]
