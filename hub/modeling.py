"""Model folders: config.json + model.safetensors, in Hub's format or a foreign one.

A Hub model folder holds ``config.json`` (``{"hub_format": 1, "architecture": ...,
"config": {...}}``), ``model.safetensors`` and whatever the preprocessor needs
(tokenizer files, ...). Folders written by other libraries (transformers' BERT, ...)
load through a registered converter chosen by their ``model_type``.

Modules are built on the meta device and the loaded tensors are assigned directly,
so no time is wasted on a random initialisation that would be overwritten.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hub.errors import ModelLoadError
from hub.quantize import FORMAT as INT8_FORMAT, dequantize_state_dict, quantize_state_dict

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
HUB_FORMAT = 1


@dataclass
class LoadedModel:
    module: nn.Module
    architecture: str
    config: dict[str, Any]
    folder: Path
    converted_from: str | None = None  # e.g. "transformers:bert"


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
            state: dict[str, torch.Tensor] = {}
            for shard in shards:
                state.update(load_file(folder / shard))
            return state
    except (SafetensorError, OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"Cannot read the weights in {str(folder)!r}: {exc}. The file is "
                             "corrupt or truncated; download or save the model again.") from None
    legacy = folder / "pytorch_model.bin"
    if legacy.is_file():
        try:  # weights_only: never unpickle arbitrary objects from a downloaded file
            return torch.load(legacy, map_location="cpu", weights_only=True, mmap=True)
        except Exception as exc:
            raise ModelLoadError(f"Cannot read {str(legacy)!r} as plain weights: {exc}. Hub only "
                                 "loads tensors from pickles (weights_only=True); convert the "
                                 "checkpoint to safetensors.") from None
    raise ModelLoadError(f"{str(folder)!r} has no weights: expected {WEIGHTS_NAME} "
                         "(or pytorch_model.bin).")


def build_module(architecture: str, config: dict[str, Any],
                 state_dict: dict[str, torch.Tensor] | None = None) -> nn.Module:
    """Build ``architecture`` from ``config``; with a state dict, build on meta and assign."""
    from hub.registry import get_registry
    from hub.specs import load_object

    builder = load_object(get_registry().architecture(architecture).builder)
    if state_dict is None:
        return builder(config)
    with torch.device("meta"):
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


def timm_model_type(config: dict[str, Any]) -> str | None:
    """The model family of a timm config.json (``timm.models.save_for_hf`` / ``push_to_hf_hub``
    write ``{"architecture": "vit_base_patch16_224", "pretrained_cfg": {...}, ...}`` and no
    ``model_type``): the architecture name up to its first underscore ("vit", "deit", ...)."""
    architecture = config.get("architecture")
    if not isinstance(architecture, str) or not isinstance(config.get("pretrained_cfg"), dict):
        return None
    return architecture.split(".")[0].split("_")[0] or None


def load_model(folder: str | Path, *, device: str | torch.device | None = None,
               dtype: torch.dtype | None = None) -> LoadedModel:
    """Load a Hub or (through a converter) a foreign model folder."""
    from hub.registry import get_registry
    from hub.specs import load_object

    folder = Path(folder)
    config = read_config(folder)
    if "hub_format" in config:
        architecture, arch_config = config.get("architecture"), config.get("config")
        if not isinstance(architecture, str) or not isinstance(arch_config, dict):
            raise ModelLoadError(f"{str(folder / CONFIG_NAME)!r}: a Hub config needs "
                                 "'architecture' (string) and 'config' (object).")
        state = read_state_dict(folder)
        if config.get("weights_format") == INT8_FORMAT:
            state = dequantize_state_dict(state)
        converted_from = None
    elif "model_type" in config or timm_model_type(config):
        model_type = str(config["model_type"]) if "model_type" in config else timm_model_type(config)
        converter = get_registry().converter_for(model_type)
        convert = load_object(converter.convert)
        architecture, arch_config, state = convert(config, read_state_dict(folder))
        converted_from = f"{converter.source}:{model_type}"
    else:
        raise ModelLoadError(f"{str(folder / CONFIG_NAME)!r} is neither a Hub config "
                             "('hub_format'), a transformers config ('model_type') nor a timm "
                             "config ('architecture' + 'pretrained_cfg').")
    module = build_module(architecture, arch_config, state)
    module.to(device=device, dtype=dtype).eval()
    return LoadedModel(module, architecture, arch_config, folder, converted_from)


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
               "weights_format": INT8_FORMAT if quantize else "float", **(extra or {})}
    (folder / CONFIG_NAME).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n",
                                      encoding="utf-8")
