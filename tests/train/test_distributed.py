"""DDP and FSDP2 under torchrun (gloo, 2 CPU processes) against one process with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hub.train.checkpoint import load_weights

SCRIPT = Path(__file__).with_name("toy_run.py")


def run(out: Path, *flags: str, nproc: int = 1) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if nproc == 1:
        cmd = [sys.executable, str(SCRIPT), str(out), *flags]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               str(SCRIPT), str(out), *flags]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.fixture(scope="module")
def single_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single")
    run(out, "--batch-size", "16", "--max-steps", "10", "--float64")
    return out


def eval_losses(folder: Path) -> list[float]:
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return [r["eval_loss"] for r in records if "eval_loss" in r]


@pytest.mark.parametrize("strategy, flags", [
    ("ddp", ["--batch-size", "8"]),
    ("ddp", ["--batch-size", "4", "--accumulation", "2"]),
    ("fsdp", ["--batch-size", "8"]),
])
def test_two_processes_equal_one_process_with_the_same_global_batch(tmp_path, single_run, strategy, flags):
    # float64 weights: the comparison is then sharp (a wrong batch split, averaging or schedule shows as
    # a difference of 1e-3 or more) while the rounding noise Adam amplifies stays far below 1e-5
    run(tmp_path, *flags, "--max-steps", "10", "--float64", "--distributed", strategy, nproc=2)
    rank0 = load_weights(tmp_path / "final-rank0.safetensors")
    rank1 = load_weights(tmp_path / "final-rank1.safetensors")
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)  # identical on both ranks
    assert max_diff(rank0, load_weights(single_run / "final-rank0.safetensors")) <= 1e-5
    # evaluation is split across the ranks and reduced: the same losses as one process
    assert eval_losses(tmp_path) == pytest.approx(eval_losses(single_run), abs=1e-9)
    assert len(eval_losses(tmp_path)) == 2
    untrained = load_weights_of_fresh_model()
    assert max_diff(rank0, untrained) > 1e-2  # training really moved the weights
    # rank 0 alone wrote the log and the checkpoints
    assert (tmp_path / "metrics.jsonl").is_file()
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] != []


def load_weights_of_fresh_model() -> dict[str, torch.Tensor]:
    sys.path.insert(0, str(SCRIPT.parent))
    from toy_run import ToyEncoderClassifier

    torch.manual_seed(0)
    return {k: v.double() for k, v in ToyEncoderClassifier(0.0).state_dict().items()}


def test_fp32_ranks_stay_identical(tmp_path):
    run(tmp_path, "--batch-size", "8", "--max-steps", "6", "--distributed", "ddp", nproc=2)
    rank0 = load_weights(tmp_path / "final-rank0.safetensors")
    rank1 = load_weights(tmp_path / "final-rank1.safetensors")
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
