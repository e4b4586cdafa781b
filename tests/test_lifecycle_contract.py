"""Issue 13, items 1 and 3: the lifecycle lives in the Pipeline base (save written once, the
training verbs declared once with one signature each, one "not supported" error), and every
pipeline's result for one input is a ``Result`` dict or a ``ResultList`` with ``.metadata``."""

from __future__ import annotations

import inspect
import json

import pytest

import hub
from hub.errors import InvalidInputError, NotSupportedError
from hub.pipeline import Pipeline
from hub.results import EntityList, Prediction, Recommendations, Result, ResultList
from hub.specs import load_object


def _pipelines() -> dict[str, type]:
    registry = hub.get_registry()
    return {name: load_object(entry.spec.pipeline) for name, entry in sorted(registry.tasks.items())
            if entry.spec is not None}


@pytest.fixture(scope="module")
def pipelines() -> dict[str, type]:
    return _pipelines()


def test_save_is_written_once_in_the_base(pipelines):
    for task, cls in pipelines.items():
        owners = [klass.__name__ for klass in cls.__mro__ if klass is not Pipeline and "save" in klass.__dict__]
        assert owners == [], f"{task}: save() overridden in {owners}; override _save_extra_files() etc."
        assert list(inspect.signature(cls.save).parameters) == ["self", "folder", "quantize"]


def test_from_folder_is_written_once_in_the_base(pipelines):
    """Loading mirrors save: tasks override _load_model / _model_from_loaded / _load_extra_files /
    _from_loaded, never from_folder (each family used to carry its own loader)."""
    for task, cls in pipelines.items():
        owners = [klass.__name__ for klass in cls.__mro__ if klass is not Pipeline and "from_folder" in klass.__dict__]
        assert owners == [], f"{task}: from_folder() overridden in {owners}; override _load_extra_files() etc."
        assert list(inspect.signature(cls.from_folder).parameters) == ["folder", "device", "dtype", "metadata"]


def test_the_base_loader_refuses_another_tasks_model_and_merges_metadata(tmp_path):
    """model_types is checked by the base with wrong_model (naming the task the model is for);
    the base adds the architecture to what the loader knew."""
    from hub.errors import ModelLoadError

    vit = {"img_size": 8, "patch_size": 4, "hidden_size": 8, "num_layers": 1, "num_heads": 2,
           "intermediate_size": 16, "labels": ["a", "b"]}
    folder = hub.create("image-classify", config=vit, device="cpu").save(tmp_path / "vit")
    with pytest.raises(ModelLoadError, match=r"recommend needs one of .*It is a model for image-classify"):
        hub.load("recommend", model=str(folder), device="cpu")
    again = hub.load("image-classify", model=str(folder), device="cpu")
    assert again.metadata["architecture"] == "vit" and again.metadata["labels"] == ["a", "b"]
    assert "converted_from" not in again.metadata


def test_every_verb_has_the_base_signature(pipelines):
    for task, cls in pipelines.items():
        scratch = inspect.signature(cls.from_scratch).parameters
        assert list(scratch)[:1] == ["config"], task
        for name in ("tokenizer", "device", "dtype", "seed"):
            assert scratch[name].kind is inspect.Parameter.KEYWORD_ONLY, (task, name)
        for verb in ("fine_tune", "pretrain"):
            params = list(inspect.signature(getattr(cls, verb)).parameters.values())
            assert [p.name for p in params[1:3]] == [params[1].name, "eval"], (task, verb)
            assert params[2].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, (task, verb)


def test_a_missing_verb_is_one_clear_error_naming_the_task_and_its_verbs(pipelines):
    embed = pipelines["text-embed"]
    with pytest.raises(NotSupportedError, match=r"'text-embed' cannot be created from scratch.*fill-mask"):
        embed.from_scratch()
    classify = pipelines["text-classify"]
    pipe = object.__new__(classify)  # the error needs no model
    with pytest.raises(NotSupportedError, match=r"'text-classify' does not support pretrain\(\): .*implements "
                                                r"fine_tune\(\), evaluate\(\).*text-generate"):
        pipe.pretrain("corpus.txt", None)
    assert issubclass(NotSupportedError, NotImplementedError)  # old `except NotImplementedError` still works
    assert classify.supported_verbs() == ["fine_tune", "evaluate"]
    assert set(pipelines["image-classify"].supported_verbs()) == set(Pipeline.VERBS)


def test_hub_create_passes_the_tokenizer_by_keyword(tmp_path):
    with pytest.raises(NotSupportedError, match="'text-classify' cannot be created from scratch"):
        hub.create("text-classify")
    with pytest.raises(hub.errors.ConfigError, match="take no tokenizer"):
        hub.create("audio-classify", tokenizer=["a", "b"])  # was silently ignored


def test_a_weightless_task_refuses_quantize_and_writes_a_card(tmp_path):
    pytest.importorskip("hub_textstats")
    stats = hub.load("text-stats", device="cpu")
    with pytest.raises(InvalidInputError, match=r"text-stats: save\(quantize=True\) is not supported"):
        stats.save(tmp_path / "q", quantize=True)
    assert not (tmp_path / "q").exists()
    folder = stats.save(tmp_path / "m")
    assert json.loads((folder / "config.json").read_text())["architecture"] == "text-stats"
    assert (folder / "README.md").read_text().startswith("---")
    with pytest.raises(InvalidInputError, match="quantize must be True or False"):
        stats.save(tmp_path / "n", quantize="yes")


def test_one_result_type():
    assert (Prediction, EntityList, Recommendations) == (Result, ResultList, ResultList)
    r = ResultList([1.0, 2.0], metadata={"windows": 1})
    assert r == [1.0, 2.0] and json.dumps(r) == "[1.0, 2.0]" and r.metadata == {"windows": 1}
    assert ResultList().metadata == {}


def test_text_embed_returns_a_list_with_metadata(tmp_path):
    from tests.text.checkpoints import make_bert_classifier

    make_bert_classifier(tmp_path, max_positions=16)
    embed = hub.load("text-embed", model=str(tmp_path), device="cpu")
    one = embed("good tea")
    assert isinstance(one, ResultList) and isinstance(one, list) and all(isinstance(x, float) for x in one)
    assert one.metadata["truncated"] is False and one.metadata["windows"] == 1
    assert one.metadata["normalized"] is False and one.metadata["pooling"] == "mean"
    long = embed(" ".join(["good tea"] * 20))
    assert long.metadata["windows"] > 1
    assert embed(["good tea"], normalize=True)[0].metadata["normalized"] is True
    ranked = hub.load("text-classify", model=str(tmp_path), device="cpu")("good tea", top_k=2)
    assert isinstance(ranked, ResultList) and ranked.metadata["windows"] == 1


def test_quantize_is_offered_by_every_task_with_weights(tmp_path):
    """image and recommend saves took no quantize= before the base owned save()."""
    rec = hub.load("recommend", device="cpu")
    # quantize=False: the storage round trip alone (an int8-stored folder otherwise computes in int8 on CPU)
    again = hub.load("recommend", model=str(rec.save(tmp_path / "q", quantize=True)), device="cpu", quantize=False)
    assert json.loads((tmp_path / "q" / "config.json").read_text())["weights_format"] != "float"
    assert [r["item"] for r in again("1", k=3)] == [r["item"] for r in rec("1", k=3)]
    assert (tmp_path / "q" / "ids.json").is_file() and (tmp_path / "q" / "history.safetensors").is_file()
