"""Task heads that several families put on the backbone's hidden states.

:class:`ClassificationHead` serves text and audio classification; :class:`MaskedLMHead`
serves text fill-mask (BERT, RoBERTa, DistilBERT) and BERT4Rec's masked-item recommender.
A head only one family uses lives in that family's plugin.
"""

from __future__ import annotations

import torch
from torch import nn

from hub.backbone.pooling import pool


class ClassificationHead(nn.Module):
    """Pooled representation -> (optional dense+tanh "pooler") -> dropout -> logits.

    ``pooler=True`` with ``pooling="cls"`` is exactly BERT's pooler + classifier
    (RoBERTa's classification head too); DistilBERT's uses ``pooler_activation="relu"``.
    """

    def __init__(self, hidden_size: int, num_labels: int, *, pooling: str = "cls",
                 pooler: bool = True, pooler_activation: str = "tanh", dropout: float = 0.1) -> None:
        super().__init__()
        if pooler_activation not in ("tanh", "relu"):
            raise ValueError(f"pooler_activation must be 'tanh' or 'relu', got {pooler_activation!r}")
        self.pooling = pooling
        self.pooler = nn.Linear(hidden_size, hidden_size) if pooler else None
        self.pooler_activation = torch.tanh if pooler_activation == "tanh" else torch.relu
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = pool(hidden, padding_mask, self.pooling)  # (B, C)
        if self.pooler is not None:
            x = self.pooler_activation(self.pooler(self.dropout(x)))
        return self.classifier(self.dropout(x))  # (B, num_labels)


class MaskedLMHead(nn.Module):
    """Masked-token head: dense -> activation -> LayerNorm -> projection onto the vocabulary.

    The projection's weight is tied to the token (or item) embedding (``tie_to``); only its
    bias is the head's own. This is the head BERT-style masked pretraining uses; text's
    fill-mask and recsys' BERT4Rec share it (the text plugin's converters map BERT's,
    RoBERTa's and DistilBERT's masked-LM weights onto ``dense``, ``norm`` and ``bias``).
    """

    def __init__(self, hidden_size: int, vocab_size: int, *, activation: str = "gelu",
                 norm_eps: float = 1e-12) -> None:
        super().__init__()
        from hub.backbone.layers import activation_fn

        self.dense = nn.Linear(hidden_size, hidden_size)
        self.act = activation_fn(activation)
        self.norm = nn.LayerNorm(hidden_size, eps=norm_eps)
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        self.embedding: nn.Embedding | None = None

    def tie_to(self, embedding: nn.Embedding) -> None:
        # stored outside the module tree so that state_dict holds the matrix once
        object.__setattr__(self, "embedding", embedding)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.embedding is None:
            raise RuntimeError("MaskedLMHead.tie_to(embedding) was never called.")
        x = self.norm(self.act(self.dense(hidden)))  # (B, T, C)
        return torch.nn.functional.linear(x, self.embedding.weight, self.bias)  # (B, T, V)
