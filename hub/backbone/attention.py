"""Multi-head self-attention and cross-attention through ``scaled_dot_product_attention``,
and the masks they take."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from hub.backbone.config import TransformerConfig
from hub.backbone.fastpaths import packed_attention, select_query
from hub.backbone.layers import linear
from hub.backbone.rotary import apply_rotary

if TYPE_CHECKING:
    from hub.backbone.cache import KVCache
    from hub.backbone.fastpaths import Packing


class _Attention(nn.Module):
    """What self- and cross-attention share: heads, scale, dropout and the SDPA call."""

    layer_index: int = 0  # which slot of a KVCache this layer uses (set by Transformer)

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.head_dim = config.head_dim
        self.scale = config.attention_scale  # None: SDPA's 1 / sqrt(head_dim)
        self.attention_dropout = config.attention_dropout
        self.out = nn.Linear(config.attention_dim, config.hidden_size, bias=config.out_bias)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None,
               is_causal: bool) -> torch.Tensor:
        """softmax(q kᵀ · scale + mask) v over (..., H, T, D) tensors, with dropout in training.
        A float ``attn_mask`` is added to the logits (a relative-position bias, with -big at
        masked keys); a boolean one masks (True = attend)."""
        return F.scaled_dot_product_attention(
            q, k, v,
            attn_mask=attn_mask,
            dropout_p=self.attention_dropout if self.training else 0.0,
            is_causal=is_causal,
            scale=self.scale,
        )


class SelfAttention(_Attention):
    """Fused-QKV self-attention; one matmul for q, k and v is faster than three."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__(config)
        self.qkv = nn.Linear(config.hidden_size, 3 * config.attention_dim, bias=config.qkv_bias)
        self.causal = config.causal

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, *,
                rope: tuple[torch.Tensor, torch.Tensor] | None = None, cache: KVCache | None = None,
                packing: Packing | None = None, select: int | None = None) -> torch.Tensor:
        """x: (B, T, C) -> (B, T, C).

        attn_mask: (B, 1, 1|T, S) bool, True = may attend, or None (S keys: T, or past + T
        with a cache). rope: rotary (cos, sin) tables for these positions, applied to q and k.
        The fast paths (:mod:`hub.backbone.fastpaths`): with ``packing`` x is the (N, C) real
        tokens; ``cache`` supplies earlier calls' keys/values; ``select`` computes that one
        query, returning (B, C).
        """
        if packing is not None:  # fast path: packed real tokens, attention per length group
            return linear(self.out, packed_attention(self, linear(self.qkv, x), packing, select))
        B, T, _ = x.shape
        C = self.num_heads * self.head_dim  # the heads side by side (hidden_size unless set apart)
        qkv = linear(self.qkv, x).view(B, T, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, T, D)
        if rope is not None:
            q, k = apply_rotary(q, *rope), apply_rotary(k, *rope)
        is_causal = self.causal and attn_mask is None  # no explicit mask: SDPA's own causal one
        if cache is not None:  # fast path: earlier calls' keys/values, then these
            is_causal = is_causal and cache.length == 0
            k, v = cache.update(self.layer_index, k, v)  # (B, H, past + T, D)
        if select is not None:  # fast path: one query per sequence; keys and values stay whole
            q, attn_mask, is_causal = select_query(q, attn_mask, is_causal, select)  # q: (B, H, 1, D)
        y = self.attend(q, k, v, attn_mask, is_causal)  # (B, H, T|1, D)
        if select is not None:
            return linear(self.out, y.reshape(B, C))  # (B, C)
        return linear(self.out, y.transpose(1, 2).reshape(B, T, C))  # (B, T, C): heads side by side


class CrossAttention(_Attention):
    """A decoder's attention to the encoder's output (``memory``): queries from the decoder's
    hidden states, keys and values from the memory (one fused projection for both).

    With a :class:`~hub.backbone.cache.KVCache` the memory's keys and values are computed on
    the first call and reused by every later decoding step (the memory does not change while
    a sequence is generated)."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__(config)
        self.q = nn.Linear(config.hidden_size, config.attention_dim, bias=config.qkv_bias)
        self.kv = nn.Linear(config.hidden_size, 2 * config.attention_dim, bias=config.qkv_bias)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor | None = None, *,
                cache: KVCache | None = None) -> torch.Tensor:
        """x: (B, T, C), or (B, C) for one query per sequence (``select=``) -> the same shape.

        memory: (B, S, C) encoder states; memory_mask: (B, 1, 1, S) bool (True = attend) or None.
        """
        one = x.ndim == 2
        if one:
            x = x[:, None]  # (B, 1, C)
        B, T, _ = x.shape
        q = linear(self.q, x).view(B, T, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, T, D)
        if cache is not None:
            k, v = cache.cross_update(self.layer_index, lambda: self.memory_kv(memory))
        else:
            k, v = self.memory_kv(memory)  # each (B, H, S, D)
        y = self.attend(q, k, v, memory_mask, False)  # (B, H, T, D)
        y = linear(self.out, y.transpose(1, 2).reshape(B, T, self.num_heads * self.head_dim))
        return y[:, 0] if one else y  # (B, C) | (B, T, C)

    def memory_kv(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S, C) memory -> its keys and values, each (B, H, S, D)."""
        B, S, _ = memory.shape
        kv = linear(self.kv, memory).view(B, S, 2, self.num_heads, self.head_dim)
        k, v = kv.permute(2, 0, 3, 1, 4).unbind(0)
        return k, v


def build_memory_mask(memory_mask: torch.Tensor | None) -> torch.Tensor | None:
    """(B, S) encoder padding mask (1/True = real) -> (B, 1, 1, S) boolean SDPA mask, or None
    when nothing is padded."""
    if memory_mask is None or bool(memory_mask.all()):
        return None
    return memory_mask.bool()[:, None, None, :]


def build_attention_mask(padding_mask: torch.Tensor | None, length: int, causal: bool,
                         device: torch.device, past: int = 0) -> torch.Tensor | None:
    """(B, past + T) key padding mask -> (B, 1, T|1, past + T) boolean SDPA mask (True =
    attend) for T new queries after ``past`` cached tokens.

    Returns None when SDPA needs no mask (nothing padded; causal then by ``is_causal``, or
    a single new token that may see everything before it). A causal query always sees
    itself, so a left-padded row never has every key masked (which would give NaN).
    """
    unpadded = padding_mask is None or bool(padding_mask.all())
    if unpadded and (past == 0 or not causal or length == 1):
        return None
    total = past + length
    if padding_mask is None:
        padding_mask = torch.ones(1, total, dtype=torch.bool, device=device)
    mask = padding_mask.bool()[:, None, None, :]  # (B, 1, 1, past + T)
    if causal:
        queries = torch.arange(past, total, device=device)[:, None]
        keys = torch.arange(total, device=device)[None, :]
        mask = (mask & (keys <= queries)) | (keys == queries)  # (B, 1, T, past + T)
    return mask
