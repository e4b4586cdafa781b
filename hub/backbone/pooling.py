"""One pooling function for every family: (B, T, C) hidden states -> (B, C).

Text classification and embedding, audio classification and the ViT's ``global_pool`` all
reduce a sequence the same few ways; they call :func:`pool` so that a padding rule (padded
positions never count) is written, and tested, once.
"""

from __future__ import annotations

import torch

POOLINGS = ("mean", "cls", "max", "avgmax")


def pool(hidden: torch.Tensor, padding_mask: torch.Tensor | None = None, how: str = "mean", *,
         skip: int = 0) -> torch.Tensor:
    """(B, T, C) -> (B, C).

    Args:
        hidden: the final hidden states, (B, T, C).
        padding_mask: (B, T), true (or 1) at real positions; ``None`` when every position is real.
        how: ``"cls"`` the first token; ``"mean"`` the mean over the real positions; ``"max"``
            their elementwise maximum; ``"avgmax"`` the average of the two (timm's ``avgmax``).
        skip: leading positions left out of ``mean`` / ``max`` / ``avgmax`` (a ViT's class and
            register tokens); ``cls`` ignores it.

    Returns:
        (B, C) pooled states. A row whose mask is all padding pools to zeros for ``mean``
        (the divisor is clamped) and to ``-inf`` for ``max``.
    """
    if how == "cls":
        return hidden[:, 0]
    if how not in POOLINGS:
        raise ValueError(f"unknown pooling {how!r}; use one of {POOLINGS}")
    if skip:
        hidden = hidden[:, skip:]
        padding_mask = padding_mask[:, skip:] if padding_mask is not None else None
    if how == "avgmax":
        return 0.5 * (pool(hidden, padding_mask, "max") + pool(hidden, padding_mask, "mean"))
    if padding_mask is None:
        return hidden.mean(1) if how == "mean" else hidden.amax(1)
    if how == "max":
        return hidden.masked_fill(~padding_mask.bool()[..., None], float("-inf")).amax(1)
    weights = padding_mask.to(hidden.dtype)[..., None]  # (B, T, 1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
