"""The Pipeline base: preprocess -> length-sorted batches -> model -> postprocess.

A pipeline takes one input (returns one result) or a list (returns a list in the
same order). Lists are preprocessed at once into *features* (one per input, or
several when a long input is cut into windows), sorted by length and cut into
batches of ``batch_size`` so that each batch pads only to its own longest item.
The model's per-feature outputs are then grouped back by input and postprocessed.
Subclasses implement the steps and the training verbs of their task.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch

from hub.errors import InvalidInputError


class Pipeline:
    """Base class of every task pipeline; plugins subclass it."""

    task: ClassVar[str] = ""
    default_batch_size: ClassVar[int] = 32

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # contract checked at definition time, not when a user first calls the pipeline
        if not cls.__name__.startswith("_") and not cls.task and not cls.__dict__.get("__abstract__", False):
            raise TypeError(f"Pipeline subclass {cls.__qualname__} must set the class attribute `task`.")

    def __init__(self, model: torch.nn.Module, *, device: torch.device | str = "cpu",
                 dtype: torch.dtype | None = None, metadata: dict[str, Any] | None = None) -> None:
        self.model = model
        self.device = torch.device(device)
        self.dtype = dtype
        self.metadata: dict[str, Any] = dict(metadata or {})

    # -- the steps a subclass provides -----------------------------------------------
    @classmethod
    def from_folder(cls, folder: Path, *, device: torch.device, dtype: torch.dtype | None,
                    metadata: dict[str, Any]) -> "Pipeline":
        raise NotImplementedError

    def preprocess(self, inputs: list[Any], **params: Any) -> list[dict[str, Any]]:
        """Turn the inputs into feature dicts with an integer ``"length"``.

        One feature per input, in order; or, for inputs split into several pieces, features
        carrying ``"input_index"`` (the input they belong to).
        """
        raise NotImplementedError

    def collate(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def forward(self, batch: dict[str, torch.Tensor]) -> Any:
        raise NotImplementedError

    def unbatch(self, outputs: Any) -> list[Any]:
        """Split a batch of model outputs into one output per feature (on the CPU)."""
        if isinstance(outputs, torch.Tensor):
            return list(outputs.cpu().unbind(0))
        if isinstance(outputs, dict):
            columns = {k: self.unbatch(v) for k, v in outputs.items()}
            return [dict(zip(columns, row)) for row in zip(*columns.values())]
        raise TypeError(f"{type(self).__name__}.forward returned {type(outputs).__name__}; override unbatch().")

    def postprocess(self, outputs: list[Any], features: list[dict[str, Any]], **params: Any) -> Any:
        """One input's result from the outputs of its features (usually exactly one)."""
        raise NotImplementedError

    def save(self, folder: str | Path) -> Path:
        raise NotImplementedError

    def fine_tune(self, train: Any, eval: Any = None, **training_args: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not support fine-tuning yet.")

    def pretrain(self, data: Any, **training_args: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not support pretraining yet.")

    # -- shared machinery ------------------------------------------------------------
    def __call__(self, inputs: Any, *, batch_size: int | None = None, **params: Any) -> Any:
        single = not isinstance(inputs, (list, tuple))
        items = [inputs] if single else list(inputs)
        if not items:
            raise InvalidInputError(f"{self.task}: got an empty list; pass one input or a "
                                    "non-empty list of inputs.")
        batch_size = batch_size or self.default_batch_size
        if not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}.")
        features = self.preprocess(items, **params)
        order = sorted(range(len(features)), key=lambda i: features[i]["length"])
        outputs: list[Any] = [None] * len(features)
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            batch = {k: v.to(self.device, non_blocking=True)
                     for k, v in self.collate([features[i] for i in chunk]).items()}
            with torch.inference_mode(), self.autocast():
                for index, output in zip(chunk, self.unbatch(self.forward(batch))):
                    outputs[index] = output
        groups: list[list[int]] = [[] for _ in items]
        for index, feature in enumerate(features):
            groups[feature.get("input_index", index)].append(index)
        results = [self.postprocess([outputs[i] for i in group], [features[i] for i in group], **params)
                   for group in groups]
        return results[0] if single else results

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16/fp16 autocast when the pipeline was loaded with such a dtype on CUDA."""
        if self.device.type == "cuda" and self.dtype in (torch.bfloat16, torch.float16):
            return torch.autocast("cuda", dtype=self.dtype)
        return contextlib.nullcontext()

    def push_to_hub(self, repo_id: str, *, token: str | None = None, private: bool = False,
                    commit_message: str = "Upload model with Hub") -> str:
        """Save to a temporary folder (safetensors + config + model card) and upload it."""
        import tempfile

        from hub.hf import push_folder

        with tempfile.TemporaryDirectory() as tmp:
            folder = self.save(Path(tmp) / "model")
            return push_folder(folder, repo_id, token=token, private=private,
                               commit_message=commit_message)

    def __repr__(self) -> str:
        name = self.metadata.get("model_name") or self.metadata.get("source", "?")
        return f"{type(self).__name__}(task={self.task!r}, model={name!r}, device={str(self.device)!r})"


def check_batch_of(items: Sequence[Any], expected: type | tuple[type, ...], what: str, task: str) -> None:
    """Raise InputTypeError naming the first item of the wrong type and its index."""
    from hub.errors import InputTypeError

    for index, item in enumerate(items):
        if not isinstance(item, expected):
            raise InputTypeError(f"{task}: input {index} is a {type(item).__name__} "
                                 f"({item!r:.60}); expected {what}.")
