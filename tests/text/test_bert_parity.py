"""Hub's BERT on the shared backbone equals transformers' on the same weights."""

from __future__ import annotations

import pytest
import torch

import hub
from tests.text.checkpoints import make_bert_classifier

TEXTS = ["the food was great", "awful stale coffee, not good at all!",
         "it was a very very good product and the price was really good value", "tea"]

SHAPES = [  # hidden, layers, heads, intermediate, activation
    dict(hidden=32, layers=2, heads=4, intermediate=37),
    dict(hidden=36, layers=3, heads=3, intermediate=64),      # odd head count
    dict(hidden=60, layers=1, heads=5, intermediate=50, hidden_act="gelu_new"),  # odd heads, tanh GELU
    dict(hidden=14, layers=2, heads=7, intermediate=28, hidden_act="relu"),  # head dim 2
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"h{s['hidden']}-l{s['layers']}-heads{s['heads']}")
def test_logits_equal_transformers(tmp_path, shape):
    reference = make_bert_classifier(tmp_path, **shape)
    pipe = hub.load("text-classify", model=str(tmp_path), device="cpu")
    batch = pipe.tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = reference(**batch).logits
        ours = pipe.model(batch["input_ids"], batch["attention_mask"])["logits"]
    assert ours.shape == expected.shape
    assert (ours - expected).abs().max().item() <= 1e-4


def test_pipeline_scores_match_transformers_softmax(tmp_path):
    reference = make_bert_classifier(tmp_path, num_labels=3)
    pipe = hub.load("text-classify", model=str(tmp_path), device="cpu")
    results = pipe(TEXTS, top_k=None, batch_size=2)
    for text, ranked in zip(TEXTS, results):
        with torch.no_grad():
            probs = reference(**pipe.tokenizer(text, return_tensors="pt")).logits.softmax(-1)[0]
        expected = {f"class_{i}": p for i, p in enumerate(probs.tolist())}
        assert [r["label"] for r in ranked] == sorted(expected, key=expected.get, reverse=True)
        for r in ranked:
            assert r["score"] == pytest.approx(expected[r["label"]], abs=1e-5)


def test_pytorch_model_bin_is_read_weights_only(tmp_path):
    reference = make_bert_classifier(tmp_path, safe=False)
    assert (tmp_path / "pytorch_model.bin").is_file() and not (tmp_path / "model.safetensors").exists()
    pipe = hub.load("text-classify", model=str(tmp_path), device="cpu")
    batch = pipe.tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        diff = (pipe.model(batch["input_ids"], batch["attention_mask"])["logits"]
                - reference(**batch).logits).abs().max().item()
    assert diff <= 1e-4
