"""What the shipped language-model defaults are trained on and measured with.

``fortunes-gpt`` (text-generate) is trained from scratch, ``fortunes-mlm`` (fill-mask) is
fine-tuned from the first layers of the packaged all-MiniLM-L6-v2, both on the Debian fortunes
corpus (``apt-get install -y fortunes fortunes-min``; see
:func:`examples.data_prep.fortunes`), 5 % of the fortunes held out by fortune (seed 0,
:func:`hub_text.pretrain.split_documents`). The figures in registry.yaml are computed by
the functions here on the held-out fortunes, with the *shipped* (int8-stored) weights,
and ``tests/text/test_lm_defaults.py`` recomputes them:

* causal LM: per-token perplexity of the held-out text packed into blocks exactly as
  pretraining evaluates (``doc EOS doc EOS ...``, 128-token blocks, every token but a
  block's first predicted), against a unigram and a bigram model (Witten-Bell
  interpolated, no tuned constant) counted on the training fortunes with the same
  tokenizer and scored on the same positions;
* masked LM: accuracy of the top prediction at BERT-masked positions of the held-out
  blocks (15 % of the tokens, seeded; every chosen position is replaced by ``[MASK]``, so
  the model never sees the answer), against always guessing the most frequent training
  token and against a bigram guess (the most frequent training token after the
  unmasked left neighbour).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import torch

SEED = 0
VAL_FRACTION = 0.05
BLOCK_SIZE = 128


def fortune_split() -> tuple[list[str], list[str]]:
    """(training fortunes, held-out fortunes): the split every LM default uses."""
    from examples.data_prep import fortunes
    from hub_text.pretrain import read_texts, split_documents

    return split_documents(read_texts(fortunes()), VAL_FRACTION, SEED)


# -- causal LM -----------------------------------------------------------------------------
def causal_blocks(tokenizer: Any, texts: list[str], block_size: int = BLOCK_SIZE) -> torch.Tensor:
    """Held-out text as pretraining packs it (``doc EOS doc EOS ...`` cut into blocks)."""
    from hub_text.pretrain import pack_causal, tokenize_documents

    return pack_causal(tokenize_documents(tokenizer, texts), block_size, tokenizer.eos_token_id)


@torch.no_grad()
def causal_perplexity(pipe: Any, blocks: torch.Tensor, batch_size: int = 32) -> dict[str, float]:
    """Per-token loss and perplexity of ``pipe.model`` on ``blocks`` (every token but the first)."""
    import torch.nn.functional as F

    model = pipe.model.eval()
    total, count = 0.0, 0
    for start in range(0, len(blocks), batch_size):
        ids = blocks[start:start + batch_size].to(pipe.device)
        logits = model(input_ids=ids)["logits"][:, :-1].float()
        total += F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="sum").item()
        count += ids[:, 1:].numel()
    loss = total / count
    return {"loss": loss, "perplexity": math.exp(loss), "tokens": count}


def ngram_perplexities(train_ids: list[list[int]], blocks: torch.Tensor, vocab_size: int,
                       eos_token_id: int) -> dict[str, float]:
    """Unigram (add-one) and Witten-Bell bigram perplexities on the positions the LM predicts.

    Counted on the training stream (documents joined by EOS, as the model was trained);
    a bigram's history is the previous token inside the block, as the model's is.
    """
    stream = [t for doc in train_ids for t in (*doc, eos_token_id)]
    unigram = Counter(stream)
    total = len(stream)
    bigram = Counter(zip(stream, stream[1:]))
    history = Counter(stream[:-1])
    followers = Counter(h for h, _ in bigram)

    def p_unigram(token: int) -> float:
        return (unigram[token] + 1) / (total + vocab_size)

    uni_nll = bi_nll = 0.0
    count = 0
    for row in blocks.tolist():
        for prev, token in zip(row, row[1:]):
            p_uni = p_unigram(token)
            seen, kinds = history[prev], followers[prev]
            p_bi = (bigram[(prev, token)] + kinds * p_uni) / (seen + kinds) if seen else p_uni
            uni_nll -= math.log(p_uni)
            bi_nll -= math.log(p_bi)
            count += 1
    return {"unigram_perplexity": math.exp(uni_nll / count), "bigram_perplexity": math.exp(bi_nll / count)}


# -- masked LM -----------------------------------------------------------------------------
def masked_blocks(tokenizer: Any, texts: list[str], block_size: int = BLOCK_SIZE,
                  seed: int = SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, labels): held-out blocks with 15 % of the ordinary tokens replaced by ``[MASK]``.

    Unlike training's 80/10/10 recipe every chosen token is masked, so the score is that of
    the fill-mask task (predict what is hidden); labels are -100 where nothing is asked.
    """
    from hub_text.pretrain import pack_masked, tokenize_documents

    blocks = pack_masked(tokenize_documents(tokenizer, texts), block_size, tokenizer.cls_token_id,
                         tokenizer.sep_token_id)
    generator = torch.Generator().manual_seed(seed)
    special = torch.isin(blocks, torch.tensor(sorted(tokenizer.all_special_ids)))
    chosen = (torch.rand(blocks.shape, generator=generator) < 0.15) & ~special
    labels = torch.where(chosen, blocks, torch.full_like(blocks, -100))
    inputs = torch.where(chosen, torch.full_like(blocks, tokenizer.mask_token_id), blocks)
    return inputs, labels


@torch.no_grad()
def masked_accuracy(pipe: Any, inputs: torch.Tensor, labels: torch.Tensor, batch_size: int = 32) -> dict[str, float]:
    """Top-1 accuracy (and top-5) of ``pipe.model`` at the masked positions."""
    model = pipe.model.eval()
    top1 = top5 = count = 0
    for start in range(0, len(inputs), batch_size):
        ids = inputs[start:start + batch_size].to(pipe.device)
        gold = labels[start:start + batch_size].to(pipe.device)
        where = gold != -100
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids))["logits"][where].float()
        best = logits.topk(5, dim=-1).indices
        top1 += (best[:, 0] == gold[where]).sum().item()
        top5 += (best == gold[where][:, None]).any(-1).sum().item()
        count += int(where.sum())
    return {"accuracy": top1 / count, "top5_accuracy": top5 / count, "masked_tokens": count}


def masked_baselines(train_ids: list[list[int]], inputs: torch.Tensor, labels: torch.Tensor,
                     special_ids: set[int]) -> dict[str, float]:
    """Accuracy of the most frequent training token, and of the most frequent follower of
    the left neighbour (the unigram guess when the neighbour is masked or unseen)."""
    unigram = Counter(t for doc in train_ids for t in doc)
    top = next(t for t, _ in unigram.most_common() if t not in special_ids)
    follow: dict[int, Counter] = {}
    for doc in train_ids:
        for prev, token in zip(doc, doc[1:]):
            follow.setdefault(prev, Counter())[token] += 1
    best_after = {prev: counts.most_common(1)[0][0] for prev, counts in follow.items()}
    freq = bi = count = 0
    for row, gold in zip(inputs.tolist(), labels.tolist()):
        for i, answer in enumerate(gold):
            if answer == -100:
                continue
            freq += answer == top
            bi += answer == best_after.get(row[i - 1], top)
            count += 1
    return {"frequency_accuracy": freq / count, "bigram_accuracy": bi / count}


# -- training a default (the two train_*_default scripts) ---------------------------------
def training_parser(doc: str, *, max_steps: int, learning_rate: float, eval_every: int, out: Any,
                    work_dir: str, batch_size: int = 16) -> Any:
    """The command line both LM-default scripts take."""
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--max-steps", type=int, default=max_steps)
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--learning-rate", type=float, default=learning_rate)
    parser.add_argument("--eval-every", type=int, default=eval_every)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (1 is faster on a busy machine)")
    parser.add_argument("--output", type=Path, default=out)
    parser.add_argument("--work-dir", type=Path, default=Path(work_dir))
    parser.add_argument("--update-registry", action="store_true")
    return parser


def train_and_ship(task: str, name: str, args: Any, *, tokenizer_kind: str, config: dict[str, Any],
                   **training: Any) -> dict[str, Any]:
    """Train ``task``'s default from scratch on the training fortunes (a 4,096-token tokenizer
    of ``tokenizer_kind`` first; text-generate's ``fortunes-gpt``), save it int8 to ``args.output``
    and reload it as users will.

    Returns ``{"pipe": the reloaded pipeline, "result", "parameters", "train", "held_out"}``.
    """
    import time

    import hub
    from hub_text.pretrain import train_tokenizer

    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    train_texts, val_texts = fortune_split()
    tokenizer = train_tokenizer(train_texts, kind=tokenizer_kind, vocab_size=4096, model_max_length=BLOCK_SIZE)
    pipe = hub.create(task, config={**config, "max_positions": BLOCK_SIZE}, tokenizer=tokenizer, device="cpu",
                      seed=SEED)
    result = pipe.pretrain(train_texts, eval=val_texts, block_size=BLOCK_SIZE, eval_every=args.eval_every,
                           batch_size=args.batch_size, learning_rate=args.learning_rate, schedule="cosine",
                           seed=SEED, device="cpu", max_steps=args.max_steps, output_dir=str(args.work_dir),
                           progress=False, log_every=50, **training)
    for record in result.history:
        print({k: record.get(k) for k in ("step", "data_epochs", "train_loss", "eval_loss", "eval_perplexity")})
    parameters = sum(p.numel() for p in pipe.model.parameters())  # before int8 storage
    pipe.metadata.update(model_name=name, license="other")
    pipe.save(args.output, quantize=True)
    shipped = hub.load(task, model=str(args.output), device="cpu")
    summary = {"steps": result.steps, "best_step": result.best_step, "best_eval_loss_fp32": result.best_metric,
               "train_seconds": round(result.train_seconds), "wall_seconds": round(time.perf_counter() - started),
               "parameters": parameters}
    return {"pipe": shipped, "summary": summary, "train": train_texts, "held_out": val_texts}
