"""The plugin contract: every hook a Hub plugin may implement.

A plugin is a module (or object) exposing functions decorated with
``hub.hookimpl``; it is found through the ``hub.plugins`` entry-point group, the
same group the built-in plugins use. Every hook takes no arguments and returns
*data*: lists of the records in :mod:`hub.specs`. Implementations are named by
``"module:attr"`` strings and imported only when first used, so a plugin module must
be cheap to import (no torch at module level).

Example::

    from hub import hookimpl
    from hub.specs import TaskSpec

    @hookimpl
    def hub_tasks():
        return [TaskSpec(name="text-reverse", pipeline="my_plugin.pipe:ReversePipeline")]

Hooks are called once per plugin when the registry is built; a hook that raises is
reported by ``hub plugins`` and the rest of the hub keeps working. That includes
``SystemExit`` (a plugin calling ``sys.exit()``) and every other ``BaseException`` except
``KeyboardInterrupt``, at import time, in a hook, or when a ``"module:attr"`` is first imported.
"""

from __future__ import annotations

import pluggy

from hub.specs import ArchitectureSpec, ConverterSpec, ModelEntry, TaskSpec

PROJECT_NAME = "hub"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def hub_tasks() -> list[TaskSpec]:
    """Return the tasks this plugin provides: one :class:`~hub.specs.TaskSpec` per task.

    The TaskSpec is the one place a task's facts live: name, pipeline class, aliases,
    description, ``default_model``, ``modality`` and the Hugging Face ``pipeline_tag``
    written into saved model cards. Hub's built-in plugins declare their tasks exactly this
    way; registry files only list models and may override a task's default or description.

    Called when the registry is built. Task names and aliases are one namespace: a name
    (task or alias) that is already registered, by a built-in plugin, the shipped
    registry.yaml or an earlier plugin, is rejected and reported by ``hub plugins``; so is a
    third-party task or alias equal to a built-in catalogue model name. ``aliases`` must be a
    tuple of strings (``("asr",)``, not ``"asr"``).
    """


@hookspec
def hub_architectures() -> list[ArchitectureSpec]:
    """Return model architectures: a name and the builder that makes the module.

    The builder (``"module:attr"``) is called as ``builder(config: dict)`` and returns a
    ``torch.nn.Module`` whose weights load from the ``model.safetensors`` Hub saves.
    """


@hookspec
def hub_models() -> list[ModelEntry]:
    """Return catalogue entries this plugin ships or knows of.

    This is how a plugin lists the models it ships (typically its tasks' default models,
    ``source="package:PKG/PATH"``); Hub's own models are listed in its shipped
    ``registry.yaml`` instead, which is the same record (:class:`~hub.specs.ModelEntry`)
    written as YAML. A model is listed in one place only.

    Entries in registry.yaml and user overlays take precedence over these. ``source`` is
    checked like a registry file's (``package:PKG/PATH`` inside the package, a valid
    ``hf://org/name@revision``, or a local path); a bad one is rejected and reported.
    """


@hookspec
def hub_converters() -> list[ConverterSpec]:
    """Return converters from foreign checkpoints (transformers, timm) into Hub ones.

    A converter is chosen by the checkpoint's ``config.json`` ``model_type``.
    """
