"""What the Trainer knows about a run so far: saved in every checkpoint, shown to callbacks."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


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
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
