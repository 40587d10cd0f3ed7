"""No command writes over its own inputs unless told to (``--overwrite``): a result that is the
photo, a mask, or one of the images of the folder it reads is refused in one line, exit 2,
before any work, however the two paths are spelled (symlinks, ``..``, hard links, case)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pconv.cli import main
from pconv.files import file_key, same_file


def _save(arr: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def _mask(shape: tuple[int, ...], path: Path) -> Path:
    m = np.zeros(shape[:2], dtype=np.uint8)
    m[20:60, 30:90] = 255
    return _save(m, path)


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _never_load(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("the model was loaded although the run had to be refused first")


def _case_insensitive(folder: Path) -> bool:
    probe = folder / "case-probe"
    probe.write_bytes(b"")
    try:
        return (folder / "CASE-PROBE").exists()
    finally:
        probe.unlink()


# -- what "the same file" means --------------------------------------------------------------------


def test_same_file_through_links_dots_and_hard_links(tmp_path):
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"pixels")
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.png").symlink_to(photo)
    os.link(photo, tmp_path / "hard.png")
    (tmp_path / "other.png").write_bytes(b"pixels")  # same content, another file
    assert same_file(photo, tmp_path / "sub" / ".." / "photo.png")
    assert same_file(photo, tmp_path / "link.png")
    assert same_file(photo, tmp_path / "hard.png")
    assert not same_file(photo, tmp_path / "other.png")
    # paths that do not exist yet are compared resolved
    assert same_file(tmp_path / "new.png", tmp_path / "sub" / ".." / "new.png")
    assert not same_file(tmp_path / "new.png", tmp_path / "new.jpg")
    assert file_key(tmp_path / "new.png") != file_key(photo)


def test_same_file_on_a_case_insensitive_file_system(tmp_path):
    if not _case_insensitive(tmp_path):
        pytest.skip("the temporary folder's file system is case-sensitive (macOS, Windows test it)")
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"pixels")
    assert same_file(photo, tmp_path / "Photo.PNG")


# -- pconv inpaint ---------------------------------------------------------------------------------


def _spellings(tmp_path: Path, photo: Path) -> dict[str, Path]:
    (tmp_path / "sub").mkdir(exist_ok=True)
    (tmp_path / "link.png").symlink_to(photo)
    os.link(photo, tmp_path / "hard.png")
    return {
        "itself": photo,
        "dots": tmp_path / "sub" / ".." / photo.name,
        "symlink": tmp_path / "link.png",
        "hard link": tmp_path / "hard.png",
    }


def test_inpaint_refuses_to_write_over_its_photo(tmp_path, photos, capsys, monkeypatch):
    monkeypatch.setattr("pconv.cli.inpaint.load_model", _never_load)
    photo = _save(photos["chelsea"], tmp_path / "photo.png")
    mask = _mask(photos["chelsea"].shape, tmp_path / "mask.png")
    before = _digests(tmp_path)
    for how, output in _spellings(tmp_path, photo).items():
        assert main(["inpaint", str(photo), "-m", str(mask), "-o", str(output)]) == 2, how
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, (how, err)
        assert "would replace it" in err[0] and "--overwrite" in err[0], err
    # the mask is an input too
    assert main(["inpaint", str(photo), "-m", str(mask), "-o", str(mask)]) == 2
    assert "is an input" in capsys.readouterr().err
    after = _digests(tmp_path)
    assert {k: after[k] for k in before} == before  # nothing was written


def test_inpaint_overwrite_replaces_the_photo_when_asked(tmp_path, photos, tiny_model_file):
    photo = _save(photos["chelsea"], tmp_path / "photo.png")
    mask = _mask(photos["chelsea"].shape, tmp_path / "mask.png")
    model = ["--model", str(tiny_model_file)]
    assert (
        main(["inpaint", str(photo), "-m", str(mask), "-o", str(photo), *model, "--overwrite"]) == 0
    )
    result = np.asarray(Image.open(photo))
    assert not np.array_equal(result, photos["chelsea"])  # filled in place
    known = np.asarray(Image.open(mask)) < 128
    assert np.array_equal(result[known], photos["chelsea"][known])


def test_inpaint_folder_into_itself_is_refused(tmp_path, photos, capsys, monkeypatch):
    monkeypatch.setattr("pconv.cli.inpaint.load_model", _never_load)
    img, msk = tmp_path / "img", tmp_path / "mask"
    for name in ("a.png", "b.png", "c.png", "d.png", "sub/e.png", "f.jpg"):
        _save(photos["chelsea"], img / name)
    _mask(photos["chelsea"].shape, msk / "a.png")
    before = _digests(tmp_path)
    # the image folder itself, by another spelling, and the mask folder
    for out in (img, tmp_path / "mask" / ".." / "img", msk):
        assert main(["inpaint", str(img), "-m", str(msk), "-o", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        assert "--overwrite" in err[0]
    assert main(["inpaint", str(img), "-m", str(msk), "-o", str(img)]) == 2
    err = capsys.readouterr().err
    assert "5 results would replace their inputs" in err and "and 2 more" in err  # f.jpg -> f.png
    assert _digests(tmp_path) == before


def test_inpaint_folder_overwrite_fills_in_place(tmp_path, photos, tiny_model_file, capsys):
    img = tmp_path / "img"
    _save(photos["chelsea"], img / "a.png")
    mask = _mask(photos["chelsea"].shape, tmp_path / "m.png")
    run = ["inpaint", str(img), "-m", str(mask), "-o", str(img), "--model", str(tiny_model_file)]
    assert main([*run, "--overwrite"]) == 0
    assert "1 filled" in capsys.readouterr().out
    assert not np.array_equal(np.asarray(Image.open(img / "a.png")), photos["chelsea"])


def test_inpaint_folder_into_a_new_subfolder_is_fine(tmp_path, photos, tiny_model_file):
    """An output folder inside the image folder holds results, not inputs (as before)."""
    img = tmp_path / "img"
    _save(photos["chelsea"], img / "a.png")
    mask = _mask(photos["chelsea"].shape, tmp_path / "m.png")
    run = ["inpaint", str(img), "-m", str(mask), "--model", str(tiny_model_file)]
    assert main([*run, "-o", str(img / "filled")]) == 0
    assert main([*run, "-o", str(img / "filled")]) == 0  # a second run replaces its results
    assert (img / "filled" / "a.png").is_file()


# -- pconv eval and pconv masks --------------------------------------------------------------------


def test_eval_refuses_pictures_over_its_images(tmp_path, photos, capsys, monkeypatch):
    pytest.importorskip("skimage")
    monkeypatch.setattr(
        "pconv.evaluation.perceptual.load_perceptual", _never_load
    )  # refused before the judges load
    img, msk = tmp_path / "img", tmp_path / "mask"
    _save(photos["chelsea"], img / "metrics.png")
    _save(photos["coffee"], img / "cup.png")
    _mask((96, 96), msk / "m.png")
    before = _digests(tmp_path)
    args = ["eval", "--images", str(img), "--masks", str(msk), "--size", "64", "--no-progress"]
    assert main([*args, "--output", str(img)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "metrics.png" in err[0] and "--overwrite" in err[0], err
    assert _digests(tmp_path) == before


def test_masks_refuse_to_write_over_the_masks_they_read(tmp_path, capsys):
    source = tmp_path / "source"
    _mask((64, 64), source / "a.png")
    before = _digests(tmp_path)
    folder = ["-g", "folder", "--folder", str(source), "-n", "2", "--size", "64"]
    # into the folder it reads, and a contact sheet over one of its masks
    assert main(["masks", str(source), *folder]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["masks", str(tmp_path / "new"), *folder, "--sheet", str(source / "a.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is an input" in err[0] and "--overwrite" in err[0], err
    assert _digests(tmp_path) == before
    assert main(["masks", str(tmp_path / "new"), *folder]) == 0
