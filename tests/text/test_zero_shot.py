"""zero-shot-classify (issue 17) against transformers' ZeroShotClassificationPipeline on the same
small random NLI checkpoints: the same label order and scores (1e-5), single- and multi-label,
entailment found by name or defaulting to the last class, long texts truncated; bad calls refused."""

from __future__ import annotations

import json

import pytest
import torch

import hub
from hub.errors import InvalidInputError
from tests.text.checkpoints import make_bert_classifier

TEXTS = ["the food was really good and the price great.", "awful stale coffee, not a good box.",
         "tea is tea."]
LABELS = ["food", "price", "coffee taste", "box"]


def _nli_checkpoint(folder, labels):
    make_bert_classifier(folder, num_labels=len(labels), max_positions=40, seed=3)
    config = json.loads((folder / "config.json").read_text())
    config["id2label"] = {str(i): label for i, label in enumerate(labels)}
    config["label2id"] = {label: i for i, label in enumerate(labels)}
    (folder / "config.json").write_text(json.dumps(config))
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    tokenizer_config["model_max_length"] = 40  # so transformers truncates where the model must
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    return folder


@pytest.fixture(scope="module", params=[("contradiction", "neutral", "entailment"), ("ENTAILMENT", "NEUTRAL", "CONTRADICTION"),
                                        ("no", "maybe", "yes")], ids=["entail-last", "entail-first", "no-entail-name"])
def pair(request, tmp_path_factory):
    from transformers import pipeline

    folder = _nli_checkpoint(tmp_path_factory.mktemp("nli"), list(request.param))
    reference = pipeline("zero-shot-classification", model=str(folder), device="cpu")
    return hub.load("zero-shot-classify", model=str(folder), device="cpu"), reference


@pytest.mark.parametrize("multi_label", [False, True])
def test_equals_transformers_pipeline(pair, multi_label):
    ours, reference = pair
    for text in TEXTS:
        want = reference(text, candidate_labels=LABELS, multi_label=multi_label)
        got = ours(text, candidate_labels=LABELS, multi_label=multi_label)
        assert got["sequence"] == want["sequence"] == text
        assert got["labels"] == want["labels"]
        assert torch.allclose(torch.tensor(got["scores"]), torch.tensor(want["scores"]), atol=1e-5)
        if not multi_label:
            assert abs(sum(got["scores"]) - 1) < 1e-5
    batch = ours(TEXTS, candidate_labels=LABELS, multi_label=multi_label, batch_size=3)
    assert [r["labels"] for r in batch] == [ours(t, candidate_labels=LABELS, multi_label=multi_label)["labels"]
                                            for t in TEXTS]


def test_one_label_template_and_comma_string_as_transformers(pair):
    ours, reference = pair
    template = "The review is about {}."
    want = reference(TEXTS[0], candidate_labels="food", hypothesis_template=template)
    got = ours(TEXTS[0], candidate_labels="food", hypothesis_template=template)
    assert got["labels"] == ["food"] and abs(got["scores"][0] - want["scores"][0]) < 1e-5
    assert got.metadata["multi_label"] is True  # one label is scored on its own, as transformers does
    want = reference(TEXTS[1], candidate_labels="food, coffee taste,box")
    got = ours(TEXTS[1], candidate_labels="food, coffee taste,box")
    assert got["labels"] == want["labels"]


def test_long_text_is_truncated_as_transformers_does(pair):
    ours, reference = pair
    text = " ".join(["the good food was great"] * 20)  # far past the 40 positions
    want = reference(text, candidate_labels=LABELS)
    got = ours(text, candidate_labels=LABELS)
    assert got["labels"] == want["labels"] and got.metadata["truncated"] is True
    assert torch.allclose(torch.tensor(got["scores"]), torch.tensor(want["scores"]), atol=1e-5)


def test_call_defaults_at_load(tmp_path):
    folder = _nli_checkpoint(tmp_path / "m", ["contradiction", "neutral", "entailment"])
    pipe = hub.load("zero-shot-classification", model=str(folder), device="cpu", candidate_labels=LABELS)
    assert pipe(TEXTS[0])["labels"] == pipe(TEXTS[0], candidate_labels=LABELS)["labels"]


@pytest.mark.parametrize("kwargs, match", [
    ({}, r"needs candidate_labels=\[...\]"),
    ({"candidate_labels": []}, "non-empty list"),
    ({"candidate_labels": ["a", " "]}, r"candidate_labels\[1\]"),
    ({"candidate_labels": ["a", "a"]}, r"repeats \['a'\]"),
    ({"candidate_labels": ["a"], "hypothesis_template": "no placeholder"}, r"must be a string holding '\{\}'"),
    ({"candidate_labels": ["a", "b", "c"], "max_candidate_labels": 2}, "3 candidate labels, more than the limit of 2"),
    ({"candidate_labels": ["a"], "multi_lable": True}, "multi_label"),
])
def test_bad_calls_are_clear_errors(pair, kwargs, match):
    ours, _ = pair
    with pytest.raises(InvalidInputError, match=match):
        ours(TEXTS[0], **kwargs)


def test_refuses_a_bare_encoder_and_training(tmp_path):
    from transformers import BertConfig, BertModel

    from tests.text.checkpoints import make_wordpiece_tokenizer

    folder = tmp_path / "encoder"
    tokenizer = make_wordpiece_tokenizer(folder)
    BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(str(folder))
    with pytest.raises(hub.errors.HubError, match="NLI"):
        hub.load("zero-shot-classify", model=str(folder), device="cpu")
    nli = hub.load("zero-shot-classify", model=str(_nli_checkpoint(tmp_path / "nli", ["no", "yes"])), device="cpu")
    with pytest.raises(hub.errors.NotSupportedError, match="does not support fine_tune"):
        nli.fine_tune([("a", "b")])
