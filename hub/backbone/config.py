"""Configuration of the shared Transformer stack."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from hub.errors import ConfigError

Activation = Literal["gelu", "gelu_tanh", "relu", "silu", "swiglu"]
NormPosition = Literal["pre", "post"]
Norm = Literal["layernorm", "rmsnorm"]
ACTIVATIONS = ("gelu", "gelu_tanh", "relu", "silu", "swiglu")
NORMS = ("layernorm", "rmsnorm")


@dataclass
class TransformerConfig:
    """Shape and flavour of a Transformer stack; every modality uses the same one.

    ``norm_position="post"`` is BERT's layout (normalise after each residual add);
    ``"pre"`` is GPT-2/ViT's (normalise before each sub-layer, plus a final norm).
    """

    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    activation: Activation = "gelu"
    norm: Norm = "layernorm"
    norm_eps: float = 1e-12
    norm_position: NormPosition = "post"
    qkv_bias: bool = True
    out_bias: bool = True
    mlp_bias: bool = True
    dropout: float = 0.1
    attention_dropout: float = 0.1
    causal: bool = False
    rotary_dim: int = 0  # channels per head rotated by RoPE; 0 = no rotary positions
    rotary_base: float = 10000.0
    gradient_checkpointing: bool = False  # recompute blocks in backward to save memory

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ConfigError(f"hidden_size ({self.hidden_size}) must be divisible by "
                              f"num_heads ({self.num_heads}).")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"activation {self.activation!r} is not one of {', '.join(ACTIVATIONS)}.")
        if self.rotary_dim and (self.rotary_dim % 2 or self.rotary_dim > self.head_dim):
            raise ConfigError(f"rotary_dim ({self.rotary_dim}) must be even and at most the head "
                              f"dimension ({self.head_dim}).")
        if self.norm not in NORMS:
            raise ConfigError(f"norm {self.norm!r} is not one of {', '.join(NORMS)}.")
        if self.norm_position not in ("pre", "post"):
            raise ConfigError(f"norm_position must be 'pre' or 'post', got {self.norm_position!r}.")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TransformerConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ConfigError(f"Unknown backbone config key(s) {sorted(unknown)}; "
                              f"known: {sorted(names)}.")
        return cls(**data)
