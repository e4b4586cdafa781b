"""CTC head: per-frame vocabulary logits and the connectionist temporal classification loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CTCHead(nn.Module):
    """(B, T, C) frames -> (B, T, V) logits (dropout + linear; index ``blank`` is CTC's blank).

    Named ``proj`` so that transformers' ``lm_head`` of ``Wav2Vec2ForCTC`` maps onto it.
    """

    def __init__(self, hidden_size: int, vocab_size: int, *, blank: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        self.blank = blank
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(hidden_size, vocab_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.proj(self.dropout(hidden))

    def loss(self, logits: torch.Tensor, frame_lengths: torch.Tensor, labels: torch.Tensor,
             reduction: str = "mean") -> torch.Tensor:
        """CTC loss; ``labels`` (B, L) padded with -100 (or any negative id), as transformers pads them.

        ``reduction="mean"`` divides each sequence's loss by its label length, then averages
        (transformers' ``ctc_loss_reduction="mean"``); impossible alignments count as zero.
        """
        real = labels >= 0
        label_lengths = real.sum(-1)
        targets = labels.masked_select(real)
        log_probs = F.log_softmax(logits.float(), dim=-1).transpose(0, 1)  # (T, B, V)
        with torch.backends.cudnn.flags(enabled=False):
            return F.ctc_loss(log_probs, targets, frame_lengths, label_lengths, blank=self.blank,
                              reduction=reduction, zero_infinity=True)
