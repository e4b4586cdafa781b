"""The one Transformer stack every Hub model is built on.

A block is attention + feed-forward, each a residual branch, normalised either before
each sub-layer (pre-norm: GPT-2, ViT; the stack then ends with a final norm) or after
each residual add (post-norm: BERT). Encoder and decoder differ only by
``config.causal``; an encoder-decoder's decoder (BART, T5) sets ``cross_attention`` and
its blocks get a third residual branch between the two, attention to the encoder's output
(``memory``). T5's relative-position bias is one table per stack
(:mod:`hub.backbone.relative_position`), added to every block's attention logits through
the attention mask. This file is the reference path; the inference fast paths (unpad,
select, KV cache) live in :mod:`hub.backbone.fastpaths`.
"""

from __future__ import annotations

import torch
import torch.utils.checkpoint
from torch import nn

from hub.backbone.attention import CrossAttention, SelfAttention, build_attention_mask, build_memory_mask
from hub.backbone.cache import KVCache
from hub.backbone.config import TransformerConfig
from hub.backbone.fastpaths import Packing, fast_forward, take_position
from hub.backbone.layers import FeedForward, make_norm
from hub.backbone.relative_position import RelativePositionBias, add_bias_to_mask
from hub.backbone.rotary import rotary_tables

__all__ = ["Packing", "Transformer", "TransformerBlock", "build_attention_mask", "init_weights"]

Rope = tuple[torch.Tensor, torch.Tensor]


class TransformerBlock(nn.Module):
    """x + attention, (x + cross-attention,) then x + feed-forward, with the norms where
    ``norm_position`` puts them::

        pre  (GPT-2, ViT, T5):  x = x + attn(norm1(x));   x = x + cross(norm_cross(x), memory);
                                x = x + mlp(norm2(x))
        post (BERT, BART):      x = norm1(x + attn(x));   x = norm_cross(x + cross(x, memory));
                                x = norm2(x + mlp(x))

    The cross-attention branch exists only with ``config.cross_attention`` (a decoder).
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.pre_norm = config.norm_position == "pre"
        self.attn = SelfAttention(config)
        self.norm1 = make_norm(config)
        if config.cross_attention:
            self.cross = CrossAttention(config)
            self.norm_cross = make_norm(config)
        else:
            self.cross = self.norm_cross = None
        self.mlp = FeedForward(config)
        self.norm2 = make_norm(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, *, rope: Rope | None = None,
                cache: KVCache | None = None, packing: Packing | None = None, select: int | None = None,
                memory: torch.Tensor | None = None, memory_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, T, C) -> (B, T, C); attn_mask and rope as :class:`SelfAttention` takes them;
        memory (B, S, C) and memory_mask (B, 1, 1, S) as :class:`CrossAttention` takes them.

        Fast paths (:mod:`hub.backbone.fastpaths`): with ``packing`` x is the (N, C) real
        tokens; with ``select`` the result is (B, C), the block's output at that position
        only (the other positions still feed its keys and values).
        """
        residual = x if select is None else take_position(x, select, packing)  # select: (B, C)
        h = self.attn(self._before(self.norm1, x), attn_mask, rope=rope, cache=cache, packing=packing,
                      select=select)
        x = self._after(self.norm1, residual + self.dropout(h))  # (B, T, C)
        if self.cross is not None:
            if memory is None:
                raise ValueError("this block has cross-attention: call the stack with memory= (the "
                                 "encoder's output, (B, S, C)).")
            h = self.cross(self._before(self.norm_cross, x), memory, memory_mask, cache=cache)
            x = self._after(self.norm_cross, x + self.dropout(h))  # (B, T, C)
        h = self.mlp(self._before(self.norm2, x))
        return self._after(self.norm2, x + self.dropout(h))  # (B, T, C)

    def _before(self, norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """A sub-layer's input: normalised in pre-norm."""
        return norm(x) if self.pre_norm else x

    def _after(self, norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """A residual sum: normalised in post-norm."""
        return x if self.pre_norm else norm(x)


class Transformer(nn.Module):
    """A stack of blocks; input and output are (B, T, C) hidden states."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.layers = nn.ModuleList(TransformerBlock(config) for _ in range(config.num_layers))
        for index, layer in enumerate(self.layers):
            layer.attn.layer_index = index
            if layer.cross is not None:
                layer.cross.layer_index = index
        # T5: one relative-position table for the whole stack (transformers keeps it in layer 0)
        self.relative_bias = RelativePositionBias(config) if config.relative_attention_buckets else None
        self.final_norm = make_norm(config) if config.norm_position == "pre" else nn.Identity()

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None,
                output_hidden_states: bool = False, *, unpad: bool = False,
                select: int | None = None, cache: KVCache | None = None,
                position_ids: torch.Tensor | None = None, memory: torch.Tensor | None = None,
                memory_mask: torch.Tensor | None = None
                ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """x: (B, T, C) -> (B, T, C), plus the input and every block's output with
        ``output_hidden_states``.

        ``memory`` (B, S, C): the encoder's output a cross-attention stack attends to, with
        its own ``memory_mask`` (B, S), 1/True for real positions (None: none padded).

        ``padding_mask``: (B, T), 1/True for real tokens, 0/False for padding; with a
        ``cache`` it covers the cached tokens too, (B, past + T). The cache receives this
        call's keys and values and advances by T. ``position_ids`` (B, T) feed rotary
        positions (default: past .. past + T - 1).

        Two inference speed-ups (:mod:`hub.backbone.fastpaths`), both off by default and
        both exact (same arithmetic, up to float rounding):

        * ``unpad=True``: the projections, feed-forward and norms run on the real tokens
          only, packed as (N, C); only attention sees the padded (B, T) layout. Padded
          batches then cost what their real tokens cost. Outputs at padding positions are
          zeros (instead of values nothing should read). Rotary stacks run unpacked.
        * ``select=i``: return only position ``i``'s (B, C) final hidden state, e.g. the
          [CLS] token a BERT classifier reads; the last layer then computes that one query
          (its keys and values still come from every token). Position ``i`` must be a
          real token in every sequence.
        """
        memory_mask = build_memory_mask(memory_mask)  # (B, 1, 1, S) or None
        if unpad or select is not None or cache is not None:
            return fast_forward(self, x, padding_mask, output_hidden_states, unpad=unpad, select=select,
                                cache=cache, position_ids=position_ids, memory=memory, memory_mask=memory_mask)
        B, T, C = x.shape
        attn_mask = self.mask_for(padding_mask, T, x.device, dtype=x.dtype)  # (B|1, 1|H, 1|T, T) or None
        rope = self.rope_for(position_ids, T, x)                             # (cos, sin) or None
        hidden = [x]
        for layer in self.layers:
            x = self.run_block(layer, x, attn_mask, rope, memory=memory, memory_mask=memory_mask)  # (B, T, C)
            hidden.append(x)
        x = self.final_norm(x)
        return (x, hidden) if output_hidden_states else x

    def mask_for(self, padding_mask: torch.Tensor | None, length: int, device: torch.device,
                 past: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor | None:
        """The SDPA mask for ``length`` new tokens after ``past`` cached ones: boolean (see
        :func:`build_attention_mask`), or, with a relative-position bias, the (B|1, H, T,
        past + T) float bias with the masked keys at the dtype's minimum."""
        mask = build_attention_mask(padding_mask, length, self.config.causal, device, past=past)
        if self.relative_bias is None:
            return mask
        bias = self.relative_bias(length, past + length, past, device, dtype)  # (1, H, T, past + T)
        return add_bias_to_mask(bias, mask, causal=self.config.causal, past=past)

    def rope_for(self, position_ids: torch.Tensor | None, length: int, x: torch.Tensor,
                 past: int = 0) -> Rope | None:
        """Rotary (cos, sin) tables, each (B|1, 1, T, rotary_dim), or None without rotary."""
        if not self.config.rotary_dim:
            return None
        if position_ids is None:
            position_ids = torch.arange(past, past + length, device=x.device)
        return rotary_tables(position_ids, self.config.rotary_dim, self.config.rotary_base, x.dtype)

    def run_block(self, layer: nn.Module, x: torch.Tensor, attn_mask: torch.Tensor | None,
                  rope: Rope | None, *, cache: KVCache | None = None, packing: Packing | None = None,
                  select: int | None = None, memory: torch.Tensor | None = None,
                  memory_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``layer(x, attn_mask, ...)``; under gradient checkpointing (training with autograd
        on) the block is recomputed in backward instead of keeping its activations, with the
        same arguments. A KV cache is written in place, and a recomputation would write it
        again after it advanced, so calls with a cache are never recomputed."""
        if self.config.gradient_checkpointing and self.training and torch.is_grad_enabled() and cache is None:
            return torch.utils.checkpoint.checkpoint(layer, x, attn_mask, use_reentrant=False, rope=rope,
                                                     packing=packing, select=select, memory=memory,
                                                     memory_mask=memory_mask)
        return layer(x, attn_mask, rope=rope, cache=cache, packing=packing, select=select, memory=memory,
                     memory_mask=memory_mask)


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """BERT/GPT-2 style initialisation, for models trained from scratch."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=std)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
