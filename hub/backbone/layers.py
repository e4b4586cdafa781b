"""Small building blocks: feed-forward network, norms, activations."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hub.backbone.config import TransformerConfig


def activation_fn(name: str):
    if name in ("silu", "swiglu"):
        return F.silu
    if name == "gelu":
        return F.gelu
    if name == "gelu_tanh":
        return lambda x: F.gelu(x, approximate="tanh")
    if name == "relu":
        return F.relu
    raise ValueError(f"unknown activation {name!r}")


def make_norm(config: TransformerConfig, size: int | None = None) -> nn.Module:
    if config.norm == "rmsnorm":
        return nn.RMSNorm(size or config.hidden_size, eps=config.norm_eps)
    return nn.LayerNorm(size or config.hidden_size, eps=config.norm_eps)


class FeedForward(nn.Module):
    """Position-wise MLP: Linear -> activation -> Linear.

    Gated (``activation="swiglu"``): ``fc2(silu(gate(x)) * fc1(x))``, as LLaMA does.
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        bias = config.mlp_bias
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size, bias=bias)
        self.gate = (nn.Linear(config.hidden_size, config.intermediate_size, bias=bias)
                     if config.activation == "swiglu" else None)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size, bias=bias)
        self.act = activation_fn(config.activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gate is not None:
            return self.fc2(self.act(self.gate(x)) * self.fc1(x))
        return self.fc2(self.act(self.fc1(x)))
