"""What every training verb does before and after the task's own code: data in, lineage out.

The Pipeline base wraps each task's ``fine_tune``, ``pretrain`` and ``evaluate`` with
:func:`wrap_verb` when the class is defined, so every task, built-in or third-party, gets:

* **Hugging Face datasets as data**: a ``DatasetDict`` is resolved to its splits
  (``split=`` / ``eval_split=`` name others; :func:`hub.data.hf_datasets.resolve_splits`) and a
  ``Dataset`` / ``IterableDataset`` becomes its rows as plain dicts, which the task's readers
  check as they check a file's rows.
* **Lineage for the model card**: after training, ``pipe.metadata["base_model"]`` names the
  model training started from (none for a model made from scratch) and
  ``pipe.metadata["training"]`` holds the verb, the data (file name, or dataset name, split
  and rows), the training arguments and the best evaluation's figures; ``evaluate`` records
  ``pipe.metadata["evaluation"]``. :func:`hub.card.render_model_card` writes them into the
  saved folder's README.md, as transformers' Trainer writes its model card.

Nothing here imports torch or datasets.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

#: training arguments a model card leaves out: where files went and how the run was shown
_CARD_SKIP_ARGS = ("output_dir", "resume_from_checkpoint", "device", "progress", "log_every", "num_workers",
                   "report_to", "run_name", "tensorboard", "peak_tflops", "save_total_limit", "save_checkpoints")


def wrap_verb(verb: str, method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` (a task's fine_tune / pretrain / evaluate) with datasets input and lineage.

    ``split=`` and ``eval_split=`` are taken by the wrapper unless the task's own method
    declares them. Wrapping twice returns the first wrapper.
    """
    if getattr(method, "__hub_verb__", False):
        return method
    signature = inspect.signature(method)
    names = [name for name, p in signature.parameters.items()
             if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)][1:]  # after self
    data_name = names[0] if names else None
    eval_name = "eval" if "eval" in signature.parameters else None
    own = {name for name in ("split", "eval_split") if name in signature.parameters}

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        from hub.data.hf_datasets import maybe_records, training_records

        split = kwargs.pop("split", None) if "split" not in own else None
        eval_split = kwargs.pop("eval_split", None) if "eval_split" not in own else None
        args = list(args)
        data = _get(args, kwargs, 0, data_name)
        if verb == "evaluate":
            if eval_split is not None:
                from hub.errors import ConfigError

                raise ConfigError("evaluate() reads one split: name it with split=, not eval_split=.")
            data = maybe_records(data, role="test", split=split)
            _put(args, kwargs, 0, data_name, data)
            metrics = method(self, *args, **kwargs)
            if isinstance(metrics, dict):
                self.metadata["evaluation"] = {"data": _describe(data), "metrics": _numbers(metrics)}
            return metrics
        eval_data = _get(args, kwargs, 1, eval_name) if eval_name else None
        data, eval_data = training_records(data, eval_data, split=split, eval_split=eval_split)
        _put(args, kwargs, 0, data_name, data)
        if eval_data is not None:
            _put(args, kwargs, 1, eval_name, eval_data)
        base = base_model_of(self.metadata)
        result = method(self, *args, **kwargs)
        record_training(self.metadata, verb, result, base=base, data=data, eval_data=eval_data)
        return result

    wrapper.__hub_verb__ = True  # type: ignore[attr-defined]
    return wrapper


def base_model_of(metadata: dict[str, Any]) -> str | None:
    """The model a training run starts from: an earlier run's base, else the loaded model's
    catalogue name, repo id or folder; None for a model made from scratch."""
    if metadata.get("base_model"):
        return str(metadata["base_model"])
    if metadata.get("from_scratch") or metadata.get("source") == "scratch":
        return None
    if metadata.get("model_name"):
        return str(metadata["model_name"])
    source = metadata.get("source")
    if isinstance(source, str) and source:
        if source.startswith("hf://"):
            return source[len("hf://"):].split("@", 1)[0]
        return source
    return None


def record_training(metadata: dict[str, Any], verb: str, result: Any, *, base: str | None, data: Any,
                    eval_data: Any) -> None:
    """Write ``metadata["training"]`` (and ``base_model``) from a finished run's TrainResult."""
    training: dict[str, Any] = {"verb": verb, "data": _describe(data)}
    if eval_data is not None:
        training["eval_data"] = _describe(eval_data)
    arguments = getattr(result, "arguments", None)
    if isinstance(arguments, dict) and arguments:
        training["arguments"] = {k: v for k, v in arguments.items() if k not in _CARD_SKIP_ARGS and v is not None}
    for key in ("train_examples", "eval_examples", "steps", "epochs_run", "best_step", "best_epoch"):
        value = getattr(result, key, None)
        if value is not None:
            training[key] = value
    history = list(getattr(result, "history", None) or [])
    best_step = getattr(result, "best_step", None)
    best = next((r for r in history if r.get("step") == best_step), history[-1] if history else None)
    if best:
        training["results"] = _numbers({k: v for k, v in best.items() if k not in ("step", "epoch")})
    if history:
        training["history"] = [_numbers(r) for r in history[-50:]]
    metadata["training"] = training
    if base is not None:
        metadata["base_model"] = base


def _describe(source: Any) -> Any:
    from hub.data.hf_datasets import describe_data

    return describe_data(source)


def _numbers(record: dict[str, Any]) -> dict[str, Any]:
    """Floats rounded to 4 significant places for the card; other plain values kept."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, float):
            out[key] = float(f"{value:.4g}")
        elif isinstance(value, (int, str)):
            out[key] = value
    return out


def _get(args: list[Any], kwargs: dict[str, Any], position: int, name: str | None) -> Any:
    if len(args) > position:
        return args[position]
    return kwargs.get(name) if name else None


def _put(args: list[Any], kwargs: dict[str, Any], position: int, name: str | None, value: Any) -> None:
    if len(args) > position:
        args[position] = value
    elif name and (name in kwargs or value is not None):
        kwargs[name] = value


__all__ = ["base_model_of", "record_training", "wrap_verb"]
