"""Training arguments, validated before any work starts."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, fields
from typing import Any, Literal

from hub.errors import ConfigError


@dataclass
class TrainingArguments:
    """Everything the Trainer needs to know; ``fine_tune(**kwargs)`` fills it in."""

    epochs: float = 3.0
    batch_size: int = 16
    eval_batch_size: int = 64
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    schedule: Literal["linear", "cosine", "constant"] = "linear"
    max_grad_norm: float | None = 1.0
    gradient_accumulation_steps: int = 1
    max_steps: int | None = None
    seed: int = 0
    early_stopping_patience: int | None = None
    metric_for_best: str = "loss"
    greater_is_better: bool | None = None  # None: False for "loss", True otherwise
    output_dir: str | None = None
    device: str | None = None  # None: CUDA when available, else CPU
    bf16: bool | None = None  # None: bf16 autocast on CUDA, fp32 on CPU
    progress: bool = True
    log_every: int = 10

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _POSITIVE and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                        or value <= 0):
                raise ConfigError(f"training argument {f.name!r} must be a positive number, got {value!r}.")
        for name in ("batch_size", "eval_batch_size", "gradient_accumulation_steps", "log_every"):
            if not isinstance(getattr(self, name), int):
                raise ConfigError(f"training argument {name!r} must be an integer, got "
                                  f"{getattr(self, name)!r}.")
        if self.schedule not in ("linear", "cosine", "constant"):
            raise ConfigError(f"schedule must be 'linear', 'cosine' or 'constant', got {self.schedule!r}.")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio!r}.")
        if self.greater_is_better is None:
            self.greater_is_better = self.metric_for_best != "loss"

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> "TrainingArguments":
        """Build from keyword arguments, naming any unknown key and its closest match."""
        known = [f.name for f in fields(cls)]
        for key in kwargs:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=3)
                hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
                raise ConfigError(f"Unknown training argument {key!r}.{hint} Known: {', '.join(known)}.")
        return cls(**kwargs)


_POSITIVE = {"epochs", "batch_size", "eval_batch_size", "learning_rate", "gradient_accumulation_steps",
             "log_every"}
