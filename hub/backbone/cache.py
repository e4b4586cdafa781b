"""A preallocated key/value cache for incremental (token-by-token) decoding."""

from __future__ import annotations

import torch


class KVCache:
    """Keys and values of every layer, (B, H, max_length, D) each, filled left to right.

    Layer ``i`` calls :meth:`update` with the new tokens' keys and values and gets back
    everything cached so far; once every layer has seen a step, :meth:`advance` moves the
    write position (the Transformer does this).
    """

    def __init__(self, num_layers: int, batch: int, num_heads: int, max_length: int, head_dim: int, *,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        shape = (batch, num_heads, max_length, head_dim)
        self.keys = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(num_layers)]
        self.values = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(num_layers)]
        self.max_length = max_length
        self.length = 0  # tokens already cached

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
