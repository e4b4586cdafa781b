"""Converters from transformers' BERT, RoBERTa and DistilBERT checkpoints into Hub's
BERT-family models on the shared backbone.

Each family differs only in weight names and a few options (RoBERTa numbers positions
past the padding index; DistilBERT has no segment embeddings and a ReLU pre-classifier),
so one table of names per family drives a single conversion routine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from hub.errors import ModelLoadError
from hub.modeling import check_layer_count

_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "relu": "relu"}


@dataclass(frozen=True)
class Family:
    """Where a family keeps each weight, relative to its base-model prefix."""

    prefix: str
    embeddings: dict[str, str]
    layer: str  # format string with {i}
    attention: tuple[str, str, str, str]  # q, k, v, out
    norms: tuple[str, str]  # after attention, after feed-forward
    mlp: tuple[str, str]


BERT = Family(
    prefix="bert.",
    embeddings={"tokens": "embeddings.word_embeddings", "positions": "embeddings.position_embeddings",
                "token_types": "embeddings.token_type_embeddings", "norm": "embeddings.LayerNorm"},
    layer="encoder.layer.{i}.",
    attention=("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"),
    norms=("attention.output.LayerNorm", "output.LayerNorm"),
    mlp=("intermediate.dense", "output.dense"),
)
ROBERTA = Family(**{**BERT.__dict__, "prefix": "roberta."})
DISTILBERT = Family(
    prefix="distilbert.",
    embeddings={"tokens": "embeddings.word_embeddings", "positions": "embeddings.position_embeddings",
                "norm": "embeddings.LayerNorm"},
    layer="transformer.layer.{i}.",
    attention=("attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin"),
    norms=("sa_layer_norm", "output_layer_norm"),
    mlp=("ffn.lin1", "ffn.lin2"),
)


def _activation(name: str) -> str:
    if name not in _ACTIVATIONS:
        raise ModelLoadError(f"checkpoint uses activation {name!r}; Hub supports {sorted(_ACTIVATIONS)}.")
    return _ACTIVATIONS[name]


def _labels(hf: dict[str, Any], num: int) -> list[str]:
    id2label = hf.get("id2label") or {}
    if len(id2label) == num:
        return [str(id2label[k]) for k in sorted(id2label, key=lambda k: int(k))]
    return [f"LABEL_{i}" for i in range(num)]


def hub_config(model_type: str, hf: dict[str, Any]) -> dict[str, Any]:
    """transformers config.json -> the Hub BERT-family config (see hub_text.models.bert)."""
    if model_type == "distilbert":
        return {
            "vocab_size": hf["vocab_size"], "max_positions": hf.get("max_position_embeddings", 512),
            "type_vocab_size": 0, "pad_token_id": hf.get("pad_token_id", 0), "position": "learned",
            "backbone": {
                "hidden_size": hf["dim"], "num_layers": hf["n_layers"], "num_heads": hf["n_heads"],
                "intermediate_size": hf["hidden_dim"], "activation": _activation(hf.get("activation", "gelu")),
                "norm_eps": 1e-12, "norm_position": "post", "dropout": hf.get("dropout", 0.1),
                "attention_dropout": hf.get("attention_dropout", 0.1),
            },
            "pooler_activation": "relu", "classifier_dropout": hf.get("seq_classif_dropout", 0.2),
        }
    if hf.get("position_embedding_type", "absolute") != "absolute":
        raise ModelLoadError("Only absolute position embeddings are supported, got "
                             f"{hf['position_embedding_type']!r}.")
    return {
        "vocab_size": hf["vocab_size"], "max_positions": hf.get("max_position_embeddings", 512),
        "type_vocab_size": hf.get("type_vocab_size", 2), "pad_token_id": hf.get("pad_token_id", 0),
        "position": "learned", "padding_aware_positions": model_type == "roberta",
        "backbone": {
            "hidden_size": hf["hidden_size"], "num_layers": hf["num_hidden_layers"],
            "num_heads": hf["num_attention_heads"], "intermediate_size": hf["intermediate_size"],
            "activation": _activation(hf.get("hidden_act", "gelu")), "norm_eps": hf.get("layer_norm_eps", 1e-12),
            "norm_position": "post", "dropout": hf.get("hidden_dropout_prob", 0.1),
            "attention_dropout": hf.get("attention_probs_dropout_prob", 0.1),
        },
        "classifier_dropout": hf.get("classifier_dropout") or hf.get("hidden_dropout_prob", 0.1),
    }


def convert_encoder(family: Family, config: dict[str, Any], state: dict[str, torch.Tensor],
                    prefix: str) -> dict[str, torch.Tensor]:
    """Base-model weights -> Hub ``BertEncoder`` names (q, k, v fused into one matrix)."""
    get = _getter(state)
    out = {}
    for ours, theirs in family.embeddings.items():
        if ours == "norm":
            out["embeddings.norm.weight"] = get(prefix + theirs + ".weight", prefix + theirs + ".gamma")
            out["embeddings.norm.bias"] = get(prefix + theirs + ".bias", prefix + theirs + ".beta")
        else:
            out[f"embeddings.{ours}.weight"] = get(prefix + theirs + ".weight")
    q, k, v, o = family.attention
    for i in range(config["backbone"]["num_layers"]):
        src, dst = prefix + family.layer.format(i=i), f"encoder.layers.{i}."
        for kind in ("weight", "bias"):
            out[dst + f"attn.qkv.{kind}"] = torch.cat([get(src + f"{q}.{kind}"), get(src + f"{k}.{kind}"),
                                                       get(src + f"{v}.{kind}")])
            out[dst + f"attn.out.{kind}"] = get(src + f"{o}.{kind}")
            out[dst + f"mlp.fc1.{kind}"] = get(src + f"{family.mlp[0]}.{kind}")
            out[dst + f"mlp.fc2.{kind}"] = get(src + f"{family.mlp[1]}.{kind}")
        for ours, theirs in zip(("norm1", "norm2"), family.norms):
            out[dst + f"{ours}.weight"] = get(src + f"{theirs}.weight", src + f"{theirs}.gamma")
            out[dst + f"{ours}.bias"] = get(src + f"{theirs}.bias", src + f"{theirs}.beta")
    return out


# (head kind, family) -> {hub name: transformers name(s)}
_HEADS: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {
    ("classifier", "bert"): {"pooler.weight": ("bert.pooler.dense.weight", "pooler.dense.weight"),
                             "pooler.bias": ("bert.pooler.dense.bias", "pooler.dense.bias"),
                             "classifier.weight": ("classifier.weight",), "classifier.bias": ("classifier.bias",)},
    ("classifier", "roberta"): {"pooler.weight": ("classifier.dense.weight",),
                                "pooler.bias": ("classifier.dense.bias",),
                                "classifier.weight": ("classifier.out_proj.weight",),
                                "classifier.bias": ("classifier.out_proj.bias",)},
    ("classifier", "distilbert"): {"pooler.weight": ("pre_classifier.weight",), "pooler.bias": ("pre_classifier.bias",),
                                   "classifier.weight": ("classifier.weight",),
                                   "classifier.bias": ("classifier.bias",)},
    ("mlm", "bert"): {"dense.weight": ("cls.predictions.transform.dense.weight",),
                      "dense.bias": ("cls.predictions.transform.dense.bias",),
                      "norm.weight": ("cls.predictions.transform.LayerNorm.weight",
                                      "cls.predictions.transform.LayerNorm.gamma"),
                      "norm.bias": ("cls.predictions.transform.LayerNorm.bias",
                                    "cls.predictions.transform.LayerNorm.beta"),
                      "bias": ("cls.predictions.bias", "cls.predictions.decoder.bias")},
    ("mlm", "roberta"): {"dense.weight": ("lm_head.dense.weight",), "dense.bias": ("lm_head.dense.bias",),
                         "norm.weight": ("lm_head.layer_norm.weight",), "norm.bias": ("lm_head.layer_norm.bias",),
                         "bias": ("lm_head.bias", "lm_head.decoder.bias")},
    ("mlm", "distilbert"): {"dense.weight": ("vocab_transform.weight",), "dense.bias": ("vocab_transform.bias",),
                            "norm.weight": ("vocab_layer_norm.weight",), "norm.bias": ("vocab_layer_norm.bias",),
                            "bias": ("vocab_projector.bias",)},
}
_HEADS[("tagger", "bert")] = _HEADS[("tagger", "roberta")] = _HEADS[("tagger", "distilbert")] = {
    "classifier.weight": ("classifier.weight",), "classifier.bias": ("classifier.bias",)}
_ARCHITECTURES = {"classifier": "bert-classifier", "mlm": "bert-mlm", "tagger": "bert-token-classifier",
                  "encoder": "bert"}
_FAMILIES = {"bert": BERT, "roberta": ROBERTA, "distilbert": DISTILBERT}


def head_kind(hf: dict[str, Any], state: dict[str, torch.Tensor]) -> str:
    """Which head the checkpoint carries, from config.architectures or else its weights."""
    for name in hf.get("architectures") or []:
        for suffix, kind in (("ForSequenceClassification", "classifier"), ("ForMaskedLM", "mlm"),
                             ("ForPreTraining", "mlm"), ("ForTokenClassification", "tagger"),
                             ("Model", "encoder")):
            if name.endswith(suffix):
                return kind
    if any(k.startswith(("cls.predictions", "lm_head", "vocab_projector")) for k in state):
        return "mlm"
    if "classifier.weight" in state or "classifier.out_proj.weight" in state:
        return "classifier"
    return "encoder"


def convert(hf: dict[str, Any], state: dict[str, torch.Tensor]
            ) -> tuple[str, dict[str, Any], dict[str, torch.Tensor]]:
    """transformers BERT/RoBERTa/DistilBERT (base, sequence/token classification, masked LM)."""
    model_type = hf.get("model_type")
    if model_type not in _FAMILIES:
        raise ModelLoadError(f"model_type {model_type!r} is not a BERT-family model; "
                             f"supported: {', '.join(_FAMILIES)}.")
    family = _FAMILIES[model_type]
    config = hub_config(model_type, hf)
    kind = head_kind(hf, state)
    prefix = family.prefix if any(k.startswith(family.prefix) for k in state) else ""
    check_layer_count(state, prefix + family.layer.split("{i}")[0], config["backbone"]["num_layers"],
                      "n_layers" if model_type == "distilbert" else "num_hidden_layers")
    encoder = convert_encoder(family, config, state, prefix)
    if kind == "encoder":
        return "bert", config, encoder
    out = {f"encoder.{k}": v for k, v in encoder.items()}
    names = _HEADS[(kind, model_type)]
    if kind == "classifier" and model_type == "bert" and not any(n in state for n in names["pooler.weight"]):
        names = {k: v for k, v in names.items() if not k.startswith("pooler")}
        config["pooler"] = False
    get = _getter(state)
    out.update({f"head.{ours}": get(*theirs) for ours, theirs in names.items()})
    if kind in ("classifier", "tagger"):
        config["labels"] = _labels(hf, out["head.classifier.weight"].shape[0])
    if kind == "classifier":
        config.setdefault("pooling", "cls")
        config.setdefault("pooler", True)
    if kind == "mlm":
        config["mlm_activation"] = config["backbone"]["activation"]
        if model_type == "roberta":
            config["mlm_activation"] = "gelu"  # RoBERTa's lm_head always uses exact GELU
    return _ARCHITECTURES[kind], config, out


def _getter(state: dict[str, torch.Tensor]):
    def get(*names: str) -> torch.Tensor:
        for name in names:
            if name in state:
                return state[name]
        raise ModelLoadError(f"checkpoint is missing weight {names[0]!r}; it is not a complete model "
                             "of its declared type.")
    return get
