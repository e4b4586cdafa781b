"""Fine-tuning a model that already has labels (issue 12, item 11): new label names are an
explicit choice in every classifying task; a label seen once among many rows is a warning."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch

import hub
from hub.data.labels import label_name, resolve_labels
from hub.errors import ConfigError, DataError, InvalidInputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")
QUICK = {"max_steps": 1, "batch_size": 4, "learning_rate": 1e-12, "weight_decay": 0.0, "warmup_ratio": 0.0,
         "progress": False}
WORDS = ["good", "tasty", "love", "great", "bad", "stale", "awful", "value"]


# -- one small model with a trained head per task -------------------------------------------------
def text_task(tmp_path):
    from tests.text.checkpoints import make_bert_classifier

    make_bert_classifier(tmp_path / "m", num_labels=2, max_positions=16)
    pipe = hub.load("text-classify", model=str(tmp_path / "m"), device="cpu")
    rows = lambda labels: [{"text": WORDS[i % len(WORDS)], "label": label} for i, label in enumerate(labels)]
    return pipe, rows


def token_task(tmp_path):
    from transformers import BertConfig, BertForTokenClassification

    from tests.text.checkpoints import make_wordpiece_tokenizer

    tokenizer = make_wordpiece_tokenizer(tmp_path / "m")
    labels = ["class_0", "class_1"]
    torch.manual_seed(0)
    BertForTokenClassification(BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1,
                                          num_attention_heads=2, intermediate_size=32, max_position_embeddings=32,
                                          id2label=dict(enumerate(labels)),
                                          label2id={l: i for i, l in enumerate(labels)})).save_pretrained(
        str(tmp_path / "m"))
    pipe = hub.load("token-classify", model=str(tmp_path / "m"), device="cpu")
    rows = lambda labels: [{"tokens": [WORDS[i % len(WORDS)]], "tags": [label]} for i, label in enumerate(labels)]
    return pipe, rows


def image_task(tmp_path):
    config = {"img_size": 16, "patch_size": 8, "labels": ["class_0", "class_1"],
              "backbone": {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32}}
    folder = hub.create("image-classify", config=config, device="cpu", seed=0).save(tmp_path / "m")
    pipe = hub.load("image-classify", model=str(folder), device="cpu")  # a saved model: its head counts
    rng = np.random.default_rng(0)
    rows = lambda labels: [(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8), label) for label in labels]
    return pipe, rows


def audio_task(tmp_path):
    import soundfile as sf

    tiny = {"backbone": {"num_layers": 1, "hidden_size": 16, "num_heads": 2, "rotary_dim": 8, "intermediate_size": 32,
                         "dropout": 0.0, "attention_dropout": 0.0}, "subsample_channels": 8,
            "labels": ["class_0", "class_1"]}
    folder = hub.create("audio-classify", config=tiny, device="cpu", seed=0).save(tmp_path / "m")
    pipe = hub.load("audio-classify", model=str(folder), device="cpu")
    clip = tmp_path / "clip.wav"
    sf.write(clip, (0.3 * np.sin(np.arange(4000) / 5)).astype(np.float32), 16000)
    rows = lambda labels: [(str(clip), label) for label in labels]
    return pipe, rows


TASKS = {"text-classify": text_task, "token-classify": token_task, "image-classify": image_task,
         "audio-classify": audio_task}


def head(pipe) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in pipe.model.state_dict().items() if "head" in k or "classifier" in k}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(a[k].shape == b[k].shape and torch.allclose(a[k], b[k], atol=1e-6) for k in a)


@pytest.fixture(params=sorted(TASKS))
def task(request, tmp_path):
    return TASKS[request.param](tmp_path)


def test_a_typo_label_does_not_throw_the_trained_head_away(task):
    pipe, rows = task
    before, labels = head(pipe), list(pipe.labels)
    data = rows(["class_1"] * 19 + ["clas_1"])
    with pytest.raises(DataError) as info:
        pipe.fine_tune(data, **QUICK)
    message = str(info.value)
    assert "['clas_1']" in message and "class_0" in message and "class_1" in message  # the new and the model's
    assert "labels=[...]" in message and "reset_head=True" in message  # the two ways out
    assert "'clas_1' (1 training rows) looks like 'class_1'" in message
    assert pipe.labels == labels and same(head(pipe), before)


def test_labels_among_the_models_keep_the_head(task):
    pipe, rows = task
    before, labels = head(pipe), list(pipe.labels)
    pipe.fine_tune(rows(["class_1"] * 4), **QUICK)
    assert pipe.labels == labels and same(head(pipe), before)  # lr 1e-12: the same head, not a new one


def test_reset_head_or_labels_choose_new_labels_explicitly(task):
    pipe, rows = task
    before = head(pipe)
    pipe.fine_tune(rows(["great", "grate", "great", "bad"]), reset_head=True, **QUICK)
    assert sorted(pipe.labels) == ["bad", "grate", "great"] and not same(head(pipe), before)
    pipe.fine_tune(rows(["great", "bad"]), labels=["bad", "great", "meh"], **QUICK)
    assert pipe.labels == ["bad", "great", "meh"]
    with pytest.raises(DataError, match="'grate'"):  # the trained head is protected again
        pipe.fine_tune(rows(["great", "grate"]), **QUICK)
    with pytest.raises(ConfigError, match="reset_head must be True or False"):
        pipe.fine_tune(rows(["great"]), reset_head="yes", **QUICK)


@pytest.mark.parametrize("bad, message", [(None, "missing"), (math.nan, "NaN"), (["a"], "is a list"),
                                          (True, "boolean"), ("", "empty string"), (0.5, "the number 0.5"),
                                          ({"x": 1}, "is a dict")])
def test_bad_labels_are_refused_with_their_location(bad, message):
    pipe_rows = [{"text": "good", "label": "a"}] * 3 + [{"text": "bad", "label": bad}]
    from hub.data import read_records

    with pytest.raises(DataError, match=rf"the data list, record 3: .*{message}"):
        read_records(pipe_rows, fields=("text", "label"), text_fields=("text",), label_fields=("label",))


# -- the rule itself -----------------------------------------------------------------------------
def test_label_names_are_one_spelling():
    assert label_name(1) == label_name(1.0) == label_name("1") == label_name(np.int64(1)) == "1"
    assert label_name("great") == "great"
    for bad in (True, None, math.nan, math.inf, 1.5, [1], "", "  "):
        with pytest.raises(InvalidInputError):
            label_name(bad)


def test_a_singleton_label_among_many_rows_is_a_warning(caplog):
    caplog.set_level(logging.WARNING, logger="hub.data.labels")
    labels, rebuild = resolve_labels(["great"] * 150 + ["bad"] * 50 + ["grate"], current=[], labels=None,
                                     reset_head=False, head_trained=False)
    assert labels == ["bad", "grate", "great"] and rebuild
    [record] = [r for r in caplog.records if "grate" in r.getMessage()]
    assert "'grate' in only 1 of 201 rows" in record.getMessage() and "'great' (150 rows)" in record.getMessage()


def test_no_rare_label_warning_for_small_or_balanced_data(caplog, monkeypatch):
    caplog.set_level(logging.WARNING, logger="hub.data.labels")
    resolve_labels(["a"] * 19 + ["b"], current=[], labels=None, reset_head=False, head_trained=False)  # 20 rows
    resolve_labels(["a"] * 100 + ["b"] * 2, current=[], labels=None, reset_head=False, head_trained=False)
    assert not caplog.records
    monkeypatch.setenv("HUB_RARE_LABEL_MIN_ROWS", "10")
    resolve_labels(["a"] * 19 + ["b"], current=[], labels=None, reset_head=False, head_trained=False)
    assert "'b' in only 1 of 20 rows" in caplog.records[0].getMessage()
    monkeypatch.setenv("HUB_RARE_LABEL_MIN_ROWS", "many")
    with pytest.raises(ConfigError, match="HUB_RARE_LABEL_MIN_ROWS must be an integer"):
        resolve_labels(["a"], current=[], labels=None, reset_head=False, head_trained=False)


def test_an_untrained_head_is_replaced_without_asking():
    labels, rebuild = resolve_labels(["x", "y"], current=["LABEL_0", "LABEL_1"], labels=None, reset_head=False,
                                     head_trained=False)
    assert labels == ["x", "y"] and rebuild
    with pytest.raises(DataError, match=r"\['x', 'y'\]"):
        resolve_labels(["x", "y"], current=["LABEL_0", "LABEL_1"], labels=None, reset_head=False, head_trained=True)
    with pytest.raises(InvalidInputError, match="has duplicates"):
        resolve_labels(["x"], current=[], labels=["x", "x"], reset_head=False, head_trained=True)


def test_hub_create_then_fine_tune_then_new_labels(tmp_path):
    """The flag survives the flow: a model created from scratch takes any labels once; after that
    fine-tune its head is trained, so a second run with other labels must choose explicitly."""
    config = {"img_size": 16, "patch_size": 8, "labels": ["LABEL_0", "LABEL_1"],
              "backbone": {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32}}
    pipe = hub.create("image-classify", config=config, device="cpu", seed=0)
    image = np.zeros((16, 16, 3), dtype=np.uint8)
    pipe.fine_tune([(image, "pos"), (image, "neg")], **QUICK)
    assert pipe.labels == ["neg", "pos"]
    with pytest.raises(DataError, match=r"\['neutral'\]"):
        pipe.fine_tune([(image, "pos"), (image, "neutral")], **QUICK)
    reloaded = hub.load("image-classify", model=str(pipe.save(tmp_path / "saved")), device="cpu")
    with pytest.raises(DataError, match=r"\['neutral'\]"):
        reloaded.fine_tune([(image, "pos"), (image, "neutral")], **QUICK)
