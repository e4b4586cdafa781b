"""The catalogue: registry.yaml, user overlays and plugin registrations, merged.

Resolution order for catalogue entries (later wins): plugin ``hub_models`` hooks,
the shipped ``registry.yaml``, the per-user file (``$XDG_CONFIG_HOME/hub/registry.yaml``,
by default ``~/.config/hub/registry.yaml``), then every file named in ``HUB_REGISTRY``
(``os.pathsep``-separated). Files are validated on load; errors name the file, the
entry and the field. Unknown names raise :class:`~hub.errors.UnknownNameError`
listing the closest matches.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from hub.errors import RegistryError, UnknownNameError
from hub.specs import ArchitectureSpec, ConverterSpec, ModelEntry, TaskSpec

REGISTRY_ENV = "HUB_REGISTRY"
SCHEMA_VERSION = 1
_TASK_FIELDS = {"default": str, "aliases": list, "description": str}
_MODEL_FIELDS = {
    "task": str, "source": str, "architecture": str, "plugin": str, "license": str,
    "description": str, "labels": list, "metrics": dict,
}
_REQUIRED_MODEL_FIELDS = ("task", "source")


@dataclass
class Task:
    """A task as the registry sees it: the plugin's spec plus catalogue settings."""

    name: str
    spec: TaskSpec | None  # None: declared in a file but no installed plugin provides it
    plugin: str | None
    default_model: str | None
    aliases: tuple[str, ...] = ()
    description: str = ""


@dataclass
class Registry:
    tasks: dict[str, Task] = field(default_factory=dict)
    models: dict[str, ModelEntry] = field(default_factory=dict)
    architectures: dict[str, tuple[str, ArchitectureSpec]] = field(default_factory=dict)
    converters: dict[str, tuple[str, ConverterSpec]] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # rejected plugin registrations
    files: list[str] = field(default_factory=list)

    # -- lookup ------------------------------------------------------------------
    def task(self, name: str) -> Task:
        canonical = self.aliases.get(name, name)
        if canonical in self.tasks:
            return self.tasks[canonical]
        raise UnknownNameError("task", name, [*self.tasks, *self.aliases],
                               hint="Run `hub list` to see every task.")

    def model(self, name: str) -> ModelEntry:
        if name in self.models:
            return self.models[name]
        raise UnknownNameError("model", name, self.models, hint="Run `hub list` to see the catalogue.")

    def architecture(self, name: str) -> ArchitectureSpec:
        if name in self.architectures:
            return self.architectures[name][1]
        raise UnknownNameError("architecture", name, self.architectures)

    def converter_for(self, model_type: str) -> ConverterSpec:
        if model_type in self.converters:
            return self.converters[model_type][1]
        raise UnknownNameError(
            "checkpoint model_type", model_type, self.converters,
            hint="Hub converts these model types: " + ", ".join(sorted(self.converters)) + ".",
        )

    def resolve(self, name: str) -> tuple[Task, ModelEntry | None]:
        """A task name/alias, or a catalogue model name -> (task, entry or None)."""
        canonical = self.aliases.get(name, name)
        if canonical in self.tasks:
            return self.tasks[canonical], None
        if name in self.models:
            entry = self.models[name]
            return self.task(entry.task), entry
        raise UnknownNameError("task or model", name, [*self.tasks, *self.aliases, *self.models],
                               hint="Run `hub list` to see every task and model.")

    def list_models(self, pattern: str = "*", task: str | None = None) -> list[ModelEntry]:
        """Catalogue entries whose name matches the glob ``pattern`` (timm style)."""
        wanted = self.task(task).name if task else None
        return [m for n, m in sorted(self.models.items())
                if fnmatch.fnmatchcase(n, pattern) and (wanted is None or m.task == wanted)]


# -- building ---------------------------------------------------------------------
def shipped_registry_path() -> Path:
    """registry.yaml inside the installed package, or at the source tree's root."""
    packaged = resources.files("hub") / "registry.yaml"
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "registry.yaml"


def user_registry_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "hub" / "registry.yaml"


def registry_files() -> list[Path]:
    files = [shipped_registry_path()]
    user = user_registry_path()
    if user.is_file():
        files.append(user)
    for item in filter(None, os.environ.get(REGISTRY_ENV, "").split(os.pathsep)):
        path = Path(item).expanduser()
        if not path.is_file():
            raise RegistryError(str(path), None, None,
                                f"file named in {REGISTRY_ENV} does not exist.")
        files.append(path)
    return files


def read_registry_file(path: Path) -> dict[str, Any]:
    """Parse and validate one registry file; returns {'tasks': ..., 'models': ...}."""
    import yaml

    where = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise RegistryError(where, None, None, f"not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RegistryError(where, None, None, "the top level must be a mapping with 'tasks' and 'models'.")
    unknown = set(data) - {"schema", "tasks", "models"}
    if unknown:
        raise RegistryError(where, None, sorted(unknown)[0],
                            "unknown top-level key; allowed: schema, tasks, models.")
    if data.get("schema", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise RegistryError(where, None, "schema", f"unsupported schema {data['schema']!r}; "
                            f"this Hub reads schema {SCHEMA_VERSION}.")
    tasks = _validate_section(where, data.get("tasks") or {}, "tasks", _TASK_FIELDS, ())
    models = _validate_section(where, data.get("models") or {}, "models", _MODEL_FIELDS,
                               _REQUIRED_MODEL_FIELDS)
    for name, entry in models.items():
        for key in ("labels",):
            if key in entry and not all(isinstance(x, str) for x in entry[key]):
                raise RegistryError(where, name, key, "must be a list of strings.")
        source = entry["source"]
        if not (source.startswith(("hf://", "package:")) or "://" not in source):
            raise RegistryError(where, name, "source", f"unsupported source {source!r}; use "
                                "'hf://org/name@revision', 'package:pkg/path' or a local path.")
        if "://" not in source and not source.startswith("package:"):
            entry["source"] = str((path.parent / Path(source).expanduser()).resolve())
    return {"tasks": tasks, "models": models}


def _validate_section(where: str, section: Any, section_name: str, fields: dict[str, type],
                      required: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    if not isinstance(section, dict):
        raise RegistryError(where, None, section_name, "must be a mapping of name -> fields.")
    for name, entry in section.items():
        if not isinstance(entry, dict):
            raise RegistryError(where, str(name), None, "must be a mapping of fields.")
        for key, value in entry.items():
            if key not in fields:
                raise RegistryError(where, str(name), key,
                                    "unknown field; allowed: " + ", ".join(sorted(fields)) + ".")
            if not isinstance(value, fields[key]):
                raise RegistryError(where, str(name), key, f"must be a {fields[key].__name__}, "
                                    f"got {type(value).__name__} ({value!r}).")
        for key in required:
            if key not in entry:
                raise RegistryError(where, str(name), key, "required field is missing.")
    return {str(k): dict(v) for k, v in section.items()}


def build_registry() -> Registry:
    from hub.plugins import get_plugin_manager

    manager = get_plugin_manager()
    manager.hook_errors.clear()  # collect() below calls every hook again
    reg = Registry()

    def claim(table: dict, kind: str, key: str, plugin: str, item: Any) -> bool:
        if key in table:
            owner = table[key][0] if isinstance(table[key], tuple) else table[key].plugin
            reg.problems.append(f"{kind} {key!r} from plugin {plugin!r} ignored: "
                                f"already registered by plugin {owner!r}.")
            return False
        return True

    for plugin, spec in manager.collect("hub_tasks"):
        if not isinstance(spec, TaskSpec):
            reg.problems.append(f"plugin {plugin!r}: hub_tasks returned {spec!r}, not a TaskSpec")
        elif claim(reg.tasks, "task", spec.name, plugin, spec):
            reg.tasks[spec.name] = Task(spec.name, spec, plugin, spec.default_model, spec.aliases,
                                        spec.description)
    for plugin, spec in manager.collect("hub_architectures"):
        if not isinstance(spec, ArchitectureSpec):
            reg.problems.append(f"plugin {plugin!r}: hub_architectures returned {spec!r}")
        elif claim(reg.architectures, "architecture", spec.name, plugin, spec):
            reg.architectures[spec.name] = (plugin, spec)
    for plugin, spec in manager.collect("hub_converters"):
        if not isinstance(spec, ConverterSpec):
            reg.problems.append(f"plugin {plugin!r}: hub_converters returned {spec!r}")
            continue
        for model_type in spec.model_types:
            if claim(reg.converters, "converter for model_type", model_type, plugin, spec):
                reg.converters[model_type] = (plugin, spec)
    for plugin, entry in manager.collect("hub_models"):
        if not isinstance(entry, ModelEntry):
            reg.problems.append(f"plugin {plugin!r}: hub_models returned {entry!r}")
        elif claim(reg.models, "model", entry.name, plugin, entry):
            reg.models[entry.name] = replace(entry, plugin=entry.plugin or plugin,
                                             origin=f"plugin {plugin}")

    for path in registry_files():
        data = read_registry_file(path)
        reg.files.append(str(path))
        for name, fields_ in data["tasks"].items():
            task = reg.tasks.get(name) or Task(name, None, None, None)
            task.default_model = fields_.get("default", task.default_model)
            task.aliases = tuple(dict.fromkeys([*task.aliases, *fields_.get("aliases", [])]))
            task.description = fields_.get("description", task.description)
            reg.tasks[name] = task
        for name, fields_ in data["models"].items():
            reg.models[name] = ModelEntry(name=name, origin=str(path), **fields_)

    for task in reg.tasks.values():
        for alias in task.aliases:
            if alias in reg.tasks and alias != task.name:
                reg.problems.append(f"alias {alias!r} of task {task.name!r} shadows a task; ignored.")
            else:
                reg.aliases[alias] = task.name
    return reg


_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _registry
    if _registry is None:
        _registry = build_registry()
    return _registry


def reset() -> None:
    global _registry
    _registry = None
