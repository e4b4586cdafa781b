"""The shipped image-embed default, icon-context-features: the icon classifier's folder read by the
embedding pipeline (no extra weights in the wheel), offline; with the Debian icon themes installed, its
retrieval figures on the held-out Breeze theme equal registry.yaml's and its context accuracy beats
the pixel baseline (examples/eval_image_embed_default.py)."""

from __future__ import annotations

import shutil

import pytest
import torch

import hub
from hub.registry import get_registry
from tests.vision.helpers import photo

NAME = "icon-context-features"


def test_the_default_is_offline_and_is_the_classifiers_features(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pipe = hub.load("image-embed", device="cpu")
    assert pipe.metadata["model_name"] == NAME
    assert pipe.metadata["source"] == "package:hub_vision/weights/icon-context-resnet"
    vector = pipe(photo(0))
    assert len(vector) == 256 and pipe(photo(0), normalize=True) != vector
    clf = hub.load("image-classify", device="cpu")
    with torch.no_grad():
        scores = torch.softmax(clf.model.get_classifier()(torch.tensor([vector])), -1)[0].tolist()
    expected = {r["label"]: r["score"] for r in clf(photo(0), top_k=None)}
    assert scores == pytest.approx([expected[label] for label in clf.labels], abs=1e-5)


@pytest.mark.data
@pytest.mark.slow
def test_held_out_theme_retrieval_matches_the_registry_and_context_beats_pixels():
    from examples import data_prep_vision
    from examples.eval_image_embed_default import measure

    if not all((data_prep_vision.ICONS / t).is_dir() for t in ("oxygen", "Papirus", "breeze")) \
            or shutil.which("rsvg-convert") is None:
        pytest.skip("needs apt packages oxygen-icon-theme papirus-icon-theme breeze-icon-theme librsvg2-bin")
    figures = measure()
    reported = get_registry().model(NAME).metrics
    assert figures["queries"] == 1476 and figures["same_name_queries"] == reported["same_name_queries"]
    for key in ("context_accuracy", "same_name_recall@10", "baseline_context_accuracy",
                "baseline_same_name_recall@10"):
        assert figures[key] == pytest.approx(reported[key], abs=0.002), key
    assert figures["context_accuracy"] > figures["baseline_context_accuracy"] + 0.02
