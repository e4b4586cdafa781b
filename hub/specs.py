"""Registration records that plugins return from their hooks.

Registration is *data*: plain frozen dataclasses whose implementations are named by
``"module:attr"`` strings and imported on first use (:func:`load_object`). That keeps
``import hub``, ``hub list`` and ``hub --help`` free of torch.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from hub.errors import PluginError


def _check_ref(kind: str, name: str, attr: str, ref: str) -> None:
    if not isinstance(ref, str) or ref.count(":") != 1 or not all(ref.split(":")):
        raise PluginError(
            f"{kind} {name!r}: {attr} must be a 'module:attr' string, got {ref!r}."
        )


def _check_name(kind: str, name: str) -> None:
    if not isinstance(name, str) or not name or name != name.strip():
        raise PluginError(f"{kind} name must be a non-empty string, got {name!r}.")


def _check_names(kind: str, owner: str, attr: str, values: Any) -> tuple[str, ...]:
    """A tuple of names; a bare string is refused (``tuple("asr")`` would be ('a', 's', 'r'))."""
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise PluginError(f"{kind} {owner!r}: {attr} must be a tuple of strings, got {values!r}"
                          + (f" (write ({values!r},) for one)" if isinstance(values, str) else "") + ".")
    for value in values:
        _check_name(f"{kind} {owner!r}: an item of {attr}:", value)
    return tuple(values)


def _check_optional_name(kind: str, owner: str, attr: str, value: Any) -> None:
    """``None`` (not declared) or a non-empty name without surrounding spaces."""
    if value is not None and (not isinstance(value, str) or not value or value != value.strip()):
        raise PluginError(f"{kind} {owner!r}: {attr} must be None or a non-empty string without "
                          f"surrounding spaces, got {value!r}.")


@dataclass(frozen=True)
class TaskSpec:
    """A task such as ``text-classify``: everything Hub knows about it, declared in one place.

    A task is defined where its pipeline is: the plugin's ``hub_tasks`` hook returns this
    record, and nothing else states these facts again (registry.yaml only lists models and
    may *override* ``default_model``; see :mod:`hub.registry`). Built-in and third-party
    plugins declare tasks the same way.

    Attributes:
        name: the task's name, e.g. ``"text-classify"``; one namespace with every alias.
        pipeline: ``"module:attr"`` of the :class:`hub.pipeline.Pipeline` subclass, imported
            on first use (so registration stays torch-free).
        description: one line for ``hub list --json`` / ``hub info``: what the task returns.
            Say what the *task* does, not what its default model is (that is the model's
            catalogue entry, and an overlay may change the default).
        aliases: other names ``hub.load`` accepts, typically the Hugging Face / transformers
            pipeline names (``("text-classification", "sentiment-analysis")``). A tuple.
        default_model: the catalogue model ``hub.load(name)`` uses without ``model=``; it must
            be a model some catalogue source lists (Hub's registry.yaml, a ``hub_models``
            hook, an overlay). ``None``: ``hub.load`` asks for ``model=``.
        modality: what the inputs are, free text such as ``"text"``, ``"vision"``, ``"audio"``,
            ``"recsys"``, ``"time-series"``. Informational (``hub list --json``); optional and
            ``None`` when not declared: Hub has no default modality, as it has no built-in one.
        pipeline_tag: the Hugging Face Hub's ``pipeline_tag`` for the task (e.g.
            ``"text-classification"``), written into every saved model card so the Hub's
            model pages file the model correctly; ``None`` for a task the Hub has no tag for.
        alias_patterns: regular expressions a whole name may match to mean this task, for
            families of names no list can hold (transformers' ``translation_en_to_de``:
            ``r"translation_(?P<src_lang>[a-z]{2,3})_to_(?P<tgt_lang>[a-z]{2,3})"``). The named
            groups become call defaults of the loaded pipeline (as keywords given to
            ``hub.load``), so they must be call keywords of the task. Exact names (tasks,
            aliases, models) win over patterns; among patterns the first registration wins.
    """

    name: str
    pipeline: str  # "module:attr" of a hub.pipeline.Pipeline subclass
    description: str = ""
    aliases: tuple[str, ...] = ()
    default_model: str | None = None
    modality: str | None = None
    pipeline_tag: str | None = None
    alias_patterns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_name("task", self.name)
        _check_ref("task", self.name, "pipeline", self.pipeline)
        object.__setattr__(self, "aliases", _check_names("task", self.name, "aliases", self.aliases))
        patterns = _check_names("task", self.name, "alias_patterns", self.alias_patterns)
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise PluginError(f"task {self.name!r}: alias pattern {pattern!r} is not a regular expression "
                                  f"({exc}).") from None
        object.__setattr__(self, "alias_patterns", patterns)
        if not isinstance(self.description, str):
            raise PluginError(f"task {self.name!r}: description must be a string, got {self.description!r}.")
        for attr in ("default_model", "modality", "pipeline_tag"):
            _check_optional_name("task", self.name, attr, getattr(self, attr))


@dataclass(frozen=True)
class ArchitectureSpec:
    """A model architecture: a builder taking a config dict and returning a module."""

    name: str
    builder: str  # "module:attr" -> callable(config: dict) -> torch.nn.Module
    description: str = ""

    def __post_init__(self) -> None:
        _check_name("architecture", self.name)
        _check_ref("architecture", self.name, "builder", self.builder)


@dataclass(frozen=True)
class ConverterSpec:
    """Turns a foreign checkpoint (e.g. transformers' ``model_type: bert``) into a Hub one.

    Attributes:
        name: the converter's name, for messages.
        source: the foreign library, e.g. ``"transformers"`` or ``"timm"``; a loaded model's
            ``converted_from`` is ``"{source}:{model type}"``.
        model_types: the config.json ``model_type`` values this converter takes by default
            (the simple way to be chosen, see :func:`hub.hookspecs.hub_select_converter`); may
            be empty for a converter only the plugin's ``hub_select_converter`` picks.
        architecture: the Hub architecture it produces (informational).
        convert: ``"module:attr"`` of ``fn(config, state_dict) -> (architecture, hub_config,
            state_dict)``. A function that also takes a keyword argument ``checkpoint`` is given
            the folder's :class:`hub.checkpoint.Checkpoint`, to read side files such as
            ``vocab.json`` (converters written for the two-argument form keep working).
        description: one line for listings.
    """

    name: str
    source: str  # the foreign library, e.g. "transformers" or "timm"
    model_types: tuple[str, ...]
    architecture: str
    convert: str
    description: str = ""

    def __post_init__(self) -> None:
        _check_name("converter", self.name)
        _check_ref("converter", self.name, "convert", self.convert)
        object.__setattr__(self, "model_types",
                           _check_names("converter", self.name, "model_types", self.model_types))


@dataclass(frozen=True)
class ModelEntry:
    """A named model in the catalogue (registry.yaml or a plugin's hub_models hook)."""

    name: str
    task: str
    source: str  # "package:pkg/path" | local path | "hf://org/name@revision"
    architecture: str | None = None
    plugin: str | None = None
    license: str | None = None
    description: str = ""
    labels: tuple[str, ...] = ()
    metrics: Mapping[str, Any] = field(default_factory=dict)
    origin: str = ""  # where the entry was declared (file or plugin), for messages

    def __post_init__(self) -> None:
        _check_name("model", self.name)
        if not isinstance(self.source, str) or not self.source:
            raise PluginError(f"model {self.name!r}: source must be a non-empty string, got {self.source!r}.")
        labels = self.labels
        if isinstance(labels, str) or not isinstance(labels, (list, tuple)) or \
                not all(isinstance(label, str) for label in labels):
            raise PluginError(f"model {self.name!r}: labels must be a tuple of strings, got {labels!r}.")
        object.__setattr__(self, "labels", tuple(labels))


@cache
def load_object(ref: str) -> Any:
    """Import ``"package.module:attr"`` and return the attribute (cached).

    This is where a plugin's own code first runs on ``hub.load``. Whatever it raises while
    importing, ``SystemExit`` from a ``sys.exit()`` included, becomes a :class:`PluginError`
    naming the module, so a broken plugin cannot end the process; only ``KeyboardInterrupt``
    passes through.
    """
    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PluginError(f"Cannot import {module_name!r} (named by {ref!r}): {exc}") from exc
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - a plugin's SystemExit must not exit Hub
        raise PluginError(f"Importing plugin module {module_name!r} (named by {ref!r}) failed: "
                          f"{_describe(exc)}. Fix or uninstall the plugin; `hub plugins` lists them.") from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise PluginError(f"{module_name!r} has no attribute {attr!r} (named by {ref!r}).") from None
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - a module __getattr__ is plugin code too
            raise PluginError(f"Looking up {attr!r} in plugin module {module_name!r} failed: "
                              f"{_describe(exc)}.") from exc
    return obj


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r})"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
