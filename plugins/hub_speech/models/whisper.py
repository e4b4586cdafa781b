"""Whisper (transformers' ``WhisperForConditionalGeneration``) on the shared backbone.

Whisper is an encoder-decoder: log-mel frames (B, n_mels, 2S) -> two convolutions (the
second of stride 2) with GELU -> fixed sinusoidal positions -> a pre-norm encoder stack
with a final LayerNorm; the decoder is a pre-norm stack with cross-attention to the
encoder's output (the backbone's ``cross_attention`` option), learned positions, a final
LayerNorm and a head tied to the token embedding. Its attention has no key bias, which the
fused projections express as a zero bias slice.

This module holds the model and its converter (logits equal transformers' within 1e-4;
``tests/speech/test_whisper.py``). The converter also keeps what decoding needs from the
folder's side files: the feature extractor's settings (``preprocessor_config.json``, or the
``feature_extractor`` entry of ``processor_config.json``) as ``config["feature_extractor"]``
and the generation settings (``generation_config.json``: language and task tokens,
suppressed tokens) as ``config["whisper_generation"]``; ``speech-recognize`` decodes with
them (:mod:`hub_speech.pipelines.whisper_decoding`).

Hub config (architecture ``whisper``)::

    {"vocab_size": 51865, "num_mel_bins": 80, "max_source_positions": 1500,
     "max_target_positions": 448, "embed_scale": 1.0, "pad_token_id": 50257,
     "eos_token_id": 50257, "decoder_start_token_id": 50258,
     "encoder": {TransformerConfig}, "decoder": {TransformerConfig}}
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hub.backbone import KVCache, Transformer, TransformerConfig
from hub.backbone.config import ConfigReader
from hub.checkpoint import Checkpoint
from hub.errors import InvalidInputError, ModelLoadError
from hub.modeling import check_layer_count


def check_whisper_config(config: Any) -> tuple[TransformerConfig, TransformerConfig]:
    """Validate a ``whisper`` config (one ConfigError naming the key)."""
    read = ConfigReader(config, "whisper config")
    vocab = read.int("vocab_size")
    read.int("num_mel_bins")
    read.int("max_source_positions")
    read.int("max_target_positions")
    read.float("embed_scale", 1.0, above=0.0)
    for key in ("pad_token_id", "eos_token_id", "decoder_start_token_id"):
        read.int(key, None, minimum=0, maximum=max(vocab - 1, 0), optional=True)
    encoder = TransformerConfig.from_dict({**read.mapping("encoder"), "causal": False})
    decoder = TransformerConfig.from_dict({**read.mapping("decoder"), "causal": True, "cross_attention": True})
    return encoder, decoder


class WhisperModel(nn.Module):
    """Convolutional front end + encoder, cross-attending decoder, tied head."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = config
        encoder, decoder = check_whisper_config(config)
        width = encoder.hidden_size
        self.conv1 = nn.Conv1d(config["num_mel_bins"], width, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(width, width, kernel_size=3, stride=2, padding=1)
        self.encoder_positions = nn.Embedding(config["max_source_positions"], width)
        self.encoder_positions.requires_grad_(False)  # fixed sinusoids, as transformers keeps them
        self.encoder = Transformer(encoder)
        self.tokens = nn.Embedding(config["vocab_size"], width, padding_idx=config.get("pad_token_id"))
        self.decoder_positions = nn.Embedding(config["max_target_positions"], width)
        self.decoder = Transformer(decoder)
        self.embed_scale = float(config.get("embed_scale", 1.0))
        self.dropout = nn.Dropout(encoder.dropout)

    @property
    def max_positions(self) -> int:
        return self.decoder_positions.num_embeddings

    # what the speech pipelines read of a model (as of Hub's own speech models)
    @property
    def sample_rate(self) -> int:
        return int(self.config.get("feature_extractor", {}).get("sampling_rate", 16000))

    @property
    def samples_per_frame(self) -> int:
        """Samples per log-mel frame (the feature extractor's hop)."""
        return int(self.config.get("feature_extractor", {}).get("hop_length", 160))

    @property
    def min_samples(self) -> int:
        return self.samples_per_frame

    @property
    def decoder_start_token_id(self) -> int:
        start = self.config.get("decoder_start_token_id")
        return int(start if start is not None else 0)

    def new_cache(self, batch: int, max_length: int) -> KVCache:
        backbone = self.decoder.config
        weight = self.tokens.weight
        return KVCache(backbone.num_layers, batch, backbone.num_heads, max_length, backbone.head_dim,
                       device=weight.device, dtype=weight.dtype)

    def encode(self, input_features: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, n_mels, 2S) log-mel frames -> (B, S, C) memory (S = max_source_positions, as
        Whisper's positions are fixed: 30 s of audio, padded)."""
        frames = self.encoder_positions.num_embeddings * 2
        if input_features.shape[-1] != frames:
            raise InvalidInputError(f"Whisper takes exactly {frames} log-mel frames (30 s, padded), got "
                                    f"{input_features.shape[-1]}; pad or cut the features to {frames} frames.")
        x = F.gelu(self.conv2(F.gelu(self.conv1(input_features)))).transpose(1, 2)  # (B, S, C)
        x = self.dropout(x + self.encoder_positions.weight)
        return self.encoder(x)

    def decode(self, decoder_input_ids: torch.Tensor, memory: torch.Tensor,
               attention_mask: torch.Tensor | None = None, *, cache: KVCache | None = None,
               last_only: bool = False) -> torch.Tensor:
        """(B, T) target ids after ``cache.length`` cached ones -> (B, T|1, V) logits."""
        past = cache.length if cache is not None else 0
        length = decoder_input_ids.shape[1]
        if past + length > self.max_positions:
            raise InvalidInputError(f"{past + length} target tokens exceed Whisper's {self.max_positions} positions.")
        x = self.tokens(decoder_input_ids) * self.embed_scale + self.decoder_positions.weight[past:past + length]
        x = self.decoder(self.dropout(x), None, cache=cache, memory=memory)
        if last_only:
            x = x[:, -1:]
        return F.linear(x, self.tokens.weight)

    def forward(self, input_features: torch.Tensor, decoder_input_ids: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, label_smoothing: float = 0.0) -> dict[str, torch.Tensor]:
        """Teacher-forced logits; with ``labels`` (B, T; -100 ignored) the cross-entropy loss
        (mean over the labelled positions, ``label_smoothing`` as ``F.cross_entropy`` takes
        it). The decoder reads [start] + labels[:-1] (-100 read as the pad token), as
        transformers' ``shift_tokens_right``, unless ``decoder_input_ids`` are given."""
        if decoder_input_ids is None:
            if labels is None:
                raise ValueError("WhisperModel needs decoder_input_ids or labels.")
            start = torch.full_like(labels[:, :1], self.decoder_start_token_id)
            shifted = torch.cat([start, labels[:, :-1]], 1)
            decoder_input_ids = shifted.masked_fill(shifted == -100, int(self.config.get("pad_token_id") or 0))
        logits = self.decode(decoder_input_ids, self.encode(input_features))
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100,
                                          label_smoothing=float(label_smoothing))
        return out


def build_whisper(config: dict[str, Any]) -> WhisperModel:
    """The ``whisper`` architecture (converted checkpoints only: its weights come from them)."""
    return WhisperModel(config)


_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "relu": "relu"}


#: the feature extractor settings kept from preprocessor_config.json (WhisperFeatureExtractor's arguments)
FEATURE_KEYS = ("feature_size", "sampling_rate", "hop_length", "chunk_length", "n_fft", "padding_value", "dither")
#: the generation settings kept from generation_config.json (what Whisper's decoder prompt and suppression read)
GENERATION_KEYS = ("decoder_start_token_id", "suppress_tokens", "begin_suppress_tokens", "lang_to_id", "task_to_id",
                   "no_timestamps_token_id", "is_multilingual", "forced_decoder_ids", "max_length", "num_beams",
                   "max_new_tokens", "max_initial_timestamp_index")


def _side_files(hf: dict[str, Any], checkpoint: Checkpoint | None) -> dict[str, Any]:
    """``feature_extractor`` and ``whisper_generation`` from the folder's side files (config.json's
    values where the folder has none)."""
    features: dict[str, Any] = {"feature_size": hf.get("num_mel_bins", 80)}
    generation = {k: hf[k] for k in ("decoder_start_token_id", "suppress_tokens", "begin_suppress_tokens",
                                     "forced_decoder_ids") if hf.get(k) is not None}
    if checkpoint is not None:
        pre = checkpoint.read_json("preprocessor_config.json")
        if pre is None:
            pre = (checkpoint.read_json("processor_config.json") or {}).get("feature_extractor")
        if pre is not None and not isinstance(pre, dict):
            raise ModelLoadError(f"{str(checkpoint.folder / 'preprocessor_config.json')!r} must be a JSON object.")
        features.update({k: pre[k] for k in FEATURE_KEYS if k in (pre or {})})
        gen = checkpoint.read_json("generation_config.json") or {}
        if not isinstance(gen, dict):
            raise ModelLoadError(f"{str(checkpoint.folder / 'generation_config.json')!r} must be a JSON object.")
        generation.update({k: gen[k] for k in GENERATION_KEYS if gen.get(k) is not None})
    if features["feature_size"] != hf.get("num_mel_bins", 80):
        raise ModelLoadError(f"the feature extractor makes {features['feature_size']} mel bins but the model takes "
                             f"num_mel_bins={hf.get('num_mel_bins', 80)}; use the preprocessor_config.json saved "
                             "with the model.")
    return {"feature_extractor": features, "whisper_generation": generation, "do_normalize": False}


def convert_whisper(hf: dict[str, Any], state: dict[str, torch.Tensor], checkpoint: Checkpoint | None = None
                    ) -> tuple[str, dict[str, Any], dict[str, torch.Tensor]]:
    """transformers WhisperForConditionalGeneration -> Hub ``whisper`` (``checkpoint``: the
    folder's side files, see :func:`_side_files`)."""
    act = hf.get("activation_function", "gelu")
    if act not in _ACTIVATIONS:
        raise ModelLoadError(f"Whisper activation {act!r} is not supported; known: {sorted(_ACTIVATIONS)}.")
    width = hf["d_model"]

    def side(prefix: str) -> dict[str, Any]:
        return {"hidden_size": width, "num_layers": hf[f"{prefix}_layers"],
                "num_heads": hf[f"{prefix}_attention_heads"], "intermediate_size": hf[f"{prefix}_ffn_dim"],
                "activation": _ACTIVATIONS[act], "norm_eps": 1e-5,
                "norm_position": "pre", "dropout": hf.get("dropout", 0.0),
                "attention_dropout": hf.get("attention_dropout", 0.0)}

    config = {
        "vocab_size": hf["vocab_size"], "num_mel_bins": hf.get("num_mel_bins", 80),
        "max_source_positions": hf.get("max_source_positions", 1500),
        "max_target_positions": hf.get("max_target_positions", 448),
        "embed_scale": math.sqrt(width) if hf.get("scale_embedding") else 1.0,
        "pad_token_id": hf.get("pad_token_id"), "eos_token_id": hf.get("eos_token_id"),
        "decoder_start_token_id": hf.get("decoder_start_token_id"),
        "encoder": side("encoder"), "decoder": side("decoder"), **_side_files(hf, checkpoint),
    }
    prefix = "model." if any(k.startswith("model.") for k in state) else ""

    def get(name: str) -> torch.Tensor:
        if prefix + name not in state:
            raise ModelLoadError(f"Whisper checkpoint is missing weight {prefix + name!r}.")
        return state[prefix + name]

    check_layer_count(state, prefix + "encoder.layers.", hf["encoder_layers"], "encoder_layers")
    check_layer_count(state, prefix + "decoder.layers.", hf["decoder_layers"], "decoder_layers")
    out = {"tokens.weight": get("decoder.embed_tokens.weight"),
           "decoder_positions.weight": get("decoder.embed_positions.weight"),
           "encoder_positions.weight": get("encoder.embed_positions.weight")}
    for conv in ("conv1", "conv2"):
        for kind in ("weight", "bias"):
            out[f"{conv}.{kind}"] = get(f"encoder.{conv}.{kind}")
    for side_name in ("encoder", "decoder"):
        for kind in ("weight", "bias"):
            out[f"{side_name}.final_norm.{kind}"] = get(f"{side_name}.layer_norm.{kind}")
        for i in range(hf[f"{side_name}_layers"]):
            src, dst = f"{side_name}.layers.{i}.", f"{side_name}.layers.{i}."

            def attention(theirs: str, src: str = src) -> tuple[torch.Tensor, ...]:
                q, k, v = (get(src + f"{theirs}.{p}_proj.weight") for p in "qkv")
                q_bias, v_bias = get(src + f"{theirs}.q_proj.bias"), get(src + f"{theirs}.v_proj.bias")
                return q, k, v, q_bias, torch.zeros_like(q_bias), v_bias  # Whisper's keys have no bias

            q, k, v, qb, kb, vb = attention("self_attn")
            out[dst + "attn.qkv.weight"], out[dst + "attn.qkv.bias"] = torch.cat([q, k, v]), torch.cat([qb, kb, vb])
            out[dst + "attn.out.weight"] = get(src + "self_attn.out_proj.weight")
            out[dst + "attn.out.bias"] = get(src + "self_attn.out_proj.bias")
            if side_name == "decoder":
                q, k, v, qb, kb, vb = attention("encoder_attn")
                out[dst + "cross.q.weight"], out[dst + "cross.q.bias"] = q, qb
                out[dst + "cross.kv.weight"], out[dst + "cross.kv.bias"] = torch.cat([k, v]), torch.cat([kb, vb])
                out[dst + "cross.out.weight"] = get(src + "encoder_attn.out_proj.weight")
                out[dst + "cross.out.bias"] = get(src + "encoder_attn.out_proj.bias")
            for kind in ("weight", "bias"):
                out[dst + f"norm1.{kind}"] = get(src + f"self_attn_layer_norm.{kind}")
                out[dst + f"norm2.{kind}"] = get(src + f"final_layer_norm.{kind}")
                out[dst + f"mlp.fc1.{kind}"] = get(src + f"fc1.{kind}")
                out[dst + f"mlp.fc2.{kind}"] = get(src + f"fc2.{kind}")
                if side_name == "decoder":
                    out[dst + f"norm_cross.{kind}"] = get(src + f"encoder_attn_layer_norm.{kind}")
    return "whisper", config, out
