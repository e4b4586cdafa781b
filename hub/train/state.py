"""What the Trainer knows about a run so far: saved in every checkpoint, shown to callbacks."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from hub.errors import ModelLoadError


@dataclass
class TrainerState:
    """The run's position and record; ``to_dict``/``from_dict`` round-trip through JSON."""

    global_step: int = 0  # optimizer steps taken
    total_steps: int = 0
    epoch: int = 0  # the epoch in progress (0-based) or just finished
    batches_in_epoch: int = 0  # micro-batches of the current epoch already consumed
    interval_loss_sum: float = 0.0  # training loss since the previous evaluation (this process)
    interval_loss_count: int = 0
    samples_seen: int = 0  # on all processes together
    tokens_seen: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    best_epoch: int | None = None
    best_checkpoint: str | None = None
    evals_without_improvement: int = 0
    should_stop: bool = False
    stopped_early: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)  # one record per evaluation/epoch

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainerState:
        """The state saved by :meth:`to_dict`; unknown keys are ignored (newer versions may add some).

        Raises:
            ModelLoadError: ``data`` is not such a state (see :meth:`problem`).
        """
        problem = cls.problem(data)
        if problem:
            raise ModelLoadError(f"not a trainer state: {problem}.")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def problem(cls, data: Any) -> str | None:
        """What makes ``data`` unusable as a saved state (a missing position, a value of the wrong
        type, a best checkpoint outside the run's folder), or None. A checkpoint edited by hand or
        written by another program must fail here, not as a KeyError or a wrong resume later."""
        if not isinstance(data, dict):
            return f"expected a JSON object, got {type(data).__name__}"
        missing = [k for k in _REQUIRED if k not in data]
        if missing:
            return f"missing {', '.join(map(repr, missing))} (the run's position)"
        for name, kinds in _TYPES.items():
            if name not in data:
                continue
            value = data[name]
            ok = any(value is None if kind is None else isinstance(value, kind) and not (
                isinstance(value, bool) and kind is not bool) for kind in kinds)
            if not ok:
                want = " or ".join("null" if k is None else {int: "an integer", float: "a number", bool: "true/false",
                                                              str: "a string", list: "a list"}[k] for k in kinds)
                return f"{name!r} is {value!r:.40}, not {want}"
            if name in _COUNTS and isinstance(value, int) and value < 0:  # a NaN loss may be saved: floats may be NaN
                return f"{name!r} is {value!r}, not a non-negative integer"
        history = data.get("history", [])
        if not all(isinstance(record, dict) for record in history):
            return "'history' must be a list of records (objects)"
        best = data.get("best_checkpoint")
        if best is not None and not _CHECKPOINT_NAME.match(best):
            return f"'best_checkpoint' is {best!r}, not a checkpoint name like 'step-00000012'"
        return None


_REQUIRED = ("global_step", "epoch", "batches_in_epoch")
_COUNTS = ("global_step", "total_steps", "epoch", "batches_in_epoch", "interval_loss_count", "samples_seen",
           "tokens_seen", "evals_without_improvement", "best_step", "best_epoch")
_TYPES: dict[str, tuple[Any, ...]] = {
    **{name: (int,) for name in _COUNTS if name not in ("best_step", "best_epoch")},
    "interval_loss_sum": (int, float), "best_metric": (None, int, float), "best_step": (None, int),
    "best_epoch": (None, int), "best_checkpoint": (None, str), "should_stop": (bool,), "stopped_early": (bool,),
    "history": (list,),
}
_CHECKPOINT_NAME = re.compile(r"^step-\d{8}$")
