"""PEFT adapters (LoRA, ...) on any Hub pipeline's model, through the ``peft`` library.

Written once here so that every task's ``fine_tune`` takes ``adapter=`` (the
:class:`~hub.pipeline.Pipeline` base wraps each task's ``fine_tune`` with :func:`accepts_adapter`):

* ``pipe.fine_tune(data, adapter=peft.LoraConfig(...))`` (or a dict such as
  ``{"type": "lora", "r": 8, "alpha": 16, "dropout": 0.0, "target_modules": [...]}``) injects the
  adapter into the pipeline's own module, in place (``peft.PeftModel`` is kept beside the
  pipeline, so ``pipe.model`` keeps its class and every task's code keeps working), freezes the
  base weights and trains only the adapter, plus the task head when it is new (a head initialised
  at random, or one the task rebuilds for new labels) or named in ``modules_to_save``.
* ``pipe.save(folder)`` then writes only the adapter: PEFT's ``adapter_model.safetensors`` and
  ``adapter_config.json`` (the layout ``PeftModel.save_pretrained`` writes) and Hub's
  ``config.json`` whose ``adapter`` section points at the base model (catalogue name, local
  folder or Hugging Face repo + commit) and records the head's labels when the adapter carries it.
* ``hub.load(task, model=adapter_folder)`` loads the base through Hub's normal loading, then the
  adapter; ``pipe.load_adapter(folder, name=...)`` adds another to a loaded base;
  ``pipe.set_adapter(name)`` or a call's ``adapter=name`` picks one; ``pipe.merge_adapter()``
  folds the active one into the base weights (a later save writes a full model).

Default targets: every ``nn.Linear`` inside the blocks of ``hub.backbone``'s Transformer (the
attention's fused ``qkv`` and ``out``, cross-attention's ``q`` and ``kv``, the feed-forward's
``fc1``, ``fc2`` and SwiGLU ``gate``), matched by full name, so a head or front end that happens
to share a short name is never adapted by accident.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hub.errors import ConfigError, HubError, InvalidInputError, ModelLoadError, NotSupportedError

#: a hub.pipeline.Pipeline (not imported: hub.pipeline imports this module)
Pipeline = Any

PEFT_EXTRA = "pip install 'hub-sdk[peft]'"
ADAPTER_CONFIG_NAME = "adapter_config.json"
ADAPTER_WEIGHTS_NAME = "adapter_model.safetensors"
DEFAULT_ADAPTER_NAME = "default"
#: the key prefix of PEFT's saved weights (``PeftModel.save_pretrained``)
PEFT_PREFIX = "base_model.model."
#: short names of the Linear layers of hub.backbone's Transformer blocks (documentation and errors)
BACKBONE_LINEARS = ("qkv", "out", "q", "kv", "fc1", "fc2", "gate")
#: the dict form's short names -> LoraConfig fields
_ALIASES = {"alpha": "lora_alpha", "dropout": "lora_dropout"}
#: layer types LoRA can adapt
_ADAPTABLE = (nn.Linear, nn.Embedding, nn.Conv1d, nn.Conv2d, nn.Conv3d)


try:
    from hub.errors import MissingExtraError
except ImportError:  # an older hub.errors
    class MissingExtraError(HubError, ImportError):  # type: ignore[no-redef]
        """An optional dependency of a feature is not installed; the message names the extra."""


def require_peft() -> Any:
    """The ``peft`` module, or a :class:`MissingExtraError` naming the extra that installs it."""
    try:
        import peft
    except ImportError:
        raise MissingExtraError(f"PEFT adapters need the `peft` library, which is not installed; install the "
                                f"extra: {PEFT_EXTRA}") from None
    return peft


# -- what a pipeline holds ----------------------------------------------------------------------
@dataclass
class AdapterInfo:
    """One adapter of a pipeline: its base pointer and, when it carries the head, the labels."""

    name: str
    base: dict[str, Any]
    labels: list[str] | None = None
    #: the head module when training started (a rebuilt head is one that is no longer it)
    head_at_start: nn.Module | None = None
    source: str | None = None  # the folder it was loaded from


@dataclass
class AdapterState:
    """The adapters of one pipeline: PEFT's model beside the pipeline's module (which PEFT
    changed in place) and what Hub records of each."""

    peft_model: Any
    infos: dict[str, AdapterInfo] = field(default_factory=dict)
    active: str = DEFAULT_ADAPTER_NAME
    base_labels: list[str] | None = None


def adapter_state(pipe: Pipeline) -> AdapterState | None:
    """The pipeline's adapters (None: a plain model)."""
    return getattr(pipe, "_adapter_state", None)


# -- configs ------------------------------------------------------------------------------------
#: the pieces PEFT adds inside a layer it wraps (``qkv.base_layer``, ``qkv.lora_A.default``, ...)
_PEFT_INTERNAL = re.compile(r"\.(?:base_layer|lora_[A-Za-z_]+|modules_to_save|original_module|lora_dropout)(?:\.|$)")


def model_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The model's modules by name as the user sees them: a layer PEFT wrapped stands for its
    base layer, and the adapters' own pieces are left out."""
    layers = {}
    for name, module in model.named_modules():
        if not name or _PEFT_INTERNAL.search(name):
            continue
        base = getattr(module, "base_layer", None) if hasattr(module, "lora_A") else None
        layers[name] = base if isinstance(base, nn.Module) else module
    return layers


def linear_names(model: nn.Module) -> list[str]:
    """The full names of the model's adaptable layers (Linear, Embedding, Conv)."""
    return [name for name, module in model_layers(model).items() if isinstance(module, _ADAPTABLE)]


def describe_layers(model: nn.Module) -> str:
    """The model's Linear layers for an error message: short names with counts, block layers
    once (``qkv x6``), then the full names of the others."""
    names = [name for name, module in model_layers(model).items() if isinstance(module, nn.Linear)]
    if not names:
        return "none (it has no nn.Linear layers)"
    counts: dict[str, int] = {}
    for name in names:
        short = re.sub(r"\.\d+\.", ".N.", name)
        counts[short] = counts.get(short, 0) + 1
    return ", ".join(f"{short} (x{n})" if n > 1 else short for short, n in counts.items())


def backbone_targets(model: nn.Module) -> str | None:
    """The default ``target_modules``: a full-match regex over every Linear inside the blocks of
    the model's ``hub.backbone`` Transformer stacks (None: the model has none)."""
    from hub.backbone.transformer import Transformer

    prefixes, inner = [], set()
    for name, module in model.named_modules():
        if isinstance(module, Transformer):
            prefixes.append(name)
            for sub, layer in model_layers(module.layers).items():
                if isinstance(layer, nn.Linear) and "." in sub:
                    inner.add(sub.split(".", 1)[1])  # "0.attn.qkv" -> "attn.qkv"
    if not inner:
        return None
    stacks = "|".join(re.escape(p + ".layers" if p else "layers") for p in sorted(set(prefixes)))
    layers = "|".join(re.escape(n) for n in sorted(inner))
    return rf"(?:{stacks})\.\d+\.(?:{layers})"


def _matches(target: str, name: str) -> bool:
    """PEFT's rule for a list entry: the full name, or its dotted suffix."""
    return name == target or name.endswith("." + target)


def check_targets(config: Any, model: nn.Module, task: str) -> None:
    """Every ``target_modules`` entry must name adaptable layers of ``model``; else one
    ConfigError listing the model's Linear layers."""
    targets = config.target_modules
    modules = model_layers(model)
    if isinstance(targets, str):
        if targets == "all-linear":
            return
        chosen = [name for name in modules if name and re.fullmatch(targets, name)]
        if not chosen:
            raise ConfigError(f"{task}: adapter target_modules={targets!r} (a regular expression over full module "
                              f"names) matches no layer of this model. Its Linear layers are: "
                              f"{describe_layers(model)}.")
        missing: list[str] = []
    else:
        targets = sorted(targets or [])
        missing = sorted(t for t in targets if not any(_matches(t, name) for name in modules if name))
        chosen = [name for name in modules if name and any(_matches(t, name) for t in targets)]
    if missing:
        shorts = sorted({name.rsplit(".", 1)[-1] for name in linear_names(model)})
        close = [c for t in missing for c in difflib.get_close_matches(t, shorts, n=2, cutoff=0.5)]
        hint = f" Did you mean {', '.join(map(repr, dict.fromkeys(close)))}?" if close else ""
        raise ConfigError(f"{task}: adapter target_modules {missing} name no layer of this model.{hint} Its Linear "
                          f"layers are: {describe_layers(model)}. Hub's backbone names them qkv and out "
                          f"(attention), fc1, fc2 and gate (feed-forward); the default targets all of them.")
    wrong = [f"{name} ({type(modules[name]).__name__})" for name in chosen if not isinstance(modules[name], _ADAPTABLE)]
    if wrong:
        raise ConfigError(f"{task}: adapter target_modules match {', '.join(wrong[:4])}, which LoRA cannot adapt "
                          f"(it adapts Linear, Embedding and Conv layers); name layers instead. This model's Linear "
                          f"layers are: {describe_layers(model)}.")


def peft_config(spec: Any, model: nn.Module, task: str) -> tuple[Any, str]:
    """``adapter=`` of fine_tune -> (a checked copy of the PEFT config, the adapter's name).

    Args:
        spec: a ``peft.PeftConfig`` (``peft.LoraConfig(...)``) or a dict: ``type`` (``"lora"``,
            the default), ``name`` (default ``"default"``), ``r``, ``alpha``, ``dropout``,
            ``target_modules``, ``modules_to_save`` and any other ``LoraConfig`` field; or
            ``{"name": ..., "config": a PeftConfig}`` to name a config object's adapter.
        model: the module the adapter goes into (to check the targets).
        task: for messages.

    Returns:
        ``(config, name)``; ``target_modules`` left out means every Linear of the backbone's blocks.

    Raises:
        ConfigError: an unknown key or type, or targets that name no layer of the model.
        NotSupportedError: the model has no backbone Transformer and no targets were given.
    """
    peft = require_peft()
    name = DEFAULT_ADAPTER_NAME
    if isinstance(spec, dict) and set(spec) <= {"name", "config"} and isinstance(spec.get("config"), peft.PeftConfig):
        name, spec = spec.get("name", name), spec["config"]  # a named config object
    if isinstance(spec, dict):
        spec = dict(spec)
        kind = str(spec.pop("type", "lora")).lower()
        name = spec.pop("name", name)
        if kind != "lora":
            raise ConfigError(f"{task}: adapter type {kind!r} is not understood as a dict; the dict form builds a "
                              "LoRA adapter (type 'lora'). For another PEFT method pass its config object, e.g. "
                              "peft.LoHaConfig(...).")
        spec = {_ALIASES.get(k, k): v for k, v in spec.items()}
        known = [f.name for f in dataclasses.fields(peft.LoraConfig) if f.init]
        for key in spec:
            if key not in known:
                close = difflib.get_close_matches(key, [*known, *_ALIASES], n=3)
                hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
                raise ConfigError(f"{task}: unknown adapter option {key!r}.{hint} The dict takes type, name, r, "
                                  "alpha, dropout, target_modules, modules_to_save and LoraConfig's fields.")
        try:
            config = peft.LoraConfig(**spec)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{task}: bad LoRA adapter options {spec}: {exc}") from None
    elif isinstance(spec, peft.PeftConfig):
        config = copy.deepcopy(spec)
        if config.is_prompt_learning:
            raise ConfigError(f"{task}: {type(spec).__name__} is a prompt-learning method, which needs a "
                              "transformers model; Hub's models take weight adapters (LoRA and its kin).")
    else:
        raise ConfigError(f"{task}: fine_tune(adapter=...) takes a peft config (peft.LoraConfig(r=8, ...)), a dict "
                          f"({{'type': 'lora', 'r': 8, 'alpha': 16}}) or the name of an adapter the pipeline has; "
                          f"got {type(spec).__name__}.")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]*", name):
        raise ConfigError(f"{task}: adapter name {name!r} must be letters, digits, '_' or '-'.")
    if getattr(config, "target_modules", None) is None:
        default = backbone_targets(model)
        if default is None:
            raise NotSupportedError(f"{task}: this {type(model).__name__} has no hub.backbone Transformer, so there "
                                    "are no default adapter targets; pass target_modules= naming its layers. Its "
                                    f"Linear layers are: {describe_layers(model)}.")
        config.target_modules = default
    else:
        check_targets(config, model, task)
    if getattr(config, "modules_to_save", None):
        config.modules_to_save = list(config.modules_to_save)
        missing = [m for m in config.modules_to_save if not any(n.endswith(m) for n, _ in model.named_modules() if n)]
        if missing:
            children = ", ".join(n for n, _ in model.named_children())
            raise ConfigError(f"{task}: adapter modules_to_save {missing} name no module of this model; its top-level "
                              f"modules are: {children}.")
    config.inference_mode = False
    return config, name


# -- fine_tune(adapter=...) ---------------------------------------------------------------------
def accepts_adapter(fine_tune: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a task's ``fine_tune`` so it takes ``adapter=`` (what :class:`~hub.pipeline.Pipeline`
    does to every subclass that defines one); without it the task's method runs as written."""
    if getattr(fine_tune, "__hub_adapter_wrapper__", False):
        return fine_tune

    @functools.wraps(fine_tune)
    def wrapper(self: Pipeline, *args: Any, adapter: Any = None, **kwargs: Any) -> Any:
        state = adapter_state(self)
        if adapter is None and state is None:
            return fine_tune(self, *args, **kwargs)
        if adapter is None:  # a pipeline with adapters trains its active one (the base stays frozen)
            adapter = state.active
        return train_with_adapter(self, functools.partial(fine_tune, self, *args, **kwargs), adapter)

    signature = inspect.signature(fine_tune)
    parameters = list(signature.parameters.values())
    if "adapter" not in signature.parameters:
        extra = inspect.Parameter("adapter", inspect.Parameter.KEYWORD_ONLY, default=None)
        at = next((i for i, p in enumerate(parameters) if p.kind is p.VAR_KEYWORD), len(parameters))
        parameters.insert(at, extra)
    wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    wrapper.__hub_adapter_wrapper__ = True  # type: ignore[attr-defined]
    return wrapper


def head_name(model: nn.Module) -> str | None:
    """The name of the model's task head: its ``get_classifier()`` module (timm's convention) or a
    child called ``head``; None when it has none."""
    get = getattr(model, "get_classifier", None)
    target = get() if callable(get) else getattr(model, "head", None)
    if not isinstance(target, nn.Module) or isinstance(target, nn.Identity):
        return None
    for name, module in model.named_modules():
        if module is target and name:
            return name.removesuffix(".original_module")
    return None


def float_weights(pipe: Pipeline, why: str = "an adapter") -> None:
    """LoRA wraps float ``nn.Linear`` layers: a pipeline computing in int8
    (:mod:`hub.int8_compute`) gets its float layers back first (the same dequantised weights)."""
    try:
        from hub.int8_compute import dequantize_pipeline
    except ImportError:  # no int8 compute in this Hub
        return
    dequantize_pipeline(pipe, why)


def _module(model: nn.Module, name: str | None) -> nn.Module | None:
    return model.get_submodule(name) if name else None


def train_with_adapter(pipe: Pipeline, run: Callable[[], Any], adapter: Any) -> Any:
    """Inject (or pick) the adapter, run the task's fine_tune, and keep a head it rebuilt."""
    refused = getattr(type(pipe), "adapters_refused", None)
    if refused:
        raise NotSupportedError(f"Task {pipe.task!r} does not support fine_tune(adapter=...): {refused}")
    float_weights(pipe, "fine_tune(adapter=...)")
    state = adapter_state(pipe)
    model = pipe.model
    created = None
    if isinstance(adapter, str):
        if state is None or adapter not in state.infos:
            have = sorted(state.infos) if state else []
            raise ConfigError(f"{pipe.task}: fine_tune(adapter={adapter!r}) names no adapter of this pipeline "
                              f"(it has {have or 'none'}); pass a peft.LoraConfig or a dict to train a new one.")
        set_adapter(pipe, adapter)
        name = adapter
    else:
        config, name = peft_config(adapter, model, pipe.task)
        if state is not None and name in state.infos:
            raise ConfigError(f"{pipe.task}: the pipeline already has an adapter named {name!r}; pass "
                              f"adapter={name!r} to train it further, or give the new one another name "
                              "({'name': 'other', 'r': 8, ...}, or {'name': 'other', 'config': peft.LoraConfig(...)}).")
        head = head_name(model)
        if head and pipe.metadata.get("head_initialized") is False:  # a random head: it trains with the adapter
            config.modules_to_save = sorted({*(config.modules_to_save or []), head})
        base = base_pointer(pipe)
        attach(pipe, config, AdapterInfo(name=name, base=base))
        created = name
    state = adapter_state(pipe)
    assert state is not None
    info = state.infos[name]
    info.head_at_start = _module(model, head_name(model))
    try:
        result = run()
    except BaseException:
        if created is not None:
            remove_adapter(pipe, created)
        raise
    _keep_rebuilt_head(pipe, info)
    pipe.model.eval()
    return result


def _keep_rebuilt_head(pipe: Pipeline, info: AdapterInfo) -> None:
    """A head the task rebuilt during training (new labels) becomes part of the adapter
    (PEFT's ``modules_to_save``); the labels it predicts are recorded with it."""
    from peft.utils import ModulesToSaveWrapper

    state = adapter_state(pipe)
    model = pipe.model
    name = head_name(model)
    if name is None or state is None:
        return
    module = model.get_submodule(name)
    config = state.peft_model.peft_config[info.name]
    if module is not info.head_at_start and not isinstance(module, ModulesToSaveWrapper):
        config.modules_to_save = sorted({*(config.modules_to_save or []), name})
        wrapper = ModulesToSaveWrapper(module, info.name)  # what PEFT wraps a modules_to_save entry in
        wrapper.set_adapter(info.name)
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, wrapper)
        try:  # PEFT releases that keep the set on the PeftModel (newer ones compute it)
            state.peft_model.modules_to_save = {*(state.peft_model.modules_to_save or ()), name}
        except AttributeError:
            pass
    if name in (config.modules_to_save or []) and getattr(model, "labels", None) is not None:
        info.labels = list(model.labels)


# -- attaching, switching, removing, merging ----------------------------------------------------
def attach(pipe: Pipeline, config: Any, info: AdapterInfo) -> None:
    """Inject a new adapter into ``pipe.model`` (in place) and make it the active one."""
    peft = require_peft()
    state = adapter_state(pipe)
    try:
        if state is None:
            peft_model = peft.PeftModel(pipe.model, config, adapter_name=info.name)
            labels = getattr(pipe.model, "labels", None)
            state = AdapterState(peft_model, base_labels=list(labels) if labels is not None else None)
            pipe._adapter_state = state  # type: ignore[attr-defined]
        else:
            state.peft_model.add_adapter(info.name, config)
    except (ValueError, TypeError, KeyError) as exc:  # PEFT's own checks
        raise ConfigError(f"{pipe.task}: PEFT could not add the adapter: {exc}. This model's Linear layers are: "
                          f"{describe_layers(pipe.model)}.") from None
    state.infos[info.name] = info
    set_adapter(pipe, info.name)
    pipe.model.to(pipe.device)


def set_adapter(pipe: Pipeline, name: str) -> None:
    """Make ``name`` the adapter the pipeline runs (and trains); its head's labels with it."""
    state = adapter_state(pipe)
    if state is None:
        raise InvalidInputError(f"{pipe.task}: this pipeline has no adapters; train one with "
                                "fine_tune(..., adapter=peft.LoraConfig(...)) or load one with "
                                "pipe.load_adapter(folder).")
    if not isinstance(name, str) or name not in state.infos:
        close = difflib.get_close_matches(str(name), list(state.infos), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise InvalidInputError(f"{pipe.task}: unknown adapter {name!r}.{hint} This pipeline has "
                                f"{', '.join(map(repr, state.infos))}.")
    state.peft_model.set_adapter(name)
    state.active = name
    labels = state.infos[name].labels or state.base_labels
    config = getattr(pipe.model, "config", None)
    if labels is not None and isinstance(config, dict) and "labels" in config and list(config["labels"]) != labels:
        pipe.model.config = {**config, "labels": list(labels)}
    if pipe.metadata.get("labels") is not None and labels is not None:
        pipe.metadata["labels"] = list(labels)
    pipe.metadata["adapter"] = name


def remove_adapter(pipe: Pipeline, name: str) -> None:
    """Take an adapter out again (a fine_tune that failed before it trained)."""
    state = adapter_state(pipe)
    if state is None or name not in state.infos:
        return
    del state.infos[name]
    if not state.infos:
        state.peft_model.unload()
        pipe._adapter_state = None  # type: ignore[attr-defined]
        pipe.metadata.pop("adapter", None)
        for parameter in pipe.model.parameters():
            parameter.requires_grad_(True)
        return
    state.peft_model.delete_adapter(name)
    set_adapter(pipe, next(iter(state.infos)))


def merge_adapter(pipe: Pipeline) -> None:
    """Fold the active adapter into the base weights and drop the adapters (PEFT's
    ``merge_and_unload``): the pipeline holds a plain model again, and ``save`` writes all of it."""
    state = adapter_state(pipe)
    if state is None:
        raise InvalidInputError(f"{pipe.task}: merge_adapter() needs an adapter; this pipeline has none.")
    info = state.infos[state.active]
    merged = state.peft_model.merge_and_unload()
    if merged is not pipe.model:  # PEFT changes the module in place; keep the pipeline's object
        pipe.model = merged
    for parameter in pipe.model.parameters():
        parameter.requires_grad_(True)
    pipe._adapter_state = None  # type: ignore[attr-defined]
    pipe.metadata.pop("adapter", None)
    pipe.metadata["merged_adapter"] = info.name
    pipe.metadata["base_model"] = base_label(info.base)
    pipe.model.eval()


def using_adapter(pipe: Pipeline, name: str) -> Any:
    """A context manager running ``pipe`` with adapter ``name``, then the previous one again
    (a call's ``adapter=``). Like PEFT's ``set_adapter`` it changes the model: not thread-safe."""
    import contextlib

    @contextlib.contextmanager
    def scope():
        state = adapter_state(pipe)
        previous = state.active if state is not None else None
        set_adapter(pipe, name)
        try:
            yield
        finally:
            if previous is not None and previous != name:
                set_adapter(pipe, previous)

    return scope()


# -- the base pointer ---------------------------------------------------------------------------
def base_pointer(pipe: Pipeline) -> dict[str, Any]:
    """Where the pipeline's base model comes from, as recorded in an adapter's config.json: the
    catalogue name, the local folder, the Hugging Face repo and resolved commit (what is known)."""
    meta = pipe.metadata
    pointer: dict[str, Any] = {"architecture": meta.get("architecture") or getattr(pipe, "architecture", None)}
    if meta.get("model_name"):
        pointer["model"] = meta["model_name"]
    source = meta.get("source")
    if meta.get("repo_id"):
        pointer["repo_id"] = meta["repo_id"]
        pointer["revision"] = meta.get("commit") or meta.get("revision")
    elif isinstance(source, str) and source not in ("scratch",) and not source.startswith(("package:", "hf://")):
        pointer["path"] = str(Path(source).expanduser().resolve())
    if isinstance(source, str):
        pointer["source"] = source
    return pointer


def base_label(base: dict[str, Any]) -> str:
    """How a model card and messages name the base."""
    if base.get("model"):
        return str(base["model"])
    if base.get("repo_id"):
        return f"{base['repo_id']}@{base.get('revision') or 'main'}"
    return str(base.get("path") or base.get("source") or "an unsaved model")


def _loadable(base: dict[str, Any]) -> bool:
    return bool(base.get("model") or base.get("repo_id") or base.get("path"))


# -- saving -------------------------------------------------------------------------------------
def save_adapter(pipe: Pipeline, folder: Path) -> None:
    """Write the active adapter into ``folder`` (an atomic save's temporary folder): PEFT's
    ``adapter_model.safetensors`` + ``adapter_config.json`` and Hub's ``config.json``."""
    from peft.utils.other import ModulesToSaveWrapper
    from peft.utils.save_and_load import get_peft_model_state_dict
    from safetensors.torch import save_file

    from hub.modeling import CONFIG_NAME, HUB_FORMAT

    state = adapter_state(pipe)
    assert state is not None
    info = state.infos[state.active]
    if not _loadable(info.base):
        raise InvalidInputError(f"{pipe.task}: this adapter's base model was never saved ({base_label(info.base)}), "
                                "so an adapter folder could not point at it. Save the base first and load it "
                                "(pipe.save(base); hub.load(task, model=base)) before training the adapter, or "
                                "pipe.merge_adapter() and save the full model.")
    config = copy.deepcopy(state.peft_model.peft_config[info.name])
    weights = get_peft_model_state_dict(state.peft_model, adapter_name=info.name, save_embedding_layers=False)
    head = head_name(pipe.model)
    module = _module(pipe.model, head)
    if head and module is not None and not isinstance(module, ModulesToSaveWrapper) and \
            info.head_at_start is not None and module is not info.head_at_start:
        # saved mid-training (the trainer's best model) with a head the task rebuilt: it is the adapter's
        config.modules_to_save = sorted({*(config.modules_to_save or []), head})
        weights.update({f"{PEFT_PREFIX}{head}.{k}": v for k, v in module.state_dict().items()})
    labels = info.labels
    if head in (config.modules_to_save or []) and labels is None:
        labels = list(getattr(pipe.model, "labels", []) or []) or None
    weights = {k: v.detach().to("cpu").contiguous().clone() for k, v in weights.items()}
    save_file(weights, folder / ADAPTER_WEIGHTS_NAME, metadata={"format": "pt"})
    config.base_model_name_or_path = base_label(info.base)
    config.revision = info.base.get("revision")
    config.inference_mode = True
    config.save_pretrained(str(folder))
    record = {"name": info.name, "peft_type": str(getattr(config.peft_type, "value", config.peft_type)),
              "base": info.base, "trainable_parameters": sum(v.numel() for v in weights.values())}
    if labels is not None and head in (config.modules_to_save or []):
        record["head"] = {"module": head, "labels": labels}
    payload = {"hub_format": HUB_FORMAT, "task": pipe.task, "architecture": info.base.get("architecture"),
               "adapter": record}
    (folder / CONFIG_NAME).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def card_data(pipe: Pipeline) -> dict[str, Any]:
    """What the adapter folder's model card adds: the base model it needs."""
    state = adapter_state(pipe)
    assert state is not None
    info = state.infos[state.active]
    return {"base_model": base_label(info.base), "adapter": info.name}


# -- loading ------------------------------------------------------------------------------------
def is_adapter_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a Hub adapter save (adapter_config.json + a config.json whose
    ``adapter`` section points at the base)."""
    if not (folder / ADAPTER_CONFIG_NAME).is_file():
        return False
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and isinstance(config.get("adapter"), dict)


def _read_record(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    from hub.modeling import read_config

    config = read_config(folder)
    record = config.get("adapter")
    if not isinstance(record, dict) or not isinstance(record.get("base"), dict):
        raise ModelLoadError(f"{str(folder / 'config.json')!r} has no 'adapter' section with a 'base'; it is not an "
                             "adapter folder Hub saved. Load a base model and call pipe.load_adapter(folder) for a "
                             "plain PEFT adapter of a Hub model.")
    return config, record


def load_adapter_folder(cls: type[Pipeline], folder: Path, *, device: torch.device, dtype: torch.dtype | None,
                        metadata: dict[str, Any]) -> Pipeline:
    """``hub.load(task, model=adapter_folder)``: the base through Hub's normal loading (its
    catalogue name, folder or repo + commit, resolved as ``hub.load`` resolves ``model=``, then
    ``cls.from_folder``), then the adapter on it."""
    from hub.registry import get_registry
    from hub.sources import resolve_model_argument

    config, record = _read_record(folder)
    if config.get("task") and cls.task and config["task"] != cls.task:
        raise ModelLoadError(f"{str(folder)!r} holds a {config['task']!r} adapter; load it with "
                             f"hub.load({config['task']!r}, model={str(folder)!r}).")
    base = record["base"]
    candidates = []
    if base.get("model"):
        candidates.append(("catalogue model", base["model"], None))
    if base.get("path"):
        candidates.append(("folder", base["path"], None))
    if base.get("repo_id"):
        candidates.append(("Hugging Face repo", base["repo_id"], base.get("revision")))
    if not candidates:
        raise ModelLoadError(f"{str(folder)!r}: the adapter's config.json names no base model (catalogue name, folder "
                             "or repo); load the base yourself and call pipe.load_adapter(folder).")
    problems = []
    for what, ref, revision in candidates:
        if what == "folder" and not Path(ref).exists():
            problems.append(f"the {what} {ref!r} does not exist")
            continue
        registry = get_registry()
        if what == "catalogue model" and ref not in registry.models:
            problems.append(f"the {what} {ref!r} is not in the catalogue")
            continue
        try:
            entry, resolved = resolve_model_argument(ref, registry.models, revision=revision)
            base_metadata = {"task": cls.task, **resolved.metadata}
            if entry is not None:
                base_metadata.update(model_name=entry.name, license=entry.license, labels=list(entry.labels))
            pipe = cls.from_folder(resolved.folder, device=device, dtype=dtype, metadata=base_metadata)
            break
        except HubError as exc:
            problems.append(f"the {what} {ref!r} did not load ({exc})")
    else:
        raise ModelLoadError(f"Cannot load the base model of the adapter in {str(folder)!r}: "
                             f"{'; '.join(problems)}. Restore the base (or download it while online), or load "
                             f"a base with hub.load({cls.task!r}, model=...) and call "
                             f"pipe.load_adapter({str(folder)!r}).")
    load_adapter(pipe, folder)
    pipe.metadata["adapter_source"] = metadata.get("source", str(folder))
    return pipe


def load_adapter(pipe: Pipeline, folder: str | Path, *, name: str | None = None) -> str:
    """Add the adapter saved in ``folder`` to ``pipe`` (a loaded base) and make it active.

    Args:
        pipe: the pipeline holding the base model the adapter was trained on.
        folder: an adapter folder ``pipe.save`` wrote (or PEFT's layout for a Hub model).
        name: the name it gets here (default: the name it was saved with).

    Returns:
        The adapter's name.

    Raises:
        ModelLoadError: missing or corrupt files, or weights that do not fit this base.
        ConfigError: a name already taken.
    """
    peft = require_peft()
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    float_weights(pipe, "load_adapter")
    if not (folder / ADAPTER_CONFIG_NAME).is_file() or not (folder / ADAPTER_WEIGHTS_NAME).is_file():
        raise ModelLoadError(f"{str(folder)!r} is not an adapter folder: it needs {ADAPTER_CONFIG_NAME} and "
                             f"{ADAPTER_WEIGHTS_NAME} (what pipe.save writes for a pipeline with an adapter).")
    record: dict[str, Any] = {}
    if (folder / "config.json").is_file():
        _, record = _read_record(folder)
    try:
        config = peft.PeftConfig.from_pretrained(str(folder))
    except (ValueError, TypeError, OSError) as exc:
        raise ModelLoadError(f"{str(folder / ADAPTER_CONFIG_NAME)!r} is not a PEFT config PEFT reads: {exc}") from None
    config.inference_mode = False
    name = name or record.get("name") or DEFAULT_ADAPTER_NAME
    state = adapter_state(pipe)
    if state is not None and name in state.infos:
        raise ConfigError(f"{pipe.task}: the pipeline already has an adapter named {name!r}; pass "
                          "load_adapter(folder, name='other').")
    base = record.get("base") or base_pointer(pipe)
    if base.get("architecture") and pipe.metadata.get("architecture") and \
            base["architecture"] != pipe.metadata["architecture"]:
        raise ModelLoadError(f"{str(folder)!r} adapts a {base['architecture']!r} model; this pipeline holds a "
                             f"{pipe.metadata['architecture']!r} one.")
    try:
        weights = load_file(folder / ADAPTER_WEIGHTS_NAME)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelLoadError(f"Cannot read {str(folder / ADAPTER_WEIGHTS_NAME)!r}: {exc}. The file is corrupt or "
                             "truncated; save the adapter again.") from None
    from hub.modeling import check_finite

    check_finite(weights, str(folder / ADAPTER_WEIGHTS_NAME))
    head = (record.get("head") or {}).get("module")
    labels = (record.get("head") or {}).get("labels")
    if head and labels is not None:
        _fit_head(pipe, head, labels, folder)
    info = AdapterInfo(name=name, base=base, labels=list(labels) if labels is not None else None, source=str(folder))
    check_targets(config, pipe.model, pipe.task)
    attach(pipe, config, info)
    from peft.utils.save_and_load import set_peft_model_state_dict

    state = adapter_state(pipe)
    assert state is not None
    current = peft.get_peft_model_state_dict(state.peft_model, adapter_name=name, save_embedding_layers=False)
    missing, unexpected = set(current) - set(weights), set(weights) - set(current)
    wrong = [k for k in sorted(set(current) & set(weights)) if tuple(current[k].shape) != tuple(weights[k].shape)]
    if missing or unexpected or wrong:
        remove_adapter(pipe, name)
        if wrong:
            first = wrong[0]
            problem = (f"{first!r} is {tuple(weights[first].shape)} in the file but {tuple(current[first].shape)} "
                       f"in this model ({len(wrong)} of {len(weights)} tensors differ)")
        else:
            problem = f"missing {sorted(missing)[:4]}, unexpected {sorted(unexpected)[:4]}"
        raise ModelLoadError(f"The adapter weights in {str(folder)!r} do not fit this model: {problem}. It was "
                             f"trained on {base_label(base)}; load it onto that base.")
    set_peft_model_state_dict(state.peft_model, weights, adapter_name=name)
    pipe.model.to(pipe.device)
    if pipe.dtype is not None:
        pipe.model.to(pipe.dtype)
    pipe.model.eval()
    set_adapter(pipe, name)
    return name


def _fit_head(pipe: Pipeline, head: str, labels: list[str], folder: Path) -> None:
    """An adapter carrying its own head for ``labels``: the base's head is rebuilt to that size
    when it differs (the adapter's weights then fill it)."""
    current = getattr(pipe.model, "labels", None)
    if current is not None and len(current) == len(labels):
        return
    if adapter_state(pipe) is not None:
        raise ModelLoadError(f"{str(folder)!r} carries a head for {len(labels)} labels but this pipeline's head "
                             f"(shared with its other adapters) has {len(current or [])}; adapters on one base "
                             "share the head's size. Load it into a fresh base.")
    reset = getattr(pipe.model, "reset_classifier", None)
    if not callable(reset):
        raise ModelLoadError(f"{str(folder)!r} carries a head for {len(labels)} labels, and this "
                             f"{type(pipe.model).__name__} cannot rebuild its head (no reset_classifier).")
    reset(list(labels))
    pipe.model.to(pipe.device)
