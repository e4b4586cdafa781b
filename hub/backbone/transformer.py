"""The one Transformer stack every Hub model is built on.

A block is attention + feed-forward with residual connections, normalised either
after each residual add (post-norm, BERT) or before each sub-layer (pre-norm,
GPT-2/ViT; the stack then ends with a final norm). Encoder and decoder differ only by
``config.causal``.
"""

from __future__ import annotations

import torch
from torch import nn

from hub.backbone.attention import SelfAttention
from hub.backbone.config import TransformerConfig
from hub.backbone.layers import FeedForward, make_norm


class TransformerBlock(nn.Module):
    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.pre_norm = config.norm_position == "pre"
        self.attn = SelfAttention(config)
        self.norm1 = make_norm(config)
        self.mlp = FeedForward(config)
        self.norm2 = make_norm(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.pre_norm:
            x = x + self.dropout(self.attn(self.norm1(x), attn_mask))
            return x + self.dropout(self.mlp(self.norm2(x)))
        x = self.norm1(x + self.dropout(self.attn(x, attn_mask)))
        return self.norm2(x + self.dropout(self.mlp(x)))


class Transformer(nn.Module):
    """A stack of blocks; input and output are (B, T, C) hidden states."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.layers = nn.ModuleList(TransformerBlock(config) for _ in range(config.num_layers))
        self.final_norm = make_norm(config) if config.norm_position == "pre" else nn.Identity()

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None,
                output_hidden_states: bool = False) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """``padding_mask``: (B, T), 1/True for real tokens, 0/False for padding."""
        attn_mask = build_attention_mask(padding_mask, x.shape[1], self.config.causal, x.device)
        hidden = [x]
        for layer in self.layers:
            x = layer(x, attn_mask)
            hidden.append(x)
        x = self.final_norm(x)
        return (x, hidden) if output_hidden_states else x


def build_attention_mask(padding_mask: torch.Tensor | None, length: int, causal: bool,
                         device: torch.device) -> torch.Tensor | None:
    """(B, T) key padding mask -> (B, 1, T|1, T) boolean SDPA mask (True = attend).

    Returns None when nothing is masked so SDPA can take its fastest kernel.
    """
    if padding_mask is None or bool(padding_mask.all()):
        return None
    mask = padding_mask.bool()[:, None, None, :]  # (B, 1, 1, T)
    if causal:
        tri = torch.ones(length, length, dtype=torch.bool, device=device).tril()
        mask = mask & tri  # (B, 1, T, T)
    return mask


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
