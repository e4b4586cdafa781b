"""Task heads that sit on top of the backbone's hidden states."""

from __future__ import annotations

import torch
from torch import nn


def pool(hidden: torch.Tensor, padding_mask: torch.Tensor | None, how: str) -> torch.Tensor:
    """(B, T, C) -> (B, C) by the first token ("cls") or the masked mean ("mean")."""
    if how == "cls":
        return hidden[:, 0]
    if how == "mean":
        if padding_mask is None:
            return hidden.mean(1)
        weights = padding_mask.to(hidden.dtype).unsqueeze(-1)  # (B, T, 1)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    raise ValueError(f"unknown pooling {how!r}; use 'cls' or 'mean'")


class ClassificationHead(nn.Module):
    """Pooled representation -> (optional dense+tanh "pooler") -> dropout -> logits.

    ``pooler=True`` with ``pooling="cls"`` is exactly BERT's pooler + classifier.
    """

    def __init__(self, hidden_size: int, num_labels: int, *, pooling: str = "cls",
                 pooler: bool = True, dropout: float = 0.1) -> None:
        super().__init__()
        self.pooling = pooling
        self.pooler = nn.Linear(hidden_size, hidden_size) if pooler else None
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = pool(hidden, padding_mask, self.pooling)  # (B, C)
        if self.pooler is not None:
            x = torch.tanh(self.pooler(x))
        return self.classifier(self.dropout(x))  # (B, num_labels)
