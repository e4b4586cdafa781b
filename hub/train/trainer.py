"""A small, strict training loop: AdamW, warm-up + decay, per-epoch evaluation,
best-checkpoint keeping, early stopping, seeded determinism, JSONL metrics, tqdm,
CUDA with bf16 autocast when a GPU is present.

The model contract is the one transformers uses: ``model(**batch)`` returns a dict
with ``"loss"`` (when the batch carries labels) and ``"logits"``.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from hub.train.args import TrainingArguments

Batch = dict[str, torch.Tensor]


@dataclass
class TrainResult:
    best_metric: float | None
    best_epoch: int | None
    epochs_run: int
    steps: int
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False
    train_seconds: float = 0.0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    with contextlib.suppress(ImportError):
        import numpy as np

        np.random.seed(seed % 2**32)


def decay_parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: decay matrices only; never norms, biases or embeddings."""
    no_decay_ids: set[int] = set()
    for module in model.modules():
        if isinstance(module, (nn.LayerNorm, nn.Embedding)) or "Norm" in type(module).__name__:
            no_decay_ids.update(id(p) for p in module.parameters(recurse=False))
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if id(param) in no_decay_ids or param.ndim < 2 else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_lambda(schedule: str, warmup: int, total: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return max(0.0, 1.0 - progress)
    return factor


class Trainer:
    """Train ``model`` on ``train_data`` (a sequence of feature dicts) with ``collate``."""

    def __init__(self, model: nn.Module, args: TrainingArguments, *, train_data: Sequence[Any],
                 collate: Callable[[list[Any]], Batch], eval_data: Sequence[Any] | None = None,
                 compute_metrics: Callable[[torch.Tensor, torch.Tensor], dict[str, float]] | None = None,
                 save_best: Callable[[nn.Module, Path], None] | None = None) -> None:
        self.model, self.args = model, args
        self.train_data, self.eval_data = train_data, eval_data
        self.collate, self.compute_metrics, self.save_best = collate, compute_metrics, save_best
        self.device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        use_bf16 = args.bf16 if args.bf16 is not None else self.device.type == "cuda"
        self.autocast_dtype = torch.bfloat16 if use_bf16 else None
        self.log_path = Path(args.output_dir) / "metrics.jsonl" if args.output_dir else None

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def log(self, record: dict[str, Any]) -> None:
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")

    def train(self) -> TrainResult:
        from tqdm.auto import tqdm

        args = self.args
        seed_everything(args.seed)
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        model = self.model.to(self.device)
        generator = torch.Generator().manual_seed(args.seed)
        loader = DataLoader(self.train_data, batch_size=args.batch_size, shuffle=True,
                            generator=generator, collate_fn=self.collate, drop_last=False)
        steps_per_epoch = math.ceil(len(loader) / args.gradient_accumulation_steps)
        total_steps = args.max_steps or math.ceil(steps_per_epoch * args.epochs)
        epochs = math.ceil(total_steps / max(1, steps_per_epoch))
        optimizer = torch.optim.AdamW(decay_parameter_groups(model, args.weight_decay),
                                      lr=args.learning_rate, fused=self.device.type == "cuda")
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lr_lambda(args.schedule, int(args.warmup_ratio * total_steps), total_steps))

        result = TrainResult(None, None, 0, 0)
        best_state: dict[str, torch.Tensor] | None = None
        bad_epochs, step, start = 0, 0, time.perf_counter()
        progress = tqdm(total=total_steps, disable=not args.progress, desc="training", unit="step")
        for epoch in range(1, epochs + 1):
            model.train()
            running, seen = 0.0, 0
            for micro, batch in enumerate(loader, start=1):
                batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
                with self.autocast():
                    loss = model(**batch)["loss"] / args.gradient_accumulation_steps
                loss.backward()
                running += loss.item() * args.gradient_accumulation_steps
                seen += 1
                if micro % args.gradient_accumulation_steps and micro != len(loader):
                    continue
                if args.max_grad_norm:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                progress.update(1)
                if step % args.log_every == 0:
                    record = {"step": step, "epoch": epoch, "loss": running / seen,
                              "lr": scheduler.get_last_lr()[0]}
                    progress.set_postfix(loss=f"{record['loss']:.4f}")
                    self.log(record)
                if step >= total_steps:
                    break
            record: dict[str, Any] = {"epoch": epoch, "step": step, "train_loss": running / max(1, seen)}
            if self.eval_data is not None:
                record.update({f"eval_{k}": v for k, v in self.evaluate().items()})
            self.log(record)
            result.history.append(record)
            result.epochs_run = epoch
            monitored = record.get(f"eval_{args.metric_for_best}", record["train_loss"])
            if _improved(monitored, result.best_metric, bool(args.greater_is_better)):
                result.best_metric, result.best_epoch, bad_epochs = monitored, epoch, 0
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
                if self.save_best is not None and args.output_dir:
                    self.save_best(model, Path(args.output_dir) / "best")
            else:
                bad_epochs += 1
                if args.early_stopping_patience is not None and bad_epochs >= args.early_stopping_patience:
                    result.stopped_early = True
                    break
            if step >= total_steps:
                break
        progress.close()
        if best_state is not None:
            model.load_state_dict(best_state)
        model.eval()
        result.steps, result.train_seconds = step, time.perf_counter() - start
        return result

    @torch.no_grad()
    def evaluate(self, data: Sequence[Any] | None = None) -> dict[str, float]:
        data = self.eval_data if data is None else data
        model = self.model
        was_training = model.training
        model.eval()
        loader = DataLoader(data, batch_size=self.args.eval_batch_size, shuffle=False,
                            collate_fn=self.collate)
        total_loss, count, all_logits, all_labels = 0.0, 0, [], []
        for batch in loader:
            batch = {k: v.to(self.device) for k, v in batch.items()}
            with self.autocast():
                out = model(**batch)
            n = batch["labels"].shape[0]
            total_loss += out["loss"].item() * n
            count += n
            all_logits.append(out["logits"].float().cpu())
            all_labels.append(batch["labels"].cpu())
        model.train(was_training)
        metrics = {"loss": total_loss / max(1, count)}
        if self.compute_metrics is not None:
            metrics.update(self.compute_metrics(torch.cat(all_logits), torch.cat(all_labels)))
        return metrics


def _improved(value: float, best: float | None, greater: bool) -> bool:
    if best is None:
        return True
    return value > best if greater else value < best


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    return {"accuracy": (logits.argmax(-1) == labels).float().mean().item()}
