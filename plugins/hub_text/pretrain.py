"""Self-supervised text pretraining: corpora, packing, masking, tokenizers, and the
loop behind ``TextGenerationPipeline.pretrain`` (causal LM) and
``FillMaskPipeline.pretrain`` (masked LM).

Corpora (:func:`read_texts`) are lists of *documents*:

* a ``.txt`` file: by default one document per **block of lines separated by one or
  more blank lines** (lines inside a block keep their line breaks);
  ``documents="line"`` makes every non-blank line a document instead;
* a ``.jsonl`` file: one JSON object per line, the document in its ``"text"`` field
  (``text_field=``); blank lines are skipped;
* a ``.json`` file: a list of strings or of such objects;
* a folder: every ``.txt``, ``.jsonl`` and ``.json`` file under it (recursively, in
  sorted order; hidden files are skipped);
* any iterable of strings (each string one document) or of ``{"text": ...}`` dicts.

Empty documents are skipped. A row that cannot be read raises
:class:`~hub.errors.DataError` naming the file and line (or the item).

Causal LM (GPT): every document is tokenised without special tokens, followed by the
end-of-sequence token, the documents are concatenated and the stream is cut into
``block_size`` blocks (the tail shorter than a block is dropped), so no position is
padding; ``labels = input_ids`` (the model shifts them). Masked LM (BERT): the stream
is documents separated by ``[SEP]`` and every block is ``[CLS] + block_size - 2 tokens
+ [SEP]``; masking is dynamic (a new draw every time a block is seen) with BERT's
recipe (15 % of the non-special tokens; of those 80 % become ``[MASK]``, 10 % a random
token, 10 % stay; ``labels`` are -100 elsewhere), drawn from a ``torch.Generator``
seeded from ``TrainingArguments.seed``. Validation blocks are masked once, so every
evaluation scores the same positions.

The validation split is made by document (``val_fraction``, seeded), and the evaluation
reports the per-token loss (``eval_loss``, averaged over all predicted tokens) and
``eval_perplexity = exp(eval_loss)``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hub.backbone.config import TransformerConfig
from hub.errors import ConfigError, DataError

TEXT_SUFFIXES = (".txt", ".jsonl", ".json")
DOCUMENT_RULES = ("blank_line", "line")
BPE_SPECIAL = "<|endoftext|>"
WORDPIECE_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

# pretraining starts from random weights far more often than fine-tuning does: these
# replace TrainingArguments' fine-tuning defaults unless given (eval_batch_size defaults
# to batch_size)
PRETRAIN_DEFAULTS = {"learning_rate": 5e-4, "schedule": "cosine", "warmup_ratio": 0.05, "batch_size": 32}


# -- reading corpora -------------------------------------------------------------------
def read_texts(source: Any, *, text_field: str = "text", documents: str = "blank_line") -> list[str]:
    """The documents of a corpus (see the module docstring for the accepted sources)."""
    if documents not in DOCUMENT_RULES:
        raise ConfigError(f"documents must be one of {DOCUMENT_RULES}, got {documents!r}.")
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not files:
                raise DataError(f"Folder {str(path)!r} holds no {'/'.join(TEXT_SUFFIXES)} files.")
            texts = [t for f in files for t in _read_file(f, text_field, documents)]
            where = f"folder {str(path)!r}"
        elif path.is_file():
            texts = _read_file(path, text_field, documents)
            where = str(path)
        else:
            raise DataError(f"Text source {str(path)!r} does not exist. Pass a .txt/.jsonl/.json file, a "
                            "folder of them, or a list of strings (in-memory text).")
    elif isinstance(source, Iterable) and not isinstance(source, (bytes, Mapping)):
        texts = []
        for index, item in enumerate(source):
            if isinstance(item, Mapping):
                item = item.get(text_field)
                if not isinstance(item, str):
                    raise DataError(f"Data item {index}: expected a string in field {text_field!r}, "
                                    f"got {type(item).__name__}.")
            elif not isinstance(item, str):
                raise DataError(f"Data item {index} is a {type(item).__name__} ({item!r:.60}); "
                                f"expected a string (one document) or a dict with {text_field!r}.")
            if item.strip():
                texts.append(item)
        where = "the data list"
    else:
        raise DataError(f"Cannot read text from a {type(source).__name__}; pass a path to a "
                        f"{'/'.join(TEXT_SUFFIXES)} file, a folder of them, or a list of strings.")
    if not texts:
        raise DataError(f"{where} holds no text.")
    return texts


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")  # a byte-order mark (Windows editors) is not text
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise DataError(f"{path}, line {line}: not valid UTF-8 ({exc.reason} at byte {exc.start}).") from None


def _read_file(path: Path, text_field: str, documents: str) -> list[str]:
    suffix = path.suffix.lower()
    if suffix == ".txt":
        lines = _decode(path).splitlines()
        if documents == "line":
            return [line for line in lines if line.strip()]
        blocks, current = [], []
        for line in [*lines, ""]:
            if line.strip():
                current.append(line)
            elif current:
                blocks.append("\n".join(current))
                current = []
        return blocks
    if suffix == ".jsonl":
        texts = []
        for number, line in enumerate(_decode(path).splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}, line {number}: not valid JSON ({exc.msg}).") from None
            texts.extend(_text_of(record, text_field, f"{path}, line {number}"))
        return texts
    if suffix == ".json":
        try:
            data = json.loads(_decode(path))
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno}).") from None
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a JSON list of strings or objects with {text_field!r}.")
        return [t for i, item in enumerate(data) for t in _text_of(item, text_field, f"{path}, item {i}")]
    raise DataError(f"{path}: unsupported file type {suffix!r}; use one of {', '.join(TEXT_SUFFIXES)}.")


def _text_of(record: Any, text_field: str, where: str) -> list[str]:
    if isinstance(record, str):
        text = record
    elif isinstance(record, dict):
        if text_field not in record:
            raise DataError(f"{where}: no {text_field!r} field; the record has {sorted(record)}.")
        text = record[text_field]
        if not isinstance(text, str):
            raise DataError(f"{where}: field {text_field!r} must be a string, got {type(text).__name__}.")
    else:
        raise DataError(f"{where}: expected a JSON object with {text_field!r}, got {type(record).__name__}.")
    return [text] if text.strip() else []


def split_documents(texts: Sequence[str], val_fraction: float, seed: int = 0) -> tuple[list[str], list[str]]:
    """A seeded hold-out split by document: ``(train, validation)``, original order kept."""
    if not isinstance(val_fraction, (int, float)) or not 0 <= val_fraction < 1:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction!r}.")
    if not val_fraction:
        return list(texts), []
    if len(texts) < 2:
        raise DataError(f"Cannot hold out a validation split from {len(texts)} document; pass more "
                        "documents, eval=..., or val_fraction=0.")
    count = min(len(texts) - 1, max(1, round(len(texts) * val_fraction)))
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    held = set(order[:count])
    return ([t for i, t in enumerate(texts) if i not in held], [t for i, t in enumerate(texts) if i in held])


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
    def for_tokenizer(cls, tokenizer: Any, **kwargs: Any) -> "MaskedLMCollator":
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


# -- the pretraining loop ------------------------------------------------------------------
def pretrain_language_model(pipe: Any, data: Any, *, objective: str, eval: Any = None,
                            block_size: int | None = None, val_fraction: float = 0.05,
                            eval_every: int | None = None, text_field: str = "text",
                            documents: str = "blank_line", mlm_probability: float | None = None,
                            **training_args: Any) -> Any:
    """Pretrain ``pipe.model`` in place (``objective`` ``"clm"`` or ``"mlm"``); the
    pipeline keeps the best evaluation's weights. Returns the Trainer's TrainResult whose
    history records also carry ``tokens_seen`` and ``data_epochs``."""
    from hub.train import Trainer, TrainingArguments

    if objective not in ("clm", "mlm"):
        raise ConfigError(f"objective must be 'clm' or 'mlm', got {objective!r}.")
    if objective == "clm" and mlm_probability is not None:
        raise ConfigError("mlm_probability applies to masked-LM pretraining (fill-mask) only.")
    training_args = {**PRETRAIN_DEFAULTS, "device": str(pipe.device), **training_args}
    # evaluation holds (batch, block, vocabulary) logits: no larger batches than training's
    training_args.setdefault("eval_batch_size", training_args["batch_size"])
    args = TrainingArguments.from_kwargs(**training_args)
    model, tokenizer = pipe.model, pipe.tokenizer
    limit = model.max_positions if objective == "clm" else model.encoder.max_positions
    block_size = block_size if block_size is not None else min(limit, 512)
    if not isinstance(block_size, int) or isinstance(block_size, bool) or block_size < 2:
        raise ConfigError(f"block_size must be an integer >= 2, got {block_size!r}.")
    if block_size > limit:
        raise ConfigError(f"block_size {block_size} exceeds the model's {limit} positions.")
    if eval_every is not None and (not isinstance(eval_every, int) or eval_every < 1):
        raise ConfigError(f"eval_every must be a positive number of optimizer steps, got {eval_every!r}.")

    train_texts = read_texts(data, text_field=text_field, documents=documents)
    if eval is not None:
        val_texts = read_texts(eval, text_field=text_field, documents=documents)
    else:
        train_texts, val_texts = split_documents(train_texts, val_fraction, args.seed)

    if objective == "clm":
        eos = model.config.get("eos_token_id")
        eos = eos if eos is not None else tokenizer.eos_token_id
        if eos is None:
            raise ConfigError("Causal-LM pretraining needs an end-of-sequence token between documents; the "
                              "tokenizer has none (train one with train_tokenizer(texts, kind='bpe')).")

        def pack(texts):
            return pack_causal(tokenize_documents(tokenizer, texts), block_size, eos)

        collate: Any = CausalLMCollator()
        options: dict[str, Any] = {}
    else:
        if tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
            raise ConfigError("Masked-LM pretraining needs a tokenizer with [CLS] and [SEP] tokens; train one "
                              "with train_tokenizer(texts, kind='wordpiece').")

        def pack(texts):
            return pack_masked(tokenize_documents(tokenizer, texts), block_size, tokenizer.cls_token_id,
                               tokenizer.sep_token_id)

        options = {} if mlm_probability is None else {"mlm_probability": mlm_probability}
        collate = MaskedLMCollator.for_tokenizer(tokenizer, seed=args.seed, **options)

    train_blocks = pack(train_texts)
    if not len(train_blocks):
        raise DataError(f"The training text holds fewer tokens than one block of {block_size}; pass more "
                        "text or a smaller block_size.")
    train_data: Any = BlockDataset(train_blocks)
    eval_data = None
    if val_texts:
        val_blocks = pack(val_texts)
        if not len(val_blocks):
            raise DataError(f"The validation text ({len(val_texts)} documents) holds fewer tokens than one block "
                            f"of {block_size}; raise val_fraction, pass eval=..., or lower block_size.")
        if objective == "mlm":  # fixed masks: every evaluation scores the same positions
            fixed = MaskedLMCollator.for_tokenizer(tokenizer, seed=args.seed + 1, **options)
            eval_data = BlockDataset(*fixed.mask(val_blocks))
        else:
            eval_data = BlockDataset(val_blocks)

    per_step = args.batch_size * args.gradient_accumulation_steps
    steps_per_pass = math.ceil(math.ceil(len(train_data) / args.batch_size) / args.gradient_accumulation_steps)
    if eval_every is not None:
        args = dataclasses.replace(args, eval_steps=eval_every)
    blocks_total = len(train_blocks)

    trainer = Trainer(LanguageModelForTraining(model, causal=objective == "clm"), args, train_data=train_data,
                      collate=collate, eval_data=eval_data, compute_metrics=lm_metrics,
                      save_best=lambda _module, path: pipe.save(path))
    result = trainer.train()
    pipe.model.to(pipe.device).eval()
    for record in result.history:
        passes, rest = divmod(record["step"], steps_per_pass)  # the last batch of a pass may be short
        seen = passes * blocks_total + min(rest * per_step, blocks_total)
        record["tokens_seen"] = seen * block_size
        record["data_epochs"] = round(seen / blocks_total, 4)
    best = next((r for r in result.history if r.get("step") == result.best_step), None)
    if best is not None and "eval_loss" in best:
        pipe.metadata["metrics"] = {"eval_loss": round(best["eval_loss"], 4),
                                    "eval_perplexity": round(best["eval_perplexity"], 2)}
    pipe.metadata.update(pretrain={"objective": objective, "block_size": block_size,
                                   "train_blocks": blocks_total,
                                   "eval_blocks": len(eval_data) if eval_data is not None else 0})
    return result


# -- building fresh models -----------------------------------------------------------------
_BACKBONE_KEYS = tuple(f.name for f in dataclasses.fields(TransformerConfig))
TINY_BACKBONE = {"hidden_size": 256, "num_layers": 4, "num_heads": 4}


def _model_config(config: dict[str, Any] | None, *, model_keys: dict[str, Any], backbone: dict[str, Any],
                  what: str) -> dict[str, Any]:
    """Merge a user's config (model keys, backbone keys at the top level or under
    ``"backbone"``) over the defaults; unknown keys are an error."""
    if config is not None and not isinstance(config, Mapping):
        raise ConfigError(f"config must be a dict, got {type(config).__name__}.")
    config = dict(config or {})
    nested = config.pop("backbone", {}) or {}
    if not isinstance(nested, dict):
        raise ConfigError(f"config['backbone'] must be a dict, got {type(nested).__name__}.")
    out = dict(model_keys)
    layers = dict(backbone)
    for key, value in [*config.items(), *nested.items()]:
        if key in _BACKBONE_KEYS:
            layers[key] = value
        elif key in model_keys:
            out[key] = value
        else:
            raise ConfigError(f"Unknown {what} config key {key!r}; known: "
                              f"{', '.join(sorted({*model_keys, *_BACKBONE_KEYS} - {'causal'}))}.")
    layers.setdefault("intermediate_size", 4 * layers["hidden_size"])
    out["backbone"] = layers
    return out


def resolve_tokenizer(tokenizer: Any, task: str) -> Any:
    """A tokenizer object as given, or loaded from a folder path."""
    if tokenizer is None:
        raise ConfigError(f"{task} from scratch needs tokenizer=: a tokenizer object or a folder holding one; "
                          "hub_text.pretrain.train_tokenizer(texts, ...) trains one.")
    if isinstance(tokenizer, (str, Path)):
        from hub_text.tokenizer import load_tokenizer

        return load_tokenizer(tokenizer)
    if not callable(tokenizer) or not hasattr(tokenizer, "all_special_ids"):
        raise ConfigError(f"tokenizer must be a transformers tokenizer or a folder path, got "
                          f"{type(tokenizer).__name__}.")
    return tokenizer


def _check_token_id(config: dict[str, Any], key: str, value: int | None) -> None:
    given = config.get(key)
    if given is not None and value is not None and given != value:
        raise ConfigError(f"config {key}={given} disagrees with the tokenizer's {value}; leave it out "
                          "(it is taken from the tokenizer).")
    config[key] = value


def causal_lm_config(config: dict[str, Any] | None, tokenizer: Any) -> dict[str, Any]:
    """A ``causal-lm`` config: GPT-2's layout, tiny sizes by default, vocabulary and
    end-of-sequence token from the tokenizer."""
    out = _model_config(
        config, what="causal-lm",
        model_keys={"vocab_size": None, "max_positions": 512, "position": "learned", "tie_word_embeddings": True,
                    "bos_token_id": None, "eos_token_id": None},
        backbone={**TINY_BACKBONE, "activation": "gelu_tanh", "norm_eps": 1e-5, "norm_position": "pre",
                  "dropout": 0.1, "attention_dropout": 0.1})
    out["backbone"]["causal"] = True
    _set_vocab(out, tokenizer)
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    if eos is None:
        raise ConfigError("A causal LM needs a tokenizer with an end-of-sequence token (e.g. <|endoftext|>); "
                          "train one with train_tokenizer(texts, kind='bpe').")
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos
    _check_token_id(out, "eos_token_id", eos)
    _check_token_id(out, "bos_token_id", bos)
    return out


def masked_lm_config(config: dict[str, Any] | None, tokenizer: Any) -> dict[str, Any]:
    """A ``bert-mlm`` config: BERT's layout, tiny sizes by default, vocabulary and padding
    token from the tokenizer."""
    out = _model_config(
        config, what="bert-mlm",
        model_keys={"vocab_size": None, "max_positions": 512, "position": "learned", "type_vocab_size": 2,
                    "pad_token_id": None, "mlm_activation": "gelu"},
        backbone={**TINY_BACKBONE, "activation": "gelu", "norm_eps": 1e-12, "norm_position": "post",
                  "dropout": 0.1, "attention_dropout": 0.1})
    _set_vocab(out, tokenizer)
    if tokenizer.mask_token_id is None:
        raise ConfigError("A masked LM needs a tokenizer with a mask token ([MASK]); train one with "
                          "train_tokenizer(texts, kind='wordpiece').")
    _check_token_id(out, "pad_token_id", tokenizer.pad_token_id)
    return out


def _set_vocab(config: dict[str, Any], tokenizer: Any) -> None:
    size = len(tokenizer)
    if config.get("vocab_size") not in (None, size):
        raise ConfigError(f"config vocab_size={config['vocab_size']} differs from the tokenizer's {size} tokens; "
                          "leave it out (it is taken from the tokenizer).")
    config["vocab_size"] = size


def build_fresh(architecture: str, config: dict[str, Any], *, seed: int | None = None) -> nn.Module:
    """A randomly initialised ``architecture`` (seeded when ``seed`` is given)."""
    from hub.modeling import build_module

    TransformerConfig.from_dict(config["backbone"])  # validate sizes with a clear error first
    if seed is None:
        return build_module(architecture, config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_module(architecture, config)


def new_pipeline(cls: type, make_config: Any, config: dict[str, Any] | None, tokenizer: Any, *,
                 device: torch.device | str | None, dtype: torch.dtype | None, seed: int | None) -> Any:
    """The body of every ``from_scratch``: ``cls`` around a freshly initialised model whose
    config ``make_config(config, tokenizer)`` derives."""
    tokenizer = resolve_tokenizer(tokenizer, cls.task)
    model = build_fresh(cls.architecture, make_config(config, tokenizer), seed=seed)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(device=device, dtype=dtype).eval()
    metadata = {"task": cls.task, "architecture": cls.architecture, "source": "scratch"}
    return cls(model, tokenizer, device=device, dtype=dtype, metadata=metadata)


# -- tokenizers ----------------------------------------------------------------------------
def train_tokenizer(texts: Any, kind: str = "bpe", vocab_size: int = 8000, *, min_frequency: int = 2,
                    lowercase: bool | None = None, model_max_length: int | None = None) -> Any:
    """Train a tokenizer with the ``tokenizers`` library; returns a transformers
    ``PreTrainedTokenizerFast`` (save it with ``save_pretrained``; ``pipe.save`` does).

    * ``kind="bpe"``: GPT-2's byte-level BPE (every byte in the base alphabet, so no
      unknown tokens), ``<|endoftext|>`` as bos, eos, pad and unk; no special tokens
      are added when encoding.
    * ``kind="wordpiece"``: BERT's WordPiece with ``[PAD] [UNK] [CLS] [SEP] [MASK]``
      (ids 0-4), BERT normalisation (lower-cased unless ``lowercase=False``) and a
      post-processor that makes ``[CLS] A [SEP]`` and ``[CLS] A [SEP] B [SEP]``.

    ``texts`` is anything :func:`read_texts` reads (a list of strings, a file, a folder).
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if kind not in ("bpe", "wordpiece"):
        raise ConfigError(f"kind must be 'bpe' or 'wordpiece', got {kind!r}.")
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        texts = read_texts(texts)
    if not texts:
        raise DataError("train_tokenizer got no text.")
    if kind == "bpe":
        alphabet = pre_tokenizers.ByteLevel.alphabet()
        if vocab_size < len(alphabet) + 1:
            raise ConfigError(f"vocab_size must be at least {len(alphabet) + 1} for byte-level BPE "
                              f"(256 bytes + {BPE_SPECIAL}), got {vocab_size}.")
        if lowercase:
            raise ConfigError("lowercase=True is not supported for byte-level BPE (GPT-2 keeps case).")
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                      special_tokens=[BPE_SPECIAL], initial_alphabet=alphabet,
                                      show_progress=False)
        tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
        specials = {"bos_token": BPE_SPECIAL, "eos_token": BPE_SPECIAL, "pad_token": BPE_SPECIAL,
                    "unk_token": BPE_SPECIAL}
    else:
        if vocab_size < len(WORDPIECE_SPECIALS) + 1:
            raise ConfigError(f"vocab_size must exceed {len(WORDPIECE_SPECIALS)} for WordPiece, got {vocab_size}.")
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase is not False)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece(prefix="##")
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                            special_tokens=list(WORDPIECE_SPECIALS), show_progress=False,
                                            continuing_subword_prefix="##")
        tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
        cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
        specials = {"unk_token": "[UNK]", "pad_token": "[PAD]", "cls_token": "[CLS]", "sep_token": "[SEP]",
                    "mask_token": "[MASK]", "model_input_names": ["input_ids", "token_type_ids", "attention_mask"]}
    extra = {} if model_max_length is None else {"model_max_length": model_max_length}
    return PreTrainedTokenizerFast(tokenizer_object=tok, **specials, **extra)
