"""A small training run the distributed and crash/resume tests launch as a subprocess.

    python tests/train/toy_run.py OUT [--batch-size B] [--max-steps N] [--save-steps K]
        [--kill-at-step S] [--resume] [--distributed ddp|fsdp] [--dropout P]

Writes OUT/final-rank{RANK}.safetensors: the full trained weights as this process holds them.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from hub.backbone import Transformer, TransformerConfig
from hub.train import Callback, Trainer, TrainingArguments
from hub.train.checkpoint import model_state, save_weights


class ToyEncoderClassifier(nn.Module):
    """Token embeddings -> shared-backbone encoder -> mean pool -> 3 classes."""

    def __init__(self, dropout: float) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 32)
        self.encoder = Transformer(TransformerConfig(hidden_size=32, num_layers=2, num_heads=4,
                                                     intermediate_size=64, dropout=dropout, attention_dropout=dropout))
        self.head = nn.Linear(32, 3)

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        hidden = self.encoder(self.embed(input_ids))
        logits = self.head(hidden.mean(1))
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = F.cross_entropy(logits, labels)
        return out


def toy_data(n: int, seed: int) -> list[dict[str, torch.Tensor]]:
    """Label = which third of the vocabulary most tokens come from: learnable, not trivial."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        label = int(torch.randint(0, 3, (1,), generator=g))
        ids = torch.randint(0, 50, (12,), generator=g)
        ids[:6] = torch.randint(label * 16, label * 16 + 16, (6,), generator=g)
        rows.append({"input_ids": ids, "labels": torch.tensor(label)})
    return rows


def collate(rows):
    return {k: torch.stack([r[k] for r in rows]) for k in rows[0]}


class KillAt(Callback):
    """SIGKILL this process right after optimizer step ``step``: no cleanup, no flush."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, trainer, state) -> None:
        if state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--accumulation", type=int, default=1)
    parser.add_argument("--save-steps", type=int, default=None)
    parser.add_argument("--kill-at-step", type=int, default=None)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--distributed", default="auto")
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--examples", type=int, default=96)
    parser.add_argument("--float64", action="store_true", help="float64 weights: rounding noise far below 1e-5")
    opts = parser.parse_args()

    torch.manual_seed(0)
    model = ToyEncoderClassifier(opts.dropout)
    if opts.float64:
        model = model.double()
    args = TrainingArguments(epochs=opts.epochs, max_steps=opts.max_steps, batch_size=opts.batch_size,
                             gradient_accumulation_steps=opts.accumulation, learning_rate=3e-3, warmup_ratio=0.1,
                             output_dir=opts.out, save_steps=opts.save_steps, save_total_limit=2,
                             resume_from_checkpoint=True if opts.resume else None, device="cpu",
                             distributed=opts.distributed, progress=False, log_every=1, seed=7,
                             tensorboard=False)
    callbacks = [KillAt(opts.kill_at_step)] if opts.kill_at_step else []
    trainer = Trainer(model, args, train_data=toy_data(opts.examples, 1), eval_data=toy_data(30, 2),
                      collate=collate, callbacks=callbacks)
    created = __import__("hub.train.distributed", fromlist=["x"]).setup(trainer.env, trainer.device)
    try:
        trainer.train()
        state = model_state(trainer.wrapped, trainer.strategy) if trainer.strategy != "fsdp" else _fsdp_full(trainer)
        save_weights(state, Path(opts.out) / f"final-rank{trainer.env.rank}.safetensors")
    finally:
        if created:
            torch.distributed.destroy_process_group()


def _fsdp_full(trainer):
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
    )

    return get_model_state_dict(trainer.wrapped, options=StateDictOptions(full_state_dict=True, cpu_offload=False))


if __name__ == "__main__":
    main()
