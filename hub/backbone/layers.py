"""Small building blocks: feed-forward network, norms, activations, linear layers."""

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
    if name in ("gelu_tanh", "geglu"):
        return lambda x: F.gelu(x, approximate="tanh")
    if name == "relu":
        return F.relu
    raise ValueError(f"unknown activation {name!r}")


def make_norm(config: TransformerConfig, size: int | None = None) -> nn.Module:
    if config.norm == "rmsnorm":
        return nn.RMSNorm(size or config.hidden_size, eps=config.norm_eps)
    return nn.LayerNorm(size or config.hidden_size, eps=config.norm_eps)


# activation -> (attr, scalars, algorithm) of oneDNN's fused linear post-op
_ONEDNN_POST_OPS = {None: ("none", [], ""), "gelu": ("gelu", [], "none"),
                    "gelu_tanh": ("gelu", [], "tanh"), "relu": ("relu", [], "")}


def _onednn_linear_available() -> bool:
    try:
        return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    except (AttributeError, RuntimeError):
        return False


_ONEDNN_LINEAR = _onednn_linear_available()


def linear(layer: nn.Module, x: torch.Tensor, activation: str | None = None) -> torch.Tensor:
    """``activation(layer(x))`` (``activation`` one of :func:`activation_fn`'s names or None).

    On CPU, at inference (no autograd, no autocast) in float32 or bfloat16, a plain
    ``nn.Linear`` runs as one oneDNN call with the bias add and the activation fused;
    that is the same arithmetic, faster than MKL's GEMM + a separate bias copy and
    activation pass. Everywhere else (training, GPU, wrapped layers) it is the module call.
    """
    if (_ONEDNN_LINEAR and activation in _ONEDNN_POST_OPS and type(layer) is nn.Linear and x.device.type == "cpu"
            and x.dtype in (torch.float32, torch.bfloat16) and layer.weight.dtype == x.dtype
            and layer.weight.is_contiguous()
            and not torch.is_grad_enabled() and torch.backends.mkldnn.enabled
            and not torch.is_autocast_enabled("cpu") and not torch.compiler.is_compiling()):
        attr, scalars, algorithm = _ONEDNN_POST_OPS[activation]
        return torch.ops.mkldnn._linear_pointwise(x.contiguous(), layer.weight, layer.bias,
                                                  attr, scalars, algorithm)
    y = layer(x)
    return activation_fn(activation)(y) if activation is not None else y


#: gated feed-forwards: activation name -> the gate's activation
_GATE_ACTIVATIONS = {"swiglu": "silu", "geglu": "gelu_tanh"}


class FeedForward(nn.Module):
    """Position-wise MLP: Linear -> activation -> Linear.

    Gated (``activation="swiglu"``): ``fc2(silu(gate(x)) * fc1(x))``, as LLaMA does;
    ``"geglu"`` is the same with GELU (tanh approximation), T5 v1.1's gated-gelu.
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        bias = config.mlp_bias
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size, bias=bias)
        self.gate = (nn.Linear(config.hidden_size, config.intermediate_size, bias=bias)
                     if config.activation in _GATE_ACTIVATIONS else None)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size, bias=bias)
        self.activation = config.activation
        self.act = activation_fn(config.activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gate is not None:
            return linear(self.fc2, linear(self.gate, x, _GATE_ACTIVATIONS[self.activation]) * linear(self.fc1, x))
        return linear(self.fc2, linear(self.fc1, x, self.activation))
