"""Hugging Face ``datasets`` objects as data for fine_tune / pretrain / evaluate / hub train.

Each modality is checked the same way: training (or evaluating, or reading) from a
``datasets`` object gives exactly what the same rows as a Python list give. Everything is
offline: the datasets are built in memory or written by the test to a temporary folder.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # read by datasets when it is imported

import numpy as np
import pytest
import torch

import hub
from hub.data import read_records
from hub.data.hf_datasets import DatasetRecords, dataset_kind, resolve_splits, to_records
from hub.errors import ConfigError, DataError, MissingExtraError
from tests.text.checkpoints import make_bert_classifier

datasets = pytest.importorskip("datasets", reason="the datasets extra is not installed (pip install 'hub-sdk[datasets]')")
from datasets import Audio, ClassLabel, Dataset, DatasetDict, Features, Image, Value  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
QUIET = {"progress": False, "device": "cpu", "save_checkpoints": False, "epochs": 1, "batch_size": 4}
TEXTS = ["a wonderful film", "dull and too long", "loved every minute", "awful acting", "great fun",
         "boring plot", "superb cast", "stale and slow"]
SENTIMENT = Features({"sentence": Value("string"), "label": ClassLabel(names=["pos", "neg"])})


def sentiment(n: int = 8, split: str = "train") -> Dataset:
    return Dataset.from_dict({"sentence": TEXTS[:n], "label": [i % 2 for i in range(n)]}, features=SENTIMENT,
                             split=split)


def as_list(n: int = 8) -> list[dict]:
    return [{"text": TEXTS[i], "label": ["pos", "neg"][i % 2]} for i in range(n)]


@pytest.fixture
def classifier(tmp_path):
    make_bert_classifier(tmp_path / "ckpt", num_labels=2, max_positions=16)
    return lambda: hub.load("text-classify", model=str(tmp_path / "ckpt"), device="cpu")


def weights(pipe) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in pipe.model.state_dict().items()}


def assert_same_weights(a, b, untrained=None):
    """Equal weights, and (given the weights before training) different from those: trained."""
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    if untrained is not None:
        assert any(not torch.equal(a[k], untrained[k]) for k in a if a[k].shape == untrained[k].shape)


# -- recognition and conversion ----------------------------------------------------------
def test_recognised_without_importing_datasets():
    code = ("import sys, hub.data.hf_datasets as h\n"
            "class Dataset: pass\n"
            "Dataset.__module__ = 'datasets.arrow_dataset'\n"
            "assert h.dataset_kind(Dataset()) == 'dataset' and h.dataset_kind([]) is None\n"
            "assert 'datasets' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.getcwd())


def test_kinds_and_class_labels_become_names():
    ds = sentiment(4)
    assert dataset_kind(ds) == "dataset" and dataset_kind(DatasetDict(train=ds)) == "dict"
    assert dataset_kind(ds.to_iterable_dataset()) == "iterable"
    records = to_records(ds)
    assert isinstance(records, DatasetRecords) and records.split == "train"
    assert records == [{"sentence": t, "label": ["pos", "neg"][i % 2], "text": t} for i, t in enumerate(TEXTS[:4])]
    assert read_records(ds, fields=("text", "label"), label_fields=("label",)) == records


def test_a_bad_row_is_named_by_dataset_split_and_row():
    ds = Dataset.from_dict({"text": ["fine", ""], "label": ["a", "b"]}, split="train")
    with pytest.raises(DataError, match=r"split 'train'\), row 1: 'text' is an empty string"):
        read_records(ds, fields=("text", "label"), text_fields=("text",))
    with pytest.raises(DataError, match=r"missing field\(s\) \['review'\].*text_field="):
        read_records(ds, fields=("review",))


def test_splits_are_picked_as_transformers_users_expect():
    dd = DatasetDict(train=sentiment(6), validation=sentiment(2, "validation"), test=sentiment(3, "test"))
    train, held = resolve_splits(dd)
    assert len(train) == 6 and len(held) == 2  # eval defaults to the validation split
    train, held = resolve_splits(dd, split="test", eval_split="train")
    assert len(train) == 3 and len(held) == 6
    with pytest.raises(DataError, match=r"no split 'dev'.*\['train', 'validation', 'test'\]"):
        resolve_splits(dd, split="dev")
    with pytest.raises(ConfigError, match="split='train' selects"):
        resolve_splits(as_list(), split="train")
    with pytest.raises(DataError, match="Which split"):
        resolve_splits(DatasetDict(a=sentiment(2), b=sentiment(2)))
    streams = datasets.IterableDatasetDict(train=sentiment(6).to_iterable_dataset(),
                                           validation=sentiment(2).to_iterable_dataset())
    assert dataset_kind(streams) == "dict"
    train, held = resolve_splits(streams)
    assert len(to_records(train)) == 6 and len(to_records(held)) == 2


def test_a_stream_is_read_in_order_and_bounded(monkeypatch):
    stream = sentiment(8).to_iterable_dataset()
    assert to_records(stream) == to_records(sentiment(8))
    monkeypatch.setenv("HUB_MAX_STREAM_ROWS", "5")
    with pytest.raises(DataError, match=r"more than 5 rows.*dataset.take\(N\)"):
        to_records(stream)
    assert len(to_records(stream.take(5))) == 5


def test_columns_map_fields_and_name_missing_ones():
    records = to_records(sentiment(2), columns={"review": "sentence"})
    assert records[0]["review"] == TEXTS[0]
    with pytest.raises(DataError, match=r"'body' is not a column.*\['sentence', 'label'\]"):
        to_records(sentiment(2), columns={"text": "body"})


# -- text ---------------------------------------------------------------------------------
def test_text_classify_fine_tune_on_a_dataset_equals_the_list(classifier):
    torch.manual_seed(0)
    from_list = classifier()
    from_list.fine_tune(as_list(), labels=["pos", "neg"], seed=0, **QUIET)
    torch.manual_seed(0)
    from_dataset = classifier()
    result = from_dataset.fine_tune(sentiment(), labels=["pos", "neg"], text_field="sentence", seed=0, **QUIET)
    assert_same_weights(weights(from_list), weights(from_dataset), untrained=weights(classifier()))
    assert result.train_examples == 8
    assert from_dataset.metadata["training"]["data"] == {"dataset": None, "split": "train", "rows": 8}


def test_text_classify_dataset_dict_trains_on_train_scores_validation_and_evaluates_test(classifier, tmp_path):
    dd = DatasetDict(train=sentiment(8), validation=sentiment(2, "validation"), test=sentiment(3, "test"))
    pipe = classifier()
    result = pipe.fine_tune(dd, labels=["pos", "neg"], **QUIET)
    assert result.eval_examples == 2 and "eval_accuracy" in result.history[-1]
    assert pipe.evaluate(dd)["n"] == 3  # evaluate reads the test split
    assert pipe.evaluate(dd, split="validation")["n"] == 2
    assert pipe.evaluate(dd["test"]) == pipe.evaluate(as_list(3))
    card = (pipe.save(tmp_path / "model") / "README.md").read_text()
    assert f"Fine-tuned from `{tmp_path / 'ckpt'}`" in card and "split `train` (8 rows)" in card
    assert "split `validation` (2 rows)" in card and "| eval_accuracy |" in card


def test_text_classify_from_a_local_streaming_dataset(classifier, tmp_path):
    folder = tmp_path / "reviews"
    folder.mkdir()
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in as_list()))
    stream = datasets.load_dataset(str(folder), split="train", streaming=True, cache_dir=str(tmp_path / "cache"))
    assert dataset_kind(stream) == "iterable"
    torch.manual_seed(0)
    a = classifier()
    a.fine_tune(stream, labels=["pos", "neg"], seed=0, **QUIET)
    torch.manual_seed(0)
    b = classifier()
    b.fine_tune(as_list(), labels=["pos", "neg"], seed=0, **QUIET)
    assert_same_weights(weights(a), weights(b))


def test_token_classify_reads_lists_of_class_labels():
    from hub_text.data import read_tagged

    tags = datasets.List(ClassLabel(names=["O", "B-PER", "I-PER"]))
    ds = Dataset.from_dict({"tokens": [["Ada", "Lovelace", "wrote"]], "ner_tags": [[1, 2, 0]]},
                           features=Features({"tokens": datasets.List(Value("string")), "ner_tags": tags}))
    expected = [(["Ada", "Lovelace", "wrote"], ["B-PER", "I-PER", "O"])]
    assert read_tagged(ds, "tokens", "ner_tags") == expected
    assert read_tagged(ds) == expected  # the one list-of-ClassLabel column stands in for 'tags'


def test_text_pretraining_corpus_from_a_dataset():
    from hub_text.data import read_texts

    ds = Dataset.from_dict({"text": ["one document", "", "another one"]})
    assert read_texts(ds) == ["one document", "another one"] == read_texts(ds.to_iterable_dataset())
    body = Dataset.from_dict({"id": [1, 2], "body": ["first", "second"]})
    assert read_texts(body) == ["first", "second"]  # the one string column


def test_pretraining_on_a_dataset_dict_holds_out_its_validation_split():
    from hub_text.pretrain import train_tokenizer

    words = "the quick brown fox jumps over a lazy dog while seven red birds sing".split()
    docs = [" ".join(words[(i + j) % len(words)] for j in range(12)) for i in range(24)]
    tokenizer = train_tokenizer(docs, "bpe", vocab_size=300)
    config = {"num_layers": 1, "hidden_size": 16, "num_heads": 2, "max_positions": 32, "dropout": 0.0,
              "attention_dropout": 0.0}
    dd = DatasetDict(train=Dataset.from_dict({"text": docs[:20]}), validation=Dataset.from_dict({"text": docs[20:]}))
    runs = []
    for train, held in ((dd, None), (docs[:20], docs[20:])):
        pipe = hub.create("text-generate", config=config, tokenizer=tokenizer, seed=0)
        untrained = weights(pipe)
        result = pipe.pretrain(train, held, block_size=16, max_steps=3, batch_size=4, progress=False,
                               save_checkpoints=False)
        runs.append((weights(pipe), result.eval_examples, result.history[-1]["eval_loss"]))
    assert_same_weights(runs[0][0], runs[1][0], untrained=untrained)
    assert runs[0][1:] == runs[1][1:] and runs[0][1] > 0  # the validation split, not val_fraction of train
    assert pipe.metadata.get("base_model") is None  # made from scratch: no base model


# -- images -------------------------------------------------------------------------------
def png(value: int) -> bytes:
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.new("L", (12, 12), color=value).save(buffer, format="PNG")
    return buffer.getvalue()


def image_dataset(decode: bool = True) -> Dataset:
    values = [20, 230, 40, 210, 30, 220]
    features = Features({"img": Image(decode=decode), "label": ClassLabel(names=["dark", "light"])})
    return Dataset.from_dict({"img": [{"bytes": png(v), "path": None} for v in values],
                              "label": [int(v > 128) for v in values]}, features=features)


@pytest.mark.parametrize("decode", [True, False])
def test_image_classify_fine_tune_and_evaluate_on_an_image_dataset(decode):
    from hub_vision.data import read_labelled, read_unlabelled

    ds = image_dataset(decode)
    rows = read_labelled(ds)
    assert [label for _, label in rows] == ["dark", "light"] * 3 and isinstance(rows[0][0], bytes)
    assert read_unlabelled(ds) == [image for image, _ in rows]
    config = {"timm_model": "resnet10t", "model_args": {"channels": [4, 8, 8, 8], "stem_width": 4, "in_chans": 1},
              "preprocess": {"input_size": [1, 16, 16], "crop_pct": 1.0, "mean": [0.5], "std": [0.5]}}
    pairs = [(image, label) for image, label in rows]
    results = []
    for data in (ds, pairs):
        pipe = hub.create("image-classify", config=config, seed=0, device="cpu")
        untrained = weights(pipe)
        pipe.fine_tune(data, labels=["dark", "light"], seed=0, **QUIET)
        results.append((weights(pipe), pipe.evaluate(data)))
    assert_same_weights(results[0][0], results[1][0], untrained=untrained)
    assert results[0][1] == results[1][1]


def test_images_of_a_stream_without_features_are_read_too():
    from hub_vision.data import read_labelled

    def rows():
        yield {"image": {"bytes": png(20), "path": None}, "label": "dark"}  # encoded, features undeclared
        yield {"image": {"bytes": png(230), "path": None}, "label": "light"}

    stream = datasets.IterableDataset.from_generator(rows)
    assert read_labelled(stream) == [(png(20), "dark"), (png(230), "light")]


# -- audio --------------------------------------------------------------------------------
def wav(freq: float, seconds: float = 0.5, rate: int = 8000) -> bytes:
    import soundfile as sf

    t = np.arange(int(seconds * rate)) / rate
    buffer = io.BytesIO()
    sf.write(buffer, (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate, format="WAV")
    return buffer.getvalue()


def audio_dataset() -> Dataset:
    # built without encoding (datasets 4+ encodes audio with torchcodec): bytes cast to Audio
    ds = Dataset.from_dict({"clip": [{"bytes": wav(f), "path": None} for f in (300, 1500, 320, 1400)],
                            "word": [0, 1, 0, 1]})
    return ds.cast_column("clip", Audio()).cast_column("word", ClassLabel(names=["low", "high"]))


def test_audio_dataset_is_read_undecoded_and_decoded_by_hubs_reader():
    from hub_speech.data import read_audio_records

    ds = audio_dataset()
    if importlib_missing("torchcodec"):  # what a user of datasets 4+ without torchcodec meets
        with pytest.raises(ImportError, match="torchcodec"):
            ds[0]["clip"]
    records = read_audio_records(ds, target="label")
    assert [r["label"] for r in records] == ["low", "high", "low", "high"]
    assert records[0]["audio"] == wav(300)  # the file's bytes: Hub's audio reader decodes and resamples them
    TINY = {"backbone": {"num_layers": 1, "hidden_size": 32, "num_heads": 2, "rotary_dim": 16,
                         "intermediate_size": 64, "dropout": 0.0, "attention_dropout": 0.0}, "subsample_channels": 8}
    results = []
    for data in (ds, [{"audio": r["audio"], "label": r["label"]} for r in records]):
        pipe = hub.create("audio-classify", config={**TINY, "labels": ["low", "high"]}, seed=0)
        untrained = weights(pipe)
        pipe.fine_tune(data, seed=0, **{**QUIET, "batch_size": 2})
        results.append((weights(pipe), pipe.evaluate(data)))
    assert_same_weights(results[0][0], results[1][0], untrained=untrained)
    assert results[0][1] == results[1][1]


def test_decoded_audio_dicts_pass_through():
    from hub_speech.data import read_audio_records

    array = np.zeros(800, dtype=np.float32)
    ds = Dataset.from_dict({"audio": [{"array": array, "sampling_rate": 8000}], "text": ["hi"]})
    record = read_audio_records(ds, target="text")[0]
    assert record["text"] == "hi" and record["audio"]["sampling_rate"] == 8000


def importlib_missing(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is None


# -- interactions -------------------------------------------------------------------------
def test_interactions_from_a_dataset_equal_the_list():
    from hub_recsys.data import read_interactions

    rows = [("u1", "i1", 4.0, 1_700_000_000), ("u1", "i2", 3.0, 1_700_000_060), ("u2", "i1", 5.0, 1_700_000_120)]
    ds = Dataset.from_dict({"user_id": [r[0] for r in rows], "item_id": [r[1] for r in rows],
                            "rating": [r[2] for r in rows], "timestamp": [r[3] for r in rows]},
                           features=Features({"user_id": Value("string"), "item_id": Value("string"),
                                              "rating": Value("float32"), "timestamp": Value("timestamp[s]")}))
    got, want = read_interactions(ds), read_interactions(rows)
    assert got.user_ids.ids == want.user_ids.ids and got.item_ids.ids == want.item_ids.ids
    for name in ("users", "items", "ratings", "timestamps"):
        assert np.array_equal(getattr(got, name), getattr(want, name)), name
    rec = hub.create("recommend", config={"architecture": "mf", "factors": 4}, device="cpu", seed=0)
    rec.fine_tune(ds, progress=False, epochs=1)
    assert rec("u1", k=1).metadata["policy"]


# -- recipes ------------------------------------------------------------------------------
def write_dataset(folder):
    folder.mkdir()
    for split, n in (("train", 8), ("validation", 2)):
        rows = [{"review": TEXTS[i], "stars": ["pos", "neg"][i % 2]} for i in range(n)]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_recipe_dataset_entry_loads_offline_and_trains(tmp_path, classifier, monkeypatch):
    from hub.train.recipe import load_recipe, run_recipe

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    write_dataset(tmp_path / "reviews")
    classifier()  # writes the checkpoint
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"task: text-classify\nmodel: {tmp_path / 'ckpt'}\n"
                      "data:\n  train: {dataset: reviews, split: train, columns: {text: review, label: stars}}\n"
                      "  eval: {dataset: reviews, split: validation, columns: {text: review, label: stars}}\n"
                      "options: {labels: [pos, neg]}\n"
                      "training: {epochs: 1, batch_size: 4, device: cpu, progress: false}\n"
                      f"output: {tmp_path / 'out'}\n")
    summary = run_recipe(load_recipe(recipe), quiet=True)
    assert summary["steps"] == 2 and summary["history"][-1]["eval_accuracy"] is not None
    card = (tmp_path / "out" / "README.md").read_text()
    assert "the dataset `reviews`, split `train` (8 rows)" in card
    # no split named: the DatasetDict's train split trains, its validation split evaluates
    recipe.write_text(f"task: text-classify\nmodel: {tmp_path / 'ckpt'}\n"
                      "data: {train: {dataset: reviews, columns: {text: review, label: stars}}}\n"
                      "options: {labels: [pos, neg]}\n"
                      "training: {epochs: 1, batch_size: 4, device: cpu, progress: false}\n"
                      f"output: {tmp_path / 'out2'}\n")
    summary = run_recipe(load_recipe(recipe), quiet=True)
    assert summary["steps"] == 2 and "eval_accuracy" in summary["history"][-1]
    card = (tmp_path / "out2" / "README.md").read_text()
    assert "- Evaluation data: the dataset `reviews`, split `validation` (2 rows)" in card


def test_recipe_dataset_without_the_library_names_the_extra(tmp_path, monkeypatch):
    import importlib.util

    from hub.train.recipe import load_recipe

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "datasets" else real(name, *a))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("task: text-classify\ndata: {train: {dataset: imdb, split: train}}\n")
    with pytest.raises(MissingExtraError, match=r"hub-sdk\[datasets\]"):
        load_recipe(recipe)


def test_recipe_dataset_entry_keys_are_checked(tmp_path):
    from hub.train.recipe import load_recipe

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("task: text-classify\ndata: {train: {dataset: imdb, splt: train}}\n")
    with pytest.raises(ConfigError, match="Did you mean 'split'"):
        load_recipe(recipe)


def cache_hub_dataset(cache, repo_id: str, splits: dict[str, list[dict]], tmp_path) -> None:
    """Lay out ``repo_id`` in a datasets cache as a load from the Hub leaves it
    (``namespace___name/default/0.0.0/HASH`` with dataset_info.json and arrow files):
    the json builder prepares the rows, then its folders are named as a Hub load names them."""
    import glob
    from pathlib import Path

    from datasets.packaged_modules.json.json import Json

    files = {}
    for split, rows in splits.items():
        files[split] = str(tmp_path / f"src-{split}.jsonl")
        Path(files[split]).write_text("".join(json.dumps(r) + "\n" for r in rows))
    namespace, name = repo_id.split("/")
    Json(cache_dir=str(cache), dataset_name=name, hash="0123456789abcdef", data_files=files).download_and_prepare()
    (Path(cache) / name).rename(Path(cache) / f"{namespace}___{name}")
    [config] = glob.glob(str(Path(cache) / f"{namespace}___{name}" / "default-*"))
    Path(config).rename(Path(config).with_name("default"))


@pytest.fixture
def offline_hf_cache(tmp_path, monkeypatch):
    """A fresh, empty datasets cache, and the library (and huggingface_hub) in offline mode."""
    import huggingface_hub.constants

    cache = tmp_path / "hf-home" / "datasets"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)  # read at import: set for this test
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return cache


def test_recipe_dataset_by_hub_name_loads_from_the_offline_cache(tmp_path, classifier, offline_hf_cache):
    """{dataset: NAMESPACE/NAME} resolves to the Hugging Face datasets cache offline, exactly as
    datasets.load_dataset does after one online load; the splits and the card's name follow."""
    from hub.data.hf_datasets import load_from_spec
    from hub.train.recipe import load_recipe, run_recipe

    rows = {"train": [{"review": TEXTS[i], "stars": ["pos", "neg"][i % 2]} for i in range(8)],
            "validation": [{"review": TEXTS[i], "stars": ["pos", "neg"][i % 2]} for i in range(2)]}
    cache_hub_dataset(offline_hf_cache, "hub-tests/reviews", rows, tmp_path)
    loaded = load_from_spec({"dataset": "hub-tests/reviews", "split": "validation"})
    assert loaded.num_rows == 2 and loaded[0] == rows["validation"][0]
    classifier()
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"task: text-classify\nmodel: {tmp_path / 'ckpt'}\n"
                      "data: {train: {dataset: hub-tests/reviews, columns: {text: review, label: stars}}}\n"
                      "options: {labels: [pos, neg]}\n"
                      "training: {epochs: 1, batch_size: 4, device: cpu, progress: false}\n"
                      f"output: {tmp_path / 'out'}\n")
    summary = run_recipe(load_recipe(recipe), quiet=True)
    assert summary["steps"] == 2 and "eval_accuracy" in summary["history"][-1]
    card = (tmp_path / "out" / "README.md").read_text()
    assert "the dataset `hub-tests/reviews`, split `train` (8 rows)" in card
    assert "datasets:\n- hub-tests/reviews" in card  # a Hub repo id: named in the front matter too
    # a name the cache does not hold: a DataError that says what a name needs, no network tried
    with pytest.raises(DataError, match=r"cannot load dataset 'hub-tests/absent'.*HF_DATASETS_OFFLINE"):
        load_from_spec({"dataset": "hub-tests/absent", "split": "train"})
