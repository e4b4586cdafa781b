"""Checkpoints: a run SIGKILLed part-way and resumed ends bit-identical to an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hub.errors import ConfigError
from hub.train import checkpoint as ckpt
from hub.train.checkpoint import load_weights

SCRIPT = Path(__file__).with_name("toy_run.py")
# dropout on (the random generators must be restored), accumulation 2, batch 8 over 96 examples:
# 6 optimizer steps per epoch; 14 steps end inside the third epoch
FLAGS = ["--batch-size", "8", "--accumulation", "2", "--max-steps", "14", "--save-steps", "4", "--dropout", "0.1"]


def run(out: Path, *flags: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(SCRIPT), str(out), *FLAGS, *flags], capture_output=True,
                          text=True, env=env, timeout=300)


def test_sigkill_then_resume_is_bit_exact(tmp_path):
    whole, crashed = tmp_path / "whole", tmp_path / "crashed"
    assert run(whole).returncode == 0
    killed = run(crashed, "--kill-at-step", "10")  # the step after the mid-epoch checkpoint of step 8
    assert killed.returncode == -signal.SIGKILL
    assert not (crashed / "final-rank0.safetensors").exists()
    assert ckpt.latest(crashed).name == "step-00000008"
    resumed = run(crashed, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = load_weights(whole / "final-rank0.safetensors"), load_weights(crashed / "final-rank0.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the uninterrupted run"
    fresh_state = json.loads((ckpt.latest(crashed) / "trainer_state.json").read_text())
    assert fresh_state["global_step"] == 14
    # the resumed run's evaluation records equal the uninterrupted run's
    evals = [[r for r in map(json.loads, (d / "metrics.jsonl").read_text().splitlines()) if "eval_loss" in r]
             for d in (whole, crashed)]
    assert evals[0][-1] == evals[1][-1]


def test_checkpoint_holds_everything_and_rotates(tmp_path):
    assert run(tmp_path).returncode == 0
    names = [p.name for p in ckpt.list_checkpoints(tmp_path)]
    # saved at 4, 6 (epoch end), 8, 12 (epoch end) and 14 (the end); the last two kept, plus the best
    state = json.loads((tmp_path / "checkpoints" / names[-1] / "trainer_state.json").read_text())
    assert names[-2:] == ["step-00000012", "step-00000014"]
    assert set(names) == {"step-00000012", "step-00000014", state["best_checkpoint"]}
    folder = tmp_path / "checkpoints" / names[-1]
    assert {p.name for p in folder.iterdir()} == {"model.safetensors", "optimizer.pt", "scheduler.pt", "rng.pt",
                                                  "trainer_state.json"}
    for name in ("optimizer.pt", "scheduler.pt", "rng.pt"):  # plain data: loads with weights_only=True
        torch.load(folder / name, weights_only=True)
    assert state["epoch"] == 2 and state["batches_in_epoch"] == 4 and state["args"]["save_steps"] == 4


def test_incomplete_checkpoints_are_never_latest(tmp_path):
    root = tmp_path / "checkpoints"
    (root / "step-00000004").mkdir(parents=True)
    (root / "step-00000004" / "trainer_state.json").write_text("{}")
    (root / ".tmp-step-00000008-abcd1234").mkdir()  # killed while writing
    (root / "step-00000009").mkdir()  # no trainer_state.json: not a checkpoint
    assert ckpt.latest(tmp_path).name == "step-00000004"
    ckpt.rotate(tmp_path, keep_last=1)
    assert not (root / ".tmp-step-00000008-abcd1234").exists()


def test_resume_errors_name_the_fix(tmp_path):
    with pytest.raises(ConfigError, match="No complete checkpoint"):
        ckpt.resolve_resume(True, str(tmp_path))
    with pytest.raises(ConfigError, match="needs output_dir"):
        ckpt.resolve_resume(True, None)
    with pytest.raises(ConfigError, match="not a training checkpoint"):
        ckpt.resolve_resume(str(tmp_path), None)


def test_tied_weights_are_stored_once_and_restored_tied(tmp_path):
    shared = torch.randn(4, 3)
    ckpt.save_weights({"a.weight": shared, "b.weight": shared, "c": torch.ones(2)}, tmp_path / "w.safetensors")
    back = load_weights(tmp_path / "w.safetensors")
    assert torch.equal(back["a.weight"], shared) and back["b.weight"] is back["a.weight"]
