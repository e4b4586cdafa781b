"""Self-supervised text pretraining: corpora, packing, masking, tokenizers, pretrain, hub.create.

Offline and fast: an inline corpus, tokenizers trained on it, models of a few thousand
parameters.
"""

from __future__ import annotations

import json
import math
import random

import pytest
import torch

import hub
from hub.errors import ConfigError, DataError, HubError, UnknownNameError
from hub_text.pretrain import (
    CausalLMCollator,
    LanguageModelForTraining,
    MaskedLMCollator,
    lm_metrics,
    pack_causal,
    pack_masked,
    read_texts,
    split_documents,
    tokenize_documents,
    train_tokenizer,
)


def _corpus(n: int = 240, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    nouns = "cat dog bird fox horse teacher farmer child robot poet".split()
    adjectives = "red quick lazy old young happy quiet clever small tall".split()
    verbs = "sees chases likes helps follows greets finds watches".split()
    docs = []
    for _ in range(n):
        sentences = [f"the {rng.choice(adjectives)} {rng.choice(nouns)} {rng.choice(verbs)} the "
                     f"{rng.choice(adjectives)} {rng.choice(nouns)}." for _ in range(rng.randint(1, 4))]
        docs.append(" ".join(sentences).capitalize())
    return docs


CORPUS = _corpus()
TINY = {"num_layers": 2, "hidden_size": 32, "num_heads": 2, "max_positions": 64, "dropout": 0.0,
        "attention_dropout": 0.0}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: one thread is fastest


@pytest.fixture(scope="module")
def bpe():
    return train_tokenizer(CORPUS, "bpe", vocab_size=320)


@pytest.fixture(scope="module")
def wordpiece():
    return train_tokenizer(CORPUS, "wordpiece", vocab_size=150)


# -- reading and splitting ----------------------------------------------------------------
def test_read_texts_rules(tmp_path):
    txt = tmp_path / "a.txt"
    txt.write_text("first doc, line one\nline two\n\n\n   \nsecond doc\n\nthird\n", encoding="utf-8")
    assert read_texts(txt) == ["first doc, line one\nline two", "second doc", "third"]
    assert read_texts(txt, documents="line") == ["first doc, line one", "line two", "second doc", "third"]
    jsonl = tmp_path / "sub" / "b.jsonl"
    jsonl.parent.mkdir()
    jsonl.write_text('{"text": "alpha"}\n\n{"text": ""}\n{"body": "beta", "text": "gamma"}\n', encoding="utf-8")
    assert read_texts(jsonl) == ["alpha", "gamma"]
    other = tmp_path / "other.jsonl"
    other.write_text('{"body": "beta"}\n', encoding="utf-8")
    assert read_texts(other, text_field="body") == ["beta"]
    other.unlink()
    (tmp_path / ".hidden.txt").write_text("secret", encoding="utf-8")
    (tmp_path / "notes.md").write_text("not text data", encoding="utf-8")
    (tmp_path / "c.json").write_text(json.dumps(["delta", {"text": "epsilon"}]), encoding="utf-8")
    assert read_texts(tmp_path) == ["first doc, line one\nline two", "second doc", "third", "delta", "epsilon",
                                    "alpha", "gamma"]
    assert read_texts(["x", "  ", {"text": "y"}]) == ["x", "y"]


def test_bad_text_sources_raise_data_errors_naming_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n\n{"text": "broken"\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.jsonl, line 3: not valid JSON"):
        read_texts(bad)
    bad.write_text('{"text": "fine"}\n{"content": "x"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.jsonl, line 2: no 'text' field"):
        read_texts(bad)
    bad.write_text('{"text": 3}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"line 1: field 'text' must be a string"):
        read_texts(bad)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("ok\nline two caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin\.txt, line 2, column [0-9]+: byte 0x[0-9a-f]{2} is not UTF-8"):
        read_texts(latin)
    with pytest.raises(DataError, match="item 1 is a int"):
        read_texts(["fine", 7])
    with pytest.raises(DataError, match="does not exist"):
        read_texts(tmp_path / "missing.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no"):
        read_texts(tmp_path / "empty")
    with pytest.raises(DataError, match="holds no text"):
        read_texts(["", "  "])


def test_validation_split_is_by_document_and_seeded():
    train, val = split_documents(CORPUS, 0.1, seed=0)
    assert len(val) == round(len(CORPUS) * 0.1) and len(train) + len(val) == len(CORPUS)
    assert sorted(train + val) == sorted(CORPUS)
    assert split_documents(CORPUS, 0.1, seed=0) == (train, val)
    assert split_documents(CORPUS, 0.1, seed=1)[1] != val
    assert split_documents(CORPUS, 0.0) == (CORPUS, [])
    with pytest.raises(ConfigError, match="val_fraction"):
        split_documents(CORPUS, 1.0)


# -- packing and masking -------------------------------------------------------------------
def test_causal_packing_is_exact(bpe):
    eos = bpe.eos_token_id
    ids = tokenize_documents(bpe, CORPUS)
    blocks = pack_causal(ids, 32, eos)
    stream = [token for doc in ids for token in [*doc, eos]]
    assert blocks.shape == (len(stream) // 32, 32)
    assert blocks.flatten().tolist() == stream[:blocks.numel()]  # no padding, nothing reordered
    assert stream.count(eos) == len(CORPUS) and all(eos not in doc for doc in ids)
    batch = CausalLMCollator()([{"input_ids": row} for row in blocks[:4]])
    assert set(batch) == {"input_ids", "labels"} and torch.equal(batch["labels"], batch["input_ids"])


def test_masked_packing_wraps_blocks_in_cls_and_sep(wordpiece):
    cls, sep = wordpiece.cls_token_id, wordpiece.sep_token_id
    ids = tokenize_documents(wordpiece, CORPUS)
    blocks = pack_masked(ids, 16, cls, sep)
    stream = [token for doc in ids for token in [*doc, sep]]
    assert (blocks[:, 0] == cls).all() and (blocks[:, -1] == sep).all()
    assert blocks[:, 1:-1].flatten().tolist() == stream[:len(blocks) * 14]


def test_masking_follows_the_bert_recipe_and_is_seeded(wordpiece):
    blocks = pack_masked(tokenize_documents(wordpiece, CORPUS * 10), 64, wordpiece.cls_token_id,
                         wordpiece.sep_token_id)
    assert blocks.numel() > 40_000
    inputs, labels = MaskedLMCollator.for_tokenizer(wordpiece, seed=0).mask(blocks)
    special = torch.isin(blocks, torch.tensor(wordpiece.all_special_ids))
    chosen = labels != -100
    assert special.any() and not (chosen & special).any()  # specials are never masked
    assert torch.equal(inputs[~chosen], blocks[~chosen]) and torch.equal(labels[chosen], blocks[chosen])
    assert chosen.sum() / (~special).sum() == pytest.approx(0.15, abs=0.01)
    picked, original = inputs[chosen], blocks[chosen]
    as_mask = (picked == wordpiece.mask_token_id).float().mean().item()
    unchanged = (picked == original).float().mean().item()
    assert as_mask == pytest.approx(0.8, abs=0.02)
    assert unchanged == pytest.approx(0.1, abs=0.02)
    assert 1 - as_mask - unchanged == pytest.approx(0.1, abs=0.02)
    replaced = picked[(picked != wordpiece.mask_token_id) & (picked != original)]
    assert not torch.isin(replaced, torch.tensor(wordpiece.all_special_ids)).any()
    # reproducible for a seed, different for another; the collator draws anew every batch
    again_inputs, again_labels = MaskedLMCollator.for_tokenizer(wordpiece, seed=0).mask(blocks)
    assert torch.equal(again_inputs, inputs) and torch.equal(again_labels, labels)
    assert not torch.equal(MaskedLMCollator.for_tokenizer(wordpiece, seed=1).mask(blocks)[1], labels)
    collate = MaskedLMCollator.for_tokenizer(wordpiece, seed=0)
    features = [{"input_ids": row} for row in blocks[:8]]
    assert not torch.equal(collate(features)["labels"], collate(features)["labels"])
    fixed = {"input_ids": inputs[0], "labels": labels[0]}  # pre-masked validation rows pass through
    assert torch.equal(collate([fixed])["labels"][0], labels[0])


def test_trained_tokenizers_have_the_right_special_tokens(bpe, wordpiece, tmp_path):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    assert isinstance(bpe, PreTrainedTokenizerFast) and isinstance(wordpiece, PreTrainedTokenizerFast)
    assert bpe.eos_token == bpe.bos_token == bpe.pad_token == "<|endoftext|>"
    assert len(bpe) == 320 and bpe.all_special_ids == [bpe.eos_token_id]
    text = "Tabs\tand ünïcödé: never unknown!"
    assert bpe(text)["input_ids"] == bpe(text, add_special_tokens=False)["input_ids"]
    assert bpe.decode(bpe(text)["input_ids"]) == text  # byte level: exact round trip
    assert [wordpiece.convert_ids_to_tokens(i) for i in range(5)] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    ids = wordpiece("The Quick Fox")["input_ids"]
    assert ids[0] == wordpiece.cls_token_id and ids[-1] == wordpiece.sep_token_id
    assert wordpiece.decode(ids, skip_special_tokens=True) == "the quick fox"
    pair = wordpiece("the cat", "the dog")
    assert pair["input_ids"].count(wordpiece.sep_token_id) == 2 and pair["token_type_ids"][-1] == 1
    wordpiece.save_pretrained(str(tmp_path))
    reloaded = AutoTokenizer.from_pretrained(str(tmp_path))
    assert reloaded("The Quick Fox")["input_ids"] == ids and reloaded.mask_token == "[MASK]"
    with pytest.raises(ConfigError, match="kind"):
        train_tokenizer(CORPUS, "unigram")


# -- pretraining from scratch ----------------------------------------------------------------
def _eval_loss(pipe, texts, block_size, causal):
    """The per-token loss of ``pipe.model`` on texts packed as pretraining packs them."""
    if causal:
        blocks = pack_causal(tokenize_documents(pipe.tokenizer, texts), block_size, pipe.tokenizer.eos_token_id)
        labels = blocks
    else:
        blocks, labels = MaskedLMCollator.for_tokenizer(pipe.tokenizer, seed=1).mask(pack_masked(
            tokenize_documents(pipe.tokenizer, texts), block_size, pipe.tokenizer.cls_token_id,
            pipe.tokenizer.sep_token_id))
    wrapper = LanguageModelForTraining(pipe.model, causal=causal).eval()
    with torch.no_grad():
        out = wrapper(input_ids=blocks, labels=labels)
    return lm_metrics(out["logits"], labels)["loss"]


def test_pretrain_causal_lm_from_scratch_and_reload(bpe, tmp_path):
    pipe = hub.create("text-generate", config=TINY, tokenizer=bpe, device="cpu", seed=0)
    assert pipe.model.config["vocab_size"] == len(bpe) and pipe.model.config["eos_token_id"] == bpe.eos_token_id
    _, val = split_documents(CORPUS, 0.1, seed=0)
    before = _eval_loss(pipe, val, 32, causal=True)
    result = pipe.pretrain(CORPUS, block_size=32, val_fraction=0.1, epochs=3, batch_size=16, learning_rate=3e-3,
                           eval_every=4, progress=False, output_dir=str(tmp_path / "run"))
    losses = [r["eval_loss"] for r in result.history]
    assert len(losses) >= 5 and losses[-1] < losses[0] < before and losses[-1] < before - 2.0
    for record in result.history:
        assert record["eval_perplexity"] == pytest.approx(math.exp(record["eval_loss"]))
    assert result.best_metric == min(losses)
    # the pipeline holds the best evaluation's weights
    assert _eval_loss(pipe, val, 32, causal=True) == pytest.approx(result.best_metric, abs=1e-5)
    assert (tmp_path / "run" / "best" / "model.safetensors").is_file()
    assert (tmp_path / "run" / "metrics.jsonl").is_file()

    saved = pipe.save(tmp_path / "gpt")
    again = hub.load("text-generate", model=str(saved), device="cpu")
    ids = torch.tensor([bpe("The quick cat sees")["input_ids"]])
    with torch.no_grad():
        assert torch.equal(again.model(ids)["logits"], pipe.model(ids)["logits"])
    assert again("The quick", max_new_tokens=12) == pipe("The quick", max_new_tokens=12)


def test_pretrain_masked_lm_from_scratch_and_reload(wordpiece, tmp_path):
    pipe = hub.create("fill-mask", config=TINY, tokenizer=wordpiece, device="cpu", seed=0)
    assert pipe.model.config["pad_token_id"] == wordpiece.pad_token_id
    _, val = split_documents(CORPUS, 0.1, seed=0)
    before = _eval_loss(pipe, val, 32, causal=False)
    result = pipe.pretrain(CORPUS, block_size=32, val_fraction=0.1, epochs=4, batch_size=16, learning_rate=3e-3,
                           progress=False)
    losses = [r["eval_loss"] for r in result.history]
    assert len(losses) == 4 and losses[-1] < losses[0] < before and min(losses) < before - 1.0
    assert result.history[-1]["data_epochs"] == pytest.approx(4.0)
    assert pipe.metadata["metrics"]["eval_loss"] == pytest.approx(result.best_metric, abs=1e-4)

    saved = pipe.save(tmp_path / "bert")
    again = hub.load("fill-mask", model=str(saved), device="cpu")
    text = "the quick [MASK] sees the old dog."
    assert again(text, top_k=3) == pipe(text, top_k=3)


def test_pretraining_is_reproducible(wordpiece):
    def run():
        pipe = hub.create("fill-mask", config=TINY, tokenizer=wordpiece, device="cpu", seed=3)
        return pipe.pretrain(CORPUS[:80], block_size=16, max_steps=6, eval_every=3, batch_size=8,
                             progress=False, seed=5).history

    first, second = run(), run()
    assert [r["eval_loss"] for r in first] == [r["eval_loss"] for r in second]
    assert [r["train_loss"] for r in first] == [r["train_loss"] for r in second]


def test_pretrain_reads_files_and_reports_bad_rows(bpe, tmp_path):
    pipe = hub.create("text-generate", config=TINY, tokenizer=bpe, device="cpu", seed=0)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in CORPUS[:60]) + "{oops\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"corpus\.jsonl, line {60 + 1}: not valid JSON"):
        pipe.pretrain(corpus, block_size=16, max_steps=1, progress=False)
    with pytest.raises(ConfigError, match="exceeds the model's 64 positions"):
        pipe.pretrain(CORPUS, block_size=128, max_steps=1, progress=False)
    with pytest.raises(ConfigError, match="Unknown training argument 'epoch'"):
        pipe.pretrain(CORPUS, block_size=16, epoch=1, progress=False)
    with pytest.raises(DataError, match="validation text"):
        pipe.pretrain(CORPUS[:20], block_size=64, val_fraction=0.05, max_steps=1, progress=False)
    with pytest.raises(ConfigError, match="mlm_probability"):
        pipe.pretrain(CORPUS, block_size=16, mlm_probability=0.2, max_steps=1, progress=False)
    txt = tmp_path / "corpus.txt"
    txt.write_text("\n\n".join(CORPUS[:60]), encoding="utf-8")
    result = pipe.pretrain(txt, block_size=16, max_steps=2, batch_size=4, progress=False)
    assert result.steps == 2 and pipe.metadata["pretrain"]["eval_blocks"] > 0


# -- hub.create ----------------------------------------------------------------------------
def test_hub_create_errors_and_tokenizer_folder(bpe, wordpiece, tmp_path):
    with pytest.raises(UnknownNameError, match="Did you mean: 'text-generate'"):
        hub.create("text-generat", tokenizer=bpe)
    with pytest.raises(HubError, match=r"'text-classify' cannot be created from scratch.*text-generate"):
        hub.create("text-classify", tokenizer=bpe)
    with pytest.raises(ConfigError, match="needs tokenizer="):
        hub.create("text-generate")
    with pytest.raises(ConfigError, match="Unknown causal-lm config key 'num_layer'"):
        hub.create("text-generate", config={"num_layer": 2}, tokenizer=bpe)
    with pytest.raises(ConfigError, match="vocab_size=100 differs"):
        hub.create("text-generate", config={"vocab_size": 100}, tokenizer=bpe)
    with pytest.raises(ConfigError, match="divisible"):
        hub.create("text-generate", config={"hidden_size": 30, "num_heads": 4}, tokenizer=bpe)
    with pytest.raises(ConfigError, match=r"mask token \(\[MASK\]\)"):
        hub.create("fill-mask", config=TINY, tokenizer=bpe)
    bpe.save_pretrained(str(tmp_path / "tok"))
    pipe = hub.create("text-generate", config={**TINY, "backbone": {"intermediate_size": 48}},
                      tokenizer=str(tmp_path / "tok"), device="cpu")
    assert pipe.model.config["backbone"]["intermediate_size"] == 48 and len(pipe.tokenizer) == len(bpe)
    assert pipe.metadata["source"] == "scratch"
    first = hub.create("fill-mask", config=TINY, tokenizer=wordpiece, device="cpu", seed=7)
    second = hub.create("fill-mask", config=TINY, tokenizer=wordpiece, device="cpu", seed=7)
    assert all(torch.equal(a, b) for a, b in zip(first.model.state_dict().values(),
                                                  second.model.state_dict().values()))
