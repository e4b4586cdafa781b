"""``time-series-forecast``: one series in (a list, tuple, 1-D NumPy array or tensor of
numbers), ``{"forecast": [horizon floats]}`` out; a list of series gives a list of results.

A single input is itself a list, so the pipeline overrides :meth:`is_batch`: a list of
numbers is one series, a list of series is a batch. Every input is cut to its last
``context_length`` values, so all features have the same length and batching never pads:
a batch's forecasts equal each series' forecast alone (``hub.testing`` checks it).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch

from hub.errors import ConfigError, DataError, InputTypeError, InvalidInputError
from hub.modeling import build_module
from hub.pipeline import Pipeline, default_device
from hub.results import Result
from hub_forecast.model import PatchForecaster
from hub_forecast.plugin import ARCHITECTURE, TASK


def as_series(value: Any, where: str, *, minimum: int) -> torch.Tensor:
    """``value`` as a float64 1-D tensor of finite numbers, at least ``minimum`` long, or an
    error naming ``where`` (e.g. ``"input 2"``) and what to pass instead."""
    if isinstance(value, torch.Tensor):
        values = value.detach().cpu().double()
    elif hasattr(value, "__array__") or isinstance(value, (list, tuple)):
        if isinstance(value, (list, tuple)) and not all(
                isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
            raise InputTypeError(f"{TASK}: {where} holds a non-number; a series is a list or 1-D array of numbers.")
        try:
            values = torch.as_tensor(value, dtype=torch.float64)
        except (TypeError, ValueError) as exc:
            raise InputTypeError(f"{TASK}: {where} is not a series of numbers ({exc}).") from None
    else:
        raise InputTypeError(f"{TASK}: {where} is a {type(value).__name__} ({value!r:.60}); expected a series "
                             "(a list, tuple, 1-D NumPy array or tensor of numbers).")
    if values.ndim != 1:
        raise InvalidInputError(f"{TASK}: {where} has shape {tuple(values.shape)}; a series is 1-D "
                                "(pass several series as a list of series).")
    if len(values) < minimum:
        raise InvalidInputError(f"{TASK}: {where} has {len(values)} values; this model needs at least {minimum} "
                                "(its context_length for a forecast, + horizon for a training series).")
    if not torch.isfinite(values).all():
        raise InvalidInputError(f"{TASK}: {where} holds NaN or infinite values; fill or drop them first.")
    return values


class ForecastPipeline(Pipeline):
    task = TASK
    architecture = ARCHITECTURE
    # hub.load reads a folder through the base's from_folder: these name the module it takes
    model_types = PatchForecaster
    model_needs = f"a {ARCHITECTURE!r} one (saved by this plugin)"
    default_batch_size = 64

    def __init__(self, model: PatchForecaster, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.model.to(self.device)

    @property
    def context_length(self) -> int:
        return self.model.config["context_length"]

    @property
    def horizon(self) -> int:
        return self.model.config["horizon"]

    # -- building and loading -------------------------------------------------------------
    @classmethod
    def from_scratch(cls, config: dict[str, Any] | None = None, *, tokenizer: Any = None,
                     device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                     seed: int | None = None) -> "ForecastPipeline":
        """A randomly initialised ``patch-forecaster``.

        Args:
            config: sizes over :data:`hub_forecast.model.DEFAULT_CONFIG` (``context_length``,
                ``patch_length``, ``horizon``, ``backbone``: TransformerConfig fields).
            tokenizer: refused (a series has no tokens).
            device, dtype: where and in which precision the model lives.
            seed: initialisation seed (default 0: reproducible).

        Returns:
            The pipeline; train it with :meth:`fine_tune`.
        """
        if tokenizer is not None:
            raise ConfigError(f"{TASK} takes no tokenizer: its inputs are numbers.")
        torch.manual_seed(0 if seed is None else seed)
        model = build_module(ARCHITECTURE, dict(config or {}))  # size-checked before it is built
        model = model.to(dtype=dtype) if dtype else model
        return cls(model.eval(), device=default_device(device), dtype=dtype,
                   metadata={"task": TASK, "architecture": ARCHITECTURE, "from_scratch": True})

    @classmethod
    def conformance_example(cls) -> dict[str, Any]:
        """The tiny example :func:`hub.testing.check_task` runs when given no other."""
        wave = lambda n, phase: [math.sin(2 * math.pi * t / 8 + phase) for t in range(n)]  # noqa: E731
        return {
            "config": {"context_length": 16, "patch_length": 4, "horizon": 4,
                       "backbone": {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32}},
            "inputs": [wave(20, 0.0), wave(24, 1.0), wave(30, 2.0)],
            "train": [wave(40, 0.5), wave(40, 1.5)],
        }

    # -- prediction -----------------------------------------------------------------------
    def is_batch(self, inputs: Any) -> bool:
        """A list of series is a batch; a list of numbers is one series."""
        if isinstance(inputs, (list, tuple)):
            return not inputs or not isinstance(inputs[0], numbers.Real)
        return False

    def preprocess(self, inputs: list[Any], **_: Any) -> list[dict[str, Any]]:
        features = []
        for index, item in enumerate(inputs):
            values = as_series(item, f"input {index}", minimum=self.context_length)
            features.append({"length": self.context_length, "series": values[-self.context_length:].float(),
                             "input_length": len(values)})
        return features

    def collate(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = {"series": torch.stack([f["series"] for f in features])}
        if "target" in features[0]:
            batch["target"] = torch.stack([f["target"] for f in features])
        return batch

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(series=batch["series"])["logits"].float()

    def postprocess(self, outputs: list[torch.Tensor], features: list[dict[str, Any]], **_: Any) -> Result:
        return Result({"forecast": outputs[0].tolist()},
                      metadata={"horizon": self.horizon, "context_used": self.context_length,
                                "input_length": features[0]["input_length"]})

    # -- training and evaluation ----------------------------------------------------------
    def windows(self, data: Any, what: str, *, stride: int = 1) -> list[dict[str, torch.Tensor]]:
        """Every (context, next horizon values) window of the series in ``data`` (a list of
        series), ``stride`` steps apart: the training examples."""
        if not isinstance(data, (list, tuple)) or not data:
            raise DataError(f"{TASK}: {what} must be a non-empty list of series, got {type(data).__name__}.")
        if not isinstance(stride, int) or isinstance(stride, bool) or stride < 1:
            raise ConfigError(f"{TASK}: stride must be a positive integer, got {stride!r}.")
        span = self.context_length + self.horizon
        examples = []
        for index, item in enumerate(data):
            values = as_series(item, f"{what} series {index}", minimum=span).float()
            for start in range(0, len(values) - span + 1, stride):
                examples.append({"series": values[start:start + self.context_length],
                                 "target": values[start + self.context_length:start + span]})
        return examples

    def fine_tune(self, train: Any, eval: Any = None, *, stride: int = 1, **training_args: Any):
        """Train on a list of series through :class:`hub.train.Trainer`.

        Args:
            train: a list of series, each at least ``context_length + horizon`` long; every
                window ``stride`` steps apart is one example.
            eval: held-out series, windowed the same way (loss each epoch; best weights kept).
            stride: steps between windows.
            **training_args: :class:`hub.train.TrainingArguments` fields (epochs, batch_size,
                learning_rate, max_steps, device, output_dir...).

        Returns:
            The :class:`hub.train.TrainResult`; the pipeline keeps the trained weights.
        """
        from hub.train import Trainer, TrainingArguments

        args = TrainingArguments.from_kwargs(**training_args)
        trainer = Trainer(self.model, args, train_data=self.windows(train, "train", stride=stride),
                          collate=self.collate,
                          eval_data=self.windows(eval, "eval", stride=stride) if eval is not None else None)
        result = trainer.train()
        self.model.to(self.device).eval()
        self.metadata["from_scratch"] = False
        return result

    def evaluate(self, data: Any, **_: Any) -> dict[str, float]:
        """Forecast each series' last ``horizon`` values from the values before them.

        Returns:
            ``{"mae": ..., "mae_last_value": ..., "n": ...}``: the model's mean absolute
            error and that of repeating the last seen value (the naive baseline).
        """
        if not isinstance(data, (list, tuple)) or not data:
            raise DataError(f"{TASK}: evaluate() takes a non-empty list of series.")
        series = [as_series(s, f"series {i}", minimum=self.context_length + self.horizon) for i, s in enumerate(data)]
        contexts = [s[:-self.horizon] for s in series]
        forecasts = self(contexts)
        errors, naive = [], []
        for s, context, result in zip(series, contexts, forecasts):
            target = s[-self.horizon:]
            errors.append((torch.tensor(result["forecast"], dtype=torch.float64) - target).abs().mean().item())
            naive.append((context[-1] - target).abs().mean().item())
        return {"mae": sum(errors) / len(errors), "mae_last_value": sum(naive) / len(naive), "n": len(series)}
