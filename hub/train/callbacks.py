"""Callbacks: small objects the Trainer calls at fixed points of a run.

Each hook gets a :class:`~hub.train.contract.TrainerView` (the run's arguments, state,
model, optimizer, scheduler, device and process layout, read-only), never the Trainer
itself, and the live :class:`~hub.train.TrainerState` (a hook may set
``state.should_stop``). Every process calls them (so a callback can take part in
collectives); the writers check ``trainer.is_main`` before touching files or the terminal.
``on_log`` receives the record
about to be written and may add entries to it: the producers (learning rate, throughput)
run before the writers (JSONL, TensorBoard, progress bar) because ``default_callbacks``
orders them so. The experiment trackers (``report_to``: JSONL, TensorBoard here; Weights &
Biases and MLflow in :mod:`hub.train.trackers`) are writers too.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

from hub.train.contract import TrainerView
from hub.train.flops import model_flops_per_token, peak_tflops
from hub.train.state import TrainerState


class Callback:
    """Override the hooks you need; each gets a :class:`TrainerView` (named ``trainer``: callbacks
    written when it was the Trainer itself keep working) and the state.

    The hooks, in the order a run calls them: ``on_train_begin``; after every optimizer step
    ``on_step_end``, then ``on_log`` (every ``log_every`` steps; ``logs`` may be extended),
    ``on_evaluate`` (after the evaluation's own ``on_log``), ``on_epoch_end``, ``on_save``
    (``path``: the checkpoint folder; rank 0 only); ``on_train_end``.
    """

    def on_train_begin(self, trainer: TrainerView, state: TrainerState) -> None: ...

    def on_step_end(self, trainer: TrainerView, state: TrainerState) -> None: ...

    def on_log(self, trainer: TrainerView, state: TrainerState, logs: dict[str, Any]) -> None: ...

    def on_evaluate(self, trainer: TrainerView, state: TrainerState, metrics: dict[str, float]) -> None: ...

    def on_save(self, trainer: TrainerView, state: TrainerState, path: Path) -> None: ...

    def on_epoch_end(self, trainer: TrainerView, state: TrainerState) -> None: ...

    def on_train_end(self, trainer: TrainerView, state: TrainerState) -> None: ...


class LearningRateMonitor(Callback):
    """Adds ``lr`` (the first parameter group's learning rate) to every log record."""

    def on_log(self, trainer: TrainerView, state: TrainerState, logs: dict[str, Any]) -> None:
        if "loss" in logs and trainer.scheduler is not None:
            logs["lr"] = trainer.scheduler.get_last_lr()[0]


class Throughput(Callback):
    """Adds samples/s and tokens/s (all processes together) since the previous record, and
    ``mfu`` when the model reports ``flops_per_token`` and the device's peak is known."""

    def __init__(self) -> None:
        self._last: tuple[float, int, int] | None = None

    def on_train_begin(self, trainer: TrainerView, state: TrainerState) -> None:
        self._last = (time.perf_counter(), state.samples_seen, state.tokens_seen)

    def on_log(self, trainer: TrainerView, state: TrainerState, logs: dict[str, Any]) -> None:
        if "loss" not in logs or self._last is None:
            return
        now = time.perf_counter()
        then, samples, tokens = self._last
        self._last = (now, state.samples_seen, state.tokens_seen)
        seconds = now - then
        if seconds <= 0:
            return
        logs["samples_per_s"] = round((state.samples_seen - samples) / seconds, 3)
        if state.tokens_seen > tokens:
            tokens_per_s = (state.tokens_seen - tokens) / seconds
            logs["tokens_per_s"] = round(tokens_per_s, 1)
            flops = model_flops_per_token(trainer.unwrapped_model, trainer.last_seq_len)
            peak = trainer.args.peak_tflops or (
                peak_tflops(_gpu_name(trainer)) if trainer.device.type == "cuda" else None)
            if flops and peak:
                logs["mfu"] = flops * tokens_per_s / (peak * 1e12 * trainer.world_size)


class EarlyStopping(Callback):
    """Stops the run after ``patience`` evaluations without improvement of the monitored metric."""

    def __init__(self, patience: int) -> None:
        self.patience = patience

    def on_evaluate(self, trainer: TrainerView, state: TrainerState, metrics: dict[str, float]) -> None:
        if state.evals_without_improvement >= self.patience:
            state.should_stop = state.stopped_early = True


class JsonlLogger(Callback):
    """Appends every record to ``output_dir/metrics.jsonl`` (rank 0).

    A resumed run first cuts the file back to the rows logged up to its checkpoint's step
    (atomically: a temporary file renamed over it): the rows after it belong to the stretch of
    the run that is trained again, and would otherwise appear twice. A row torn by a kill
    (not JSON) is dropped too; rows without a ``"step"`` are kept.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_train_begin(self, trainer: TrainerView, state: TrainerState) -> None:
        if trainer.is_main and trainer.resumed_from is not None and self.path.is_file():
            truncate_log(self.path, state.global_step)

    def on_log(self, trainer: TrainerView, state: TrainerState, logs: dict[str, Any]) -> None:
        if trainer.is_main:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(logs) + "\n")


class TensorBoardLogger(Callback):
    """Scalars to ``output_dir/tensorboard`` when the tensorboard package is installed (rank 0)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir, self.writer = log_dir, None

    def on_train_begin(self, trainer: TrainerView, state: TrainerState) -> None:
        if trainer.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.log_dir))

    def on_log(self, trainer: TrainerView, state: TrainerState, logs: dict[str, Any]) -> None:
        if self.writer is not None:
            for key, value in logs.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in ("step", "epoch"):
                    self.writer.add_scalar(key, value, logs.get("step", state.global_step))

    def on_train_end(self, trainer: TrainerView, state: TrainerState) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class ProgressBar(Callback):
    """A tqdm bar over optimizer steps with the latest loss (rank 0)."""

    def __init__(self) -> None:
        self.bar = None

    def on_train_begin(self, trainer: TrainerView, state: TrainerState) -> None:
        if trainer.is_main:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=state.total_steps, initial=state.global_step, desc="training", unit="step")

    def on_step_end(self, trainer: TrainerView, state: TrainerState) -> None:
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, trainer: TrainerView, state: TrainerState, logs: dict[str, Any]) -> None:
        if self.bar is not None and "loss" in logs:
            self.bar.set_postfix(loss=f"{logs['loss']:.4f}")

    def on_train_end(self, trainer: TrainerView, state: TrainerState) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def truncate_log(path: Path, step: int) -> int:
    """Keep the JSONL rows of ``path`` logged at or before ``step``; returns how many were dropped."""
    import os
    import tempfile

    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            dropped += bool(line.strip())
            continue
        at = record.get("step") if isinstance(record, dict) else None
        if isinstance(at, (int, float)) and not isinstance(at, bool) and at > step:
            dropped += 1
            continue
        kept.append(line)
    if not dropped:
        return 0
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in kept))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o7777)  # mkstemp's 0600 would hide the log from others
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return dropped


def tensorboard_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None


def default_callbacks(args: Any) -> list[Callback]:
    """Producers first, then writers; what the arguments ask for (the trackers outside the run
    folder, wandb and MLflow, come from :func:`hub.train.trackers.tracker_callbacks`)."""
    callbacks: list[Callback] = [LearningRateMonitor(), Throughput()]
    if args.early_stopping_patience is not None:
        callbacks.append(EarlyStopping(args.early_stopping_patience))
    trackers = args.trackers() if hasattr(args, "trackers") else ["jsonl", "tensorboard"]
    if args.output_dir:  # the file-based writers need the run's folder
        if "jsonl" in trackers:
            callbacks.append(JsonlLogger(Path(args.output_dir) / "metrics.jsonl"))
        if "tensorboard" in trackers:
            callbacks.append(TensorBoardLogger(Path(args.output_dir) / "tensorboard"))
    if args.progress:
        callbacks.append(ProgressBar())
    return callbacks


def _gpu_name(trainer: TrainerView) -> str | None:
    import torch

    return torch.cuda.get_device_name(trainer.device) if torch.cuda.is_available() else None
