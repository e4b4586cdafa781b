"""Backbone forward pass: Hub vs transformers on the same random weights and inputs.

Run by hand (not a test)::

    python benchmarks/backbone.py                          # CPU fp32, batch 8 x seq 128
    python benchmarks/backbone.py --dtype bfloat16         # both models cast to bf16
    python benchmarks/backbone.py --models gpt2 --repeats 5
    python benchmarks/backbone.py --device cuda            # on a GPU machine

Builds a BERT-base-sized ``BertModel`` (768 hidden, 12 layers, 12 heads) and a
GPT-2-small-sized ``GPT2LMHeadModel`` (768/12/12, vocabulary 50257) with seeded random
weights, saves each with ``save_pretrained`` into a temporary folder and loads that
folder into Hub with ``hub.modeling.load_model`` (Hub converts the checkpoint). Both
sides get the same (batch x seq) random token batch, run in eval mode under
``torch.inference_mode``; each is warmed up, then both are timed ``--repeats`` times,
interleaved, and the median ms/forward is reported together with the speed ratio
(transformers time / Hub time: > 1 means Hub is faster) and the largest absolute
difference between the outputs (BERT: last hidden state; GPT-2: logits).

Results go to ``benchmarks/results/backbone-<machine-tag>[-<dtype>].json`` and a
markdown table is appended to ``benchmarks/results/backbone.md``. The small helpers
here (machine description, tags, timing) are shared by ``generate.py`` and
``gpt_pretrain_gpu.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    DTYPES,
    base_parser,
    interleaved_times,
    load_average,
    machine,
    machine_line,
    machine_tag,
    write_results,
)


def save_gpt2(folder: Path, seed: int, *, layers: int = 12, hidden: int = 768, heads: int = 12) -> None:
    """A GPT-2-small-sized random GPT2LMHeadModel (vocabulary 50257, 1024 positions)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=50257, n_positions=1024, n_embd=hidden, n_layer=layers, n_head=heads)
    GPT2LMHeadModel(config).eval().save_pretrained(str(folder))


def save_bert(folder: Path, seed: int, *, layers: int = 12, hidden: int = 768, heads: int = 12) -> None:
    """A BERT-base-sized random BertModel (vocabulary 30522, 512 positions)."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=4 * hidden, max_position_embeddings=512, type_vocab_size=2,
                        hidden_act="gelu")
    BertModel(config).eval().save_pretrained(str(folder))


def load_pair(folder: Path, kind: str, device: torch.device, dtype: torch.dtype):
    """(transformers model, Hub module) from one saved folder, both eval, on device/dtype."""
    from transformers import AutoModel, AutoModelForCausalLM

    from hub.modeling import load_model

    auto = AutoModelForCausalLM if kind == "gpt2" else AutoModel
    theirs = auto.from_pretrained(str(folder), dtype=dtype).to(device).eval()
    ours = load_model(folder, device=device, dtype=dtype).module.eval()
    return theirs, ours


# -- the benchmark -----------------------------------------------------------------------
def _caller(model, side: str, kind: str, ids: torch.Tensor, mask: torch.Tensor):
    """A no-argument forward returning BERT's last hidden state or GPT-2's logits."""
    def call() -> torch.Tensor:
        if side == "transformers":
            out = model(input_ids=ids, attention_mask=mask)
            return out.logits if kind == "gpt2" else out.last_hidden_state
        out = model(ids, mask)
        return out["logits"] if kind == "gpt2" else out
    return call


def run(args: argparse.Namespace) -> dict:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    info = machine(device)
    results = []
    for kind in args.models:
        with tempfile.TemporaryDirectory(prefix=f"hub-bench-{kind}-") as tmp:
            folder = Path(tmp)
            (save_gpt2 if kind == "gpt2" else save_bert)(folder, args.seed)
            theirs, ours = load_pair(folder, kind, device, dtype)
        gen = torch.Generator().manual_seed(args.seed + 1)
        vocab = 50257 if kind == "gpt2" else 30522
        ids = torch.randint(0, vocab, (args.batch, args.seq), generator=gen).to(device)
        mask = torch.ones_like(ids)

        call_theirs = _caller(theirs, "transformers", kind, ids, mask)
        call_ours = _caller(ours, "hub", kind, ids, mask)

        with torch.inference_mode():
            ref, got = call_theirs().float(), call_ours().float()
            diff = (ref - got).abs().max().item()
            rel = diff / ref.abs().max().item()
            del ref, got
            seconds = interleaved_times({"transformers": call_theirs, "hub": call_ours}, args.repeats, device,
                                        args.warmup)
        times = {side: [t * 1000 for t in runs] for side, runs in seconds.items()}  # ms
        med = {side: statistics.median(v) for side, v in times.items()}
        row = {"model": kind, "batch": args.batch, "seq": args.seq,
               "output": "logits" if kind == "gpt2" else "last_hidden_state",
               "transformers_ms": med["transformers"], "hub_ms": med["hub"],
               "hub_speedup": med["transformers"] / med["hub"], "max_abs_diff": diff,
               "max_abs_diff_relative": rel, "times_ms": times}
        results.append(row)
        print(f"{kind}: transformers {med['transformers']:.1f} ms, hub {med['hub']:.1f} ms, "
              f"hub speed-up {row['hub_speedup']:.2f}x, max abs diff {diff:.2e}", flush=True)
        del theirs, ours, call_theirs, call_ours
    info["load_average_end"] = load_average()
    return {"benchmark": "backbone", "machine": info, "machine_tag": args.tag or machine_tag(info),
            "dtype": args.dtype, "device": str(device), "warmup": args.warmup, "repeats": args.repeats,
            "seed": args.seed, "results": results}


def markdown(report: dict) -> str:
    lines = [f"## {report['machine_tag']} — {report['dtype']} on {report['device']} ({report['machine']['date']})",
             "", machine_line(report["machine"]) + "  ",
             f"Random seeded weights saved with save_pretrained, loaded by both; eval + inference_mode; "
             f"{report['warmup']} warm-up forwards, median of {report['repeats']} interleaved repeats.", "",
             "| model | batch × seq | output | transformers ms | Hub ms | Hub speed-up | max abs diff |",
             "|---|---|---|---:|---:|---:|---:|"]
    for r in report["results"]:
        name = {"bert": "BertModel (base 768/12/12)", "gpt2": "GPT2LMHeadModel (small 768/12/12)"}[r["model"]]
        lines.append(f"| {name} | {r['batch']} × {r['seq']} | {r['output']} | {r['transformers_ms']:.1f} | "
                     f"{r['hub_ms']:.1f} | {r['hub_speedup']:.2f}× | {r['max_abs_diff']:.2e} |")
    lines += ["", "Hub speed-up = transformers time / Hub time (> 1: Hub faster).", ""]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = base_parser(__doc__)
    parser.add_argument("--models", type=lambda s: [x for x in s.split(",") if x], default=["bert", "gpt2"],
                        help="comma separated: bert, gpt2 (default both)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=2, help="warm-up forwards per side")
    parser.add_argument("--repeats", type=int, default=5, help="timed forwards per side; median reported")
    args = parser.parse_args(argv)
    bad = set(args.models) - {"bert", "gpt2"}
    if bad:
        parser.error(f"unknown models {sorted(bad)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    table = markdown(report)
    print()
    print(table)
    if not args.no_write:
        write_results("backbone", report, table, args.dtype)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
