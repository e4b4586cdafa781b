"""Fine-tuning throughput: Hub's Trainer vs transformers' ``Trainer``, same model, data, batch.

Run by hand (not a test)::

    python benchmarks/train_throughput.py                    # BERT-base size, CPU fp32
    python benchmarks/train_throughput.py --steps 8 --warmup 2 --repeats 1
    python benchmarks/train_throughput.py --dtype bfloat16   # bf16 autocast on both sides
    python benchmarks/train_throughput.py --device cuda      # on a GPU machine

Both sides fine-tune the same BERT-base-sized ``BertForSequenceClassification`` (random,
seeded weights saved with ``save_pretrained``; Hub loads that folder through its
converter) on the same real Amazon fine-food reviews, tokenised by the same tokenizer
and truncated to ``--seq`` tokens. Only reviews at least that long are used, so every
batch on both sides is exactly ``batch x seq`` tokens and both do the same arithmetic.
Same optimiser settings (AdamW lr 5e-5, weight decay 0.01, warm-up 10 %, linear decay,
clipping at 1.0), no evaluation, no checkpoints, no logging on either side. A callback
on each side stamps the end of every optimizer step; samples/s is measured over the steps
after ``--warmup``. The sides alternate ``--repeats`` times and the medians are compared.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    base_parser,
    load_average,
    machine,
    machine_line,
    machine_tag,
    sync,
    write_results,
)
from text_classify import load_texts, make_checkpoint

LEARNING_RATE, WEIGHT_DECAY, WARMUP_RATIO = 5e-5, 0.01, 0.1


def long_reviews(tokenizer, seq: int, count: int, seed: int) -> list[str]:
    texts, _ = load_texts(4000, seed)
    long = [t for t in texts if len(tokenizer(t, truncation=False)["input_ids"]) >= seq]
    if len(long) < count:
        long = (long * (count // max(1, len(long)) + 1))[:count]
    return long[:count]


def run_transformers(folder: Path, texts: list[str], labels: list[int], args, device: torch.device) -> list[float]:
    from transformers import (
        AutoTokenizer,
        BertForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    encoded = tokenizer(texts, truncation=True, max_length=args.seq)
    rows = [{"input_ids": ids, "attention_mask": mask, "token_type_ids": types, "labels": label}
            for ids, mask, types, label in zip(encoded["input_ids"], encoded["attention_mask"],
                                               encoded["token_type_ids"], labels)]
    stamps: list[float] = []

    class Stamp(TrainerCallback):
        def on_step_end(self, *_args, **_kwargs):
            sync(device)
            stamps.append(time.perf_counter())

    model = BertForSequenceClassification.from_pretrained(str(folder))
    with tempfile.TemporaryDirectory() as out:
        training_args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=args.batch_size, max_steps=args.steps,
            learning_rate=LEARNING_RATE, weight_decay=WEIGHT_DECAY, warmup_steps=warmup_steps(args.steps),
            lr_scheduler_type="linear", max_grad_norm=1.0, logging_strategy="no", save_strategy="no",
            eval_strategy="no", report_to=[], disable_tqdm=True, seed=args.seed, dataloader_num_workers=0,
            use_cpu=device.type == "cpu", bf16=args.dtype == "bfloat16")
        trainer = Trainer(model=model, args=training_args, train_dataset=rows,
                          data_collator=DataCollatorWithPadding(tokenizer), callbacks=[Stamp()])
        trainer.train()
    return stamps


def run_hub(folder: Path, texts: list[str], labels: list[int], args, device: torch.device) -> list[float]:
    import hub
    from hub.train import Callback, Trainer, TrainingArguments

    pipe = hub.load("text-classify", model=str(folder), device=str(device))
    features = pipe.encode(texts, long_inputs="truncate", max_tokens=args.seq, warn=False)
    for feature, label in zip(features, labels):
        feature["label"] = label
    stamps: list[float] = []

    class Stamp(Callback):
        def on_step_end(self, trainer, state):
            sync(device)
            stamps.append(time.perf_counter())

    training_args = TrainingArguments(batch_size=args.batch_size, max_steps=args.steps, learning_rate=LEARNING_RATE,
                                      weight_decay=WEIGHT_DECAY, schedule="linear",
                                      warmup_ratio=(warmup_steps(args.steps) + 0.5) / args.steps,
                                      max_grad_norm=1.0, seed=args.seed, device=str(device), progress=False,
                                      bf16=args.dtype == "bfloat16", log_every=10**6, tensorboard=False)
    Trainer(pipe.model, training_args, train_data=features, collate=pipe.collate, callbacks=[Stamp()]).train()
    return stamps


def warmup_steps(steps: int) -> int:
    return int(WARMUP_RATIO * steps)


def samples_per_second(stamps: list[float], warmup: int, batch: int) -> float:
    timed = stamps[warmup - 1:] if warmup else stamps
    return (len(timed) - 1) * batch / (timed[-1] - timed[0])


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__)
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps per run")
    parser.add_argument("--warmup", type=int, default=2, help="steps not timed")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq", type=int, default=128, help="tokens per example (every batch is full)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    info = machine(device)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "bert-base-random"
        make_checkpoint(folder, args.seed)
        from transformers import AutoTokenizer

        texts = long_reviews(AutoTokenizer.from_pretrained(str(folder)), args.seq, args.steps * args.batch_size,
                             args.seed)
        labels = [i % 2 for i in range(len(texts))]
        runs: dict[str, list[float]] = {"transformers": [], "hub": []}
        for repeat in range(args.repeats):
            for side, fn in (("transformers", run_transformers), ("hub", run_hub)):
                rate = samples_per_second(fn(folder, texts, labels, args, device), args.warmup, args.batch_size)
                runs[side].append(rate)
                print(f"repeat {repeat + 1}: {side:<12} {rate:7.2f} samples/s", flush=True)
    info["load_average_end"] = load_average()
    ref, ours = statistics.median(runs["transformers"]), statistics.median(runs["hub"])
    report = {"benchmark": "train_throughput", "machine": info, "machine_tag": args.tag or machine_tag(info),
              "dtype": args.dtype, "model": "BERT-base size (12 x 768, random seeded), 2 labels",
              "data": f"Amazon fine-food reviews with >= {args.seq} tokens, truncated to {args.seq}",
              "batch_size": args.batch_size, "seq": args.seq, "steps": args.steps, "warmup_steps": args.warmup,
              "samples_per_s": {"transformers": runs["transformers"], "hub": runs["hub"]},
              "median_samples_per_s": {"transformers": ref, "hub": ours}, "speedup": ours / ref}
    table = (f"\n### {info['date']} - {args.dtype}, {args.device}\n\n{machine_line(info)}\n\n"
             f"| side | samples/s (median of {args.repeats}) | runs |\n|---|---|---|\n"
             f"| transformers Trainer | {ref:.2f} | {', '.join(f'{r:.2f}' for r in runs['transformers'])} |\n"
             f"| Hub Trainer | {ours:.2f} | {', '.join(f'{r:.2f}' for r in runs['hub'])} |\n\n"
             f"Hub / transformers: **{ours / ref:.2f}x** (batch {args.batch_size} x {args.seq} tokens, "
             f"{args.steps} steps, first {args.warmup} untimed).\n")
    print(table)
    if not args.no_write:
        write_results("train_throughput", report, table, args.dtype)
    return 0


if __name__ == "__main__":
    sys.exit(main())
