"""T5's bucketed relative-position bias: positions enter attention as a learned bias on
every logit, one value per head and per bucket of the key's offset from the query.

Small offsets get a bucket each; larger ones share logarithmically wider buckets up to
``max_distance``, past which everything falls in the last bucket. A bidirectional stack
(an encoder) gives half the buckets to keys after the query; a causal one (a decoder)
only sees keys before it. T5 computes the table in its first layer and every layer
reuses it; :class:`RelativePositionBias` is that table, held once by the stack.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from hub.backbone.config import TransformerConfig


def relative_position_bucket(relative_position: torch.Tensor, *, bidirectional: bool, num_buckets: int,
                             max_distance: int) -> torch.Tensor:
    """Key offset from the query (key - query), any integer shape -> bucket ids of that shape
    (transformers' ``T5Attention._relative_position_bucket``)."""
    buckets = torch.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        buckets = buckets + (relative_position > 0).long() * num_buckets
        distance = relative_position.abs()
    else:
        distance = -torch.clamp(relative_position, max=0)
    exact = num_buckets // 2
    large = exact + (torch.log(distance.float() / exact) / math.log(max_distance / exact)
                     * (num_buckets - exact)).long()
    large = torch.clamp(large, max=num_buckets - 1)
    return buckets + torch.where(distance < exact, distance, large)


class RelativePositionBias(nn.Module):
    """The (1, H, T, S) bias of T new queries after ``past`` cached positions over S keys."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.num_buckets = config.relative_attention_buckets
        self.max_distance = config.relative_attention_max_distance
        self.bidirectional = not config.causal
        self.embedding = nn.Embedding(self.num_buckets, config.num_heads)

    def forward(self, queries: int, keys: int, past: int, device: torch.device,
                dtype: torch.dtype) -> torch.Tensor:
        query = torch.arange(past, past + queries, device=device)[:, None]  # (T, 1)
        key = torch.arange(keys, device=device)[None, :]                   # (1, S)
        buckets = relative_position_bucket(key - query, bidirectional=self.bidirectional,
                                           num_buckets=self.num_buckets, max_distance=self.max_distance)
        return self.embedding(buckets).permute(2, 0, 1)[None].to(dtype)  # (1, H, T, S)


def add_bias_to_mask(bias: torch.Tensor, mask: torch.Tensor | None, *, causal: bool, past: int) -> torch.Tensor:
    """One float SDPA mask from a (1, H, T, S) bias and a boolean mask (B, 1, T|1, S) or None:
    the bias where attention is allowed, the dtype's minimum where it is not. A causal stack
    whose boolean mask is None (nothing padded; SDPA's ``is_causal`` would have done it) gets
    its causal mask written out, since ``is_causal`` cannot be combined with a float mask."""
    length, total = bias.shape[-2], bias.shape[-1]
    if mask is None and causal and length > 1:
        queries = torch.arange(past, past + length, device=bias.device)[:, None]
        mask = (torch.arange(total, device=bias.device)[None, :] <= queries)[None, None]  # (1, 1, T, S)
    if mask is None:
        return bias
    return bias.masked_fill(~mask, torch.finfo(bias.dtype).min)
