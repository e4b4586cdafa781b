"""Registration records that plugins return from their hooks.

Registration is *data*: plain frozen dataclasses whose implementations are named by
``"module:attr"`` strings and imported on first use (:func:`load_object`). That keeps
``import hub``, ``hub list`` and ``hub --help`` free of torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Mapping

from hub.errors import PluginError


def _check_ref(kind: str, name: str, attr: str, ref: str) -> None:
    if not isinstance(ref, str) or ref.count(":") != 1 or not all(ref.split(":")):
        raise PluginError(
            f"{kind} {name!r}: {attr} must be a 'module:attr' string, got {ref!r}."
        )


def _check_name(kind: str, name: str) -> None:
    if not isinstance(name, str) or not name or name != name.strip():
        raise PluginError(f"{kind} name must be a non-empty string, got {name!r}.")


@dataclass(frozen=True)
class TaskSpec:
    """A task such as ``text-classify``: its pipeline class and its names."""

    name: str
    pipeline: str  # "module:attr" of a hub.pipeline.Pipeline subclass
    description: str = ""
    aliases: tuple[str, ...] = ()
    default_model: str | None = None
    modality: str = "text"

    def __post_init__(self) -> None:
        _check_name("task", self.name)
        _check_ref("task", self.name, "pipeline", self.pipeline)
        object.__setattr__(self, "aliases", tuple(self.aliases))


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

    ``convert`` names ``fn(config: dict, state_dict) -> (hub_config: dict, state_dict)``.
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
        object.__setattr__(self, "model_types", tuple(self.model_types))
        if not self.model_types:
            raise PluginError(f"converter {self.name!r}: model_types must not be empty.")


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
        object.__setattr__(self, "labels", tuple(self.labels))


@lru_cache(maxsize=None)
def load_object(ref: str) -> Any:
    """Import ``"package.module:attr"`` and return the attribute (cached)."""
    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PluginError(f"Cannot import {module_name!r} (named by {ref!r}): {exc}") from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise PluginError(f"{module_name!r} has no attribute {attr!r} (named by {ref!r}).") from None
    return obj
