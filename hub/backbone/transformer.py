"""The one Transformer stack every Hub model is built on.

A block is attention + feed-forward with residual connections, normalised either
after each residual add (post-norm, BERT) or before each sub-layer (pre-norm,
GPT-2/ViT; the stack then ends with a final norm). Encoder and decoder differ only by
``config.causal``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.utils.checkpoint
from torch import nn

from hub.backbone.attention import SelfAttention
from hub.backbone.cache import KVCache
from hub.backbone.rotary import rotary_tables
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

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, *,
                packing: Packing | None = None, select: int | None = None,
                cache: KVCache | None = None, rope: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> torch.Tensor:
        """x: (B, T, C) or, with ``packing``, (N, C); with ``select`` the result is (B, C):
        the block's output at that position only (the other positions feed its keys/values)."""
        if select is None:
            if self.pre_norm:
                x = x + self.dropout(self.attn(self.norm1(x), attn_mask, packing=packing, cache=cache, rope=rope))
                return x + self.dropout(self.mlp(self.norm2(x)))
            x = self.norm1(x + self.dropout(self.attn(x, attn_mask, packing=packing, cache=cache, rope=rope)))
            return self.norm2(x + self.dropout(self.mlp(x)))
        residual = x[:, select] if packing is None else x.index_select(0, packing.rows_at(select))
        if self.pre_norm:
            x = residual + self.dropout(self.attn(self.norm1(x), attn_mask, packing=packing, select=select,
                                                  rope=rope))
            return x + self.dropout(self.mlp(self.norm2(x)))
        x = self.norm1(residual + self.dropout(self.attn(x, attn_mask, packing=packing, select=select)))
        return self.norm2(x + self.dropout(self.mlp(x)))


class Transformer(nn.Module):
    """A stack of blocks; input and output are (B, T, C) hidden states."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.layers = nn.ModuleList(TransformerBlock(config) for _ in range(config.num_layers))
        for index, layer in enumerate(self.layers):
            layer.attn.layer_index = index
        self.final_norm = make_norm(config) if config.norm_position == "pre" else nn.Identity()

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None,
                output_hidden_states: bool = False, *, unpad: bool = False,
                select: int | None = None, cache: KVCache | None = None,
                position_ids: torch.Tensor | None = None
                ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """``padding_mask``: (B, T), 1/True for real tokens, 0/False for padding; with a
        ``cache`` it covers the cached tokens too, (B, past + T). The cache receives this
        call's keys and values and advances by T. ``position_ids`` (B, T) feed rotary
        positions (default: past .. past + T - 1).

        Two inference speed-ups, both off by default and both exact (same arithmetic,
        up to float rounding):

        * ``unpad=True``: the projections, feed-forward and norms run on the real tokens
          only, packed as (N, C); only attention sees the padded (B, T) layout. Padded
          batches then cost what their real tokens cost. Outputs at padding positions are
          zeros (instead of values nothing should read).
        * ``select=i``: return only position ``i``'s (B, C) final hidden state, e.g. the
          [CLS] token a BERT classifier reads; the last layer then computes that one query
          (its keys and values still come from every token). Position ``i`` must be a
          real token in every sequence.
        """
        batch, length, channels = x.shape
        past = cache.length if cache is not None else 0
        if cache is not None and (unpad or select is not None):
            raise ValueError("a KV cache cannot be combined with unpad= or select=.")
        attn_mask = build_attention_mask(padding_mask, length, self.config.causal, x.device, past=past)
        if select is not None:
            if output_hidden_states:
                raise ValueError("select= returns one position; it cannot be combined with "
                                 "output_hidden_states=True.")
            if not -length <= select < length:
                raise ValueError(f"select={select} is outside the {length} positions.")
            select %= length
        rope = None
        if self.config.rotary_dim:
            if position_ids is None:
                position_ids = torch.arange(past, past + length, device=x.device)
            rope = rotary_tables(position_ids, self.config.rotary_dim, self.config.rotary_base, x.dtype)
        packing = None
        if unpad and attn_mask is not None and rope is None:  # packed rows carry no rotary tables
            packing = Packing(padding_mask, batch, length, self.config.causal)
            x = packing.unpad(x)  # (N, C)
        hidden = [x]
        for index, layer in enumerate(self.layers):
            last = select is not None and index == len(self.layers) - 1
            if self.config.gradient_checkpointing and self.training and torch.is_grad_enabled():
                x = torch.utils.checkpoint.checkpoint(layer, x, attn_mask, use_reentrant=False, rope=rope)
            else:
                x = layer(x, attn_mask, packing=packing, select=select if last else None, cache=cache,
                          rope=rope)
            hidden.append(x)
        if cache is not None:
            cache.advance(length)
        if select is not None and not self.layers:
            x = x[:, select] if packing is None else x.index_select(0, packing.rows_at(select))
        x = self.final_norm(x)
        if packing is not None and select is None:
            x = packing.pad(x)
            hidden = [packing.pad(h) for h in hidden] if output_hidden_states else hidden
        return (x, hidden) if output_hidden_states else x


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

    def attention_groups(self, select: int | None = None) -> list["_Group"]:
        """Sequences grouped by length (greedy, longest first) for padded attention."""
        if select not in self._groups:
            device = self.index.device
            order = sorted((b for b in range(self.batch) if self.lengths[b]), key=lambda b: -self.lengths[b])
            queries = None
            if select is not None:  # the query's place among each sequence's real tokens
                queries = (self.rows_at(select) - torch.tensor(self.offsets[:-1], device=device)).tolist()
            groups, current, squares = [], [], 0
            for b in order:
                n = self.lengths[b]
                if current and (len(current) + 1) * self.lengths[current[0]] ** 2 > \
                        self.GROUP_SLACK * (squares + n * n):
                    groups.append(current)
                    current, squares = [], 0
                current.append(b)
                squares += n * n
            if current:
                groups.append(current)
            self._groups[select] = [self._group(members, queries, device) for members in groups]
        return self._groups[select]

    def _group(self, members: list[int], queries: list[int] | None, device: torch.device) -> "_Group":
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


def build_attention_mask(padding_mask: torch.Tensor | None, length: int, causal: bool,
                         device: torch.device, past: int = 0) -> torch.Tensor | None:
    """(B, past + T) key padding mask -> (B, 1, T|1, past + T) boolean SDPA mask (True =
    attend) for T new queries after ``past`` cached tokens.

    Returns None when SDPA needs no mask (nothing padded; causal then by ``is_causal``, or
    a single new token that may see everything before it). A causal query always sees
    itself, so a left-padded row never has every key masked (which would give NaN).
    """
    unpadded = padding_mask is None or bool(padding_mask.all())
    if unpadded and (past == 0 or not causal or length == 1):
        return None
    total = past + length
    if padding_mask is None:
        padding_mask = torch.ones(1, total, dtype=torch.bool, device=device)
    mask = padding_mask.bool()[:, None, None, :]  # (B, 1, 1, past + T)
    if causal:
        queries = torch.arange(past, total, device=device)[:, None]
        keys = torch.arange(total, device=device)[None, :]
        mask = (mask & (keys <= queries)) | (keys == queries)  # (B, 1, T, past + T)
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
