"""The Gradio demo: mask and size handling, its messages, its API (gradio_client), a real
browser session (headless Debian chromium driven by Playwright) and ``python -m demo``.

Needs the ``demo`` extra (gradio), gradio_client and playwright, and ``/usr/bin/chromium``.
Locally a missing piece skips these tests; with ``CI`` set it fails them.
Artefacts (the browser screenshot and result) go to ``$PCONV_TEST_ARTIFACTS/demo/`` (default:
``test-artifacts/demo/``, git-ignored); ``PCONV_DEMO_SCREENSHOT=docs/demo.png`` also writes a
256-colour copy of the screenshot to that path (for the docs); the server then offers the zoo
(the shipped default model first) instead of the tiny random model, so run only
``-k browser`` that way.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from ci import in_ci
from PIL import Image

# gradio's queue statistics use pandas APIs that pandas 3 deprecates: not ours to fix
pytestmark = [
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[1]
COFFEE = ROOT / "pconv" / "examples" / "coffee.jpg"


def _missing(what: str) -> None:
    if in_ci():
        pytest.fail(f"{what} is required in CI", pytrace=False)
    pytest.skip(f"{what} is not installed")


try:
    import gradio as gr
except ImportError:
    if in_ci():
        raise
    pytest.skip("gradio is not installed (pip install -e '.[demo]')", allow_module_level=True)

import zoo.registry  # noqa: E402
from demo import processing as proc  # noqa: E402
from demo.__main__ import build_parser, launch_kwargs  # noqa: E402
from demo.app import DemoApp, build_app, example_photos  # noqa: E402
from demo.models import ModelStore, model_choices, parse_model_specs  # noqa: E402

# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory) -> Path:
    import torch

    from pconv import PConvUNet, UNetConfig, save_model

    torch.manual_seed(0)
    model = PConvUNet(UNetConfig(depth=4, base_width=8, resolution=64)).eval()
    return save_model(model, tmp_path_factory.mktemp("demo-model") / "tiny.safetensors")


@pytest.fixture(scope="module")
def demo_app(tiny_path) -> DemoApp:
    return DemoApp({"tiny": tiny_path}, zoo=False, device="cpu")


@pytest.fixture(scope="module")
def coffee() -> np.ndarray:
    return np.asarray(Image.open(COFFEE).convert("RGB"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_path):
    """The app on a free loopback port, in this process; its URL."""
    # For the docs screenshot, the demo as a user gets it: the default model, not random noise.
    docs = bool(os.environ.get("PCONV_DEMO_SCREENSHOT"))
    blocks = build_app(None if docs else {"tiny": tiny_path}, zoo=docs, device="cpu")
    _, url, _ = blocks.launch(
        prevent_thread_lock=True,
        server_name="127.0.0.1",
        server_port=_free_port(),
        quiet=True,
        show_error=True,
    )
    try:
        yield url
    finally:
        blocks.close()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    """Where the browser test leaves its screenshot and result (git-ignored by default)."""
    path = Path(os.environ.get("PCONV_TEST_ARTIFACTS") or ROOT / "test-artifacts") / "demo"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _stroke_mask(h: int = 400, w: int = 600) -> np.ndarray:
    hole = np.zeros((h, w), dtype=bool)
    hole[h * 9 // 20 : h * 11 // 20, w // 4 : w * 2 // 3] = True  # 180:220, 150:400 at 600x400
    return hole


def _layer(hole: np.ndarray, alpha: int = 160) -> np.ndarray:
    """An editor layer: transparent, with a translucent magenta stroke where ``hole``."""
    layer = np.zeros((*hole.shape, 4), dtype=np.uint8)
    layer[hole] = (255, 0, 160, alpha)
    return layer


# -- masks, sizes and messages (no server) --------------------------------------------------------


def test_painted_layers_union_of_alpha():
    a, b = np.zeros((40, 60), bool), np.zeros((40, 60), bool)
    a[5:10, 5:10] = True
    b[20:30, 40:50] = True
    faint = _layer(b, alpha=1)  # any alpha > 0 counts, whatever the colour
    faint[b, :3] = 0
    hole = proc.mask_from_layers([_layer(a), faint, None])
    assert np.array_equal(hole, a | b)
    assert proc.mask_from_layers([]) is None


def test_uploaded_mask_white_is_fill(tmp_path):
    grey = np.zeros((40, 60), np.uint8)
    grey[10:20, 10:30] = 255
    grey[30:35, 40:50] = 100  # soft: below 0.5 of white -> kept
    Image.fromarray(grey).save(tmp_path / "m.png")
    hole = proc.read_mask(tmp_path / "m.png")
    assert hole.sum() == 10 * 20 and hole[10:20, 10:30].all()


def test_full_mask_message(coffee):
    with pytest.raises(proc.DemoError, match=re.escape(proc.FULL_MASK)):
        proc.make_job(coffee, np.ones((400, 600), bool), None)


@pytest.mark.parametrize("painted", [None, np.zeros((400, 600), bool)])
def test_empty_mask_returns_the_photo_unchanged_with_a_note(coffee, tiny_model, painted):
    """As pconv inpaint, pconv.inpaint and the nodes do (pconv.holes): a copy, and a note."""
    job = proc.make_job(coffee, painted, None)
    result = proc.run_job(job, tiny_model, "cpu")
    assert np.array_equal(result.image, coffee) and result.image is not job.image
    assert result.notes == [proc.NOTHING_PAINTED] and result.filled_fraction == 0


def test_no_photo_message():
    with pytest.raises(proc.DemoError, match="No photo"):
        proc.make_job(None, _stroke_mask(), None)


def test_unreadable_files(tmp_path, coffee):
    bad = tmp_path / "holiday.jpg"
    bad.write_bytes(b"this is not a JPEG at all")
    for read, what in ((proc.read_photo, "photo"), (proc.read_mask, "mask")):
        with pytest.raises(proc.DemoError, match=f"The {what} 'holiday.jpg' is not a readable"):
            read(bad)
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(COFFEE.read_bytes()[:3000])
    cut = r"The photo 'cut.jpg' is not a readable image \(.+"
    with pytest.raises(proc.DemoError, match=cut) as e:
        proc.read_photo(truncated)
    assert str(tmp_path) not in str(e.value)  # no server-side paths in messages


def test_big_photos_are_capped_with_a_notice(tmp_path, coffee, monkeypatch):
    job = proc.make_job(coffee, _stroke_mask(), None, max_side=300)
    assert job.image.shape == (200, 300, 3) and job.hole.shape == (200, 300)
    assert job.hole.any() and "600x400" in job.notes[0] and "300x200" in job.notes[0]
    big = tmp_path / "big.jpg"
    Image.fromarray(np.tile(coffee, (3, 3, 1))).save(big)  # 1800x1200
    image, note = proc.read_photo(big, max_side=500)
    assert max(image.shape[:2]) == 500 and "1800x1200" in note
    monkeypatch.setattr(proc, "MAX_PIXELS", 1000 * 1000)
    with pytest.raises(proc.DemoError, match="1800x1200 pixels; the demo accepts up to 1 mega"):
        proc.read_photo(big)


def test_mask_of_another_shape_is_stretched_with_a_notice(coffee):
    job = proc.make_job(coffee, None, _stroke_mask(100, 100))
    assert job.hole.shape == (400, 600) and "stretched" in job.notes[0]
    assert not proc.make_job(coffee, None, _stroke_mask(200, 300)).notes  # same shape: silent


def test_editor_handler_keeps_known_pixels(demo_app, coffee):
    hole = _stroke_mask()
    editor = {"background": coffee, "layers": [_layer(hole)], "composite": None}
    (before, after), mask_view, info, download = demo_app.from_editor(editor, None, "tiny")
    assert np.array_equal(before, coffee) and np.array_equal(mask_view > 0, hole)
    assert np.array_equal(after[~hole], coffee[~hole])
    assert (after[hole] != coffee[hole]).any(axis=-1).mean() > 0.9
    saved = np.asarray(Image.open(download["value"]))
    assert np.array_equal(saved, after)  # the download is the full-size PNG
    assert "with `tiny` on cpu" in info and "4.2 %" in info


@pytest.mark.parametrize("arch", ["gan-pconv", "deepgin"])
def test_the_seed_networks_are_model_choices(tmp_path, coffee, arch):
    # any registered network is offered and fills like the U-Net: no special case in the demo
    import torch

    from pconv import save_model
    from pconv.architectures import get_architecture

    network = get_architecture(arch)
    small = {"gan-pconv": {"base_width": 4, "resolution": 64}, "deepgin": {"base_width": 4}}
    torch.manual_seed(0)
    model = network.build(network.config_type(**small[arch])).eval()
    path = save_model(model, tmp_path / f"{arch}.safetensors", {"licence": "test"})
    app = DemoApp({arch: path}, zoo=False, device="cpu")
    hole = _stroke_mask()
    editor = {"background": coffee, "layers": [_layer(hole)], "composite": None}
    (_, after), _, info, _ = app.from_editor(editor, None, arch)
    assert np.array_equal(after[~hole], coffee[~hole]) and f"with `{arch}` on cpu" in info


def test_handler_errors_are_shown_to_the_user(demo_app, coffee, tiny_path):
    editor = {"background": coffee, "layers": [], "composite": None}
    (_, after), _, info, _ = demo_app.from_editor(editor, None, "tiny")  # empty: not an error
    assert np.array_equal(after, coffee) and "Nothing was painted" in info
    with pytest.raises(gr.Error, match="No photo"):
        demo_app.from_editor(None, None, "tiny")
    broken = DemoApp({"gone": tiny_path.with_name("missing.safetensors")}, zoo=False)
    editor["layers"] = [_layer(_stroke_mask())]
    with pytest.raises(gr.Error, match="Model 'gone' cannot be used"):
        broken.from_editor(editor, None, "gone")


def test_model_choices_offline(tmp_path, monkeypatch, tiny_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("PCONV_CACHE", str(tmp_path / "empty-cache"))
    choices = model_choices({"tiny": tiny_path})
    keys = [c.key for c in choices]
    assert keys[0] == "tiny" and "default" in keys  # the default is always offered
    default = next(c for c in choices if c.key == "default")
    assert default.ready and default.label == "default (built in)"  # it ships in the package
    monkeypatch.delenv("HF_HUB_OFFLINE")
    online = [c for c in model_choices() if "downloaded on first use" in c.label]
    assert {"places2", "celeba-hq"} <= {c.key for c in online}
    # every registered name is offered (places2-naoto included), none hard-coded
    assert set(zoo.registry.names()) <= {c.key for c in model_choices()}


def test_model_store_loads_once(tiny_path):
    store = ModelStore(model_choices({"tiny": tiny_path}, zoo=False), "cpu")
    first, seconds = store.get("tiny")
    again, zero = store.get("tiny")
    assert first is again and seconds > 0 and zero == 0.0


def test_command_line_passes_through():
    argv = "--model a.safetensors --model mine=b/model.safetensors --share"
    argv += " --server-name 0.0.0.0 --server-port 9999"
    args = build_parser().parse_args(argv.split())
    kwargs = launch_kwargs(args)
    assert kwargs["share"] is True and kwargs["server_name"] == "0.0.0.0"
    assert kwargs["server_port"] == 9999
    assert parse_model_specs(args.model) == {"a": "a.safetensors", "mine": "b/model.safetensors"}
    assert launch_kwargs(build_parser().parse_args([]))["server_name"] is None  # env decides


def test_examples_are_small_jpegs():
    photos = example_photos()
    assert 2 <= len(photos) <= 3
    for path in photos:
        assert Path(path).stat().st_size < 150_000 and Image.open(path).format == "JPEG"


# -- the API through gradio_client ----------------------------------------------------------------


def test_client_inpaint_files(server, tmp_path, coffee):
    from gradio_client import Client, handle_file

    hole = _stroke_mask()
    Image.fromarray(hole.astype(np.uint8) * 255).save(tmp_path / "mask.png")
    client = Client(server, verbose=False)
    result, mask, info = client.predict(
        handle_file(str(COFFEE)),
        handle_file(str(tmp_path / "mask.png")),
        "tiny",
        api_name="/inpaint_files",
    )
    out = np.asarray(Image.open(result).convert("RGB"))
    assert out.shape == coffee.shape and np.array_equal(out[~hole], coffee[~hole])
    assert (out[hole] != coffee[hole]).any(axis=-1).mean() > 0.9
    assert np.array_equal(np.asarray(Image.open(mask)) > 0, hole) and "Done in" in info


def test_client_editor_endpoint(server, tmp_path, coffee):
    from gradio_client import Client, handle_file

    hole = _stroke_mask()
    Image.fromarray(_layer(hole)).save(tmp_path / "layer.png")
    editor = {
        "background": handle_file(str(COFFEE)),
        "layers": [handle_file(str(tmp_path / "layer.png"))],
        "composite": None,
    }
    client = Client(server, verbose=False)
    _, mask, info, download = client.predict(editor, None, "tiny", api_name="/inpaint")
    assert np.array_equal(np.asarray(Image.open(mask).convert("L")) > 0, hole)
    out = np.asarray(Image.open(download["value"]).convert("RGB"))
    assert np.array_equal(out[~hole], coffee[~hole]) and "Done in" in info


def test_client_error_messages(server, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    Image.fromarray(np.full((400, 600), 255, np.uint8)).save(tmp_path / "full.png")
    Image.fromarray(np.zeros((400, 600), np.uint8)).save(tmp_path / "empty.png")
    (tmp_path / "notes.png").write_text("not an image")
    client = Client(server, verbose=False)
    cases = [
        (COFFEE, tmp_path / "full.png", "The mask covers the whole photo"),
        (tmp_path / "notes.png", tmp_path / "empty.png", "The photo 'notes.png' is not a readable"),
        (COFFEE, tmp_path / "notes.png", "The mask 'notes.png' is not a readable"),
    ]
    for image, mask, message in cases:
        with pytest.raises(AppError, match=re.escape(message)):
            client.predict(
                handle_file(str(image)), handle_file(str(mask)), "tiny", api_name="/inpaint_files"
            )
    # an empty mask is no error: the photo comes back unchanged, and the info says why
    out, _, info = client.predict(
        handle_file(str(COFFEE)),
        handle_file(str(tmp_path / "empty.png")),
        "tiny",
        api_name="/inpaint_files",
    )
    photo = np.asarray(Image.open(COFFEE).convert("RGB"))
    assert np.array_equal(np.asarray(Image.open(out).convert("RGB")), photo)
    assert "Nothing was painted" in info


# -- a real browser -------------------------------------------------------------------------------


def _launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


@pytest.mark.browser
def test_browser_paint_and_inpaint(server, artifacts, coffee):
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _missing("playwright (pip install playwright)")
    if not Path(CHROMIUM).exists():
        _missing(f"{CHROMIUM} (apt-get install chromium)")

    with sync_playwright() as p:
        browser = _launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            page.goto(server)
            editor = page.locator("#pconv-editor")
            page.locator(".gallery-item").nth(example_index()).click()  # the coffee cup
            expect(editor.get_by_role("button", name="Brush Size")).to_be_visible(timeout=20_000)

            # a stroke from image pixel (150, 200) to (350, 260): where is that on screen?
            zoom = _settled_zoom(editor)
            box = editor.locator("canvas").first.bounding_box()
            x0 = box["x"] + (box["width"] - 600 * zoom) / 2
            y0 = box["y"] + (box["height"] - 400 * zoom) / 2
            stroke = [(150 + 50 * i, 200 + 15 * i) for i in range(5)]  # few moves: slow GL
            page.mouse.move(x0 + stroke[0][0] * zoom, y0 + stroke[0][1] * zoom)
            _next_frame(page)
            page.mouse.down()
            _next_frame(page)
            for x, y in stroke[1:]:
                page.mouse.move(x0 + x * zoom, y0 + y * zoom)
                _next_frame(page)  # one event per frame: none is coalesced away
            page.mouse.move(x0 + stroke[-1][0] * zoom + 1, y0 + stroke[-1][1] * zoom)
            _next_frame(page)
            page.mouse.up()

            page.locator("#pconv-run").click()
            download_button = page.locator("#pconv-download")
            expect(download_button).to_be_visible(timeout=60_000)
            expect(page.locator("#pconv-info")).to_contain_text("Done in")
            with page.expect_download() as info:
                download_button.click()
            result = artifacts / "demo-result.png"
            info.value.save_as(result)
            page.mouse.move(0, 0)
            shot = artifacts / "demo-browser.png"
            page.screenshot(path=shot, full_page=True)
            if docs := os.environ.get("PCONV_DEMO_SCREENSHOT"):  # 256 colours: a third the size
                picture = Image.open(shot).convert("RGB")
                picture.quantize(256, method=Image.Quantize.MEDIANCUT).save(docs, optimize=True)

            editor.get_by_role("button", name="Undo").click()  # the stroke is gone: empty mask
            page.locator("#pconv-run").click()
            expect(page.locator("#pconv-info")).to_contain_text(
                "Nothing was painted", timeout=20_000
            )
        finally:
            browser.close()

    out = np.asarray(Image.open(result).convert("RGB"))
    assert out.shape == coffee.shape
    changed = (out != coffee).any(axis=-1)
    p0, p1 = np.array(stroke[0], float), np.array(stroke[-1], float)
    under = [np.rint(p0 + t * (p1 - p0)).astype(int) for t in np.linspace(0, 1, 50)]
    assert all(changed[y, x] for x, y in under), "pixels under the stroke were not filled"
    # nothing changed away from the stroke: every changed pixel is within a brush radius of it
    ys, xs = np.nonzero(changed)
    t = np.clip(((np.stack([xs, ys], 1) - p0) @ (p1 - p0)) / np.sum((p1 - p0) ** 2), 0, 1)
    distance = np.linalg.norm(np.stack([xs, ys], 1) - (p0 + t[:, None] * (p1 - p0)), axis=1)
    assert distance.max() < 40, "pixels away from the stroke changed"
    assert changed.sum() < 0.15 * changed.size


def _next_frame(page) -> None:
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def _settled_zoom(editor, timeout: float = 30.0) -> float:
    """The editor's zoom once it has fitted the photo: the label first shows the empty canvas's
    zoom for up to a second, so wait until it has not changed for 2 s."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.append(editor.get_by_text(re.compile(r"^\d+%$")).inner_text())
        if len(seen) >= 8 and len(set(seen[-8:])) == 1:
            return float(seen[-1].rstrip("%")) / 100
        time.sleep(0.3)
    raise AssertionError(f"the editor's zoom did not settle: {seen}")


def example_index() -> int:
    return [Path(p).name for p in example_photos()].index("coffee.jpg")


# -- python -m demo -------------------------------------------------------------------------------


@pytest.mark.slow
def test_python_m_demo_starts_offline(tiny_path, tmp_path):
    """Offline (HF_HUB_OFFLINE, no proxy reachable): it starts."""
    port = _free_port()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(tmp_path / "hub"),
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
        "GRADIO_TEMP_DIR": str(tmp_path / "gradio"),
    }
    cmd = [sys.executable, "-m", "demo", "--model", f"tiny={tiny_path}", "--threads", "1"]
    cmd += ["--server-name", "127.0.0.1", "--server-port", str(port)]
    proc_ = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        url, deadline, page = f"http://127.0.0.1:{port}/", time.monotonic() + 90, ""
        while time.monotonic() < deadline and proc_.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    page = response.read().decode()
                break
            except OSError:
                time.sleep(0.5)
        assert "pconv inpainting demo" in page, "the demo did not start"
    finally:
        proc_.terminate()
        try:
            output = proc_.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            proc_.kill()
            output = proc_.communicate()[0]
    assert "model tiny loaded" in output and "; 1 CPU thread\n" in output, output
