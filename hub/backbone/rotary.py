"""Rotary position embeddings (RoPE), as GPT-NeoX and LLaMA apply them.

Positions enter attention by rotating each query/key pair of channels by an angle
proportional to the position, so attention scores depend on relative offsets. The
first ``rotary_dim`` channels of each head are rotated ("rotate half" layout); the
rest pass through unchanged.
"""

from __future__ import annotations

import torch


def rotary_tables(positions: torch.Tensor, rotary_dim: int, base: float,
                  dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) or (T,) integer positions -> cos, sin of shape (B|1, 1, T, rotary_dim)."""
    inv_freq = 1.0 / (base ** (torch.arange(0, rotary_dim, 2, device=positions.device,
                                            dtype=torch.float32) / rotary_dim))
    angles = positions.float()[..., None] * inv_freq  # (..., T, rotary_dim / 2)
    angles = torch.cat([angles, angles], dim=-1)
    if angles.ndim == 2:
        angles = angles[None]
    angles = angles[:, None]  # (B|1, 1, T, rotary_dim)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the first cos.shape[-1] channels of x (B, H, T, D)."""
    dim = cos.shape[-1]
    rotated, rest = x[..., :dim], x[..., dim:]
    first, second = rotated.chunk(2, dim=-1)
    rotated = rotated * cos + torch.cat([-second, first], dim=-1) * sin
    return torch.cat([rotated, rest], dim=-1) if rest.shape[-1] else rotated
