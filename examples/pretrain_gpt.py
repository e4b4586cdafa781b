"""Pretrain a small GPT from scratch on the Debian fortunes corpus with Hub's own Trainer.

Reads the ~15,000 fortunes (``apt-get install -y fortunes fortunes-min``; see
``examples/data_prep.py``), holds out 5 % of them (by fortune, seeded) for validation,
trains a byte-level BPE tokenizer on the training split only, builds a fresh GPT with
``hub.create("text-generate", ...)``, pretrains it with ``pipe.pretrain(...)`` (packed
blocks, next-token loss, evaluation every ``--eval-every`` steps, best evaluation kept),
prints the validation loss and perplexity of every evaluation and a few samples from the
text-generate pipeline, saves the model and checks that ``hub.load`` reloads it exactly.

    python -m examples.pretrain_gpt --minutes 5                 # 2-core CPU: ~5 minutes
    python -m examples.pretrain_gpt --max-steps 2000            # or a fixed number of steps
    python -m examples.pretrain_gpt --device cuda --bf16 --layers 12 --hidden 768 --heads 12 \\
        --block-size 1024 --batch-size 16 --vocab-size 16000 --learning-rate 6e-4 --epochs 10 \\
        --eval-every 200                                            # GPT-2-small shape on a GPU

Measured on a 2-core CPU (``--minutes 5 --threads 1``, 4.24 M parameters): validation loss
6.43 -> 5.63 (perplexity 621 -> 278) over 296 steps / 0.75 epochs, 2,380 tokens/s, 265 s
wall time. ``--minutes 18 --eval-every 200`` (2,996 steps, 7.6 epochs): best validation loss
4.25 (perplexity 70), and the samples are grammatical fortune-shaped English. Both tables and
their samples are in examples/README.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from pathlib import Path

import hub
from examples.data_prep import fortunes
from hub_text.pretrain import read_texts, split_documents, train_tokenizer

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = ["A celebrity is", "The computer", "Love is", "Q:\tWhat"]


def step_seconds(pipe, batch_size: int, block_size: int, device: str, bf16: bool, repeats: int = 3) -> float:
    """Time one forward + backward pass of a training batch (on a copy of the model)."""
    import torch

    model = copy.deepcopy(pipe.model).to(device).train()
    ids = torch.randint(len(pipe.tokenizer), (batch_size, block_size), device=device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 and device.startswith("cuda") else None
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        if autocast is not None:
            with autocast:
                loss = model(input_ids=ids, labels=ids)["loss"]
        else:
            loss = model(input_ids=ids, labels=ids)["loss"]
        loss.backward()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times[1:])[len(times[1:]) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--warmup-ratio", type=float, default=0.05)
    parser.add_argument("--epochs", type=float, default=1.0, help="passes over the training blocks")
    parser.add_argument("--max-steps", type=int, default=None, help="optimizer steps (overrides --epochs)")
    parser.add_argument("--minutes", type=float, default=None,
                        help="time budget: max steps estimated from a timed step (overrides the two above)")
    parser.add_argument("--eval-every", type=int, default=50, help="optimizer steps between evaluations")
    parser.add_argument("--val-fraction", type=float, default=0.05)
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda when available)")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's; 1 can be faster on a busy machine)")
    parser.add_argument("--max-new-tokens", type=int, default=60)
    parser.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "pretrain-gpt")
    parser.add_argument("--out", type=Path, default=None, help="model folder (default: RUN_DIR/model)")
    args = parser.parse_args()
    out = args.out or args.run_dir / "model"
    started = time.perf_counter()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    texts = read_texts(fortunes())
    train_texts, val_texts = split_documents(texts, args.val_fraction, args.seed)
    tokenizer = train_tokenizer(train_texts, kind="bpe", vocab_size=args.vocab_size,
                                model_max_length=args.block_size)
    config = {"num_layers": args.layers, "hidden_size": args.hidden, "num_heads": args.heads,
              "max_positions": args.block_size, "dropout": args.dropout, "attention_dropout": args.dropout}
    pipe = hub.create("text-generate", config=config, tokenizer=tokenizer, device=args.device, seed=args.seed)
    device = str(pipe.device)
    params = sum(p.numel() for p in pipe.model.parameters())
    print(f"{len(train_texts)} training / {len(val_texts)} validation fortunes; BPE vocabulary {len(tokenizer)}; "
          f"GPT {args.layers}x{args.hidden} ({args.heads} heads), {params / 1e6:.2f} M parameters, on {device}")

    max_steps = args.max_steps
    timed = step_seconds(pipe, args.batch_size, args.block_size, device, args.bf16)
    if args.minutes:
        from hub_text.pretrain import pack_causal, tokenize_documents

        val_blocks = len(pack_causal(tokenize_documents(tokenizer, val_texts), args.block_size,
                                     tokenizer.eos_token_id))
        step = timed * args.grad_accum * 1.1  # + optimizer and data
        evaluation = val_blocks / args.batch_size * timed / 3  # forward only
        budget = args.minutes * 60 - (time.perf_counter() - started) - 15  # samples and saving
        max_steps = max(1, int(budget / (step + evaluation / args.eval_every)))
        print(f"a training step takes ~{step:.2f} s: {max_steps} steps fit in {args.minutes:g} minutes")

    training = {"epochs": args.epochs} if max_steps is None else {"max_steps": max_steps}
    result = pipe.pretrain(
        train_texts, eval=val_texts, block_size=args.block_size, eval_every=args.eval_every,
        batch_size=args.batch_size, eval_batch_size=args.batch_size, gradient_accumulation_steps=args.grad_accum,
        learning_rate=args.learning_rate, weight_decay=args.weight_decay, warmup_ratio=args.warmup_ratio,
        schedule="cosine", seed=args.seed, device=device, bf16=args.bf16, output_dir=str(args.run_dir),
        progress=False, log_every=10, **training)

    print(f"\n{'step':>6} {'epochs':>7} {'train loss':>10} {'val loss':>9} {'val ppl':>9}")
    for record in result.history:
        print(f"{record['step']:>6} {record['data_epochs']:>7.3f} {record['train_loss']:>10.4f} "
              f"{record['eval_loss']:>9.4f} {record['eval_perplexity']:>9.2f}")
    tokens = result.history[-1]["tokens_seen"]
    print(f"best validation loss {result.best_metric:.4f} (perplexity {math.exp(result.best_metric):.2f}) at "
          f"step {result.best_step}; {tokens:,} tokens in {result.train_seconds:.0f} s "
          f"({tokens / result.train_seconds:,.0f} tokens/s with evaluations; "
          f"{args.batch_size * args.block_size / timed:,.0f} tokens/s forward+backward)")

    print("\nsamples (greedy, then top-k 40 / temperature 0.8):")
    samples = []
    for prompt in PROMPTS:
        for options in ({}, {"do_sample": True, "top_k": 40, "temperature": 0.8, "seed": args.seed}):
            text = pipe(prompt, max_new_tokens=args.max_new_tokens, **options)["generated_text"]
            samples.append({"prompt": prompt, **options, "text": text})
            print(f"--- {'sampled' if options else 'greedy'}\n{text}")

    saved = pipe.save(out)
    reloaded = hub.load("text-generate", model=str(saved), device=device)
    same = all(reloaded(s["prompt"], max_new_tokens=args.max_new_tokens, **{k: v for k, v in s.items()
                                                                              if k not in ("prompt", "text")}
                        )["generated_text"] == s["text"] for s in samples)
    print(f"\nsaved to {saved}; hub.load reproduces the samples: {same}")
    summary = {"parameters": params, "device": device, "vocab_size": len(tokenizer),
               "train_fortunes": len(train_texts), "val_fortunes": len(val_texts),
               "train_blocks": pipe.metadata["pretrain"]["train_blocks"],
               "val_blocks": pipe.metadata["pretrain"]["eval_blocks"], "steps": result.steps,
               "best_val_loss": result.best_metric, "history": result.history,
               "train_seconds": round(result.train_seconds, 1),
               "tokens_per_second": round(tokens / result.train_seconds),
               "wall_seconds": round(time.perf_counter() - started, 1), "samples": samples, "reload_exact": same,
               "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
    (args.run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"wall time {summary['wall_seconds']:.0f} s; summary in {args.run_dir / 'summary.json'}")


if __name__ == "__main__":
    main()
