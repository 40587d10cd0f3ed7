"""`pconv inpaint` on folders: mirrored subfolders, collisions, reports and exit status, one mask
for a folder, EXIF orientation and metadata, formats and quality, results streamed as they come.

The batch rule under test: every image is attempted; each failure is one line on stderr naming
its file; the summary on stdout says what was written and where (only if something was); the
exit status is 2 if any image failed (every per-image failure is the user's input), else 0.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pconv.cli import main


def _save(arr: np.ndarray, path: Path, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)
    return path


def _mask(shape, path: Path, box=(20, 60, 30, 90)) -> Path:
    m = np.zeros(shape[:2], dtype=np.uint8)
    y0, y1, x0, x1 = box
    m[y0:y1, x0:x1] = 255
    return _save(m, path)


def _never_load(*_args, **_kwargs):
    raise AssertionError("the model was loaded although the run had to be refused first")


def _run(images: Path, masks: Path, out: Path, model: Path, *extra: str) -> int:
    return main(
        ["inpaint", str(images), "-m", str(masks), "-o", str(out), "--model", str(model), *extra]
    )


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_subfolders_are_mirrored(tmp_path, photos, tiny_model_file, capsys):
    img, msk, out = tmp_path / "img", tmp_path / "mask", tmp_path / "out"
    _save(photos["chelsea"], img / "sub1" / "x.jpg")
    _save(photos["coffee"], img / "sub2" / "x.jpg")
    _mask(photos["chelsea"].shape, msk / "sub1" / "x.png")
    _mask(photos["coffee"].shape, msk / "sub2" / "x.png")
    assert _run(img, msk, out, tiny_model_file) == 0
    assert _files(out) == ["sub1/x.png", "sub2/x.png"]
    assert np.asarray(Image.open(out / "sub2" / "x.png")).shape == photos["coffee"].shape
    assert "2 filled; 0 failed" in capsys.readouterr().out


def test_true_collisions_are_refused_before_any_work(tmp_path, photos, capsys, monkeypatch):
    monkeypatch.setattr("pconv.cli.inpaint.load_model", _never_load)
    img, msk, out = tmp_path / "img", tmp_path / "mask", tmp_path / "out"
    for name in ("a/y.jpg", "a/y.png", "b/z.jpg", "b/z.webp", "c/ok.png"):
        _save(photos["chelsea"], img / name)
    _mask(photos["chelsea"].shape, msk / "y.png")
    assert _run(img, msk, out, tmp_path / "unused.safetensors") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    for name in ("a/y.jpg", "a/y.png", "b/z.jpg", "b/z.webp"):
        assert name in err[0]
    assert "c/ok.png" not in err[0] and not out.exists()


def test_failures_name_their_file_and_exit_2(tmp_path, photos, tiny_model_file, capsys):
    img, msk, out = tmp_path / "img", tmp_path / "mask", tmp_path / "out"
    _save(photos["chelsea"], img / "good.png")
    _save(photos["chelsea"], img / "sized.png")
    _save(photos["chelsea"], img / "lonely.png")
    _mask(photos["chelsea"].shape, msk / "good.png")
    _mask((100, 100), msk / "sized.png", box=(10, 20, 10, 20))
    assert _run(img, msk, out, tiny_model_file) == 2
    captured = capsys.readouterr()
    failed = [line for line in captured.err.splitlines() if "failed:" in line]
    assert len(failed) == 2
    assert any(
        "sized.png" in line and "mask is 100x100 but the image is 451x300" in line
        for line in failed
    )
    assert any("lonely.png" in line and "no mask" in line for line in failed)
    assert "1 filled; 2 failed" in captured.out and f"results in {out}" in captured.out
    assert _files(out) == ["good.png"]


def test_nothing_written_says_so(tmp_path, photos, tiny_model_file, capsys):
    img, msk, out = tmp_path / "img", tmp_path / "mask", tmp_path / "out"
    _save(photos["chelsea"], img / "a.png")
    msk.mkdir()
    assert _run(img, msk, out, tiny_model_file) == 2
    summary = capsys.readouterr().out
    assert "nothing written; 1 failed" in summary and "results in" not in summary


def test_one_mask_file_for_a_folder(tmp_path, photos, tiny_model_file, capsys):
    img, out = tmp_path / "img", tmp_path / "out"
    for name in ("a.png", "sub/b.jpg"):
        _save(photos["chelsea"], img / name)
    _save(photos["coffee"], img / "other_size.png")
    mark = _mask(photos["chelsea"].shape, tmp_path / "watermark.png")
    assert _run(img, mark, out, tiny_model_file) == 2  # the size rule as for one file
    captured = capsys.readouterr()
    assert "2 filled; 1 failed" in captured.out
    assert (
        "other_size.png" in captured.err
        and "mask is 451x300 but the image is 600x400" in captured.err
    )
    assert _files(out) == ["a.png", "sub/b.png"]
    assert _run(img, mark, tmp_path / "out2", tiny_model_file, "--resize-mask") == 0


def _exif_rotated(photo: np.ndarray, path: Path, orientation: int = 6) -> Path:
    """The photo stored sideways with an EXIF orientation tag, as phones write it, plus an
    sRGB-tagged ICC profile; a viewer shows it upright (orientation 6: rotate 90 clockwise)."""
    from PIL import ImageCms

    stored = Image.fromarray(photo).transpose(Image.Transpose.ROTATE_90)  # undone by tag 6
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "PhoneMaker"  # Make
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    stored.save(path, exif=exif.tobytes(), icc_profile=icc, quality=95)
    return path


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp"])
def test_exif_orientation_applied_and_metadata_kept(tmp_path, photos, tiny_model_file, suffix):
    photo = photos["chelsea"]  # 300 tall, 451 wide as the user sees it
    src = _exif_rotated(photo, tmp_path / "phone.jpg")
    seen = np.asarray(Image.open(src).transpose(Image.Transpose.ROTATE_270))
    assert seen.shape == photo.shape
    mask = _mask(photo.shape, tmp_path / "m.png")  # drawn on what the user sees
    out = tmp_path / f"out{suffix}"
    code = main(
        ["inpaint", str(src), "-m", str(mask), "-o", str(out), "--model", str(tiny_model_file)]
    )
    assert code == 0
    result = Image.open(out)
    assert result.size == (451, 300)
    if suffix == ".png":
        hole = np.asarray(Image.open(mask)) > 127
        assert np.array_equal(np.asarray(result.convert("RGB"))[~hole], seen[~hole])
    assert result.info.get("icc_profile") == Image.open(src).info["icc_profile"]
    exif = result.getexif()
    assert exif.get(0x0112) == 1 and exif.get(0x010F) == "PhoneMaker"


def test_exif_orientation_of_a_mask(tmp_path, photos):
    from pconv.io import load_mask

    hole = np.zeros((30, 50), np.uint8)
    hole[:5, :10] = 255  # top left as seen
    stored = Image.fromarray(hole).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp_path / "m.jpg", exif=exif.tobytes(), quality=100)
    assert np.array_equal(load_mask(tmp_path / "m.jpg"), hole > 127)


def test_format_and_quality(tmp_path, photos, tiny_model_file, capsys):
    img, msk = tmp_path / "img", tmp_path / "mask"
    _save(photos["chelsea"], img / "a.png")
    _mask(photos["chelsea"].shape, msk / "a.png")
    sizes = {}
    for quality in ("30", "95"):
        out = tmp_path / f"q{quality}"
        assert _run(img, msk, out, tiny_model_file, "--format", "jpg", "--quality", quality) == 0
        assert _files(out) == ["a.jpg"] and Image.open(out / "a.jpg").format == "JPEG"
        sizes[quality] = (out / "a.jpg").stat().st_size
    assert sizes["30"] < sizes["95"]
    assert _run(img, msk, tmp_path / "w", tiny_model_file, "--format", "webp") == 0
    assert Image.open(tmp_path / "w" / "a.webp").format == "WEBP"
    capsys.readouterr()
    # quality has no meaning for PNG: said before any work
    assert _run(img, msk, tmp_path / "p", tiny_model_file, "--quality", "50") == 2
    assert "--quality" in capsys.readouterr().err and not (tmp_path / "p").exists()


@pytest.mark.slow
def test_results_stream_and_survive_a_kill(tmp_path, photos, tiny_model_file):
    """SIGKILL once the first results are there: those stay, complete; nothing half-written."""
    img, msk, out = tmp_path / "img", tmp_path / "mask", tmp_path / "out"
    big = np.tile(photos["astronaut"], (2, 2, 1))  # 1024x1024: a few model runs each
    for i in range(40):
        _save(big, img / f"{i:03d}.png")
    _mask(big.shape, msk / "000.png", box=(100, 400, 100, 400))
    for i in range(1, 40):
        (msk / f"{i:03d}.png").write_bytes((msk / "000.png").read_bytes())
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "HF_HUB_OFFLINE": "1",
    }
    cmd = [sys.executable, "-m", "pconv", "inpaint", str(img), "-m", str(msk), "-o", str(out)]
    proc = subprocess.Popen(
        [*cmd, "--model", str(tiny_model_file)], env=env, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(list(out.glob("*.png"))) < 2:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    written = sorted(out.glob("*.png"))
    assert 2 <= len(written) < 40, "results must appear one by one, not at the end"
    for path in written:  # every visible result is complete and decodes
        with Image.open(path) as im:
            im.load()
            assert im.size == (1024, 1024)
    leftovers = [p for p in out.iterdir() if p not in written]
    assert all(p.name.startswith(".") and p.name.endswith(".tmp") for p in leftovers)
