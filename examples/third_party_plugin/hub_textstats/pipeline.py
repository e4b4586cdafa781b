"""``text-stats``: a text in, ``{"words", "characters", "sentences", ...}`` out.

It has no weights, yet it is a normal :class:`hub.pipeline.Pipeline`: it loads from a
model folder (``config.json`` holds its options), batches like every other pipeline and
saves back to a folder through the base's ``save`` (only :meth:`_save_model` is its
own) and loads through the base's ``from_folder`` (only :meth:`_load_model`, which reads
the options instead of weights, and :meth:`_from_loaded` are its own), so ``hub.load``,
``hub predict`` and ``pipe.save`` all work.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from hub.errors import InvalidInputError, ModelLoadError
from hub.modeling import LoadedModel
from hub.pipeline import Pipeline, check_batch_of
from hub.results import Result

ARCHITECTURE = "text-stats"
DEFAULTS: dict[str, Any] = {
    "word_pattern": r"[\w'-]+",
    "sentence_pattern": r"[^.!?]+(?:[.!?]+|$)",
    "lowercase": True,
    "top_words": 3,
}
_TYPES: dict[str, type] = {"word_pattern": str, "sentence_pattern": str, "lowercase": bool, "top_words": int}


class TextStatsPipeline(Pipeline):
    task = "text-stats"
    default_batch_size = 256

    def __init__(self, options: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(torch.nn.Identity(), **kwargs)  # no weights: the "model" passes counts through
        self.options = {**DEFAULTS, **options}
        self._words = re.compile(self.options["word_pattern"])
        self._sentences = re.compile(self.options["sentence_pattern"])

    @classmethod
    def conformance_example(cls) -> dict[str, Any]:
        """Inputs for :func:`hub.testing.check_task` (the task has no weights, so no training)."""
        return {"inputs": ["Hello world. How are you?", "", "one two three"]}

    # -- loading: the base's from_folder (metadata, the pipeline) calls these two for a
    #    folder without weights: the options come from config.json
    @classmethod
    def _load_model(cls, folder: Path, *, device: torch.device, dtype: torch.dtype | None) -> LoadedModel:
        """No weights to read: the options in config.json, checked (the "model" is an identity)."""
        path = Path(folder) / "config.json"
        if not path.is_file():
            raise ModelLoadError(f"{str(folder)!r} has no config.json; a text-stats model folder "
                                 "holds its options there.")
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelLoadError(f"{str(path)!r} is not valid JSON: {exc}") from None
        if config.get("architecture") != ARCHITECTURE:
            raise ModelLoadError(f"{str(folder)!r} holds a {config.get('architecture')!r} model, not a "
                                 f"{ARCHITECTURE!r} one.")
        options = {k: v for k, v in config.items() if k not in ("architecture", "task")}
        for key, value in options.items():
            if key not in _TYPES:
                raise ModelLoadError(f"{str(path)!r}: unknown option {key!r}; known: {', '.join(_TYPES)}.")
            if not isinstance(value, _TYPES[key]):
                raise ModelLoadError(f"{str(path)!r}: option {key!r} must be a {_TYPES[key].__name__}.")
        identity = torch.nn.Identity()
        identity.config = options  # what _from_loaded builds the pipeline from
        return LoadedModel(identity, ARCHITECTURE, options, Path(folder))

    @classmethod
    def _from_loaded(cls, model: torch.nn.Module, folder: Path, *, device: torch.device,
                     dtype: torch.dtype | None, metadata: dict[str, Any]) -> TextStatsPipeline:
        """The pipeline from the options (``model.config``, set by :meth:`_load_model`)."""
        try:
            return cls(model.config, device=device, dtype=dtype, metadata=metadata)
        except re.error as exc:
            raise ModelLoadError(f"{str(Path(folder) / 'config.json')!r}: bad regular expression: {exc}") from None

    def preprocess(self, inputs: list[Any], **_: Any) -> list[dict[str, Any]]:
        check_batch_of(inputs, str, "a string", self.task)
        features = []
        for text in inputs:
            words = self._words.findall(text.lower() if self.options["lowercase"] else text)
            sentences = [s for s in self._sentences.findall(text) if s.strip()]
            counts = [len(words), len(text), len(sentences), sum(len(w) for w in words)]
            features.append({"length": len(text), "counts": counts, "words": words})
        return features

    def collate(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return {"counts": torch.tensor([f["counts"] for f in features], dtype=torch.long)}

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(batch["counts"])

    def postprocess(self, outputs: list[torch.Tensor], features: list[dict[str, Any]], *,
                    top_words: int | None = None, **_: Any) -> dict[str, Any]:
        """One text's statistics (its single feature's counts)."""
        k = self.options["top_words"] if top_words is None else top_words
        if not isinstance(k, int) or k < 0:
            raise InvalidInputError(f"top_words must be a non-negative integer, got {top_words!r}.")
        words, characters, sentences, letters = outputs[0].tolist()
        return Result({
            "words": words,
            "characters": characters,
            "sentences": sentences,
            "avg_word_length": round(letters / words, 3) if words else 0.0,
            "top_words": [w for w, _ in Counter(features[0]["words"]).most_common(k)] if k else [],
        }, metadata={"length": features[0]["length"]})  # every result carries .metadata

    # -- saving: Pipeline.save (atomic folder, model card) calls this for the model itself
    can_quantize = False  # no weights: save(quantize=True) is refused with a clear error

    def _save_model(self, folder: Path, *, quantize: bool) -> None:
        """No weights to write: the options, as config.json."""
        config = {"architecture": ARCHITECTURE, "task": self.task, **self.options}
        (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
