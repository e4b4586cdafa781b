"""One head vocabulary across families (issue 13, item 11), timm's: every classification
model exposes ``get_classifier()`` (its head module) and ``reset_classifier(labels)`` (a new,
freshly initialised head for label names or a count), and fine-tuning with new labels goes
through it. A reset head has the new size, the backbone's weights are untouched and the
state-dict keys stay the same (checkpoints keep loading)."""

from __future__ import annotations

import pytest
import torch

from hub.errors import InvalidInputError
from hub.modeling import build_module

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BERT = {"vocab_size": 40, "max_positions": 32, "backbone": {"num_layers": 1, "hidden_size": 16, "num_heads": 2,
                                                              "intermediate_size": 32, "dropout": 0.0,
                                                              "attention_dropout": 0.0}}
SPEECH = {"backbone": {"num_layers": 1, "hidden_size": 16, "num_heads": 2, "rotary_dim": 8, "intermediate_size": 32,
                       "dropout": 0.0, "attention_dropout": 0.0}, "subsample_channels": 8}
VIT = {"img_size": 32, "patch_size": 8, "in_chans": 3, "num_layers": 1, "hidden_size": 16, "num_heads": 2}


def _timm() -> dict:
    pytest.importorskip("timm")
    return {"timm_model": "resnet18", "labels": ["a", "b"]}


def _torchvision() -> dict:
    pytest.importorskip("torchvision")
    return {"torchvision_model": "resnet18", "labels": ["a", "b"]}


# family -> (architecture, config maker, example inputs maker, where the logits' label axis is)
FAMILIES = {
    "bert-classifier": ("bert-classifier", lambda: {**BERT, "labels": ["neg", "pos"]},
                        lambda: {"input_ids": torch.randint(1, 40, (2, 7))}, -1),
    "bert-token-classifier": ("bert-token-classifier", lambda: {**BERT, "labels": ["O", "B-PER", "I-PER"]},
                              lambda: {"input_ids": torch.randint(1, 40, (2, 7))}, -1),
    "vit": ("vit", lambda: {**VIT, "labels": ["a", "b"]}, lambda: {"pixel_values": torch.randn(2, 3, 32, 32)}, -1),
    "timm": ("timm", _timm, lambda: {"pixel_values": torch.randn(2, 3, 64, 64)}, -1),
    "torchvision-resnet": ("torchvision-resnet", _torchvision,
                           lambda: {"pixel_values": torch.randn(2, 3, 64, 64)}, -1),
    "audio-classifier": ("audio-classifier", lambda: {**SPEECH, "labels": ["yes", "no"]},
                         lambda: {"input_values": torch.randn(2, 8000)}, -1),
}


def _build(family: str) -> tuple[torch.nn.Module, dict]:
    architecture, config, inputs, _ = FAMILIES[family]
    torch.manual_seed(0)
    return build_module(architecture, config()).eval(), inputs()


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_get_classifier_is_the_head_that_makes_the_logits(family):
    model, inputs = _build(family)
    head = model.get_classifier()
    assert isinstance(head, torch.nn.Module) and any(True for _ in head.parameters())
    head_ids = {id(p) for p in head.parameters()}
    assert head_ids < {id(p) for p in model.parameters()}  # a part of the model, not all of it
    with torch.no_grad():
        before = model(**inputs)["logits"]
        for p in head.parameters():
            p.add_(1.0)
        after = model(**inputs)["logits"]
    assert not torch.allclose(before, after)  # the head it returns is the one in use


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("new", [["x", "y", "z", "w"], 5], ids=["names", "count"])
def test_reset_classifier_new_size_backbone_untouched_same_keys(family, new):
    model, inputs = _build(family)
    old_head = {id(p) for p in model.get_classifier().parameters()}
    backbone = {name: p.detach().clone() for name, p in model.named_parameters() if id(p) not in old_head}
    keys = set(model.state_dict())

    model.reset_classifier(new)

    expected = list(new) if isinstance(new, list) else [f"LABEL_{i}" for i in range(new)]
    assert model.labels == expected and model.config["labels"] == expected
    assert set(model.state_dict()) == keys  # parameter names unchanged: saved checkpoints still load
    head = model.get_classifier()
    assert not {id(p) for p in head.parameters()} & old_head  # a new module, not the old one
    params = dict(model.named_parameters())
    for name, value in backbone.items():
        assert torch.equal(params[name], value), name
    with torch.no_grad():
        logits = model(**inputs)["logits"]
    assert logits.shape[-1] == len(expected)
    assert all(p.device == next(iter(backbone.values())).device for p in head.parameters())


@pytest.mark.parametrize("family", ["bert-classifier", "vit", "audio-classifier"])
@pytest.mark.parametrize("bad", [0, [], "abc", ["a", "a"]])
def test_reset_classifier_refuses_bad_labels(family, bad):
    model, _ = _build(family)
    with pytest.raises(InvalidInputError, match="reset_classifier"):
        model.reset_classifier(bad)


def test_bert_reset_head_equals_a_head_built_on_the_encoder():
    """reset_classifier draws the new head exactly as from_encoder (used when a bare encoder
    is loaded for a task) does: one initialisation rule."""
    from hub_text.models.bert import BertClassifier

    model, inputs = _build("bert-classifier")
    torch.manual_seed(1)
    fresh = BertClassifier.from_encoder(model.encoder, ["x", "y", "z"])
    torch.manual_seed(1)
    model.reset_classifier(["x", "y", "z"])
    for (name, a), (_, b) in zip(model.get_classifier().state_dict().items(),
                                 fresh.get_classifier().state_dict().items(), strict=True):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("architecture", ["speech-ctc"])
def test_ctc_models_expose_their_head_but_no_reset(architecture):
    """A CTC head's outputs are the transcript vocabulary, not labels: get_classifier only."""
    model = build_module(architecture, {**SPEECH, "vocab": ["<pad>", "|", "a", "b"]})
    assert model.get_classifier() is model.head
    assert not hasattr(model, "reset_classifier")
