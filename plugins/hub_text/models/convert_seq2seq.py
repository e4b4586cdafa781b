"""Converters from transformers' encoder-decoder checkpoints into Hub's ``seq2seq-lm``.

* :func:`convert_bart`: ``bart`` (post-norm, learned positions offset by 2, embedding
  LayerNorm, ``final_logits_bias``), ``mbart`` (the same, pre-norm with final norms) and
  ``marian`` (post-norm, split sinusoidal positions, no embedding norm; with separate source
  and target vocabularies, two token tables and ``decoder_vocab_size``).
* :func:`convert_t5`: ``t5`` (v1.0: ReLU; v1.1 / Flan: gated GELU, untied head), pre-norm
  RMSNorm, the relative-position bias of each stack's first layer, no attention scaling,
  decoder outputs scaled by C^-0.5 before a tied head.

Generation defaults come from ``generation_config.json`` when the folder has one (else from
config.json), as transformers' ``generate`` reads them.
"""

from __future__ import annotations

from typing import Any

import torch

from hub.errors import ModelLoadError
from hub.modeling import check_layer_count
from hub_text.models.seq2seq import embed_scale

_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "relu": "relu",
                "swish": "silu", "silu": "silu"}


def _getter(state: dict[str, torch.Tensor], family: str):
    def get(*names: str) -> torch.Tensor:
        for name in names:
            if name in state:
                return state[name]
        raise ModelLoadError(f"{family} checkpoint is missing weight {names[0]!r}; it is not a complete model.")
    return get


def _generation(hf: dict[str, Any], checkpoint: Any) -> dict[str, Any]:
    """The checkpoint's generation defaults (generation_config.json over config.json), in
    Hub's terms: max_length / min_length count the decoder start token, max_new_tokens /
    min_new_tokens do not."""
    source = dict(hf)
    if checkpoint is not None and checkpoint.has("generation_config.json"):
        source.update(checkpoint.read_json("generation_config.json") or {})
    out: dict[str, Any] = {}
    for key in ("num_beams", "length_penalty", "no_repeat_ngram_size", "early_stopping", "forced_bos_token_id",
                "forced_eos_token_id", "num_return_sequences", "do_sample", "temperature", "top_k", "top_p"):
        if source.get(key) is not None:
            out[key] = source[key]
    if out.get("do_sample") and "top_k" not in out:  # the checkpoint samples as transformers' default top_k does
        out["top_k"] = 50
    if source.get("max_new_tokens"):
        out["max_new_tokens"] = int(source["max_new_tokens"])
    elif source.get("max_length"):
        out["max_new_tokens"] = max(int(source["max_length"]) - 1, 1)
    if source.get("min_new_tokens"):
        out["min_new_tokens"] = int(source["min_new_tokens"])
    elif source.get("min_length"):
        out["min_new_tokens"] = max(int(source["min_length"]) - 1, 0)
    if out.get("early_stopping") not in (None, True, False):  # "never": a heuristic Hub does not offer
        out["early_stopping"] = False
    return out


def _tokens(hf: dict[str, Any], generation: dict[str, Any], checkpoint: Any) -> dict[str, Any]:
    source = dict(hf)
    if checkpoint is not None and checkpoint.has("generation_config.json"):
        source.update({k: v for k, v in (checkpoint.read_json("generation_config.json") or {}).items()
                       if k.endswith("token_id") and v is not None})
    out = {key: source.get(key) for key in ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id")}
    for key, value in out.items():
        if isinstance(value, list):  # several end tokens: Hub keeps the first
            out[key] = value[0] if value else None
    if out["decoder_start_token_id"] is None:  # transformers falls back to bos (Hub then to pad)
        out["decoder_start_token_id"] = out["bos_token_id"] if out["bos_token_id"] is not None else out["pad_token_id"]
    return out


# -- BART, mBART, Marian ---------------------------------------------------------------
_BART_TYPES = ("bart", "mbart", "marian")


def convert_bart(hf: dict[str, Any], state: dict[str, torch.Tensor], *, checkpoint: Any = None
                 ) -> tuple[str, dict[str, Any], dict[str, torch.Tensor]]:
    """transformers BartForConditionalGeneration / MBartForConditionalGeneration / MarianMTModel."""
    model_type = hf.get("model_type")
    if model_type not in _BART_TYPES:
        raise ModelLoadError(f"model_type {model_type!r} is not BART, mBART or Marian.")
    family = {"bart": "BART", "mbart": "mBART", "marian": "Marian"}[model_type]
    separate = model_type == "marian" and hf.get("share_encoder_decoder_embeddings") is False
    act = hf.get("activation_function", "gelu")
    if act not in _ACTIVATIONS:
        raise ModelLoadError(f"{family} activation {act!r} is not supported; known: {sorted(_ACTIVATIONS)}.")
    hidden = hf["d_model"]
    pre = model_type == "mbart"

    def side(prefix: str) -> dict[str, Any]:
        return {"hidden_size": hidden, "num_layers": hf[f"{prefix}_layers"],
                "num_heads": hf[f"{prefix}_attention_heads"], "intermediate_size": hf[f"{prefix}_ffn_dim"],
                "activation": _ACTIVATIONS[act], "norm_eps": 1e-5, "norm_position": "pre" if pre else "post",
                "dropout": hf.get("dropout", 0.1), "attention_dropout": hf.get("attention_dropout", 0.0)}

    generation = _generation(hf, checkpoint)
    config = {
        "vocab_size": hf["vocab_size"], "max_positions": hf.get("max_position_embeddings", 1024),
        "position": "sinusoidal" if model_type == "marian" else "learned",
        "position_offset": 0 if model_type == "marian" else 2,
        "embed_scale": embed_scale(hidden, bool(hf.get("scale_embedding", False))),
        "embedding_norm": model_type != "marian", "logits_bias": True, "tie_word_embeddings": True,
        "output_scale": 1.0, **_tokens(hf, generation, checkpoint), "generation": generation,
        "task_specific_params": hf.get("task_specific_params") or {},
        "encoder": side("encoder"), "decoder": side("decoder"),
    }
    if separate:  # Marian with separate source / target vocabularies: two tables, the head tied to the target's
        config["decoder_vocab_size"] = int(hf.get("decoder_vocab_size") or hf["vocab_size"])
    prefix = "model." if any(k.startswith("model.") for k in state) else ""
    get = _getter(state, family)
    check_layer_count(state, prefix + "encoder.layers.", hf["encoder_layers"], "encoder_layers")
    check_layer_count(state, prefix + "decoder.layers.", hf["decoder_layers"], "decoder_layers")
    if separate:
        out = {"shared.weight": get(prefix + "encoder.embed_tokens.weight"),
               "decoder_tokens.weight": get(prefix + "decoder.embed_tokens.weight", "lm_head.weight")}
        _check_tied_head(state, out["decoder_tokens.weight"])
    else:
        out = {"shared.weight": get(prefix + "shared.weight", prefix + "encoder.embed_tokens.weight",
                                    prefix + "decoder.embed_tokens.weight", "lm_head.weight")}
    vocab = config.get("decoder_vocab_size", hf["vocab_size"])
    out["logits_bias"] = state["final_logits_bias"].reshape(-1) if "final_logits_bias" in state else torch.zeros(vocab)
    for side_name in ("encoder", "decoder"):
        src = f"{prefix}{side_name}."
        if model_type != "marian":
            out[f"{side_name}_embed.positions.weight"] = get(src + "embed_positions.weight")
            for kind in ("weight", "bias"):
                out[f"{side_name}_embed.norm.{kind}"] = get(src + f"layernorm_embedding.{kind}")
        if pre:
            for kind in ("weight", "bias"):
                out[f"{side_name}.final_norm.{kind}"] = get(src + f"layer_norm.{kind}")
        for i in range(hf[f"{side_name}_layers"]):
            layer, dst = f"{src}layers.{i}.", f"{side_name}.layers.{i}."
            for kind in ("weight", "bias"):
                out[dst + f"attn.qkv.{kind}"] = torch.cat([get(layer + f"self_attn.{p}_proj.{kind}") for p in "qkv"])
                out[dst + f"attn.out.{kind}"] = get(layer + f"self_attn.out_proj.{kind}")
                out[dst + f"norm1.{kind}"] = get(layer + f"self_attn_layer_norm.{kind}")
                out[dst + f"mlp.fc1.{kind}"] = get(layer + f"fc1.{kind}")
                out[dst + f"mlp.fc2.{kind}"] = get(layer + f"fc2.{kind}")
                out[dst + f"norm2.{kind}"] = get(layer + f"final_layer_norm.{kind}")
                if side_name == "decoder":
                    out[dst + f"cross.q.{kind}"] = get(layer + f"encoder_attn.q_proj.{kind}")
                    out[dst + f"cross.kv.{kind}"] = torch.cat([get(layer + f"encoder_attn.{p}_proj.{kind}")
                                                               for p in "kv"])
                    out[dst + f"cross.out.{kind}"] = get(layer + f"encoder_attn.out_proj.{kind}")
                    out[dst + f"norm_cross.{kind}"] = get(layer + f"encoder_attn_layer_norm.{kind}")
    return "seq2seq-lm", config, out


def _check_tied_head(state: dict[str, torch.Tensor], table: torch.Tensor) -> None:
    """Marian's head is tied to the target table; a checkpoint whose head differs is refused
    rather than run with the wrong weights."""
    head = state.get("lm_head.weight")
    if head is not None and (head.shape != table.shape or not torch.equal(head, table)):
        raise ModelLoadError("Marian checkpoint's lm_head.weight differs from its decoder embeddings; untied "
                             "heads with separate vocabularies are not supported.")


# -- T5 ------------------------------------------------------------------------------------
_T5_FEED_FORWARD = {"relu": ("relu", False), "gated-gelu": ("geglu", True), "gelu": ("gelu", False),
                    "gated-silu": ("swiglu", True)}


def convert_t5(hf: dict[str, Any], state: dict[str, torch.Tensor], *, checkpoint: Any = None
               ) -> tuple[str, dict[str, Any], dict[str, torch.Tensor]]:
    """transformers T5ForConditionalGeneration (T5 v1.0, v1.1, Flan-T5)."""
    proj = hf.get("feed_forward_proj", "relu")
    if proj not in _T5_FEED_FORWARD:
        raise ModelLoadError(f"T5 feed_forward_proj {proj!r} is not supported; known: {sorted(_T5_FEED_FORWARD)}.")
    activation, gated = _T5_FEED_FORWARD[proj]
    hidden, layers = hf["d_model"], hf["num_layers"]
    decoder_layers = hf.get("num_decoder_layers") or layers
    heads, head_dim = hf["num_heads"], hf["d_kv"]

    def side(num_layers: int) -> dict[str, Any]:
        return {"hidden_size": hidden, "num_layers": num_layers, "num_heads": heads, "intermediate_size": hf["d_ff"],
                "attention_head_dim": head_dim, "activation": activation, "norm": "rmsnorm",
                "norm_eps": hf.get("layer_norm_epsilon", 1e-6), "norm_position": "pre", "qkv_bias": False,
                "out_bias": False, "mlp_bias": False, "dropout": hf.get("dropout_rate", 0.1),
                "attention_dropout": hf.get("dropout_rate", 0.1), "attention_scale": 1.0,
                "relative_attention_buckets": hf.get("relative_attention_num_buckets", 32),
                "relative_attention_max_distance": hf.get("relative_attention_max_distance", 128)}

    get = _getter(state, "T5")
    check_layer_count(state, "encoder.block.", layers, "num_layers")
    check_layer_count(state, "decoder.block.", decoder_layers, "num_decoder_layers")
    shared = get("shared.weight", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight")
    # v1.1 / Flan (tie_word_embeddings false in their configs; transformers 5 writes
    # scale_decoder_outputs false): no rescaling of the decoder output, and a head of its own
    # when the weights hold one
    scaled = hf.get("scale_decoder_outputs", hf.get("tie_word_embeddings", True) is not False)
    head = state.get("lm_head.weight")
    tied = head is None or (head.shape == shared.shape and bool(torch.equal(head, shared)))
    generation = _generation(hf, checkpoint)
    config = {
        "vocab_size": hf["vocab_size"], "max_positions": hf.get("n_positions", 512), "position": "none",
        "position_offset": 0, "embed_scale": 1.0, "embedding_norm": False, "logits_bias": False,
        "tie_word_embeddings": tied, "output_scale": hidden ** -0.5 if scaled else 1.0,
        **_tokens(hf, generation, checkpoint), "generation": generation,
        "task_specific_params": hf.get("task_specific_params") or {},
        "encoder": side(layers), "decoder": side(decoder_layers),
    }
    if config["decoder_start_token_id"] is None:
        config["decoder_start_token_id"] = 0
    out = {"shared.weight": shared}
    if not tied:
        out["lm_head.weight"] = head
    for side_name, count in (("encoder", layers), ("decoder", decoder_layers)):
        src = f"{side_name}.block."
        out[f"{side_name}.final_norm.weight"] = get(f"{side_name}.final_layer_norm.weight")
        out[f"{side_name}.relative_bias.embedding.weight"] = get(
            f"{src}0.layer.0.SelfAttention.relative_attention_bias.weight")
        ff = 2 if side_name == "decoder" else 1
        for i in range(count):
            block, dst = f"{src}{i}.layer.", f"{side_name}.layers.{i}."
            out[dst + "attn.qkv.weight"] = torch.cat([get(f"{block}0.SelfAttention.{p}.weight") for p in "qkv"])
            out[dst + "attn.out.weight"] = get(f"{block}0.SelfAttention.o.weight")
            out[dst + "norm1.weight"] = get(f"{block}0.layer_norm.weight")
            if side_name == "decoder":
                out[dst + "cross.q.weight"] = get(f"{block}1.EncDecAttention.q.weight")
                out[dst + "cross.kv.weight"] = torch.cat([get(f"{block}1.EncDecAttention.{p}.weight") for p in "kv"])
                out[dst + "cross.out.weight"] = get(f"{block}1.EncDecAttention.o.weight")
                out[dst + "norm_cross.weight"] = get(f"{block}1.layer_norm.weight")
            dense = f"{block}{ff}.DenseReluDense."
            if gated:
                out[dst + "mlp.gate.weight"] = get(dense + "wi_0.weight")
                out[dst + "mlp.fc1.weight"] = get(dense + "wi_1.weight")
            else:
                out[dst + "mlp.fc1.weight"] = get(dense + "wi.weight")
            out[dst + "mlp.fc2.weight"] = get(dense + "wo.weight")
            out[dst + "norm2.weight"] = get(f"{block}{ff}.layer_norm.weight")
    return "seq2seq-lm", config, out
