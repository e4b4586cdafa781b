"""One source of truth for every fact (issue 13, item 5, with the related parts of items 1, 2, 6).

A task's aliases, description, default model, modality and Hugging Face pipeline tag live in
its plugin's TaskSpec, for built-in plugins exactly as for third-party ones; registry.yaml
lists models and only overrides. Name errors say what a name is: a task with no default
lists its models, and a well-known Hugging Face task no plugin provides says so instead of
suggesting a distant spelling.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

import hub
import hub.plugins
from hub.card import render_model_card
from hub.cli import main
from hub.errors import InvalidInputError, PluginError, UnknownNameError
from hub.known_tasks import HF_TASKS
from hub.plugins import get_plugin_manager
from hub.registry import TaskNotInstalledError, get_registry, read_registry_file, shipped_registry_path
from hub.specs import TaskSpec
from tests.test_plugins import use_plugins, write_module  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent


def builtin_tasks() -> list[str]:
    builtin = {p.name for p in get_plugin_manager().plugins if p.builtin}
    return sorted(n for n, t in get_registry().tasks.items() if t.plugin in builtin)


def front_matter(card: str) -> dict:
    return yaml.safe_load(card.split("---")[1])


def plugin_module(task: str, *, default: str | None = None, models: tuple[str, ...] = (),
                  pipeline_tag: str | None = None) -> str:
    """A third-party plugin registering ``task`` (toy pipeline) and catalogue ``models``."""
    entries = ", ".join(f"ModelEntry(name={m!r}, task={task!r}, source='hf://org/{m}')" for m in models)
    return textwrap.dedent(f'''
        from hub import hookimpl
        from hub.specs import ModelEntry, TaskSpec


        @hookimpl
        def hub_tasks():
            return [TaskSpec(name={task!r}, pipeline="toy_pipe:ReversePipeline", default_model={default!r},
                             modality="text", pipeline_tag={pipeline_tag!r})]


        @hookimpl
        def hub_models():
            return [{entries}]
    ''')


# =========================================================================== item 5: where facts live
def test_the_shipped_registry_declares_no_task_facts():
    """Before: every built-in task's aliases, description and default were in registry.yaml too."""
    data = read_registry_file(shipped_registry_path())
    assert data["tasks"] == {}, "task facts belong in the plugins' TaskSpecs, not registry.yaml"
    assert builtin_tasks(), "the built-in plugins register tasks"


def test_built_in_tasks_take_every_fact_from_their_task_spec():
    registry = get_registry()
    for name in builtin_tasks():
        task = registry.task(name)
        spec = task.spec
        assert task.default_model == spec.default_model is not None, name
        assert task.default_from == f"plugin {task.plugin!r}", name
        assert task.aliases == spec.aliases and task.description == spec.description != "", name
        assert spec.modality, f"{name}: every built-in declares its modality"
        assert registry.model(task.default_model).task == name


def test_shipped_models_state_no_plugin_the_task_already_names():
    """Before: every registry.yaml model repeated its task's plugin (``plugin: text``)."""
    data = read_registry_file(shipped_registry_path())
    registry = get_registry()
    assert [name for name, fields in data["models"].items() if "plugin" in fields] == []
    for name in data["models"]:
        entry = registry.model(name)
        assert entry.plugin == registry.task(entry.task).plugin is not None, name


def test_an_overlay_still_overrides_a_default_and_says_where_it_came_from(tmp_path, monkeypatch):
    path = tmp_path / "overlay.yaml"
    path.write_text("tasks:\n  sentiment-analysis: {default: distilbert-sst2}\n")
    monkeypatch.setenv("HUB_REGISTRY", str(path))
    hub.plugins.reset()
    task = get_registry().task("text-classify")
    assert task.default_model == "distilbert-sst2" and task.default_from == f"file {str(path)!r}"
    assert task.spec.default_model == "sentiment-minilm"  # the TaskSpec is unchanged


# =========================================================================== item 6: no default modality
def test_a_task_spec_has_no_default_modality():
    spec = TaskSpec(name="t-x", pipeline="m:P")
    assert spec.modality is None and spec.pipeline_tag is None and spec.default_model is None


@pytest.mark.parametrize("field, value", [("modality", ""), ("modality", " audio"), ("pipeline_tag", 3),
                                          ("pipeline_tag", ""), ("default_model", "  "), ("description", None)])
def test_malformed_task_spec_fields_are_refused(field, value):
    with pytest.raises(PluginError, match=f"task 't-x': {field} must be"):
        TaskSpec(name="t-x", pipeline="m:P", **{field: value})


def test_the_third_party_example_declares_its_modality():
    pytest.importorskip("hub_textstats", reason="examples/third_party_plugin is not installed")
    spec = get_registry().task("text-stats").spec
    assert (spec.modality, spec.pipeline_tag) == ("text", None)


# =========================================================================== item 1: the card's pipeline tag
def test_every_built_in_card_tag_is_its_task_specs_and_a_real_hugging_face_tag():
    for name in builtin_tasks():
        spec = get_registry().task(name).spec
        front = front_matter(render_model_card({"task": name}))
        assert front.get("pipeline_tag") == spec.pipeline_tag, name
        assert spec.pipeline_tag is None or spec.pipeline_tag in HF_TASKS, name


def test_a_third_party_task_gets_its_declared_pipeline_tag(write_module, monkeypatch):
    """Before: the card read a table of built-in task names, so a plugin's task had no tag."""
    write_module("tagged_plugin", plugin_module("text-rewrite", pipeline_tag="text2text-generation"))
    use_plugins(monkeypatch, "tagged_plugin")
    front = front_matter(render_model_card({"task": "text-rewrite", "model_name": "m"}))
    assert front["pipeline_tag"] == "text2text-generation"
    assert "pipeline_tag" not in front_matter(render_model_card({"task": "not-registered-anywhere"}))
    # an explicit tag in the metadata wins (a pipeline may know better than its task)
    assert front_matter(render_model_card({"task": "text-rewrite", "pipeline_tag": "summarization"})
                        )["pipeline_tag"] == "summarization"


# =========================================================================== item 2: name errors
@pytest.mark.parametrize("name", ["table-question-answering", "image-to-text", "object-detection",
                                  "video-classification", "text-to-speech", "question-answering"])
def test_a_well_known_task_no_plugin_provides_says_so(name):
    """Before: ``summarization`` -> "Did you mean: 'recommendation'?" (summarization and translation
    are the text plugin's now, so other well-known names stand in for them)."""
    with pytest.raises(TaskNotInstalledError) as info:
        hub.load(name)
    message = str(info.value)
    assert message.startswith(f"No installed plugin provides {name!r} (a Hugging Face pipeline task: ")
    assert "Installed tasks: " in message and "text-classify" in message and "speech-recognize" in message
    assert "Did you mean" not in message and "Writing a plugin" in message
    assert isinstance(info.value, UnknownNameError) and isinstance(info.value, LookupError)
    with pytest.raises(TaskNotInstalledError, match=f"No installed plugin provides {name!r}"):
        hub.create(name)


def test_hugging_face_names_that_are_aliases_still_resolve():
    registry = get_registry()
    for hf_name, task in (("text-classification", "text-classify"), ("automatic-speech-recognition",
                                                                      "speech-recognize"), ("fill-mask", "fill-mask"),
                         ("zero-shot-classification", "zero-shot-classify")):
        assert registry.resolve(hf_name) == (registry.task(task), None)


def test_typos_still_get_a_did_you_mean():
    with pytest.raises(UnknownNameError, match="Did you mean: 'text-classify'") as info:
        hub.load("text-clasify")
    assert not isinstance(info.value, TaskNotInstalledError)


def test_cli_names_a_missing_well_known_task_without_torch():
    script = ("import sys\nfrom hub.cli import main\n"
              "assert main(['list', '--task', 'table-question-answering']) == 2\n"
              "assert 'torch' not in sys.modules\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("error: No installed plugin provides 'table-question-answering'")
    assert "Did you mean" not in proc.stderr


@pytest.mark.parametrize("models, listed", [(("rewrite-small", "rewrite-large"), "its catalogue models: "
                                             "rewrite-large, rewrite-small"),
                                            ((), "the catalogue lists no model for it")])
def test_a_task_without_a_default_says_so_and_lists_its_models(write_module, monkeypatch, capsys, models, listed):
    """Before: a TypeError (unhashable ModelEntry) where an "Unknown model ''" was meant."""
    write_module("nodefault_plugin", plugin_module("text-rewrite", models=models))
    use_plugins(monkeypatch, "nodefault_plugin")
    assert get_registry().problems == []
    with pytest.raises(InvalidInputError) as info:
        hub.load("text-rewrite", device="cpu")
    message = str(info.value)
    assert "Task 'text-rewrite' has no default model; pass one with model=" in message and listed in message
    assert main(["predict", "text-rewrite", "abc", "--device", "cpu"]) == 2
    assert "has no default model" in capsys.readouterr().err


def test_a_default_no_catalogue_lists_is_reported_with_its_origin(write_module, monkeypatch):
    write_module("lost_plugin", plugin_module("text-rewrite", default="rewrite-missing", models=("rewrite-real",)))
    use_plugins(monkeypatch, "lost_plugin")
    registry = get_registry()
    [problem] = registry.problems
    assert "'text-rewrite'" in problem and "'rewrite-missing'" in problem and "plugin 'lost_plugin'" in problem
    with pytest.raises(UnknownNameError, match=r"default model of task 'text-rewrite' \(plugin 'lost_plugin'\)"):
        hub.load("text-rewrite", device="cpu")
