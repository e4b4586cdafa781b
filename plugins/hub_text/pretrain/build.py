"""Fresh (randomly initialised) causal-LM and masked-LM models and pipelines: the
configs ``from_scratch`` derives from a tokenizer, and the body every
``from_scratch`` shares."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hub.backbone.config import TransformerConfig
from hub.errors import ConfigError

# -- building fresh models -----------------------------------------------------------------
_BACKBONE_KEYS = tuple(f.name for f in dataclasses.fields(TransformerConfig))
TINY_BACKBONE = {"hidden_size": 256, "num_layers": 4, "num_heads": 4}


def _model_config(config: dict[str, Any] | None, *, model_keys: dict[str, Any], backbone: dict[str, Any],
                  what: str) -> dict[str, Any]:
    """Merge a user's config (model keys, backbone keys at the top level or under
    ``"backbone"``) over the defaults; unknown keys are an error."""
    if config is not None and not isinstance(config, Mapping):
        raise ConfigError(f"config must be a dict, got {type(config).__name__}.")
    config = dict(config or {})
    nested = config.pop("backbone", {}) or {}
    if not isinstance(nested, dict):
        raise ConfigError(f"config['backbone'] must be a dict, got {type(nested).__name__}.")
    out = dict(model_keys)
    layers = dict(backbone)
    for key, value in [*config.items(), *nested.items()]:
        if key in _BACKBONE_KEYS:
            layers[key] = value
        elif key in model_keys:
            out[key] = value
        else:
            raise ConfigError(f"Unknown {what} config key {key!r}; known: "
                              f"{', '.join(sorted({*model_keys, *_BACKBONE_KEYS} - {'causal'}))}.")
    layers.setdefault("intermediate_size", 4 * layers["hidden_size"])
    out["backbone"] = layers
    return out


def resolve_tokenizer(tokenizer: Any, task: str) -> Any:
    """A tokenizer object as given, or loaded from a folder path."""
    if tokenizer is None:
        raise ConfigError(f"{task} from scratch needs tokenizer=: a tokenizer object or a folder holding one; "
                          "hub_text.pretrain.train_tokenizer(texts, ...) trains one.")
    if isinstance(tokenizer, (str, Path)):
        from hub_text.tokenizer import load_tokenizer

        return load_tokenizer(tokenizer)
    if not callable(tokenizer) or not hasattr(tokenizer, "all_special_ids"):
        raise ConfigError(f"tokenizer must be a transformers tokenizer or a folder path, got "
                          f"{type(tokenizer).__name__}.")
    return tokenizer


def _check_token_id(config: dict[str, Any], key: str, value: int | None) -> None:
    given = config.get(key)
    if given is not None and value is not None and given != value:
        raise ConfigError(f"config {key}={given} disagrees with the tokenizer's {value}; leave it out "
                          "(it is taken from the tokenizer).")
    config[key] = value


def causal_lm_config(config: dict[str, Any] | None, tokenizer: Any) -> dict[str, Any]:
    """A ``causal-lm`` config: GPT-2's layout, tiny sizes by default, vocabulary and
    end-of-sequence token from the tokenizer."""
    out = _model_config(
        config, what="causal-lm",
        model_keys={"vocab_size": None, "max_positions": 512, "position": "learned", "tie_word_embeddings": True,
                    "bos_token_id": None, "eos_token_id": None},
        backbone={**TINY_BACKBONE, "activation": "gelu_tanh", "norm_eps": 1e-5, "norm_position": "pre",
                  "dropout": 0.1, "attention_dropout": 0.1})
    out["backbone"]["causal"] = True
    _set_vocab(out, tokenizer)
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    if eos is None:
        raise ConfigError("A causal LM needs a tokenizer with an end-of-sequence token (e.g. <|endoftext|>); "
                          "train one with train_tokenizer(texts, kind='bpe').")
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos
    _check_token_id(out, "eos_token_id", eos)
    _check_token_id(out, "bos_token_id", bos)
    return out


def masked_lm_config(config: dict[str, Any] | None, tokenizer: Any) -> dict[str, Any]:
    """A ``bert-mlm`` config: BERT's layout, tiny sizes by default, vocabulary and padding
    token from the tokenizer."""
    out = _model_config(
        config, what="bert-mlm",
        model_keys={"vocab_size": None, "max_positions": 512, "position": "learned", "type_vocab_size": 2,
                    "pad_token_id": None, "mlm_activation": "gelu"},
        backbone={**TINY_BACKBONE, "activation": "gelu", "norm_eps": 1e-12, "norm_position": "post",
                  "dropout": 0.1, "attention_dropout": 0.1})
    _set_vocab(out, tokenizer)
    if tokenizer.mask_token_id is None:
        raise ConfigError("A masked LM needs a tokenizer with a mask token ([MASK]); train one with "
                          "train_tokenizer(texts, kind='wordpiece').")
    _check_token_id(out, "pad_token_id", tokenizer.pad_token_id)
    return out


def _set_vocab(config: dict[str, Any], tokenizer: Any) -> None:
    size = len(tokenizer)
    if config.get("vocab_size") not in (None, size):
        raise ConfigError(f"config vocab_size={config['vocab_size']} differs from the tokenizer's {size} tokens; "
                          "leave it out (it is taken from the tokenizer).")
    config["vocab_size"] = size


def build_fresh(architecture: str, config: dict[str, Any], *, seed: int | None = None) -> nn.Module:
    """A randomly initialised ``architecture`` (seeded when ``seed`` is given)."""
    from hub.modeling import build_module

    TransformerConfig.from_dict(config["backbone"])  # validate sizes with a clear error first
    if seed is None:
        return build_module(architecture, config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_module(architecture, config)


def new_pipeline(cls: type, make_config: Any, config: dict[str, Any] | None, tokenizer: Any, *,
                 device: torch.device | str | None, dtype: torch.dtype | None, seed: int | None) -> Any:
    """The body of every ``from_scratch``: ``cls`` around a freshly initialised model whose
    config ``make_config(config, tokenizer)`` derives."""
    tokenizer = resolve_tokenizer(tokenizer, cls.task)
    model = build_fresh(cls.architecture, make_config(config, tokenizer), seed=seed)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(device=device, dtype=dtype).eval()
    metadata = {"task": cls.task, "architecture": cls.architecture, "source": "scratch"}
    return cls(model, tokenizer, device=device, dtype=dtype, metadata=metadata)
