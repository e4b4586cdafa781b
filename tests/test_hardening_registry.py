"""Hostile registry overlays, recipes and plugins (issue 12, items 3, 5, 8, 9, 16, 17, 19).

Groups: names (a plugin or overlay cannot take a name that is already registered), plugin
failures that are BaseExceptions (sys.exit at import, in a hook, in a lazily imported
pipeline module), registry sources that leave their root, YAML alias bombs and other
resource limits, field and element types, encodings and one-line YAML errors.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import hub
import hub.plugins
from hub._yaml import YAMLFileError, load_yaml_file, load_yaml_text
from hub.cli import main
from hub.errors import ConfigError, HubError, InvalidInputError, ModelLoadError, PluginError, RegistryError
from hub.plugins import PluginManager, get_plugin_manager
from hub.registry import get_registry
from hub.sources import check_source, resolve_source
from hub.specs import ConverterSpec, ModelEntry, TaskSpec
from tests.test_plugins import cli_json, plugin_info, toy_model, toy_plugin, use_plugins, write_module  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent


def overlay(tmp_path: Path, monkeypatch, text: str | bytes, name: str = "overlay.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    monkeypatch.setenv("HUB_REGISTRY", str(path))
    hub.plugins.reset()
    return path


def hijacker(task: str = "evil-task", aliases: tuple[str, ...] = ()) -> str:
    """A third-party plugin registering ``task`` with ``aliases``."""
    return textwrap.dedent(f'''
        from hub import hookimpl
        from hub.specs import TaskSpec


        @hookimpl
        def hub_tasks():
            return [TaskSpec(name={task!r}, pipeline="toy_pipe:ReversePipeline", aliases={aliases!r})]
    ''')


# =========================================================================== item 3: names
def test_a_plugin_cannot_take_built_in_aliases(write_module, monkeypatch, capsys):
    write_module("evil_plugin", hijacker("evil-task", ("sentiment-analysis", "asr", "recsys", "evil-alias")))
    use_plugins(monkeypatch, "evil_plugin")
    registry = get_registry()
    for alias, owner in (("sentiment-analysis", "text-classify"), ("asr", "speech-recognize"),
                         ("recsys", "recommend")):
        task, entry = registry.resolve(alias)  # what hub.load(alias) uses
        assert (task.name, entry) == (owner, None)
        assert task.plugin != "evil_plugin"
        [problem] = [p for p in registry.problems if f"alias {alias!r}" in p]
        assert "'evil_plugin'" in problem and f"alias of task {owner!r}" in problem and "ignored" in problem
    assert registry.resolve("evil-alias")[0].name == "evil-task"  # a free alias is fine
    assert registry.task("evil-task").aliases == ("evil-alias",)  # only what was accepted
    data = cli_json(capsys, "plugins", "--json")
    assert sum("evil_plugin" in p for p in data["problems"]) == 3
    assert main(["plugins"]) == 0
    assert "alias 'asr' of task 'evil-task'" in capsys.readouterr().out


@pytest.mark.parametrize("name, taken_by", [
    ("asr", "already an alias of task 'speech-recognize'"),  # a built-in plugin's alias
    ("sentiment-analysis", "already an alias of task 'text-classify'"),  # a TaskSpec alias (was registry.yaml's)
    ("gpt2", "is a built-in catalogue model"),  # would take over hub.load("gpt2")
    ("text-classify", "already registered by plugin 'text'"),
])
def test_a_plugin_task_cannot_take_a_registered_name(write_module, monkeypatch, name, taken_by):
    write_module("evil_plugin", hijacker(name))
    use_plugins(monkeypatch, "evil_plugin")
    registry = get_registry()
    assert registry.resolve(name)[0].plugin != "evil_plugin"
    [problem] = [p for p in registry.problems if "evil_plugin" in p]
    assert f"task {name!r}" in problem and taken_by in problem


def test_a_plugin_alias_cannot_hide_a_built_in_model(write_module, monkeypatch):
    write_module("evil_plugin", hijacker("evil-task", ("sentiment-minilm",)))
    use_plugins(monkeypatch, "evil_plugin")
    registry = get_registry()
    assert registry.resolve("sentiment-minilm")[1].name == "sentiment-minilm"
    assert any("'sentiment-minilm'" in p and "built-in catalogue model" in p for p in registry.problems)


def test_two_third_party_plugins_the_first_alias_wins(write_module, monkeypatch):
    write_module("first_plugin", hijacker("first-task", ("shared-alias",)))
    write_module("second_plugin", hijacker("second-task", ("shared-alias",)))
    use_plugins(monkeypatch, "first_plugin", "second_plugin")
    registry = get_registry()
    assert registry.task("shared-alias").name == "first-task"
    [problem] = [p for p in registry.problems if "shared-alias" in p]
    assert "'second-task'" in problem and "'second_plugin'" in problem and "'first-task'" in problem


def test_a_plugin_cannot_take_a_built_in_converter_or_model(write_module, monkeypatch):
    write_module("evil_plugin", textwrap.dedent('''
        from hub import hookimpl
        from hub.specs import ConverterSpec, ModelEntry

        @hookimpl
        def hub_converters():
            return [ConverterSpec(name="evil", source="transformers", model_types=("bert",),
                                  architecture="bert-classifier", convert="toy_pipe:ReversePipeline")]

        @hookimpl
        def hub_models():
            return [ModelEntry(name="textstats-basic", task="text-classify", source="hf://evil/model")]
    '''))
    use_plugins(monkeypatch, "evil_plugin")
    registry = get_registry()
    assert registry.converter_for("bert").name != "evil"
    assert any("model_type 'bert'" in p and "'evil_plugin'" in p for p in registry.problems)
    if "textstats" in {p.name for p in get_plugin_manager().plugins if p.status == "loaded"}:
        assert registry.model("textstats-basic").source != "hf://evil/model"


def test_overlay_may_add_aliases_but_not_steal_one(tmp_path, monkeypatch):
    path = overlay(tmp_path, monkeypatch,
                   "tasks:\n  text-classify: {aliases: [opinion, asr]}\n"
                   "  asr: {description: Configured through an alias.}\n")
    registry = get_registry()
    assert registry.task("opinion").name == "text-classify"
    assert registry.task("asr").name == "speech-recognize"  # not re-pointed
    [problem] = [p for p in registry.problems if "'asr'" in p]
    assert str(path) in problem and "already an alias of task 'speech-recognize'" in problem
    assert "asr" not in registry.tasks  # `tasks: {asr: ...}` configured the aliased task
    assert registry.task("speech-recognize").description == "Configured through an alias."


def test_overlay_model_hidden_by_a_task_name_is_reported(tmp_path, monkeypatch):
    overlay(tmp_path, monkeypatch, "models:\n  ner: {task: text-classify, source: 'hf://me/ner'}\n")
    registry = get_registry()
    assert any("model 'ner'" in p and "hidden" in p for p in registry.problems)


@pytest.mark.parametrize("make, problem", [
    (lambda: TaskSpec(name="t-x", pipeline="toy_pipe:ReversePipeline", aliases="asr"), "aliases must be a tuple"),
    (lambda: TaskSpec(name="t-x", pipeline="toy_pipe:ReversePipeline", aliases=(1,)), "an item of aliases"),
    (lambda: ConverterSpec(name="c", source="x", model_types="bert", architecture="a", convert="m:f"),
     "model_types must be a tuple"),
    (lambda: ModelEntry(name="m", task="t", source="hf://a/b", labels="ab"), "labels must be a tuple"),
    (lambda: ModelEntry(name="m", task="t", source=""), "source must be a non-empty string"),
], ids=["aliases-str", "aliases-int", "model_types-str", "labels-str", "source-empty"])
def test_malformed_registration_records_are_refused(make, problem):
    """A bare string would silently become its characters: aliases "asr" -> 'a', 's', 'r'."""
    with pytest.raises(PluginError, match=problem):
        make()


# =========================================================================== item 9: BaseException in plugins
@pytest.mark.parametrize("statement, shown", [
    ("import sys; sys.exit(3)", "SystemExit: the plugin called sys.exit(3)"),
    ("raise SystemExit('bye')", "sys.exit('bye')"),
    ("raise MemoryError('plugin table too large')", "MemoryError: plugin table too large"),
    ("raise GeneratorExit()", "GeneratorExit"),
])
def test_plugin_exiting_at_import_is_a_failed_plugin(write_module, toy_model, monkeypatch, capsys,
                                                      statement, shown):
    write_module("exiting_plugin", statement + "\n")
    write_module("toy_plugin", toy_plugin(folder=toy_model))
    use_plugins(monkeypatch, "exiting_plugin", "toy_plugin")
    info = plugin_info("exiting_plugin")
    assert info.status == "failed" and shown in info.error and "exiting_plugin.py" in info.error
    assert plugin_info("toy_plugin").status == "loaded"
    assert main(["list", "--json"]) == 0  # the rest keeps working
    assert "exiting_plugin" in capsys.readouterr().err
    data = cli_json(capsys, "plugins", "--json")
    assert next(p for p in data["plugins"] if p["name"] == "exiting_plugin")["status"] == "failed"
    assert hub.load("text-reverse", device="cpu")("ab")["reversed"] == "ba!"


def test_plugin_exiting_in_a_hook_is_a_hook_error(write_module, toy_model, monkeypatch, capsys):
    write_module("toy_plugin", toy_plugin(folder=toy_model, extra='''
        @hookimpl
        def hub_architectures():
            import sys
            sys.exit(4)
    '''))
    use_plugins(monkeypatch, "toy_plugin")
    registry = get_registry()
    errors = {(p, h): e for p, h, e in get_plugin_manager().hook_errors}
    assert "sys.exit(4)" in errors[("toy_plugin", "hub_architectures")]
    assert registry.task("text-reverse").plugin == "toy_plugin"  # its other hooks still count
    assert main(["list"]) == 0
    assert "1 hook error" in capsys.readouterr().err


@pytest.mark.parametrize("statement, shown", [("import sys\nsys.exit(5)", r"sys\.exit\(5\)"),
                                             ("raise RuntimeError('no GPU driver')", "RuntimeError: no GPU driver")])
def test_pipeline_module_failing_on_import_gives_a_plugin_error(write_module, toy_model, monkeypatch,
                                                                statement, shown):
    write_module("exiting_pipe", statement + "\n")
    write_module("toy_plugin", toy_plugin(folder=toy_model).replace("toy_pipe:ReversePipeline",
                                                                    "exiting_pipe:ReversePipeline"))
    use_plugins(monkeypatch, "toy_plugin")
    with pytest.raises(PluginError, match=rf"plugin module 'exiting_pipe'.*{shown}"):
        hub.load("text-reverse", device="cpu")
    assert main(["list"]) == 0


def test_keyboard_interrupt_still_stops_hub(write_module):
    write_module("interrupting_plugin", "raise KeyboardInterrupt\n")
    with pytest.raises(KeyboardInterrupt):
        PluginManager(autoload=False).register_module("interrupting_plugin")


# =========================================================================== item 5: sources
BAD_SOURCES = [
    ("package:", "names no package"),
    ("package:../../etc", "not a Python package name"),
    ("package:hub_text/../..", "relative path of plain folder names"),
    ("package:hub_text/weights/../../../etc", "relative path of plain folder names"),
    ("package:hub_text//etc/passwd", "relative path of plain folder names"),
    ("package:hub_text/./weights", "relative path of plain folder names"),
    ("package:hub_text/weights\\..\\..", "relative path of plain folder names"),
    ("package:hub_text", "relative path of plain folder names"),
    ("package:/etc", "names no package"),
    ("hf://../../etc", "Malformed Hugging Face source"),
    ("hf://", "the repo id is empty"),
    ("hf:///etc/passwd", "Malformed Hugging Face source"),
    ("hf://org/..", "Malformed Hugging Face repo id"),
    ("hf://org/name@", "nothing after '@'"),
    ("hf://org/name@../../x", "Malformed revision"),
    ("hf://org/name.git", "must not end in '.git'"),
    ("hf://org--x/name", "Malformed Hugging Face repo id"),
    ("", "source is empty"),
    (" hf://org/name", "leading or trailing spaces"),
    ("file:///etc/passwd", "unsupported source"),
]


@pytest.mark.parametrize("source, problem", BAD_SOURCES)
def test_bad_sources_are_refused_when_the_registry_is_read(tmp_path, monkeypatch, source, problem):
    path = overlay(tmp_path, monkeypatch, f"models:\n  my-model: {{task: text-classify, source: {source!r}}}\n")
    with pytest.raises(RegistryError) as info:
        get_registry()
    assert (info.value.file, info.value.entry, info.value.field) == (str(path), "my-model", "source")
    assert problem in str(info.value) and "\n" not in str(info.value)
    assert main(["list"]) == 2  # `hub list` reports it instead of a traceback


@pytest.mark.parametrize("source", ["package:hub_text/weights/sentiment-minilm", "hf://gpt2",
                                    "hf://org/name@v1.0", "hf://org/name@refs/pr/1", "./models/mine",
                                    "~/models/mine", "/abs/models/mine"])
def test_good_sources_are_accepted(source):
    check_source(source)


@pytest.mark.parametrize("repo_id", ["a/b", "gpt2", "-a/b", "a/b-", ".a/b", "a..b/c", "a--b/c", "a/b.git",
                                     "a/b/c", "a" * 97 + "/b", "a/" + "b" * 96, "a/" + "b" * 97, "a b/c",
                                     "", "/b", "a/"])
def test_hf_ids_follow_huggingface_hub_rules(repo_id):
    """Whatever huggingface_hub's own validator refuses, the registry refuses too."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
        hf_ok = bool(repo_id)
    except HFValidationError:
        hf_ok = False
    try:
        check_source(f"hf://{repo_id}")
        ours = True
    except ValueError:
        ours = False
    assert ours == hf_ok


def test_a_package_source_may_not_leave_its_package_at_resolution(tmp_path, monkeypatch):
    """Defence in depth: even a well-formed path that is a symlink out of the package is refused."""
    package = tmp_path / "site" / "leaky_pkg"
    (package / "weights").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    outside = tmp_path / "outside"
    outside.mkdir()
    (package / "weights" / "model").symlink_to(outside, target_is_directory=True)
    (package / "weights" / "fine").mkdir()
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    try:
        with pytest.raises(ModelLoadError, match="outside package 'leaky_pkg'"):
            resolve_source("package:leaky_pkg/weights/model")
        assert resolve_source("package:leaky_pkg/weights/fine").folder == (package / "weights" / "fine").resolve()
        with pytest.raises(ModelLoadError, match="relative path of plain folder names"):
            resolve_source("package:leaky_pkg/../..")  # not through the registry at all
    finally:
        sys.modules.pop("leaky_pkg", None)


def test_plugin_model_with_a_bad_source_is_rejected(write_module, monkeypatch):
    write_module("evil_plugin", textwrap.dedent('''
        from hub import hookimpl
        from hub.specs import ModelEntry

        @hookimpl
        def hub_models():
            return [ModelEntry(name="escape", task="text-classify", source="package:hub_text/../../.."),
                    ModelEntry(name="fine", task="text-classify", source="hf://org/fine")]
    '''))
    use_plugins(monkeypatch, "evil_plugin")
    registry = get_registry()
    assert "escape" not in registry.models and "fine" in registry.models
    assert any("'escape'" in p and "'evil_plugin'" in p and "plain folder names" in p for p in registry.problems)


@pytest.mark.parametrize("model", ["hf://../../etc", "hf://", "hf://a/b@"])
def test_malformed_hf_model_argument_is_a_hub_error(model):
    with pytest.raises(InvalidInputError, match="Malformed Hugging Face|the repo id is empty|nothing after"):
        hub.load("text-classify", model=model)


# =========================================================================== item 8: alias bombs and limits
def billion_laughs(indent: str = "      ") -> str:
    lines = [f'{indent}a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{indent}{name}: &{name} [{','.join(['*' + prev] * 9)}]")
    return "\n".join(lines) + "\n"


BOMB_OVERLAY = ("models:\n  bomb:\n    task: text-classify\n    source: hf://org/bomb\n    metrics:\n"
                + billion_laughs())


def run_cli(*argv: str, timeout: float = 15) -> tuple[subprocess.CompletedProcess, float]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "hub", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ))
    return proc, time.perf_counter() - start


@pytest.mark.parametrize("argv", [("list", "--json"), ("info", "bomb"), ("info", "gpt2")])
def test_an_alias_bomb_overlay_fails_fast(tmp_path, monkeypatch, argv):
    assert len(BOMB_OVERLAY) < 1100  # a 1 KB file that would expand to 9**9 strings
    path = overlay(tmp_path, monkeypatch, BOMB_OVERLAY)
    proc, seconds = run_cli(*argv)
    assert seconds < 5 and proc.returncode == 2, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"error: {path}:6:10: YAML anchor '&a' is not allowed")
    assert "write the values out" in line


def test_an_alias_bomb_in_a_recipe_fails_fast(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("task: text-classify\ndata: {train: train.jsonl}\noptions:\n" + billion_laughs("  "))
    from hub.train.recipe import load_recipe  # imports torch: outside the clock (seconds under load)

    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"train\.yaml:4:6: YAML anchor '&a' is not allowed"):
        load_recipe(path)
    assert time.perf_counter() - start < 5


def test_a_single_alias_is_refused_with_its_line(tmp_path, monkeypatch):
    path = overlay(tmp_path, monkeypatch, "models:\n  m: {task: text-classify, source: 'hf://a/b',\n"
                                          "      labels: *labels}\n")
    with pytest.raises(RegistryError) as info:
        get_registry()
    assert str(info.value).startswith(f"{path}:3:15: YAML alias '*labels' is not allowed")
    assert (info.value.file, info.value.line, info.value.column) == (str(path), 3, 15)


def test_deep_nesting_and_huge_files_are_refused(tmp_path, monkeypatch):
    path = overlay(tmp_path, monkeypatch, "models: " + "[" * 100_000 + "]" * 100_000 + "\n")
    start = time.perf_counter()
    with pytest.raises(RegistryError, match=r":1:\d+: nested more than 64 levels deep .*HUB_YAML_MAX_DEPTH"):
        get_registry()
    assert time.perf_counter() - start < 5
    path.write_text("models: {}\n" + "# padding\n" * 4000)  # 40 KB; the shipped registry is ~10 KB
    monkeypatch.setenv("HUB_YAML_MAX_BYTES", "30000")
    hub.plugins.reset()
    with pytest.raises(RegistryError, match=f"{path}: is larger than 30000 bytes.*HUB_YAML_MAX_BYTES"):
        get_registry()
    assert load_yaml_file(path, max_bytes=50_000) == {"models": {}}  # the keyword raises the limit
    monkeypatch.setenv("HUB_YAML_MAX_BYTES", "lots")
    with pytest.raises(HubError, match="HUB_YAML_MAX_BYTES='lots' is not a whole number"):
        load_yaml_file(path)


def test_nesting_limit_is_adjustable():
    text = "a: " + "[" * 70 + "]" * 70
    with pytest.raises(YAMLFileError, match="nested more than 64"):
        load_yaml_text(text, "f.yaml")
    assert load_yaml_text(text, "f.yaml", max_depth=100)["a"] is not None


# =========================================================================== item 16: types in overlays
@pytest.mark.parametrize("text, entry, field, problem", [
    ("tasks:\n  text-classify: {aliases: [1, 2]}\n", "text-classify", "aliases", "item 0 is int (1)"),
    ("tasks:\n  text-classify: {aliases: [opinion, 2.5]}\n", "text-classify", "aliases", "item 1 is float"),
    ("tasks:\n  text-classify: {aliases: [yes]}\n", "text-classify", "aliases", "as booleans: quote"),
    ("tasks:\n  text-classify: {aliases: ['']}\n", "text-classify", "aliases", "must be non-empty"),
    ("tasks:\n  text-classify: {aliases: [' padded']}\n", "text-classify", "aliases", "leading or trailing"),
    ("tasks:\n  text-classify: {aliases: asr}\n", "text-classify", "aliases", "must be a list, got str"),
    ("tasks:\n  text-classify: {default: no}\n", "text-classify", "default", "as booleans: quote"),
    ("tasks:\n  text-classify: {default: ''}\n", "text-classify", "default", "must be non-empty"),
    ("tasks:\n  text-classify: {default: }\n", "text-classify", "default", "YAML reads an empty value as null"),
    ("tasks:\n  text-classify: {description: 2024-01-01}\n", "text-classify", "description", "got date"),
    ("tasks:\n  3: {default: gpt2}\n", "3", None, "a task name must be a string, got int"),
    ("models:\n  1: {task: text-classify, source: 'hf://a/b'}\n", "1", None,
     "a model name must be a string, got int (1); quote"),
    ("models:\n  no: {task: text-classify, source: 'hf://a/b'}\n", "False", None, "as booleans"),
    ("models:\n  ' m': {task: text-classify, source: 'hf://a/b'}\n", " m", None, "leading or trailing"),
    ("models:\n  m: {task: 5, source: 'hf://a/b'}\n", "m", "task", "must be a str, got int"),
    ("models:\n  m: {task: text-classify, source: 7}\n", "m", "source", "must be a str, got int"),
    ("models:\n  m: {task: text-classify, source: 'hf://a/b', architecture: [bert]}\n", "m",
     "architecture", "must be a str, got list"),
    ("models:\n  m: {task: text-classify, source: 'hf://a/b', labels: [a, on]}\n", "m", "labels",
     "item 1 is bool (True)"),
    ("models:\n  m: {task: text-classify, source: 'hf://a/b', metrics: {1: 0.5}}\n", "m", "metrics",
     "metric names must be strings"),
    ("models:\n  m: {task: text-classify, source: 'hf://a/b', 7: x}\n", "m", "7", "unknown field"),
    ("schema: true\n", None, "schema", "unsupported schema True"),
    ("1: x\nfoo: y\n", None, "1", "unknown top-level key"),
    ("models: [a, b]\n", None, "models", "must be a mapping"),
])
def test_overlay_field_types(tmp_path, monkeypatch, text, entry, field, problem):
    path = overlay(tmp_path, monkeypatch, text)
    with pytest.raises(RegistryError) as info:
        get_registry()
    assert (info.value.file, info.value.entry, info.value.field) == (str(path), entry, field)
    assert problem in str(info.value)


@pytest.mark.parametrize("text, line, column, key", [
    ("models:\n  a: {task: text-classify, source: 'hf://a/b'}\nmodels:\n  b: {task: x, source: 'hf://a/c'}\n",
     3, 1, "'models'"),
    ("models:\n  a: {task: text-classify, source: 'hf://a/b'}\n  a: {task: fill-mask, source: 'hf://a/c'}\n",
     3, 3, "'a'"),
    ("models:\n  a: {task: text-classify, source: 'hf://a/b', task: fill-mask}\n", 2, 48, "'task'"),
])
def test_duplicate_keys_are_refused(tmp_path, monkeypatch, text, line, column, key):
    path = overlay(tmp_path, monkeypatch, text)
    with pytest.raises(RegistryError) as info:
        get_registry()
    assert str(info.value).startswith(f"{path}:{line}:{column}: duplicate key {key}")
    assert "remove or rename one" in str(info.value)


# =========================================================================== items 17, 19: encodings, one-line errors
def test_non_utf8_overlay_names_file_line_and_column(tmp_path, monkeypatch):
    path = overlay(tmp_path, monkeypatch, b"models:\n  m: {task: text-classify, source: 'hf://a/b',"
                                          b" description: caf\xe9}\n")
    with pytest.raises(RegistryError) as info:
        get_registry()
    assert str(info.value) == (f"{path}:2:64: byte 0xe9 is not valid UTF-8 (invalid continuation byte); "
                               "save the file as UTF-8")
    assert main(["list"]) == 2


def test_utf8_bom_overlay_is_accepted(tmp_path, monkeypatch):
    overlay(tmp_path, monkeypatch, "\ufeffmodels:\n  bom-model: {task: text-classify, source: 'hf://a/b'}\n"
            .encode("utf-8"))
    assert get_registry().model("bom-model").source == "hf://a/b"


def test_utf16_overlay_is_named(tmp_path, monkeypatch):
    path = overlay(tmp_path, monkeypatch, "models: {}\n".encode("utf-16"))
    with pytest.raises(RegistryError, match=f"{path}:1:1: the file is UTF-16.*save it as UTF-8"):
        get_registry()


@pytest.mark.parametrize("text, position, problem", [
    ("models:\n  my-model: {task: [unclosed\n", "3:1", "not valid YAML: expected ',' or ']'"),
    ("models:\n  m: {task: text-classify, source: x\x00}\n", "2:37", "character U+0000 is not allowed"),
    ("models:\n  m: {task: !!int abc, source: x}\n", "2:13", "cannot read the value 'abc' as int"),
    ("models:\n  m: {task: 2024-13-45, source: x}\n", "2:13", "as timestamp: month must be in 1..12"),
    ("models:\n  m: !!python/object/apply:os.system [ls]\n", "2:6", "could not determine a constructor"),
])
def test_yaml_errors_fit_on_one_line(tmp_path, monkeypatch, text, position, problem):
    path = overlay(tmp_path, monkeypatch, text)
    with pytest.raises(RegistryError) as info:
        get_registry()
    message = str(info.value)
    assert message.startswith(f"{path}:{position}: ") and problem in message and "\n" not in message
    assert info.value.file == str(path)


# --------------------------------------------------------------------------- recipes
def write_recipe(tmp_path: Path, body: str | bytes) -> Path:
    (tmp_path / "train.jsonl").write_text('{"text": "a", "label": "x"}\n')
    path = tmp_path / "train.yaml"
    if isinstance(body, str):
        path.write_text(body, encoding="utf-8")
    else:
        path.write_bytes(body)
    return path


@pytest.mark.parametrize("written, value", [("5e-5", 5e-5), ("1E-3", 1e-3), ("3.0e-4", 3e-4), ("2e+2", 200.0)])
def test_recipe_float_without_a_dot_is_a_number(tmp_path, written, value):
    from hub.train.recipe import load_recipe

    path = write_recipe(tmp_path, f"task: text-classify\ndata: {{train: train.jsonl}}\n"
                                  f"training: {{learning_rate: {written}, epochs: 1}}\n")
    recipe = load_recipe(path)
    assert recipe.training["learning_rate"] == value and isinstance(recipe.training["learning_rate"], float)


@pytest.mark.parametrize("body, expected", [
    (b"task: text-classify\ndata: {train: train.jsonl}\noutput: r\xe9sultat\n",
     "train.yaml:3:10: byte 0xe9 is not valid UTF-8"),
    (b"task: text-classify\ndata: {train: train.jsonl\n", "train.yaml:3:1: not valid YAML"),
    (b"task: text-classify\ntraining: {epochs: 1}\ndata: {train: train.jsonl}\ntraining: {epochs: 2}\n",
     "train.yaml:4:1: duplicate key 'training' (first given on line 2)"),
])
def test_recipe_yaml_errors_name_file_line_and_column(tmp_path, body, expected):
    from hub.train.recipe import load_recipe

    path = write_recipe(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_recipe(path)
    message = str(info.value)
    assert message.startswith(str(path.parent)) and expected in message and "\n" not in message
    assert (info.value.file, info.value.line) == (str(path), int(expected.split(":")[1]))


def test_recipe_with_a_bom_is_accepted(tmp_path):
    from hub.train.recipe import load_recipe

    path = write_recipe(tmp_path, "\ufefftask: text-classify\ndata: {train: train.jsonl}\n".encode("utf-8"))
    assert load_recipe(path).task == "text-classify"


def test_cli_registry_commands_stay_torch_free_with_an_overlay(tmp_path, monkeypatch):
    overlay(tmp_path, monkeypatch, "models:\n  m: {task: text-classify, source: 'hf://a/b', "
                                   "metrics: {lr: 5e-5}}\n")
    script = ("import sys\nfrom hub.cli import main\n"
              "assert main(['list', '--json']) == 0 and main(['info', 'm']) == 0 and main(['plugins']) == 0\n"
              "assert 'torch' not in sys.modules\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    assert get_registry().model("m").metrics == {"lr": 5e-5}
