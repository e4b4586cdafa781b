"""The order in which training examples are read: seeded per epoch, shardable across
processes, optionally grouped by length, and restartable at any batch.

Exact resume needs the data position to be a pure function of (seed, epoch, batch index):
this sampler is that function. Every process draws the same permutation and cuts it
into *global* batches of ``batch_size x world_size`` examples; process ``r`` takes every
``world_size``-th example of each global batch, so N processes see, step by step, the
same examples as one process with an N-times larger batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's randomness (its order, its loader workers)."""
    return seed * 1_000_003 + epoch


class ResumableBatchSampler(Sampler[list[int]]):
    """Batches of indices for one process; ``set_epoch(epoch, start_batch)`` before iterating."""

    def __init__(self, num_examples: int, batch_size: int, *, seed: int = 0, rank: int = 0,
                 world_size: int = 1, shuffle: bool = True, lengths: Sequence[int] | None = None,
                 group_size: int = 50) -> None:
        if num_examples < 1:
            raise ValueError("the training data is empty")
        self.num_examples, self.batch_size, self.seed = num_examples, batch_size, seed
        self.rank, self.world_size, self.shuffle = rank, world_size, shuffle
        self.lengths, self.group_size = lengths, group_size
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def global_batches(self) -> list[list[int]]:
        """This epoch's batches as every process together reads them."""
        n, per_step = self.num_examples, self.batch_size * self.world_size
        if self.shuffle:
            generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
            order = torch.randperm(n, generator=generator).tolist()
        else:
            generator, order = None, list(range(n))
        if self.world_size > 1 and n % self.world_size:  # every process gets a full share
            order += order[: self.world_size - n % self.world_size]
        if self.lengths is None:
            return [order[i:i + per_step] for i in range(0, len(order), per_step)]
        # length grouping (as transformers' LengthGroupedSampler): sort inside mega-batches,
        # then shuffle the batch order so long and short batches alternate across the epoch
        mega = per_step * self.group_size
        batches = []
        for start in range(0, len(order), mega):
            chunk = sorted(order[start:start + mega], key=lambda i: -self.lengths[i])
            batches += [chunk[i:i + per_step] for i in range(0, len(chunk), per_step)]
        if generator is not None:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.global_batches()[self.start_batch:]:
            mine = batch[self.rank::self.world_size]
            if mine:
                yield mine

    def __len__(self) -> int:
        per_step = self.batch_size * self.world_size
        padded = self.num_examples + (-self.num_examples) % self.world_size
        return -(-padded // per_step)
