"""Encoder-decoder language models (BART, mBART, Marian, T5) on the shared backbone.

An encoder stack reads the source tokens; a decoder stack with cross-attention
(``cross_attention`` in its :class:`~hub.backbone.TransformerConfig`) reads the target
tokens so far and the encoder's output (the *memory*) and predicts the next target token.
The families differ only in options, so one module serves them all:

========================  ==========  ==========  ===========  ===============
option                    BART        mBART       Marian       T5
========================  ==========  ==========  ===========  ===============
norm_position             post        pre         post         pre (RMSNorm)
position                  learned +2  learned +2  sinusoidal   relative bias
embedding_norm            yes         yes         no           no
embed_scale               1 or √C     1 or √C     √C           1
logits_bias               yes         yes         yes          no
output_scale              1           1           1            C^-0.5 (tied)
========================  ==========  ==========  ===========  ===============

Hub config (architecture ``seq2seq-lm``)::

    {"vocab_size": 50265, "max_positions": 1024, "position": "learned", "position_offset": 2,
     "embed_scale": 1.0, "embedding_norm": true, "logits_bias": true, "tie_word_embeddings": true,
     "output_scale": 1.0, "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2,
     "decoder_start_token_id": 2, "generation": {...}, "task_specific_params": {...},
     "encoder": {TransformerConfig}, "decoder": {TransformerConfig: causal, cross_attention}}

``decoder_vocab_size`` (optional; Marian with separate source and target vocabularies) gives
the decoder a token table of its own (``decoder_tokens``, tied to the head, and the logits
bias of that size); without it both sides and the head share ``shared``.

``generation`` holds the checkpoint's generation defaults (``num_beams``, ``length_penalty``,
``no_repeat_ngram_size``, ``early_stopping``, ``max_new_tokens``, ``min_new_tokens``,
``forced_bos_token_id``, ``forced_eos_token_id``, and sampling's ``do_sample``,
``temperature``, ``top_k``, ``top_p``, ``num_return_sequences``), which the pipelines use as transformers'
``generate`` uses ``generation_config.json``; ``task_specific_params`` is transformers' field
of the same name (T5's ``"summarize: "`` prefixes and per-task settings).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hub.backbone import KVCache, Transformer, TransformerConfig, init_weights
from hub.backbone.config import ConfigReader

POSITIONS = ("learned", "sinusoidal", "none")
#: generation defaults a config may carry, and what each must be
GENERATION_KEYS = ("num_beams", "length_penalty", "no_repeat_ngram_size", "early_stopping", "max_new_tokens",
                   "min_new_tokens", "forced_bos_token_id", "forced_eos_token_id", "num_return_sequences",
                   "do_sample", "temperature", "top_k", "top_p")


def check_seq2seq_config(config: Any) -> tuple[TransformerConfig, TransformerConfig]:
    """Validate a ``seq2seq-lm`` config (one ConfigError naming the key); returns the encoder's
    and the decoder's backbone configs (the decoder made causal with cross-attention)."""
    read = ConfigReader(config, "seq2seq-lm config")
    vocab = read.int("vocab_size")
    target_vocab = read.int("decoder_vocab_size", vocab)
    read.int("max_positions", 1024)
    read.choice("position", POSITIONS, "learned")
    read.int("position_offset", 0, minimum=0, maximum=1024)
    read.float("embed_scale", 1.0, above=0.0)
    read.float("output_scale", 1.0, above=0.0)
    for flag in ("embedding_norm", "logits_bias", "tie_word_embeddings"):
        read.bool(flag, False if flag != "tie_word_embeddings" else True)
    for key in ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id"):
        read.int(key, None, minimum=0, maximum=max(min(vocab, target_vocab) - 1, 0), optional=True)
    generation = read.section("generation", {})
    generation.known(GENERATION_KEYS)
    read.mapping("task_specific_params", {})
    encoder = TransformerConfig.from_dict(read.mapping("encoder"))
    decoder = TransformerConfig.from_dict({**read.mapping("decoder"), "causal": True, "cross_attention": True})
    if encoder.hidden_size != decoder.hidden_size:
        from hub.errors import ConfigError

        raise ConfigError(f"seq2seq-lm config: encoder.hidden_size ({encoder.hidden_size}) and decoder.hidden_size "
                          f"({decoder.hidden_size}) must be equal (the decoder attends to the encoder's output).")
    return encoder, decoder


def split_sinusoidal_positions(length: int, dim: int, device: Any = None, dtype: Any = None) -> torch.Tensor:
    """Marian's fixed (T, C) table: sines of the even-indexed frequencies in the first half,
    cosines of the odd-indexed ones in the second (not interleaved as in the paper)."""
    position = torch.arange(length, dtype=torch.float64, device=device)[:, None]
    index = torch.arange(dim, dtype=torch.float64, device=device)
    exponent = 2 * torch.div(index, 2, rounding_mode="floor") / dim
    angles = position / torch.pow(torch.tensor(10000.0, dtype=torch.float64), exponent)
    half = -(-dim // 2)
    table = torch.empty(length, dim, dtype=torch.float64, device=device)
    table[:, :half] = torch.sin(angles[:, 0::2])
    table[:, half:] = torch.cos(angles[:, 1::2])
    return table.to(dtype or torch.float32)


class Seq2SeqEmbedding(nn.Module):
    """One side's front end: (shared) token embedding x ``embed_scale`` + positions, then the
    optional embedding LayerNorm (BART) and dropout. The token table is the model's, shared
    by both sides (and the LM head), so it is passed in, not owned."""

    def __init__(self, config: dict[str, Any], backbone: TransformerConfig) -> None:
        super().__init__()
        self.position = config.get("position", "learned")
        self.offset = config.get("position_offset", 0)
        self.max_positions = config.get("max_positions", 1024)
        self.scale = float(config.get("embed_scale", 1.0))
        self.positions = (nn.Embedding(self.max_positions + self.offset, backbone.hidden_size)
                          if self.position == "learned" else None)
        self.norm = (nn.LayerNorm(backbone.hidden_size, eps=backbone.norm_eps)
                     if config.get("embedding_norm", False) else nn.Identity())
        self.dropout = nn.Dropout(backbone.dropout)
        self._table: torch.Tensor | None = None

    def forward(self, tokens: nn.Embedding, input_ids: torch.Tensor, past: int = 0) -> torch.Tensor:
        """(B, T) ids at positions past .. past + T - 1 -> (B, T, C)."""
        length = input_ids.shape[1]
        if self.position != "none" and past + length > self.max_positions:
            from hub.errors import InvalidInputError

            raise InvalidInputError(f"sequence of {past + length} tokens exceeds the model's maximum of "
                                    f"{self.max_positions} positions; truncate the input or generate fewer tokens.")
        x = tokens(input_ids)
        if self.scale != 1.0:
            x = x * self.scale
        if self.positions is not None:
            x = x + self.positions.weight[self.offset + past:self.offset + past + length]
        elif self.position == "sinusoidal":
            x = x + self.table(x)[past:past + length]
        return self.dropout(self.norm(x))

    def table(self, x: torch.Tensor) -> torch.Tensor:
        """The sinusoidal table, made once per device and dtype."""
        if self._table is None or self._table.device != x.device or self._table.dtype != x.dtype:
            self._table = split_sinusoidal_positions(self.max_positions, x.shape[-1], x.device, x.dtype)
        return self._table


class Seq2SeqLM(nn.Module):
    """Encoder + cross-attending decoder + LM head tied to the shared token embedding (or to
    the decoder's own table when the config has a separate ``decoder_vocab_size``)."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = config
        encoder, decoder = check_seq2seq_config(config)
        vocab = config["vocab_size"]
        self.shared = nn.Embedding(vocab, encoder.hidden_size, padding_idx=config.get("pad_token_id"))
        target_vocab = int(config.get("decoder_vocab_size") or vocab)
        self.separate_vocabularies = "decoder_vocab_size" in config and config["decoder_vocab_size"] is not None
        # the decoder's own table (separate vocabularies) as a module; else it reads `shared`
        if self.separate_vocabularies:
            self.decoder_tokens = nn.Embedding(target_vocab, decoder.hidden_size,
                                               padding_idx=config.get("pad_token_id"))
        self.encoder_embed = Seq2SeqEmbedding(config, encoder)
        self.decoder_embed = Seq2SeqEmbedding(config, decoder)
        self.encoder = Transformer(encoder)
        self.decoder = Transformer(decoder)
        self.tied = bool(config.get("tie_word_embeddings", True))
        self.lm_head = None if self.tied else nn.Linear(decoder.hidden_size, target_vocab, bias=False)
        self.output_scale = float(config.get("output_scale", 1.0))
        if config.get("logits_bias", False):  # BART's final_logits_bias: a buffer, saved, not trained
            self.register_buffer("logits_bias", torch.zeros(target_vocab))
        else:
            self.logits_bias = None

    # -- what generation and the pipelines read --------------------------------------
    @property
    def target_tokens(self) -> nn.Embedding:
        """The decoder's token table (tied to the head): its own, or the shared one."""
        return self.decoder_tokens if self.separate_vocabularies else self.shared

    @property
    def max_positions(self) -> int:
        return self.decoder_embed.max_positions if self.config.get("position", "learned") != "none" else 1 << 30

    @property
    def decoder_start_token_id(self) -> int:
        start = self.config.get("decoder_start_token_id")
        return int(start if start is not None else (self.config.get("pad_token_id") or 0))

    def new_cache(self, batch: int, max_length: int) -> KVCache:
        """A KV cache for ``batch`` decoder rows of up to ``max_length`` target tokens (the
        memory's keys/values are added on the first step)."""
        backbone = self.decoder.config
        weight = self.shared.weight
        return KVCache(backbone.num_layers, batch, backbone.num_heads, max_length, backbone.head_dim,
                       device=weight.device, dtype=weight.dtype)

    # -- forward ------------------------------------------------------------------
    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, S) source ids -> (B, S, C) memory."""
        return self.encoder(self.encoder_embed(self.shared, input_ids), attention_mask)

    def decode(self, decoder_input_ids: torch.Tensor, memory: torch.Tensor,
               attention_mask: torch.Tensor | None = None, *, decoder_attention_mask: torch.Tensor | None = None,
               cache: KVCache | None = None, last_only: bool = False) -> torch.Tensor:
        """(B, T) target ids after ``cache.length`` cached ones -> (B, T|1, V) logits.

        ``attention_mask`` is the source's (B, S) padding mask; ``decoder_attention_mask``
        the target's (B, past + T), needed only when targets are padded (training)."""
        past = cache.length if cache is not None else 0
        x = self.decoder_embed(self.target_tokens, decoder_input_ids, past)  # (B, T, C)
        x = self.decoder(x, decoder_attention_mask, cache=cache, memory=memory, memory_mask=attention_mask)
        if last_only:
            x = x[:, -1:]
        if self.output_scale != 1.0:  # T5 with tied embeddings rescales before the tied head
            x = x * self.output_scale
        logits = F.linear(x, self.target_tokens.weight if self.tied else self.lm_head.weight)  # (B, T, V)
        return logits if self.logits_bias is None else logits + self.logits_bias

    def shift_right(self, labels: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: the decoder reads [start] + labels[:-1] (ignored -100s as padding)."""
        start = torch.full_like(labels[:, :1], self.decoder_start_token_id)
        shifted = torch.cat([start, labels[:, :-1]], 1)
        return shifted.masked_fill(shifted == -100, int(self.config.get("pad_token_id") or 0))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                decoder_input_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                decoder_attention_mask: torch.Tensor | None = None, label_smoothing: float = 0.0
                ) -> dict[str, torch.Tensor]:
        """Teacher-forced logits (B, T, V) for ``decoder_input_ids`` (default: ``labels``
        shifted right), and with ``labels`` (B, T; -100 ignored) the cross-entropy ``loss``
        (``label_smoothing`` as ``torch.nn.functional.cross_entropy`` takes it)."""
        if decoder_input_ids is None:
            if labels is None:
                raise ValueError("Seq2SeqLM needs decoder_input_ids or labels.")
            decoder_input_ids = self.shift_right(labels)  # right padding: causal attention never reads it
        memory = self.encode(input_ids, attention_mask)
        logits = self.decode(decoder_input_ids, memory, attention_mask, decoder_attention_mask=decoder_attention_mask)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100,
                                          label_smoothing=float(label_smoothing))
        return out


def build_seq2seq_lm(config: dict[str, Any]) -> Seq2SeqLM:
    """The ``seq2seq-lm`` architecture (initialised as BART is, for models made from scratch)."""
    model = Seq2SeqLM(config)
    if not any(p.is_meta for p in model.parameters()):
        init_weights(model)
    return model


def embed_scale(hidden_size: int, scale: bool) -> float:
    """BART/Marian's ``scale_embedding``: token embeddings times √C."""
    return math.sqrt(hidden_size) if scale else 1.0
