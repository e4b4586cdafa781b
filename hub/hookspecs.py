"""The plugin contract: every hook a Hub plugin may implement, documented as pytest's
``hookspec.py`` documents its own (arguments, return value, when it is called, precedence).

A plugin is a module (or object) exposing functions decorated with ``hub.hookimpl``; it is
found through the ``hub.plugins`` entry-point group, the same group the built-in plugins
use. The registration hooks take no arguments and return *data*: lists of the records in
:mod:`hub.specs`, whose implementations are named by ``"module:attr"`` strings and imported
only when first used, so a plugin module must be cheap to import (no torch at module level).
:func:`hub_select_converter` is asked about one checkpoint folder at a time.

Example::

    from hub import hookimpl
    from hub.specs import TaskSpec

    @hookimpl
    def hub_tasks():
        return [TaskSpec(name="text-reverse", pipeline="my_plugin.pipe:ReversePipeline")]

Validation. Hooks are matched to these specs by name when a plugin is registered
(pluggy's ``check_pending``): a function decorated with ``@hookimpl`` whose name is no hook
here (``hub_task`` for ``hub_tasks``) fails the plugin, and ``hub plugins`` shows which
name is wrong and the hook it is closest to. A plugin that implements a hook a later Hub
adds can mark it ``@hookimpl(optionalhook=True)`` to load on older Hubs too. Arguments are
matched by name, and an implementation may take fewer than the spec offers (pluggy's rule).

Isolation. Every hook is called through pluggy, one plugin at a time (see
:mod:`hub.plugins`): a hook that raises, ``SystemExit`` and every other ``BaseException``
except ``KeyboardInterrupt`` included, is reported by ``hub plugins`` and the other plugins'
results still count.

Precedence. Hub asks plugins in registration order, built-in plugins first, then
third-party entry points (sorted by name), then ``HUB_PLUGINS`` and plugins registered at
run time. For the registration hooks the first registration of a name wins and later claims
are reported (:mod:`hub.registry`); :func:`hub_select_converter` stops at the first plugin
that answers. (This is the reverse of pluggy's own call order, last registered first, which
would let any installed package take over a built-in name.)
"""

from __future__ import annotations

from typing import Any

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

    Returns:
        A list (or tuple) of :class:`~hub.specs.TaskSpec`; ``None`` counts as none.

    Called:
        Once per plugin, when the registry is first needed (``hub.load``, ``hub list``, ...),
        and again after :func:`hub.registry.reset`.

    Precedence:
        Task names and aliases are one namespace: a name (task or alias) that is already
        registered, by a built-in plugin, the shipped registry.yaml or an earlier plugin, is
        rejected and reported by ``hub plugins``; so is a third-party task or alias equal to a
        built-in catalogue model name. ``aliases`` must be a tuple of strings (``("asr",)``,
        not ``"asr"``).
    """


@hookspec
def hub_architectures() -> list[ArchitectureSpec]:
    """Return model architectures: a name and the builder that makes the module.

    The builder (``"module:attr"``) is called as ``builder(config: dict)`` and returns a
    ``torch.nn.Module`` whose weights load from the ``model.safetensors`` Hub saves. Hub
    builds it on the meta device first, under a budget derived from the weights, so a
    builder must not allocate real tensors outside its modules.

    Returns:
        A list of :class:`~hub.specs.ArchitectureSpec`.

    Called:
        Once per plugin, when the registry is built.

    Precedence:
        The first plugin to register an architecture name wins (built-ins first); later
        ones are reported.
    """


@hookspec
def hub_models() -> list[ModelEntry]:
    """Return catalogue entries this plugin ships or knows of.

    This is how a plugin lists the models it ships (typically its tasks' default models,
    ``source="package:PKG/PATH"``); Hub's own models are listed in its shipped
    ``registry.yaml`` instead, which is the same record (:class:`~hub.specs.ModelEntry`)
    written as YAML. A model is listed in one place only.

    Returns:
        A list of :class:`~hub.specs.ModelEntry`.

    Called:
        Once per plugin, when the registry is built.

    Precedence:
        Among plugins the first entry of a name wins; entries in registry.yaml and user
        overlays take precedence over these. ``source`` is checked like a registry file's
        (``package:PKG/PATH`` inside the package, a valid ``hf://org/name@revision``, or a
        local path); a bad one is rejected and reported.
    """


@hookspec
def hub_converters() -> list[ConverterSpec]:
    """Return converters from foreign checkpoints (transformers, timm) into Hub ones.

    A :class:`~hub.specs.ConverterSpec` names the function that turns the checkpoint into a
    Hub model: ``convert(config, state_dict)`` or, to see side files such as ``vocab.json``,
    ``convert(config, state_dict, *, checkpoint)`` with a :class:`hub.checkpoint.Checkpoint`.
    Its ``model_types`` are the simple way to be chosen: a checkpoint whose config.json
    ``model_type`` is listed goes to this converter (the default answer of
    :func:`hub_select_converter`). A converter with no ``model_types`` is reached only
    through this plugin's :func:`hub_select_converter`.

    Returns:
        A list of :class:`~hub.specs.ConverterSpec`.

    Called:
        Once per plugin, when the registry is built.

    Precedence:
        The first plugin to claim a ``model_type`` wins (built-ins first); later claims are
        reported.
    """


@hookspec(firstresult=True)
def hub_select_converter(config: dict[str, Any], files: tuple[str, ...]) -> ConverterSpec | None:
    """Pick the converter for a checkpoint folder that is not in Hub's format.

    Implement it when ``model_type`` cannot tell your checkpoints apart, or they have none:
    Hub's vision plugin recognises timm's Hugging Face layout (``architecture`` plus
    ``pretrained_cfg``, no ``model_type``) this way. Do not read files here; look at the
    config and the names.

    Args:
        config: the folder's parsed ``config.json`` (a copy; changing it changes nothing).
        files: the names of the regular files directly in the folder, sorted
            (``("config.json", "model.safetensors", "vocab.json")``).

    Returns:
        The :class:`~hub.specs.ConverterSpec` to use, or ``None`` when this plugin does not
        recognise the checkpoint. The spec need not be one ``hub_converters`` returns. When
        the config has no ``model_type``, the returned spec's first ``model_types`` entry (if
        any) names the checkpoint's family in the loaded model's ``converted_from``
        (``dataclasses.replace(spec, model_types=("resnet10t",))`` gives ``"timm:resnet10t"``).

    Called:
        By ``hub.load`` / :func:`hub.modeling.load_model` for every folder whose config.json
        has no ``hub_format``, before the weights are read.

    Precedence:
        ``firstresult``: the first non-``None`` answer wins. Plugins are asked in registration
        order, built-ins first; each plugin's own answer comes before its ``hub_converters``
        ``model_type`` claims, which are its default answer. A plugin whose hook raises is
        reported and skipped. If no plugin answers, a config with a ``model_type`` is an
        :class:`~hub.errors.UnknownNameError` listing the model types Hub converts.
    """
