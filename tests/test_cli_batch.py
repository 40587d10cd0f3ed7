"""`pconv inpaint` on folders: mirrored subfolders, collisions, reports and exit status, one mask
for a folder, EXIF orientation and metadata, formats and quality, results streamed as they come.

The batch rule under test: every image is attempted; each failure is one line on stderr naming
its file; the summary on stdout says what was written and where (only if something was); the
exit status is 2 if any image failed (every per-image failure is the user's input), else 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
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
