"""A catalogue model listed for one task loads for another whose pipeline can run its module,
exactly as its folder does by path (issue 16): the icon classifier embeds with its backbone.
A task that cannot run the module says which model, which task it is for, and the load that works."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import torch

import hub
from hub.errors import ModelLoadError
from tests.vision.helpers import photo

ICONS = Path(str(resources.files("hub_vision") / "weights" / "icon-context-resnet"))


def test_image_embed_loads_the_icon_classifier_by_name_as_by_path(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    by_name = hub.load("image-embed", model="icon-context-resnet", device="cpu")
    by_path = hub.load("image-embed", model=str(ICONS), device="cpu")
    images = [photo(0), photo(1)]
    assert by_name(images) == by_path(images)
    assert by_name.metadata["model_name"] == "icon-context-resnet"
    assert by_name.metadata["task"] == "image-embed" and by_name.metadata["model_task"] == "image-classify"
    # the embedding is the classifier's pooled features: its head maps them to the classifier's logits
    clf = hub.load("image-classify", model="icon-context-resnet", device="cpu")
    features = torch.tensor(by_name(photo(0)))
    with torch.no_grad():
        scores = torch.softmax(clf.model.get_classifier()(features[None]), -1)[0].tolist()
    expected = {r["label"]: r["score"] for r in clf(photo(0), top_k=None)}
    assert scores == pytest.approx([expected[label] for label in clf.labels], abs=1e-5)


def test_a_task_that_cannot_run_the_module_names_the_model_and_its_task():
    with pytest.raises(ModelLoadError, match=r"Catalogue model 'icon-context-resnet' is listed for task "
                                             r"'image-classify' and text-embed cannot run it \(load it with "
                                             r"hub\.load\('image-classify', model='icon-context-resnet'\)\)"):
        hub.load("text-embed", model="icon-context-resnet", device="cpu")


def test_a_model_name_with_model_argument_is_still_refused():
    with pytest.raises(hub.errors.InvalidInputError, match="already names a model"):
        hub.load("icon-context-resnet", model="icon-context-resnet")
