"""text-classify behaviour: batching, top_k, bad input, truncation, save/reload, fine-tune."""

from __future__ import annotations

import json

import pytest
import torch

import hub
from hub.errors import InputTypeError, InvalidInputError, ModelLoadError
from tests.text.checkpoints import make_bert_classifier

TEXTS = ["the food was great", "awful stale coffee", "tea", "very very good value for the price"]


@pytest.fixture
def checkpoint(tmp_path):
    make_bert_classifier(tmp_path / "ckpt", num_labels=2, max_positions=16)
    return tmp_path / "ckpt"


@pytest.fixture
def pipe(checkpoint):
    return hub.load("text-classify", model=str(checkpoint), device="cpu")


def test_single_and_list_inputs_agree_in_order(pipe):
    singles = [pipe(t) for t in TEXTS]
    batched = pipe(TEXTS, batch_size=3)
    assert isinstance(singles[0], dict) and set(singles[0]) == {"label", "score"}
    assert [r["label"] for r in batched] == [r["label"] for r in singles]
    for a, b in zip(singles, batched):
        assert a["score"] == pytest.approx(b["score"], abs=1e-6)


def test_top_k(pipe):
    ranked = pipe(TEXTS[0], top_k=None)
    assert [r["label"] for r in ranked] == sorted(pipe.labels, key=lambda l: -next(
        r["score"] for r in ranked if r["label"] == l))
    assert sum(r["score"] for r in ranked) == pytest.approx(1.0, abs=1e-6)
    assert pipe(TEXTS, top_k=2)[1][0]["score"] >= pipe(TEXTS, top_k=2)[1][1]["score"]
    with pytest.raises(InvalidInputError, match="top_k"):
        pipe(TEXTS[0], top_k=0)


def test_alias_names_resolve(checkpoint):
    for alias in ("text-classification", "sentiment-analysis"):
        assert hub.load(alias, model=str(checkpoint), device="cpu").task == "text-classify"


@pytest.mark.parametrize("bad, error, message", [
    ("", InvalidInputError, "empty string"),
    ("   ", InvalidInputError, "empty string"),
    (["fine", 3], InputTypeError, "input 1 is a int"),
    (None, InputTypeError, "expected a string"),
])
def test_bad_inputs_raise_clear_errors(pipe, bad, error, message):
    with pytest.raises(error, match=message):
        pipe(bad)


def test_an_empty_list_gives_an_empty_list(pipe):
    assert pipe([]) == []  # issue 13: as transformers' pipeline (was an "empty list" error)


def test_long_texts_windowed_by_default_truncated_on_request(pipe, caplog):
    words = "good bad tea great awful coffee not very".split()
    long_text = " ".join(words[i % len(words)] for i in range(40))  # 42 tokens > 16 positions
    result = pipe(long_text)
    assert result.metadata == {"truncated": False, "num_tokens": 42, "windows": 4}
    assert "overlapping windows" in caplog.text
    truncated = pipe(long_text, long_inputs="truncate")
    assert truncated.metadata == {"truncated": True, "num_tokens": 42, "windows": 1}
    assert pipe("good").metadata == {"truncated": False, "num_tokens": 3, "windows": 1}
    with pytest.raises(InvalidInputError, match="more than the model's 16"):
        pipe(long_text, long_inputs="error")
    with pytest.raises(InvalidInputError, match="long_inputs must be one of"):
        pipe(long_text, long_inputs="chunk")


def test_windows_are_the_token_weighted_mean_of_window_probabilities(pipe):
    words = "good bad tea great awful coffee not very".split()
    long_text = " ".join(words[i % len(words)] for i in range(40))
    ids = pipe.tokenizer(long_text, truncation=True, max_length=16, stride=4,
                         return_overflowing_tokens=True)["input_ids"]
    assert len(ids) > 1 and all(len(w) <= 16 for w in ids)
    with torch.no_grad():
        probs = [pipe.model(torch.tensor([w]))["logits"].softmax(-1)[0] for w in ids]
    weights = torch.tensor([float(len(w)) for w in ids])
    expected = (torch.stack(probs) * weights[:, None]).sum(0) / weights.sum()
    ranked = pipe(long_text, stride=4, top_k=None)
    assert ranked[0].metadata["windows"] == len(ids)
    for r in ranked:
        assert r["score"] == pytest.approx(expected[pipe.labels.index(r["label"])].item(), abs=1e-5)


def test_save_and_reload_exactly(pipe, tmp_path):
    saved = pipe.save(tmp_path / "saved")
    assert {"config.json", "model.safetensors", "README.md"} <= {p.name for p in saved.iterdir()}
    assert json.loads((saved / "config.json").read_text())["architecture"] == "bert-classifier"
    again = hub.load("text-classify", model=str(saved), device="cpu")
    assert again.labels == pipe.labels
    for a, b in zip(pipe(TEXTS, top_k=None), again(TEXTS, top_k=None)):
        assert a == b


def test_quantized_save_is_smaller_and_close(pipe, tmp_path):
    full = pipe.save(tmp_path / "full")
    small = pipe.save(tmp_path / "small", quantize=True)
    assert (small / "model.safetensors").stat().st_size < 0.6 * (full / "model.safetensors").stat().st_size
    again = hub.load("text-classify", model=str(small), device="cpu")
    for a, b in zip(pipe(TEXTS), again(TEXTS)):
        assert a["score"] == pytest.approx(b["score"], abs=0.05)


def test_save_is_atomic_when_writing_fails(pipe, tmp_path, monkeypatch):
    target = pipe.save(tmp_path / "model")
    before = sorted(p.name for p in target.iterdir())
    import hub.modeling as modeling  # Pipeline.save writes the weights through hub.modeling.save_model

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(modeling, "save_model", broken)
    with pytest.raises(OSError, match="disk full"):
        pipe.save(target)
    assert sorted(p.name for p in target.iterdir()) == before
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left


def test_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="not a model folder"):
        hub.load("text-classify", model=str(tmp_path / "empty"))
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ModelLoadError, match="is a file"):
        hub.load("text-classify", model=str(tmp_path / "file.txt"))


def test_corrupt_safetensors(pipe, tmp_path):
    saved = pipe.save(tmp_path / "m")
    weights = saved / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match="corrupt or truncated"):
        hub.load("text-classify", model=str(saved))


def test_unknown_task_and_model_suggest_close_matches(checkpoint):
    with pytest.raises(LookupError, match="text-classify"):
        hub.load("text-clasify")
    with pytest.raises(LookupError, match="Did you mean"):
        hub.load("text-classify", model="sentiment-minilmm")


def test_fine_tune_learns_new_labels_and_reloads(pipe, tmp_path):
    train = [{"text": t, "label": "pos"} for t in ("great good", "good tasty", "love it", "great value")]
    train += [{"text": t, "label": "neg"} for t in ("awful bad", "bad stale", "hate it", "terrible taste")]
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in train))
    result = pipe.fine_tune(str(path), train, epochs=30, learning_rate=3e-3, batch_size=8,
                            metric_for_best="accuracy", output_dir=str(tmp_path / "run"), progress=False,
                            warmup_ratio=0.0, seed=1, reset_head=True)  # new label names: an explicit choice
    assert pipe.labels == ["neg", "pos"]
    assert result.best_metric == 1.0
    assert [r["label"] for r in pipe(["great good", "awful bad"])] == ["pos", "neg"]
    log = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("eval_accuracy" in r for r in log)
    best = hub.load("text-classify", model=str(tmp_path / "run" / "best"), device="cpu")
    assert best.labels == ["neg", "pos"]


def test_fine_tune_rejects_bad_data_and_args(pipe, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok", "label": "a"}\n{"text": "no label"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl, line 2: missing field\(s\) \['label'\]"):
        pipe.fine_tune(str(bad))
    with pytest.raises(ValueError, match="Did you mean 'learning_rate'"):
        pipe.fine_tune([("good", "a")], learnig_rate=1e-3)


def test_encoder_only_checkpoint_gets_a_fresh_head(tmp_path, caplog):
    from transformers import BertModel

    reference = make_bert_classifier(tmp_path / "clf")
    BertModel(reference.config).save_pretrained(str(tmp_path / "clf"))  # overwrite with a bare encoder
    pipe = hub.load("text-classify", model=str(tmp_path / "clf"), device="cpu")
    assert pipe.metadata["head_initialized"] is False
    assert "initialised at random" in caplog.text


def test_bad_device_and_dtype(checkpoint):
    with pytest.raises(InvalidInputError, match="device 'gpu0' is not understood"):
        hub.load("text-classify", model=str(checkpoint), device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(InvalidInputError, match="no CUDA GPU"):
            hub.load("text-classify", model=str(checkpoint), device="cuda")
    with pytest.raises(InvalidInputError, match="dtype 'float8'"):
        hub.load("text-classify", model=str(checkpoint), dtype="float8")


def test_bfloat16_on_cpu_agrees_with_float32(checkpoint):
    fp32 = hub.load("text-classify", model=str(checkpoint), device="cpu")
    bf16 = hub.load("text-classify", model=str(checkpoint), device="cpu", dtype="bfloat16")
    assert next(bf16.model.parameters()).dtype == torch.bfloat16
    for a, b in zip(fp32(TEXTS, top_k=None), bf16(TEXTS, top_k=None)):
        assert {r["label"]: r["score"] for r in a} == pytest.approx({r["label"]: r["score"] for r in b}, abs=0.02)
