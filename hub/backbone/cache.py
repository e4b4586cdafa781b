"""A preallocated key/value cache for incremental (token-by-token) decoding."""

from __future__ import annotations

from collections.abc import Callable

import torch


class KVCache:
    """Keys and values of every layer, (B, H, max_length, D) each, filled left to right.

    Layer ``i`` calls :meth:`update` with the new tokens' keys and values and gets back
    everything cached so far; once every layer has seen a step, :meth:`advance` moves the
    write position (the Transformer does this).

    A decoder with cross-attention also keeps each layer's keys and values of the encoder's
    memory (:meth:`cross_update`): computed on the first step, reused by every later one.
    Beam search reorders the rows between steps (:meth:`reorder`).
    """

    def __init__(self, num_layers: int, batch: int, num_heads: int, max_length: int, head_dim: int, *,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        shape = (batch, num_heads, max_length, head_dim)
        self.keys = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(num_layers)]
        self.values = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(num_layers)]
        self.max_length = max_length
        self.length = 0  # tokens already cached
        self.cross_keys: list[torch.Tensor | None] = [None] * num_layers    # (B, H, S, D) each, once computed
        self.cross_values: list[torch.Tensor | None] = [None] * num_layers

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store (B, H, t, D) new keys/values; return (B, H, length + t, D) of all so far."""
        end = self.length + k.shape[2]
        if end > self.max_length:
            raise ValueError(f"KV cache holds {self.max_length} positions; {end} were asked for.")
        if torch.is_grad_enabled() and (k.requires_grad or v.requires_grad):
            # autograd saved the keys/values earlier steps attended to: writing into them in
            # place would invalidate their backward, so with gradients the write is a copy
            self.keys[layer] = self.keys[layer].slice_scatter(k, dim=2, start=self.length, end=end)
            self.values[layer] = self.values[layer].slice_scatter(v, dim=2, start=self.length, end=end)
        else:
            self.keys[layer][:, :, self.length:end] = k
            self.values[layer][:, :, self.length:end] = v
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def advance(self, steps: int) -> None:
        self.length += steps

    def cross_update(self, layer: int, compute: Callable[[], tuple[torch.Tensor, torch.Tensor]]
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """The memory's (B, H, S, D) keys/values of ``layer``: ``compute()`` on the first call,
        the stored ones afterwards (a sequence's memory does not change while it decodes)."""
        if self.cross_keys[layer] is None:
            self.cross_keys[layer], self.cross_values[layer] = compute()
        return self.cross_keys[layer], self.cross_values[layer]

    def reorder(self, rows: torch.Tensor, *, cross: bool = True) -> None:
        """Keep row ``rows[i]`` as row i (beam search: each beam continues the one it came from).

        ``cross=False`` leaves the memory's keys/values alone, which is exact when rows are
        only ever exchanged among copies of one input (beams of one sequence share its memory)."""
        for layer in range(len(self.keys)):
            kept = slice(0, self.length)
            self.keys[layer][:, :, kept] = self.keys[layer][:, :, kept].index_select(0, rows)
            self.values[layer][:, :, kept] = self.values[layer][:, :, kept].index_select(0, rows)
            if cross and self.cross_keys[layer] is not None:
                self.cross_keys[layer] = self.cross_keys[layer].index_select(0, rows)
                self.cross_values[layer] = self.cross_values[layer].index_select(0, rows)
