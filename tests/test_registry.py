"""The catalogue: registry.yaml validation, user overlays, names, aliases and globs,
and a check that every lazy "module:attr" reference any plugin registers resolves."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import hub
import hub.plugins
from hub.errors import RegistryError, UnknownNameError
from hub.pipeline import Pipeline
from hub.plugins import PluginManager
from hub.registry import get_registry, read_registry_file, shipped_registry_path, user_registry_path
from hub.specs import load_object


def overlay(tmp_path: Path, monkeypatch, *texts: str) -> list[Path]:
    """Write each text to its own file and name them all in HUB_REGISTRY."""
    paths = []
    for i, text in enumerate(texts):
        path = tmp_path / f"overlay{i}.yaml"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    monkeypatch.setenv("HUB_REGISTRY", os.pathsep.join(map(str, paths)))
    hub.plugins.reset()
    return paths


# --------------------------------------------------------------------------- validation
def test_shipped_registry_is_valid():
    data = read_registry_file(shipped_registry_path())
    registry = get_registry()
    # the task comes from its plugin's TaskSpec, its default model from the shipped catalogue
    assert registry.task("text-classify").default_model == "sentiment-minilm" in data["models"]
    assert registry.problems == []
    for entry in registry.models.values():  # every model belongs to a known task
        registry.task(entry.task)
    for task in registry.tasks.values():  # every default model exists in the catalogue
        if task.default_model:
            assert registry.model(task.default_model).task == task.name


@pytest.mark.parametrize("text, entry, field, problem", [
    ("models:\n  my-model: {task: text-classify, source: ./m, colour: red}\n",
     "my-model", "colour", "unknown field"),
    ("models:\n  my-model: {task: text-classify, source: ./m, labels: 'a,b'}\n",
     "my-model", "labels", "must be a list, got str"),
    ("tasks:\n  text-classify: {default: 3}\n",
     "text-classify", "default", "must be a str, got int"),
    ("models:\n  my-model: {task: text-classify}\n",
     "my-model", "source", "required field is missing"),
    ("models:\n  my-model: {task: text-classify, source: 's3://bucket/m'}\n",
     "my-model", "source", "unsupported source 's3://bucket/m'"),
    ("models:\n  my-model: {task: text-classify, source: ./m, labels: [1, 2]}\n",
     "my-model", "labels", "must be a list of strings"),
    ("modles:\n  my-model: {task: text-classify, source: ./m}\n",
     None, "modles", "unknown top-level key"),
    ("schema: 2\n", None, "schema", "unsupported schema 2"),
])
def test_bad_overlay_names_file_entry_and_field(tmp_path, monkeypatch, text, entry, field, problem):
    [path] = overlay(tmp_path, monkeypatch, text)
    with pytest.raises(RegistryError) as info:
        get_registry()
    error = info.value
    assert (error.file, error.entry, error.field) == (str(path), entry, field)
    message = str(error)
    assert message.startswith(str(path)) and problem in message
    if entry:
        assert f"entry {entry!r}" in message
    assert f"field {field!r}" in message


def test_invalid_yaml_is_reported_with_the_file(tmp_path, monkeypatch):
    [path] = overlay(tmp_path, monkeypatch, "models:\n  my-model: {task: [unclosed\n")
    with pytest.raises(RegistryError, match="not valid YAML") as info:
        get_registry()
    assert info.value.file == str(path) and str(path) in str(info.value)


def test_missing_overlay_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HUB_REGISTRY", str(tmp_path / "nope.yaml"))
    hub.plugins.reset()
    with pytest.raises(RegistryError, match="HUB_REGISTRY does not exist"):
        hub.list_models()


def test_bad_overlay_fails_load_with_the_same_clear_error(tmp_path, monkeypatch):
    overlay(tmp_path, monkeypatch, "models:\n  m: {task: text-classify, source: ./m, colour: red}\n")
    with pytest.raises(RegistryError, match="colour"):
        hub.load("text-classify")


# --------------------------------------------------------------------------- overlays take effect
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    from tests.text.checkpoints import make_bert_classifier

    folder = tmp_path_factory.mktemp("registry") / "tiny-bert"
    make_bert_classifier(folder, num_labels=2, max_positions=32)
    return folder


def test_overlays_add_a_model_and_override_a_default(tmp_path, monkeypatch, checkpoint):
    model_dir = tmp_path / "models" / "mine"
    model_dir.parent.mkdir()
    model_dir.symlink_to(checkpoint, target_is_directory=True)
    added, overridden = overlay(
        tmp_path, monkeypatch,
        "models:\n"
        "  my-sentiment:\n"
        "    task: sentiment-analysis\n"          # an alias is fine here
        "    source: models/mine\n"               # relative to the overlay file
        "    license: mit\n"
        "    labels: [class_0, class_1]\n"
        "    metrics: {accuracy: 0.5}\n",
        "tasks:\n  text-classify: {default: my-sentiment, aliases: [opinion]}\n",
    )
    registry = get_registry()
    entry = registry.model("my-sentiment")
    assert entry.origin == str(added) and entry.license == "mit" and entry.metrics == {"accuracy": 0.5}
    assert entry.source == str(model_dir.resolve())
    assert registry.task("text-classify").default_model == "my-sentiment"
    assert registry.task("opinion").name == "text-classify"
    assert "sentiment-analysis" in registry.task("text-classify").aliases  # aliases are merged
    assert str(overridden) in registry.files
    assert "my-sentiment" in hub.list_models("my-*")

    pipe = hub.load("text-classify", device="cpu")  # the new default, from the overlay
    assert pipe.metadata["model_name"] == "my-sentiment" and pipe.metadata["license"] == "mit"
    assert pipe("good tea")["label"] in ("class_0", "class_1")
    assert hub.load("my-sentiment", device="cpu").metadata["model_name"] == "my-sentiment"


def test_overlay_overrides_a_shipped_model(tmp_path, monkeypatch):
    [path] = overlay(tmp_path, monkeypatch, "models:\n  gpt2: {task: text-generate, "
                                            "source: 'hf://my-org/gpt2-mirror@v1'}\n")
    entry = get_registry().model("gpt2")
    assert entry.source == "hf://my-org/gpt2-mirror@v1" and entry.origin == str(path)


def test_user_registry_file_is_read_and_env_overlays_win(tmp_path, monkeypatch):
    user_file = user_registry_path()
    assert str(user_file).startswith(os.environ["XDG_CONFIG_HOME"])  # conftest isolates it
    user_file.parent.mkdir(parents=True, exist_ok=True)
    user_file.write_text("models:\n"
                         "  user-model: {task: text-classify, source: 'hf://me/user-model'}\n"
                         "  both: {task: text-classify, source: 'hf://me/from-user-file'}\n")
    hub.plugins.reset()
    registry = get_registry()
    assert registry.model("user-model").origin == str(user_file)
    assert str(user_file) in registry.files

    overlay(tmp_path, monkeypatch, "models:\n  both: {task: text-classify, source: 'hf://me/from-env'}\n")
    registry = get_registry()
    assert registry.model("both").source == "hf://me/from-env"  # HUB_REGISTRY comes last
    assert registry.model("user-model").source == "hf://me/user-model"


# --------------------------------------------------------------------------- names
def test_unknown_names_list_close_matches():
    with pytest.raises(UnknownNameError, match="'text-classify'") as info:
        hub.load("text-clasify")
    assert "text-classify" in info.value.close_matches
    assert isinstance(info.value, LookupError)
    with pytest.raises(UnknownNameError, match="'sentiment-minilm'"):
        get_registry().model("sentiment-minlm")
    with pytest.raises(UnknownNameError, match="'text-generate'"):
        get_registry().task("text-generat")
    with pytest.raises(UnknownNameError, match="Unknown task 'zzzz'. Known tasks: "):
        get_registry().task("zzzz")


@pytest.mark.parametrize("alias", ["text-classification", "sentiment-analysis", "text-classify"])
def test_aliases_resolve(alias):
    registry = get_registry()
    assert registry.task(alias).name == "text-classify"
    task, entry = registry.resolve(alias)
    assert task.name == "text-classify" and entry is None


def test_model_name_resolves_to_its_task():
    task, entry = get_registry().resolve("distilbert-sst2")
    assert task.name == "text-classify" and entry.name == "distilbert-sst2"


def test_list_models_globs():
    assert hub.list_models("*sst2*") == ["distilbert-sst2", "textattack-bert-sst2"]
    assert hub.list_models("sst2") == []  # the API takes globs literally (the CLI adds *...*)
    assert hub.list_models("*", task="sentiment-analysis") == sorted(
        n for n, m in get_registry().models.items() if m.task == "text-classify")
    assert "gpt2" in hub.list_models() and hub.list_models() == sorted(hub.list_models())
    assert hub.list_tasks() == sorted(get_registry().tasks)
    with pytest.raises(UnknownNameError):
        hub.list_models(task="nope")


# --------------------------------------------------------------------------- every lazy reference
def _registered(hook: str) -> list:
    """Collected at import time so each registration is its own test (as timm does)."""
    manager = PluginManager()
    manager.load_entry_points()
    return [pytest.param(spec, id=f"{plugin}:{spec.name}") for plugin, spec in manager.collect(hook)]


@pytest.mark.parametrize("spec", _registered("hub_tasks"))
def test_every_task_pipeline_resolves(spec):
    cls = load_object(spec.pipeline)
    assert isinstance(cls, type) and issubclass(cls, Pipeline), spec.pipeline
    assert cls.task == spec.name
    # loading is the base's from_folder; the task says which module it runs, so another
    # task's model is refused (model_types, or its own _model_from_loaded / _load_model)
    assert cls.from_folder.__func__ is Pipeline.from_folder.__func__, "override from_folder's _-hooks instead"
    hooks = ("_load_model", "_model_from_loaded")
    assert cls.model_types is not None or any(
        getattr(cls, hook).__func__ is not getattr(Pipeline, hook).__func__ for hook in hooks), \
        "set model_types (or override _model_from_loaded) so that another task's model is refused"
    assert get_registry().task(spec.name).spec == spec  # and it was accepted


@pytest.mark.parametrize("spec", _registered("hub_architectures"))
def test_every_architecture_builder_resolves(spec):
    assert callable(load_object(spec.builder))
    assert get_registry().architecture(spec.name) == spec


@pytest.mark.parametrize("spec", _registered("hub_converters"))
def test_every_converter_resolves(spec):
    assert callable(load_object(spec.convert))
    for model_type in spec.model_types:
        assert get_registry().converter_for(model_type) == spec
    get_registry().architecture(spec.architecture)  # converts into a registered architecture


def test_catalogue_architectures_exist_for_installed_plugins():
    """A catalogue entry of an installed plugin must name one of its registered architectures."""
    registry = hub.get_registry()
    plugins = {p.name for p in hub.plugins.get_plugin_manager().plugins if p.status == "loaded"}
    checked = 0
    for entry in registry.models.values():
        provided = registry.task(entry.task).spec is not None  # tasks still to come are skipped
        if entry.plugin in plugins and entry.architecture and provided:
            assert entry.architecture in registry.architectures, (entry.name, entry.architecture)
            checked += 1
    assert checked >= 8
