"""Training arguments, validated before any work starts.

The same dataclass is filled from keyword arguments (``fine_tune(epochs=3)``), from the
``training:`` section of a ``hub train`` config file, and from command-line flags, so
every source gets the same checks: an unknown key names its closest matches, a value of
the wrong type names the key and the type it needs, and numbers must be finite (``nan``
passes every comparison, so ``--learning-rate nan`` would train to NaN weights) and in range.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, fields
from typing import Any, Literal

from hub.errors import ConfigError


@dataclass
class TrainingArguments:
    """Everything the Trainer needs to know; ``fine_tune(**kwargs)`` fills it in."""

    # -- schedule ------------------------------------------------------------------------
    epochs: float = 3.0
    max_steps: int | None = None  # optimizer steps; overrides epochs
    batch_size: int = 16  # per process (the global batch is this x processes x accumulation)
    eval_batch_size: int = 64
    gradient_accumulation_steps: int = 1
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    schedule: Literal["linear", "cosine", "constant"] = "linear"
    max_grad_norm: float | None = 1.0
    seed: int = 0
    group_by_length: bool = False  # batches of similar lengths (less padding), still shuffled
    # -- evaluation, best model, early stopping ----------------------------------------
    eval_steps: int | None = None  # evaluate every N optimizer steps; None: at each epoch's end
    early_stopping_patience: int | None = None  # evaluations without improvement
    metric_for_best: str = "loss"
    greater_is_better: bool | None = None  # None: False for "loss", True otherwise
    # -- output, checkpoints, resume ----------------------------------------------------
    output_dir: str | None = None
    save_checkpoints: bool = True  # with output_dir: resumable checkpoints under output_dir/checkpoints
    save_steps: int | None = None  # checkpoint every N optimizer steps; None: at each epoch's end
    save_total_limit: int = 2  # keep the last K checkpoints (the best one is kept as well)
    resume_from_checkpoint: str | bool | None = None  # a checkpoint folder, or True: the latest one
    # -- hardware and precision ----------------------------------------------------------
    device: str | None = None  # None: CUDA when available, else CPU
    bf16: bool | None = None  # None: bf16 autocast on CUDA, fp32 on CPU
    fp16: bool = False  # fp16 autocast with a gradient scaler (CUDA only)
    tf32: bool = True  # TF32 matmuls on CUDA (fp32 weights, faster matmuls)
    compile: bool = False  # torch.compile the model
    gradient_checkpointing: bool = False  # recompute activations in backward to save memory
    distributed: Literal["auto", "ddp", "fsdp", "none"] = "auto"  # auto: DDP under torchrun
    num_workers: int = 0  # DataLoader worker processes
    # -- logging -------------------------------------------------------------------------
    progress: bool = True
    log_every: int = 10  # optimizer steps between log records
    tensorboard: bool | None = None  # None: when tensorboard is installed and output_dir is set
    peak_tflops: float | None = None  # device peak for model-FLOPs utilisation (default: from the GPU name)

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_type(f.name, getattr(self, f.name), _HINTS[f.name])
        for f in fields(self):  # NaN passes every comparison and inf overflows step counts: refuse both
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"training argument {f.name!r} must be a finite number, got {value!r}.")
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _MAX_INT:
                raise ConfigError(f"training argument {f.name!r} is out of range, got {value!r} "
                                  f"(at most {_MAX_INT:,}).")
        for name in _POSITIVE:
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"training argument {name!r} must be positive, got {value!r}.")
        for name in _NON_NEGATIVE:
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigError(f"training argument {name!r} must be >= 0, got {value!r}.")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay!r}.")
        if self.save_total_limit < 1:
            raise ConfigError("save_total_limit must be at least 1 (set save_checkpoints=False to write "
                              f"none), got {self.save_total_limit!r}.")
        if self.num_workers < 0:
            raise ConfigError(f"num_workers must be >= 0, got {self.num_workers!r}.")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio!r}.")
        if self.fp16 and self.bf16:
            raise ConfigError("fp16 and bf16 are exclusive: choose one mixed-precision mode.")
        if self.greater_is_better is None:
            self.greater_is_better = self.metric_for_best != "loss"

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> TrainingArguments:
        """Build from keyword arguments, naming any unknown key and its closest match."""
        check_keys(kwargs, known=[f.name for f in fields(cls)], what="training argument")
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_keys(given: dict[str, Any], *, known: list[str], what: str) -> None:
    """Raise ConfigError for the first key of ``given`` not in ``known``, with close matches."""
    for key in given:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ConfigError(f"Unknown {what} {key!r}.{hint} Known: {', '.join(known)}.")


def _check_type(name: str, value: Any, hint: Any) -> None:
    if not _matches(value, hint):
        raise ConfigError(f"training argument {name!r} must be {_describe(hint)}, got {value!r} "
                          f"({type(value).__name__}).")


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if origin is Literal:
        return value in typing.get_args(hint)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in typing.get_args(hint))
    if origin is Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(hint)))
    if hint is type(None):
        return "null"
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))


_HINTS = typing.get_type_hints(TrainingArguments)
_POSITIVE = ("epochs", "max_steps", "batch_size", "eval_batch_size", "gradient_accumulation_steps",
             "learning_rate", "eval_steps", "save_steps", "log_every", "peak_tflops", "early_stopping_patience")
_NON_NEGATIVE = ("max_grad_norm", "seed")
_MAX_INT = 2**63 - 1  # torch's generators and step counters are int64
