"""The Trainer's contract (hub.train.contract), its schedule (hub.train.control) and the
view callbacks get: labels and logits only when metrics need them, clear errors when a
model or batch breaks the contract, the decisions of the loop in one object."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hub.errors import ConfigError
from hub.train import Callback, Trainer, TrainerState, TrainerView, TrainingArguments
from hub.train.control import TrainingSchedule

sys.path.insert(0, str(Path(__file__).parent))
from toy_run import ToyEncoderClassifier, collate, toy_data


class Reconstruct(nn.Module):
    """A self-supervised objective: its loss needs no labels and it returns no logits."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 8)
        self.out = nn.Linear(8, 50)

    def forward(self, input_ids: torch.Tensor, **_) -> dict[str, torch.Tensor]:
        logits = self.out(self.embed(input_ids))
        return {"loss": F.cross_entropy(logits.transpose(1, 2), input_ids)}


def unlabelled(n: int) -> list[dict[str, torch.Tensor]]:
    return [{"input_ids": row["input_ids"]} for row in toy_data(n, 3)]


def args(tmp_path=None, **kwargs) -> TrainingArguments:
    return TrainingArguments(**{"epochs": 2, "batch_size": 8, "learning_rate": 1e-2, "device": "cpu",
                                "progress": False, "log_every": 2, "tensorboard": False,
                                "output_dir": str(tmp_path) if tmp_path else None, **kwargs})


def test_evaluation_needs_no_labels_or_logits_without_metrics():
    """Old code: KeyError 'labels' in evaluate (speech pretraining fabricated labels for it)."""
    torch.manual_seed(0)
    trainer = Trainer(Reconstruct(), args(), train_data=unlabelled(32), eval_data=unlabelled(12), collate=collate)
    result = trainer.train()
    losses = [record["eval_loss"] for record in result.history]
    assert len(losses) == 2 and losses[1] < losses[0]
    # the loss is the mean per example: batches of 8 and 4 weigh 8 and 4
    model = trainer.model
    with torch.no_grad():
        batches = [collate(unlabelled(12)[:8]), collate(unlabelled(12)[8:])]
        expected = sum(model(**b)["loss"].item() * len(b["input_ids"]) for b in batches) / 12
    assert trainer.evaluate()["loss"] == pytest.approx(expected, rel=1e-6)


def test_compute_metrics_without_logits_names_the_missing_key():
    trainer = Trainer(Reconstruct(), args(), train_data=unlabelled(16), eval_data=unlabelled(8), collate=collate,
                      compute_metrics=lambda logits, labels: {})
    with pytest.raises(ConfigError, match=r"compute_metrics needs the model's 'logits'.*\['loss'\].*drop"):
        trainer.train()


def test_compute_metrics_without_labels_names_the_missing_key():
    trainer = Trainer(ToyEncoderClassifier(0.0), args(), train_data=toy_data(16, 1), collate=collate,
                      eval_data=unlabelled(8), compute_metrics=lambda logits, labels: {})
    # the model computes no loss without labels: that is the first broken promise
    with pytest.raises(ConfigError, match=r"no 'loss' on an evaluation batch.*\['logits'\]"):
        trainer.train()

    class LossAnyway(ToyEncoderClassifier):
        def forward(self, input_ids, labels=None):
            out = super().forward(input_ids, labels)
            return {**out, "loss": out.get("loss", out["logits"].sum())}

    trainer = Trainer(LossAnyway(0.0), args(), train_data=toy_data(16, 1), collate=collate,
                      eval_data=unlabelled(8), compute_metrics=lambda logits, labels: {})
    with pytest.raises(ConfigError, match=r"compute_metrics needs 'labels'.*\['input_ids'\].*collate"):
        trainer.train()


def test_a_training_output_without_loss_is_a_config_error():
    trainer = Trainer(ToyEncoderClassifier(0.0), args(), train_data=unlabelled(16), collate=collate)
    with pytest.raises(ConfigError, match=r"no 'loss' on a training batch \(got keys \['logits'\]\).*hub.train.contract"):
        trainer.train()


class Inspect(Callback):
    def __init__(self) -> None:
        self.seen: list[tuple] = []

    def on_train_begin(self, trainer, state):
        self.view = trainer

    def on_step_end(self, trainer, state):
        self.seen.append((trainer.state is state, trainer.optimizer is not None, trainer.scheduler.get_last_lr()[0],
                          trainer.last_seq_len, trainer.is_main, trainer.world_size, trainer.rank,
                          trainer.env.world_size, trainer.device.type, trainer.strategy, trainer.resumed_from,
                          trainer.args.batch_size, trainer.model is trainer.unwrapped_model))


def test_callbacks_see_a_read_only_view_not_the_trainer():
    inspect = Inspect()
    trainer = Trainer(ToyEncoderClassifier(0.0), args(max_steps=2), train_data=toy_data(16, 1), collate=collate,
                      callbacks=[inspect])
    trainer.train()
    view = inspect.view
    assert isinstance(view, TrainerView) and not isinstance(view, Trainer)
    assert view.model is trainer.model and view.args is trainer.args
    assert [s[:2] + s[3:] for s in inspect.seen] == [(True, True, 12, True, 1, 0, 1, "cpu", "none", None, 8, True)] * 2
    for name in ("model", "optimizer", "state", "args"):
        with pytest.raises(AttributeError):
            setattr(view, name, None)
    assert not hasattr(view, "train") and not hasattr(view, "evaluate")  # the loop is not the callbacks' to drive


def test_callbacks_module_does_not_import_the_trainer():
    import ast

    import hub.train.callbacks as module

    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "hub.train.trainer" not in imported


def run_schedule(schedule: TrainingSchedule, state: TrainerState, *, stop_at_eval: int | None = None) -> list[str]:
    """Drive a schedule as the loop does (no model), recording its decisions."""
    events = []
    while not schedule.should_stop(state):
        while True:
            state.batches_in_epoch += 1
            state.global_step += 1
            control = schedule.after_step(state)
            events += [f"{name}@{state.global_step}" for name in ("log", "evaluate", "save")
                       if getattr(control, f"should_{name}")]
            if control.should_evaluate and state.global_step == stop_at_eval:
                state.should_stop = True
            if schedule.should_leave_epoch(state):
                break
        control = schedule.after_epoch(state)
        if control.should_evaluate:
            events.append(f"evaluate@{state.global_step}")
            if state.global_step == stop_at_eval:
                state.should_stop = True
        if control.should_end_epoch:
            events.append(f"epoch_end@{state.global_step}")
            state.epoch, state.batches_in_epoch = state.epoch + 1, 0
        if schedule.save_on_leaving(state):
            events.append(f"save@{state.global_step}")
    return events


def test_schedule_decides_log_evaluate_save_and_stop():
    schedule = TrainingSchedule(args(log_every=2, save_steps=3), batches_per_epoch=4, checkpointing=True)
    assert run_schedule(schedule, TrainerState(total_steps=8)) == [
        "log@2", "save@3", "log@4", "evaluate@4", "epoch_end@4", "log@6", "save@6", "log@8", "evaluate@8",
        "epoch_end@8", "save@8"]
    # eval_steps: evaluations at its multiples and the last step; checkpoints every epoch (save_steps=None)
    schedule = TrainingSchedule(args(log_every=100, eval_steps=3), batches_per_epoch=4, checkpointing=True)
    assert run_schedule(schedule, TrainerState(total_steps=7)) == [
        "evaluate@3", "epoch_end@4", "save@4", "evaluate@6", "evaluate@7", "save@7"]
    # without checkpointing nothing is saved
    schedule = TrainingSchedule(args(log_every=100), batches_per_epoch=4, checkpointing=False)
    assert run_schedule(schedule, TrainerState(total_steps=8)) == ["evaluate@4", "epoch_end@4", "evaluate@8",
                                                                   "epoch_end@8"]


def test_schedule_saves_when_an_evaluation_stops_training_between_save_steps():
    """The save on leaving an epoch is decided after its evaluation: early stopping there ends
    training, and the end of training is always checkpointed."""
    schedule = TrainingSchedule(args(log_every=100, save_steps=3), batches_per_epoch=4, checkpointing=True)
    assert run_schedule(schedule, TrainerState(total_steps=12), stop_at_eval=8) == [
        "save@3", "evaluate@4", "epoch_end@4", "save@6", "evaluate@8", "epoch_end@8", "save@8"]


class StopAtEpochEnd(Callback):
    def on_epoch_end(self, trainer, state):
        state.should_stop = True


def test_a_stop_at_an_epoch_end_is_checkpointed(tmp_path):
    trainer = Trainer(ToyEncoderClassifier(0.0), args(tmp_path, epochs=3, save_steps=3), train_data=toy_data(32, 1),
                      collate=collate, eval_data=toy_data(8, 2), callbacks=[StopAtEpochEnd()])
    result = trainer.train()
    assert result.steps == 4
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-00000003", "step-00000004"]


def test_without_eval_data_the_lowest_training_loss_is_best_whatever_the_metric():
    """Old code monitored the training loss with metric_for_best's direction: with
    metric_for_best="accuracy" it kept (and restored) the epoch of the *highest* training loss."""
    torch.manual_seed(0)
    trainer = Trainer(ToyEncoderClassifier(0.0), args(epochs=3, metric_for_best="accuracy"),
                      train_data=toy_data(48, 1), collate=collate)
    result = trainer.train()
    losses = [record["train_loss"] for record in result.history]
    assert losses[-1] < losses[0]
    assert result.best_metric == min(losses) and result.best_epoch == 1 + losses.index(min(losses))


def test_a_metric_for_best_the_evaluation_does_not_produce_is_a_config_error():
    """Old code fell back to the training loss in silence (with the metric's direction)."""
    with pytest.raises(ConfigError, match=r"metric_for_best='accuracy' is not among the evaluation's metrics "
                                          r"\(loss\).*compute_metrics"):  # before any training
        Trainer(ToyEncoderClassifier(0.0), args(metric_for_best="accuracy"), train_data=toy_data(16, 1),
                eval_data=toy_data(8, 2), collate=collate)
    # compute_metrics that does not return it: at the first evaluation
    trainer = Trainer(ToyEncoderClassifier(0.0), args(metric_for_best="accuracy"), train_data=toy_data(16, 1),
                      eval_data=toy_data(8, 2), collate=collate, compute_metrics=lambda logits, labels: {"f1": 0.5})
    with pytest.raises(ConfigError, match=r"metric_for_best='accuracy' is not among the evaluation's metrics "
                                          r"\(f1, loss\): name one of them"):
        trainer.train()
