"""When the training loop logs, evaluates, saves, ends an epoch and stops: one small object.

Modelled on transformers' ``TrainerControl`` (the flags the loop obeys) and the decision
logic of its ``DefaultFlowCallback`` (which sets them from the arguments and the state).
Here the decisions are a pure function of :class:`~hub.train.TrainingArguments` and
:class:`~hub.train.TrainerState` (plus the two steps last evaluated and saved), so a
resumed run, which restores the state, takes the same decisions as an uninterrupted one,
and every process of a distributed run takes the same ones (they must: logging and
evaluation are collectives).

The loop asks :meth:`TrainingSchedule.after_step` after every optimizer step and
:meth:`TrainingSchedule.after_epoch` when it leaves an epoch (its data used up, the last
step reached, or a callback's ``state.should_stop``), and acts on the answer in a fixed
order: bring the state's counters up to date, log, evaluate, end the epoch, save.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.train.args import TrainingArguments
    from hub.train.state import TrainerState


@dataclass
class TrainerControl:
    """What the loop does now, in this order (each flag False unless set).

    Attributes:
        should_log: write a training-loss record (``on_log``).
        should_evaluate: evaluate, track the best weights, log the metrics (``on_evaluate``).
        should_end_epoch: the epoch's data is used up: ``on_epoch_end``, then the next epoch.
        should_save: write a resumable checkpoint (``on_save``). When leaving an epoch it is
            decided last, by :meth:`TrainingSchedule.save_on_leaving`, since the
            evaluation and ``on_epoch_end`` before it may end training (early stopping).
        leaving_epoch: the decisions taken when the loop leaves an epoch.
    """

    should_log: bool = False
    should_evaluate: bool = False
    should_end_epoch: bool = False
    should_save: bool = False
    leaving_epoch: bool = False

    @property
    def touches_state(self) -> bool:
        """Whether the loop must first bring the state's counters up to date (a log reads the
        token count, a checkpoint saves every counter); a plain step skips it (no device sync)."""
        return self.should_log or self.should_evaluate or self.should_save or self.leaving_epoch


class TrainingSchedule:
    """Decides, from the arguments and the state, what the loop does after each step and epoch.

    * log every ``log_every`` optimizer steps;
    * evaluate every ``eval_steps`` steps and at the last step, or (``eval_steps=None``) when
      leaving each epoch, never twice at one step;
    * save (when ``checkpointing``) every ``save_steps`` steps inside an epoch, and when
      leaving an epoch at a multiple of ``save_steps`` (every epoch when ``save_steps=None``)
      or at the end of training, never twice at one step;
    * stop at ``total_steps`` or when a callback sets ``state.should_stop``.

    Args:
        args: the run's arguments (``log_every``, ``eval_steps``, ``save_steps``).
        batches_per_epoch: micro-batches in one epoch of this process.
        checkpointing: whether checkpoints are written at all (``output_dir`` and
            ``save_checkpoints``).
    """

    def __init__(self, args: TrainingArguments, *, batches_per_epoch: int, checkpointing: bool) -> None:
        self.args, self.batches_per_epoch, self.checkpointing = args, batches_per_epoch, checkpointing
        self.last_eval_step: int | None = None
        self.last_save_step: int | None = None

    def should_stop(self, state: TrainerState) -> bool:
        """Whether training is over.

        Returns:
            True once ``state.global_step >= state.total_steps`` or a callback set ``state.should_stop``.
        """
        return state.global_step >= state.total_steps or state.should_stop

    def epoch_done(self, state: TrainerState) -> bool:
        """Whether the current epoch's batches are used up."""
        return state.batches_in_epoch == self.batches_per_epoch

    def should_leave_epoch(self, state: TrainerState) -> bool:
        """Asked after acting on :meth:`after_step`: stop reading this epoch's batches."""
        return self.should_stop(state) or self.epoch_done(state)

    def after_step(self, state: TrainerState) -> TrainerControl:
        """The decisions after optimizer step ``state.global_step``.

        Returns:
            A :class:`TrainerControl`; the evaluation and save it asks for count as done.
        """
        args, step = self.args, state.global_step
        control = TrainerControl(should_log=step % args.log_every == 0)
        if args.eval_steps and (step % args.eval_steps == 0 or step >= state.total_steps):
            control.should_evaluate = self._evaluating(step)
        if self.checkpointing and args.save_steps and step % args.save_steps == 0 and not self.epoch_done(state):
            control.should_save = self._saving(step)  # an epoch's last step saves on leaving it, after evaluating
        return control

    def after_epoch(self, state: TrainerState) -> TrainerControl:
        """The decisions when the loop leaves an epoch (used up, the last step, or stopped).

        Returns:
            A :class:`TrainerControl` with ``leaving_epoch`` set; its ``should_save`` comes
            later from :meth:`save_on_leaving`.
        """
        control = TrainerControl(should_end_epoch=self.epoch_done(state), leaving_epoch=True)
        if not self.args.eval_steps and self.last_eval_step != state.global_step:
            control.should_evaluate = self._evaluating(state.global_step)
        return control

    def save_on_leaving(self, state: TrainerState) -> bool:
        """Whether to checkpoint on leaving an epoch, asked after its evaluation and ``on_epoch_end``.

        Returns:
            True at a multiple of ``save_steps`` (always when it is None) or at the end of
            training, unless this step is saved already or checkpointing is off.
        """
        periodic = self.args.save_steps is None or state.global_step % self.args.save_steps == 0
        if self.checkpointing and self.last_save_step != state.global_step and (periodic or self.should_stop(state)):
            return self._saving(state.global_step)
        return False

    def _evaluating(self, step: int) -> bool:
        self.last_eval_step = step
        return True

    def _saving(self, step: int) -> bool:
        self.last_save_step = step
        return True


__all__ = ["TrainerControl", "TrainingSchedule"]
