"""Training and evaluation examples for the common Trainer, per model family.

The Trainer iterates a sequence of examples and a ``collate`` that turns a list of them
into tensors. Here an example is a row number and the collate reads the rows from
arrays, so 100k interactions cost no Python dicts. Negative items are drawn in the
collate from torch's global generator, which the Trainer seeds (reproducible runs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from hub_recsys.data import Interactions


class Rows(Sequence):
    """0..n-1 as a Sequence: the Trainer's examples are row numbers."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return range(self.n)[index]
        if not -self.n <= index < self.n:
            raise IndexError(index)
        return index % self.n


@dataclass
class RatingBatches:
    """(user, item, rating) rows for explicit models."""

    users: torch.Tensor
    items: torch.Tensor
    ratings: torch.Tensor

    @classmethod
    def of(cls, data: Interactions) -> RatingBatches:
        return cls(torch.as_tensor(data.users), torch.as_tensor(data.items), torch.as_tensor(data.ratings))

    def __call__(self, rows: list[int]) -> dict[str, torch.Tensor]:
        index = torch.as_tensor(rows)
        return {"users": self.users[index], "items": self.items[index], "labels": self.ratings[index].float()}


class PairBatches:
    """(user, observed item, sampled negatives) rows for implicit models. A negative that
    the user has interacted with is redrawn (up to a few times)."""

    def __init__(self, data: Interactions, negatives: int = 1) -> None:
        self.users, self.items = torch.as_tensor(data.users), torch.as_tensor(data.items)
        self.num_items, self.negatives = data.num_items, negatives
        self.known = torch.unique(self.users * data.num_items + self.items)  # sorted keys

    def _seen(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        keys = users[:, None] * self.num_items + items
        at = torch.searchsorted(self.known, keys).clamp(max=len(self.known) - 1)
        return self.known[at] == keys

    def __call__(self, rows: list[int]) -> dict[str, torch.Tensor]:
        index = torch.as_tensor(rows)
        users = self.users[index]
        negatives = torch.randint(self.num_items, (len(rows), self.negatives))
        for _ in range(5):
            clash = self._seen(users, negatives)
            if not clash.any():
                break
            negatives[clash] = torch.randint(self.num_items, (int(clash.sum()),))
        return {"users": users, "items": self.items[index], "negatives": negatives}


def left_pad(sequences: Sequence[np.ndarray | list[int]], length: int, value: int = 0) -> torch.Tensor:
    out = torch.full((len(sequences), length), value, dtype=torch.long)
    for row, seq in enumerate(sequences):
        seq = list(seq)[-length:]
        if seq:
            out[row, length - len(seq):] = torch.as_tensor(seq, dtype=torch.long)
    return out


def windows(sequences: Sequence[np.ndarray], size: int) -> list[np.ndarray]:
    """Cut each history into windows of at most ``size`` items, the last ending at its newest
    item, earlier ones stepping back ``size - 1`` (windows share one item, so every item is a
    target once for a causal model). Histories of fewer than 2 items give none."""
    out = []
    for seq in sequences:
        end = len(seq)
        while end >= 2:
            out.append(np.asarray(seq[max(0, end - size):end]))
            end -= size - 1
    return out


class NextItemBatches:
    """Causal (SASRec) training: input = window[:-1], target at each position = the next item."""

    def __init__(self, sequences: Sequence[np.ndarray], max_len: int) -> None:
        self.max_len = max_len
        self.windows = windows(sequences, max_len + 1)

    def __len__(self) -> int:
        return len(self.windows)

    def __call__(self, rows: list[int]) -> dict[str, torch.Tensor]:
        chosen = [self.windows[r] for r in rows]
        inputs = left_pad([w[:-1] + 1 for w in chosen], self.max_len)
        labels = left_pad([w[1:] for w in chosen], self.max_len, value=-100)
        return {"input_ids": inputs, "labels": labels}


class ClozeBatches:
    """BERT4Rec's cloze task: each item is replaced by [MASK] with probability ``mask_prob``
    (at least one per window) and predicted. With ``last_prob`` a window instead has only its
    newest item masked, the situation met at inference (the paper's fine-tuning samples)."""

    def __init__(self, sequences: Sequence[np.ndarray], max_len: int, mask_token: int, *,
                 mask_prob: float = 0.2, last_prob: float = 0.0) -> None:
        self.max_len, self.mask_token = max_len, mask_token
        self.mask_prob, self.last_prob = mask_prob, last_prob
        self.windows = windows(sequences, max_len)

    def __len__(self) -> int:
        return len(self.windows)

    def __call__(self, rows: list[int]) -> dict[str, torch.Tensor]:
        items = left_pad([self.windows[r] for r in rows], self.max_len, value=-1)  # item indices, -1 = pad
        real = items >= 0
        masked = (torch.rand(items.shape) < self.mask_prob) & real
        last_only = torch.rand(len(rows)) < self.last_prob
        masked[last_only] = False
        masked[last_only, -1] = True
        none = ~masked.any(1)  # at least one target per window: its newest item
        masked[none, -1] = True
        inputs = torch.where(real, items + 1, torch.zeros_like(items))
        inputs = torch.where(masked, torch.full_like(items, self.mask_token), inputs)
        labels = torch.where(masked, items, torch.full_like(items, -100))
        return {"input_ids": inputs, "labels": labels}


class RankingEval:
    """Trainer evaluation rows: a user (or history) and one held-out target item; the
    batch carries the user's seen items as ``exclude`` so logits rank unseen items only."""

    def __init__(self, users: np.ndarray, targets: np.ndarray, seen: Sequence[np.ndarray], num_items: int,
                 histories: Sequence[np.ndarray] | None = None, max_len: int = 0) -> None:
        self.users, self.targets, self.seen = users, targets, seen
        self.num_items, self.histories, self.max_len = num_items, histories, max_len

    def __len__(self) -> int:
        return len(self.targets)

    def __call__(self, rows: list[int]) -> dict[str, torch.Tensor]:
        exclude = torch.zeros(len(rows), self.num_items, dtype=torch.bool)
        for j, r in enumerate(rows):
            exclude[j, torch.as_tensor(self.seen[r], dtype=torch.long)] = True
        targets = torch.as_tensor(self.targets[rows])
        exclude[torch.arange(len(rows)), targets] = False
        batch = {"labels": targets, "exclude": exclude}
        if self.histories is not None:
            batch["input_ids"] = left_pad([np.asarray(self.histories[r]) + 1 for r in rows], self.max_len)
        else:
            batch["users"] = torch.as_tensor(self.users[rows])
        return batch
