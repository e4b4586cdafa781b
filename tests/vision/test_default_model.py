"""The shipped image-classify default: loads offline from the package, and (with the Debian
icon themes installed) its accuracy on the held-out Breeze theme equals the figure in
registry.yaml and beats a logistic-regression baseline on pixels trained on the same split."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import pytest

import hub
from hub.registry import get_registry
from tests.vision.helpers import photo

NAME = "icon-context-resnet"


def test_the_default_ships_in_the_package_and_runs_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pipe = hub.load("image-classify", device="cpu")
    assert pipe.metadata["model_name"] == NAME
    assert pipe.labels == ["actions", "apps", "devices", "mimetypes", "places", "status"]
    assert pipe.metadata["source"] == f"package:hub_vision/weights/{NAME}"
    folder = Path(str(resources.files("hub_vision") / "weights" / NAME))
    assert (folder / "model.safetensors").stat().st_size < 8_000_000  # small enough for the wheel
    result = pipe(photo(0), top_k=None)
    assert sorted(r["label"] for r in result) == sorted(pipe.labels)
    assert abs(sum(r["score"] for r in result) - 1) < 1e-5


@pytest.mark.data
@pytest.mark.slow
def test_held_out_theme_accuracy_matches_the_registry_and_beats_the_baseline():
    from examples import data_prep_vision
    from examples.train_image_classify_default import baseline_accuracy

    if not all((data_prep_vision.ICONS / t).is_dir() for t in ("oxygen", "Papirus", "breeze")) \
            or shutil.which("rsvg-convert") is None:
        pytest.skip("needs apt packages oxygen-icon-theme papirus-icon-theme breeze-icon-theme librsvg2-bin")
    splits = data_prep_vision.icons()
    test_rows = data_prep_vision.read_csv(splits["test"])
    assert {label for _, label in test_rows} == set(data_prep_vision.CLASSES)
    assert all("/breeze/" in str(path) for path, _ in test_rows)  # the held-out theme only
    pipe = hub.load("image-classify", device="cpu")
    measured = pipe.evaluate(str(splits["test"]))
    reported = get_registry().model(NAME).metrics
    assert measured["n"] == len(test_rows) == 1476
    assert abs(measured["accuracy"] - reported["accuracy"]) < 0.002
    train_rows = data_prep_vision.read_csv(splits["train"]) + data_prep_vision.read_csv(splits["val"])
    baseline = baseline_accuracy(train_rows, test_rows)
    assert abs(baseline - reported["baseline_accuracy"]) < 0.01
    assert measured["accuracy"] > baseline + 0.05
