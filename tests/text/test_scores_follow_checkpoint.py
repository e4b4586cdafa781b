"""Issue 13, item 2 (e): text-classify scores follow the checkpoint as transformers' pipeline
does (multi-label and single-logit checkpoints: sigmoid; ``function_to_apply``), and
transformers' ``return_all_scores`` / ``truncation`` keywords keep their meaning. Each case is
checked against transformers' pipeline on the same small random checkpoint."""

from __future__ import annotations

import pytest

import hub
from hub.errors import InvalidInputError
from tests.text.checkpoints import make_bert_classifier

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TEXTS = ["the tea was good", "awful coffee , not fresh"]


def _both(folder):
    from transformers import pipeline

    return (pipeline("text-classification", model=str(folder), device="cpu"),
            hub.load("text-classify", model=str(folder), device="cpu"))


def _same(got, expected):
    got = got if isinstance(got, list) else [got]
    expected = expected if isinstance(expected, list) else [expected]
    assert [r["label"] for r in got] == [r["label"] for r in expected]
    assert [r["score"] for r in got] == pytest.approx([r["score"] for r in expected], abs=1e-5)


@pytest.mark.parametrize("problem_type, num_labels", [
    ("multi_label_classification", 3),
    (None, 1),  # a single logit
    (None, 3),  # softmax, as before
    ("regression", 1),
])
def test_default_scores_equal_transformers(tmp_path, problem_type, num_labels):
    make_bert_classifier(tmp_path, num_labels=num_labels, problem_type=problem_type, max_positions=32)
    reference, ours = _both(tmp_path)
    for text in TEXTS:
        _same(ours(text), reference(text)[0])
        _same(ours(text, top_k=None), reference(text, top_k=None))
    if num_labels == 1 and problem_type is None:
        assert ours(TEXTS[0])["score"] < 1.0  # was always 1.0 (a softmax over one logit)


@pytest.mark.parametrize("function", ["softmax", "sigmoid", "none"])
def test_function_to_apply_equals_transformers(tmp_path, function):
    make_bert_classifier(tmp_path, num_labels=3, max_positions=32)
    reference, ours = _both(tmp_path)
    for text in TEXTS:
        _same(ours(text, function_to_apply=function, top_k=None),
              reference(text, function_to_apply=function, top_k=None))
    with pytest.raises(InvalidInputError, match="function_to_apply must be one of 'softmax', 'sigmoid', 'none'"):
        ours(TEXTS[0], function_to_apply="tanh")


def test_multi_label_survives_save_and_load(tmp_path):
    make_bert_classifier(tmp_path / "hf", num_labels=3, problem_type="multi_label_classification",
                         max_positions=32)
    reference, ours = _both(tmp_path / "hf")
    again = hub.load("text-classify", model=str(ours.save(tmp_path / "saved")), device="cpu")
    assert again.problem_type == "multi_label_classification"
    _same(again(TEXTS[0], top_k=None), reference(TEXTS[0], top_k=None))


def test_return_all_scores_and_truncation_keep_their_meaning(tmp_path):
    make_bert_classifier(tmp_path, num_labels=3, max_positions=16)
    reference, ours = _both(tmp_path)
    assert ours(TEXTS[0], return_all_scores=True) == ours(TEXTS[0], top_k=None)
    assert len(ours(TEXTS[0], return_all_scores=True)) == 3
    assert isinstance(ours(TEXTS[0], return_all_scores=False), dict)
    long_text = " ".join(["good tea"] * 30)  # longer than 16 positions
    cut = ours(long_text, truncation=True)
    assert cut == ours(long_text, long_inputs="truncate") and cut.metadata["truncated"] is True
    _same(cut, reference(long_text, truncation=True, max_length=16)[0])  # its tokenizer has no max length
    with pytest.raises(InvalidInputError, match="truncation=True means long_inputs='truncate'"):
        ours(long_text, truncation=True, long_inputs="window")
    with pytest.raises(InvalidInputError, match="return_all_scores=True means top_k=None"):
        ours(TEXTS[0], return_all_scores=True, top_k=2)
