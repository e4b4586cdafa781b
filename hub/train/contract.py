"""What the Trainer needs from a batch and a model, and what it shows callbacks.

This is the whole contract between :class:`~hub.train.Trainer` and the code that uses it
(every plugin's ``fine_tune`` / ``pretrain``, and third parties). Nothing else about a
batch or a model is assumed.

**A batch** (:data:`Batch`) is what ``collate(examples)`` returns: a ``dict`` of tensors,
each with the examples along its first dimension. The loop moves every value to the
device, so every value must be a tensor. A few keys are read if present, none is required:

* ``labels``: its first dimension counts the examples of an evaluation batch (else the
  first tensor's does); gathered for ``compute_metrics`` (then required, see below).
* ``attention_mask`` (else ``input_ids``): counts tokens for the ``tokens_per_s`` log.
* ``input_ids``: its last dimension is the sequence length the ``mfu`` log uses.

**The model** is called as ``model(**batch)`` (the batch's keys are its keyword
arguments; a model may swallow keys it does not use with ``**_``) and returns a mapping
(:class:`ModelOutput`):

* ``"loss"``: a scalar tensor, **required** on every training and evaluation batch. The
  model computes it from whatever the batch holds (labels, masked positions, the input
  itself): the Trainer never computes a loss.
* ``"logits"``: any tensor with the examples along its first dimension, needed **only**
  when ``compute_metrics`` is given.

**Metrics.** Evaluation always reports ``loss`` (the mean of the batches' losses weighted
by their example counts). With ``compute_metrics(logits, labels)`` the Trainer also
gathers every evaluation batch's ``out["logits"]`` and ``batch["labels"]`` (concatenated
along the first dimension, across processes) and adds the metrics it returns: only then
must batches carry ``labels`` and outputs ``logits``, and their absence is a
:class:`~hub.errors.ConfigError` naming the missing key. ``metric_for_best`` names
``"loss"`` or a key ``compute_metrics`` returns. Self-supervised objectives (masked
frames, masked patches) therefore need neither.

**Callbacks** receive a :class:`TrainerView` (defined here), not the Trainer: the run's
arguments, state, model, optimizer and where the process stands, read-only. The
``TrainerState`` it shows is the live one: a callback stops the run by setting
``state.should_stop = True``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, Required, TypedDict

if TYPE_CHECKING:
    from pathlib import Path

    import torch
    from torch import nn

    from hub.train.args import TrainingArguments
    from hub.train.distributed import DistEnv
    from hub.train.state import TrainerState

#: what ``collate`` returns: tensors keyed by the model's keyword arguments, examples first
Batch = dict[str, "torch.Tensor"]

#: ``compute_metrics(logits, labels) -> {name: value}`` over the whole evaluation set
ComputeMetrics = Callable[["torch.Tensor", "torch.Tensor"], dict[str, float]]


class ModelOutput(TypedDict, total=False):
    """What ``model(**batch)`` returns (any mapping with these keys; extra keys are ignored)."""

    loss: Required[torch.Tensor]  # scalar; training and evaluation
    logits: torch.Tensor  # only read when compute_metrics is given


class TrainableModel(Protocol):
    """A module the Trainer can train: ``model(**batch) -> ModelOutput``."""

    def __call__(self, **batch: torch.Tensor) -> Mapping[str, torch.Tensor]: ...


class _ViewSource(Protocol):  # the attributes of the Trainer a view reads (kept structural: no import)
    args: TrainingArguments
    state: TrainerState
    model: nn.Module
    optimizer: torch.optim.Optimizer | None
    scheduler: Any
    device: torch.device
    env: DistEnv
    strategy: str
    last_seq_len: int
    resumed_from: Path | None


class TrainerView:
    """What a callback sees of a run: read-only properties over the live Trainer.

    Args:
        source: the Trainer (anything with its attributes; callbacks never get it itself).

    Attributes:
        args: the run's :class:`~hub.train.TrainingArguments`.
        state: the live :class:`~hub.train.TrainerState` (mutable: ``state.should_stop``).
        model: the module being trained, outside any DDP / ``torch.compile`` wrapper
            (``unwrapped_model`` is the same object, kept for callbacks written against
            the Trainer).
        optimizer, scheduler: the AdamW optimizer and its learning-rate schedule (None
            before training starts).
        device: this process's device.
        env: where this process stands (``rank``, ``world_size``, ``local_rank``);
            ``rank``, ``world_size`` and ``is_main`` (rank 0: the process that writes
            files and the terminal) are shortcuts.
        strategy: ``"none"``, ``"ddp"`` or ``"fsdp"``.
        last_seq_len: the sequence length of the latest training batch (0: none seen).
        resumed_from: the checkpoint folder this run resumed from, or None.
    """

    __slots__ = ("_source",)

    def __init__(self, source: _ViewSource) -> None:
        self._source = source

    args = property(lambda self: self._source.args)
    state = property(lambda self: self._source.state)
    model = property(lambda self: self._source.model)
    unwrapped_model = model
    optimizer = property(lambda self: self._source.optimizer)
    scheduler = property(lambda self: self._source.scheduler)
    device = property(lambda self: self._source.device)
    env = property(lambda self: self._source.env)
    strategy = property(lambda self: self._source.strategy)
    last_seq_len = property(lambda self: self._source.last_seq_len)
    resumed_from = property(lambda self: self._source.resumed_from)

    @property
    def rank(self) -> int:
        return self._source.env.rank

    @property
    def world_size(self) -> int:
        return self._source.env.world_size

    @property
    def is_main(self) -> bool:
        return self._source.env.is_main

    def __repr__(self) -> str:
        state = self._source.state
        return f"TrainerView(step={state.global_step}/{state.total_steps}, rank={self.rank}/{self.world_size})"


__all__ = ["Batch", "ComputeMetrics", "ModelOutput", "TrainableModel", "TrainerView"]
