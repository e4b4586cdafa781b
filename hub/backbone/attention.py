"""Multi-head self-attention through ``scaled_dot_product_attention``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hub.backbone.config import TransformerConfig


class SelfAttention(nn.Module):
    """Fused-QKV self-attention; one matmul for q, k and v is faster than three."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.head_dim = config.head_dim
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=config.qkv_bias)
        self.out = nn.Linear(config.hidden_size, config.hidden_size)
        self.attention_dropout = config.attention_dropout
        self.causal = config.causal

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        # x: (B, T, C); attn_mask: (B, 1, 1|T, T) bool, True = may attend, or None
        batch, length, channels = x.shape
        qkv = self.qkv(x).view(batch, length, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, T, D)
        y = F.scaled_dot_product_attention(
            q, k, v,
            attn_mask=attn_mask,
            dropout_p=self.attention_dropout if self.training else 0.0,
            is_causal=self.causal and attn_mask is None,
        )  # (B, H, T, D)
        y = y.transpose(1, 2).reshape(batch, length, channels)
        return self.out(y)
