"""``text-classify``: texts in, ``{"label", "score"}`` out, like transformers' pipeline.

Texts longer than the model's maximum are truncated (head kept), a warning is
logged and each such result says so in ``result.metadata["truncated"]``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from hub._fs import atomic_directory
from hub.card import render_model_card
from hub.errors import InvalidInputError, ModelLoadError
from hub.modeling import load_model, save_model
from hub.pipeline import Pipeline, check_batch_of
from hub.results import Prediction
from hub_text.bert import BertClassifier, BertEncoder
from hub_text.tokenizer import load_tokenizer, model_max_tokens

logger = logging.getLogger(__name__)


class TextClassificationPipeline(Pipeline):
    task = "text-classify"

    def __init__(self, model: BertClassifier, tokenizer: Any, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.tokenizer = tokenizer
        self.max_tokens = model_max_tokens(tokenizer, model.encoder.max_positions)
        self.model.to(self.device)

    @property
    def labels(self) -> list[str]:
        return self.model.labels

    @classmethod
    def from_folder(cls, folder: Path, *, device: torch.device, dtype: torch.dtype | None,
                    metadata: dict[str, Any]) -> "TextClassificationPipeline":
        loaded = load_model(folder, device=device, dtype=dtype)
        metadata = {**metadata, "architecture": "bert-classifier"}
        if loaded.converted_from:
            metadata["converted_from"] = loaded.converted_from
        if isinstance(loaded.module, BertEncoder):
            labels = metadata.get("labels") or ["LABEL_0", "LABEL_1"]
            logger.warning("%s holds an encoder without a classification head; a new head for "
                           "labels %s is initialised at random: fine-tune before use.", folder, labels)
            model = BertClassifier.from_encoder(loaded.module, labels).to(device=device, dtype=dtype)
            metadata["head_initialized"] = False
        elif isinstance(loaded.module, BertClassifier):
            model = loaded.module
        else:
            raise ModelLoadError(f"{str(folder)!r} holds a {loaded.architecture!r} model, which is "
                                 "not a text classifier.")
        metadata["labels"] = model.labels
        model.eval()
        return cls(model, load_tokenizer(folder), device=device, dtype=dtype, metadata=metadata)

    # -- inference -----------------------------------------------------------------
    def preprocess(self, inputs: list[Any], *, truncation: bool = True, **_: Any) -> list[dict[str, Any]]:
        check_batch_of(inputs, str, "a string", self.task)
        for index, text in enumerate(inputs):
            if not text.strip():
                raise InvalidInputError(f"{self.task}: input {index} is an empty string; "
                                        "pass text to classify.")
        return self.encode(inputs, truncation=truncation)

    def encode(self, texts: list[str], *, truncation: bool = True, max_tokens: int | None = None,
               warn: bool = True) -> list[dict[str, Any]]:
        limit = max_tokens or self.max_tokens
        ids = self.tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
        features = []
        too_long = [i for i, seq in enumerate(ids) if len(seq) > limit]
        if too_long and not truncation:
            raise InvalidInputError(f"{self.task}: input {too_long[0]} has {len(ids[too_long[0]])} "
                                    f"tokens, more than the model's {limit}; pass truncation=True.")
        if too_long:
            cut = self.tokenizer([texts[i] for i in too_long], truncation=True, max_length=limit,
                                 verbose=False)["input_ids"]
            (logger.warning if warn else logger.debug)("%d of %d texts exceed %d tokens and were truncated (see "
                           "result.metadata['truncated']).", len(too_long), len(texts), limit)
        cut_by_index = dict(zip(too_long, cut)) if too_long else {}
        for i, seq in enumerate(ids):
            kept = cut_by_index.get(i, seq)
            features.append({"input_ids": kept, "length": len(kept), "num_tokens": len(seq),
                             "truncated": i in cut_by_index})
        return features

    def collate(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        length = max(f["length"] for f in features)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((len(features), length), pad, dtype=torch.long)
        mask = torch.zeros((len(features), length), dtype=torch.long)
        for row, f in enumerate(features):
            ids[row, : f["length"]] = torch.tensor(f["input_ids"])
            mask[row, : f["length"]] = 1
        batch = {"input_ids": ids, "attention_mask": mask}
        if "label" in features[0]:
            batch["labels"] = torch.tensor([f["label"] for f in features], dtype=torch.long)
        return batch

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(batch["input_ids"], batch["attention_mask"])["logits"].float()

    def postprocess(self, logits: torch.Tensor, features: list[dict[str, Any]], *,
                    top_k: int | None = 1, **_: Any) -> list[Any]:
        probs = logits.softmax(-1).cpu()
        labels = self.labels
        k = len(labels) if top_k is None else top_k
        if not isinstance(k, int) or k < 1:
            raise InvalidInputError(f"top_k must be a positive integer or None, got {top_k!r}.")
        scores, indices = probs.topk(min(k, len(labels)), dim=-1)
        results = []
        for f, row_scores, row_idx in zip(features, scores.tolist(), indices.tolist()):
            meta = {"truncated": f["truncated"], "num_tokens": f["num_tokens"]}
            ranked = [Prediction(label=labels[i], score=s, metadata=meta) for s, i in zip(row_scores, row_idx)]
            results.append(ranked[0] if top_k == 1 else ranked)
        return results

    # -- training and saving ---------------------------------------------------------
    def fine_tune(self, train: Any, eval: Any = None, *, labels: list[str] | None = None,
                  text_field: str = "text", label_field: str = "label", max_tokens: int | None = None,
                  **training_args: Any):
        """Fine-tune on labelled texts (jsonl/csv path or list of dicts/(text, label) tuples).

        A new head is made when the data's labels differ from the model's. Returns the
        :class:`~hub.train.TrainResult`; the pipeline keeps the best epoch's weights.
        """
        from hub.data import read_records
        from hub.train import Trainer, TrainingArguments
        from hub.train.trainer import accuracy

        args = TrainingArguments.from_kwargs(**training_args)
        train_rows = read_records(train, fields=(text_field, label_field))
        eval_rows = read_records(eval, fields=(text_field, label_field)) if eval is not None else None
        found = sorted({str(r[label_field]) for r in train_rows + (eval_rows or [])})
        labels = list(labels) if labels is not None else (self.labels if set(found) <= set(self.labels) else found)
        unknown = sorted(set(found) - set(labels))
        if unknown:
            raise InvalidInputError(f"labels {unknown} in the data are not among labels={labels}.")
        if labels != self.labels:
            self.model = BertClassifier.from_encoder(self.model.encoder, labels)
        index = {label: i for i, label in enumerate(labels)}

        def featurise(rows):
            texts = [str(r[text_field]) for r in rows]
            feats = self.encode(texts, truncation=True, max_tokens=max_tokens, warn=False)
            for f, r in zip(feats, rows):
                f["label"] = index[str(r[label_field])]
            return feats

        trainer = Trainer(self.model, args, train_data=featurise(train_rows), collate=self.collate,
                          eval_data=featurise(eval_rows) if eval_rows else None, compute_metrics=accuracy,
                          save_best=lambda model, path: self.save(path))
        result = trainer.train()
        self.model.to(self.device).eval()
        self.metadata.update(labels=labels, head_initialized=True)
        return result

    def evaluate(self, data: Any, *, text_field: str = "text", label_field: str = "label",
                 batch_size: int | None = None) -> dict[str, float]:
        """Accuracy on labelled texts (same inputs as :meth:`fine_tune`)."""
        from hub.data import read_records

        rows = read_records(data, fields=(text_field, label_field))
        predictions = self([str(r[text_field]) for r in rows], batch_size=batch_size)
        correct = sum(p["label"] == str(r[label_field]) for p, r in zip(predictions, rows))
        truncated = sum(p.metadata["truncated"] for p in predictions)
        return {"accuracy": correct / len(rows), "n": len(rows), "truncated": truncated}

    def save(self, folder: str | Path, *, quantize: bool = False) -> Path:
        """Write config.json, model.safetensors, tokenizer files and README.md atomically.

        ``quantize=True`` stores large weights as int8 with per-row scales (about 4x
        smaller on disk; dequantised to float when loaded).
        """
        with atomic_directory(folder) as tmp:
            save_model(self.model, "bert-classifier", self.model.config, tmp, quantize=quantize,
                       extra={"task": self.task})
            self.tokenizer.save_pretrained(str(tmp))
            card = {k: v for k, v in self.metadata.items() if k in ("task", "license", "model_name",
                                                                    "metrics", "base_model")}
            (tmp / "README.md").write_text(render_model_card({**card, "task": self.task,
                                                              "labels": self.labels}), encoding="utf-8")
        return Path(folder).resolve()
