"""The catalogue: registry.yaml, user overlays and plugin registrations, merged.

One source for every fact. A *task* (name, aliases, description, Hugging Face pipeline tag,
default model, modality) is declared once, by the plugin that provides its pipeline, in its
:class:`~hub.specs.TaskSpec`; built-in plugins do it exactly as a third party does. A *model*
is declared once, in the catalogue: Hub's shipped ``registry.yaml`` lists Hub's own models
(those the built-in plugins ship in their packages and the Hugging Face checkpoints Hub
knows), a plugin's ``hub_models`` hook lists the models that plugin ships, and the user's
overlays add their own. A file's ``tasks:`` section only *overrides* (a task's default model
or description) or adds aliases; the shipped file states no task fact a TaskSpec states
(tests/test_single_source.py checks it).

Resolution order for catalogue entries (later wins): plugin ``hub_models`` hooks,
the shipped ``registry.yaml``, the per-user file (``$XDG_CONFIG_HOME/hub/registry.yaml``,
by default ``~/.config/hub/registry.yaml``), then every file named in ``HUB_REGISTRY``
(``os.pathsep``-separated). Files are validated on load; errors name the file, the
entry and the field. Unknown names raise :class:`~hub.errors.UnknownNameError`
listing the closest matches; a well-known Hugging Face task name that no installed
plugin provides (``summarization``) says so instead (:mod:`hub.known_tasks`).

Names. Task names and aliases share one namespace, and the first registration of a name
wins, in this order: the built-in plugins (tasks, then their aliases), the shipped
``registry.yaml`` (Hub's own, so it counts as built-in; it declares no aliases today, every
built-in alias is in a TaskSpec), third-party plugins, then the user's overlays in the order
above. A later claim to a taken name is ignored and recorded
in :attr:`Registry.problems` (``hub plugins`` prints them; ``hub list`` notes how many):

* a plugin task or alias that is already a task or an alias is rejected (so a plugin
  declaring ``aliases=("sentiment-analysis",)`` cannot take over ``hub.load`` of it);
* a third-party task or alias (plugin or overlay) may not be a built-in catalogue model
  name either, since tasks and aliases win ``hub.load(NAME)`` over models;
* an overlay may *add* aliases, set a task's default model and description, and add or
  replace catalogue models (it is the user's own file), but it cannot re-point an alias
  that is taken; ``tasks: {ALIAS: ...}`` in a file configures the task the alias names;
* a model hidden by a task or alias of the same name is reported.

Architectures, converters (by ``model_type``) and plugin catalogue entries are first come,
first served among plugins too, built-ins first. Which converter takes a foreign checkpoint
folder is the ``firstresult`` hook ``hub_select_converter`` (:meth:`Registry.select_converter`),
asked in the same order. Files are read by :mod:`hub._yaml`: no
YAML anchors/aliases, no duplicate keys, bounded size and nesting, one-line
``FILE:LINE:COLUMN: problem`` errors. Every ``source`` is checked when read
(:func:`hub.sources.check_source`): ``package:PKG/PATH`` must stay inside the package and
``hf://`` ids follow the Hugging Face Hub's rules.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from hub.errors import HubError, InvalidInputError, RegistryError, UnknownNameError
from hub.specs import ArchitectureSpec, ConverterSpec, ModelEntry, TaskSpec

REGISTRY_ENV = "HUB_REGISTRY"
SCHEMA_VERSION = 1
_TASK_FIELDS = {"default": str, "aliases": list, "description": str}
_MODEL_FIELDS = {
    "task": str, "source": str, "architecture": str, "plugin": str, "license": str,
    "description": str, "labels": list, "metrics": dict,
}
_REQUIRED_MODEL_FIELDS = ("task", "source")
_NAME_FIELDS = {"default", "task", "architecture", "plugin"}  # strings that name something
_STRING_LISTS = {"aliases", "labels"}
_FILE_SECTIONS = ("schema", "tasks", "models")


class TaskNotInstalledError(UnknownNameError):
    """A well-known task name (a Hugging Face pipeline task) that no installed plugin provides.

    Raised instead of a distant did-you-mean: ``summarization`` is not a typo of
    ``recommendation``. Still an :class:`UnknownNameError` (and a ``LookupError``).
    """

    def __init__(self, kind: str, name: str, known: list[str], installed: list[str]) -> None:
        from hub.known_tasks import close_installed, hf_task_description

        self.kind, self.name, self.known = kind, name, sorted(set(known))
        self.close_matches = close_installed(name, known)
        msg = (f"No installed plugin provides {name!r} (a Hugging Face pipeline task: "
               f"{hf_task_description(name)}).")
        if self.close_matches:
            msg += " Did you mean: " + ", ".join(repr(m) for m in self.close_matches) + "?"
        msg += (" Installed tasks: " + (", ".join(sorted(installed)) or "none") + ". Install a plugin that "
                "registers it (`hub plugins` lists what is installed) or write one (README, \"Writing a plugin\").")
        HubError.__init__(self, msg)


@dataclass
class Task:
    """A task as the registry sees it: the plugin's spec plus catalogue settings.

    ``default_model`` and ``description`` start as the spec's and may be overridden by a
    registry file's ``tasks:`` entry; ``aliases`` are the spec's plus any a file adds.
    ``default_from`` says who set the default (``plugin 'text'``, a file), for messages.
    """

    name: str
    spec: TaskSpec | None  # None: declared in a file but no installed plugin provides it
    plugin: str | None
    default_model: str | None
    aliases: tuple[str, ...] = ()
    description: str = ""
    default_from: str = ""

    @property
    def pipeline_tag(self) -> str | None:
        """The Hugging Face Hub ``pipeline_tag`` its plugin declares (model cards use it)."""
        return self.spec.pipeline_tag if self.spec is not None else None


@dataclass
class Registry:
    tasks: dict[str, Task] = field(default_factory=dict)
    models: dict[str, ModelEntry] = field(default_factory=dict)
    architectures: dict[str, tuple[str, ArchitectureSpec]] = field(default_factory=dict)
    converters: dict[str, tuple[str, ConverterSpec]] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # rejected plugin registrations
    files: list[str] = field(default_factory=list)
    #: (pattern, task name) of every TaskSpec.alias_patterns entry, in registration order
    alias_patterns: list[tuple[re.Pattern[str], str]] = field(default_factory=list)

    # -- lookup ------------------------------------------------------------------
    def pattern_match(self, name: str) -> tuple[str, dict[str, str]] | None:
        """``(task, call defaults)`` when ``name`` is no exact task, alias or model but matches a
        task's alias pattern (``translation_en_to_de`` -> ``("translate", {"src_lang": "en",
        "tgt_lang": "de"})``), else None."""
        if name in self.tasks or name in self.aliases or name in self.models:
            return None
        for pattern, task in self.alias_patterns:
            found = pattern.fullmatch(name)
            if found:
                return task, {k: v for k, v in found.groupdict().items() if v is not None}
        return None

    def task(self, name: str) -> Task:
        canonical = self.aliases.get(name, name)
        if canonical in self.tasks:
            return self.tasks[canonical]
        matched = self.pattern_match(name)
        if matched is not None:
            return self.tasks[matched[0]]
        raise self.unknown_name_error("task", name, [*self.tasks, *self.aliases],
                                      hint="Run `hub list` to see every task.")

    def unknown_name_error(self, kind: str, name: str, known: Any, hint: str = "") -> UnknownNameError:
        """The error for a name nothing registers: a :class:`TaskNotInstalledError` when it is a
        well-known Hugging Face task no installed plugin provides, else an
        :class:`UnknownNameError` with the closest matches."""
        from hub.known_tasks import hf_task_description

        known = list(known)
        if hf_task_description(name) is not None:
            installed = [n for n, t in self.tasks.items() if t.spec is not None]
            return TaskNotInstalledError(kind, name, known, installed)
        return UnknownNameError(kind, name, known, hint=hint)

    def default_model_entry(self, task: Task) -> ModelEntry:
        """The catalogue entry of ``task``'s default model, or an error that says what to pass.

        A task without a default (a TaskSpec with ``default_model=None`` and no overlay
        setting one) raises :class:`~hub.errors.InvalidInputError` listing the task's
        catalogue models; a default naming a model no catalogue lists raises
        :class:`~hub.errors.UnknownNameError` naming who set it.
        """
        models = sorted(name for name, entry in self.models.items() if entry.task == task.name)
        if not task.default_model:
            listed = (f"its catalogue models: {', '.join(models)}" if models
                      else "the catalogue lists no model for it")
            example = models[0] if models else "<folder or org/name>"
            raise InvalidInputError(
                f"Task {task.name!r} has no default model; pass one with model= "
                f"(hub.load({task.name!r}, model={example!r})): {listed}. A catalogue name, a local "
                "folder or a Hugging Face repo id all work; a registry overlay can set a default "
                f"(tasks: {{{task.name}: {{default: NAME}}}}).")
        if task.default_model not in self.models:
            raise UnknownNameError(
                "model", task.default_model, self.models,
                hint=f"It is the default model of task {task.name!r} ({task.default_from or 'unknown origin'}) "
                     "but no catalogue source lists it; fix the default, add the model to a registry "
                     "overlay, or pass model=.")
        return self.models[task.default_model]

    def model(self, name: str) -> ModelEntry:
        if name in self.models:
            return self.models[name]
        raise UnknownNameError("model", name, self.models, hint="Run `hub list` to see the catalogue.")

    def architecture(self, name: str) -> ArchitectureSpec:
        if name in self.architectures:
            return self.architectures[name][1]
        raise UnknownNameError("architecture", name, self.architectures)

    def converter_for(self, model_type: str) -> ConverterSpec:
        """The converter that claimed ``model_type`` through ``hub_converters``."""
        if model_type in self.converters:
            return self.converters[model_type][1]
        raise UnknownNameError(
            "checkpoint model_type", model_type, self.converters,
            hint="Hub converts these model types: " + ", ".join(sorted(self.converters)) + ".",
        )

    def select_converter(self, config: dict[str, Any], files: tuple[str, ...]) -> tuple[str, ConverterSpec] | None:
        """``(plugin, converter)`` for a foreign checkpoint, or ``None`` when no plugin takes it.

        The ``firstresult`` hook :func:`hub.hookspecs.hub_select_converter`, asked one plugin
        at a time in registration order (built-ins first): each plugin's own answer, then its
        default one, the converter it registered for the config's ``model_type``. A plugin
        whose hook raises or answers something else than a ConverterSpec is reported
        (``hub plugins``) and skipped.
        """
        import copy

        from hub.plugins import get_plugin_manager

        manager = get_plugin_manager()
        model_type = config.get("model_type")
        claimed = self.converters.get(model_type) if isinstance(model_type, str) else None
        answers = manager.call_each("hub_select_converter", config=copy.deepcopy(config), files=tuple(files))
        pending = next(answers, None)  # the next implementer's (plugin, answer); asked one at a time
        for name in manager.registered_names():
            answer = None
            if pending is not None and pending[0] == name:
                answer, pending = pending[1], None
            if answer is not None and not isinstance(answer, ConverterSpec):
                manager.record_hook_error(name, "hub_select_converter",
                                          f"returned {type(answer).__name__}, expected a ConverterSpec or None")
                answer = None
            if answer is None and claimed is not None and claimed[0] == name:
                answer = claimed[1]
            if answer is not None:
                answers.close()
                return name, answer
            if pending is None:
                pending = next(answers, None)
        return None

    def resolve(self, name: str) -> tuple[Task, ModelEntry | None]:
        """A task name/alias, or a catalogue model name -> (task, entry or None)."""
        canonical = self.aliases.get(name, name)
        if canonical in self.tasks:
            return self.tasks[canonical], None
        if name in self.models:
            entry = self.models[name]
            return self.task(entry.task), entry
        matched = self.pattern_match(name)
        if matched is not None:
            return self.tasks[matched[0]], None
        raise self.unknown_name_error("task or model", name, [*self.tasks, *self.aliases, *self.models],
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
    """Parse and validate one registry file; returns {'tasks': ..., 'models': ...}.

    The file is read by :func:`hub._yaml.load_yaml_file` (no anchors/aliases, no duplicate
    keys, bounded size and depth, one-line ``FILE:LINE:COLUMN`` errors). Every name, field and
    list element is type-checked and every ``source`` is checked by
    :func:`hub.sources.check_source`, so a bad overlay fails here, naming the file, the entry
    and the field, instead of later inside a loader.
    """
    from hub._yaml import YAMLFileError, load_yaml_file
    from hub.sources import check_source

    where = str(path)
    try:
        data = load_yaml_file(path)
    except YAMLFileError as exc:
        raise _one_line_error(exc) from None
    if data is None:  # an empty file is an empty overlay
        data = {}
    if not isinstance(data, dict):
        raise RegistryError(where, None, None, "the top level must be a mapping with 'tasks' and 'models'.")
    unknown = [key for key in data if key not in _FILE_SECTIONS]
    if unknown:
        raise RegistryError(where, None, str(unknown[0]),
                            "unknown top-level key; allowed: schema, tasks, models.")
    schema = data.get("schema", SCHEMA_VERSION)
    if isinstance(schema, bool) or schema != SCHEMA_VERSION:
        raise RegistryError(where, None, "schema", f"unsupported schema {schema!r}; "
                            f"this Hub reads schema {SCHEMA_VERSION}.")
    tasks = _validate_section(where, data.get("tasks"), "tasks", _TASK_FIELDS, ())
    models = _validate_section(where, data.get("models"), "models", _MODEL_FIELDS,
                               _REQUIRED_MODEL_FIELDS)
    for name, entry in models.items():
        source = entry["source"]
        try:
            check_source(source)
        except ValueError as exc:
            raise RegistryError(where, name, "source", str(exc)) from None
        if "://" not in source and not source.startswith("package:"):
            entry["source"] = str((path.parent / Path(source).expanduser()).resolve())
    return {"tasks": tasks, "models": models}


def _one_line_error(exc: Any) -> RegistryError:
    """A :class:`RegistryError` whose message is the YAML reader's ``FILE:LINE:COLUMN: problem``."""
    error = RegistryError(exc.file, None, None, exc.problem)
    error.line, error.column = exc.line, exc.column
    error.args = (exc.one_line(),)
    return error


def _describe_value(value: Any) -> str:
    """``type (value)`` plus a hint for the YAML 1.1 surprises (``no`` is False, ``key:`` is null)."""
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    text = f"{type(value).__name__} ({shown})"
    if isinstance(value, bool):
        text += "; YAML reads unquoted yes/no/on/off/true/false as booleans: quote the value"
    elif value is None:
        text += "; nothing was given (YAML reads an empty value as null)"
    elif isinstance(value, (int, float)):
        text += "; quote the value to make it text"
    return text


def _check_name(where: str, entry: str | None, field_: str | None, value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise RegistryError(where, None if entry is None else str(entry), field_,
                            f"{what} must be a string, got {_describe_value(value)}.")
    if not value.strip() or value != value.strip():
        raise RegistryError(where, entry, field_,
                            f"{what} {value!r} must be non-empty, without leading or trailing spaces.")
    return value


def _validate_section(where: str, section: Any, section_name: str, fields: dict[str, type],
                      required: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise RegistryError(where, None, section_name, "must be a mapping of name -> fields.")
    kind = section_name[:-1]  # "task" / "model"
    for name, entry in section.items():
        if not isinstance(name, str):
            raise RegistryError(where, str(name), None, f"a {kind} name must be a string, got "
                                f"{_describe_value(name)}.")
        _check_name(where, name, None, name, f"{kind} name")
        if not isinstance(entry, dict):
            raise RegistryError(where, name, None, "must be a mapping of fields.")
        for key, value in entry.items():
            if key not in fields:
                raise RegistryError(where, name, str(key),
                                    "unknown field; allowed: " + ", ".join(sorted(fields)) + ".")
            if not isinstance(value, fields[key]):
                raise RegistryError(where, name, key, f"must be a {fields[key].__name__}, "
                                    f"got {_describe_value(value)}.")
            if key in _NAME_FIELDS:
                _check_name(where, name, key, value, "the value")
            if key in _STRING_LISTS:
                for index, item in enumerate(value):
                    if not isinstance(item, str):
                        raise RegistryError(where, name, key, f"must be a list of strings; item {index} is "
                                            f"{_describe_value(item)}.")
                    if key == "aliases":
                        _check_name(where, name, key, item, f"item {index}")
            if key == "metrics":
                for metric in value:
                    if not isinstance(metric, str):
                        raise RegistryError(where, name, key, f"metric names must be strings, got "
                                            f"{_describe_value(metric)}.")
        for key in required:
            if key not in entry:
                raise RegistryError(where, name, key, "required field is missing.")
    return {k: dict(v) for k, v in section.items()}


def build_registry() -> Registry:
    """Merge plugins and files into one :class:`Registry` (see the module docstring for the order).

    Plugin registrations that lose a name are not errors: they are recorded in
    ``Registry.problems`` (``hub plugins`` prints them) and the rest of the hub works.
    """
    from hub.plugins import get_plugin_manager
    from hub.sources import check_source

    manager = get_plugin_manager()
    manager.hook_errors.clear()  # collect() below calls every hook again
    reg = Registry()
    builtin_plugins = {p.name for p in manager.plugins if p.builtin}
    alias_origin: dict[str, str] = {}  # alias -> who declared it, for messages

    def claim(table: dict, kind: str, key: str, plugin: str, item: Any) -> bool:
        if key in table:
            owner = table[key][0] if isinstance(table[key], tuple) else table[key].plugin
            reg.problems.append(f"{kind} {key!r} from plugin {plugin!r} ignored: "
                                f"already registered by plugin {owner!r}.")
            return False
        return True

    task_specs: list[tuple[str, TaskSpec]] = []
    for plugin, spec in manager.collect("hub_tasks"):
        if not isinstance(spec, TaskSpec):
            reg.problems.append(f"plugin {plugin!r}: hub_tasks returned {spec!r}, not a TaskSpec")
        else:
            task_specs.append((plugin, spec))
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
    registrant: dict[str, str] = {}  # model name -> the plugin whose hook returned it
    for plugin, entry in manager.collect("hub_models"):
        if not isinstance(entry, ModelEntry):
            reg.problems.append(f"plugin {plugin!r}: hub_models returned {entry!r}")
            continue
        try:
            check_source(entry.source)  # the same rule as for registry files
        except ValueError as exc:
            reg.problems.append(f"model {entry.name!r} from plugin {plugin!r} ignored: {exc}")
            continue
        if claim(reg.models, "model", entry.name, plugin, entry):
            reg.models[entry.name] = replace(entry, plugin=entry.plugin or plugin,
                                             origin=f"plugin {plugin}")
            registrant[entry.name] = plugin

    paths = registry_files()
    files = [(path, read_registry_file(path)) for path in paths]
    reg.files.extend(str(path) for path in paths)
    shipped, overlays = files[:1], files[1:]  # registry_files() puts the shipped file first
    # Names a third party (plugin or overlay) may not take: built-in catalogue model names,
    # since a task or alias of that name would win hub.load(NAME) over the model.
    builtin_models = {n for n, p in registrant.items() if p in builtin_plugins}
    builtin_models.update(name for _, data in shipped for name in data["models"])

    def add_task(plugin: str, spec: TaskSpec, *, third_party: bool) -> bool:
        name = spec.name
        if name in reg.aliases:
            reg.problems.append(f"task {name!r} from plugin {plugin!r} ignored: {name!r} is already an alias "
                                f"of task {reg.aliases[name]!r} ({alias_origin[name]}).")
            return False
        if third_party and name in builtin_models:
            reg.problems.append(f"task {name!r} from plugin {plugin!r} ignored: {name!r} is a built-in "
                                f"catalogue model, and a task of that name would take over hub.load({name!r}).")
            return False
        existing = reg.tasks.get(name)
        if existing is not None and existing.spec is not None:
            reg.problems.append(f"task {name!r} from plugin {plugin!r} ignored: "
                                f"already registered by plugin {existing.plugin!r}.")
            return False
        if existing is not None:  # declared by the shipped registry.yaml, provided by no built-in
            existing.spec, existing.plugin = spec, plugin
            if not existing.default_model and spec.default_model:
                existing.default_model, existing.default_from = spec.default_model, f"plugin {plugin!r}"
            existing.description = existing.description or spec.description
        else:
            reg.tasks[name] = Task(name, spec, plugin, spec.default_model, (), spec.description,
                                   default_from=f"plugin {plugin!r}" if spec.default_model else "")
        return True

    def add_aliases(task_name: str, aliases: Any, origin: str, *, third_party: bool) -> None:
        task = reg.tasks[task_name]
        for alias in aliases:
            if alias == task_name or reg.aliases.get(alias) == task_name:
                continue  # a repeat, not a conflict
            taken = None
            if alias in reg.tasks:
                taken = "it is already a task" + (f" (plugin {reg.tasks[alias].plugin!r})"
                                                  if reg.tasks[alias].plugin else "")
            elif alias in reg.aliases:
                taken = f"it is already an alias of task {reg.aliases[alias]!r} ({alias_origin[alias]})"
            elif third_party and alias in builtin_models:
                taken = f"it is a built-in catalogue model, which the alias would hide from hub.load({alias!r})"
            if taken:
                reg.problems.append(f"alias {alias!r} of task {task_name!r} ({origin}) ignored: {taken}; "
                                    "the first registration of a name wins.")
                continue
            reg.aliases[alias] = task_name
            alias_origin[alias] = origin
            task.aliases = (*task.aliases, alias)

    def apply_file_tasks(path: Path, data: dict[str, Any], *, third_party: bool) -> None:
        for name, fields_ in data["tasks"].items():
            canonical = reg.aliases.get(name, name)  # `tasks: {asr: ...}` configures the aliased task
            task = reg.tasks.get(canonical)
            if task is None:
                task = reg.tasks[name] = Task(name, None, None, None)
            if "default" in fields_:
                task.default_model, task.default_from = fields_["default"], f"file {str(path)!r}"
            task.description = fields_.get("description", task.description)
            add_aliases(task.name, fields_.get("aliases", []), f"file {str(path)!r}", third_party=third_party)

    builtin_specs = [(p, s) for p, s in task_specs if p in builtin_plugins]
    third_specs = [(p, s) for p, s in task_specs if p not in builtin_plugins]
    # 1. built-in plugins and the shipped registry.yaml: Hub's own names come first
    accepted = [(p, s) for p, s in builtin_specs if add_task(p, s, third_party=False)]
    for plugin, spec in accepted:
        add_aliases(spec.name, spec.aliases, f"plugin {plugin!r}", third_party=False)
        reg.alias_patterns.extend((re.compile(p), spec.name) for p in spec.alias_patterns)
    for path, data in shipped:
        apply_file_tasks(path, data, third_party=False)
    # 2. third-party plugins: may add names, never take one
    accepted = [(p, s) for p, s in third_specs if add_task(p, s, third_party=True)]
    for plugin, spec in accepted:
        add_aliases(spec.name, spec.aliases, f"plugin {plugin!r}", third_party=True)
        reg.alias_patterns.extend((re.compile(p), spec.name) for p in spec.alias_patterns)
    # 3. the user's overlays: may set defaults, descriptions and models, add aliases, not steal them
    for path, data in overlays:
        apply_file_tasks(path, data, third_party=True)
    for path, data in files:
        for name, fields_ in data["models"].items():
            # a file entry's plugin is its task's (stated once, by the TaskSpec's registrant)
            task = reg.tasks.get(reg.aliases.get(fields_["task"], fields_["task"]))
            fields_ = {"plugin": task.plugin if task is not None else None, **fields_}
            reg.models[name] = ModelEntry(name=name, origin=str(path), **fields_)

    for name, entry in reg.models.items():  # resolve() looks at tasks and aliases first
        if name in reg.tasks or name in reg.aliases:
            what = "task" if name in reg.tasks else f"alias of task {reg.aliases[name]!r}"
            reg.problems.append(f"model {name!r} ({entry.origin}) is hidden by the {what} of the same "
                                f"name: hub.load({name!r}) loads the task; rename the model.")
    for task in reg.tasks.values():  # a default must name a model some catalogue source lists
        if task.default_model and task.default_model not in reg.models:
            reg.problems.append(f"task {task.name!r}: its default model {task.default_model!r} "
                                f"({task.default_from}) is in no catalogue; hub.load({task.name!r}) needs "
                                "model= until a registry file or hub_models hook lists it.")
    return reg


_registry: Registry | None = None
_built_from: object | None = None  # the plugin manager _registry was built from


def get_registry() -> Registry:
    """The process-wide registry, built on first use and rebuilt after :func:`reset` or
    :func:`hub.plugins.reset` (a new plugin manager means new plugins)."""
    global _registry, _built_from
    from hub.plugins import get_plugin_manager

    manager = get_plugin_manager()
    if _registry is None or _built_from is not manager:
        _registry, _built_from = build_registry(), manager
    return _registry


def reset() -> None:
    """Forget the registry (it is rebuilt from the plugins and files on next use)."""
    global _registry
    _registry = None
