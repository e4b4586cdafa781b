"""The plugin contract is pluggy's, used fully (issue 13, item 4).

* hooks are called through pluggy (its call monitoring sees them), one plugin at a time, so a
  raising plugin (``SystemExit`` included) is reported and the others still answer;
* ``check_pending()`` runs after registration: a misspelt hook (``hub_task``) fails its
  plugin, named in ``hub plugins`` with the hook it is closest to;
* the ``firstresult`` hook ``hub_select_converter`` picks the converter for a checkpoint
  folder from its config and file names, built-ins first, ``model_type`` claims being each
  plugin's default answer; timm's layout is recognised by the vision plugin, not the core;
* converters that take ``checkpoint=`` see the folder's side files; two-argument ones work.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

import hub
import hub.modeling
import hub.plugins
from hub.checkpoint import Checkpoint
from hub.errors import ModelLoadError, UnknownNameError
from hub.plugins import get_plugin_manager
from hub.registry import get_registry
from tests.test_plugins import cli_json, plugin_info, toy_model, toy_plugin, use_plugins, write_module  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent

#: a third-party plugin with a converter for a made-up "toyfmt" checkpoint that has no
#: model_type: chosen by its own hub_select_converter, reading side file scale.json
TOY_CONVERTER = '''
import torch

from hub import hookimpl
from hub.specs import ArchitectureSpec, ConverterSpec

TOY = ConverterSpec(name="toy-linear", source="toylib", model_types=(), architecture="toy-linear",
                    convert="toy_convert:convert")
OLD = ConverterSpec(name="old-style", source="oldlib", model_types=("oldfmt",), architecture="toy-linear",
                    convert="toy_convert:convert_two_args")


def build(config):
    module = torch.nn.Linear(config["size"], config["size"])
    module.config = config
    return module


def convert(config, state, *, checkpoint):
    scale = checkpoint.read_json("scale.json")
    return "toy-linear", {"size": config["size"], "scale": scale["scale"],
                          "files": list(checkpoint.files)}, state


def convert_two_args(config, state):
    return "toy-linear", {"size": config["size"]}, state


@hookimpl
def hub_architectures():
    return [ArchitectureSpec("toy-linear", "toy_convert:build")]


@hookimpl
def hub_converters():
    return [TOY, OLD]


@hookimpl
def hub_select_converter(config, files):
    if config.get("format") == "toyfmt" and "scale.json" in files:
        return TOY
    return None
'''


def toy_checkpoint(folder: Path, config: dict, side: dict | None = None) -> Path:
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    save_file({"weight": torch.eye(2), "bias": torch.zeros(2)}, str(folder / "model.safetensors"))
    for name, value in (side or {}).items():
        (folder / name).write_text(json.dumps(value))
    return folder


# --------------------------------------------------------------------------- through pluggy
def test_hooks_are_called_through_pluggy():
    """pluggy's call monitoring sees every registration hook (it saw none when Hub called the
    implementation functions itself)."""
    manager = get_plugin_manager()
    seen: list[tuple[str, list[str]]] = []
    undo = manager._pm.add_hookcall_monitoring(
        lambda name, impls, kwargs: seen.append((name, [impl.plugin_name for impl in impls])),
        lambda outcome, name, impls, kwargs: None)
    try:
        hub.registry.reset()
        get_registry()
    finally:
        undo()
    calls = {(name, tuple(plugins)) for name, plugins in seen}
    for hook in ("hub_tasks", "hub_architectures", "hub_converters"):
        assert (hook, ("text",)) in calls and (hook, ("vision",)) in calls  # one plugin per call
    assert ("hub_tasks", ("speech",)) in calls


def test_a_raising_select_hook_is_reported_and_others_still_answer(write_module, monkeypatch, tmp_path):
    write_module("toy_convert", TOY_CONVERTER)
    write_module("exiting_plugin", textwrap.dedent('''
        import sys
        from hub import hookimpl

        @hookimpl
        def hub_select_converter(config, files):
            sys.exit(3)
    '''))
    write_module("odd_plugin", textwrap.dedent('''
        from hub import hookimpl

        @hookimpl
        def hub_select_converter(config):
            return "not a spec"
    '''))
    use_plugins(monkeypatch, "exiting_plugin", "odd_plugin", "toy_convert")
    registry = get_registry()
    plugin, spec = registry.select_converter({"format": "toyfmt"}, ("config.json", "scale.json"))
    assert (plugin, spec.name) == ("toy_convert", "toy-linear")
    errors = {(p, h): e for p, h, e in get_plugin_manager().hook_errors}
    assert errors[("exiting_plugin", "hub_select_converter")].startswith("SystemExit: the plugin called sys.exit(3)")
    assert errors[("odd_plugin", "hub_select_converter")] == "returned str, expected a ConverterSpec or None"
    # a built-in model_type is still the built-in's, asked before the third parties
    assert registry.select_converter({"model_type": "bert"}, ())[1].name == "transformers-bert-family"
    # a folder nobody takes names the plugins that failed to answer, once each however often asked
    folder = toy_checkpoint(tmp_path / "unknown", {"format": "other"})
    for _ in range(2):
        with pytest.raises(ModelLoadError, match=r"failed to answer: plugin 'exiting_plugin': SystemExit"):
            hub.modeling.load_model(folder)
    assert [h for p, h, e in get_plugin_manager().hook_errors if p == "exiting_plugin"] == ["hub_select_converter"]


# --------------------------------------------------------------------------- check_pending
def test_a_misspelt_hook_fails_its_plugin_and_says_which(write_module, toy_model, monkeypatch, capsys):
    write_module("typo_plugin", textwrap.dedent('''
        from hub import hookimpl
        from hub.specs import TaskSpec

        @hookimpl
        def hub_task():
            return [TaskSpec(name="typo-task", pipeline="toy_pipe:ReversePipeline")]
    '''))
    write_module("toy_plugin", toy_plugin(folder=toy_model))
    use_plugins(monkeypatch, "typo_plugin", "toy_plugin")
    typo = plugin_info("typo_plugin")
    assert typo.status == "failed"
    assert "unknown hook 'hub_task' (did you mean 'hub_tasks'?)" in typo.error
    assert plugin_info("toy_plugin").status == "loaded"
    assert "text-reverse" in hub.list_tasks() and "text-classify" in hub.list_tasks()
    row = next(p for p in cli_json(capsys, "plugins", "--json")["plugins"] if p["name"] == "typo_plugin")
    assert row["status"] == "failed" and "'hub_task'" in row["error"]


def test_an_optional_hook_of_a_newer_hub_is_allowed(write_module, monkeypatch):
    write_module("future_plugin", textwrap.dedent('''
        from hub import hookimpl
        from hub.specs import TaskSpec

        @hookimpl(optionalhook=True)
        def hub_hook_of_the_future():
            return []

        @hookimpl
        def hub_tasks():
            return [TaskSpec(name="future-task", pipeline="toy_pipe:ReversePipeline")]
    '''))
    use_plugins(monkeypatch, "future_plugin")
    assert plugin_info("future_plugin").status == "loaded"
    assert get_registry().task("future-task").plugin == "future_plugin"


def test_a_runtime_registration_is_checked_too():
    class Misspelt:
        @hub.hookimpl
        def hub_converter(self):
            return []

    info = get_plugin_manager().register(Misspelt(), "misspelt")
    assert info.status == "failed" and "did you mean 'hub_converters'?" in info.error
    assert "misspelt" not in get_plugin_manager().registered_names()


# --------------------------------------------------------------------------- converter selection
def test_the_core_knows_no_checkpoint_family():
    assert not hasattr(hub.modeling, "timm_model_type")
    assert not (ROOT / "plugins" / "hub_vision" / "timm_families.txt").exists()


@pytest.mark.parametrize("architecture, name, family", [
    ("resnet10t.c3_in1k", "timm-cnn", "resnet10t"),
    ("convnext_atto", "timm-cnn", "convnext"),
    ("vit_tiny_patch16_224.augreg_in21k", "timm-vit", "vit"),
    ("deit_tiny_patch16_224", "timm-cnn", "deit"),
])
def test_the_vision_plugin_recognises_timm_configs(architecture, name, family):
    plugin, spec = get_registry().select_converter({"architecture": architecture, "pretrained_cfg": {}},
                                                   ("config.json", "model.safetensors"))
    assert (plugin, spec.name, spec.model_types) == ("vision", name, (family,))


@pytest.mark.parametrize("config", [
    {"architecture": "resnet10t"},  # no pretrained_cfg: not timm's layout
    {"architecture": "resnet10t", "pretrained_cfg": {}, "model_type": "resnet"},  # transformers'
    {"hidden_size": 8},
])
def test_other_configs_are_not_taken_for_timm(config):
    assert get_registry().select_converter(config, ("config.json",)) is None


def test_model_type_is_the_default_answer():
    for model_type, name in (("bert", "transformers-bert-family"), ("roberta", "transformers-bert-family"),
                             ("gpt2", "transformers-gpt2"), ("wav2vec2", "transformers-wav2vec2")):
        assert get_registry().select_converter({"model_type": model_type}, ())[1].name == name


def test_an_unknown_checkpoint_says_what_is_converted(tmp_path):
    folder = toy_checkpoint(tmp_path / "m", {"model_type": "no-such-type"})
    with pytest.raises(UnknownNameError, match="Hub converts these model types: .*bert"):
        hub.modeling.load_model(folder)
    folder = toy_checkpoint(tmp_path / "n", {"hidden_size": 2})
    with pytest.raises(ModelLoadError, match="nor a checkpoint an installed plugin converts"):
        hub.modeling.load_model(folder)


def test_a_third_party_converter_sees_side_files(write_module, monkeypatch, tmp_path):
    write_module("toy_convert", TOY_CONVERTER)
    use_plugins(monkeypatch, "toy_convert")
    folder = toy_checkpoint(tmp_path / "toy", {"format": "toyfmt", "size": 2}, {"scale.json": {"scale": 0.5}})
    loaded = hub.modeling.load_model(folder)
    assert loaded.architecture == "toy-linear" and loaded.converted_from == "toylib:toy-linear"
    assert loaded.config == {"size": 2, "scale": 0.5,
                             "files": ["config.json", "model.safetensors", "scale.json"]}
    # the simple way still works: a two-argument converter chosen by its model_type
    old = hub.modeling.load_model(toy_checkpoint(tmp_path / "old", {"model_type": "oldfmt", "size": 2}))
    assert old.config == {"size": 2} and old.converted_from == "oldlib:oldfmt"


# --------------------------------------------------------------------------- Checkpoint view
def test_checkpoint_reads_only_its_own_files(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "vocab.json").write_text('{"a": 0}')
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path.parent / "outside.json").write_text("{}")
    checkpoint = Checkpoint.from_folder(tmp_path, {})
    assert checkpoint.files == ("bad.json", "vocab.json")
    assert checkpoint.read_json("vocab.json") == {"a": 0}
    assert checkpoint.read_json("missing.json") is None
    assert checkpoint.read_text("../outside.json") is None and checkpoint.read_text("sub") is None
    with pytest.raises(ModelLoadError, match=r"bad\.json.*not valid JSON \(line 1"):
        checkpoint.read_json("bad.json")


def test_wav2vec2_side_files_are_read_by_the_converter(tmp_path):
    from hub_speech.models.wav2vec2 import _side_files

    (tmp_path / "vocab.json").write_text(json.dumps({"a": 1, "<pad>": 0, "b": 2}))
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"do_normalize": False,
                                                                   "sampling_rate": 8000}))
    side = _side_files(Checkpoint.from_folder(tmp_path, {}), 3)
    assert side == {"vocab": ["<pad>", "a", "b"], "do_normalize": False, "sample_rate": 8000}
    with pytest.raises(ModelLoadError, match=r"vocab\.json' has 3 tokens but the model outputs 4"):
        _side_files(Checkpoint.from_folder(tmp_path, {}), 4)
    (tmp_path / "vocab.json").write_text(json.dumps(["a", "b"]))
    with pytest.raises(ModelLoadError, match=r"vocab\.json' must map each token to its integer id"):
        _side_files(Checkpoint.from_folder(tmp_path, {}), 2)
    assert _side_files(None, 2) == {"do_normalize": True, "sample_rate": 16000}
