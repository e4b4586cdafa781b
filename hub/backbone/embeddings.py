"""Embedding front ends: token ids (+ positions, + segment types) -> (B, T, C)."""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_positions(length: int, dim: int, device=None, dtype=None) -> torch.Tensor:
    """The fixed (T, C) sin/cos table of "Attention is all you need"."""
    position = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device, dtype=torch.float32)
    table[:, 0::2] = torch.sin(position * div)
    table[:, 1::2] = torch.cos(position * div[: dim // 2])
    return table.to(dtype) if dtype is not None else table


class TokenEmbedding(nn.Module):
    """Token + position (learned or sinusoidal) + optional segment embeddings.

    ``norm=True`` applies LayerNorm after the sum, as BERT does (post-norm models);
    pre-norm models (GPT-2) leave it off.
    """

    def __init__(self, vocab_size: int, hidden_size: int, *, max_positions: int = 512,
                 position: str = "learned", type_vocab_size: int = 0, norm: bool = True,
                 norm_eps: float = 1e-12, dropout: float = 0.1, pad_token_id: int | None = None) -> None:
        super().__init__()
        if position not in ("learned", "sinusoidal", "none"):
            raise ValueError(f"position must be learned, sinusoidal or none, got {position!r}")
        self.tokens = nn.Embedding(vocab_size, hidden_size, padding_idx=pad_token_id)
        self.position = position
        self.max_positions = max_positions
        self.positions = nn.Embedding(max_positions, hidden_size) if position == "learned" else None
        self.token_types = nn.Embedding(type_vocab_size, hidden_size) if type_vocab_size else None
        self.norm = nn.LayerNorm(hidden_size, eps=norm_eps) if norm else nn.Identity()
        self.dropout = nn.Dropout(dropout)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) ids -> (B, T, C). ``position_ids`` (B, T) overrides 0..T-1 (RoBERTa
        offsets them past the padding index; a KV-cached decoder starts at the cache length)."""
        length = input_ids.shape[1]
        last = int(position_ids.max()) + 1 if position_ids is not None else length
        if self.position != "none" and last > self.max_positions:
            raise ValueError(f"sequence of {last} positions exceeds the model's maximum of "
                             f"{self.max_positions} positions; truncate or chunk the input.")
        x = self.tokens(input_ids)
        if self.positions is not None:
            x = x + (self.positions.weight[:length] if position_ids is None else self.positions(position_ids))
        elif self.position == "sinusoidal":
            table = sinusoidal_positions(last, x.shape[-1], x.device, x.dtype)
            x = x + (table[:length] if position_ids is None else table[position_ids])
        if self.token_types is not None:
            if token_type_ids is None:
                x = x + self.token_types.weight[0]
            else:
                x = x + self.token_types(token_type_ids)
        return self.dropout(self.norm(x))
