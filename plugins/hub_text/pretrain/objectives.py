"""The two objectives' data and scoring: tokenising and packing documents into blocks
(causal: ``doc EOS doc EOS ...``; masked: ``[CLS] ... [SEP]``), BERT's dynamic masking,
the collators, and the per-token loss / perplexity the evaluation reports."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from itertools import chain
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hub.errors import ConfigError


# -- tokenising and packing -------------------------------------------------------------
def tokenize_documents(tokenizer: Any, texts: Sequence[str], chunk: int = 1000) -> list[list[int]]:
    """Token ids of each document, without special tokens."""
    ids: list[list[int]] = []
    for start in range(0, len(texts), chunk):
        ids.extend(tokenizer(list(texts[start:start + chunk]), add_special_tokens=False,
                             verbose=False)["input_ids"])
    return ids


def pack_causal(token_ids: Iterable[Sequence[int]], block_size: int, eos_token_id: int) -> torch.Tensor:
    """(N, block_size) blocks of ``doc0 EOS doc1 EOS ...``; the last partial block is dropped."""
    stream = torch.tensor(list(chain.from_iterable([*doc, eos_token_id] for doc in token_ids)), dtype=torch.long)
    count = len(stream) // block_size
    return stream[:count * block_size].view(count, block_size)


def pack_masked(token_ids: Iterable[Sequence[int]], block_size: int, cls_token_id: int,
                sep_token_id: int) -> torch.Tensor:
    """(N, block_size) blocks ``[CLS] + block_size - 2 tokens of doc0 [SEP] doc1 [SEP] ... + [SEP]``."""
    if block_size < 3:
        raise ConfigError(f"block_size must be at least 3 for a masked LM ([CLS] x [SEP]), got {block_size}.")
    body = pack_causal(token_ids, block_size - 2, sep_token_id)
    cls = torch.full((len(body), 1), cls_token_id, dtype=torch.long)
    sep = torch.full((len(body), 1), sep_token_id, dtype=torch.long)
    return torch.cat([cls, body, sep], 1)


class BlockDataset(torch.utils.data.Dataset):
    """Rows of an (N, T) tensor as ``{"input_ids": (T,)}`` (plus ``"labels"`` when given)."""

    def __init__(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        self.input_ids, self.labels = input_ids, labels

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = {"input_ids": self.input_ids[index]}
        if self.labels is not None:
            item["labels"] = self.labels[index]
        return item


class CausalLMCollator:
    """Stack packed blocks; ``labels = input_ids`` (the model shifts them by one)."""

    def __call__(self, features: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        ids = torch.stack([f["input_ids"] for f in features])
        return {"input_ids": ids, "labels": ids.clone()}


class MaskedLMCollator:
    """Dynamic BERT masking of packed blocks, reproducible through a seeded generator.

    Of the non-special tokens, ``mlm_probability`` are chosen; of those ``mask_fraction``
    become the mask token, ``random_fraction`` a random non-special token, the rest stay.
    ``labels`` hold the original ids at chosen positions and -100 elsewhere. Features that
    already carry ``labels`` (pre-masked validation blocks) are only stacked.
    """

    def __init__(self, *, mask_token_id: int, vocab_size: int, special_ids: Iterable[int],
                 mlm_probability: float = 0.15, mask_fraction: float = 0.8, random_fraction: float = 0.1,
                 seed: int = 0) -> None:
        if not 0 < mlm_probability < 1:
            raise ConfigError(f"mlm_probability must be in (0, 1), got {mlm_probability!r}.")
        if mask_fraction < 0 or random_fraction < 0 or mask_fraction + random_fraction > 1:
            raise ConfigError("mask_fraction and random_fraction must be >= 0 and sum to at most 1.")
        self.mask_token_id = int(mask_token_id)
        self.special_ids = torch.tensor(sorted({int(i) for i in special_ids}), dtype=torch.long)
        self.candidates = torch.tensor([i for i in range(vocab_size) if i not in set(self.special_ids.tolist())],
                                       dtype=torch.long)
        self.mlm_probability, self.mask_fraction, self.random_fraction = mlm_probability, mask_fraction, random_fraction
        self.generator = torch.Generator().manual_seed(seed)

    @classmethod
    def for_tokenizer(cls, tokenizer: Any, **kwargs: Any) -> MaskedLMCollator:
        if tokenizer.mask_token_id is None:
            raise ConfigError("Masked-LM pretraining needs a tokenizer with a mask token ([MASK]); train one "
                              "with train_tokenizer(texts, kind='wordpiece').")
        return cls(mask_token_id=tokenizer.mask_token_id, vocab_size=len(tokenizer),
                   special_ids=tokenizer.all_special_ids, **kwargs)

    def mask(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, labels) for a (B, T) batch of token ids."""
        g = self.generator
        special = torch.isin(input_ids, self.special_ids)
        chosen = torch.bernoulli(torch.full(input_ids.shape, self.mlm_probability).masked_fill(special, 0.0),
                                 generator=g).bool()
        if not chosen.any() and not special.all():  # a loss needs at least one target
            allowed = (~special).flatten().nonzero().squeeze(1)
            chosen.view(-1)[allowed[torch.randint(len(allowed), (1,), generator=g)]] = True
        labels = input_ids.masked_fill(~chosen, -100)
        inputs = input_ids.clone()
        to_mask = torch.bernoulli(torch.full(input_ids.shape, self.mask_fraction), generator=g).bool() & chosen
        rest = 1.0 - self.mask_fraction
        p_random = self.random_fraction / rest if rest > 0 else 0.0
        to_random = (torch.bernoulli(torch.full(input_ids.shape, p_random), generator=g).bool()
                     & chosen & ~to_mask)
        inputs[to_mask] = self.mask_token_id
        picks = torch.randint(len(self.candidates), (int(to_random.sum()),), generator=g)
        inputs[to_random] = self.candidates[picks]
        return inputs, labels

    def __call__(self, features: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        ids = torch.stack([f["input_ids"] for f in features])
        if "labels" in features[0]:
            return {"input_ids": ids, "labels": torch.stack([f["labels"] for f in features])}
        inputs, labels = self.mask(ids)
        return {"input_ids": inputs, "labels": labels}


# -- evaluation: per-token loss and perplexity ---------------------------------------------
class LanguageModelForTraining(nn.Module):
    """The LM as the Trainer sees it. Training: the model's own output. Evaluation: the
    loss plus, as ``"logits"``, each sequence's (summed token loss, token count), so the
    Trainer collects two numbers per sequence instead of (T, vocabulary) logits and
    :func:`lm_metrics` can average over tokens."""

    def __init__(self, model: nn.Module, *, causal: bool) -> None:
        super().__init__()
        self.model, self.causal = model, causal

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor,
                attention_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if self.training:
            return self.model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask)["logits"]
        if self.causal:
            logits, labels = logits[:, :-1], labels[:, 1:]
        nll = F.cross_entropy(logits.float().transpose(1, 2), labels, ignore_index=-100, reduction="none")
        counts = (labels != -100).sum(1)
        return {"loss": nll.sum() / counts.sum().clamp(min=1),
                "logits": torch.stack([nll.sum(1), counts.float()], 1)}


def lm_metrics(stats: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Per-token loss over the whole evaluation set (it replaces the Trainer's per-batch
    mean, so ``eval_loss`` is exact) and ``perplexity = exp(loss)``."""
    loss = (stats[:, 0].double().sum() / stats[:, 1].double().sum().clamp(min=1)).item()
    return {"loss": loss, "perplexity": math.exp(loss) if loss < 700 else math.inf}
