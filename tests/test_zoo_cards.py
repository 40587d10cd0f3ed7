"""What a model's Hub folder tells its user: the weights' licence, the training data's terms and
pconv's code licence, each on its own, in the registry, ``zoo list``, the card, config.json and
the LICENSE file that ``python -m zoo build`` writes and ``python -m zoo publish`` uploads."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from zoo_fixtures import mmagic_checkpoint, naoto_checkpoint

import pconv
import zoo
from pconv.archs.unet import UNetConfig
from pconv.files import sha256_file
from zoo import registry
from zoo.card import (
    LICENCE_DIR,
    LICENCE_NAME,
    LICENCE_TEXTS,
    entry_info,
    hub_card,
    hub_config,
    licence_text,
    validate_folder,
)
from zoo.cli import LIST_WIDTH
from zoo.cli import main as zoo_main

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
#: every zoo model was trained on data whose owners allow non-commercial research only
NON_COMMERCIAL = {"default", "places2", "celeba-hq", "imagenet", "places2-naoto", "deepgin-aim2020"}
APACHE_TITLE = "Apache License\n                           Version 2.0, January 2004"
MIT_GRANT = "Permission is hereby granted, free of charge, to any person obtaining a copy"


def _section(card: str, title: str) -> str:
    """The body of the card's ``## title`` section."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", card, re.M | re.S)
    assert match, f"no '## {title}' section"
    return match.group(1)


def _card_for(entry: registry.ModelEntry, conversion: dict | None = None) -> str:
    """The card the entry's weights would get, without converting anything."""
    meta = entry_info(entry).to_metadata()
    meta["config"] = UNetConfig.paper256(input_mean=(0.5,) * 3, input_std=(0.5,) * 3).to_json()
    if conversion is not None:
        meta["conversion"] = json.dumps(conversion)
    return hub_card(meta, "0" * 64)


# -- the registry --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(registry.REGISTRY))
def test_every_entry_states_its_data_terms_apart_from_its_licence(name):
    entry = registry.REGISTRY[name]
    assert entry.data_terms.strip() and entry.data_terms != entry.licence
    assert entry_info(entry).to_metadata()["data_terms"] == entry.data_terms
    meta = {
        **entry_info(entry).to_metadata(),
        "config": UNetConfig(depth=4, resolution=64).to_json(),
    }
    assert hub_config(meta, "0" * 64)["data_terms"] == entry.data_terms
    if name in NON_COMMERCIAL:
        assert "non-commercial" in entry.data_terms
        assert "Not for commercial use." in entry.data_terms


@pytest.mark.parametrize("name", sorted(NON_COMMERCIAL - {"default"}))
def test_card_licence_section_separates_weights_data_and_code(name):
    entry = registry.REGISTRY[name]
    licence = _section(_card_for(entry), "License")
    weights, data, code = (
        next(line for line in licence.splitlines() if line.startswith(f"- **{label}**"))
        for label in ("Weights", "Training data", "Code")
    )
    assert entry.licence in weights and entry.upstream.copyright in weights
    assert entry.data_terms in data and "non-commercial" in data
    assert "commercial" not in weights  # the weights' licence does not speak for the data
    assert "Apache-2.0" in code and "pconv" in code


def test_mmagic_wording_matches_upstream():
    """num_vertices=(4, 10) is np.random.randint's range: 4-9 start points, not '4-10 strokes';
    CelebA-HQ's iterations differ between upstream's README and config: both are stated."""
    protocol = registry.REGISTRY["places2"].evaluation[0].protocol
    assert "4-9 start points" in protocol and "4-10" not in protocol
    assert "brush width 10-44 px" in protocol and "15-65%" in protocol
    celeba = registry.REGISTRY["celeba-hq"]
    assert "300002" in celeba.source and "500k" in celeba.source
    assert "500k" in registry.REGISTRY["places2"].source


def test_shipped_default_card_states_data_terms_and_code_licence_apart():
    card = (Path(zoo.__file__).parent / "weights" / "default.md").read_text()
    licence = _section(card, "License")
    assert "- **Weights**" in licence and "- **Code**" in licence
    data = next(line for line in licence.split("\n- ") if line.startswith("**Training data**"))
    for source in ("ImageNet", "BSDS500", "Urban100", "McMaster", "Kodak24", "wallpapers"):
        assert source in data
    assert "non-commercial" in data and "Not for commercial use." in data
    assert "Apache-2.0" in licence.split("- **Code**")[1]


# -- licence texts -------------------------------------------------------------------------------


def test_licence_texts_carry_the_holders_notice_and_ship_in_the_wheel():
    apache = licence_text("Apache-2.0", "Copyright (c) OpenMMLab. All rights reserved.")
    assert apache.startswith("Copyright (c) OpenMMLab. All rights reserved.\n\n")
    assert APACHE_TITLE in apache and "END OF TERMS AND CONDITIONS" in apache
    mit = licence_text("MIT", "Copyright (c) 2018 Naoto Inoue")
    assert mit.startswith("MIT License\n\nCopyright (c) 2018 Naoto Inoue\n\n" + MIT_GRANT)
    assert "<copyright holders>" not in licence_text("MIT")
    assert licence_text("other") is None
    # pconv's own licence is the same Apache-2.0 text
    assert (ROOT / "LICENSE").read_text() == licence_text("Apache-2.0")
    # package data: an installed wheel must have every text a build writes
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["zoo"]
    for name in LICENCE_TEXTS.values():
        assert (LICENCE_DIR / name).is_file()
        relative = (LICENCE_DIR / name).relative_to(Path(zoo.__file__).parent).as_posix()
        assert any(fnmatch.fnmatch(relative, p) for p in patterns), relative


# -- the card ------------------------------------------------------------------------------------


def test_card_shows_four_ways_to_use_it():
    entry = registry.REGISTRY["places2"]
    usage = _section(_card_for(entry), "Usage")
    assert 'pconv.load_model("places2")' in usage and entry.repo_id in usage
    assert "pconv inpaint photo.png --mask mask.png --output filled.png --model places2" in usage
    assert "**Load PConv Model**" in usage and "ComfyUI/models/inpaint" in usage
    assert f'hf_hub_download("{entry.repo_id}", "model.safetensors")' in usage
    assert "pconv.load_model(path)" in usage


def test_card_renders_any_measured_conversion_figures():
    """The converter's ``measured`` dict (real photos) is shown key by key, whatever its keys."""
    measured = {
        "photos": ["chelsea.jpg", "coffee.jpg"],
        "masks": "pconv irregular",
        "max_abs_diff": 3.1e-06,
        "hole_mean_abs_diff": 2.25e-07,
        "a_new_figure": 0.123456,
    }
    conversion = {"layout": "mmagic", "exact": True, "max_abs_diff": 1e-6, "measured": measured}
    made = _section(_card_for(registry.REGISTRY["places2"], conversion), "How it was made")
    assert "Measured on real photos" in made
    for line in (
        "  - photos: chelsea.jpg, coffee.jpg",
        "  - masks: pconv irregular",
        "  - max abs diff: 3.10e-06",
        "  - hole mean abs diff: 2.25e-07",
        "  - a new figure: 0.123",
    ):
        assert line in made.splitlines()
    plain = _card_for(registry.REGISTRY["places2"], {**conversion, "measured": {}})
    assert "Measured on real photos" not in plain


# -- python -m zoo build / list / publish --------------------------------------------------------


@pytest.fixture
def places2_build(tmp_path, monkeypatch, capsys):
    """``python -m zoo build places2 --upstream-file FAKE.pth --output DIR`` from a small fake
    mmagic checkpoint, pinned the way OpenMMLab's file is (a sha256 prefix); (folder, what the
    command printed)."""
    torch.save(mmagic_checkpoint(depth=4, seed=11), tmp_path / "fake.pth")
    entry = registry.REGISTRY["places2"]
    prefix = sha256_file(tmp_path / "fake.pth")[:8]
    monkeypatch.setitem(
        registry.REGISTRY,
        "places2",
        replace(entry, resolution=64, upstream=replace(entry.upstream, sha256_prefix=prefix)),
    )
    out = tmp_path / "places2"
    args = ["build", "places2", "--upstream-file", str(tmp_path / "fake.pth"), "--output", str(out)]
    assert zoo_main(args) == 0
    return out, capsys.readouterr().out


def test_build_writes_the_complete_hub_folder(places2_build):
    (folder, printed), entry = places2_build, registry.REGISTRY["places2"]
    assert f"places2: {folder} (exact" in printed
    assert sorted(p.name for p in folder.iterdir()) == [
        "LICENSE",
        "README.md",
        "config.json",
        "model.safetensors",
        "model.safetensors.sha256",
    ]
    validate_folder(folder)
    licence = (folder / LICENCE_NAME).read_text()
    assert licence.startswith(entry.upstream.copyright) and APACHE_TITLE in licence
    meta = pconv.read_metadata(folder / "model.safetensors")
    assert meta["data_terms"] == entry.data_terms and meta["licence"] == "Apache-2.0"
    assert json.loads((folder / "config.json").read_text())["data_terms"] == entry.data_terms
    card = ModelCard.load(folder / "README.md")
    assert card.data.license == "apache-2.0"
    usage, licence_section = _section(card.text, "Usage"), _section(card.text, "License")
    for way in ("pconv.load_model(", "pconv inpaint ", "Load PConv Model", "hf_hub_download("):
        assert way in usage
    assert entry.data_terms in licence_section and "non-commercial" in licence_section
    assert "- **Code**: pconv" in licence_section and "Apache-2.0" in licence_section
    assert "Copyright (c) OpenMMLab" in licence_section and "`LICENSE`" in licence_section
    assert "| Places365-val | 22.762 | 0.801 | 8.776 |" in _section(card.text, "Evaluation")
    assert torch.isfinite(
        torch.cat([p.flatten() for p in pconv.load_model(folder).parameters()])
    ).all()


@pytest.mark.slow
def test_naoto_build_carries_the_mit_text_with_its_notice(tmp_path):
    torch.save(naoto_checkpoint(depth=4, seed=4), tmp_path / "1000000.pth")
    out = tmp_path / "naoto"
    args = ["build", "places2-naoto", "--upstream-file", str(tmp_path / "1000000.pth")]
    assert zoo_main([*args, "--output", str(out)]) == 0
    licence = (out / LICENCE_NAME).read_text()
    assert licence.startswith("MIT License\n\nCopyright (c) 2018 Naoto Inoue\n\n" + MIT_GRANT)
    card = (out / "README.md").read_text()
    assert "Copyright (c) 2018 Naoto Inoue. This notice and the licence text" in card


def test_validation_refuses_a_folder_without_licence_or_data_terms(places2_build, tmp_path):
    built, _ = places2_build

    no_licence = shutil.copytree(built, tmp_path / "no-licence")
    (no_licence / LICENCE_NAME).unlink()
    with pytest.raises(zoo.ZooError, match="LICENSE: missing"):
        validate_folder(no_licence)
    no_notice = shutil.copytree(built, tmp_path / "no-notice")
    (no_notice / LICENCE_NAME).write_text(licence_text("Apache-2.0"))
    with pytest.raises(zoo.ZooError, match="lacks the notice"):
        validate_folder(no_notice)
    wrong_text = shutil.copytree(built, tmp_path / "wrong-text")
    (wrong_text / LICENCE_NAME).write_text(
        licence_text("MIT", registry.REGISTRY["places2"].upstream.copyright)
    )
    with pytest.raises(zoo.ZooError, match=r"not the Apache-2\.0 licence text"):
        validate_folder(wrong_text)
    # a hand-made LICENSE may wrap the same terms differently
    rewrapped = shutil.copytree(built, tmp_path / "rewrapped")
    text = (built / LICENCE_NAME).read_text()
    (rewrapped / LICENCE_NAME).write_text(" ".join(text.split()))
    validate_folder(rewrapped)
    no_terms = shutil.copytree(built, tmp_path / "no-terms")
    card = (no_terms / "README.md").read_text()
    (no_terms / "README.md").write_text(card.replace(registry.REGISTRY["places2"].data_terms, ""))
    with pytest.raises(zoo.ZooError, match="training data's terms"):
        validate_folder(no_terms)


def test_zoo_list_shows_licence_and_data_terms_in_100_columns(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PCONV_CACHE", str(tmp_path / "pconv"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert zoo_main(["list"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= LIST_WIDTH
    # each entry: its line with the licence, then indented source and data lines
    blocks = re.split(r"\n(?=\S)", out.strip())[1:]
    assert [b.split()[0] for b in blocks] == list(registry.REGISTRY)
    for block, entry in zip(blocks, registry.REGISTRY.values(), strict=True):
        head, *details = block.splitlines()
        assert entry.licence in head.split()
        data = " ".join(details).split("data:", 1)[1]
        assert " ".join(data.split()) == entry.data_terms
        if entry.name in NON_COMMERCIAL:
            assert "Not for commercial use." in data


def test_publish_dry_run_lists_what_an_upload_sends(places2_build, tmp_path, monkeypatch, capsys):
    built, _ = places2_build
    dry = tmp_path / "dry"
    args = ["publish", str(built), "--repo-id", "someone/pconv-places2", "--dry-run"]
    assert zoo_main([*args, "--output", str(dry)]) == 0
    out = capsys.readouterr().out
    assert str(dry) in out and "nothing uploaded" in out
    listed = {
        m[1]: int(m[2].replace(",", ""))
        for m in re.finditer(r"^  (\S+) +([\d,]+) bytes", out, re.M)
    }
    names = ["model.safetensors", "config.json", "README.md", "LICENSE"]
    assert list(listed) == names
    assert listed == {n: (dry / n).stat().st_size for n in names}
    assert f"sha256 {sha256_file(dry / 'model.safetensors')}" in out
    # the folder's own card is kept; one made from the weights alone points at the repository
    # it is published to
    assert (dry / "README.md").read_text() == (built / "README.md").read_text()
    weights_only = ["publish", str(built / "model.safetensors"), *args[2:]]
    assert zoo_main([*weights_only, "--output", str(tmp_path / "dry2")]) == 0
    capsys.readouterr()
    card = (tmp_path / "dry2" / "README.md").read_text()
    assert 'hf_hub_download("someone/pconv-places2", "model.safetensors")' in card
    assert (tmp_path / "dry2" / LICENCE_NAME).read_text() == (built / LICENCE_NAME).read_text()

    # the real upload sends exactly that list
    import huggingface_hub

    sent: dict[str, object] = {}

    def upload_folder(self, **kwargs):
        folder = Path(kwargs["folder_path"])
        sent["files"] = sorted(
            p.name
            for p in folder.iterdir()
            if any(fnmatch.fnmatch(p.name, pat) for pat in kwargs["allow_patterns"])
        )
        return type("Info", (), {"oid": "c0ffee"})()

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", lambda self, *a, **k: None)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    assert zoo_main(args[:-1]) == 0
    assert sent["files"] == sorted(names)
    out = capsys.readouterr().out
    assert "published someone/pconv-places2 at c0ffee" in out and "LICENSE" in out
