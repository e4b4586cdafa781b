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
    """Everything the Trainer needs to know; ``fine_tune(**kwargs)`` / ``pretrain(**kwargs)``
    and a config's ``training:`` section fill it in (checked at construction).

    Args:
        epochs: passes over the training data (may be fractional).
        max_steps: optimizer steps to take; overrides ``epochs``.
        batch_size: examples per micro-batch and process (the global batch is this x
            processes x ``gradient_accumulation_steps``).
        eval_batch_size: examples per evaluation batch and process.
        gradient_accumulation_steps: micro-batches per optimizer step.
        learning_rate: AdamW's peak learning rate.
        weight_decay: AdamW's decoupled decay (never on norms, biases or embeddings).
        warmup_ratio: share of the steps with a linear warm-up, in [0, 1).
        schedule: the learning rate after warm-up: ``"linear"`` or ``"cosine"`` decay, or ``"constant"``.
        max_grad_norm: clip the gradients' global norm to this (None: no clipping).
        seed: seeds the weights' random draws, dropout and the data order.
        group_by_length: batch examples of similar length (less padding), still shuffled.
        eval_steps: evaluate every N optimizer steps (and at the last); None: at each epoch's end.
        early_stopping_patience: stop after this many evaluations without improvement (None: never).
        metric_for_best: the evaluation metric that picks the best weights: ``"loss"`` or a
            key ``compute_metrics`` returns.
        greater_is_better: whether a larger ``metric_for_best`` is better; None: False for
            ``"loss"``, True otherwise.
        output_dir: where logs (``metrics.jsonl``), checkpoints and the best model go (None: nowhere).
        save_checkpoints: with ``output_dir``, write checkpoints under ``output_dir/checkpoints``.
        save_optimizer: whether checkpoints hold the optimizer, scheduler and scaler states that
            an exact resume needs (for AdamW, twice the weights' size). None (default): only when
            resuming is asked for, i.e. ``save_steps`` or ``resume_from_checkpoint`` is given;
            otherwise a checkpoint holds the weights, random-generator states and
            ``trainer_state.json``, and resuming from it is refused with a message saying so.
        save_steps: checkpoint every N optimizer steps; None: at each epoch's end.
        save_total_limit: keep the last K checkpoints (the best one is kept as well).
        resume_from_checkpoint: a checkpoint folder, or True: the latest under ``output_dir``.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; None: CUDA when available, else CPU.
        bf16: bf16 autocast; None: on CUDA, off on CPU.
        fp16: fp16 autocast with a gradient scaler (CUDA only).
        tf32: TF32 matmuls on CUDA (fp32 weights, faster matmuls).
        compile: ``torch.compile`` the model.
        gradient_checkpointing: recompute activations in backward to save memory.
        distributed: ``"auto"`` (DDP under ``torchrun``), ``"ddp"``, ``"fsdp"`` or ``"none"``.
        num_workers: DataLoader worker processes.
        progress: show a tqdm bar over the steps.
        log_every: optimizer steps between training-loss records.
        tensorboard: log to ``output_dir/tensorboard``; None: when tensorboard is installed.
        report_to: where the run's records go, transformers' names: a list of ``"jsonl"``
            (``output_dir/metrics.jsonl``), ``"tensorboard"`` (``output_dir/tensorboard``),
            ``"wandb"`` (Weights & Biases: ``WANDB_PROJECT``, ``WANDB_MODE=offline``, ...),
            ``"mlflow"`` (``MLFLOW_TRACKING_URI``, ``MLFLOW_EXPERIMENT_NAME``), or ``"all"``
            (every one installed) or ``"none"``; one name may be given as a string. None (default):
            JSONL, plus TensorBoard when installed (``tensorboard=`` decides it). A tracker whose
            library is missing is a MissingExtraError naming the extra, before any work.
        run_name: the run's name for the trackers (wandb, MLflow; default: theirs).
        peak_tflops: the device's peak, for the ``mfu`` log (default: from the GPU's name).

    Raises:
        ConfigError: a value of the wrong type, not finite, or out of range (naming the key).
    """

    # -- schedule ------------------------------------------------------------------------
    epochs: float = 3.0
    max_steps: int | None = None
    batch_size: int = 16
    eval_batch_size: int = 64
    gradient_accumulation_steps: int = 1
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    schedule: Literal["linear", "cosine", "constant"] = "linear"
    max_grad_norm: float | None = 1.0
    seed: int = 0
    group_by_length: bool = False
    # -- evaluation, best model, early stopping ----------------------------------------
    eval_steps: int | None = None
    early_stopping_patience: int | None = None
    metric_for_best: str = "loss"
    greater_is_better: bool | None = None
    # -- output, checkpoints, resume ----------------------------------------------------
    output_dir: str | None = None
    save_checkpoints: bool = True
    save_optimizer: bool | None = None
    save_steps: int | None = None
    save_total_limit: int = 2
    resume_from_checkpoint: str | bool | None = None
    # -- hardware and precision ----------------------------------------------------------
    device: str | None = None
    bf16: bool | None = None
    fp16: bool = False
    tf32: bool = True
    compile: bool = False
    gradient_checkpointing: bool = False
    distributed: Literal["auto", "ddp", "fsdp", "none"] = "auto"
    num_workers: int = 0
    # -- logging -------------------------------------------------------------------------
    progress: bool = True
    log_every: int = 10
    tensorboard: bool | None = None
    report_to: str | list[str] | None = None
    run_name: str | None = None
    peak_tflops: float | None = None

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
        self.report_to = _check_report_to(self.report_to, self.tensorboard)

    @property
    def keeps_optimizer(self) -> bool:
        """Whether checkpoints hold the optimizer state (see ``save_optimizer``)."""
        if self.save_optimizer is not None:
            return self.save_optimizer
        return self.save_steps is not None or self.resume_from_checkpoint not in (None, False)

    def trackers(self) -> list[str]:
        """The trackers this run writes to, resolved: ``report_to`` (``"all"`` is every installed
        one), or by default JSONL plus TensorBoard when installed (``tensorboard=`` decides)."""
        return resolve_trackers(self.report_to, self.tensorboard)

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> TrainingArguments:
        """Build from keyword arguments, naming any unknown key and its closest match.

        Args:
            **kwargs: field names and values (see the class's Args).

        Returns:
            The checked arguments.

        Raises:
            ConfigError: an unknown key (with its close matches) or a bad value.
        """
        check_keys(kwargs, known=[f.name for f in fields(cls)], what="training argument")
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: ``report_to`` names and the library (and extra) each needs; transformers' names
TRACKERS = {"jsonl": (None, None), "tensorboard": ("tensorboard", "tensorboard"), "wandb": ("wandb", "wandb"),
            "mlflow": ("mlflow", "mlflow")}


def _installed(module: str | None) -> bool:
    import importlib.util

    return module is None or importlib.util.find_spec(module) is not None


def _check_report_to(value: Any, tensorboard: bool | None) -> list[str] | None:
    """``report_to`` as a list of known names ("all"/"none" kept), each one's library installed."""
    if value is None:
        return None
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"training argument 'report_to' must be a tracker name or a list of them, got {value!r}.")
    names = [n.strip().lower() for n in names]
    known = [*TRACKERS, "all", "none"]
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=2)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ConfigError(f"report_to: unknown tracker {name!r}.{hint} Known: {', '.join(known)}.")
    if ("all" in names or "none" in names) and len(names) > 1:
        raise ConfigError(f"report_to: 'all' and 'none' stand alone, got {names}.")
    if tensorboard is False and "tensorboard" in names:
        raise ConfigError("report_to names 'tensorboard' but tensorboard=False; drop one of them.")
    for name in names:
        module, extra = TRACKERS.get(name, (None, None))
        if not _installed(module):
            from hub.errors import MissingExtraError

            raise MissingExtraError(f"report_to={name!r} needs the {module} library, which is not installed: "
                                    f"pip install 'hub-sdk[{extra}]'.")
    return names


def resolve_trackers(report_to: list[str] | None, tensorboard: bool | None) -> list[str]:
    """The tracker names a run writes to (see :meth:`TrainingArguments.trackers`)."""
    if report_to is None:
        wants_tb = tensorboard if tensorboard is not None else _installed("tensorboard")
        return ["jsonl", "tensorboard"] if wants_tb else ["jsonl"]
    if report_to == ["none"]:
        return []
    if report_to == ["all"]:
        return [name for name, (module, _) in TRACKERS.items()
                if _installed(module) and not (name == "tensorboard" and tensorboard is False)]
    return list(dict.fromkeys(report_to))


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
    if origin is list:
        return isinstance(value, list) and all(_matches(v, typing.get_args(hint)[0]) for v in value)
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
    if origin is list:
        inner = typing.get_args(hint)[0]
        return "a list of strings" if inner is str else f"a list of ({_describe(inner)})"
    if hint is type(None):
        return "null"
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))


_HINTS = typing.get_type_hints(TrainingArguments)
_POSITIVE = ("epochs", "max_steps", "batch_size", "eval_batch_size", "gradient_accumulation_steps",
             "learning_rate", "eval_steps", "save_steps", "log_every", "peak_tflops", "early_stopping_patience")
_NON_NEGATIVE = ("max_grad_norm", "seed")
_MAX_INT = 2**63 - 1  # torch's generators and step counters are int64
