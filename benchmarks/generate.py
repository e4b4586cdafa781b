"""Greedy generation speed: Hub's ``generate_ids`` vs transformers' ``model.generate``.

Run by hand (not a test)::

    python benchmarks/generate.py                           # CPU fp32, batch 1 and 8
    python benchmarks/generate.py --new-tokens 64 --prompt-tokens 64 --repeats 5
    python benchmarks/generate.py --dtype bfloat16
    python benchmarks/generate.py --device cuda

Both sides get the same GPT-2-small-sized random ``GPT2LMHeadModel`` (seeded, saved
with ``save_pretrained``; Hub loads the folder with ``hub.modeling.load_model``) and
the same prompts: ``--batch-sizes`` rows of ``--prompt-tokens`` random token ids (equal
lengths, so no padding). Decoding is greedy for exactly ``--new-tokens`` tokens on both
sides (end-of-sequence stopping disabled, so both do the same amount of work):
transformers ``model.generate(do_sample=False, max_new_tokens=N)`` with its KV cache,
Hub ``hub_text.models.generation.generate_ids`` on its KV cache. Each configuration is
warmed up, then timed ``--repeats`` times interleaved; the median is reported as new
tokens/s (batch x new tokens / seconds, prompt processing included). The generated
ids of both sides are compared token by token (agreement is reported; exact match is
expected in float32, bf16 may diverge after a near-tie).

Results go to ``benchmarks/results/generate-<machine-tag>[-<dtype>].json`` and a
markdown table is appended to ``benchmarks/results/generate.md``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from backbone import load_pair, save_gpt2
from common import (
    DTYPES,
    base_parser,
    finish_token_benchmark,
    interleaved_times,
    load_average,
    machine,
    machine_line,
    machine_tag,
)


def run(args: argparse.Namespace) -> dict:
    from transformers.utils import logging as hf_logging

    from hub_text.models.generation import GenerationConfig, generate_ids

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    info = machine(device)
    with tempfile.TemporaryDirectory(prefix="hub-bench-gen-") as tmp:
        save_gpt2(Path(tmp), args.seed)
        theirs, ours = load_pair(Path(tmp), "gpt2", device, dtype)
    theirs.generation_config.eos_token_id = None  # generate exactly N tokens on both sides
    theirs.generation_config.pad_token_id = 0
    n = args.new_tokens
    config = GenerationConfig(max_new_tokens=n, do_sample=False)

    def call_theirs(ids: torch.Tensor) -> torch.Tensor:
        out = theirs.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                              max_new_tokens=n, min_new_tokens=n)
        return out[:, ids.shape[1]:]

    def call_ours(ids: torch.Tensor) -> torch.Tensor:
        tokens = list(generate_ids(ours, ids, torch.ones_like(ids), config, eos_token_id=None, pad_token_id=0))
        return torch.stack(tokens, 1)

    results = []
    gen = torch.Generator().manual_seed(args.seed + 1)
    for batch in args.batch_sizes:
        ids = torch.randint(0, 50257, (batch, args.prompt_tokens), generator=gen).to(device)
        with torch.inference_mode():
            ref, got = call_theirs(ids), call_ours(ids)  # also the first warm-up
            times = interleaved_times({"transformers": lambda ids=ids: call_theirs(ids),
                                       "hub": lambda ids=ids: call_ours(ids)},
                                      args.repeats, device, warmup=args.warmup - 1)
        assert ref.shape == got.shape == (batch, n), (ref.shape, got.shape)
        same = (ref == got)
        first_diff = [int((~row).nonzero()[0]) if (~row).any() else None for row in same.cpu()]
        med = {side: statistics.median(v) for side, v in times.items()}
        row = {"batch": batch, "prompt_tokens": args.prompt_tokens, "new_tokens": n,
               "transformers_tokens_per_s": batch * n / med["transformers"],
               "hub_tokens_per_s": batch * n / med["hub"],
               "transformers_median_s": med["transformers"], "hub_median_s": med["hub"],
               "hub_speedup": med["transformers"] / med["hub"],
               "token_agreement": same.float().mean().item(),
               "identical_sequences": int(same.all(1).sum()), "first_divergence": first_diff,
               "times_s": times}
        results.append(row)
        print(f"batch {batch}: transformers {row['transformers_tokens_per_s']:.1f} tok/s, hub "
              f"{row['hub_tokens_per_s']:.1f} tok/s ({row['hub_speedup']:.2f}x), token agreement "
              f"{row['token_agreement']:.1%}", flush=True)
    info["load_average_end"] = load_average()
    return {"benchmark": "generate", "machine": info, "machine_tag": args.tag or machine_tag(info),
            "dtype": args.dtype, "device": str(device), "warmup": args.warmup, "repeats": args.repeats,
            "seed": args.seed, "model": "GPT2LMHeadModel small (768/12/12, vocab 50257), random seeded",
            "results": results}


def markdown(report: dict) -> str:
    lines = [f"## {report['machine_tag']} — {report['dtype']} on {report['device']} ({report['machine']['date']})",
             "", machine_line(report["machine"]) + "  ",
             f"Model: {report['model']}. Greedy, fixed number of new tokens (no EOS stop), equal-length random "
             f"prompts; {report['warmup']} warm-up call(s), median of {report['repeats']} interleaved repeats; "
             "tokens/s = batch × new tokens / s (prompt processing included).", "",
             "| batch | prompt | new | transformers tok/s | Hub tok/s | Hub speed-up | token agreement | "
             "identical sequences |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["results"]:
        lines.append(f"| {r['batch']} | {r['prompt_tokens']} | {r['new_tokens']} | "
                     f"{r['transformers_tokens_per_s']:.1f} | {r['hub_tokens_per_s']:.1f} | {r['hub_speedup']:.2f}× | "
                     f"{r['token_agreement']:.1%} | {r['identical_sequences']}/{r['batch']} |")
    lines.append("")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = base_parser(__doc__)
    parser.add_argument("--batch-sizes", type=lambda s: [int(x) for x in s.split(",") if x.strip()],
                        default=[1, 8], help="comma separated (default 1,8)")
    parser.add_argument("--prompt-tokens", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=1, help="warm-up calls per side (>= 1)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    args.warmup = max(args.warmup, 1)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    return finish_token_benchmark("generate", args, report, markdown(report),
                                  what="greedy tokens agree with transformers")


if __name__ == "__main__":
    raise SystemExit(main())
