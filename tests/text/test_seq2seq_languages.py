"""mBART-50-style language codes in ``translate``: ``src_lang`` is the source's prefix token
(MBart50Tokenizer's), ``tgt_lang`` the forced first target token, as transformers'
MBartForConditionalGeneration.generate(forced_bos_token_id=...) does on the same weights."""

from __future__ import annotations

import pytest
import torch

import hub
from hub.errors import InvalidInputError
from tests.text.seq2seq_checkpoints import make_mbart50

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXTS = ["the quick brown fox", "to be or not to be, that is the question", "a single step"]


@pytest.fixture(scope="module")
def mbart50(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mbart50")
    model, tokenizer = make_mbart50(folder)
    return folder, model, tokenizer


def _reference(model, tokenizer, texts, src, tgt, seed=0, **settings):
    tokenizer.src_lang = src
    enc = tokenizer(texts, return_tensors="pt", padding=True)
    torch.manual_seed(seed)
    out = model.generate(**enc, forced_bos_token_id=tokenizer.convert_tokens_to_ids(tgt), **settings)
    return out, [{"translation_text": t} for t in tokenizer.batch_decode(out, skip_special_tokens=True)]


@pytest.mark.parametrize("src, tgt, settings", [
    ("en_XX", "de_DE", {"max_new_tokens": 10}),
    ("fr_XX", "ro_RO", {"max_new_tokens": 10, "num_beams": 3}),
    ("de_DE", "zh_CN", {"max_new_tokens": 12, "num_beams": 4, "length_penalty": 2.0, "no_repeat_ngram_size": 2}),
])
def test_translate_equals_generate_with_forced_bos(mbart50, src, tgt, settings):
    folder, model, tokenizer = mbart50
    out, want = _reference(model, tokenizer, TEXTS, src, tgt, **settings)
    assert (out[:, 1] == tokenizer.convert_tokens_to_ids(tgt)).all()  # the target code comes first
    pipe = hub.load("translate", model=str(folder), device="cpu")
    results = pipe(TEXTS, src_lang=src, tgt_lang=tgt, batch_size=2, **settings)
    assert results == want
    tokenizer.src_lang = src
    assert [r.metadata["num_tokens"] for r in results] == [len(tokenizer(t)["input_ids"]) for t in TEXTS]
    assert pipe.tokenizer.src_lang == "en_XX"  # calls encode with copies; the pipeline's tokenizer is unchanged


def test_sampling_and_bare_codes_and_the_task_name(mbart50, tmp_path):
    folder, model, tokenizer = mbart50
    pipe = hub.load("translate", model=str(folder), device="cpu")
    settings = {"max_new_tokens": 10, "do_sample": True, "top_k": 0, "num_return_sequences": 2}
    _, want = _reference(model, tokenizer, TEXTS[:1], "en_XX", "de_DE", seed=4, **settings)
    assert pipe(TEXTS[0], src_lang="en_XX", tgt_lang="de_DE", seed=4, **settings) == want
    coded = pipe(TEXTS, src_lang="en_XX", tgt_lang="de_DE", max_new_tokens=8)
    assert pipe(TEXTS, src_lang="en", tgt_lang="de", max_new_tokens=8) == coded  # "de": the one code "de_*"
    named = hub.load("translation_en_to_de", model=str(folder), device="cpu")
    assert named(TEXTS, max_new_tokens=8) == coded
    again = hub.load("translate", model=str(pipe.save(tmp_path / "saved")), device="cpu")
    assert again(TEXTS, src_lang="en_XX", tgt_lang="de_DE", max_new_tokens=8) == coded


def test_language_code_errors(mbart50):
    pipe = hub.load("translate", model=str(mbart50[0]), device="cpu")
    with pytest.raises(InvalidInputError, match=r"tgt_lang='de_XX' is not a language code .* did you mean 'de_DE'"):
        pipe("hi", src_lang="en_XX", tgt_lang="de_XX")
    with pytest.raises(InvalidInputError, match=r"src_lang='english' is not a language code .* it knows 52: af_ZA"):
        pipe("hi", src_lang="english", tgt_lang="de_DE")
    with pytest.raises(InvalidInputError, match=r"give src_lang= and tgt_lang= \(e.g. 'en_XX', 'de_DE'\)"):
        pipe("hi")
    with pytest.raises(InvalidInputError, match="both src_lang and tgt_lang"):
        pipe("hi", tgt_lang="de_DE")
