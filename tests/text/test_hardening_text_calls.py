"""Issue 12 items 10 and 18 for the text pipelines: a cap on windows per input
(``max_windows`` / ``HUB_MAX_WINDOWS``) checked before the model runs, one warning for
inputs cut into many windows, a progress bar on long work, and every numeric call
parameter checked (``stride=-1`` was an ``OverflowError``, a stride of the window's size
a Rust panic; ``seed="a"``, ``temperature=nan`` reached torch)."""

from __future__ import annotations

import logging

import pytest
import torch

import hub
from hub.errors import InvalidInputError
from hub_text.pipelines.base import DEFAULT_MAX_WINDOWS, count_windows
from tests.text.checkpoints import WORDS, make_bert_classifier, make_wordpiece_tokenizer
from tests.text.gpt_checkpoints import make_gpt2

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def clf(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clf")
    make_bert_classifier(folder, max_positions=32)  # windows of 32 tokens: long texts are cheap here
    return hub.load("text-classify", model=str(folder), device="cpu")


@pytest.fixture(scope="module")
def tagger(tmp_path_factory):
    from transformers import BertConfig, BertForTokenClassification

    folder = tmp_path_factory.mktemp("ner")
    tokenizer = make_wordpiece_tokenizer(folder)
    torch.manual_seed(0)
    BertForTokenClassification(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1,
                                          num_attention_heads=4, intermediate_size=37, max_position_embeddings=32,
                                          num_labels=3)).save_pretrained(folder)
    return hub.load("token-classify", model=str(folder), device="cpu")


@pytest.fixture(scope="module")
def gpt(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpt")
    make_gpt2(folder, positions=64)
    return hub.load("text-generate", model=str(folder), device="cpu")


def words(n: int) -> str:
    return " ".join(WORDS[i % len(WORDS)] for i in range(n))


def _no_forward(pipe, monkeypatch):
    """Make any model pass fail loudly: the checks must come before the model runs."""
    def forward(batch):
        raise AssertionError("the model ran")
    monkeypatch.setattr(pipe, "forward", forward)


# -- item 10: max_windows ---------------------------------------------------------------------------
def test_too_many_windows_refused_before_the_model_runs(clf, monkeypatch):
    text = words(8000)  # 8000 tokens in windows of 32 (24 new tokens each): 333 windows > 256
    _no_forward(clf, monkeypatch)
    with pytest.raises(InvalidInputError) as info:
        clf(["fine", text])
    message = str(info.value)
    expected = count_windows(8000, 30, 8)
    assert expected > DEFAULT_MAX_WINDOWS
    for part in ("input 1", f"{expected:,} windows", f"max_windows={DEFAULT_MAX_WINDOWS}",
                 f"max_windows={expected}", "HUB_MAX_WINDOWS", "long_inputs='truncate'"):
        assert part in message, part


def test_max_windows_keyword_and_environment_raise_or_lower_the_cap(clf, monkeypatch, caplog):
    text, n = words(600), count_windows(600, 30, 8)  # 27 windows
    with pytest.raises(InvalidInputError, match=f"{n} windows of 32 tokens, more than max_windows=10"):
        clf(text, max_windows=10)
    monkeypatch.setenv("HUB_MAX_WINDOWS", "10")
    with pytest.raises(InvalidInputError, match="more than max_windows=10"):
        clf(text)
    result = clf(text, max_windows=n)  # the keyword wins over the environment
    assert result.metadata["windows"] == n
    truncated = clf(text, long_inputs="truncate")  # the advertised way out
    assert truncated.metadata["truncated"] and truncated.metadata["windows"] == 1
    with pytest.raises(InvalidInputError, match="max_windows must be an integer >= 1"):
        clf("fine", max_windows=0)


def test_many_windows_are_announced_once(clf, caplog):
    clf._warned_many_windows = False
    text, n = words(1200), count_windows(1200, 30, 8)  # 55 windows: more than the 32 that deserve a warning
    with caplog.at_level(logging.WARNING, logger="hub_text.pipelines.base"):
        first = clf(text)
        clf(text)
    assert first.metadata["windows"] == n
    announced = [r for r in caplog.records if f"is cut into {n} windows" in r.getMessage()]
    assert len(announced) == 1 and "max_windows" in announced[0].getMessage()


def test_token_classify_caps_windows_too(tagger, monkeypatch):
    text = words(500)
    with pytest.raises(InvalidInputError, match=r"input 0 has 502 tokens and would be cut into \d+ windows"):
        tagger(text, long_inputs="window", max_windows=3)
    assert tagger(text, long_inputs="window").metadata["windows"] > 3


def test_count_windows_equals_the_tokenizers_overflow(clf):
    for n, stride in ((100, 8), (31, 0), (300, 29), (1000, 5)):
        ids = clf.tokenizer([words(n)], truncation=True, max_length=32, stride=stride,
                            return_overflowing_tokens=True, verbose=False)["input_ids"]
        assert count_windows(n, 30, stride) == len(ids)


def test_progress_bar_on_request_only(clf, capsys):
    texts = [words(5)] * 6
    clf(texts, batch_size=2, progress=True)
    assert "text-classify" in capsys.readouterr().err  # tqdm writes to stderr
    clf(texts, batch_size=2, progress=False)
    clf(texts, batch_size=2)  # stderr is not a terminal here: no bar by default
    assert capsys.readouterr().err == ""


# -- item 18: call parameters ----------------------------------------------------------------------
@pytest.mark.parametrize("stride", [-1, 30, 31, 1.5, "4", True])
def test_bad_stride_is_a_clear_error(clf, stride):
    # -1 was an OverflowError from the tokenizer, 30 (the window's room) a Rust PanicException
    with pytest.raises(InvalidInputError, match="stride must be an integer"):
        clf(words(100), stride=stride)


def test_stride_below_the_room_works(clf):
    assert clf(words(100), stride=29, max_windows=100).metadata["windows"] == count_windows(100, 30, 29)


@pytest.mark.parametrize("top_k", [0, -1, "3", 1.5])
def test_bad_top_k_refused_before_the_model_runs(clf, monkeypatch, top_k):
    _no_forward(clf, monkeypatch)
    with pytest.raises(InvalidInputError, match="top_k must be an integer >= 1 or None"):
        clf("fine", top_k=top_k)


def test_fill_mask_refuses_windows_and_bad_top_k(tmp_path):
    from transformers import BertConfig, BertForMaskedLM

    tokenizer = make_wordpiece_tokenizer(tmp_path)
    BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                               intermediate_size=37, max_position_embeddings=32)).save_pretrained(tmp_path)
    fill = hub.load("fill-mask", model=str(tmp_path), device="cpu")
    # a window without the mask has nothing to fill; only the first window was ever read
    with pytest.raises(InvalidInputError, match="fill-mask cannot read a long text window by window"):
        fill(words(60) + " [MASK]", long_inputs="window")
    with pytest.raises(InvalidInputError, match="its \\[MASK\\] beyond the model's 32 tokens"):
        fill(words(60) + " [MASK]", long_inputs="truncate")
    with pytest.raises(InvalidInputError, match="top_k must be an integer >= 1"):
        fill("the [MASK]", top_k=0)
    assert len(fill("the [MASK]", top_k=2)) == 2


@pytest.mark.parametrize("options, match", [
    ({"seed": "a"}, "seed must be an integer >= 0"),
    ({"seed": -1}, "seed must be an integer >= 0"),
    ({"do_sample": True, "temperature": float("nan")}, "temperature must be a finite number > 0"),
    ({"temperature": "1"}, "temperature must be a finite number > 0"),
    ({"top_k": 1.5}, "top_k must be an integer >= 0"),
    ({"top_k": "3"}, "top_k must be an integer >= 0"),
    ({"top_k": -1}, "top_k must be an integer >= 0"),
    ({"top_p": float("nan")}, "top_p must be a finite number > 0 and <= 1"),
    ({"repetition_penalty": float("inf")}, "repetition_penalty must be a finite number > 0"),
    ({"max_new_tokens": -1}, "max_new_tokens must be an integer >= 1"),
    ({"max_new_tokens": 2.0}, "max_new_tokens must be an integer >= 1"),
    ({"do_sample": "yes"}, "do_sample must be True or False"),
    ({"return_full_text": 0}, "return_full_text must be True or False"),
    ({"stop": 5}, "stop must be a string or a list of strings"),
    ({"batch_size": 0}, "batch_size must be an integer >= 1"),
])
def test_generation_parameters_checked(gpt, options, match):
    with pytest.raises(InvalidInputError, match=match):
        gpt("the film", **options)
    with pytest.raises(InvalidInputError, match=match):  # the same checks for streaming
        "".join(gpt.stream("the film", **options)) if "batch_size" not in options else gpt(["a"], **options)


def test_generation_with_good_parameters_and_a_progress_bar(gpt, capsys):
    out = gpt(["the film", "a tea"], max_new_tokens=3, do_sample=True, seed=1, top_k=5, batch_size=1,
              progress=True)
    assert len(out) == 2 and all(o["generated_text"] for o in out)
    assert "text-generate" in capsys.readouterr().err
    again = gpt(["the film", "a tea"], max_new_tokens=3, do_sample=True, seed=1, top_k=5, batch_size=1)
    assert again == out


def test_tokenizer_that_does_not_belong_to_the_model_is_a_hub_error(tmp_path):
    """A folder whose tokenizer is larger than the model's embeddings (a tokenizer saved
    from another model) gives ids past the embedding table: torch's bare IndexError from
    deep inside the lookup, before; now a HubError naming the input, the id and the fix."""
    from transformers import BertConfig, BertForSequenceClassification

    tokenizer = make_wordpiece_tokenizer(tmp_path)
    torch.manual_seed(0)
    small = BertConfig(vocab_size=40, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                       intermediate_size=37, max_position_embeddings=32, num_labels=2)
    BertForSequenceClassification(small).save_pretrained(tmp_path)
    pipe = hub.load("text-classify", model=str(tmp_path), device="cpu")
    assert pipe(WORDS[0])["label"]  # ids inside the table still work
    high = tokenizer.convert_ids_to_tokens(len(tokenizer) - 1)
    with pytest.raises(InvalidInputError, match=r"input 1 gives token id \d+ .*embeddings have 40 rows.*does not "
                                                r"belong to this model"):
        pipe([WORDS[0], f"{WORDS[0]} {high}"])
