"""GPT pretraining throughput on a GPU: Hub's ``causal-lm`` (GPT-2 124M), tokens/s and MFU.

Run by hand on a GPU machine (not a test)::

    python benchmarks/gpt_pretrain_gpu.py                        # cuda, bf16 autocast, 124M, B=16 x T=1024
    python benchmarks/gpt_pretrain_gpu.py --compile --batch 32   # torch.compile
    python benchmarks/gpt_pretrain_gpu.py --data tokens.bin      # nanoGPT-style uint16 token file
    python benchmarks/gpt_pretrain_gpu.py --device cpu --tiny --steps 3 --warmup 1   # CPU smoke check

Builds the GPT-2 small config (vocabulary 50257 — ``--vocab 50304`` pads it to a
multiple of 128 as nanoGPT does — 1024 positions, 12 layers, hidden 768, 12 heads,
no dropout) with ``hub.modeling.build_module("causal-lm", config)``, moves it to the
device in float32 and trains with bf16 autocast, fused AdamW (lr 6e-4, betas 0.9/0.95,
weight decay 0.1), gradient clipping 1.0 and optional ``torch.compile``. Data is random
token ids, or ``--data``: a ``.bin`` file of uint16 token ids (nanoGPT format) or any
other file read as UTF-8 bytes (ids < 256); random windows of ``--seq`` tokens.

Each optimizer step processes ``--batch`` x ``--seq`` x ``--grad-accum`` tokens. After
``--warmup`` untimed steps (compilation happens there), ``--steps`` steps are timed one
by one (synchronised); tokens/s is computed from the median step time (the mean is
reported too). Model FLOPs per token = 6·N + 12·L·C·T (N: parameters without the
position embeddings, L layers, C hidden size, T sequence length; nanoGPT/PaLM
convention, causal masking not discounted); MFU = FLOPs per token × tokens/s divided by
the device's peak dense bf16 FLOP/s: ``--peak-tflops``, else looked up from the GPU name
(H100 SXM 989, H100 PCIe 756, H200 989, A100 312, ...). On a CPU there is no peak
unless ``--peak-tflops`` is given, so no MFU.

Results go to ``benchmarks/results/gpt_pretrain-<machine-tag>[-tiny][-compile].json``
and a markdown table is appended to ``benchmarks/results/gpt_pretrain.md``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_average, machine, machine_line, machine_tag, sync, write_results

from hub.train.flops import peak_tflops, transformer_flops_per_token


def gpt_config(args: argparse.Namespace) -> dict:
    if args.tiny:
        layers, hidden, heads = 2, 64, 2
    else:
        layers, hidden, heads = args.layers, args.hidden, args.heads
    return {"vocab_size": args.vocab, "max_positions": max(args.seq, 1024 if not args.tiny else args.seq),
            "position": "learned", "tie_word_embeddings": True, "bos_token_id": 50256, "eos_token_id": 50256,
            "backbone": {"hidden_size": hidden, "num_layers": layers, "num_heads": heads,
                         "intermediate_size": 4 * hidden, "activation": "gelu_tanh", "norm_eps": 1e-5,
                         "norm_position": "pre", "causal": True, "dropout": 0.0, "attention_dropout": 0.0}}


class Batches:
    """Random windows of (batch, seq + 0) token ids from random data or a file."""

    def __init__(self, args: argparse.Namespace, device: torch.device) -> None:
        self.batch, self.seq, self.device, self.vocab = args.batch, args.seq, device, args.vocab
        self.gen = torch.Generator().manual_seed(args.seed + 1)
        self.data = None
        self.source = "random token ids"
        if args.data:
            import numpy as np

            path = Path(args.data)
            if path.suffix == ".bin":
                self.data = torch.from_numpy(np.memmap(path, dtype=np.uint16, mode="r").astype(np.int64))
                self.source = f"{path.name} (uint16 token ids)"
            else:
                self.data = torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8).long()
                self.source = f"{path.name} (UTF-8 bytes as ids)"
            if int(self.data.max()) >= self.vocab:
                raise SystemExit(f"{path}: token id {int(self.data.max())} >= --vocab {self.vocab}")
            if len(self.data) <= self.seq:
                raise SystemExit(f"{path}: {len(self.data)} tokens, fewer than --seq {self.seq}")

    def __call__(self) -> torch.Tensor:
        if self.data is None:
            x = torch.randint(0, self.vocab, (self.batch, self.seq), generator=self.gen)
        else:
            starts = torch.randint(0, len(self.data) - self.seq, (self.batch,), generator=self.gen)
            x = torch.stack([self.data[s:s + self.seq] for s in starts.tolist()])
        if self.device.type == "cuda":
            return x.pin_memory().to(self.device, non_blocking=True)
        return x.to(self.device)


def run(args: argparse.Namespace) -> dict:
    from hub.modeling import build_module

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    info = machine(device)
    torch.manual_seed(args.seed)
    config = gpt_config(args)
    model = build_module("causal-lm", config).to(device).train()
    n_params = sum(p.numel() for p in model.parameters())
    n_flop_params = n_params - model.embeddings.positions.weight.numel()
    backbone = config["backbone"]
    flops_per_token = transformer_flops_per_token(n_flop_params, backbone["num_layers"], backbone["hidden_size"],
                                                  args.seq)

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
    try:
        optimizer = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)
        fused = True
    except (RuntimeError, TypeError):
        optimizer = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
        fused = False
    step_model = torch.compile(model) if args.compile else model
    autocast_dtype = {"bfloat16": torch.bfloat16, "float32": None}[args.dtype]
    batches = Batches(args, device)

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for _ in range(args.grad_accum):
            x = batches()
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                loss = step_model(x, labels=x)["loss"] / args.grad_accum
            loss.backward()
            total += loss.detach()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return total

    start = time.perf_counter()
    for _ in range(args.warmup):
        loss = step()
    sync(device)
    warmup_s = time.perf_counter() - start
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times, losses = [], []
    for _ in range(args.steps):
        sync(device)
        t0 = time.perf_counter()
        loss = step()
        sync(device)
        times.append(time.perf_counter() - t0)
        losses.append(float(loss))
    tokens_per_step = args.batch * args.seq * args.grad_accum
    median_s = statistics.median(times)
    tokens_per_s = tokens_per_step / median_s
    gpu = info.get("gpu")
    peak = args.peak_tflops or peak_tflops(gpu)
    if peak is None and gpu:
        peak = 989.0  # unknown GPU: assume an H100 SXM and say so
        info["peak_assumed"] = True
    mfu = flops_per_token * tokens_per_s / (peak * 1e12) if peak else None
    info["load_average_end"] = load_average()
    report = {
        "benchmark": "gpt_pretrain", "machine": info, "machine_tag": args.tag or machine_tag(info),
        "device": str(device), "autocast": args.dtype, "compile": args.compile, "fused_adamw": fused,
        "tiny": args.tiny, "config": config, "params": n_params, "params_for_flops": n_flop_params,
        "batch": args.batch, "seq": args.seq, "grad_accum": args.grad_accum, "tokens_per_step": tokens_per_step,
        "data": batches.source, "warmup_steps": args.warmup, "warmup_s": warmup_s, "steps": args.steps,
        "step_times_s": times, "median_step_s": median_s, "mean_step_s": statistics.mean(times),
        "tokens_per_s": tokens_per_s, "tokens_per_s_mean": tokens_per_step / statistics.mean(times),
        "flops_per_token": flops_per_token, "achieved_tflops": flops_per_token * tokens_per_s / 1e12,
        "peak_tflops": peak, "mfu": mfu, "losses": losses,
    }
    if device.type == "cuda":
        report["max_memory_allocated_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    if not all(math.isfinite(x) for x in losses):
        report["warning"] = "non-finite loss"
    return report


def markdown(r: dict) -> str:
    c = r["config"]["backbone"]
    size = f"{'tiny ' if r['tiny'] else ''}{r['params'] / 1e6:.1f}M ({c['num_layers']}L/{c['hidden_size']}/{c['num_heads']}h, vocab {r['config']['vocab_size']})"
    mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "— (no peak)"
    peak = f"{r['peak_tflops']:.0f}{' (assumed)' if r['machine'].get('peak_assumed') else ''}" if r["peak_tflops"] else "—"
    mem = f"{r['max_memory_allocated_gib']:.1f}" if "max_memory_allocated_gib" in r else "—"
    lines = [f"## {r['machine_tag']} — {r['autocast']} autocast on {r['device']}"
             f"{', torch.compile' if r['compile'] else ''}{' (tiny smoke check)' if r['tiny'] else ''} "
             f"({r['machine']['date']})", "", machine_line(r["machine"]) + "  ",
             f"Data: {r['data']}. {r['warmup_steps']} warm-up steps ({r['warmup_s']:.1f} s), median of "
             f"{r['steps']} timed steps; fused AdamW: {r['fused_adamw']}.", "",
             "| model | batch × seq × accum | step ms (median) | tokens/s | TFLOP/s | peak TFLOP/s | MFU | "
             "max mem GiB | loss first → last |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|",
             f"| {size} | {r['batch']} × {r['seq']} × {r['grad_accum']} | {r['median_step_s'] * 1000:.1f} | "
             f"{r['tokens_per_s']:,.0f} | {r['achieved_tflops']:.2f} | {peak} | {mfu} | {mem} | "
             f"{r['losses'][0]:.3f} → {r['losses'][-1]:.3f} |", ""]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (smoke check)")
    parser.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float32"),
                        help="autocast dtype (weights and optimizer state stay float32); float32 = no autocast")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--batch", type=int, default=None, help="sequences per micro-batch (default 16; tiny 2)")
    parser.add_argument("--seq", type=int, default=None, help="tokens per sequence (default 1024; tiny 64)")
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--steps", type=int, default=20, help="timed optimizer steps")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (compilation)")
    parser.add_argument("--lr", type=float, default=6e-4)
    parser.add_argument("--vocab", type=int, default=None, help="vocabulary size (default 50257; tiny 512)")
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--tiny", action="store_true", help="2 layers, hidden 64: a smoke check that runs anywhere")
    parser.add_argument("--data", default="", help=".bin of uint16 token ids, or a text file (bytes as ids)")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="device peak dense bf16 TFLOP/s for MFU (default: from the GPU name, else 989)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default="", help="machine tag for the results file name")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    args.batch = args.batch or (2 if args.tiny else 16)
    args.seq = args.seq or (64 if args.tiny else 1024)
    args.vocab = args.vocab or (512 if args.tiny else 50257)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("no CUDA device here; run on a GPU machine, or smoke-check with --device cpu --tiny")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    table = markdown(report)
    print()
    print(table)
    if not args.no_write:
        tags = ("tiny",) * args.tiny + ("compile",) * args.compile
        write_results("gpt_pretrain", report, table, args.dtype, default_dtype="bfloat16", tags=tags)
    return 1 if "warning" in report else 0


if __name__ == "__main__":
    raise SystemExit(main())
