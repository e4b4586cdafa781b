"""Model folders: config.json + model.safetensors, in Hub's format or a foreign one.

A Hub model folder holds ``config.json`` (``{"hub_format": 1, "architecture": ...,
"config": {...}}``), ``model.safetensors`` and whatever the preprocessor needs
(tokenizer files, ...). Folders written by other libraries (transformers' BERT, ...)
load through a converter a plugin picks for them (the ``hub_select_converter`` hook: by
``model_type`` by default, or by whatever a plugin recognises, such as timm's layout); the
converter sees the folder's side files (``vocab.json``, ...) through :class:`hub.checkpoint.Checkpoint`.

Modules are built on the meta device and the loaded tensors are assigned directly,
so no time is wasted on a random initialisation that would be overwritten.

Untrusted folders: a config.json is checked against its weights before anything is
allocated. The meta build runs under a budget derived from the weights file (at most
4x its tensors and values, 16x + 1024 modules), so ``num_layers: 10**9`` or
``hidden_size: 10**7`` next to small weights is a :class:`ModelLoadError` after a few
milliseconds, not an out-of-memory kill. Models built without weights
(``hub.create``) are first built on meta under ``HUB_MAX_PARAMETERS`` (default 10**10
values, or half this machine's memory in float32 if less) and ``HUB_MAX_MODULES``
(default 10,000). Weights holding NaN or infinite values are refused, naming the tensor;
so is a config.json whose head count differs from the one recorded when it was saved.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hub.checkpoint import Checkpoint
from hub.errors import ConfigError, HubError, InvalidInputError, ModelLoadError
from hub.quantize import FORMAT as INT8_FORMAT
from hub.quantize import dequantize_state_dict, quantize_state_dict
from hub.specs import ConverterSpec

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
HUB_FORMAT = 1
#: the default bound on a model built without weights (``hub.create``): parameter values
#: (also at most half this machine's memory in float32, see :func:`max_parameters`)
DEFAULT_MAX_PARAMETERS = 10**10
#: ... and modules (a Transformer layer is about a dozen; timm's largest models have ~1,100)
DEFAULT_MAX_MODULES = 10_000


@dataclass
class LoadedModel:
    module: nn.Module
    architecture: str
    config: dict[str, Any]
    folder: Path
    converted_from: str | None = None  # e.g. "transformers:bert"
    task: str | None = None  # the task the folder was saved for (Hub format), if it says


def read_config(folder: str | Path) -> dict[str, Any]:
    folder = Path(folder)
    if not folder.exists():
        from hub._fs import restore_interrupted_save

        restore_interrupted_save(folder)  # a save killed mid-swap on a system without atomic exchange
    if not folder.exists():
        raise ModelLoadError(f"Model folder {str(folder)!r} does not exist.")
    if not folder.is_dir():
        raise ModelLoadError(f"{str(folder)!r} is a file, not a model folder; pass the folder "
                             "that holds config.json and the weights.")
    path = folder / CONFIG_NAME
    if not path.is_file():
        raise ModelLoadError(f"{str(folder)!r} is not a model folder: it has no {CONFIG_NAME}. "
                             "A model folder holds config.json and model.safetensors (Hub or "
                             "transformers format), as written by pipe.save(dir).")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{str(path)!r} is not valid JSON ({exc}); the file is corrupt.") from None
    if not isinstance(config, dict):
        raise ModelLoadError(f"{str(path)!r} must hold a JSON object.")
    return config


def read_state_dict(folder: str | Path) -> dict[str, torch.Tensor]:
    """Read weights: model.safetensors (or its shards), else pytorch_model.bin (weights only)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    single = folder / WEIGHTS_NAME
    index = folder / "model.safetensors.index.json"
    try:
        if single.is_file():
            return load_file(single)
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            for shard in shards:  # names inside this folder only: never ../../elsewhere or /dev/zero
                if (not isinstance(shard, str) or Path(shard).name != shard or shard in (".", "..")
                        or not shard.endswith(".safetensors")):
                    raise ModelLoadError(f"{str(index)!r} names the shard {shard!r}; shards must be .safetensors "
                                         "files in the model folder itself. The index is corrupt or hostile.")
            state: dict[str, torch.Tensor] = {}
            for shard in shards:
                state.update(load_file(folder / shard))
            return state
    except (SafetensorError, OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"Cannot read the weights in {str(folder)!r}: {exc}. The file is "
                             "corrupt or truncated; download or save the model again.") from None
    legacy = folder / "pytorch_model.bin"
    if legacy.is_file():
        return _read_legacy(legacy)
    raise ModelLoadError(f"{str(folder)!r} has no weights: expected {WEIGHTS_NAME} "
                         "(or pytorch_model.bin).")


def _read_legacy(path: Path) -> dict[str, torch.Tensor]:
    """A pickled state dict, tensors only (``weights_only=True``: never an arbitrary object).

    mmap avoids a copy but only works for the zip format (torch >= 1.6); files written with
    the older format (``_use_new_zipfile_serialization=False``) are read plainly, still with
    ``weights_only=True``, so a pickle holding objects is refused either way.
    """
    def refuse(exc: BaseException) -> ModelLoadError:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return ModelLoadError(f"Cannot read {str(path)!r} as plain weights ({type(exc).__name__}: {first:.200}). "
                              "Hub only loads tensors from pickles (weights_only=True: no code or objects); "
                              "convert the checkpoint to safetensors with the library that wrote it.")

    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:
        if "mmap" not in str(exc):
            raise refuse(exc) from None
        try:  # the legacy (non-zip) format: no mmap, same weights-only unpickler
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as inner:
            raise refuse(inner) from None
    except Exception as exc:
        raise refuse(exc) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict) and len(state) <= 4:
        state = state["state_dict"]  # {"state_dict": ..., "epoch": ...} checkpoints
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise ModelLoadError(f"{str(path)!r} does not hold a state dict (names -> tensors) but a "
                             f"{type(state).__name__}; save model.state_dict(), preferably as safetensors.")
    return state


#: config keys that shape a model's computation without showing in any weight's shape
#: (a 768-wide layer splits into 12 heads of 64 or 6 of 128 with the same matrices)
HIDDEN_SHAPE_KEYS = ("num_heads", "rotary_dim", "head_dim", "num_key_value_heads")
HIDDEN_SHAPES_KEY = "hidden_shapes"


def _hidden_shapes(config: Any, prefix: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {}
    if isinstance(config, dict):
        for key, value in config.items():
            if key in HIDDEN_SHAPE_KEYS and isinstance(value, int) and not isinstance(value, bool):
                found[f"{prefix}{key}"] = value
            elif isinstance(value, dict):
                found.update(_hidden_shapes(value, f"{prefix}{key}."))
    return found


def hidden_shapes_record(config: dict[str, Any]) -> dict[str, Any]:
    """What save_model writes next to ``config`` in config.json: the values no weight's shape
    reveals (:data:`HIDDEN_SHAPE_KEYS`), so that a config edited to, say, 6 heads for a
    12-head checkpoint is refused at load instead of loading and predicting differently.

    (Kept in config.json, not in the safetensors header: a longer header shifts every
    tensor's memory alignment, and with it the float rounding of the loaded model.)"""
    shapes = _hidden_shapes(config)
    return {HIDDEN_SHAPES_KEY: shapes} if shapes else {}


def check_hidden_shapes(path: Path, config: dict[str, Any], record: Any) -> None:
    """Refuse a config whose head count (rotary width, ...) differs from what was saved with
    the weights. Folders saved before the record existed, or by other libraries, carry none
    and are checked for shapes and divisibility only."""
    if not isinstance(record, dict):
        return
    current = _hidden_shapes(config)
    for key, value in sorted(record.items()):
        if current.get(key) != value:
            raise ModelLoadError(f"{str(path)!r} says {key}={current.get(key)!r}, but the weights were saved with "
                                 f"{key}={value!r} (its '{HIDDEN_SHAPES_KEY}'). It does not show in the weights' "
                                 f"shapes, so the model would load and compute something else; set it back to "
                                 f"{value!r} (or retrain with the new value).")


def _check_quantized(state: dict[str, torch.Tensor], folder: Path) -> None:
    """int8 weights need one float scale per output row; anything else would be a torch
    broadcasting error (or a silently wrong product) inside dequantize_state_dict."""
    from hub.quantize import SCALE_SUFFIX

    for name, scale in state.items():
        if not name.endswith(SCALE_SUFFIX):
            continue
        weight = state.get(name[:-len(SCALE_SUFFIX)])
        if (weight is None or weight.dtype != torch.int8 or weight.dim() != 2 or not scale.is_floating_point()
                or tuple(scale.shape) != (weight.shape[0],)):
            raise ModelLoadError(f"{str(folder)!r}: the int8 scale {name!r} {tuple(scale.shape)} does not fit "
                                 "its weight "
                                 f"({'missing' if weight is None else f'{weight.dtype} {tuple(weight.shape)}'}); "
                                 "model.safetensors is corrupt. Save the model again.")


def check_finite(state: dict[str, torch.Tensor], where: str) -> None:
    """Refuse weights holding NaN or infinite values (a diverged training run, a corrupt file):
    they would load fine and turn every score into NaN.

    A tensor's sum is finite exactly when no element is NaN/inf, unless the sum overflows;
    one reduction per tensor (10-20 ms for the shipped 22.7M-value text default on two
    busy cores, against ~300 ms for ``isfinite(t).all()``). Only a non-finite sum is
    checked element by element."""
    for name, tensor in state.items():
        if not (tensor.is_floating_point() or tensor.is_complex()) or tensor.is_meta or not tensor.numel():
            continue
        if bool(torch.isfinite(tensor.sum())):
            continue
        flat = tensor.reshape(-1)
        bad = sum(int((~torch.isfinite(flat[i:i + (1 << 24)])).sum()) for i in range(0, flat.numel(), 1 << 24))
        if bad:
            raise ModelLoadError(f"{where}: weight {name!r} {tuple(tensor.shape)} holds {bad} NaN or infinite "
                                 f"value(s) of {flat.numel()}; the checkpoint is corrupt (or its training "
                                 "diverged). Re-download it, or save it again from a healthy model.")


class _BuildBudget:
    """Counts what module constructors register on this thread and stops past a budget.

    torch's global registration hooks see every ``register_parameter`` / ``register_buffer``
    / submodule assignment, so a config that would build 10**9 layers (or a 10**7-wide
    layer) is stopped after a few thousand registrations, long before memory runs out.
    """

    local = threading.local()

    def __init__(self, max_tensors: int, max_values: int, max_modules: int,
                 error: Callable[[str], HubError]) -> None:
        self.max_tensors, self.max_values, self.max_modules = max_tensors, max_values, max_modules
        self.error, self.thread = error, threading.get_ident()
        self.tensors = self.values = self.modules = 0
        self.paused = 0

    def _active(self) -> bool:
        return threading.get_ident() == self.thread and not self.paused

    def on_tensor(self, module: nn.Module, name: str, tensor: Any) -> None:
        if tensor is None or not self._active():
            return
        self.tensors += 1
        self.values += tensor.numel()
        if self.tensors > self.max_tensors:
            raise self.error(f"more than {self.max_tensors:,} parameter/buffer tensors")
        if self.values > self.max_values:
            raise self.error(f"more than {self.max_values:,} parameter values")

    def on_module(self, module: nn.Module, name: str, submodule: Any) -> None:
        if submodule is None or not self._active():
            return
        self.modules += 1
        if self.modules > self.max_modules:
            raise self.error(f"more than {self.max_modules:,} modules")


@contextlib.contextmanager
def build_budget(max_tensors: int, max_values: int, max_modules: int,
                 error: Callable[[str], HubError]) -> Iterator[_BuildBudget]:
    """Run module construction under a budget; past it, ``error(what)`` is raised from the
    constructor (see :class:`_BuildBudget`)."""
    from torch.nn.modules import module as torch_module

    budget = _BuildBudget(max_tensors, max_values, max_modules, error)
    outer = getattr(_BuildBudget.local, "budget", None)
    _BuildBudget.local.budget = budget
    handles = [torch_module.register_module_parameter_registration_hook(budget.on_tensor),
               torch_module.register_module_buffer_registration_hook(budget.on_tensor),
               torch_module.register_module_module_registration_hook(budget.on_module)]
    try:
        yield budget
    finally:
        for handle in handles:
            handle.remove()
        _BuildBudget.local.budget = outer


@contextlib.contextmanager
def uncounted() -> Iterator[None]:
    """Suspend this thread's build budget, for a reference model a builder makes only to read
    its structure (e.g. timm's default model, to learn which keyword arguments it takes)."""
    budget = getattr(_BuildBudget.local, "budget", None)
    if budget is not None:
        budget.paused += 1
    try:
        yield
    finally:
        if budget is not None:
            budget.paused -= 1


def _env_limit(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(float(raw))
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{name}={raw!r} must be a positive integer (default {default}).")
    return value


def max_parameters() -> int:
    """``HUB_MAX_PARAMETERS``: the most parameter values a model built without weights may
    have; by default 10**10 or as many float32 values as fill half this machine's memory,
    whichever is smaller (a fresh model is built in CPU memory first)."""
    default = DEFAULT_MAX_PARAMETERS
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        default = max(10**6, min(default, memory // 8))
    except (AttributeError, ValueError, OSError):  # not POSIX: the fixed default
        pass
    return _env_limit("HUB_MAX_PARAMETERS", default)


def max_modules() -> int:
    """``HUB_MAX_MODULES``: the most modules a model built without weights may have."""
    return _env_limit("HUB_MAX_MODULES", DEFAULT_MAX_MODULES)


def _largest_sizes(config: Any, prefix: str = "", found: list | None = None) -> list[tuple[int, str]]:
    """The config's integer values, largest first: the likely culprits of an oversized model."""
    found = [] if found is None else found
    if isinstance(config, dict):
        for key, value in config.items():
            if isinstance(value, int) and not isinstance(value, bool):
                found.append((value, f"{prefix}{key}"))
            elif isinstance(value, dict):
                _largest_sizes(value, f"{prefix}{key}.", found)
            elif isinstance(value, (list, tuple)) and value and len(value) <= 64:
                ints = [(v, i) for i, v in enumerate(value) if isinstance(v, int) and not isinstance(v, bool)]
                if ints:
                    top, index = max(ints)
                    found.append((top, f"{prefix}{key}[{index}]"))
    return sorted(found, reverse=True)


def _culprits(config: dict[str, Any]) -> str:
    sizes = [f"{name}={value:,}" for value, name in _largest_sizes(config)[:3] if value > 1]
    return f" Its largest sizes: {', '.join(sizes)}." if sizes else ""


def check_scratch_size(build: Callable[[], Any], what: str, config: dict[str, Any]) -> None:
    """Build once on the meta device (no memory) under ``HUB_MAX_PARAMETERS`` and
    ``HUB_MAX_MODULES``; a config past them is a ConfigError naming its largest sizes.
    Call it before building a model without weights for real."""
    limit, modules = max_parameters(), max_modules()

    def too_big(found: str) -> ConfigError:
        return ConfigError(f"This {what!r} config describes a model with {found}, past the limit for a model "
                           f"built from scratch ({limit:,} values: HUB_MAX_PARAMETERS; {modules:,} modules: "
                           f"HUB_MAX_MODULES).{_culprits(config)} Choose smaller sizes, or raise the limit in "
                           "the environment.")

    with build_budget(10 * modules + 1000, limit, modules, too_big), torch.device("meta"):
        build()


def build_module(architecture: str, config: dict[str, Any],
                 state_dict: dict[str, torch.Tensor] | None = None) -> nn.Module:
    """Build ``architecture`` from ``config``; with a state dict, build on meta and assign.

    With weights, the meta build may register at most 4x the weights' tensors and values
    (16x + 1024 modules): a config describing a far bigger model than its weights is refused
    before it grows. Without weights (a fresh model), the model is first built on meta under
    ``HUB_MAX_PARAMETERS`` / ``HUB_MAX_MODULES``, then for real.
    """
    from hub.registry import get_registry
    from hub.specs import load_object

    builder = load_object(get_registry().architecture(architecture).builder)
    if not isinstance(config, dict):
        raise ConfigError(f"the {architecture!r} config must be an object (dict), got {type(config).__name__}.")
    if state_dict is None:
        check_scratch_size(lambda: builder(config), architecture, config)
        return builder(config)
    values = sum(t.numel() for t in state_dict.values())

    def mismatch(what: str) -> ModelLoadError:
        return ModelLoadError(f"The {architecture!r} config describes a model with {what}, but its weights hold "
                              f"{len(state_dict):,} tensors ({values:,} values): the config does not belong to "
                              f"these weights (edited, or from another model).{_culprits(config)} Use the "
                              "config.json that was saved with the weights.")

    with build_budget(4 * len(state_dict) + 64, 4 * values + (1 << 20), 16 * len(state_dict) + 1024,
                      mismatch), torch.device("meta"):
        module = builder(config)
    expected = set(module.state_dict())
    missing, unexpected = expected - set(state_dict), set(state_dict) - expected
    if missing or unexpected:
        raise ModelLoadError(
            f"Weights do not match architecture {architecture!r}: "
            f"missing {sorted(missing)[:8]}{'...' if len(missing) > 8 else ''}, "
            f"unexpected {sorted(unexpected)[:8]}{'...' if len(unexpected) > 8 else ''}."
        )
    for name, tensor in module.state_dict().items():
        if tuple(state_dict[name].shape) != tuple(tensor.shape):
            raise ModelLoadError(f"Weight {name!r} has shape {tuple(state_dict[name].shape)} but "
                                 f"architecture {architecture!r} expects {tuple(tensor.shape)}.")
    module.load_state_dict(state_dict, strict=True, assign=True)
    return module


def select_converter(checkpoint: Checkpoint) -> tuple[ConverterSpec, str]:
    """The converter for a foreign checkpoint and the model type it names in ``converted_from``.

    Chosen by the ``firstresult`` hook ``hub_select_converter`` (see :mod:`hub.hookspecs`): the
    plugins recognise their checkpoints (timm's layout, transformers' ``model_type``); the
    core knows no family. The model type is the config's ``model_type``, else the chosen
    spec's first ``model_types`` entry, else its name.
    """
    from hub.registry import get_registry

    config, path = checkpoint.config, str(checkpoint.folder / CONFIG_NAME)
    registry = get_registry()
    selected = registry.select_converter(config, checkpoint.files)
    if selected is None:
        if "model_type" in config:  # an UnknownNameError listing the model types Hub converts
            registry.converter_for(str(config["model_type"]))
        from hub.plugins import get_plugin_manager

        failed = "; ".join(f"plugin {plugin!r}: {error}" for plugin, hook, error
                           in get_plugin_manager().hook_errors if hook == "hub_select_converter")
        raise ModelLoadError(f"{path!r} is neither a Hub config ('hub_format') nor a checkpoint an installed "
                             "plugin converts (a transformers config with a 'model_type' Hub knows, a timm "
                             "config with 'architecture' + 'pretrained_cfg', ...); `hub plugins` lists the "
                             "installed plugins." + (f" These plugins failed to answer: {failed}." if failed else ""))
    converter = selected[1]
    model_type = config.get("model_type")
    if not isinstance(model_type, str):
        model_type = converter.model_types[0] if converter.model_types else converter.name
    return converter, model_type


def call_converter(convert: Callable[..., Any], config: dict[str, Any], state: dict[str, torch.Tensor],
                   checkpoint: Checkpoint) -> Any:
    """``convert(config, state)``, plus ``checkpoint=`` when the function takes it (a keyword
    parameter of that name, or ``**kwargs``): converters that read side files get the
    folder's :class:`~hub.checkpoint.Checkpoint`, two-argument ones keep working."""
    try:
        parameters = inspect.signature(convert).parameters
    except (TypeError, ValueError):  # a builtin or C callable: the two-argument form
        parameters = {}
    takes = "checkpoint" in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD
                                              for p in parameters.values())
    return convert(config, state, checkpoint=checkpoint) if takes else convert(config, state)


def load_model(folder: str | Path, *, device: str | torch.device | None = None,
               dtype: torch.dtype | None = None) -> LoadedModel:
    """Load a Hub or (through a converter) a foreign model folder."""
    from hub.specs import load_object

    if dtype is not None and (not isinstance(dtype, torch.dtype) or not dtype.is_floating_point):
        raise InvalidInputError(f"dtype {dtype!r} cannot hold a model's weights; use a floating dtype "
                                "(torch.float32, torch.bfloat16, torch.float16).")
    folder = Path(folder)
    config = read_config(folder)
    if "hub_format" in config:
        architecture, arch_config = config.get("architecture"), config.get("config")
        if not isinstance(architecture, str) or not isinstance(arch_config, dict):
            raise ModelLoadError(f"{str(folder / CONFIG_NAME)!r}: a Hub config needs "
                                 "'architecture' (string) and 'config' (object).")
        state = read_state_dict(folder)
        if config.get("weights_format") == INT8_FORMAT:
            _check_quantized(state, folder)
            state = dequantize_state_dict(state)
        converted_from = None
    else:
        checkpoint = Checkpoint.from_folder(folder, config)
        converter, model_type = select_converter(checkpoint)
        convert = load_object(converter.convert)
        raw = read_state_dict(folder)
        try:
            architecture, arch_config, state = call_converter(convert, config, raw, checkpoint)
        except HubError as exc:  # name the file; other Hub errors (and subclasses) pass unchanged
            if type(exc) not in (ModelLoadError, ConfigError):
                raise
            raise type(exc)(f"{str(folder / CONFIG_NAME)!r} ({model_type}): {exc}") from None
        # a converter indexing a bad config
        except (KeyError, TypeError, ValueError, IndexError, ArithmeticError) as exc:
            what = (f"missing {exc.args[0]!r}" if isinstance(exc, KeyError) and exc.args
                    else f"{type(exc).__name__}: {exc}")
            raise ModelLoadError(f"Cannot convert the {model_type} checkpoint in {str(folder)!r} ({what}): its "
                                 "config.json lacks a key or holds a value of the wrong type, or the weights "
                                 "lack a tensor that config asks for. Use the config.json saved with the "
                                 "weights.") from None
        converted_from = f"{converter.source}:{model_type}"
    check_finite(state, str(folder))
    try:
        module = build_module(architecture, arch_config, state)
    except (ConfigError, ModelLoadError) as exc:  # name the file the bad value is in
        if type(exc) not in (ConfigError, ModelLoadError):
            raise
        raise type(exc)(f"{str(folder / CONFIG_NAME)!r}: {exc}") from None
    if converted_from is None:  # values the shapes cannot show, as recorded when saved
        check_hidden_shapes(folder / CONFIG_NAME, arch_config, config.get(HIDDEN_SHAPES_KEY))
    module.to(device=device, dtype=dtype).eval()
    task = config.get("task") if isinstance(config.get("task"), str) else None
    return LoadedModel(module, architecture, arch_config, folder, converted_from, task)


def check_layer_count(state: dict[str, torch.Tensor], layer_prefix: str, declared: Any, key: str) -> int:
    """For converters: the config's layer count (``key``) must be the number of layers in the
    weights (keys ``{layer_prefix}{i}.``). Checked before a converter loops over the layers, so
    ``num_hidden_layers: 10**9`` next to a 2-layer checkpoint is one clear error."""
    if isinstance(declared, bool) or not isinstance(declared, int) or declared < 0:
        raise ModelLoadError(f"config.json {key!r} must be a non-negative integer, got {declared!r:.60}.")
    indices = set()
    for name in state:
        if name.startswith(layer_prefix):
            head = name[len(layer_prefix):].split(".", 1)[0]
            if head.isdigit():
                indices.add(int(head))
    found = len(indices)
    if declared != found or (indices and max(indices) != found - 1):
        held = f"layers {min(indices)}..{max(indices)}" if indices else "no layers"
        raise ModelLoadError(f"config.json says {key}={declared:,} but the weights hold {found} ({held} under "
                             f"{layer_prefix!r}); the config does not belong to these weights. Use the "
                             "config.json saved with them.")
    return found


def wrong_model(loaded: LoadedModel, task: str, needs: str) -> ModelLoadError:
    """The error for a folder whose model a task cannot use, naming the task that can.

    The folder's own ``task`` (Hub configs record it) or else the catalogue's tasks for the
    same architecture say where the model belongs."""
    suggestion = loaded.task
    if suggestion is None or suggestion == task:
        try:
            from hub.registry import get_registry

            tasks = sorted({m.task for m in get_registry().models.values()
                            if getattr(m, "architecture", None) == loaded.architecture} - {task})
        except HubError:
            tasks = []
        suggestion = tasks[0] if len(tasks) == 1 else None
        known = ", ".join(tasks) if len(tasks) > 1 else ""
    else:
        known = ""
    hint = (f" It is a model for {suggestion}: load it with hub.load({suggestion!r}, model={str(loaded.folder)!r})."
            if suggestion else (f" Tasks that use {loaded.architecture!r} models: {known}." if known else ""))
    return ModelLoadError(f"{str(loaded.folder)!r} holds a {loaded.architecture!r} model; {task} needs {needs}.{hint}")


def save_model(module: nn.Module, architecture: str, config: dict[str, Any], folder: str | Path,
               *, quantize: bool = False, extra: dict[str, Any] | None = None) -> None:
    """Write config.json + model.safetensors into ``folder`` (an existing, fresh folder).

    Callers wrap this in :func:`hub._fs.atomic_directory` so a crash leaves nothing half-written.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    state = {k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}
    state = {k: v.clone() for k, v in state.items()}  # safetensors refuses shared storage
    if quantize:
        state = quantize_state_dict(state)
    save_file(state, folder / WEIGHTS_NAME, metadata={"format": "pt"})
    payload = {"hub_format": HUB_FORMAT, "architecture": architecture, "config": config,
               "weights_format": INT8_FORMAT if quantize else "float", **hidden_shapes_record(config),
               **(extra or {})}
    (folder / CONFIG_NAME).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n",
                                      encoding="utf-8")
