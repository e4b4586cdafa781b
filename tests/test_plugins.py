"""The plugin system: discovery (entry points, HUB_PLUGINS), isolation of broken plugins,
duplicate names, HUB_DISABLE_PLUGIN_AUTOLOAD, and staying free of torch on import.

Plugins here are real modules written into tmp_path; entry points come from a fake
installed distribution (a ``*.dist-info`` folder on sys.path), which is exactly what
``importlib.metadata`` reads for a pip-installed package.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import hub
import hub.plugins
from hub.cli import main
from hub.errors import UnknownNameError
from hub.plugins import get_plugin_manager
from hub.specs import load_object

ROOT = Path(__file__).resolve().parent.parent

TOY_PIPELINE = '''
"""A toy pipeline: reverses texts. Needs torch only because every Pipeline does."""
import torch

from hub.pipeline import Pipeline


class ReversePipeline(Pipeline):
    task = "text-reverse"

    @classmethod
    def from_folder(cls, folder, *, device, dtype, metadata):
        pipe = cls(torch.nn.Identity(), device=device, dtype=dtype, metadata=metadata)
        pipe.suffix = (folder / "suffix.txt").read_text()
        return pipe

    def preprocess(self, inputs, **_):
        return [{"text": t, "length": len(t)} for t in inputs]

    def collate(self, features):
        return {"length": torch.tensor([f["length"] for f in features])}

    def forward(self, batch):
        return self.model(batch["length"])

    def postprocess(self, outputs, features, **_):
        return {"reversed": features[0]["text"][::-1] + self.suffix, "length": outputs[0].item()}
'''


def toy_plugin(task: str = "text-reverse", model: str = "toy-reverse", folder: str = "",
               extra: str = "") -> str:
    """Source of a plugin module registering ``task`` (pipeline in ``toy_pipe``) and a model."""
    return textwrap.dedent(f'''
        from hub import hookimpl
        from hub.specs import ModelEntry, TaskSpec


        @hookimpl
        def hub_tasks():
            return [TaskSpec(name={task!r}, pipeline="toy_pipe:ReversePipeline",
                             aliases=("{task}-alias",), default_model={model!r})]


        @hookimpl
        def hub_models():
            return [ModelEntry(name={model!r}, task={task!r}, source={folder!r})]
    ''') + textwrap.dedent(extra)


@pytest.fixture
def write_module(tmp_path, monkeypatch) -> Iterator[Callable[[str, str], Path]]:
    """Write plugin modules into a folder on sys.path; forget them afterwards."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    written: list[str] = []

    def write(name: str, source: str) -> Path:
        path = folder / f"{name}.py"
        path.write_text(source, encoding="utf-8")
        written.append(name)
        return path

    write("toy_pipe", TOY_PIPELINE)
    yield write
    for name in written:
        sys.modules.pop(name, None)
    load_object.cache_clear()  # it caches "module:attr" -> object


@pytest.fixture
def toy_model(tmp_path) -> str:
    folder = tmp_path / "toy-model"
    folder.mkdir()
    (folder / "suffix.txt").write_text("!")
    return str(folder)


def use_plugins(monkeypatch, *modules: str) -> None:
    monkeypatch.setenv("HUB_PLUGINS", ",".join(modules))
    hub.plugins.reset()


def plugin_info(name: str):
    return next(p for p in get_plugin_manager().plugins if p.name == name)


def cli_json(capsys, *argv: str):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


# --------------------------------------------------------------------------- a working plugin
def test_plugin_from_env_provides_a_task(write_module, toy_model, monkeypatch, capsys):
    write_module("toy_plugin", toy_plugin(folder=toy_model))
    use_plugins(monkeypatch, "toy_plugin")
    info = plugin_info("toy_plugin")
    assert (info.status, info.builtin, info.distribution, info.error) == ("loaded", False, None, None)
    assert "toy_pipe" not in sys.modules  # registration did not import the pipeline

    registry = hub.get_registry()
    assert registry.task("text-reverse").plugin == "toy_plugin"
    assert registry.model("toy-reverse").origin == "plugin toy_plugin"
    assert registry.model("toy-reverse").plugin == "toy_plugin"

    pipe = hub.load("text-reverse", device="cpu")
    assert pipe.metadata["model_name"] == "toy-reverse" and pipe.metadata["task"] == "text-reverse"
    assert pipe(["abc", "hello"], batch_size=1) == [{"reversed": "cba!", "length": 3},
                                                    {"reversed": "olleh!", "length": 5}]
    assert hub.load("text-reverse-alias", device="cpu")("ab")["reversed"] == "ba!"
    assert hub.load("toy-reverse", device="cpu")("ab")["reversed"] == "ba!"
    assert "text-classify" in hub.list_tasks()  # built-ins unaffected

    assert cli_json(capsys, "predict", "text-reverse", "xyz", "--device", "cpu") == {"reversed": "zyx!", "length": 3}
    listed = cli_json(capsys, "list", "--json")
    assert {"name": "text-reverse", "plugin": "toy_plugin"}.items() <= next(
        t for t in listed["tasks"] if t["name"] == "text-reverse").items()


def test_register_an_object_at_runtime(write_module, toy_model):
    """What a notebook does: register an in-memory plugin object, then rebuild the registry."""
    import hub.registry
    from hub.specs import TaskSpec

    class Inline:
        @hub.hookimpl
        def hub_tasks(self):
            return [TaskSpec(name="inline-reverse", pipeline="toy_pipe:ReversePipeline")]

    info = get_plugin_manager().register(Inline(), "inline")
    assert info.status == "loaded"
    hub.registry.reset()
    assert hub.get_registry().task("inline-reverse").plugin == "inline"
    assert hub.load("inline-reverse", model=toy_model, device="cpu")("ab")["reversed"] == "ba!"


# --------------------------------------------------------------------------- broken plugins
def test_plugin_failing_on_import_is_reported(write_module, toy_model, monkeypatch, capsys):
    write_module("broken_plugin", "raise RuntimeError('boom: needs libfoo >= 2')\n")
    write_module("toy_plugin", toy_plugin(folder=toy_model))
    use_plugins(monkeypatch, "broken_plugin", "no_such_plugin_module", "toy_plugin")

    broken = plugin_info("broken_plugin")
    assert broken.status == "failed" and not broken.builtin
    assert broken.error.startswith("RuntimeError: boom: needs libfoo >= 2")
    assert "broken_plugin.py" in broken.error  # where it failed
    missing = plugin_info("no_such_plugin_module")
    assert missing.status == "failed" and "ModuleNotFoundError" in missing.error
    assert plugin_info("text").status == "loaded" and plugin_info("toy_plugin").status == "loaded"

    # the rest of the hub works
    assert hub.load("text-reverse", device="cpu")("ab")["reversed"] == "ba!"
    assert "text-classify" in hub.list_tasks()
    assert main(["list"]) == 0
    out, err = capsys.readouterr()
    assert "text-classify" in out
    assert "broken_plugin" in err and "hub plugins" in err  # a hint, on stderr only

    data = cli_json(capsys, "plugins", "--json")
    row = next(p for p in data["plugins"] if p["name"] == "broken_plugin")
    assert row["status"] == "failed" and "boom: needs libfoo" in row["error"] and row["builtin"] is False
    assert main(["plugins"]) == 0
    out, _ = capsys.readouterr()
    assert "failed: broken_plugin" in out and "boom: needs libfoo >= 2" in out


def test_hook_that_raises_is_recorded_and_the_rest_works(write_module, toy_model, monkeypatch, capsys):
    write_module("toy_plugin", toy_plugin(folder=toy_model, extra='''
        @hookimpl
        def hub_architectures():
            raise ValueError("architecture table is corrupt")

        @hookimpl
        def hub_converters():
            return {"not": "a list"}
    '''))
    write_module("bad_ref_plugin", textwrap.dedent('''
        from hub import hookimpl
        from hub.specs import ArchitectureSpec, TaskSpec

        @hookimpl
        def hub_tasks():
            return [TaskSpec(name="bad-ref", pipeline="no colon here")]

        @hookimpl
        def hub_architectures():
            return ["not a spec", ArchitectureSpec("toy-arch", "toy_pipe:ReversePipeline")]
    '''))
    use_plugins(monkeypatch, "toy_plugin", "bad_ref_plugin")
    registry = hub.get_registry()
    errors = {(plugin, hook): error for plugin, hook, error in get_plugin_manager().hook_errors}
    assert errors[("toy_plugin", "hub_architectures")].startswith("ValueError: architecture table is corrupt")
    assert errors[("toy_plugin", "hub_converters")] == "returned dict, expected a list"
    assert "must be a 'module:attr' string" in errors[("bad_ref_plugin", "hub_tasks")]
    assert any("bad_ref_plugin" in p and "'not a spec'" in p for p in registry.problems)

    # the same plugins' other hooks, and every other plugin, still count
    assert registry.task("text-reverse").plugin == "toy_plugin"
    assert registry.architecture("toy-arch") and registry.architecture("bert-classifier")
    assert "bad-ref" not in registry.tasks
    assert hub.load("text-reverse", device="cpu")("ab")["reversed"] == "ba!"

    data = cli_json(capsys, "plugins", "--json")
    assert {"plugin": "toy_plugin", "hook": "hub_converters",
            "error": "returned dict, expected a list"} in data["hook_errors"]
    assert main(["plugins"]) == 0
    assert "toy_plugin.hub_architectures: ValueError" in capsys.readouterr().out


def test_duplicate_task_from_a_second_plugin_is_rejected(write_module, toy_model, monkeypatch, capsys):
    write_module("dup_first", toy_plugin(folder=toy_model, model="first-model"))
    write_module("dup_second", toy_plugin(folder=toy_model, model="second-model", extra='''
        @hookimpl
        def hub_architectures():
            from hub.specs import ArchitectureSpec
            return [ArchitectureSpec("bert-classifier", "toy_pipe:ReversePipeline")]
    '''))
    use_plugins(monkeypatch, "dup_first", "dup_second")
    registry = hub.get_registry()
    assert registry.task("text-reverse").plugin == "dup_first"
    assert registry.task("text-reverse").default_model == "first-model"
    message = next(p for p in registry.problems if "'text-reverse'" in p)
    assert "'dup_first'" in message and "'dup_second'" in message
    # a third party cannot take over a built-in name either
    assert registry.architectures["bert-classifier"][0] == "text"
    assert any("'bert-classifier'" in p and "'dup_second'" in p and "'text'" in p for p in registry.problems)
    data = cli_json(capsys, "plugins", "--json")
    assert any("dup_second" in p for p in data["problems"])


def test_duplicate_task_names_are_reported(write_module, toy_model, monkeypatch):
    """Whichever plugin wins, one registration is rejected and both plugins are named."""
    write_module("dup_first", toy_plugin(folder=toy_model, model="first-model"))
    write_module("dup_second", toy_plugin(folder=toy_model, model="second-model"))
    use_plugins(monkeypatch, "dup_first", "dup_second")
    registry = hub.get_registry()
    assert registry.task("text-reverse").plugin in ("dup_first", "dup_second")
    [message] = [p for p in registry.problems if "task 'text-reverse'" in p]
    assert "'dup_first'" in message and "'dup_second'" in message and "ignored" in message
    assert hub.load("text-reverse", device="cpu")("ab")["reversed"] == "ba!"


# --------------------------------------------------------------------------- entry points
@pytest.fixture
def fake_distribution(write_module, tmp_path, toy_model) -> Path:
    """An installed-looking distribution 'fakeplugin' with two hub.plugins entry points."""
    site = tmp_path / "site"
    dist_info = site / "fakeplugin-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeplugin\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(
        "[hub.plugins]\nfake = fake_plugin_mod\nfakebroken = fake_broken_mod\n")
    write_module("fake_plugin_mod", toy_plugin(folder=toy_model))
    write_module("fake_broken_mod", "import a_dependency_that_is_not_installed\n")
    return dist_info


def test_entry_point_plugins_are_loaded(fake_distribution, capsys):
    hub.plugins.reset()
    fake = plugin_info("fake")
    assert (fake.status, fake.module, fake.distribution, fake.builtin) == (
        "loaded", "fake_plugin_mod", "fakeplugin", False)
    broken = plugin_info("fakebroken")
    assert broken.status == "failed" and "a_dependency_that_is_not_installed" in broken.error
    assert broken.distribution == "fakeplugin"
    assert plugin_info("text").builtin is True
    assert hub.get_registry().task("text-reverse").plugin == "fake"
    assert hub.load("text-reverse", device="cpu")("ab")["reversed"] == "ba!"


def test_autoload_can_be_disabled(fake_distribution, monkeypatch, capsys):
    monkeypatch.setenv("HUB_DISABLE_PLUGIN_AUTOLOAD", "1")
    hub.plugins.reset()
    fake = plugin_info("fake")
    assert fake.status == "skipped" and "HUB_DISABLE_PLUGIN_AUTOLOAD" in fake.error
    assert plugin_info("fakebroken").status == "skipped"  # not even imported
    assert "fake_plugin_mod" not in sys.modules and "fake_broken_mod" not in sys.modules
    assert plugin_info("text").status == "loaded"  # built-ins stay
    assert "text-classify" in hub.list_tasks()
    with pytest.raises(UnknownNameError):
        hub.load("text-reverse")
    data = cli_json(capsys, "plugins", "--json")
    assert {p["name"]: p["status"] for p in data["plugins"]}["fake"] == "skipped"

    # ... but the same plugin can still be named explicitly
    monkeypatch.setenv("HUB_PLUGINS", "fake_plugin_mod")
    hub.plugins.reset()
    explicit = next(p for p in get_plugin_manager().plugins if p.module == "fake_plugin_mod"
                    and p.status == "loaded")
    assert explicit.builtin is False
    assert hub.load("text-reverse", device="cpu")("ab")["reversed"] == "ba!"


@pytest.mark.parametrize("value, disabled", [("1", True), ("true", True), ("0", False), ("", False)])
def test_autoload_env_values(fake_distribution, monkeypatch, value, disabled):
    monkeypatch.setenv("HUB_DISABLE_PLUGIN_AUTOLOAD", value)
    hub.plugins.reset()
    assert (plugin_info("fake").status == "skipped") is disabled


# --------------------------------------------------------------------------- staying light
def test_import_hub_and_plugin_registration_do_not_import_torch():
    """`import hub` and building the registry (which imports every plugin module) stay light."""
    script = (
        "import sys\n"
        "import hub\n"
        "assert 'torch' not in sys.modules, 'import hub imported torch'\n"
        "hub.get_registry()\n"
        "from hub.plugins import get_plugin_manager\n"
        "bad = [p.name for p in get_plugin_manager().plugins if p.status == 'failed']\n"
        "assert not bad, bad\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'tokenizers', 'safetensors') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
