"""Small building blocks: feed-forward network, norms, activations."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hub.backbone.config import TransformerConfig


def activation_fn(name: str):
    if name == "gelu":
        return F.gelu
    if name == "gelu_tanh":
        return lambda x: F.gelu(x, approximate="tanh")
    if name == "relu":
        return F.relu
    raise ValueError(f"unknown activation {name!r}")


def make_norm(config: TransformerConfig, size: int | None = None) -> nn.Module:
    return nn.LayerNorm(size or config.hidden_size, eps=config.norm_eps)


class FeedForward(nn.Module):
    """Position-wise MLP: Linear -> activation -> Linear."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.act = activation_fn(config.activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))
