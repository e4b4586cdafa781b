"""Hostile checkpoints and arguments (issue 12, items 16 and 18): a corrupt trainer_state.json,
a foreign optimizer.pt, a checkpoint of another model size or data size, NaN arguments, and
metrics.jsonl rows that a resume must not duplicate."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from hub.errors import ConfigError, HubError, ModelLoadError
from hub.train import Trainer, TrainingArguments
from hub.train import checkpoint as ckpt
from hub.train.callbacks import truncate_log

sys.path.insert(0, str(Path(__file__).parent))
from toy_run import ToyEncoderClassifier, collate, toy_data

SCRIPT = Path(__file__).with_name("toy_run.py")


def make_trainer(out: Path, *, model: nn.Module | None = None, examples: int = 64, callbacks=(), **kwargs) -> Trainer:
    torch.manual_seed(0)
    args = TrainingArguments(**{"epochs": 2, "batch_size": 8, "learning_rate": 3e-3, "device": "cpu", "progress": False,
                                "log_every": 1, "output_dir": str(out), "tensorboard": False, "save_steps": 3,
                                "save_total_limit": 10, **kwargs})
    return Trainer(model or ToyEncoderClassifier(0.0), args, train_data=toy_data(examples, 1),
                   eval_data=toy_data(16, 2), collate=collate, callbacks=callbacks)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished run: 16 steps, checkpoints at 3, 6, 8 (epoch end), 9, 12, 15, 16."""
    out = tmp_path_factory.mktemp("run")
    make_trainer(out).train()
    return out


def fresh_copy(finished: Path, tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(finished, target)
    return target


def steps_of(path: Path) -> list[tuple[int, str]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [(r["step"], "eval" if "eval_loss" in r else "train") for r in rows]


# -- metrics.jsonl after a resume -------------------------------------------------------------
def test_sigkill_resume_logs_every_step_once(tmp_path):
    """A real SIGKILL (after step 10; the newest checkpoint is step 8) and a resume: the log equals
    the uninterrupted run's, row for row (steps and losses), with no step logged twice."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    flags = ["--batch-size", "8", "--accumulation", "2", "--max-steps", "14", "--save-steps", "4"]
    run = lambda out, *extra: subprocess.run([sys.executable, str(SCRIPT), str(out), *flags, *extra],
                                             capture_output=True, text=True, env=env, timeout=300)
    whole, crashed = tmp_path / "whole", tmp_path / "crashed"
    assert run(whole).returncode == 0
    assert run(crashed, "--kill-at-step", "10").returncode == -signal.SIGKILL
    assert max(s for s, _ in steps_of(crashed / "metrics.jsonl")) == 9  # logged past the step-8 checkpoint
    resumed = run(crashed, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert steps_of(crashed / "metrics.jsonl") == steps_of(whole / "metrics.jsonl")
    losses = [[(r["step"], r.get("loss"), r.get("eval_loss")) for r in map(json.loads, (d / "metrics.jsonl")
                                                                               .read_text().splitlines())]
              for d in (whole, crashed)]
    assert losses[0] == losses[1]


def test_resume_from_an_earlier_checkpoint_rewrites_the_later_rows(finished, tmp_path):
    out = fresh_copy(finished, tmp_path)
    before = steps_of(out / "metrics.jsonl")
    earlier = ckpt.checkpoint_dir(out) / "step-00000009"
    make_trainer(out, resume_from_checkpoint=str(earlier)).train()
    after = steps_of(out / "metrics.jsonl")
    assert after == before  # steps 10..16 once each, not twice
    assert len(after) == len(set(after))


def test_truncate_log_drops_torn_and_later_rows_only(tmp_path):
    log = tmp_path / "metrics.jsonl"
    log.write_text('{"step": 1, "loss": 1.0}\n{"note": "no step"}\n{"step": 2, "loss": 0.9}\n'
                   '{"step": 3, "loss": 0.8}\n{"step": 4, "lo')
    os.chmod(log, 0o644)
    assert truncate_log(log, 2) == 2
    assert log.read_text() == '{"step": 1, "loss": 1.0}\n{"note": "no step"}\n{"step": 2, "loss": 0.9}\n'
    assert log.stat().st_mode & 0o777 == 0o644
    assert truncate_log(log, 2) == 0 and not list(tmp_path.glob(".metrics.jsonl.tmp-*"))


# -- corrupt trainer_state.json ----------------------------------------------------------------
def _state(folder: Path) -> dict:
    return json.loads((folder / "trainer_state.json").read_text())


@pytest.mark.parametrize("content, message", [
    ("{not json", "trainer_state.json is not readable JSON"),
    (b"\xff\xfe{}", "trainer_state.json is not readable JSON"),
    ("[1, 2]", "expected a JSON object, got list"),
    ("{}", "missing 'global_step', 'epoch', 'batches_in_epoch'"),
    (lambda s: {k: v for k, v in s.items() if k != "epoch"}, "missing 'epoch'"),
    (lambda s: {**s, "global_step": "9"}, "'global_step' is '9', not an integer"),
    (lambda s: {**s, "global_step": 9.5}, "'global_step' is 9.5, not an integer"),
    (lambda s: {**s, "epoch": -1}, "'epoch' is -1, not a non-negative integer"),
    (lambda s: {**s, "should_stop": "no"}, "'should_stop' is 'no', not true/false"),
    (lambda s: {**s, "history": [1, 2]}, "'history' must be a list of records"),
    (lambda s: {**s, "history": {"a": 1}}, "'history' is"),
    (lambda s: {**s, "best_checkpoint": "../../elsewhere"}, "'best_checkpoint' is '../../elsewhere'"),
    (lambda s: {**s, "world_size": 0}, "'world_size' is 0"),
])
def test_corrupt_trainer_state_is_a_model_load_error(finished, tmp_path, content, message):
    out = fresh_copy(finished, tmp_path)
    folder = ckpt.latest(out)
    file = folder / "trainer_state.json"
    if callable(content):
        file.write_text(json.dumps(content(_state(folder))))
    elif isinstance(content, bytes):
        file.write_bytes(content)
    else:
        file.write_text(content)
    with pytest.raises(ModelLoadError, match=message) as info:
        make_trainer(out, resume_from_checkpoint=True).train()
    assert str(folder) in str(info.value) and "start fresh" in str(info.value)


# -- a foreign optimizer.pt, other files -------------------------------------------------------
def _foreign_optimizer(tmp_path: Path) -> dict:
    model = nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    return optimizer.state_dict()


def _reshaped_optimizer(folder: Path) -> dict:
    state = torch.load(folder / "optimizer.pt", weights_only=True)
    first = next(iter(state["state"].values()))
    first["exp_avg"] = torch.zeros(7, 7)
    return state


class NotData:
    pass


@pytest.mark.parametrize("name, content, error, message", [
    ("optimizer.pt", _foreign_optimizer, ConfigError, r"optimizer.pt is another model's optimizer: its parameter "
                                                      r"groups hold \[2\] parameters"),
    ("optimizer.pt", _reshaped_optimizer, ConfigError, r"'exp_avg' of parameter .* is \[7, 7\]"),
    ("optimizer.pt", {"state": {}}, ModelLoadError, "optimizer.pt is not an optimizer state"),
    ("optimizer.pt", b"garbage", ModelLoadError, r"optimizer.pt cannot be read"),
    ("optimizer.pt", NotData, ModelLoadError, r"optimizer.pt cannot be read \(UnpicklingError"),
    ("optimizer.pt", None, ModelLoadError, "optimizer.pt is missing"),
    ("scheduler.pt", {"base_lrs": [0.1]}, ConfigError, "scheduler.pt is not the state of a learning-rate schedule"),
    ("rng.pt", {"torch": 1}, ModelLoadError, "rng.pt does not hold the random generators"),
    ("rng.pt", {"python": [1], "torch": torch.zeros(3, dtype=torch.uint8)}, ModelLoadError, "rng.pt cannot be restored"),
    ("model.safetensors", b"\x00" * 16, ModelLoadError, "model.safetensors cannot be read"),
])
def test_broken_checkpoint_files_name_the_folder_and_fix(finished, tmp_path, name, content, error, message):
    out = fresh_copy(finished, tmp_path)
    folder = ckpt.latest(out)
    target = folder / name
    if content is None:
        target.unlink()
    elif isinstance(content, bytes):
        target.write_bytes(content)
    elif content is NotData:
        torch.save({"state": NotData()}, target)
    else:
        torch.save(content(folder) if callable(content) and content is not NotData else content, target)
    with pytest.raises(error, match=message) as info:
        make_trainer(out, resume_from_checkpoint=True).train()
    assert str(folder) in str(info.value)
    assert "resume_from_checkpoint" in str(info.value)


def test_resuming_with_another_model_size_is_a_config_error(finished, tmp_path):
    out = fresh_copy(finished, tmp_path)
    bigger = ToyEncoderClassifier(0.0)
    bigger.head = nn.Linear(32, 5)  # 5 classes instead of 3
    before = {k: v.clone() for k, v in bigger.state_dict().items()}
    with pytest.raises(ConfigError, match=r"model.safetensors holds a different model \(2 tensor\(s\) of another "
                                          r"size, e.g. 'head.weight': \[3, 32\] in the checkpoint, \[5, 32\] in this "
                                          r"model\)") as info:
        make_trainer(out, model=bigger, resume_from_checkpoint=True).train()
    assert "Start fresh" in str(info.value) and str(ckpt.latest(out)) in str(info.value)
    assert all(torch.equal(before[k], v) for k, v in bigger.state_dict().items())  # nothing half-loaded

    class Renamed(ToyEncoderClassifier):
        def __init__(self) -> None:
            super().__init__(0.0)
            self.classifier = self.head
            del self.head

        def forward(self, input_ids, labels=None):
            self.head = self.classifier
            return super().forward(input_ids, labels)

    with pytest.raises(ConfigError, match=r"of this model's tensors missing, e.g. 'classifier.bias'; 2 unknown"):
        make_trainer(out, model=Renamed(), resume_from_checkpoint=True).train()


@contextlib.contextmanager
def fail_after(seconds: int):
    """Old code looped forever here (an epoch with nothing left to read): fail instead of hanging."""
    def timeout(signum, frame):
        raise TimeoutError(f"still running after {seconds} s: the resumed run loops without training")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_resuming_mid_epoch_with_less_data_is_a_config_error(finished, tmp_path):
    out = fresh_copy(finished, tmp_path)
    mid_epoch = ckpt.checkpoint_dir(out) / "step-00000003"  # 3 of 8 batches into epoch 1
    assert _state(mid_epoch)["batches_in_epoch"] == 3
    with fail_after(60), pytest.raises(ConfigError, match=r"it stopped 3 batches into epoch 1, but an epoch of this "
                                                          r"run has 2 batches: the training data, batch size"):
        make_trainer(out, examples=16, resume_from_checkpoint=str(mid_epoch)).train()


def test_every_resume_failure_is_a_hub_error_not_a_torch_one(finished, tmp_path):
    """The same optimizer file shape-shuffled across groups: still a HubError."""
    out = fresh_copy(finished, tmp_path)
    folder = ckpt.latest(out)
    state = torch.load(folder / "optimizer.pt", weights_only=True)
    state["param_groups"] = state["param_groups"][::-1]
    torch.save(state, folder / "optimizer.pt")
    with pytest.raises(HubError):
        make_trainer(out, resume_from_checkpoint=True).train()


# -- NaN/inf/negative training arguments -------------------------------------------------------
@pytest.mark.parametrize("name, value, message", [
    ("learning_rate", math.nan, "must be a finite number"),
    ("learning_rate", math.inf, "must be a finite number"),
    ("learning_rate", -1e-3, "must be positive"),
    ("epochs", math.inf, "must be a finite number"),
    ("epochs", math.nan, "must be a finite number"),
    ("weight_decay", math.nan, "must be a finite number"),
    ("weight_decay", -0.1, "must be >= 0"),
    ("warmup_ratio", math.nan, "must be a finite number"),
    ("max_grad_norm", math.nan, "must be a finite number"),
    ("max_grad_norm", -1.0, "must be >= 0"),
    ("peak_tflops", math.inf, "must be a finite number"),
    ("seed", -1, "must be >= 0"),
    ("seed", 2**64, "out of range"),
    ("max_steps", 2**70, "out of range"),
    ("early_stopping_patience", 0, "must be positive"),
    ("num_workers", -2, "must be >= 0"),
])
def test_bad_numeric_training_arguments(name, value, message):
    with pytest.raises(ConfigError, match=rf"{name}.*{message}|{message}.*{name}"):
        TrainingArguments.from_kwargs(**{name: value})


@pytest.mark.parametrize("flag, value", [("--learning-rate", "nan"), ("--learning-rate", "inf"),
                                         ("--learning-rate", "-1"), ("--epochs", "nan")])
def test_cli_train_with_a_nan_learning_rate_is_a_clean_error(tmp_path, capsys, flag, value):
    from hub.cli import EXIT_ERROR, main

    data = tmp_path / "train.jsonl"
    data.write_text('{"text": "good", "label": "pos"}\n{"text": "bad", "label": "neg"}\n')
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"task: text-classify\nmodel: {tmp_path / 'nomodel'}\ndata: {{train: {data}}}\n"
                      f"output: {tmp_path / 'o'}\n")
    code = main(["train", str(recipe), flag, value])
    err = capsys.readouterr().err
    assert code == EXIT_ERROR
    assert err.startswith("error: ") and "Traceback" not in err
    assert "finite" in err or "positive" in err
