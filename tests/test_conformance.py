"""hub.testing's conformance kit run over EVERY registered task (parametrised from the
registry, as timm's tests parametrise over models), plus tests of the kit itself.

Each built-in task gets a tiny example here (config, inputs, two-step training data); a
task the registry lists that this table lacks falls back to its pipeline's
``conformance_example()`` (a third-party plugin's own hook), so a new task is checked too.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import hub
import hub.testing
from hub.errors import InvalidInputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _sine(seconds: float, freq: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * math.pi * freq * t)).astype(np.float32)


def _image(seed: int, size: int = 32):
    from PIL import Image

    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size, size), dtype=np.uint8), mode="L")


def _corpus() -> list[str]:
    nouns = "cat dog bird fox horse teacher farmer child robot poet".split()
    verbs = "sees chases likes helps follows greets finds watches".split()
    return [f"the {nouns[i % 10]} {verbs[i % 8]} the {nouns[(i * 3) % 10]}." for i in range(40)]


def _tokenizer(kind: str, vocab_size: int):
    from hub_text.pretrain import train_tokenizer

    return train_tokenizer(_corpus(), kind, vocab_size=vocab_size)


TEXT_TINY = {"num_layers": 1, "hidden_size": 16, "num_heads": 2, "max_positions": 128, "dropout": 0.0,
             "attention_dropout": 0.0}
SPEECH_TINY = {"backbone": {"num_layers": 1, "hidden_size": 16, "num_heads": 2, "rotary_dim": 8, "intermediate_size": 32,
                            "dropout": 0.0, "attention_dropout": 0.0}, "subsample_channels": 8}
VIT = {"img_size": 32, "patch_size": 8, "in_chans": 1, "num_layers": 1, "hidden_size": 16, "num_heads": 2,
       "preprocess": {"crop_pct": 1.0, "interpolation": "bilinear", "mean": [0.5], "std": [0.5]}}
RECSYS = {"architecture": "sasrec", "max_len": 8, "hidden_size": 16, "num_layers": 1, "num_heads": 2,
          "dropout": 0.0}
TEXTS = ["the cat sees the dog.", "a fox.", "the quick old robot helps the tall farmer today."]
CLIPS = [{"array": _sine(s, f), "sampling_rate": 16000} for s, f in ((0.3, 440), (0.5, 880), (0.2, 300))]
IMAGES = [_image(0), _image(1), _image(2)]


def _bert_pipeline(task: str, tmp_path_factory):
    """text-classify / token-classify / text-embed cannot be created from scratch: a tiny
    random BERT checkpoint (transformers) loaded through hub.load."""
    from transformers import BertConfig, BertForSequenceClassification, BertForTokenClassification, BertModel

    from tests.text.checkpoints import make_wordpiece_tokenizer

    folder = tmp_path_factory.mktemp(task)
    tokenizer = make_wordpiece_tokenizer(folder)
    labels = {"token-classify": ["O", "B-PER", "I-PER"],
              "zero-shot-classify": ["contradiction", "neutral", "entailment"]}.get(task, ["neg", "pos"])
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, num_labels=len(labels),
                        id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
    model_cls = {"text-classify": BertForSequenceClassification, "token-classify": BertForTokenClassification,
                 "text-embed": BertModel, "zero-shot-classify": BertForSequenceClassification}[task]
    import torch

    torch.manual_seed(0)
    model_cls(config).eval().save_pretrained(str(folder))
    return hub.load(task, model=str(folder), device="cpu")


CLIP_TINY = {"vision": {"img_size": 32, "patch_size": 8, "backbone": {"hidden_size": 16, "num_layers": 1, "num_heads": 2,
                                                                       "intermediate_size": 32}},
             "text": {"backbone": {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32}},
             "projection_dim": 8}


def _clip_tokenizer():
    from hub_vision.clip_tokenizer import train_clip_tokenizer

    return train_clip_tokenizer(_corpus(), vocab_size=600, max_length=32)


INTERACTIONS = [(f"u{u}", f"i{(u + t) % 6}", 1.0, 1000 + t) for u in range(4) for t in range(5)]


def _recommender():
    """A recommender knows its users and items only once trained (an untrained one refuses to
    predict, by design): created from scratch, then fine-tuned for two steps."""
    rec = hub.create("recommend", config=RECSYS, device="cpu", seed=0)
    rec.fine_tune(INTERACTIONS, **hub.testing.TRAIN_ARGS, device="cpu")
    return rec


def examples(tmp_path_factory) -> dict[str, dict]:
    """Tiny examples of the built-in tasks (keywords of hub.testing.check_task)."""
    return {
        "text-generate": dict(config=TEXT_TINY, tokenizer=_tokenizer("bpe", 300), inputs=TEXTS,
                              train_data=_corpus(), train_args={"block_size": 16, "val_fraction": 0.1}),
        "fill-mask": dict(config=TEXT_TINY, tokenizer=_tokenizer("wordpiece", 150),
                          inputs=["the cat [MASK] the dog.", "a [MASK].", "the [MASK] old robot helps."],
                          train_data=_corpus(), train_args={"block_size": 16, "val_fraction": 0.1}),
        "text-classify": dict(pipeline=lambda: _bert_pipeline("text-classify", tmp_path_factory), inputs=TEXTS,
                              train_data=[("the cat sees the dog.", "pos"), ("a fox.", "neg")] * 2),
        "token-classify": dict(pipeline=lambda: _bert_pipeline("token-classify", tmp_path_factory), inputs=TEXTS,
                               train_data=[{"tokens": ["alice", "went"], "tags": ["B-PER", "O"]}] * 4),
        "text-embed": dict(pipeline=lambda: _bert_pipeline("text-embed", tmp_path_factory), inputs=TEXTS),
        "zero-shot-classify": dict(pipeline=lambda: _bert_pipeline("zero-shot-classify", tmp_path_factory),
                                   inputs=TEXTS, call_defaults={"candidate_labels": ["animals", "machines"]}),
        "audio-classify": dict(config={**SPEECH_TINY, "labels": ["low", "high"]}, inputs=CLIPS,
                               train_data=[(CLIPS[0], "low"), (CLIPS[1], "high")] * 2),
        "speech-recognize": dict(config={**SPEECH_TINY, "vocab": ["<pad>", "|", "a", "b", "c"]}, inputs=CLIPS,
                                 train_data=[(CLIPS[0], "ab"), (CLIPS[1], "cab")] * 2),
        "image-classify": dict(config={**VIT, "labels": ["a", "b"]}, inputs=IMAGES,
                               train_data=[(IMAGES[0], "a"), (IMAGES[1], "b")] * 2),
        "image-embed": dict(config=VIT, inputs=IMAGES, train_verb="pretrain", train_data=IMAGES * 2,
                            train_args={"objective": "mim"}),
        "zero-shot-image-classify": dict(config=CLIP_TINY, tokenizer=_clip_tokenizer(), inputs=IMAGES,
                                         call_defaults={"candidate_labels": ["noise", "a cat"]},
                                         train_data=[(IMAGES[0], "noise"), (IMAGES[1], "a cat")] * 2),
        "recommend": dict(pipeline=_recommender, inputs=["u0", "u1", "u2"], wrong_input=None, train_data=INTERACTIONS),
    }


#: built-in tasks that fail a check today: task -> the exact reason (strict: an xpass fails)
KNOWN_FAILURES: dict[str, str] = {}


def _params():
    for name in sorted(hub.get_registry().tasks):
        reason = KNOWN_FAILURES.get(name)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        yield pytest.param(name, marks=marks, id=name)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return examples(tmp_path_factory)


@pytest.mark.parametrize("task", list(_params()))
def test_every_registered_task_conforms(task, table, tmp_path):
    report = hub.testing.check_task(task, folder=tmp_path, **table.get(task, {}))
    assert report.passed[:7] == ["create", "single", "batch", "empty", "unknown_keyword", "wrong_type", "save_load"]


# -- the kit itself -----------------------------------------------------------------------
def test_kit_reports_the_failed_check_and_what_differed():
    with pytest.raises(hub.testing.ConformanceError, match=r"\[1\]\['x'\]: expected 1.0, got 1.1"):
        hub.testing.assert_same([{"x": 1.0}, {"x": 1.1}], [{"x": 1.0}, {"x": 1.0}])
    hub.testing.assert_same({"x": 1.0 + 1e-7}, {"x": 1.0})
    with pytest.raises(hub.testing.ConformanceError, match="expected keys"):
        hub.testing.assert_same({"x": 1}, {"y": 1})


def test_kit_catches_a_pipeline_that_accepts_a_wrong_type(monkeypatch):
    from hub_textstats.pipeline import TextStatsPipeline

    original = TextStatsPipeline.preprocess
    monkeypatch.setattr(TextStatsPipeline, "preprocess",
                        lambda self, inputs, **kw: original(self, [str(i) for i in inputs], **kw))
    with pytest.raises(hub.testing.ConformanceError, match="check 'wrong_type' failed: input 2"):
        hub.testing.check_task("text-stats", ["a b", "c"], checks=["wrong_type"])


def test_kit_catches_batching_that_changes_an_answer(monkeypatch):
    """A model whose output depends on what it is batched with (as a padding-sensitive one
    does) gives consistent single results but fails the batch check."""
    from hub_textstats.pipeline import TextStatsPipeline

    monkeypatch.setattr(TextStatsPipeline, "forward", lambda self, batch: batch["counts"] + len(batch["counts"]) - 1)
    with pytest.raises(hub.testing.ConformanceError,
                       match=r"check 'batch' failed: batch vs each input alone\[\d\]\['words'\]"):
        hub.testing.check_task("text-stats", ["a b", "c"], checks=["batch"])


def test_kit_refuses_an_unknown_check_and_too_few_inputs():
    with pytest.raises(ValueError, match="unknown checks"):
        hub.testing.check_task("text-stats", ["a", "b"], checks=["singel"])
    with pytest.raises(hub.testing.ConformanceError, match="at least two inputs"):
        hub.testing.check_task("text-stats", ["a"])
    with pytest.raises(InvalidInputError):
        hub.load("text-stats", device="cpu")("a", no_such_keyword_xyz=1)


class TestTextStatsConformance(hub.testing.TaskConformance):
    """The pytest class a plugin author subclasses, on the first example plugin."""

    task = "text-stats"
    inputs = ["Hello world. How are you?", "", "one"]
