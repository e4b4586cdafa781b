"""Multi-head self-attention through ``scaled_dot_product_attention``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from hub.backbone.config import TransformerConfig
from hub.backbone.rotary import apply_rotary
from hub.backbone.layers import linear

if TYPE_CHECKING:
    from hub.backbone.cache import KVCache
    from hub.backbone.transformer import Packing


class SelfAttention(nn.Module):
    """Fused-QKV self-attention; one matmul for q, k and v is faster than three."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.head_dim = config.head_dim
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=config.qkv_bias)
        self.out = nn.Linear(config.hidden_size, config.hidden_size, bias=config.out_bias)
        self.attention_dropout = config.attention_dropout
        self.causal = config.causal

    layer_index: int = 0  # which slot of a KVCache this layer uses (set by Transformer)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, *,
                packing: Packing | None = None, select: int | None = None,
                cache: KVCache | None = None,
                rope: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """x: (B, T, C), or (N, C) real tokens only when ``packing`` says where they sit.
        ``rope``: rotary (cos, sin) tables for these positions, applied to q and k.

        attn_mask: (B, 1, 1|T, T) bool, True = may attend, or None (unused when packed).
        Returns x's shape, or (B, C) with ``select``: the output at that position only.
        """
        if packing is not None:
            return linear(self.out, self._packed(linear(self.qkv, x), packing, select))
        batch, length, channels = x.shape
        qkv = linear(self.qkv, x).view(batch, length, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, T, D)
        if rope is not None:
            q, k = apply_rotary(q, *rope), apply_rotary(k, *rope)
        is_causal = self.causal and attn_mask is None
        if cache is not None:  # decoding: attend to everything cached plus the new tokens
            is_causal = is_causal and cache.length == 0
            k, v = cache.update(self.layer_index, k, v)  # (B, H, past + T, D)
        if select is not None:  # one query per sequence; keys and values stay whole
            q = q[:, :, select:select + 1]
            if attn_mask is not None and attn_mask.shape[-2] > 1:
                attn_mask = attn_mask[:, :, select:select + 1]
            if is_causal:
                attn_mask = (torch.arange(length, device=x.device) <= select)[None, None, None, :]
                is_causal = False
        y = self._attend(q, k, v, attn_mask, is_causal)  # (B, H, T|1, D)
        if select is not None:
            return linear(self.out, y.reshape(batch, channels))
        return linear(self.out, y.transpose(1, 2).reshape(batch, length, channels))

    def _attend(self, q, k, v, attn_mask, is_causal: bool) -> torch.Tensor:
        return F.scaled_dot_product_attention(
            q, k, v,
            attn_mask=attn_mask,
            dropout_p=self.attention_dropout if self.training else 0.0,
            is_causal=is_causal,
        )

    def _packed(self, qkv: torch.Tensor, packing: Packing, select: int | None) -> torch.Tensor:
        """(N, 3C) packed projections -> (N, C) attention outputs ((B, C) with ``select``),
        one SDPA call per group of similar-length sequences."""
        channels = self.num_heads * self.head_dim
        out = qkv.new_empty(packing.batch if select is not None else qkv.shape[0], channels)
        for group in packing.attention_groups(select):
            size, length = group.size, group.length
            q, k, v = qkv.index_select(0, group.gather).view(
                size, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
            if select is not None:
                q = q[torch.arange(size, device=q.device), :, group.query].unsqueeze(2)  # (G, H, 1, D)
            y = self._attend(q, k, v, group.mask, group.causal)
            if select is not None:
                out.index_copy_(0, group.members, y.reshape(size, channels))
                continue
            y = y.transpose(1, 2).reshape(size * length, channels)
            if group.valid is not None:
                y = y.index_select(0, group.valid)
            out.index_copy_(0, group.dest, y)
        return out
