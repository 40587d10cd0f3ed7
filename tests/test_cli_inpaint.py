"""`pconv inpaint` end to end on real photos: files, folders, and every kind of bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pconv.cli import main


def _save(arr: np.ndarray, path: Path, **kw) -> Path:
    Image.fromarray(arr).save(path, **kw)
    return path


def _mask_png(shape, path: Path, boxes=((60, 140, 80, 200),)) -> Path:
    m = np.zeros(shape, dtype=np.uint8)
    for y0, y1, x0, x1 in boxes:
        m[y0:y1, x0:x1] = 255
    return _save(m, path)


def _read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_single_file(tmp_path, photos, tiny_model_file, capsys):
    img = _save(photos["astronaut"], tmp_path / "a.png")
    mask = _mask_png((512, 512), tmp_path / "m.png")
    out = tmp_path / "out" / "a_filled.png"
    assert (
        main(
            [
                "inpaint",
                str(img),
                "--mask",
                str(mask),
                "--output",
                str(out),
                "--model",
                str(tiny_model_file),
            ]
        )
        == 0
    )
    result, original = _read(out), photos["astronaut"]
    hole = np.asarray(Image.open(mask)) > 127
    assert np.array_equal(result[~hole], original[~hole])  # white = fill, the rest untouched
    assert not np.array_equal(result[hole], original[hole])
    assert "filled" in capsys.readouterr().out


def test_folders_paired_by_stem_with_summary(tmp_path, photos, tiny_model_file, capsys):
    images, masks, out = tmp_path / "img", tmp_path / "mask", tmp_path / "out"
    images.mkdir()
    masks.mkdir()
    for name in ("coffee", "chelsea", "china"):
        _save(photos[name], images / f"{name}.jpg", quality=95)
    _mask_png(photos["coffee"].shape[:2], masks / "coffee.png")
    _mask_png(photos["chelsea"].shape[:2], masks / "chelsea_mask.png")  # _mask suffix accepted
    code = main(
        [
            "inpaint",
            str(images),
            "--mask",
            str(masks),
            "--output",
            str(out),
            "--model",
            str(tiny_model_file),
        ]
    )
    captured = capsys.readouterr()
    assert code == 2  # china has no mask: reported, the others still done
    assert sorted(p.name for p in out.iterdir()) == ["chelsea.png", "coffee.png"]
    assert "2 filled; 1 failed" in captured.out and "china.jpg: no mask" in captured.err


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16"])
def test_greyscale_rgba_16bit_inputs(tmp_path, photos, tiny_model_file, mode):
    rgb = photos["chelsea"]
    if mode == "L":
        img = Image.fromarray(rgb).convert("L")
    elif mode == "RGBA":
        img = Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)]))
    else:
        img = Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)
    src = tmp_path / "in.png"
    img.save(src)
    out = tmp_path / "out.png"
    mask = _mask_png(rgb.shape[:2], tmp_path / "m.png")
    assert (
        main(
            ["inpaint", str(src), "-m", str(mask), "-o", str(out), "--model", str(tiny_model_file)]
        )
        == 0
    )
    assert _read(out).shape == rgb.shape


def test_jpeg_soft_mask_binarised(tmp_path, photos, tiny_model_file):
    img = _save(photos["chelsea"], tmp_path / "c.png")
    m = np.zeros(photos["chelsea"].shape[:2], dtype=np.uint8)
    m[100:200, 100:200] = 255
    mask = _save(m, tmp_path / "m.jpg", quality=40)  # ringing around the edges
    out = tmp_path / "out.png"
    assert (
        main(
            ["inpaint", str(img), "-m", str(mask), "-o", str(out), "--model", str(tiny_model_file)]
        )
        == 0
    )
    result = _read(out)
    assert np.array_equal(result[:90], photos["chelsea"][:90])


def test_empty_mask_copies_input(tmp_path, photos, tiny_model_file, capsys):
    img = _save(photos["chelsea"], tmp_path / "c.png")
    mask = _save(np.zeros((300, 451), np.uint8), tmp_path / "m.png")
    out = tmp_path / "out.png"
    assert (
        main(
            ["inpaint", str(img), "-m", str(mask), "-o", str(out), "--model", str(tiny_model_file)]
        )
        == 0
    )
    assert np.array_equal(_read(out), photos["chelsea"])
    assert "empty mask" in capsys.readouterr().out


def _fails_cleanly(capsys, out: Path, args: list[str], message: str) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]
    assert not out.exists() and not list(out.parent.glob(f".{out.name}*"))


def test_bad_inputs_fail_with_one_line(tmp_path, photos, tiny_model_file, capsys):
    img = _save(photos["chelsea"], tmp_path / "c.png")
    out = tmp_path / "out.png"
    model = ["--model", str(tiny_model_file)]
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(img.read_bytes()[:500])
    good_mask = _mask_png((300, 451), tmp_path / "m.png")
    _fails_cleanly(
        capsys,
        out,
        ["inpaint", str(corrupt), "-m", str(good_mask), "-o", str(out), *model],
        "not a readable image",
    )
    _fails_cleanly(
        capsys,
        out,
        ["inpaint", str(tmp_path / "nope.png"), "-m", str(good_mask), "-o", str(out), *model],
        "no such file",
    )
    small = _mask_png((100, 100), tmp_path / "small.png", boxes=((10, 50, 10, 50),))
    _fails_cleanly(
        capsys,
        out,
        ["inpaint", str(img), "-m", str(small), "-o", str(out), *model],
        "mask is 100x100 but the image is 451x300 (pass --resize-mask)",
    )
    # an empty mask of another size too: the size rule comes first, as in pconv.inpaint
    empty_small = _save(np.zeros((100, 100), np.uint8), tmp_path / "empty_small.png")
    _fails_cleanly(
        capsys,
        out,
        ["inpaint", str(img), "-m", str(empty_small), "-o", str(out), *model],
        "mask is 100x100 but the image is 451x300 (pass --resize-mask)",
    )
    full = _save(np.full((300, 451), 255, np.uint8), tmp_path / "full.png")
    _fails_cleanly(
        capsys,
        out,
        ["inpaint", str(img), "-m", str(full), "-o", str(out), *model],
        "covers the whole image",
    )
    _fails_cleanly(
        capsys,
        out,
        [
            "inpaint",
            str(img),
            "-m",
            str(good_mask),
            "-o",
            str(out),
            "--model",
            str(tmp_path / "missing.safetensors"),
        ],
        "missing",
    )
    pickle = tmp_path / "model.pth"
    import torch

    torch.save({"a": torch.zeros(1)}, pickle)
    _fails_cleanly(
        capsys,
        out,
        ["inpaint", str(img), "-m", str(good_mask), "-o", str(out), "--model", str(pickle)],
        "pickles are never loaded",
    )
    # with --resize-mask the small mask is accepted
    assert (
        main(["inpaint", str(img), "-m", str(small), "-o", str(out), "--resize-mask", *model]) == 0
    )


@pytest.mark.slow
def test_installed_entry_point(tmp_path, photos, tiny_model_file):
    """The real `pconv` console script: a user mistake prints one line, exit status 2."""
    exe = Path(sys.executable).with_name("pconv")
    if not exe.exists():
        pytest.skip("pconv console script not installed in this environment")
    img = _save(photos["chelsea"], tmp_path / "c.png")
    proc = subprocess.run(
        [
            str(exe),
            "inpaint",
            str(img),
            "-m",
            str(tmp_path / "none.png"),
            "-o",
            str(tmp_path / "o.png"),
            "--model",
            str(tiny_model_file),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert (
        proc.stderr.strip()
        == f"pconv inpaint: error: {tmp_path / 'none.png'}: no such file or folder"
    )
    ok = subprocess.run(
        [sys.executable, "-m", "pconv", "--help"], capture_output=True, text=True, timeout=120
    )
    assert ok.returncode == 0 and "inpaint" in ok.stdout


def test_outputs_get_ordinary_permissions(tmp_path, photos, tiny_model_file):
    """Atomic writes go through a private temp file; the result must not stay private."""
    import os

    img = _save(photos["chelsea"], tmp_path / "c.png")
    mask = _mask_png((300, 451), tmp_path / "m.png")
    out = tmp_path / "out.png"
    old = os.umask(0o022)
    try:
        assert (
            main(
                [
                    "inpaint",
                    str(img),
                    "-m",
                    str(mask),
                    "-o",
                    str(out),
                    "--model",
                    str(tiny_model_file),
                ]
            )
            == 0
        )
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("which", ["image", "mask"])
def test_decompression_bomb_is_one_line_and_max_pixels_lets_it_through(
    tmp_path, photos, tiny_model_file, capsys, which
):
    from test_io import bomb_png

    img = _save(photos["chelsea"], tmp_path / "c.png")
    mask = _mask_png((300, 451), tmp_path / "m.png")
    bomb = bomb_png(tmp_path / "bomb.png")
    out = tmp_path / "out.png"
    args = ["inpaint", str(bomb if which == "image" else img), "-m"]
    args += [str(bomb if which == "mask" else mask), "-o", str(out)]
    args += ["--model", str(tiny_model_file)]
    _fails_cleanly(capsys, out, args, "40000x40000 = 1600000000 pixels, over the limit of")
    _fails_cleanly(capsys, out, args, "(pass --max-pixels N)")
    # a user who means it: the limit lifted, the 8x8 data then fails as a truncated file
    _fails_cleanly(capsys, out, [*args, "--max-pixels", "0"], "not a readable image")
    small = ["--max-pixels", str(451 * 300 - 1)]
    real = ["inpaint", str(img), "-m", str(mask), "-o", str(out), *args[-2:], *small]
    _fails_cleanly(capsys, out, real, "c.png: 451x300 = 135300 pixels, over the limit of 135299")


@pytest.mark.parametrize("size", [(1, 1), (321, 1), (1, 481)])  # width x height
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_one_pixel_sides_round_trip(tmp_path, photos, tiny_model_file, capsys, size, mode):
    w, h = size
    rgb = photos["astronaut"][:h, :w]
    src = tmp_path / "in.png"
    Image.fromarray(rgb).convert(mode).save(src)
    kept = "RGBA" if mode == "RGBA" else "RGB"  # an alpha channel is kept, as it was
    expected = np.asarray(Image.open(src).convert(kept))
    hole = np.zeros((h, w), np.uint8)
    if w * h > 1:  # a 1x1 image has only an empty or a full mask: the empty one is a copy
        hole.flat[w * h // 2] = 255
    mask = _save(hole, tmp_path / "m.png")
    out = tmp_path / "out.png"
    code = main(
        ["inpaint", str(src), "-m", str(mask), "-o", str(out), "--model", str(tiny_model_file)]
    )
    assert code == 0, capsys.readouterr().err
    result = np.asarray(Image.open(out))
    assert result.shape == (h, w, len(kept))
    known = hole == 0
    assert np.array_equal(result[known], expected[known])


def _never_load(*_args, **_kwargs):
    raise AssertionError("the model was loaded before the output was checked")


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("out.xyz", "cannot write images with the extension '.xyz'"),
        ("out", "has no extension"),
        ("afile/sub/out.png", "afile: not a folder"),
        ("/proc/pconv-no-such/out.png", "/proc: cannot write here"),  # even root cannot
        ("/proc/out.png", "/proc: cannot write here"),
    ],
)
def test_unusable_output_is_refused_before_the_work(
    tmp_path, photos, capsys, monkeypatch, output, message
):
    monkeypatch.setattr("pconv.cli.inpaint.load_model", _never_load)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("a file, not a folder")
    img = _save(photos["chelsea"], tmp_path / "c.png")
    mask = _mask_png((300, 451), tmp_path / "m.png")
    before = sorted(tmp_path.rglob("*"))
    out = Path(output)
    assert main(["inpaint", str(img), "-m", str(mask), "-o", output]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert sorted(tmp_path.rglob("*")) == before and not out.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder_is_refused_before_the_work(tmp_path, photos, capsys, monkeypatch):
    monkeypatch.setattr("pconv.cli.inpaint.load_model", _never_load)
    img = _save(photos["chelsea"], tmp_path / "c.png")
    mask = _mask_png((300, 451), tmp_path / "m.png")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    try:
        assert main(["inpaint", str(img), "-m", str(mask), "-o", str(locked / "o.png")]) == 2
    finally:
        locked.chmod(0o755)
    assert "cannot write here" in capsys.readouterr().err and not list(locked.iterdir())
