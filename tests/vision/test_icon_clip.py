"""The icon-name CLIP experiment (examples/train_icon_clip.py): how icon names become captions,
and (with the Debian icon themes installed) the held-out Breeze split and the pixel
nearest-neighbour baseline figures the README quotes. The trained CLIP did not beat that
baseline, so it is not shipped (README, "CLIP")."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from examples.train_icon_clip import captions, words


def test_icon_names_become_words_and_captions():
    assert words(Path("/x/document-save.png")) == "document save"
    assert words(Path("network_wireless-signal.png")) == "network wireless signal"
    assert captions(Path("folder-music.png"), "places") == ["folder music", "folder music",
                                                            "folder music, places icon", "places icon"]


@pytest.mark.data
def test_the_held_out_split_and_the_pixel_baseline_are_the_readmes():
    from examples import data_prep_vision
    from examples.train_icon_clip import pixel_baseline, rows

    if not all((data_prep_vision.ICONS / t).is_dir() for t in ("oxygen", "Papirus", "breeze")) \
            or shutil.which("rsvg-convert") is None:
        pytest.skip("needs apt packages oxygen-icon-theme papirus-icon-theme breeze-icon-theme librsvg2-bin")
    splits = data_prep_vision.icons()
    assert all("/breeze/" in str(path) for path, _ in data_prep_vision.read_csv(splits["test"]))  # held out
    train, test = rows(splits["train"]) + rows(splits["val"]), rows(splits["test"])
    names = {name for _, name, _ in train}
    assert len(test) == 1476 and len({name for _, name, _ in test}) == 1467
    assert sum(name in names for _, name, _ in test) == 582  # the rest: names no training icon has
    baseline = pixel_baseline(train, test)
    assert baseline == pytest.approx({"r1": 0.0305, "r5": 0.0617, "accuracy": 0.4871}, abs=5e-4)
