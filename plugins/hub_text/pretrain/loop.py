"""The pretraining loop behind ``TextGenerationPipeline.pretrain`` (causal LM) and
``FillMaskPipeline.pretrain`` (masked LM)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from hub.errors import ConfigError, DataError
from hub_text.data import read_texts, split_documents

from .objectives import (
    BlockDataset,
    CausalLMCollator,
    LanguageModelForTraining,
    MaskedLMCollator,
    lm_metrics,
    pack_causal,
    pack_masked,
    tokenize_documents,
)

# pretraining starts from random weights far more often than fine-tuning does: these
# replace TrainingArguments' fine-tuning defaults unless given (eval_batch_size defaults
# to batch_size)
PRETRAIN_DEFAULTS = {"learning_rate": 5e-4, "schedule": "cosine", "warmup_ratio": 0.05, "batch_size": 32}


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
