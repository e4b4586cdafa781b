"""GPT-style causal language models on the shared backbone (GPT-2 and LLaMA-style
checkpoints converted from transformers), with a KV cache for generation.

Hub config::

    {"vocab_size": 50257, "max_positions": 1024, "position": "learned",
     "backbone": {TransformerConfig with norm_position="pre", causal=true},
     "tie_word_embeddings": true, "bos_token_id": 50256, "eos_token_id": 50256}
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hub.backbone import KVCache, TokenEmbedding, Transformer, TransformerConfig, init_weights
from hub.backbone.config import ConfigReader
from hub.errors import ModelLoadError
from hub.modeling import check_layer_count


def check_causal_lm_config(config: Any) -> TransformerConfig:
    """Validate a ``causal-lm`` config (one ConfigError naming the key); returns its backbone."""
    read = ConfigReader(config, "causal-lm config")
    vocab = read.int("vocab_size")
    read.int("max_positions", 1024)
    read.choice("position", ("learned", "sinusoidal", "none"), "learned")
    read.bool("tie_word_embeddings", True)
    for key in ("bos_token_id", "eos_token_id"):
        read.int(key, None, minimum=0, maximum=max(vocab - 1, 0), optional=True)
    return TransformerConfig.from_dict({**read.mapping("backbone"), "causal": True})


class CausalLM(nn.Module):
    """Token (+ learned position) embeddings -> causal pre-norm Transformer -> LM head."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = config
        backbone = check_causal_lm_config(config)
        self.embeddings = TokenEmbedding(config["vocab_size"], backbone.hidden_size,
                                         max_positions=config.get("max_positions", 1024),
                                         position=config.get("position", "learned"), type_vocab_size=0,
                                         norm=False, dropout=backbone.dropout)
        self.decoder = Transformer(backbone)
        self.tied = bool(config.get("tie_word_embeddings", True))
        self.lm_head = None if self.tied else nn.Linear(backbone.hidden_size, config["vocab_size"], bias=False)

    @property
    def max_positions(self) -> int:
        return self.embeddings.max_positions

    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs per token (6N + 12·L·C·T; N without position tables) for MFU."""
        from hub.train.flops import transformer_flops_per_token

        n = sum(p.numel() for p in self.parameters())
        positions = getattr(self.embeddings, "positions", None)
        if isinstance(positions, nn.Embedding):
            n -= positions.weight.numel()
        backbone = self.decoder.config
        return transformer_flops_per_token(n, backbone.num_layers, backbone.hidden_size, seq_len)

    def new_cache(self, batch: int, max_length: int) -> KVCache:
        backbone = self.decoder.config
        weight = self.embeddings.tokens.weight
        return KVCache(backbone.num_layers, batch, backbone.num_heads, max_length, backbone.head_dim,
                       device=weight.device, dtype=weight.dtype)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
                cache: KVCache | None = None, last_only: bool = False) -> dict[str, torch.Tensor]:
        """``attention_mask`` (B, past + T) covers cached and new tokens (left padding allowed).

        ``labels`` (B, T): next-token targets are ``labels`` shifted by one; -100 is ignored.
        ``last_only`` computes logits for the final position only (generation).
        """
        if position_ids is None and attention_mask is not None:
            # left padding: number real tokens from 0 (what transformers' generate does)
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -input_ids.shape[1]:]
        elif position_ids is None and cache is not None and cache.length:
            position_ids = torch.arange(cache.length, cache.length + input_ids.shape[1],
                                        device=input_ids.device)[None].expand(input_ids.shape[0], -1)
        x = self.embeddings(input_ids, position_ids=position_ids)  # (B, T, C)
        x = self.decoder(x, attention_mask, cache=cache, position_ids=position_ids)
        if last_only:
            x = x[:, -1:]
        weight = self.embeddings.tokens.weight if self.tied else self.lm_head.weight
        logits = F.linear(x, weight)  # (B, T, V)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = F.cross_entropy(logits[:, :-1].float().flatten(0, 1), labels[:, 1:].flatten(),
                                          ignore_index=-100)
        return out


def build_causal_lm(config: dict[str, Any]) -> CausalLM:
    model = CausalLM(config)
    if not any(p.is_meta for p in model.parameters()):
        init_weights(model)
    return model


_GPT2_ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu", "relu": "relu"}


def convert_gpt2(hf: dict[str, Any], state: dict[str, torch.Tensor]
                 ) -> tuple[str, dict[str, Any], dict[str, torch.Tensor]]:
    """transformers GPT2Model / GPT2LMHeadModel -> Hub ``causal-lm``."""
    for flag in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"):
        if hf.get(flag):
            raise ModelLoadError(f"GPT-2 checkpoints with {flag}=true are not supported.")
    if hf.get("scale_attn_weights", True) is False:
        raise ModelLoadError("GPT-2 checkpoints with scale_attn_weights=false are not supported.")
    act = hf.get("activation_function", "gelu_new")
    if act not in _GPT2_ACTIVATIONS:
        raise ModelLoadError(f"GPT-2 activation {act!r} is not supported; known: {sorted(_GPT2_ACTIVATIONS)}.")
    hidden = hf["n_embd"]
    config = {
        "vocab_size": hf["vocab_size"], "max_positions": hf.get("n_positions", 1024), "position": "learned",
        "tie_word_embeddings": hf.get("tie_word_embeddings", True),
        "bos_token_id": hf.get("bos_token_id"), "eos_token_id": hf.get("eos_token_id"),
        "backbone": {
            "hidden_size": hidden, "num_layers": hf["n_layer"], "num_heads": hf["n_head"],
            "intermediate_size": hf.get("n_inner") or 4 * hidden, "activation": _GPT2_ACTIVATIONS[act],
            "norm_eps": hf.get("layer_norm_epsilon", 1e-5), "norm_position": "pre", "causal": True,
            "dropout": hf.get("resid_pdrop", 0.1), "attention_dropout": hf.get("attn_pdrop", 0.1),
        },
    }
    prefix = "transformer." if any(k.startswith("transformer.") for k in state) else ""
    check_layer_count(state, prefix + "h.", hf["n_layer"], "n_layer")

    def get(name: str) -> torch.Tensor:
        if prefix + name not in state:
            raise ModelLoadError(f"GPT-2 checkpoint is missing weight {prefix + name!r}.")
        return state[prefix + name]

    out = {"embeddings.tokens.weight": get("wte.weight"), "embeddings.positions.weight": get("wpe.weight"),
           "decoder.final_norm.weight": get("ln_f.weight"), "decoder.final_norm.bias": get("ln_f.bias")}
    for i in range(hf["n_layer"]):
        src, dst = f"h.{i}.", f"decoder.layers.{i}."
        # GPT-2's Conv1D stores (in, out); nn.Linear wants (out, in)
        for theirs, ours in (("attn.c_attn", "attn.qkv"), ("attn.c_proj", "attn.out"),
                             ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")):
            out[dst + ours + ".weight"] = get(src + theirs + ".weight").t().contiguous()
            out[dst + ours + ".bias"] = get(src + theirs + ".bias")
        for theirs, ours in (("ln_1", "norm1"), ("ln_2", "norm2")):
            out[dst + ours + ".weight"] = get(src + theirs + ".weight")
            out[dst + ours + ".bias"] = get(src + theirs + ".bias")
    if not config["tie_word_embeddings"]:
        if "lm_head.weight" not in state:
            raise ModelLoadError("GPT-2 checkpoint with tie_word_embeddings=false is missing weight 'lm_head.weight'.")
        out["lm_head.weight"] = state["lm_head.weight"]
    return "causal-lm", config, out


def convert_llama(hf: dict[str, Any], state: dict[str, torch.Tensor]
                  ) -> tuple[str, dict[str, Any], dict[str, torch.Tensor]]:
    """transformers LlamaForCausalLM -> Hub ``causal-lm`` (RMSNorm, SwiGLU, rotary, no biases)."""
    heads = hf["num_attention_heads"]
    if isinstance(heads, bool) or not isinstance(heads, int) or heads < 1:
        raise ModelLoadError(f"config.json 'num_attention_heads' must be a positive integer, got {heads!r:.40}.")
    if hf.get("num_key_value_heads", heads) != heads:
        raise ModelLoadError("grouped-query attention (num_key_value_heads != num_attention_heads) is "
                             "not supported yet.")
    if hf.get("rope_scaling"):
        raise ModelLoadError(f"rope_scaling={hf['rope_scaling']!r} is not supported yet.")
    if hf.get("attention_bias") or hf.get("mlp_bias"):
        raise ModelLoadError("LLaMA checkpoints with attention or MLP biases are not supported.")
    if hf.get("hidden_act", "silu") != "silu":
        raise ModelLoadError(f"LLaMA activation {hf['hidden_act']!r} is not supported (silu only).")
    hidden = hf["hidden_size"]
    head_dim = hf.get("head_dim") or hidden // heads
    if head_dim * heads != hidden:
        raise ModelLoadError("LLaMA checkpoints whose head_dim * heads != hidden_size are not supported.")
    rope = hf.get("rope_parameters") or {}
    config = {
        "vocab_size": hf["vocab_size"], "max_positions": hf.get("max_position_embeddings", 2048),
        "position": "none", "tie_word_embeddings": bool(hf.get("tie_word_embeddings", False)),
        "bos_token_id": hf.get("bos_token_id"), "eos_token_id": hf.get("eos_token_id"),
        "backbone": {
            "hidden_size": hidden, "num_layers": hf["num_hidden_layers"], "num_heads": heads,
            "intermediate_size": hf["intermediate_size"], "activation": "swiglu", "norm": "rmsnorm",
            "norm_eps": hf.get("rms_norm_eps", 1e-6), "norm_position": "pre", "causal": True,
            "qkv_bias": False, "out_bias": False, "mlp_bias": False, "dropout": 0.0,
            "attention_dropout": hf.get("attention_dropout", 0.0), "rotary_dim": head_dim,
            "rotary_base": float(rope.get("rope_theta", hf.get("rope_theta", 10000.0))),
        },
    }

    def get(name: str) -> torch.Tensor:
        if name not in state:
            raise ModelLoadError(f"LLaMA checkpoint is missing weight {name!r}.")
        return state[name]

    check_layer_count(state, "model.layers.", hf["num_hidden_layers"], "num_hidden_layers")
    out = {"embeddings.tokens.weight": get("model.embed_tokens.weight"),
           "decoder.final_norm.weight": get("model.norm.weight")}
    for i in range(hf["num_hidden_layers"]):
        src, dst = f"model.layers.{i}.", f"decoder.layers.{i}."
        out[dst + "attn.qkv.weight"] = torch.cat([get(src + f"self_attn.{p}_proj.weight") for p in "qkv"])
        out[dst + "attn.out.weight"] = get(src + "self_attn.o_proj.weight")
        out[dst + "mlp.fc1.weight"] = get(src + "mlp.up_proj.weight")
        out[dst + "mlp.gate.weight"] = get(src + "mlp.gate_proj.weight")
        out[dst + "mlp.fc2.weight"] = get(src + "mlp.down_proj.weight")
        out[dst + "norm1.weight"] = get(src + "input_layernorm.weight")
        out[dst + "norm2.weight"] = get(src + "post_attention_layernorm.weight")
    if not config["tie_word_embeddings"]:
        out["lm_head.weight"] = get("lm_head.weight")
    return "causal-lm", config, out
