"""``token-classify`` (aliases ``token-classification``, ``ner``): tag the tokens of texts,
like transformers' token-classification pipeline.

Each text gives a list of entities (an :class:`EntityList`, a ``list`` with
``.metadata``), each a :class:`~hub.results.Prediction` dict:

* ``aggregation_strategy="none"``: every non-special token whose label is not ignored
  (``ignore_labels``, default ``["O"]``) as ``{"entity", "score", "index", "word", "start",
  "end"}``; ``index`` is the token's position in the model input (``[CLS]`` is 0) and
  ``word`` the token as the tokenizer spells it (``"##ice"``), or the text under it for
  unknown tokens.
* ``"first"`` (the default; transformers' default is ``"none"``), ``"average"``, ``"max"``:
  the tokens are first merged into words, one label per word (*first*: the first
  sub-token's prediction; *average*: the mean of the sub-tokens' probabilities, then the
  best label; *max*: the prediction of the sub-token with the highest score), then
  consecutive words are grouped into entities by their tags (``B-X`` starts an entity,
  ``I-X`` continues one of type ``X``, a tag without a prefix is its own type):
  ``{"entity_group", "score", "word", "start", "end"}`` with ``score`` the mean of the
  grouped words' scores and ``word`` the text span ``text[start:end]``. ``"simple"``
  groups tokens the same way without merging them into words first.

Words are found as transformers finds them: for WordPiece tokenizers (``##`` sub-tokens)
from the tokenizer's word ids; for others (byte-level BPE such as RoBERTa's) a token
starts a word when whitespace precedes it (any whitespace; transformers only checks for
a space) and a whitespace-only token belongs to the word before it.

Long texts (more tokens than the model takes) are **truncated** by default: the tail
gets no tags, a warning is logged and ``result.metadata["truncated"]`` is True.
``long_inputs="window"`` tags the whole text through overlapping windows (``stride``
tokens shared; each token takes its prediction from the window where it lies farthest
from an edge) and ``long_inputs="error"`` refuses.
"""

from __future__ import annotations

import bisect
import logging
from pathlib import Path
from typing import Any

import torch

from hub.errors import InvalidInputError, ModelLoadError
from hub.results import EntityList, Prediction  # EntityList: one text's entities, a ResultList
from hub.validate import resolve_limit
from hub_text.data import read_tagged
from hub_text.models.bert import BertTokenClassifier
from hub_text.pipelines.base import (
    DEFAULT_MAX_WINDOWS,
    LONG_INPUT_MODES,
    MAX_WINDOWS_ENV,
    TextPipeline,
    check_window_count,
    count_windows,
)

logger = logging.getLogger(__name__)
AGGREGATION_STRATEGIES = ("none", "simple", "first", "average", "max")
DEFAULT_AGGREGATION = "first"


def split_tag(label: str) -> tuple[str, str]:
    """``"B-PER"`` -> ``("B", "PER")``; ``"I-PER"`` -> ``("I", "PER")``; a label without
    a B-/I- prefix continues entities of its own name (``("I", label)``), as transformers."""
    if label.startswith("B-"):
        return "B", label[2:]
    if label.startswith("I-"):
        return "I", label[2:]
    return "I", label


def entity_spans(tags: list[str], outside: tuple[str, ...] = ("O",)) -> set[tuple[str, int, int]]:
    """Entity spans ``(type, first word, last word + 1)`` of a tag sequence (lenient IOB2:
    an ``I-X`` after something other than ``X`` starts an entity)."""
    spans, current = set(), None  # current: [type, start]
    for i, tag in enumerate([*tags, None]):
        bi, kind = split_tag(tag) if tag is not None and tag not in outside else ("", None)
        if current is not None and (kind is None or bi == "B" or kind != current[0]):
            spans.add((current[0], current[1], i))
            current = None
        if kind is not None and current is None:
            current = [kind, i]
    return spans


class TokenClassificationPipeline(TextPipeline):
    task = "token-classify"
    architecture = "bert-token-classifier"
    model_types = BertTokenClassifier
    head_for_encoder = BertTokenClassifier
    default_labels = ("O",)
    model_needs = ("a token classifier such as transformers' BertForTokenClassification (or a bare "
                   "encoder to fine-tune)")
    default_long_inputs = "truncate"

    @property
    def labels(self) -> list[str]:
        return self.model.labels

    @classmethod
    def _load_extra_files(cls, folder: Path, model: torch.nn.Module, metadata: dict[str, Any]) -> dict[str, Any]:
        """The tokenizer, which must be a fast one."""
        extra = super()._load_extra_files(folder, model, metadata)
        if not getattr(extra["tokenizer"], "is_fast", False):
            raise ModelLoadError(f"The tokenizer in {str(folder)!r} is not a fast (tokenizers-backed) one; "
                                 "token-classify needs character offsets, which only fast tokenizers give.")
        return extra

    # -- inference -----------------------------------------------------------------
    def preprocess(self, inputs: list[Any], *, long_inputs: str | None = None, stride: int | None = None,
                   aggregation_strategy: str | None = None, ignore_labels: Any = None,
                   max_windows: int | None = None) -> list[dict[str, Any]]:
        _strategy(aggregation_strategy)
        _ignored(ignore_labels)
        self.check_texts(inputs)
        mode = long_inputs or self.default_long_inputs
        if mode not in LONG_INPUT_MODES:
            raise InvalidInputError(f"long_inputs must be one of {LONG_INPUT_MODES}, got {mode!r}.")
        cap = resolve_limit("max_windows", max_windows, MAX_WINDOWS_ENV, DEFAULT_MAX_WINDOWS)
        limit = self.max_tokens
        enc = self.tokenizer(inputs, add_special_tokens=True, truncation=False, return_offsets_mapping=True,
                             return_special_tokens_mask=True, verbose=False)
        self.check_token_ids(enc["input_ids"])
        features, long = [], []
        for index, text in enumerate(inputs):
            ids, special = enc["input_ids"][index], enc["special_tokens_mask"][index]
            prefix = _run_length(special)
            suffix = _run_length(special[::-1]) if prefix < len(ids) else 0
            content = len(ids) - prefix - suffix
            room = limit - prefix - suffix
            if room < 1:
                raise InvalidInputError(f"{self.task}: the model takes {limit} tokens, too few for any text.")
            encoding = {"text": text, "ids": ids, "offsets": enc["offset_mapping"][index],
                        "word_ids": enc.word_ids(index), "prefix": prefix, "suffix": suffix}
            if len(ids) <= limit:
                spans = [(0, content)]
            elif mode == "error":
                raise InvalidInputError(f"{self.task}: input {index} has {len(ids)} tokens, more than the "
                                        f"model's {limit}; pass long_inputs='truncate' or 'window'.")
            elif mode == "truncate":
                spans = [(0, room)]
            else:
                overlap = stride if stride is not None else min(128, room // 4)
                if isinstance(overlap, int) and 0 <= overlap < room:  # else _windows says what is wrong
                    windows = count_windows(content, room, overlap)
                    check_window_count(self.task, index, windows, cap, len(ids), limit)
                    self.warn_many_windows(index, windows, limit)
                spans = _windows(content, room, stride)
            if len(ids) > limit:
                long.append(index)
            head, tail = ids[:prefix], ids[len(ids) - suffix:]
            meta = {"num_tokens": len(ids), "truncated": mode == "truncate" and len(ids) > limit,
                    "windows": len(spans)}
            for a, b in spans:
                part = head + ids[prefix + a: prefix + b] + tail
                features.append({"input_ids": part, "length": len(part), "input_index": index, "meta": meta,
                                 "encoding": encoding, "span": (a, b)})
        if long:
            logger.warning("%d of %d texts exceed %d tokens: %s (see result.metadata).", len(long), len(inputs),
                           limit, "tagged only up to the limit (truncated)" if mode == "truncate"
                           else "tagged through overlapping windows")
        return features

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(batch["input_ids"], batch["attention_mask"])["logits"].float()  # (B, T, L)

    def _export_spec(self) -> Any:
        """The tagger's per-token logits (B, T, labels) from input_ids and attention_mask."""
        return self._text_export_spec(self.model, "logits", {0: "batch", 1: "sequence"},
                                      "token-classification logits (batch, sequence, labels); Hub takes a softmax "
                                      "and groups sub-words into entities")

    def postprocess(self, outputs: list[torch.Tensor], features: list[dict[str, Any]], *,
                    aggregation_strategy: str | None = None, ignore_labels: Any = None) -> EntityList:
        strategy, ignored = _strategy(aggregation_strategy), _ignored(ignore_labels)
        enc, meta = features[0]["encoding"], features[0]["meta"]
        probs, positions = self._token_probabilities(outputs, features)  # (K, L), content positions
        labels = self.labels
        tokens = []  # one per content token: index, id, start, end, probabilities
        for row, position in enumerate(positions):
            index = enc["prefix"] + position
            start, end = enc["offsets"][index]
            tokens.append({"index": index, "id": enc["ids"][index], "start": int(start), "end": int(end),
                           "scores": probs[row]})
        text = enc["text"]
        if strategy in ("none", "simple"):
            items = []
            for token in tokens:
                score, best = token["scores"].max(0)
                items.append({"entity": labels[int(best)], "score": float(score), "index": token["index"],
                              "word": self._token_word(token, text), "start": token["start"], "end": token["end"]})
        else:
            items = [self._aggregate_word(group, strategy, text) for group in self._words(tokens, enc)]
        if strategy != "none":
            items = self._group(items, text)
        return EntityList([Prediction(item, metadata=meta) for item in items
                           if item.get("entity", item.get("entity_group")) not in ignored], metadata=meta)

    def _token_probabilities(self, outputs: list[torch.Tensor], features: list[dict[str, Any]]
                             ) -> tuple[torch.Tensor, list[int]]:
        """Per content token, the label probabilities from the window where it is most central."""
        prefix = features[0]["encoding"]["prefix"]
        if len(features) == 1:
            a, b = features[0]["span"]
            return outputs[0][prefix: prefix + b - a].float().softmax(-1), list(range(a, b))
        best: dict[int, tuple[int, torch.Tensor]] = {}
        for logits, feature in zip(outputs, features):
            a, b = feature["span"]
            probs = logits[prefix: prefix + b - a].float().softmax(-1)
            for offset in range(b - a):
                centrality = min(offset, b - a - 1 - offset)
                if a + offset not in best or centrality > best[a + offset][0]:
                    best[a + offset] = (centrality, probs[offset])
        positions = sorted(best)
        return torch.stack([best[p][1] for p in positions]), positions

    def _token_word(self, token: dict[str, Any], text: str) -> str:
        if token["id"] == self.tokenizer.unk_token_id:
            return text[token["start"]: token["end"]]
        return self.tokenizer.convert_ids_to_tokens(token["id"])

    def _words(self, tokens: list[dict[str, Any]], enc: dict[str, Any]) -> list[list[dict[str, Any]]]:
        """Group consecutive tokens into words (see the module docstring)."""
        text, word_ids = enc["text"], enc["word_ids"]
        model = getattr(getattr(self.tokenizer, "_tokenizer", None), "model", None)
        wordpiece = bool(getattr(model, "continuing_subword_prefix", None))
        unk = self.tokenizer.unk_token_id
        words: list[list[dict[str, Any]]] = []
        previous = None
        for token in tokens:
            if wordpiece:
                subword = (previous is not None and word_ids[token["index"]] is not None
                           and word_ids[token["index"]] == word_ids[previous["index"]])
            else:
                start, span = token["start"], text[token["start"]: token["end"]]
                subword = start > 0 and not any(c.isspace() for c in text[start - 1: start + 1])
                subword = subword or (span != "" and span.isspace())
            if token["id"] == unk:
                subword = False
            if words and subword:
                words[-1].append(token)
            else:
                words.append([token])
            previous = token
        return words

    def _aggregate_word(self, tokens: list[dict[str, Any]], strategy: str, text: str) -> dict[str, Any]:
        if strategy == "first":
            scores = tokens[0]["scores"]
        elif strategy == "max":
            scores = max(tokens, key=lambda t: float(t["scores"].max()))["scores"]
        else:  # average
            scores = torch.stack([t["scores"] for t in tokens]).mean(0)
        score, best = scores.max(0)
        start, end = tokens[0]["start"], tokens[-1]["end"]
        return {"entity": self.labels[int(best)], "score": float(score), "word": text[start:end],
                "start": start, "end": end}

    @staticmethod
    def _group(items: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
        """Consecutive words (or tokens) of one type into entities, as transformers groups them."""
        groups: list[list[dict[str, Any]]] = []
        for item in items:
            if groups:
                bi, tag = split_tag(item["entity"])
                if bi != "B" and tag == split_tag(groups[-1][-1]["entity"])[1]:
                    groups[-1].append(item)
                    continue
            groups.append([item])
        result = []
        for group in groups:
            start, end = group[0]["start"], group[-1]["end"]
            result.append({"entity_group": group[0]["entity"].split("-", 1)[-1],
                           "score": sum(i["score"] for i in group) / len(group),
                           "word": text[start:end], "start": start, "end": end})
        return result

    # -- word-level data -------------------------------------------------------------
    def _featurise(self, rows: list[tuple[list[str], list[str]]], index: dict[str, int] | None,
                   max_tokens: int | None = None) -> list[dict[str, Any]]:
        """Token ids of the words joined by spaces (exactly what inference sees), truncated to
        the model's maximum; each word's tag on its first sub-token, -100 elsewhere.
        ``"word_tokens"`` holds the position of each word's first token (None when cut off)."""
        limit = max_tokens or self.max_tokens
        texts, starts = [], []
        for words, _ in rows:
            offsets, position = [], 0
            for word in words:
                offsets.append(position)
                position += len(word) + 1
            texts.append(" ".join(words))
            starts.append(offsets)
        enc = self.tokenizer(texts, truncation=True, max_length=limit, return_offsets_mapping=True,
                             return_special_tokens_mask=True, verbose=False)
        features = []
        for row, ((words, tags), word_starts) in enumerate(zip(rows, starts)):
            ids, special = enc["input_ids"][row], enc["special_tokens_mask"][row]
            first: list[int | None] = [None] * len(words)
            for position, ((start, _), is_special) in enumerate(zip(enc["offset_mapping"][row], special)):
                if is_special:
                    continue
                word = bisect.bisect_right(word_starts, int(start)) - 1  # the word the token starts in
                inside = 0 <= word < len(words) and int(start) < word_starts[word] + len(words[word])
                if inside and first[word] is None:
                    first[word] = position
            feature = {"input_ids": ids, "length": len(ids), "word_tokens": first, "tags": tags}
            if index is not None:
                label = [-100] * len(ids)
                for word, position in enumerate(first):
                    if position is not None:
                        label[position] = index[tags[word]]
                feature["label"] = label
            features.append(feature)
        return features

    def collate(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = super().collate(features)
        pad_to = max(f.get("pad_to", 0) for f in features)
        extra = pad_to - batch["input_ids"].shape[1]
        if extra > 0:  # evaluation batches share one length so the Trainer can concatenate logits
            fill = {"input_ids": self.tokenizer.pad_token_id or 0, "attention_mask": 0, "labels": -100}
            batch = {k: torch.nn.functional.pad(v, (0, extra), value=fill[k]) for k, v in batch.items()}
        return batch

    def evaluate(self, data: Any, *, tokens_field: str = "tokens", tags_field: str = "tags",
                 batch_size: int | None = None) -> dict[str, float]:
        """Word-level accuracy (each word's tag read off its first sub-token, as trained) and
        entity-level precision/recall/F1 (exact spans and types) on word-level records."""
        rows = read_tagged(data, tokens_field, tags_field)
        batch_size = self.resolve_batch_size(batch_size)
        features = self._featurise(rows, None)
        order = sorted(range(len(features)), key=lambda i: features[i]["length"])
        predicted: list[list[str]] = [[] for _ in features]
        labels, outside = self.labels, "O" if "O" in self.labels else None
        was_training = self.model.training
        self.model.eval()
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            batch = {k: v.to(self.device) for k, v in self.collate([features[i] for i in chunk]).items()}
            with torch.inference_mode(), self.autocast():
                best = self.forward(batch).argmax(-1).cpu()
            for row, i in enumerate(chunk):
                predicted[i] = [labels[int(best[row, p])] if p is not None else outside
                                for p in features[i]["word_tokens"]]
        self.model.train(was_training)
        words = correct = true_entities = found_entities = hits = 0
        for feature, guess in zip(features, predicted):
            gold = feature["tags"]
            words += len(gold)
            correct += sum(g == p for g, p in zip(gold, guess))
            gold_spans = entity_spans(gold)
            guess_spans = entity_spans([p if p is not None else "O" for p in guess])
            true_entities, found_entities = true_entities + len(gold_spans), found_entities + len(guess_spans)
            hits += len(gold_spans & guess_spans)
        precision = hits / found_entities if found_entities else 0.0
        recall = hits / true_entities if true_entities else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"accuracy": correct / words, "entity_precision": precision, "entity_recall": recall,
                "entity_f1": f1, "n": len(rows), "words": words}

    # -- training ------------------------------------------------------------------
    def fine_tune(self, train: Any, eval: Any = None, *, labels: list[str] | None = None,
                  tokens_field: str = "tokens", tags_field: str = "tags", max_tokens: int | None = None,
                  reset_head: bool = False, **training_args: Any):
        """Fine-tune on word-level tagged records ``{"tokens": [words], "tags": [tags]}``
        (a jsonl/json path or a list of dicts / ``(tokens, tags)`` tuples).

        The words are joined by spaces and tokenised as inference tokenises a text
        (truncated to ``max_tokens``, default the model's maximum); each word's tag goes
        on its first sub-token, the other sub-tokens and special tokens are ignored
        (-100). The label set comes from the data (``"O"`` first, then sorted) unless
        ``labels`` is given or the model's labels already cover the data. Tags a trained
        head lacks are refused unless ``labels=[...]`` or ``reset_head=True`` asks for a new
        head (:mod:`hub.data.labels`). The evaluation metric is token-level ``accuracy``
        over the tagged (first) sub-tokens. Returns the :class:`~hub.train.TrainResult`;
        the pipeline keeps the best epoch's weights.
        """
        from hub.data import resolve_labels
        from hub.data.labels import head_is_trained
        from hub.train import Trainer, TrainingArguments

        args = TrainingArguments.from_kwargs(**training_args)
        train_rows = read_tagged(train, tokens_field, tags_field)
        eval_rows = read_tagged(eval, tokens_field, tags_field) if eval is not None else None
        labels, rebuild = resolve_labels(
            [t for _, tags in train_rows for t in tags], [t for _, tags in eval_rows or [] for t in tags],
            current=self.labels, labels=labels, reset_head=reset_head, head_trained=head_is_trained(self.metadata),
            order=lambda found: sorted(found, key=lambda t: (t != "O", t)), what="tag")
        if rebuild:
            self.model.reset_classifier(labels)
        index = {label: i for i, label in enumerate(labels)}
        train_features = self._featurise(train_rows, index, max_tokens)
        eval_features = self._featurise(eval_rows, index, max_tokens) if eval_rows else None
        if eval_features:
            longest = max(f["length"] for f in eval_features)
            for feature in eval_features:
                feature["pad_to"] = longest
        trainer = Trainer(self.model, args, train_data=train_features, collate=self.collate,
                          eval_data=eval_features, compute_metrics=token_accuracy,
                          save_best=lambda model, path: self.save(path))
        result = trainer.train()
        self.model.to(self.device).eval()
        self.metadata.update(labels=labels, head_initialized=True)
        return result


def token_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Accuracy over the positions that carry a label (labels != -100)."""
    keep = labels != -100
    if not keep.any():
        return {"accuracy": 0.0}
    return {"accuracy": (logits.argmax(-1)[keep] == labels[keep]).float().mean().item()}


def _strategy(value: Any) -> str:
    if value is None:
        return DEFAULT_AGGREGATION
    if isinstance(value, str) and value.lower() in AGGREGATION_STRATEGIES:
        return value.lower()
    raise InvalidInputError(f"aggregation_strategy must be one of {', '.join(map(repr, AGGREGATION_STRATEGIES))}, "
                            f"got {value!r}.")


def _ignored(value: Any) -> tuple[str, ...]:
    if value is None:
        return ("O",)
    if isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise InvalidInputError(f"ignore_labels must be a list of label names, got {value!r}.")


def _run_length(flags: list[int]) -> int:
    count = 0
    for flag in flags:
        if not flag:
            break
        count += 1
    return count


def _windows(content: int, room: int, stride: int | None) -> list[tuple[int, int]]:
    """Overlapping ``(start, end)`` token ranges of at most ``room`` covering ``content``."""
    overlap = stride if stride is not None else min(128, room // 4)
    if not isinstance(overlap, int) or isinstance(overlap, bool) or not 0 <= overlap < room:
        raise InvalidInputError(f"stride must be an integer in [0, {room}), got {stride!r}.")
    spans, start = [], 0
    while True:
        end = min(start + room, content)
        spans.append((start, end))
        if end >= content:
            return spans
        start = end - overlap
