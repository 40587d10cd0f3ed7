"""Mask generators, ratio buckets, border rule, augmentation, folder loader, sampler, CLI."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pconv.cli import SUBCOMMANDS, main
from pconv.errors import InputError
from pconv.io import list_images, load_mask
from pconv.masks import (
    BORDER_RULES,
    BUCKETS,
    GENERATORS,
    MaskAugment,
    MaskFolder,
    MaskSampler,
    MaskSamplingError,
    border_margin,
    bucket_label,
    bucket_of,
    fit_mask,
    get_generator,
    hole_ratio,
    nudge_ratio,
    nvidia_id_info,
    parse_border,
    parse_buckets,
    parse_mix,
    sample_mask,
    touches_border,
)

DRAWN = [name for name in GENERATORS if name != "folder"]  # generators needing no files
SIZE = 128  # small canvases keep the whole file fast; margin here is 12 px


def _same_every_time(name: str, seed: int, **kwargs) -> np.ndarray:
    return sample_mask(name, (96, 128), np.random.default_rng(seed), **kwargs)


# --- ratios, buckets, border -------------------------------------------------------------


def test_bucket_of_follows_the_paper_edges() -> None:
    assert len(BUCKETS) == 6
    for index, (low, high) in enumerate(BUCKETS):
        assert bucket_of(low) != index  # open at the bottom
        assert bucket_of(high) == index  # closed at the top
        assert bucket_of((low + high) / 2) == index
    assert bucket_of(0.0) is None
    assert bucket_of(0.01) is None
    assert bucket_of(0.6000001) is None
    assert bucket_of(1.0) is None


def test_hole_ratio_counts_true_pixels() -> None:
    mask = np.zeros((10, 20), bool)
    mask[:5, :4] = True
    assert hole_ratio(mask) == pytest.approx(20 / 200)


def test_touches_border_frame() -> None:
    mask = np.zeros((64, 64), bool)
    mask[10, 30] = True  # 10 px from the top edge
    assert touches_border(mask, 11)
    assert not touches_border(mask, 10)
    mask[10, 30], mask[30, 63] = False, True  # on the right edge
    assert touches_border(mask, 1)
    with pytest.raises(ValueError):
        touches_border(mask, 0)


def test_border_margin_scales_from_512() -> None:
    assert border_margin(512) == 50
    assert border_margin((256, 1024)) == 25  # short side decides
    assert border_margin(1024) == 100


# --- every generator ---------------------------------------------------------------------


@pytest.mark.parametrize("name", DRAWN)
def test_generator_shape_dtype_and_seeding(name: str) -> None:
    gen = get_generator(name)
    assert gen.name == name
    a = gen((96, 128), 7)
    assert a.shape == (96, 128) and a.dtype == bool
    assert a.any(), "a mask with no hole at all"
    assert np.array_equal(a, gen((96, 128), np.random.default_rng(7)))
    if name != "center":  # the centred hole is the same on purpose
        others = [gen((96, 128), seed) for seed in range(8, 12)]
        assert any(not np.array_equal(a, b) for b in others)


@pytest.mark.parametrize("name", DRAWN)
@pytest.mark.parametrize("bucket", range(len(BUCKETS)))
def test_sample_mask_hits_bucket_and_border_rule(name: str, bucket: int) -> None:
    rng = np.random.default_rng(bucket)
    margin = border_margin(SIZE)
    for border in (None, False, True):
        if name == "center" and border is True:
            with pytest.raises(MaskSamplingError):
                sample_mask(name, SIZE, rng, bucket=bucket, border=True, max_tries=5)
            continue
        for _ in range(2):
            mask = sample_mask(name, SIZE, rng, bucket=bucket, border=border)
            assert mask.shape == (SIZE, SIZE) and mask.dtype == bool
            assert bucket_of(hole_ratio(mask)) == bucket, hole_ratio(mask)
            if border is not None:
                assert touches_border(mask, margin) == border


@pytest.mark.parametrize("name", DRAWN)
def test_no_border_means_no_hole_within_margin(name: str) -> None:
    mask = sample_mask(name, (160, 200), 3, bucket=4, border=False)
    margin = border_margin((160, 200))
    frame = np.ones(mask.shape, bool)
    frame[margin:-margin, margin:-margin] = False
    assert not (mask & frame).any()
    assert bucket_of(hole_ratio(mask)) == 4


@pytest.mark.parametrize("name", DRAWN)
def test_sample_mask_deterministic_for_a_seed(name: str) -> None:
    a = _same_every_time(name, 5, bucket=1, border=False)
    assert np.array_equal(a, _same_every_time(name, 5, bucket=1, border=False))
    if name != "center":
        b = _same_every_time(name, 6, bucket=1, border=False)
        assert not np.array_equal(a, b)


@pytest.mark.parametrize("kind", ["lama-thin", "lama-medium", "lama-thick"])
def test_lama_recipes_keep_max_tamper_area(kind: str) -> None:
    gen = get_generator(kind)
    ratios = [hole_ratio(gen(256, seed)) for seed in range(20)]
    assert max(ratios) <= 0.5


def test_unreachable_requests_raise() -> None:
    with pytest.raises(MaskSamplingError):  # no room inside the margin
        sample_mask("irregular", 20, 0, border=False, margin=10)
    with pytest.raises(InputError):
        sample_mask("irregular", 64, 0, bucket=6)
    with pytest.raises(InputError):
        get_generator("nope")
    with pytest.raises(InputError):
        get_generator("folder")  # needs root=


def test_nudge_ratio_grows_and_shrinks_to_target() -> None:
    mask = get_generator("freeform")(200, 1)
    for target in (0.05, hole_ratio(mask), 0.45):
        nudged = nudge_ratio(mask, target)
        assert abs(hole_ratio(nudged) - target) < 0.01
    grown = nudge_ratio(mask, hole_ratio(mask) + 0.1)
    assert (grown | mask).sum() == grown.sum()  # growing keeps every old hole pixel


# --- augmentation ------------------------------------------------------------------------


def test_augment_keeps_shape_and_is_deterministic() -> None:
    mask = get_generator("irregular")((90, 120), 2)
    aug = MaskAugment()
    a = aug(mask, 11)
    assert a.shape == mask.shape and a.dtype == bool
    assert np.array_equal(a, aug(mask, np.random.default_rng(11)))
    assert not np.array_equal(a, aug(mask, 12))
    assert not aug(np.zeros((90, 120), bool), 3).any()  # nothing to move, nothing appears


def test_augment_disabled_is_identity_and_dilation_only_grows() -> None:
    mask = get_generator("freeform")(128, 4)
    off = MaskAugment(max_rotate=0, max_translate=0, min_crop=1.0, max_dilate=0, flip=False)
    assert np.array_equal(off(mask, 0), mask)
    grow = MaskAugment(max_rotate=0, max_translate=0, min_crop=1.0, max_dilate=40, flip=False)
    grown = [grow(mask, seed) for seed in range(4)]
    assert all((g | mask).sum() == g.sum() for g in grown)
    assert any(g.sum() > mask.sum() for g in grown)


# --- folder loader -----------------------------------------------------------------------


def _write_folder(root: Path) -> list[np.ndarray]:
    """Masks as 1-bit, 8-bit grey and RGB PNGs, white = hole; returns what was written."""
    rng = np.random.default_rng(0)
    masks = [rng.random((40, 60)) < p for p in (0.2, 0.4, 0.6)]
    root.mkdir()
    Image.fromarray(masks[0]).convert("1").save(root / "a.png")
    Image.fromarray(masks[1].astype(np.uint8) * 255).save(root / "b.png")
    rgb = np.repeat(masks[2][..., None], 3, axis=2).astype(np.uint8) * 255
    Image.fromarray(rgb).save(root / "c.png")
    return masks


def test_folder_reads_white_as_hole(tmp_path: Path) -> None:
    written = _write_folder(tmp_path / "m")
    folder = MaskFolder(tmp_path / "m", augment=None)
    assert len(folder) == 3
    for i, expected in enumerate(written):
        assert np.array_equal(folder[i], expected)


def test_folder_resizes_augments_and_generates(tmp_path: Path) -> None:
    _write_folder(tmp_path / "m")
    folder = MaskFolder(tmp_path / "m", size=(32, 48), seed=1)
    item = folder[0]
    assert item.shape == (32, 48) and item.dtype == bool
    again = MaskFolder(tmp_path / "m", size=(32, 48), seed=1)[0]
    assert np.array_equal(item, again)
    drawn = folder((50, 50), 3)
    assert drawn.shape == (50, 50) and drawn.any()
    assert np.array_equal(drawn, folder((50, 50), 3))
    mask = sample_mask(get_generator("folder", root=tmp_path / "m"), 64, 0, bucket=3)
    assert bucket_of(hole_ratio(mask)) == 3


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        MaskFolder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError):
        MaskFolder(tmp_path / "empty")


def test_fit_mask_crops_to_aspect() -> None:
    mask = np.zeros((100, 50), bool)
    mask[:, :25] = True
    fitted = fit_mask(mask, (20, 20), np.random.default_rng(0))
    assert fitted.shape == (20, 20)
    assert fitted[:, :10].all() and not fitted[:, 10:].any()


def test_nvidia_dev_masks_agree_with_the_id_scheme(shared_data: Path) -> None:
    folder = MaskFolder(shared_data / "dev" / "masks", augment=None)
    assert len(folder) >= 12
    for index, path in enumerate(folder.paths):
        mask = folder.load(index)
        assert mask.shape == (512, 512)
        bucket, border = nvidia_id_info(int(path.stem))
        assert bucket_of(hole_ratio(mask)) == bucket, path.name
        assert touches_border(mask, border_margin(mask.shape)) == border, path.name
    no_border = folder.select(bucket=2, border=False)
    assert no_border.paths and all(4000 <= int(p.stem) < 5000 for p in no_border.paths)
    assert all(not touches_border(no_border.load(i), 50) for i in range(len(no_border)))


# --- mixing, pickling, DataLoader workers ------------------------------------------------


def test_parse_mix() -> None:
    assert parse_mix("freeform:2, rect") == {"freeform": 2.0, "rect": 1.0}
    assert parse_mix(["cellular", "center"]) == {"cellular": 1.0, "center": 1.0}
    for bad in ("nope", "rect:0", "rect:-1", "rect:x", "", "rect:nan"):
        with pytest.raises(InputError):
            parse_mix(bad)


def test_sampler_mixes_and_pickles() -> None:
    sampler = MaskSampler("rect:1,center:1", 64, bucket=[1, 2], seed=0)
    names = [sampler.sample()[0] for _ in range(40)]
    assert set(names) == {"rect", "center"}
    clone = pickle.loads(pickle.dumps(sampler))
    for _ in range(5):
        a, b = sampler(), clone()
        assert np.array_equal(a, b)
        assert bucket_of(hole_ratio(a)) in (1, 2)
    assert sampler((40, 30)).shape == (40, 30)


class _MaskDataset:
    """A map-style dataset that draws one mask per item, as the trainer does."""

    def __init__(self, sampler: MaskSampler) -> None:
        self.sampler = sampler

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> np.ndarray:
        return self.sampler().astype(np.uint8)


def _loader_masks(seed: int) -> list[np.ndarray]:
    import torch
    from torch.utils.data import DataLoader

    torch.manual_seed(seed)
    dataset = _MaskDataset(MaskSampler("freeform", 48, seed=0))
    loader = DataLoader(dataset, batch_size=1, num_workers=2)
    return [batch[0].numpy() for batch in loader]


def test_sampler_reseeds_per_dataloader_worker() -> None:
    masks = _loader_masks(0)
    # items 0 and 2 come from worker 0, 1 and 3 from worker 1: the first of each must differ
    assert not np.array_equal(masks[0], masks[1])
    again = _loader_masks(0)
    assert all(np.array_equal(a, b) for a, b in zip(masks, again, strict=True))


# --- CLI -----------------------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch):
    """``pconv.cli.main``, with ``masks`` registered even while pconv/cli/__init__.py is
    being edited elsewhere (test_masks_subcommand_is_registered reports that separately)."""
    monkeypatch.setitem(SUBCOMMANDS, "masks", "pconv.cli.masks")
    return main


def test_masks_subcommand_is_registered() -> None:
    assert SUBCOMMANDS.get("masks") == "pconv.cli.masks"


def test_cli_writes_masks_and_contact_sheet(tmp_path: Path, cli) -> None:
    out = tmp_path / "out"
    args = ["masks", str(out), "-g", "freeform:1,lama-thick:1", "-n", "6", "--size", "160x96"]
    rc = cli([*args, "--mask-buckets", "2", "--border", "clear", "--seed", "3"])
    assert rc == 0
    files = list_images(out)
    assert len(files) == 6
    for path in files:
        mask = load_mask(path)
        assert mask.shape == (96, 160)
        assert bucket_of(hole_ratio(mask)) == 2
        assert not touches_border(mask, border_margin(mask.shape))
    sheet = tmp_path / "out-sheet.png"
    with Image.open(sheet) as img:
        assert img.format == "PNG"
        img.verify()
    # the same seed gives the same masks (--bucket is --mask-buckets)
    again = tmp_path / "again"
    rc = cli(["masks", str(again), *args[2:], "--bucket", "2", "--border", "clear", "--seed", "3",
              "--no-sheet"])  # fmt: skip
    assert rc == 0
    assert not (tmp_path / "again-sheet.png").exists()
    for a, b in zip(files, list_images(tmp_path / "again"), strict=True):
        assert np.array_equal(load_mask(a), load_mask(b))


def test_cli_refuses_to_mix_into_a_folder_of_images(tmp_path: Path, cli, capsys) -> None:
    out = tmp_path / "out"
    assert cli(["masks", str(out), "-n", "2", "--size", "64"]) == 0
    capsys.readouterr()
    assert cli(["masks", str(out), "-n", "2", "--size", "64"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert cli(["masks", str(out), "-n", "2", "--size", "64", "--force"]) == 0


@pytest.mark.parametrize(
    "bad",
    [
        ["-g", "nope"],
        ["-g", "rect:0"],
        ["--bucket", "6"],
        ["--bucket=-1"],
        ["--bucket", "1,9"],
        ["--mask-buckets", "6"],
        ["-g", "center", "--border", "touch", "--mask-buckets", "1"],
        ["-n", "0"],
        ["-n", "-3"],
        ["--size", "10"],
        ["--size", "64xabc"],
        ["-g", "folder"],
    ],
)
def test_cli_bad_input_is_one_line_exit_2(tmp_path: Path, cli, capsys, bad: list[str]) -> None:
    rc = cli(["masks", str(tmp_path / "out"), "-n", "2", "--size", "64", *bad])
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0], err


# --- one vocabulary for the mask flags ---------------------------------------------------------


def test_border_and_bucket_vocabulary() -> None:
    assert {name: parse_border(name) for name in BORDER_RULES} == {
        "any": None,
        "clear": False,
        "touch": True,
    }
    assert parse_border("Clear") is False and parse_border("TOUCH") is True
    for word in ("sideways", "yes", "no"):
        with pytest.raises(InputError, match="border rule"):
            parse_border(word)
    assert (
        parse_buckets(None) is None and parse_buckets("") is None and parse_buckets("any") is None
    )
    assert parse_buckets("0, 2,5") == (0, 2, 5) and parse_buckets([1, 3]) == (1, 3)
    for bad in ("6", "-1", "1,x"):
        with pytest.raises(InputError, match=r"buckets must be 0\.\.5"):
            parse_buckets(bad)


def test_bucket_label_is_one_function_in_two_forms() -> None:
    from pconv.evaluation.buckets import bucket_label as table_label

    assert bucket_label(1) == "(0.1, 0.2]" and bucket_label(0) == "(0.01, 0.1]"
    assert table_label(1) == bucket_label(1, compact=True) == "(0.1,0.2]"
    assert table_label(-1) == bucket_label(None) == "other"
    with pytest.raises(InputError):
        bucket_label(6)


def test_sampler_draw_with_a_given_generator_is_sample() -> None:
    """The trainer draws with one generator per sample; the stream is the sampler's own."""
    sampler = MaskSampler("irregular:1,freeform:2", 64, bucket=[1, 3], border=False, seed=5)
    drawn = [sampler.draw(np.random.default_rng(9)) for _ in range(2)]
    assert drawn[0][0] == drawn[1][0] and np.array_equal(drawn[0][1], drawn[1][1])
    twin = MaskSampler("irregular:1,freeform:2", 64, bucket=[1, 3], border=False, seed=9)
    name, hole = twin.sample()
    assert name == drawn[0][0] and np.array_equal(hole, drawn[0][1])
