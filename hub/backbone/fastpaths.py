"""The Transformer's inference fast paths, kept apart from its reference path.

Each one computes what the plain pass ``Transformer(x, padding_mask)`` computes (the same
arithmetic, up to float rounding; ``tests/backbone/test_equivalence.py`` holds them to
1e-5 of it for every block layout), with less work:

* **unpad** (:class:`Packing`): projections, feed-forward and norms run on the real
  tokens only, packed as (N, C) rows; attention runs per group of similar-length
  sequences, each padded only to its own longest (:meth:`Packing.attention_groups`).
  Padded batches then cost what their real tokens cost.
* **select** (:func:`take_position`, :func:`select_query`): only one position's final
  hidden state is wanted (the [CLS] token a classifier reads), so the last block computes
  that one query; its keys and values still come from every token.
* **cache** (:class:`~hub.backbone.cache.KVCache`): decoding appends the new tokens'
  keys/values to those of earlier calls instead of recomputing them; a cross-attention
  stack also computes the encoder memory's keys/values once and reuses them every step.

Unpad applies to self-attention stacks without rotary positions, relative-position bias
or cross-attention (packed rows carry none of them); elsewhere ``unpad=True`` runs the
padded layout, which computes the same thing.

:func:`fast_forward` is the stack's loop for these; the blocks receive ``packing=``,
``select=`` and ``cache=`` and hand them to attention, which calls back in here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch
from torch import nn

if TYPE_CHECKING:
    from hub.backbone.cache import KVCache
    from hub.backbone.config import TransformerConfig

Rope = tuple[torch.Tensor, torch.Tensor]


class _Stack(Protocol):
    """What :func:`fast_forward` needs of a :class:`~hub.backbone.transformer.Transformer`
    (a protocol, so that this module does not import the one that imports it)."""

    config: TransformerConfig
    layers: nn.ModuleList
    final_norm: nn.Module

    def mask_for(self, padding_mask: torch.Tensor | None, length: int, device: torch.device,
                 past: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor | None: ...

    def rope_for(self, position_ids: torch.Tensor | None, length: int, x: torch.Tensor,
                 past: int = 0) -> Rope | None: ...

    def run_block(self, layer: nn.Module, x: torch.Tensor, attn_mask: torch.Tensor | None,
                  rope: Rope | None, *, cache: KVCache | None = None, packing: Packing | None = None,
                  select: int | None = None, memory: torch.Tensor | None = None,
                  memory_mask: torch.Tensor | None = None) -> torch.Tensor: ...


def fast_forward(stack: _Stack, x: torch.Tensor, padding_mask: torch.Tensor | None = None,
                 output_hidden_states: bool = False, *, unpad: bool = False, select: int | None = None,
                 cache: KVCache | None = None, position_ids: torch.Tensor | None = None,
                 memory: torch.Tensor | None = None, memory_mask: torch.Tensor | None = None
                 ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
    """``stack.forward`` with ``unpad`` / ``select`` / ``cache`` (arguments as there, but
    ``memory_mask`` already the (B, 1, 1, S) SDPA mask or None)."""

    batch, length, _ = x.shape  # (B, T, C)
    past = cache.length if cache is not None else 0
    if cache is not None and (unpad or select is not None):
        raise ValueError("a KV cache cannot be combined with unpad= or select=.")
    if select is not None:
        if output_hidden_states:
            raise ValueError("select= returns one position; it cannot be combined with "
                             "output_hidden_states=True.")
        if not -length <= select < length:
            raise ValueError(f"select={select} is outside the {length} positions.")
        select %= length
    attn_mask = stack.mask_for(padding_mask, length, x.device, past, x.dtype)  # (B|1, 1|H, T|1, past + T)
    rope = stack.rope_for(position_ids, length, x, past)                       # (cos, sin) or None
    packing = None
    # nothing to unpad without padding; packed rows carry no positions, bias or memory
    plain_rows = rope is None and memory is None and not stack.config.relative_attention_buckets
    if unpad and attn_mask is not None and plain_rows:
        packing = Packing(padding_mask, batch, length, stack.config.causal)
        x = packing.unpad(x)  # (N, C)
    hidden = [x]
    last = len(stack.layers) - 1
    for index, layer in enumerate(stack.layers):
        x = stack.run_block(layer, x, attn_mask, rope, packing=packing, cache=cache,
                            select=select if index == last else None, memory=memory,
                            memory_mask=memory_mask)  # (B, T, C) | (N, C) | last: (B, C)
        hidden.append(x)
    if cache is not None:
        cache.advance(length)
    if select is not None and not stack.layers:
        x = take_position(x, select, packing)  # (B, C)
    x = stack.final_norm(x)
    if packing is not None and select is None:
        x = packing.pad(x)  # (B, T, C), zeros at padding
        hidden = [packing.pad(h) for h in hidden] if output_hidden_states else hidden
    return (x, hidden) if output_hidden_states else x


# -- select: one position's output ----------------------------------------------------------
def take_position(x: torch.Tensor, position: int, packing: Packing | None = None) -> torch.Tensor:
    """(B, T, C) -> (B, C), every sequence's token at ``position`` (packed (N, C) rows too)."""
    return x[:, position] if packing is None else x.index_select(0, packing.rows_at(position))


def select_query(q: torch.Tensor, attn_mask: torch.Tensor | None, is_causal: bool,
                 position: int) -> tuple[torch.Tensor, torch.Tensor | None, bool]:
    """Keep only the query at ``position``: q (B, H, T, D) -> (B, H, 1, D), the attention
    mask cut to that query's row. SDPA's ``is_causal`` would align the single query with
    key 0, so causality becomes an explicit mask over the T keys."""
    length = q.shape[2]
    q = q[:, :, position:position + 1]
    if attn_mask is not None and attn_mask.shape[-2] > 1:
        attn_mask = attn_mask[:, :, position:position + 1]  # (B, 1, 1, T)
    if is_causal:
        attn_mask = (torch.arange(length, device=q.device) <= position)[None, None, None, :]
        is_causal = False
    return q, attn_mask, is_causal


def greedy_length_groups(lengths: Sequence[int], too_costly: Callable[[int, int, int, int], bool]
                         ) -> list[list[int]]:
    """Positions of ``lengths`` (sorted longest first) cut into runs of consecutive positions,
    each to be padded to its first (longest) length: a run takes the next position unless
    ``too_costly(count, longest, tokens, squares)`` says the run with it would cost too much
    (``count`` positions, the run's longest length, the sum of their lengths and of their
    squares, the next one included). Padded attention here and ONNX Runtime's length groups
    (:meth:`hub.ort_backend.OrtModule.length_groups`) cut with their own cost rules."""
    groups: list[list[int]] = []
    current: list[int] = []
    tokens = squares = 0
    for i, n in enumerate(lengths):
        if current and too_costly(len(current) + 1, lengths[current[0]], tokens + n, squares + n * n):
            groups.append(current)
            current, tokens, squares = [], 0, 0
        current.append(i)
        tokens += n
        squares += n * n
    if current:
        groups.append(current)
    return groups


# -- unpad: packed real tokens -----------------------------------------------------------------
class Packing:
    """Where the real tokens of a padded (B, T) batch sit once packed as (N, C) rows.

    Attention on packed rows runs per group of sequences of similar length, each group
    padded only to its own longest sequence (:meth:`attention_groups`), so neither the
    projections nor attention pay for the batch's padding.
    """

    #: a group may cost at most this much more attention work than its sequences alone
    GROUP_SLACK = 1.25

    def __init__(self, padding_mask: torch.Tensor, batch: int, length: int, causal: bool = False) -> None:
        self.batch, self.length, self.causal = batch, length, causal
        real = padding_mask.reshape(batch, length).bool()
        self.index = real.reshape(-1).nonzero().squeeze(1)  # (N,) flat b * T + t, sorted
        self.lengths = real.sum(1).tolist()
        self.offsets = [0]
        for n in self.lengths:
            self.offsets.append(self.offsets[-1] + n)
        self._rows: dict[int, torch.Tensor] = {}
        self._groups: dict[int | None, list[_Group]] = {}

    def unpad(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, ...) -> (N, ...), the real tokens in row-major order."""
        return x.reshape(self.batch * self.length, *x.shape[2:]).index_select(0, self.index)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """(N, ...) -> (B, T, ...), zeros at padding."""
        out = x.new_zeros(self.batch * self.length, *x.shape[1:])
        out.index_copy_(0, self.index, x)
        return out.view(self.batch, self.length, *x.shape[1:])

    def rows_at(self, position: int) -> torch.Tensor:
        """(B,) packed rows of each sequence's token at ``position``."""
        if position not in self._rows:
            flat = torch.arange(self.batch, device=self.index.device) * self.length + position
            rows = torch.searchsorted(self.index, flat).clamp(max=max(self.index.numel() - 1, 0))
            if self.index.numel() == 0 or not bool((self.index[rows] == flat).all()):
                raise ValueError(f"position {position} is padding in some sequence; "
                                 "select= needs a real token there in every sequence.")
            self._rows[position] = rows
        return self._rows[position]

    def attention_groups(self, select: int | None = None) -> list[_Group]:
        """Sequences grouped by length (greedy, longest first) for padded attention."""
        if select not in self._groups:
            device = self.index.device
            order = sorted((b for b in range(self.batch) if self.lengths[b]), key=lambda b: -self.lengths[b])
            queries = None
            if select is not None:  # the query's place among each sequence's real tokens
                queries = (self.rows_at(select) - torch.tensor(self.offsets[:-1], device=device)).tolist()
            cuts = greedy_length_groups([self.lengths[b] for b in order],
                                        lambda count, longest, tokens, squares:
                                        count * longest ** 2 > self.GROUP_SLACK * squares)
            self._groups[select] = [self._group([order[i] for i in members], queries, device) for members in cuts]
        return self._groups[select]

    def _group(self, members: list[int], queries: list[int] | None, device: torch.device) -> _Group:
        longest = self.lengths[members[0]]
        gather, dest = [], []
        for b in members:
            start, n = self.offsets[b], self.lengths[b]
            gather.extend(range(start, start + n))
            gather.extend([start] * (longest - n))  # any real row: masked out as a key
            dest.extend(range(start, start + n))
        lengths = torch.tensor([self.lengths[b] for b in members], device=device)
        keys = torch.arange(longest, device=device)
        mask = None
        query = None
        if queries is not None:
            query = torch.tensor([queries[b] for b in members], device=device)
            mask = (keys[None, :] < lengths[:, None])
            if self.causal:
                mask = mask & (keys[None, :] <= query[:, None])
            mask = mask[:, None, None, :]  # (G, 1, 1, L)
        elif any(self.lengths[b] != longest for b in members):
            mask = (keys[None, :] < lengths[:, None])[:, None, None, :]
            if self.causal:
                mask = mask & torch.ones(longest, longest, dtype=torch.bool, device=device).tril()
        valid = None if all(self.lengths[b] == longest for b in members) else \
            (keys[None, :] < lengths[:, None]).reshape(-1).nonzero().squeeze(1)
        return _Group(
            size=len(members), length=longest,
            gather=torch.tensor(gather, device=device), dest=torch.tensor(dest, device=device),
            valid=valid, mask=mask, causal=self.causal and mask is None,
            members=torch.tensor(members, device=device), query=query,
        )


@dataclass
class _Group:
    size: int                    # G sequences
    length: int                  # L, the longest of them
    gather: torch.Tensor         # (G * L,) packed rows in padded order (padding repeats a row)
    dest: torch.Tensor           # packed rows of the real tokens, in padded order
    valid: torch.Tensor | None   # positions in (G * L) that are real tokens; None: all are
    mask: torch.Tensor | None    # (G, 1, 1|L, L) bool, True = attend; None: no masking
    causal: bool                 # is_causal for SDPA (only when mask is None)
    members: torch.Tensor        # (G,) batch indices
    query: torch.Tensor | None   # (G,) query position per sequence with select=, else None


class _Attention(Protocol):
    """What :func:`packed_attention` needs of a :class:`~hub.backbone.attention.SelfAttention`."""

    num_heads: int
    head_dim: int

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None,
               is_causal: bool) -> torch.Tensor: ...


def packed_attention(attention: _Attention, qkv: torch.Tensor, packing: Packing,
                     select: int | None = None) -> torch.Tensor:
    """(N, 3C) packed q|k|v projections -> (N, C) attention outputs, or (B, C) with
    ``select``: one SDPA call per group of similar-length sequences."""
    heads, head_dim = attention.num_heads, attention.head_dim
    channels = heads * head_dim
    out = qkv.new_empty(packing.batch if select is not None else qkv.shape[0], channels)
    for group in packing.attention_groups(select):
        size, length = group.size, group.length
        q, k, v = qkv.index_select(0, group.gather).view(
            size, length, 3, heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)  # each (G, H, L, D)
        if select is not None:
            q = q[torch.arange(size, device=q.device), :, group.query].unsqueeze(2)  # (G, H, 1, D)
        y = attention.attend(q, k, v, group.mask, group.causal)  # (G, H, L|1, D)
        if select is not None:
            out.index_copy_(0, group.members, y.reshape(size, channels))
            continue
        y = y.transpose(1, 2).reshape(size * length, channels)  # (G * L, C)
        if group.valid is not None:
            y = y.index_select(0, group.valid)
        out.index_copy_(0, group.dest, y)
    return out
