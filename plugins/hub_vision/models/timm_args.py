"""Which ``model_args`` of a config.json may reach ``timm.create_model``.

A config.json is data from wherever the model folder came from, and ``timm.create_model``
takes more than architecture sizes: ``checkpoint_path`` / ``pretrained`` /
``pretrained_cfg_overlay={"file": ...}`` make it read (``torch.load``) or download any file,
``features_only`` changes what the model returns. So only keyword arguments of the model
class itself pass (its ``__init__`` signature, read from timm's default model of that name
built on the meta device, once per name), never the loading keywords below, and no value
that looks like a file path. Everything else is a clear error naming the key.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from hub.errors import ConfigError, ModelLoadError

#: create_model / build_model_with_cfg keywords that load files, download, or change the
#: kind of model built: never taken from a config
FORBIDDEN = frozenset({
    "pretrained", "checkpoint_path", "pretrained_cfg", "pretrained_cfg_overlay", "pretrained_strict",
    "cache_dir", "kwargs_filter", "features_only", "feature_cfg", "feature_cls", "out_indices", "output_fmt",
    "scriptable", "exportable", "no_jit", "device", "dtype", "model_name", "use_naflex",
})
#: the largest integer a model argument may be: timm computes some tables from sizes before
#: building modules (a Python list of ``depth`` drop-path rates, for one), so ``depth: 10**9``
#: would hang before Hub's build budget (:func:`hub.modeling.build_budget`) sees a module
MAX_ARGUMENT = 1 << 16
#: file-name endings a size or a layer name never has
_WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors", ".ckpt", ".pkl", ".pickle", ".npz", ".npy", ".h5",
                    ".onnx", ".json", ".yaml", ".yml", ".tar", ".zip", ".gz")


def _looks_like_path(value: str) -> bool:
    text = value.strip()
    return ("/" in text or "\\" in text or text.startswith(("~", ".")) or "://" in text
            or text.lower().endswith(_WEIGHT_SUFFIXES) or (len(text) > 1 and text[1] == ":"))


def _find_huge(value: Any, where: str) -> tuple[str, int] | None:
    """The key path and value of the first integer past :data:`MAX_ARGUMENT` (nested too)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (where, value) if abs(value) > MAX_ARGUMENT else None
    if isinstance(value, (float,)) and abs(value) > MAX_ARGUMENT and float(value).is_integer():
        return where, int(value)
    items = value.items() if isinstance(value, Mapping) else enumerate(value) if isinstance(value, (list, tuple)) \
        else ()
    for key, item in items:
        found = _find_huge(item, f"{where}[{key!r}]")
        if found:
            return found
    return None


def _find_path(value: Any, where: str) -> str | None:
    """The key path of the first string in ``value`` (nested lists/dicts too) that looks like a file path."""
    if isinstance(value, str):
        return where if _looks_like_path(value) else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and _looks_like_path(key):
                return f"{where}[{key!r}]"
            found = _find_path(item, f"{where}[{key!r}]")
            if found:
                return found
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _find_path(item, f"{where}[{index}]")
            if found:
                return found
    return None


@lru_cache(maxsize=64)
def accepted_arguments(name: str) -> tuple[str, frozenset[str] | None]:
    """(class name, the keyword arguments timm's model class for ``name`` takes), or None for the
    set when the class forwards ``**kwargs`` it does not name (then only :data:`FORBIDDEN` and
    path-like values are refused)."""
    import timm
    import torch

    from hub.modeling import uncounted

    with uncounted(), torch.device("meta"):  # a reference, not part of the model being built
        reference = timm.create_model(name, pretrained=False)
    names: set[str] = set()
    for klass in type(reference).__mro__:
        if klass.__module__.startswith("torch."):
            break
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        parameters = list(inspect.signature(init).parameters.values())[1:]
        names.update(p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            return type(reference).__name__, frozenset(names - FORBIDDEN)
    return type(reference).__name__, None


def check_model_args(name: str, model_args: Any, where: str, *, allow: frozenset[str] = frozenset()
                     ) -> dict[str, Any]:
    """``model_args`` of timm model ``name`` as they may be passed to ``timm.create_model``:
    a dict of the class's own keyword arguments (plus ``allow``), no loading keywords, no
    path-like values. ``where`` names the file or config in the errors."""
    if model_args is None:
        return {}
    if not isinstance(model_args, Mapping):
        raise ConfigError(f"{where}: 'model_args' must be an object (dict) of timm keyword arguments, got "
                          f"{type(model_args).__name__} {model_args!r:.60}.")
    args = dict(model_args)
    for key in args:
        if not isinstance(key, str):
            raise ConfigError(f"{where}: model_args key {key!r} is not a string.")
        if key in FORBIDDEN:
            raise ModelLoadError(f"{where}: model_args key {key!r} is refused: it would make timm load or download "
                                 "files, or build another kind of model. A config.json only describes the "
                                 "architecture; remove the key (weights come from the folder's model.safetensors).")
    for key, value in args.items():
        found = _find_path(value, f"model_args[{key!r}]")
        if found:
            raise ModelLoadError(f"{where}: {found} = {value!r:.80} looks like a file path; architecture "
                                 "arguments are sizes, flags and layer names, and Hub never lets a config.json "
                                 "point timm at a file. Remove the key.")
        huge = _find_huge(value, f"model_args[{key!r}]")
        if huge:
            raise ConfigError(f"{where}: {huge[0]} = {huge[1]:,} is past the largest size a timm argument may have "
                              f"({MAX_ARGUMENT:,}); no real model is that deep or wide. Use the config.json saved "
                              "with the weights, or smaller sizes.")
    cls_name, accepted = accepted_arguments(name)
    if accepted is not None:
        unknown = sorted(set(args) - accepted - allow)
        if unknown:
            import difflib

            hints = [f"{k!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(k, accepted, n=1))
                     else repr(k) for k in unknown]
            raise ConfigError(f"{where}: model_args {', '.join(hints)} are not arguments of timm's {cls_name} "
                              f"({name!r}); it takes: {', '.join(sorted(accepted))}.")
    return args
