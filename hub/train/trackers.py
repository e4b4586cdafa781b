"""Experiment trackers beyond the run folder: Weights & Biases and MLflow, as Trainer callbacks.

``TrainingArguments(report_to=["wandb", "mlflow"])`` adds them (transformers' names); each is
a :class:`~hub.train.Callback` that sees the run through the documented
:class:`~hub.train.contract.TrainerView` only, writes on rank 0, and imports its library when
the run begins (the ``wandb`` / ``mlflow`` extras: ``pip install 'hub-sdk[wandb]'``). Every
record the Trainer logs (``loss``, ``lr``, ``samples_per_s``, ``eval_*``, ...) goes to the
tracker under the name it has in ``metrics.jsonl``, at its optimizer step; the run's
training arguments are its config (wandb) or parameters (MLflow).

Configuration is the libraries' own, read from the environment as transformers does:

* **wandb**: ``WANDB_PROJECT`` (default ``"hub"``), ``WANDB_MODE=offline`` (no network; files
  under ``WANDB_DIR``, else ``output_dir``, else the working directory), ``WANDB_API_KEY``...;
  an active ``wandb.run`` is logged into and left open.
* **MLflow**: ``MLFLOW_TRACKING_URI`` (``file:///path`` for a local store),
  ``MLFLOW_EXPERIMENT_NAME`` (default ``"hub"``); an active MLflow run is logged into and left
  open, otherwise a new run (named ``run_name``) is created and ended with training.
"""

from __future__ import annotations

import importlib
import os
import time
from pathlib import Path
from typing import Any

from hub.errors import MissingExtraError
from hub.train.callbacks import Callback
from hub.train.contract import TrainerView
from hub.train.state import TrainerState


def _require(module: str, extra: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(f"report_to={extra!r} needs the {module} library ({exc}): "
                                f"pip install 'hub-sdk[{extra}]'.") from None


def _scalars(logs: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in logs.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "step"}


class WandbCallback(Callback):
    """Logs every record to a Weights & Biases run (rank 0).

    The run's x-axis is the optimizer step (``define_metric("*", step_metric="step")``), so a
    resumed run's records, which restart at its checkpoint's step, are not dropped.

    Attributes:
        run: the ``wandb`` run being logged to (None outside training).
    """

    def __init__(self) -> None:
        self.run: Any = None
        self._owns = False

    def on_train_begin(self, trainer: TrainerView, state: TrainerState) -> None:
        if not trainer.is_main:
            return
        wandb = _require("wandb", "wandb")
        if wandb.run is not None:
            self.run, self._owns = wandb.run, False
        else:
            options: dict[str, Any] = {"project": os.environ.get("WANDB_PROJECT") or "hub",
                                       "config": trainer.args.to_dict(), "name": trainer.args.run_name}
            # passed explicitly every time: wandb reads WANDB_DIR once per process (its settings
            # singleton), so a second training with another WANDB_DIR would write to the first's
            run_dir = os.environ.get("WANDB_DIR") or trainer.args.output_dir
            if run_dir:
                Path(run_dir).mkdir(parents=True, exist_ok=True)
                options["dir"] = run_dir
            self.run, self._owns = wandb.init(**options), True
        self.run.define_metric("step")
        self.run.define_metric("*", step_metric="step", step_sync=True)

    def on_log(self, trainer: TrainerView, state: TrainerState, logs: dict[str, Any]) -> None:
        if self.run is not None:
            self.run.log({**_scalars(logs), "step": int(logs.get("step", state.global_step))})

    def on_train_end(self, trainer: TrainerView, state: TrainerState) -> None:
        if self.run is not None and self._owns:
            self.run.finish()
        self.run = None


class MLflowCallback(Callback):
    """Logs every record as MLflow metrics at its step, the arguments as parameters (rank 0).

    Attributes:
        run_id: the MLflow run logged to (kept after training, to find it again).
    """

    def __init__(self) -> None:
        self.client: Any = None
        self.run_id: str | None = None
        self._owns = False

    def on_train_begin(self, trainer: TrainerView, state: TrainerState) -> None:
        if not trainer.is_main:
            return
        mlflow = _require("mlflow", "mlflow")
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient()
        active = mlflow.active_run()
        if active is not None:
            self.run_id, self._owns = active.info.run_id, False
        else:
            name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or "hub"
            experiment = self.client.get_experiment_by_name(name)
            experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(name)
            run = self.client.create_run(experiment_id, run_name=trainer.args.run_name)
            self.run_id, self._owns = run.info.run_id, True
        if self._owns or trainer.resumed_from is None:  # an active run resumed has them (write-once)
            params = [Param(key, str(value)[:6000]) for key, value in trainer.args.to_dict().items()]
            self.client.log_batch(self.run_id, params=params)

    def on_log(self, trainer: TrainerView, state: TrainerState, logs: dict[str, Any]) -> None:
        if self.client is None or self.run_id is None:
            return
        from mlflow.entities import Metric

        step, now = int(logs.get("step", state.global_step)), int(time.time() * 1000)
        metrics = [Metric(key, value, now, step) for key, value in _scalars(logs).items()]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    def on_train_end(self, trainer: TrainerView, state: TrainerState) -> None:
        if self.client is not None and self.run_id is not None and self._owns:
            self.client.set_terminated(self.run_id)
        self.client = None


def tracker_callbacks(args: Any) -> list[Callback]:
    """The wandb / MLflow callbacks ``args.report_to`` asks for (after the defaults' writers)."""
    trackers = args.trackers() if hasattr(args, "trackers") else []
    callbacks: list[Callback] = []
    if "wandb" in trackers:
        callbacks.append(WandbCallback())
    if "mlflow" in trackers:
        callbacks.append(MLflowCallback())
    return callbacks


__all__ = ["MLflowCallback", "WandbCallback", "tracker_callbacks"]
