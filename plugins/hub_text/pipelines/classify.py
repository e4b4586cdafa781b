"""``text-classify``: texts in, ``{"label", "score"}`` out, like transformers' pipeline.

Texts longer than the model's maximum are split into overlapping windows by default
and the windows' class probabilities averaged, weighted by their token counts
(``long_inputs="truncate"`` keeps the head instead, ``"error"`` refuses); each result
says so in ``result.metadata`` (``windows``, ``truncated``, ``num_tokens``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from hub.errors import InvalidInputError
from hub.modeling import read_config
from hub.results import SCORE_FUNCTIONS, ranked_labels, score_function, weighted_mean_probabilities
from hub.validate import check_bool, check_choice, check_int
from hub_text.models.bert import BertClassifier
from hub_text.pipelines.base import TextPipeline

logger = logging.getLogger(__name__)


def cls_logits(model: BertClassifier, input_ids: torch.Tensor, attention_mask: torch.Tensor, *,
               unpad: bool = False) -> torch.Tensor:
    """A [CLS]-pooled classifier's (B, labels) logits with the last layer computing only the
    [CLS] query (``select=0``): the same values as ``model(...)["logits"]`` with a sixth less
    work on a 6-layer encoder; ``unpad=True`` also runs real tokens only (the torch path)."""
    encoder = model.encoder
    cls = encoder.encoder(encoder.embed(input_ids), attention_mask, unpad=unpad, select=0)  # (B, C)
    return model.head(cls[:, None])


class ClsLogits(torch.nn.Module):
    """:func:`cls_logits` as the module ONNX export traces (padded layout: the graph has no
    packing), returning ``{"logits": ...}`` as the classifier does; ``config`` is the model's."""

    def __init__(self, model: BertClassifier) -> None:
        super().__init__()
        self.model = model
        self.config = model.config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": cls_logits(self.model, input_ids, attention_mask)}


class TextClassificationPipeline(TextPipeline):
    task = "text-classify"
    architecture = "bert-classifier"
    model_types = BertClassifier
    head_for_encoder = BertClassifier
    default_labels = ("LABEL_0", "LABEL_1")
    model_needs = ("a sequence classifier such as transformers' BertForSequenceClassification (or a bare "
                   "encoder to fine-tune)")
    # transformers' keywords taken with their meaning (parameters of preprocess/postprocess):
    # function_to_apply ("softmax", "sigmoid", "none"; default: what the checkpoint's
    # problem_type / label count mean), return_all_scores=True (= top_k=None), truncation=True
    # (= long_inputs="truncate")

    @property
    def problem_type(self) -> str | None:
        """The checkpoint's ``problem_type`` (transformers' config field), kept through saves."""
        return self.metadata.get("problem_type")

    @property
    def function_to_apply(self) -> str:
        """How logits become scores by default (transformers' rule, :func:`hub.results.score_function`)."""
        return score_function(self.problem_type, len(self.labels))

    def _config_extra(self) -> dict[str, Any]:
        return {"problem_type": self.problem_type} if self.problem_type else {}

    @property
    def labels(self) -> list[str]:
        return self.model.labels

    @classmethod
    def _load_extra_files(cls, folder: Path, model: torch.nn.Module, metadata: dict[str, Any]) -> dict[str, Any]:
        """The tokenizer, and the config's ``problem_type`` (transformers' and Hub's config.json)."""
        problem_type = read_config(folder).get("problem_type")
        if problem_type:
            metadata["problem_type"] = str(problem_type)
        return super()._load_extra_files(folder, model, metadata)

    # -- inference -----------------------------------------------------------------
    def check_parameters(self, params: dict[str, Any]) -> None:
        super().check_parameters(params)
        check_int("top_k", params.get("top_k", 1), minimum=1, none_ok=True)
        if params.get("function_to_apply") is not None:
            check_choice("function_to_apply", str(params["function_to_apply"]).lower(), SCORE_FUNCTIONS)
        if "return_all_scores" in params:
            check_bool("return_all_scores", params["return_all_scores"])
            if params["return_all_scores"] and params.get("top_k", 1) not in (1, None):
                raise InvalidInputError("return_all_scores=True means top_k=None; pass one of them, not both.")
        if "truncation" in params:
            check_bool("truncation", params["truncation"])
            if params["truncation"] and params.get("long_inputs") not in (None, "truncate"):
                raise InvalidInputError(f"truncation=True means long_inputs='truncate', but long_inputs="
                                        f"{params['long_inputs']!r} was given; pass one of them.")

    def preprocess(self, inputs: list[Any], *, long_inputs: str | None = None, stride: int | None = None,
                   max_windows: int | None = None, truncation: bool | None = None) -> list[dict[str, Any]]:
        self.check_texts(inputs)
        if truncation:  # transformers' spelling of long_inputs="truncate"
            long_inputs = "truncate"
        return self.encode(inputs, long_inputs=long_inputs, stride=stride, max_windows=max_windows)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        model = self.model
        if type(model) is BertClassifier and model.head.pooling == "cls":
            # model(...) computed faster: only real tokens go through the layers (unpad) and
            # the last layer computes only the [CLS] position the head reads (select=0)
            return cls_logits(model, batch["input_ids"], batch["attention_mask"], unpad=True).float()
        return model(batch["input_ids"], batch["attention_mask"])["logits"].float()

    def _export_spec(self) -> Any:
        """The classifier's logits (B, labels) from input_ids and attention_mask (a [CLS]-pooled
        classifier's last layer computing the [CLS] query only, as :meth:`forward` does)."""
        model = self.model
        module = ClsLogits(model) if type(model) is BertClassifier and model.head.pooling == "cls" else model
        return self._text_export_spec(module, "logits", {0: "batch"},
                                      f"sequence-classification logits (batch, {len(self.labels)} labels); scores "
                                      f"are their {self.function_to_apply} (Hub averages the windows of long texts)")

    def postprocess(self, outputs: list[torch.Tensor], features: list[dict[str, Any]], *,
                    top_k: int | None = 1, function_to_apply: str | None = None,
                    return_all_scores: bool | None = None) -> Any:
        if return_all_scores:  # transformers' older spelling of top_k=None
            top_k = None
        function = self.function_to_apply if function_to_apply is None else str(function_to_apply).lower()
        # windows of a long text: the token-weighted mean of their scores
        probs = weighted_mean_probabilities(outputs, [f["length"] for f in features], function)
        ranked = ranked_labels(probs, self.labels, top_k, features[0]["meta"])
        return ranked[0] if top_k == 1 else ranked

    def evaluate(self, data: Any, *, text_field: str = "text", label_field: str = "label",
                 batch_size: int | None = None, **params: Any) -> dict[str, float]:
        """Accuracy on labelled texts (same inputs as :meth:`fine_tune`)."""
        from hub.data import read_records

        rows = read_records(data, fields=(text_field, label_field), text_fields=(text_field,),
                            label_fields=(label_field,))
        predictions = self([str(r[text_field]) for r in rows], batch_size=batch_size, **params)
        correct = sum(p["label"] == str(r[label_field]) for p, r in zip(predictions, rows))
        long = sum(p.metadata["windows"] > 1 or p.metadata["truncated"] for p in predictions)
        return {"accuracy": correct / len(rows), "n": len(rows), "long_inputs": long}

    # -- training ------------------------------------------------------------------
    def fine_tune(self, train: Any, eval: Any = None, *, labels: list[str] | None = None,
                  text_field: str = "text", label_field: str = "label", max_tokens: int | None = None,
                  reset_head: bool = False, **training_args: Any):
        """Fine-tune on labelled texts (jsonl/csv path or list of dicts/(text, label) tuples).

        Training texts are truncated to ``max_tokens`` (default: the model's maximum). Data
        whose labels are among the model's keeps the trained head; labels the trained head
        lacks are refused unless ``labels=[...]`` or ``reset_head=True`` asks for a new head
        (:mod:`hub.data.labels`: one typo'd row must not throw a trained head away). Returns
        the :class:`~hub.train.TrainResult`; the pipeline keeps the best epoch's weights.
        """
        from hub.data import read_records, resolve_labels
        from hub.data.labels import head_is_trained
        from hub.train import Trainer, TrainingArguments
        from hub.train.trainer import accuracy

        args = TrainingArguments.from_kwargs(**training_args)
        fields = {"fields": (text_field, label_field), "text_fields": (text_field,), "label_fields": (label_field,)}
        train_rows = read_records(train, **fields)
        eval_rows = read_records(eval, **fields) if eval is not None else None
        labels, rebuild = resolve_labels([r[label_field] for r in train_rows],
                                         [r[label_field] for r in eval_rows or []], current=self.labels,
                                         labels=labels, reset_head=reset_head,
                                         head_trained=head_is_trained(self.metadata))
        if rebuild:
            self.model.reset_classifier(labels)
        index = {label: i for i, label in enumerate(labels)}

        def featurise(rows):
            feats = self.encode([str(r[text_field]) for r in rows], long_inputs="truncate",
                                max_tokens=max_tokens, warn=False)
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
