"""The Gradio app: paint over a photo, pick a model, get the inpainted photo back.

``build_app()`` makes the :class:`gradio.Blocks`; ``python -m demo`` (see ``demo/__main__.py``)
launches it. Two API endpoints (for ``gradio_client``):

* ``/inpaint``: what the page's button runs: ``(editor, mask_file, model)`` ->
  ``((before, after), mask, info, download)``;
* ``/inpaint_files``: ``(image_file, mask_file, model)`` -> ``(result_png, mask_png, info)``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from demo import processing as proc
from demo.models import ModelChoice, ModelStore, initial_choice, model_choices
from pconv import samples

BRUSH = "rgba(255, 0, 160, 0.65)"  # any colour works: painted = alpha > 0
CSS = "#pconv-info p { margin: 0.2em 0; }"
INTRO = """\
# pconv: remove things from photos

Upload a photo (or pick an example), **paint over what should disappear**, choose a model and
press **Inpaint**. Brush size and the eraser are in the editor's toolbar; undo with its arrows.
Everything painted, in any colour and on any layer, is filled; a mask image can be uploaded
instead (white = fill).
"""


def example_photos() -> list[str]:
    return [str(p) for p in samples.example_photos()]


def _notice(choices: list[ModelChoice]) -> str:
    lines = [f"* **{c.key}**: {c.problem}" for c in choices if c.problem]
    if not lines:
        return ""
    return (
        "**Note**, some models cannot be used now (pick another one, or start the demo with "
        "`--model PATH`):\n" + "\n".join(lines)
    )


def _info(result: proc.Result, model: str, device: str, load_s: float) -> str:
    h, w = result.image.shape[:2]
    lines = [
        f"**Done in {result.seconds:.2f} s** with `{model}` on {device}: {w}x{h} pixels, "
        f"{100 * result.filled_fraction:.1f} % of them filled."
    ]
    if load_s > 0:
        lines.append(f"Loading the model took {load_s:.2f} s (once: later runs reuse it).")
    lines += [f"⚠️ {note}" for note in result.notes]
    return "\n\n".join(lines)


class DemoApp:
    """The handlers, with the shared model store and the folder for result files."""

    def __init__(
        self,
        models: Mapping[str, str | os.PathLike[str]] | None = None,
        *,
        zoo: bool = True,
        device: str = "auto",
        max_side: int = proc.MAX_SIDE,
    ) -> None:
        self.choices = model_choices(models, zoo=zoo)
        self.store = ModelStore(self.choices, device)
        self.max_side = max_side
        self.outdir = Path(tempfile.gettempdir()) / "pconv-demo"

    def _run(self, job: proc.Job, model: str) -> tuple[proc.Result, float]:
        try:
            net, load_s = self.store.get(model)
        except Exception as exc:  # missing, corrupt, not downloadable ...: say which and why
            message = f"Model {model!r} cannot be used: {exc}"
            raise gr.Error(message, print_exception=False) from None
        try:
            result = proc.run_job(job, net, self.store.device)
        except proc.DemoError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        for note in result.notes:
            gr.Warning(note)
        return result, load_s

    def _save(self, image: np.ndarray, name: str) -> str:
        proc.prune(self.outdir)
        return str(proc.write_png(image, self.outdir, name))

    def from_editor(
        self, editor: dict[str, Any] | None, mask_file: str | None, model: str
    ) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray, str, dict[str, Any]]:
        """The page's button: the editor's photo and painted layers (and a mask file)."""
        try:
            editor = editor or {}
            painted = proc.mask_from_layers(editor.get("layers") or [])
            uploaded = proc.read_mask(mask_file, self.max_side) if mask_file else None
            job = proc.make_job(editor.get("background"), painted, uploaded, self.max_side)
        except proc.DemoError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        result, load_s = self._run(job, model)
        info = _info(result, model, self.store.device.type, load_s)
        mask_view = result.hole.astype(np.uint8) * 255
        download = gr.update(value=self._save(result.image, "inpainted.png"), visible=True)
        return (job.image, result.image), mask_view, info, download

    def from_files(
        self, image_file: str | None, mask_file: str | None, model: str
    ) -> tuple[str, str, str]:
        """The ``/inpaint_files`` API: an image file and a mask file (white = fill)."""
        try:
            if not image_file:
                raise proc.DemoError(proc.NO_PHOTO)
            if not mask_file:
                raise proc.DemoError(proc.NO_MASK)
            image, note = proc.read_photo(image_file, self.max_side)
            size = proc.check_file(image_file, "photo")
            hole = proc.read_mask(mask_file, self.max_side)
            job = proc.make_job(
                image, None, hole, self.max_side, notes=[note] if note else [], original_size=size
            )
        except proc.DemoError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        result, load_s = self._run(job, model)
        out = self._save(result.image, "inpainted.png")
        mask = self._save(result.hole.astype(np.uint8) * 255, "mask.png")
        return out, mask, _info(result, model, self.store.device.type, load_s)


def build_app(
    models: Mapping[str, str | os.PathLike[str]] | None = None,
    *,
    zoo: bool = True,
    device: str = "auto",
    max_side: int = proc.MAX_SIDE,
    concurrency_limit: int = 1,
) -> gr.Blocks:
    """The demo as a :class:`gradio.Blocks`, its queue set up; ``launch()`` it.

    ``models``: extra models, name -> weights file (``--model``), listed first. ``zoo``: also
    offer the zoo's entries. ``concurrency_limit``: inpainting runs at the same time (each uses
    all CPU cores or the GPU; the rest wait in the queue).
    """
    app = DemoApp(models, zoo=zoo, device=device, max_side=max_side)
    dropdown = [(c.label, c.key) for c in app.choices]
    with gr.Blocks(
        title="pconv inpainting demo", analytics_enabled=False, delete_cache=(3600, 3600)
    ) as blocks:
        gr.Markdown(INTRO)
        notice = _notice(app.choices)
        gr.Markdown(notice, visible=bool(notice), elem_id="pconv-notice")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                editor = gr.ImageEditor(
                    label="Photo: paint over what should disappear",
                    type="numpy",
                    image_mode="RGBA",
                    sources=("upload", "clipboard"),
                    brush=gr.Brush(colors=[BRUSH], default_color=BRUSH, color_mode="fixed"),
                    eraser=gr.Eraser(),
                    layers=gr.LayerOptions(layers=["mask"]),
                    transforms=(),
                    format="png",
                    height=520,
                    elem_id="pconv-editor",
                )
                gr.Examples(example_photos(), inputs=editor, label="Example photos")
                with gr.Accordion("Or upload a mask (white = fill)", open=False):
                    mask_file = gr.File(
                        label="Mask image", file_types=["image"], type="filepath", height=120
                    )
                model = gr.Dropdown(
                    dropdown,
                    value=initial_choice(app.choices),
                    label="Model",
                    elem_id="pconv-model",
                )
                run = gr.Button("Inpaint", variant="primary", elem_id="pconv-run")
            with gr.Column(scale=1):
                slider = gr.ImageSlider(
                    label="Before / after (drag the handle)",
                    type="numpy",
                    format="png",
                    buttons=["fullscreen"],
                    interactive=False,
                    elem_id="pconv-result",
                )
                info = gr.Markdown(label="info", elem_id="pconv-info")
                download = gr.DownloadButton(
                    "Download the result (PNG, full size)",
                    variant="primary",
                    visible=False,
                    elem_id="pconv-download",
                )
                mask_view = gr.Image(
                    label="Mask used (white = filled)",
                    type="numpy",
                    format="png",
                    interactive=False,
                    buttons=["download", "fullscreen"],
                    height=240,
                    elem_id="pconv-mask",
                )
        gr.Markdown(
            f"Photos bigger than {max_side} pixels on the long side are scaled down first. "
            "Known pixels are returned unchanged; only the painted ones are replaced."
        )
        run.click(
            app.from_editor,
            inputs=[editor, mask_file, model],
            outputs=[slider, mask_view, info, download],
            api_name="inpaint",
            api_description="The page's button: the editor's photo, its painted layers (alpha > 0 "
            "= fill) and an optional mask file (white = fill).",
            concurrency_id="inpaint",
        )
        with gr.Row(visible=False):  # API only: files in, files out
            image_in = gr.File(label="image", type="filepath")
            mask_in = gr.File(label="mask", type="filepath")
            result_out, mask_out = gr.File(label="result"), gr.File(label="mask_used")
            info_out = gr.Textbox(label="info")
            api_button = gr.Button()
        api_button.click(
            app.from_files,
            inputs=[image_in, mask_in, model],
            outputs=[result_out, mask_out, info_out],
            api_name="inpaint_files",
            api_description="An image file and a mask file (white = fill) -> the inpainted PNG, "
            "the mask used (PNG) and a summary.",
            concurrency_id="inpaint",
        )
    blocks.queue(default_concurrency_limit=concurrency_limit, max_size=32)
    blocks.pconv_app = app  # type: ignore[attr-defined]  # for preloading and tests
    return blocks
