"""Converters from transformers' BERT checkpoints into Hub's BERT on the shared backbone."""

from __future__ import annotations

from typing import Any

import torch

from hub.errors import ModelLoadError

_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "relu": "relu"}


def bert_config_from_transformers(hf: dict[str, Any]) -> dict[str, Any]:
    act = hf.get("hidden_act", "gelu")
    if act not in _ACTIVATIONS:
        raise ModelLoadError(f"BERT checkpoint uses hidden_act={act!r}; Hub supports "
                             f"{sorted(_ACTIVATIONS)}.")
    if hf.get("position_embedding_type", "absolute") != "absolute":
        raise ModelLoadError("Only absolute position embeddings are supported for BERT, got "
                             f"{hf['position_embedding_type']!r}.")
    return {
        "vocab_size": hf["vocab_size"],
        "max_positions": hf.get("max_position_embeddings", 512),
        "type_vocab_size": hf.get("type_vocab_size", 2),
        "pad_token_id": hf.get("pad_token_id", 0),
        "position": "learned",
        "backbone": {
            "hidden_size": hf["hidden_size"], "num_layers": hf["num_hidden_layers"],
            "num_heads": hf["num_attention_heads"], "intermediate_size": hf["intermediate_size"],
            "activation": _ACTIVATIONS[act], "norm_eps": hf.get("layer_norm_eps", 1e-12),
            "norm_position": "post", "qkv_bias": True,
            "dropout": hf.get("hidden_dropout_prob", 0.1),
            "attention_dropout": hf.get("attention_probs_dropout_prob", 0.1),
        },
    }


def _labels(hf: dict[str, Any]) -> list[str]:
    id2label = hf.get("id2label") or {}
    if id2label:
        return [str(id2label[k]) for k in sorted(id2label, key=lambda k: int(k))]
    return [f"LABEL_{i}" for i in range(int(hf.get("num_labels", 2)))]


def convert_bert(hf: dict[str, Any], state: dict[str, torch.Tensor]
                 ) -> tuple[str, dict[str, Any], dict[str, torch.Tensor]]:
    """transformers BertModel / BertForSequenceClassification -> Hub bert / bert-classifier."""
    config = bert_config_from_transformers(hf)
    prefix = "bert." if any(k.startswith("bert.") for k in state) else ""
    get = _getter(state, prefix)
    out: dict[str, torch.Tensor] = {
        "encoder.embeddings.tokens.weight": get("embeddings.word_embeddings.weight"),
        "encoder.embeddings.positions.weight": get("embeddings.position_embeddings.weight"),
        "encoder.embeddings.token_types.weight": get("embeddings.token_type_embeddings.weight"),
        "encoder.embeddings.norm.weight": get("embeddings.LayerNorm.weight", "embeddings.LayerNorm.gamma"),
        "encoder.embeddings.norm.bias": get("embeddings.LayerNorm.bias", "embeddings.LayerNorm.beta"),
    }
    for i in range(config["backbone"]["num_layers"]):
        src, dst = f"encoder.layer.{i}.", f"encoder.encoder.layers.{i}."
        for kind in ("weight", "bias"):
            out[dst + f"attn.qkv.{kind}"] = torch.cat([
                get(src + f"attention.self.query.{kind}"), get(src + f"attention.self.key.{kind}"),
                get(src + f"attention.self.value.{kind}")])
            out[dst + f"attn.out.{kind}"] = get(src + f"attention.output.dense.{kind}")
            out[dst + f"mlp.fc1.{kind}"] = get(src + f"intermediate.dense.{kind}")
            out[dst + f"mlp.fc2.{kind}"] = get(src + f"output.dense.{kind}")
        for ours, theirs in (("norm1", "attention.output.LayerNorm"), ("norm2", "output.LayerNorm")):
            out[dst + f"{ours}.weight"] = get(src + f"{theirs}.weight", src + f"{theirs}.gamma")
            out[dst + f"{ours}.bias"] = get(src + f"{theirs}.bias", src + f"{theirs}.beta")

    has_head = "classifier.weight" in state
    if not has_head:  # a bare encoder (BertModel): Hub's "bert" architecture
        return "bert", config, {k[len("encoder."):]: v for k, v in out.items()}
    config.update(labels=_labels(hf), pooling="cls",
                  classifier_dropout=hf.get("classifier_dropout") or config["backbone"]["dropout"])
    pooler = prefix + "pooler.dense.weight" in state
    config["pooler"] = pooler
    if pooler:
        out["head.pooler.weight"] = get("pooler.dense.weight")
        out["head.pooler.bias"] = get("pooler.dense.bias")
    out["head.classifier.weight"] = state["classifier.weight"]
    out["head.classifier.bias"] = state["classifier.bias"]
    return "bert-classifier", config, out


def _getter(state: dict[str, torch.Tensor], prefix: str):
    def get(*names: str) -> torch.Tensor:
        for name in names:
            if prefix + name in state:
                return state[prefix + name]
        raise ModelLoadError(f"BERT checkpoint is missing weight {prefix + names[0]!r}; "
                             "it is not a complete BERT model.")
    return get
