"""Padding variable-length sequences into one batch tensor (every collate needs it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch


def pad_sequences(sequences: Sequence[Any], *, value: float = 0, dtype: torch.dtype = torch.long,
                  length: int | None = None, side: Literal["right", "left"] = "right",
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, length)`` tensor of ``sequences`` (lists, arrays or 1-D tensors) padded with
    ``value`` on ``side`` (``length`` defaults to the longest), and the ``(B, length)`` long
    mask of real positions (1) and padding (0)."""
    sizes = [len(seq) for seq in sequences]
    length = max(sizes, default=0) if length is None else length
    padded = torch.full((len(sequences), length), value, dtype=dtype)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for row, (seq, size) in enumerate(zip(sequences, sizes)):
        where = slice(0, size) if side == "right" else slice(length - size, length)
        padded[row, where] = torch.as_tensor(seq, dtype=dtype)
        mask[row, where] = 1
    return padded, mask
