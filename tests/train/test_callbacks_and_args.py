"""Callbacks (log producers and writers, early stopping, custom hooks) and argument validation."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from hub.errors import ConfigError, DataError
from hub.train import Callback, Trainer, TrainingArguments
from hub.train.sampling import ResumableBatchSampler

sys.path.insert(0, str(Path(__file__).parent))
from toy_run import ToyEncoderClassifier, collate, toy_data


class WithFlops(ToyEncoderClassifier):
    def flops_per_token(self, seq_len: int) -> float:
        return 6.0 * sum(p.numel() for p in self.parameters())


class Recorder(Callback):
    def __init__(self) -> None:
        self.events: list[str] = []

    def on_train_begin(self, trainer, state):
        self.events.append("begin")

    def on_evaluate(self, trainer, state, metrics):
        self.events.append(f"evaluate@{state.global_step}")

    def on_epoch_end(self, trainer, state):
        self.events.append(f"epoch_end@{state.global_step}")

    def on_save(self, trainer, state, path):
        self.events.append(f"save:{path.name}")

    def on_train_end(self, trainer, state):
        self.events.append("end")


def train(tmp_path, *, model=None, callbacks=(), compute_metrics=None, **kwargs):
    torch.manual_seed(0)
    args = TrainingArguments(**{"epochs": 2, "batch_size": 16, "learning_rate": 3e-3, "device": "cpu",
                                "progress": False, "log_every": 2, "output_dir": str(tmp_path),
                                "tensorboard": False, **kwargs})
    trainer = Trainer(model or ToyEncoderClassifier(0.0), args, train_data=toy_data(64, 1),
                      eval_data=toy_data(20, 2), collate=collate, callbacks=callbacks,
                      compute_metrics=compute_metrics)
    return trainer, trainer.train()


def test_logs_carry_lr_throughput_and_mfu(tmp_path):
    _, result = train(tmp_path, model=WithFlops(0.0), peak_tflops=1.0)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    assert [r["step"] for r in steps] == [2, 4, 6, 8]
    assert all(r["samples_per_s"] > 0 and r["tokens_per_s"] > 0 and 0 < r["mfu"] < 1 for r in steps)
    assert steps[0]["lr"] > steps[-1]["lr"]  # linear decay after warm-up
    assert [r["epoch"] for r in records if "eval_loss" in r] == [1, 2]


def test_callback_hooks_fire_in_order(tmp_path):
    recorder = Recorder()
    train(tmp_path, callbacks=[recorder], save_steps=3)
    # save_steps=3: checkpoints at multiples of 3 and at the end, not at epoch ends
    assert recorder.events == ["begin", "save:step-00000003", "evaluate@4", "epoch_end@4", "save:step-00000006",
                               "evaluate@8", "epoch_end@8", "save:step-00000008", "end"]


def test_eval_steps_early_stopping_and_best_weights(tmp_path):
    scores = iter([0.5, 0.7, 0.6, 0.65, 0.9, 0.95])  # best at the 2nd evaluation, then 2 without improvement

    def scripted_metric(logits, labels):
        return {"score": next(scores)}

    trainer, result = train(tmp_path, epochs=10, eval_steps=2, early_stopping_patience=2, metric_for_best="score",
                            compute_metrics=scripted_metric, save_steps=2, save_total_limit=1)
    assert result.stopped_early
    assert [r["step"] for r in result.history] == [2, 4, 6, 8]
    assert result.best_step == 4 and result.best_metric == 0.7
    # the best checkpoint survives rotation, and the model ends with exactly its weights
    from hub.train.checkpoint import list_checkpoints, load_weights

    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000004", "step-00000008"]
    best = load_weights(tmp_path / "checkpoints" / "step-00000004" / "model.safetensors")
    assert all(torch.equal(v, best[k]) for k, v in trainer.model.state_dict().items())


def test_tensorboard_writes_events_when_installed(tmp_path):
    pytest.importorskip("tensorboard")
    train(tmp_path, tensorboard=True)
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": "three"}, "'epochs' must be a number"),
    ({"batch_size": 8.5}, "'batch_size' must be an integer"),
    ({"bf16": "yes"}, "'bf16' must be true/false or null"),
    ({"schedule": "step"}, "one of 'linear', 'cosine', 'constant'"),
    ({"distributed": "horovod"}, "'distributed' must be one of 'auto', 'ddp', 'fsdp', 'none'"),
    ({"save_total_limit": 0}, "save_total_limit must be at least 1"),
    ({"fp16": True, "bf16": True}, "exclusive"),
    ({"learning_rate": -1.0}, "must be positive"),
])
def test_bad_arguments_name_the_key(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TrainingArguments(**kwargs)


def test_unknown_argument_suggests_the_close_match():
    with pytest.raises(ConfigError, match="Did you mean 'gradient_accumulation_steps'"):
        TrainingArguments.from_kwargs(gradient_accumulation=2)


def test_fp16_on_cpu_and_empty_data_fail_before_training(tmp_path):
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        Trainer(ToyEncoderClassifier(0.0), TrainingArguments(fp16=True, device="cpu"), train_data=toy_data(4, 0),
                collate=collate)
    with pytest.raises(DataError, match="training data is empty"):
        Trainer(ToyEncoderClassifier(0.0), TrainingArguments(device="cpu", progress=False), train_data=[],
                collate=collate).train()


def test_gradient_checkpointing_gives_the_same_training(tmp_path):
    _, plain = train(tmp_path / "a", save_checkpoints=False)
    _, recomputed = train(tmp_path / "b", save_checkpoints=False, gradient_checkpointing=True)
    assert [r["eval_loss"] for r in plain.history] == pytest.approx([r["eval_loss"] for r in recomputed.history],
                                                                    abs=1e-6)


def test_sampler_covers_each_example_once_and_shards_the_global_batch():
    lengths = [int(x) for x in torch.randint(1, 100, (103,), generator=torch.Generator().manual_seed(0))]
    for grouped in (None, lengths):
        one = ResumableBatchSampler(103, 8, seed=3, lengths=grouped)
        two = [ResumableBatchSampler(103, 4, seed=3, rank=r, world_size=2, lengths=grouped) for r in range(2)]
        for s in (one, *two):
            s.set_epoch(1)
        single = list(one)
        assert sorted(i for b in single for i in b) == list(range(103))
        shards = [list(s) for s in two]
        assert len(shards[0]) == len(shards[1]) == len(two[0])
        for step, batch in enumerate(single):  # step by step: the same examples (plus one pad repeat)
            assert set(shards[0][step]) | set(shards[1][step]) >= set(batch)
        if grouped:  # lengths inside a batch are close: each batch is a slice of a sorted mega-batch
            spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in single) / len(single)
            assert spread < 20
        resumed = ResumableBatchSampler(103, 8, seed=3, lengths=grouped)
        resumed.set_epoch(1, start_batch=5)
        assert list(resumed) == single[5:]


def test_cpu_bf16_autocast_trains(tmp_path):
    trainer, result = train(tmp_path, bf16=True, epochs=3, save_checkpoints=False)
    assert trainer.autocast_dtype == torch.bfloat16
    losses = [r["eval_loss"] for r in result.history]
    assert losses[-1] < losses[0]
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())  # autocast: fp32 master weights


@pytest.mark.slow
def test_compiled_training_matches_eager(tmp_path):
    _, eager = train(tmp_path / "eager", save_checkpoints=False)
    _, compiled = train(tmp_path / "compiled", save_checkpoints=False, compile=True)
    assert [r["eval_loss"] for r in compiled.history] == pytest.approx([r["eval_loss"] for r in eager.history],
                                                                       abs=1e-4)


def test_eval_collate_batches_evaluation_examples(tmp_path):
    seen = []

    def eval_collate(rows):
        seen.append(len(rows))
        return collate(rows)

    torch.manual_seed(0)
    args = TrainingArguments(epochs=1, batch_size=16, eval_batch_size=7, device="cpu", progress=False,
                             tensorboard=False)
    Trainer(ToyEncoderClassifier(0.0), args, train_data=toy_data(32, 1), eval_data=toy_data(20, 2),
            collate=collate, eval_collate=eval_collate).train()
    assert seen == [7, 7, 6]  # only evaluation went through it
