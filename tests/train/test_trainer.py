"""The Trainer on a small real problem: determinism, best-epoch keeping, early stopping, logs."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hub.errors import ConfigError
from hub.train import Trainer, TrainingArguments
from hub.train.trainer import accuracy, decay_parameter_groups, lr_lambda


class TinyClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 16), nn.LayerNorm(16), nn.Tanh(), nn.Linear(16, 2))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        logits = self.net(x)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = F.cross_entropy(logits, labels)
        return out


def two_moons(n: int, seed: int) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    angle = torch.rand(n, generator=g) * torch.pi
    x = torch.stack([torch.cos(angle) + labels * 1.0, torch.sin(angle) * (1 - 2 * labels) + labels * 0.3], 1)
    x = x + 0.1 * torch.randn(n, 2, generator=g)
    return [{"x": xi, "labels": yi} for xi, yi in zip(x, labels)]


def collate(rows):
    return {"x": torch.stack([r["x"] for r in rows]), "labels": torch.stack([r["labels"] for r in rows])}


def run(tmp_path=None, **kwargs):
    torch.manual_seed(123)
    model = TinyClassifier()
    args = TrainingArguments(**{"epochs": 8, "batch_size": 16, "learning_rate": 3e-2, "progress": False,
                                "metric_for_best": "accuracy", "device": "cpu",
                                "output_dir": str(tmp_path) if tmp_path else None, **kwargs})
    trainer = Trainer(model, args, train_data=two_moons(256, 0), eval_data=two_moons(128, 1),
                      collate=collate, compute_metrics=accuracy)
    return model, trainer, trainer.train()


def test_learns_held_out_data_and_logs_jsonl(tmp_path):
    model, trainer, result = run(tmp_path)
    assert result.best_metric >= 0.9  # held-out accuracy on the second moon sample
    assert trainer.evaluate()["accuracy"] == pytest.approx(result.best_metric)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if "eval_accuracy" in r]
    assert [r["epoch"] for r in epochs] == list(range(1, 9))
    assert any("lr" in r for r in records)


def test_same_seed_same_weights_and_different_seed_differs():
    first = run(seed=7)[0].state_dict()
    second = run(seed=7)[0].state_dict()
    third = run(seed=8)[0].state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], third[k]) for k in first)


def test_keeps_the_best_epoch_not_the_last():
    model, trainer, result = run(epochs=6, learning_rate=3.0, max_grad_norm=None, warmup_ratio=0.0)
    best = max(r["eval_accuracy"] for r in result.history)
    assert result.best_metric == best
    assert trainer.evaluate()["accuracy"] == pytest.approx(best)


def test_early_stopping():
    _, _, result = run(epochs=50, learning_rate=1e-9, early_stopping_patience=2, warmup_ratio=0.0)
    assert result.stopped_early and result.epochs_run == result.best_epoch + 2


def test_max_steps_and_accumulation():
    _, _, result = run(max_steps=5, gradient_accumulation_steps=2)
    assert result.steps == 5


def test_schedule_warms_up_then_decays():
    linear = lr_lambda("linear", 10, 110)
    assert linear(0) == pytest.approx(0.1) and linear(9) == pytest.approx(1.0)
    assert linear(60) == pytest.approx(0.5) and linear(110) == 0.0
    cosine = lr_lambda("cosine", 0, 100)
    assert cosine(0) == pytest.approx(1.0) and cosine(50) == pytest.approx(0.5) and cosine(100) == pytest.approx(0.0)


def test_no_weight_decay_on_norms_and_biases():
    groups = decay_parameter_groups(TinyClassifier(), 0.1)
    decayed = {p.ndim for p in groups[0]["params"]}
    assert decayed == {2} and groups[1]["weight_decay"] == 0.0 and len(groups[1]["params"]) == 4


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 0}, "epochs"), ({"batch_size": 2.5}, "batch_size"), ({"schedule": "step"}, "schedule"),
    ({"warmup_ratio": 1.5}, "warmup_ratio"),
])
def test_bad_arguments_fail_before_training(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TrainingArguments(**kwargs)


def test_unknown_argument_names_the_close_match():
    with pytest.raises(ConfigError, match="Did you mean 'epochs'"):
        TrainingArguments.from_kwargs(epoch=3)
