"""``zero-shot-classify``: texts scored against labels chosen at call time, with an NLI model.

Each (text, candidate label) pair becomes a premise/hypothesis pair (``hypothesis_template``
with the label in place of ``{}``, default ``"This example is {}."``) run through a sequence
classifier trained on natural-language inference (e.g. ``facebook/bart-large-mnli``'s BERT-family
cousins such as ``cross-encoder/nli-distilroberta-base``), exactly as transformers'
``ZeroShotClassificationPipeline`` does (Yin et al., 2019):

* one label, or ``multi_label=True``: each label's score is the softmax of its pair's
  (contradiction, entailment) logits, independently;
* otherwise: the softmax of the entailment logits over the candidate labels (scores sum to 1).

The entailment class is the model label that starts with ``"entail"`` (any case); without one,
the last class, and contradiction is the first (transformers' rule). The text is truncated
(``only_first``) when a pair exceeds the model's maximum, and the result says so.

Every candidate label is one pass of the model per text, so their number is bounded
(``max_candidate_labels=``, ``HUB_MAX_CANDIDATE_LABELS``, default 256).
"""

from __future__ import annotations

from typing import Any

import torch

from hub.data.padding import pad_sequences
from hub.errors import InvalidInputError
from hub.results import Result
from hub.validate import check_bool, check_candidate_labels, check_template
from hub_text.models.bert import BertClassifier
from hub_text.pipelines.base import TextPipeline

DEFAULT_TEMPLATE = "This example is {}."


class ZeroShotClassificationPipeline(TextPipeline):
    task = "zero-shot-classify"
    architecture = "bert-classifier"
    model_types = BertClassifier
    head_for_encoder = None  # a random head cannot judge entailment: an NLI checkpoint is required
    model_needs = ("a sequence classifier trained on NLI (entailment / neutral / contradiction), such as "
                   "transformers' BertForSequenceClassification or RobertaForSequenceClassification fine-tuned "
                   "on MNLI")

    # -- which class means what --------------------------------------------------------
    @property
    def labels(self) -> list[str]:
        """The NLI classes of the model (e.g. contradiction, neutral, entailment)."""
        return self.model.labels

    @property
    def entailment_id(self) -> int:
        """The index of the entailment class (transformers' rule: the first label starting
        with "entail"; -1, the last class, when none does)."""
        for index, label in enumerate(self.labels):
            if str(label).lower().startswith("entail"):
                return index
        return -1

    # -- inference -----------------------------------------------------------------
    def check_parameters(self, params: dict[str, Any]) -> None:
        """Candidate labels and template checked before any text is tokenised."""
        super().check_parameters(params)
        if "candidate_labels" in params:  # required, but defaults given at hub.load may leave it to the call
            check_candidate_labels(self.task, params["candidate_labels"], params.get("max_candidate_labels"))
        if "hypothesis_template" in params:
            check_template(params["hypothesis_template"], DEFAULT_TEMPLATE)
        if "multi_label" in params:
            check_bool("multi_label", params["multi_label"])

    def preprocess(self, inputs: list[Any], *, candidate_labels: Any = None,
                   hypothesis_template: str = DEFAULT_TEMPLATE,
                   max_candidate_labels: int | None = None) -> list[dict[str, Any]]:
        """One feature per (text, candidate label) pair, in candidate order per text."""
        self.check_texts(inputs)
        labels = check_candidate_labels(self.task, candidate_labels, max_candidate_labels)
        template = check_template(hypothesis_template, DEFAULT_TEMPLATE)
        hypotheses = [template.format(label) for label in labels]
        limit = self.max_tokens
        alone = self.tokenizer(list(inputs), add_special_tokens=False, verbose=False)["input_ids"]
        # the longest hypothesis plus the pair's special tokens: what a text must leave room for
        room = max(len(ids) for ids in self.tokenizer(hypotheses, add_special_tokens=False)["input_ids"]) \
            + self.tokenizer.num_special_tokens_to_add(pair=True)
        features = []
        for index, text in enumerate(inputs):
            try:
                enc = self.tokenizer([text] * len(hypotheses), hypotheses, truncation="only_first",
                                     max_length=limit, return_token_type_ids=True, verbose=False)
            except Exception as exc:  # the hypothesis alone is longer than the model's maximum
                raise InvalidInputError(f"zero-shot-classify: input {index} with hypothesis {hypotheses[0]!r:.60} "
                                        f"cannot fit the model's {limit} tokens ({exc}); shorten the template "
                                        "or the labels.") from None
            meta = {"num_tokens": len(alone[index]), "truncated": len(alone[index]) + room > limit,
                    "candidates": len(labels)}
            for ids, types in zip(enc["input_ids"], enc["token_type_ids"]):
                features.append({"input_ids": ids, "token_type_ids": types, "length": len(ids),
                                 "input_index": index, "text": text, "labels": labels, "meta": meta})
        return features

    def collate(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = super().collate(features)
        batch["token_type_ids"] = pad_sequences([f["token_type_ids"] for f in features], value=0,
                                                length=batch["input_ids"].shape[1])[0]
        return batch

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])["logits"].float()

    def postprocess(self, outputs: list[torch.Tensor], features: list[dict[str, Any]], *,
                    multi_label: bool = False) -> Result:
        """``{"sequence", "labels", "scores"}``, labels best first (transformers' result)."""
        labels = features[0]["labels"]
        logits = torch.stack(outputs)  # (candidates, classes)
        entail = self.entailment_id
        if multi_label or len(labels) == 1:
            contradiction = -1 if entail == 0 else 0
            scores = logits[:, [contradiction, entail]].softmax(-1)[:, 1]
        else:
            scores = logits[:, entail].softmax(-1)
        order = scores.argsort(descending=True, stable=True).tolist()
        return Result(sequence=features[0]["text"], labels=[labels[i] for i in order],
                      scores=[float(scores[i]) for i in order],
                      metadata={**features[0]["meta"], "multi_label": bool(multi_label or len(labels) == 1)})
