"""Marian with separate source and target vocabularies (``share_encoder_decoder_embeddings=
False``, MarianTokenizer ``separate_vocabs=True``): the converted model has two token tables
(the head tied to the target's), and its logits, generated tokens and translations equal
transformers' on the same weights."""

from __future__ import annotations

import pytest
import torch

import hub
from hub.modeling import load_model
from hub_text.models.seq2seq_generation import generate_seq2seq, generation_config
from tests.text.seq2seq_checkpoints import make_marian_separate

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXTS = ["the quick brown fox", "to be or not to be, that is the question", "a single step"]
SETTINGS = [
    {"max_new_tokens": 10},
    {"max_new_tokens": 12, "num_beams": 4, "no_repeat_ngram_size": 2, "length_penalty": 2.0},
    {"max_new_tokens": 10, "do_sample": True, "top_k": 0, "num_return_sequences": 2},
]


@pytest.fixture(scope="module")
def marian(tmp_path_factory):
    pytest.importorskip("sentencepiece")  # MarianTokenizer's own requirement
    folder = tmp_path_factory.mktemp("marian-separate")
    model, tokenizer = make_marian_separate(folder)
    return folder, model, tokenizer


def test_two_tables_and_logits_equal_transformers(marian):
    folder, reference, tokenizer = marian
    ours = load_model(folder).module
    source, target = len(tokenizer.encoder), len(tokenizer.target_encoder)
    assert source != target
    assert ours.shared.weight.shape[0] == source and ours.target_tokens.weight.shape[0] == target
    assert torch.equal(ours.shared.weight, reference.model.encoder.embed_tokens.weight)
    assert torch.equal(ours.target_tokens.weight, reference.model.decoder.embed_tokens.weight)
    enc = tokenizer(TEXTS, return_tensors="pt", padding=True)
    assert int(enc["input_ids"].max()) >= target  # source ids past the target table: the tables really differ
    targets = torch.randint(3, target, (3, 6), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = reference(**enc, decoder_input_ids=targets).logits
        got = ours(enc["input_ids"], enc["attention_mask"], decoder_input_ids=targets)["logits"]
    assert got.shape[-1] == target and (got - want).abs().max().item() <= 1e-4


@pytest.mark.parametrize("settings", SETTINGS, ids=["greedy", "beam4-ngram2-lp2", "sample-n2"])
def test_translate_equals_generate_and_decode(marian, settings):
    folder, reference, tokenizer = marian
    enc = tokenizer(TEXTS, return_tensors="pt", padding=True)
    torch.manual_seed(0)
    out = reference.generate(**enc, **settings)
    rows = [r[:r.index(0) + 1] if 0 in r else r for r in out[:, 1:].tolist()]
    ours = load_model(folder).module
    torch.manual_seed(0)
    assert generate_seq2seq(ours, enc["input_ids"], enc["attention_mask"], generation_config(ours, dict(settings)),
                            eos_token_id=0, pad_token_id=2) == rows
    pipe = hub.load("translate", model=str(folder), device="cpu")
    n = settings.get("num_return_sequences", 1)
    for index, text in enumerate(TEXTS):
        one = tokenizer([text], return_tensors="pt")
        torch.manual_seed(index)
        want = tokenizer.batch_decode(reference.generate(**one, **settings), skip_special_tokens=True)
        got = pipe(text, seed=index, **settings) if settings.get("do_sample") else pipe(text, **settings)
        assert (got if n > 1 else [got]) == [{"translation_text": w} for w in want]


def test_save_reload_and_fine_tune(marian, tmp_path):
    """The two tables survive save / reload; fine_tune's targets are encoded with the target
    vocabulary (text_target) and train."""
    folder, _, tokenizer = marian
    pipe = hub.load("translate", model=str(folder), device="cpu")
    before = pipe(TEXTS, max_new_tokens=8, num_beams=2)
    again = hub.load("translate", model=str(pipe.save(tmp_path / "saved")), device="cpu")
    assert again(TEXTS, max_new_tokens=8, num_beams=2) == before
    pairs = [(t, t.upper()) for t in TEXTS]
    result = again.fine_tune(pairs, max_steps=2, batch_size=3, output_dir=str(tmp_path / "run"),
                             save_checkpoints=False, progress=False)
    assert result.history


def test_a_tokenizer_that_needs_sentencepiece_names_the_extra(marian, monkeypatch):
    """Without sentencepiece, transformers' MarianTokenizer cannot load: a ModelLoadError
    naming the extra, not transformers' ImportError."""
    import transformers

    from hub.errors import ModelLoadError
    from hub_text.tokenizer import load_tokenizer

    def missing(*args, **kwargs):
        raise ImportError("MarianTokenizer requires the SentencePiece library but it was not found")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", missing)
    with pytest.raises(ModelLoadError, match=r"needs SentencePiece; install it with pip install 'hub\[sentencepiece\]'"):
        load_tokenizer(marian[0])
