"""token-classify against transformers' token-classification pipeline; long inputs; bad
input; fine-tuning on a small word-level NER set."""

from __future__ import annotations

import itertools
import json
import logging
import random
import warnings

import pytest
import torch

import hub
from hub.errors import DataError, InputTypeError, InvalidInputError, ModelLoadError
from tests.text.checkpoints import make_bert_classifier, make_wordpiece_tokenizer

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
STRATEGIES = ("none", "first", "average", "max")
COMPARED = (*STRATEGIES, "simple")  # "simple": tokens grouped without merging them into words
TEXTS = ["alice went to the coffee box in paris", "bob and very fresh tea, not stale!",
         "Xyzzy likes the GREAT film.", "a"]


def _perturb(model) -> None:
    """Make predictions vary between labels (a random head predicts one label everywhere)."""
    with torch.no_grad():
        model.classifier.weight.mul_(30)
        model.classifier.bias.add_(torch.randn_like(model.classifier.bias))


def _config_kwargs(vocab_size: int, max_positions: int) -> dict:
    return dict(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                intermediate_size=37, max_position_embeddings=max_positions,
                id2label=dict(enumerate(LABELS)), label2id={label: i for i, label in enumerate(LABELS)})


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: one thread is fastest


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory):
    from transformers import BertConfig, BertForTokenClassification

    folder = tmp_path_factory.mktemp("bert-ner")
    tokenizer = make_wordpiece_tokenizer(folder)
    torch.manual_seed(0)
    model = BertForTokenClassification(BertConfig(**_config_kwargs(len(tokenizer), 64))).eval()
    _perturb(model)
    model.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def pipe(bert_folder):
    return hub.load("token-classify", model=str(bert_folder), device="cpu")


def _reference(folder):
    from transformers import pipeline

    return pipeline("token-classification", model=str(folder), device="cpu")


def _kind(result: dict) -> str:
    return result["entity"] if "entity" in result else result["entity_group"]


def _assert_same(expected: list, got: list, text: str, strategy: str, same_word) -> None:
    assert [(_kind(e), e["start"], e["end"]) for e in expected] == [(_kind(g), g["start"], g["end"]) for g in got]
    assert [float(e["score"]) for e in expected] == pytest.approx([g["score"] for g in got], abs=1e-4)
    for e, g in zip(expected, got):
        if strategy == "none":  # the token as the tokenizer spells it, and its position
            assert (g["index"], g["word"]) == (e["index"], e["word"])
            assert list(g) == ["entity", "score", "index", "word", "start", "end"]
        else:  # ours is the text span itself; transformers decodes the tokens
            assert g["word"] == text[g["start"]:g["end"]]
            assert same_word(e["word"], g["word"]), (e["word"], g["word"])
            assert list(g) == ["entity_group", "score", "word", "start", "end"]


def _assert_close(a: list, b: list, tolerance: float = 1e-5) -> None:
    """Equal results up to float noise in the scores (padding changes the kernels)."""
    assert [{k: v for k, v in r.items() if k != "score"} for r in a] == \
        [{k: v for k, v in r.items() if k != "score"} for r in b]
    assert [r["score"] for r in a] == pytest.approx([r["score"] for r in b], abs=tolerance)


def test_equals_transformers_pipeline_for_bert(bert_folder, pipe):
    reference = _reference(bert_folder)
    grouped = multi_token_words = 0
    for strategy in COMPARED:
        got_all = pipe(TEXTS, aggregation_strategy=strategy, batch_size=3)  # batched with padding
        for text, got in zip(TEXTS, got_all):
            expected = reference(text, aggregation_strategy=strategy)
            # the uncased tokenizer lowercases, and decoding puts spaces between pieces
            _assert_same(expected, got, text, strategy,
                         lambda e, g: e.replace(" ", "").replace("##", "") == g.lower().replace(" ", ""))
            _assert_close(got, pipe(text, aggregation_strategy=strategy))  # one at a time: the same
            grouped += sum(" " in g["word"] for g in got if strategy not in ("none", "simple"))
            multi_token_words += sum(len(pipe.tokenizer.tokenize(g["word"])) > 1 for g in got
                                     if strategy not in ("none", "simple"))
    assert grouped and multi_token_words  # the texts exercise grouping and sub-token merging
    assert pipe(TEXTS[0]) == pipe(TEXTS[0], aggregation_strategy="first")  # the default
    # "first", "average" and "max" disagree somewhere on these texts
    assert len({json.dumps(pipe(TEXTS, aggregation_strategy=s), sort_keys=True) for s in STRATEGIES[1:]}) == 3


def test_equals_transformers_pipeline_for_roberta(tmp_path):
    pytest.importorskip("tokenizers")
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaForTokenClassification, RobertaTokenizer

    corpus = ["alice and bob went to paris and london", "the tea was good, the coffee was bad.",
              "Alice visited New York"] * 5
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=320, min_frequency=1, show_progress=False,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m)
              for m in json.loads(bpe.to_str())["model"]["merges"]]
    tokenizer = RobertaTokenizer(vocab=bpe.get_vocab(), merges=merges)
    tokenizer.save_pretrained(str(tmp_path))
    torch.manual_seed(0)
    model = RobertaForTokenClassification(RobertaConfig(**_config_kwargs(len(tokenizer), 66), pad_token_id=1)).eval()
    _perturb(model)
    model.save_pretrained(str(tmp_path))

    reference = _reference(tmp_path)
    ours = hub.load("ner", model=str(tmp_path), device="cpu")
    assert ours.metadata["converted_from"] == "transformers:roberta"
    texts = ["alice went to paris and london", "Alice visited New York, the coffee was bad.", "bob and tea"]
    compared = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # transformers: "Tokenizer does not support real words"
        for strategy in COMPARED:
            for text, got in zip(texts, ours(texts, aggregation_strategy=strategy)):
                expected = reference(text, aggregation_strategy=strategy)
                # transformers' decoded words keep the space before them
                _assert_same(expected, got, text, strategy, lambda e, g: e.strip() == g)
                compared += len(got)
    assert compared > 20


def test_results_carry_metadata_and_labels(pipe):
    result = pipe("alice went to paris")
    assert isinstance(result, list) and result.metadata == {"num_tokens": 18, "truncated": False, "windows": 1}
    assert pipe.labels == LABELS and pipe.metadata["labels"] == LABELS
    assert pipe.metadata["converted_from"] == "transformers:bert"
    everything = pipe("alice went to paris", ignore_labels=[])
    assert len(everything) >= len(result)
    assert {g["entity_group"] for g in everything} - {"PER", "LOC"} <= {"O"}
    assert pipe("alice went to paris", aggregation_strategy="FIRST") == result  # case-insensitive


def test_long_inputs_truncate_by_default_window_or_error(pipe, caplog):
    text = " ".join(["alice went to the coffee box in paris"] * 6)  # 6 * 21 tokens > 64
    with caplog.at_level(logging.WARNING):
        truncated = pipe(text, aggregation_strategy="none", ignore_labels=[])
    assert "truncated" in caplog.text
    assert truncated.metadata == {"num_tokens": 128, "truncated": True, "windows": 1}
    assert len(truncated) == 62 and truncated[-1]["index"] == 62  # [CLS] + 62 tokens + [SEP]
    windowed = pipe(text, aggregation_strategy="none", ignore_labels=[], long_inputs="window", stride=16)
    assert windowed.metadata["windows"] > 1 and not windowed.metadata["truncated"]
    assert [t["index"] for t in windowed] == list(range(1, 127))  # every token tagged once
    assert windowed[-1]["end"] == len(text)
    _assert_close(windowed[:20], truncated[:20])  # the first window sees the head as truncation does
    entities = pipe(text, long_inputs="window")
    assert entities and entities[-1]["end"] <= len(text)
    with pytest.raises(InvalidInputError, match="input 1 has 128 tokens, more than the model's 64"):
        pipe(["tea", text], long_inputs="error")
    with pytest.raises(InvalidInputError, match="stride must be an integer"):
        pipe(text, long_inputs="window", stride=62)
    short = pipe("alice went to paris", long_inputs="window")
    assert short == pipe("alice went to paris") and short.metadata["windows"] == 1


def test_bad_input(pipe, tmp_path):
    with pytest.raises(InvalidInputError, match="input 1 is an empty string"):
        pipe(["tea", "  "])
    assert pipe([]) == []  # issue 13: as transformers' pipeline (was an "empty list" error)
    with pytest.raises(InputTypeError, match="input 0 is a int"):
        pipe(3)
    with pytest.raises(InputTypeError, match="input 1 is a NoneType"):
        pipe(["tea", None])
    with pytest.raises(InvalidInputError, match="aggregation_strategy must be one of 'none', 'simple', 'first'"):
        pipe("tea", aggregation_strategy="longest")
    with pytest.raises(InvalidInputError, match="ignore_labels must be a list"):
        pipe("tea", ignore_labels="O")
    with pytest.raises(InvalidInputError, match="long_inputs must be one of"):
        pipe("tea", long_inputs="cut")
    make_bert_classifier(tmp_path / "clf")
    with pytest.raises(ModelLoadError, match="needs a token classifier"):
        hub.load("ner", model=str(tmp_path / "clf"))


# -- fine-tuning ------------------------------------------------------------------------
PEOPLE = [["alice"], ["bob"], ["carol"], ["dave"], ["emma"], ["frank"], ["mary", "ann"], ["john", "smith"]]
PLACES = [["paris"], ["london"], ["berlin"], ["oslo"], ["new", "york"], ["san", "diego"]]
TEMPLATES = ["{P} love the tea in {L}", "{P} and {P} hate the coffee", "the food in {L} was great",
             "{P} was very fresh", "{L} coffee is really tasty", "it was {P} but not {P}",
             "{P} is in {L}", "a box from {L} for {P}"]


def _sentence(template: str, rng: random.Random) -> dict:
    tokens, tags = [], []
    for word in template.split():
        if word in ("{P}", "{L}"):
            kind, choices = ("PER", PEOPLE) if word == "{P}" else ("LOC", PLACES)
            name = rng.choice(choices)
            tokens += name
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(name) - 1)
        else:
            tokens.append(word)
            tags.append("O")
    return {"tokens": tokens, "tags": tags}


def _ner_data(n: int, seed: int, exclude=()) -> list[dict]:
    rng, seen, rows = random.Random(seed), {" ".join(r["tokens"]) for r in exclude}, []
    for template in itertools.cycle(TEMPLATES):
        row = _sentence(template, rng)
        if " ".join(row["tokens"]) not in seen:
            seen.add(" ".join(row["tokens"]))
            rows.append(row)
        if len(rows) == n:
            return rows


def test_fine_tune_learns_word_level_ner_and_reloads(tmp_path, caplog):
    from transformers import BertConfig, BertModel

    folder = tmp_path / "encoder"
    tokenizer = make_wordpiece_tokenizer(folder)
    torch.manual_seed(0)
    BertModel(BertConfig(**{**_config_kwargs(len(tokenizer), 64), "hidden_size": 48, "num_attention_heads": 4}),
              add_pooling_layer=False).save_pretrained(str(folder))
    with caplog.at_level(logging.WARNING):
        pipe = hub.load("token-classify", model=str(folder), device="cpu")
    assert pipe.metadata["head_initialized"] is False and pipe.labels == ["O"]
    assert "initialised at random" in caplog.text

    train = _ner_data(160, seed=0)
    held_out = _ner_data(60, seed=1, exclude=train)
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in train))
    result = pipe.fine_tune(str(path), held_out[:30], epochs=20, learning_rate=3e-3, batch_size=16,
                            metric_for_best="accuracy", warmup_ratio=0.0, progress=False, seed=0,
                            output_dir=str(tmp_path / "run"))
    assert pipe.labels == ["O", "B-LOC", "B-PER", "I-LOC", "I-PER"]  # from the data: "O", then sorted
    assert pipe.metadata["head_initialized"] is True and pipe.metadata["labels"] == pipe.labels
    assert result.best_metric > 0.9
    scores = pipe.evaluate(held_out[30:])
    assert scores["accuracy"] > 0.9 and scores["entity_f1"] > 0.8, scores
    assert scores["n"] == 30

    text = "mary ann and dave hate the coffee"
    assert text not in {" ".join(r["tokens"]) for r in train}
    entities = pipe(text)
    assert [(e["entity_group"], e["word"], e["start"]) for e in entities] == [("PER", "mary ann", 0),
                                                                             ("PER", "dave", 13)]

    again = hub.load("token-classify", model=str(pipe.save(tmp_path / "ner")), device="cpu")
    assert again.labels == pipe.labels
    for strategy in STRATEGIES:
        assert again([text, "bob was in oslo"], aggregation_strategy=strategy) == \
            pipe([text, "bob was in oslo"], aggregation_strategy=strategy)
    best = hub.load("token-classify", model=str(tmp_path / "run" / "best"), device="cpu")
    assert best(text) == entities  # the pipeline keeps the best epoch, saved there too


def test_fine_tune_rejects_bad_records(pipe):
    with pytest.raises(DataError, match="record 1: 2 words but 1 tags"):
        pipe.fine_tune([{"tokens": ["a"], "tags": ["O"]}, {"tokens": ["a", "b"], "tags": ["O"]}])
    with pytest.raises(DataError, match="must be a list of words"):
        pipe.fine_tune([{"tokens": "alice went", "tags": ["B-PER", "O"]}])
    with pytest.raises(DataError, match=r"missing field\(s\) \['tags'\]"):
        pipe.fine_tune([{"tokens": ["a"]}])
    with pytest.raises(InvalidInputError, match=r"tags \['B-ORG'\] in the data are not among"):
        pipe.fine_tune([{"tokens": ["a"], "tags": ["B-ORG"]}], labels=LABELS)
    with pytest.raises(ValueError, match="Did you mean 'learning_rate'"):
        pipe.fine_tune([{"tokens": ["a"], "tags": ["O"]}], learnig_rate=1e-3)
