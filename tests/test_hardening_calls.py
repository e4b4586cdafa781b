"""Issue 12, items 12, 15 and 18 (call parameters), for every registered pipeline.

Every pipeline of every registered task (the third-party example included) refuses an
unknown keyword with the close match, a non-positive ``batch_size`` and a bad
``progress``, *before any work* (the input passed is one the task would refuse too, so
the keyword error must come first). Pipelines are tiny random models or the shipped
defaults, made once per module.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hub
from hub.errors import ConfigError, InvalidInputError
from hub.pipeline import Pipeline
from hub.validate import check_bool, check_choice, check_int, check_keywords, check_number, resolve_limit
from tests.speech.checkpoints import tone
from tests.text.checkpoints import make_bert_classifier, make_wordpiece_tokenizer
from tests.text.gpt_checkpoints import make_gpt2
from tests.vision.helpers import TINY_RESNET, make_timm, photo

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: a valid input per task, and the keyword each task is expected to take
VALID = {
    "text-classify": ("the film was good", "top_k"),
    "token-classify": ("the film was good", "aggregation_strategy"),
    "fill-mask": ("the film was [MASK]", "top_k"),
    "text-embed": ("the film was good", "normalize"),
    "text-generate": ("the film", "max_new_tokens"),
    "summarize": ("the film was good", "num_beams"),
    "translate": ("the film was good", "tgt_lang"),
    "text2text-generate": ("the film was good", "max_new_tokens"),
    "zero-shot-classify": ("the film was good", "multi_label"),
    "image-classify": (photo(0, (40, 40)), "top_k"),
    "image-embed": (photo(0, (40, 40)), "normalize"),
    "zero-shot-image-classify": (photo(0, (40, 40)), "candidate_labels"),
    "speech-recognize": ({"array": tone(1.0), "sampling_rate": 16000}, "decoder"),
    "audio-classify": ({"array": tone(1.0), "sampling_rate": 16000}, "top_k"),
    "recommend": ("1", "k"),
    "text-stats": ("Hello there. Bye.", "top_words"),
}


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory):
    """One small pipeline per registered task (built lazily)."""
    from transformers import BertConfig, BertForMaskedLM, BertForTokenClassification

    root = tmp_path_factory.mktemp("pipes")
    made: dict[str, Pipeline] = {}

    def build(task: str) -> Pipeline:
        if task in made:
            return made[task]
        folder = root / task
        if task in ("text-classify", "text-embed"):
            make_bert_classifier(folder, max_positions=32)
            pipe = hub.load(task, model=str(folder), device="cpu")
        elif task in ("token-classify", "fill-mask"):
            tokenizer = make_wordpiece_tokenizer(folder)
            cls = BertForTokenClassification if task == "token-classify" else BertForMaskedLM
            torch.manual_seed(0)
            cls(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                           intermediate_size=37, max_position_embeddings=32, num_labels=3)).save_pretrained(folder)
            pipe = hub.load(task, model=str(folder), device="cpu")
        elif task == "text-generate":
            make_gpt2(folder, positions=64)
            pipe = hub.load(task, model=str(folder), device="cpu")
        elif task in ("summarize", "translate", "text2text-generate"):  # a random BART
            from tests.text.seq2seq_checkpoints import make_seq2seq

            make_seq2seq(folder, "bart")
            pipe = hub.load(task, model=str(folder), device="cpu")
        elif task in ("image-classify", "image-embed"):
            make_timm(folder, **TINY_RESNET)
            pipe = hub.load(task, model=str(folder), device="cpu")
        elif task == "zero-shot-classify":  # a random BERT NLI classifier; the labels given at load
            make_bert_classifier(folder, max_positions=32)
            pipe = hub.load(task, model=str(folder), device="cpu", candidate_labels=["good", "bad"])
        elif task == "zero-shot-image-classify":  # a random CLIP; the labels given at load
            from tests.vision.clip_checkpoints import make_clip

            make_clip(folder)
            pipe = hub.load(task, model=str(folder), device="cpu", candidate_labels=["cat", "dog"])
        else:  # speech, recommend, text-stats: the shipped (local) defaults
            pipe = hub.load(task, device="cpu")
        made[task] = pipe
        return pipe

    return build


#: the second example plugin's task: it takes no call keyword of its own, so these checks do
#: not apply; hub.testing checks its keywords (tests/test_second_plugin.py)
EXAMPLE_TASKS = {"time-series-forecast"}


def registered_tasks() -> list[str]:
    return sorted(set(hub.get_registry().tasks) - EXAMPLE_TASKS)


def test_every_registered_task_is_covered():
    """A new task must join these checks (add it to VALID)."""
    assert set(registered_tasks()) - {"text-stats"} <= set(VALID)


@pytest.mark.parametrize("task", registered_tasks())
def test_every_pipeline_declares_its_call_keywords(task):
    cls = hub.get_registry().task(task).spec.pipeline
    if isinstance(cls, str):
        import importlib

        module, name = cls.split(":")
        cls = getattr(importlib.import_module(module), name)
    accepted = cls.accepted_call_parameters()
    assert {"batch_size", "progress"} <= accepted
    assert VALID[task][1] in accepted
    assert not any(name.startswith("_") for name in accepted)  # the **_ catch-alls do not count


@pytest.mark.parametrize("task", registered_tasks())
def test_unknown_keywords_batch_size_and_progress_refused_before_any_work(task, pipelines):
    if task == "text-stats":
        pytest.importorskip("hub_textstats")
    pipe = pipelines(task)
    good, keyword = VALID[task]
    bad_input = {"not": "an input"} if task != "recommend" else None  # every task refuses these
    typo = keyword[:-1] + keyword[-1] * 2  # top_kk, normalizee, ...
    with pytest.raises(InvalidInputError, match=rf"unknown keyword '{typo}' for {task}; did you mean '{keyword}'\?"):
        pipe(bad_input, **{typo: 1})
    for size in (0, -1, 2.5, "8", True):
        with pytest.raises(InvalidInputError, match=r"batch_size must be an integer >= 1, got"):
            pipe(bad_input, batch_size=size)
    with pytest.raises(InvalidInputError, match="progress must be True or False"):
        pipe(bad_input, progress="yes")
    result = pipe([good, good], batch_size=1, progress=False)  # the good call still works
    assert len(result) == 2


@pytest.mark.parametrize("task, keyword, hint", [
    # text-classify takes these three with their meaning (issue 13); other tasks still refuse them
    ("audio-classify", "return_all_scores", "top_k=None"),
    ("token-classify", "truncation", "long_inputs='truncate'"),
    ("image-classify", "function_to_apply", "softmax"),
    ("text-classify", "topk", "did you mean 'top_k'"),
    ("text-embed", "normalize_embeddings", "normalize=True"),
    ("text-generate", "max_length", "max_new_tokens="),
    ("text-generate", "num_beams", "no beam search"),
    # speech-recognize takes num_beams= for Whisper models; a CTC model refuses it naming decoder='beam'
    # (tests/speech/test_whisper_recognize.py::test_ctc_models_refuse_whisper_keywords)
    ("image-classify", "device", "hub.load"),
])
def test_transformers_keywords_name_hubs_equivalent(task, keyword, hint, pipelines):
    pipe = pipelines(task)
    with pytest.raises(InvalidInputError, match=f"unknown keyword '{keyword}' for {task}") as info:
        pipe(VALID[task][0], **{keyword: True})
    assert hint in str(info.value)


def test_the_reported_typo():
    """`clf(x, topk=3)` on the shipped default, exactly as issue 12 reports it."""
    clf = hub.load("text-classify", device="cpu")
    with pytest.raises(InvalidInputError, match="unknown keyword 'topk' for text-classify; did you mean 'top_k'"):
        clf("great coffee", topk=3)
    assert len(clf("great coffee", top_k=2)) == 2


def test_a_plugin_reading_kwargs_declares_them():
    """call_parameters replaces the signature-derived set (for **kwargs readers and __call__ overriders)."""

    class Echo(Pipeline):
        task = "echo-test"
        call_parameters = frozenset({"shout"})

        def preprocess(self, inputs, **options):
            return [{"length": 1, "text": t.upper() if options.get("shout") else t} for t in inputs]

        def collate(self, features):
            return {"x": torch.zeros(len(features), 1)}

        def forward(self, batch):
            return batch["x"]

        def postprocess(self, outputs, features, **options):
            return features[0]["text"]

    echo = Echo(torch.nn.Identity())
    assert echo.accepted_call_parameters() == {"shout", "batch_size", "progress"}
    assert echo(["a", "b"], shout=True) == ["A", "B"]
    with pytest.raises(InvalidInputError, match="did you mean 'shout'"):
        echo("a", shuot=True)


# -- the checking helpers (hub.validate) ----------------------------------------------------------
@pytest.mark.parametrize("value", [-1, 0, 1.5, "3", True, None, float("nan")])
def test_check_int_refuses(value):
    with pytest.raises(InvalidInputError, match=r"^top_k must be an integer >= 1, got"):
        check_int("top_k", value, minimum=1)


def test_check_helpers_accept_and_return():
    assert check_int("k", np.int64(3), minimum=1) == 3 and type(check_int("k", np.int64(3))) is int
    assert check_int("k", None, none_ok=True) is None
    assert check_number("t", 1, above=0) == 1.0 and check_number("t", np.float32(0.5), maximum=1) == 0.5
    assert check_bool("b", np.bool_(True)) is True
    assert check_choice("mode", "a", ("a", "b")) == "a"
    for value in (float("nan"), float("inf"), "1.0", False, 0):
        with pytest.raises(InvalidInputError, match="temperature must be a finite number > 0"):
            check_number("temperature", value, above=0)
    with pytest.raises(InvalidInputError, match="mode must be one of 'a', 'b', got"):
        check_choice("mode", ["a"], {"a", "b"})  # unhashable: still a clear error
    with pytest.raises(InvalidInputError, match=r"flag must be True or False, got 1"):
        check_bool("flag", 1)


def test_resolve_limit_keyword_then_environment_then_default(monkeypatch):
    monkeypatch.delenv("HUB_TEST_LIMIT", raising=False)
    assert resolve_limit("max_x", None, "HUB_TEST_LIMIT", 7) == 7
    monkeypatch.setenv("HUB_TEST_LIMIT", "5e3")
    assert resolve_limit("max_x", None, "HUB_TEST_LIMIT", 7) == 5000
    assert resolve_limit("max_x", 9, "HUB_TEST_LIMIT", 7) == 9
    with pytest.raises(InvalidInputError, match="max_x must be an integer >= 1"):
        resolve_limit("max_x", 0, "HUB_TEST_LIMIT", 7)
    for text in ("lots", "-3", "0", "1.5"):
        monkeypatch.setenv("HUB_TEST_LIMIT", text)
        with pytest.raises(ConfigError, match="HUB_TEST_LIMIT"):
            resolve_limit("max_x", None, "HUB_TEST_LIMIT", 7)


def test_check_keywords_lists_every_unknown_one():
    with pytest.raises(InvalidInputError, match=r"unknown keyword 'topk'.*also unknown: 'colour'.*takes: batch_size"):
        check_keywords("t", ["topk", "colour", "top_k"], {"top_k", "batch_size"})
