"""Encoder-decoder generation speed: Hub's ``generate_seq2seq`` vs transformers' ``model.generate``.

Run by hand (not a test)::

    python benchmarks/seq2seq.py                            # CPU fp32: greedy, 4-beam search, sampling
    python benchmarks/seq2seq.py --source-tokens 128 --new-tokens 64 --repeats 5
    python benchmarks/seq2seq.py --device cuda

Both sides get the same BART-base-sized random ``BartForConditionalGeneration`` (d_model 768,
6 + 6 layers, 12 heads, FFN 3072, vocabulary 50265; seeded, saved with ``save_pretrained``;
Hub converts the folder with ``hub.modeling.load_model``) and the same sources: ``--batch``
rows of ``--source-tokens`` random ids (equal lengths, no padding). Each side decodes exactly
``--new-tokens`` tokens (end-of-sequence and forced tokens disabled, so both do the same
work): greedy (``num_beams=1``) and beam search (``--beams``, length penalty 1), both with
their KV caches (Hub computes the memory's keys/values once per source and reorders only the
self-attention cache between beam steps), and sampling (``do_sample``, top_p 0.9, both sides
after the same ``torch.manual_seed``, so their draws are equal). Each configuration is warmed up, then timed
``--repeats`` times interleaved; the median is reported as new tokens/s (sources x new
tokens / seconds, encoding included). The generated ids are compared token by token.

Results go to ``benchmarks/results/seq2seq-<machine-tag>[-<dtype>].json`` and a markdown
table is appended to ``benchmarks/results/seq2seq.md``; the machine and its load average
(this machine is shared) are part of both.
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
    finish_token_benchmark,
    interleaved_times,
    load_average,
    machine,
    machine_line,
    machine_tag,
)

MODEL = "BartForConditionalGeneration base-sized (768/6+6/12 heads/FFN 3072, vocab 50265), random seeded"


def save_bart(folder: Path, seed: int) -> None:
    from transformers import BartConfig, BartForConditionalGeneration

    torch.manual_seed(seed)
    config = BartConfig(vocab_size=50265, d_model=768, encoder_layers=6, decoder_layers=6, encoder_attention_heads=12,
                        decoder_attention_heads=12, encoder_ffn_dim=3072, decoder_ffn_dim=3072,
                        max_position_embeddings=1024, forced_eos_token_id=None, eos_token_id=None, no_repeat_ngram_size=0)
    model = BartForConditionalGeneration(config).eval()
    with torch.no_grad():  # well-separated argmaxes: beams and greedy are compared token for token
        for p in model.parameters():
            if p.ndim == 1:
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(str(folder))


def run(args: argparse.Namespace) -> dict:
    from transformers import BartForConditionalGeneration
    from transformers.utils import logging as hf_logging

    from hub.modeling import load_model
    from hub_text.models.seq2seq_generation import Seq2SeqGenerationConfig, generate_seq2seq

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    info = machine(device)
    with tempfile.TemporaryDirectory(prefix="hub-bench-s2s-") as tmp:
        save_bart(Path(tmp), args.seed)
        theirs = BartForConditionalGeneration.from_pretrained(tmp, dtype=dtype).to(device).eval()
        ours = load_model(tmp, device=device, dtype=dtype).module
    theirs.generation_config.eos_token_id = None  # exactly N tokens on both sides
    theirs.generation_config.forced_eos_token_id = None
    theirs.generation_config.forced_bos_token_id = None
    theirs.generation_config.pad_token_id = 1
    n = args.new_tokens

    #: sampling's settings (both sides draw after the same torch.manual_seed, so tokens are equal)
    sample = {"do_sample": True, "top_k": 0, "top_p": 0.9}

    def call_theirs(ids: torch.Tensor, beams: int, sampled: bool = False) -> list[list[int]]:
        settings = sample if sampled else {"do_sample": False}
        torch.manual_seed(args.seed)
        out = theirs.generate(input_ids=ids, attention_mask=torch.ones_like(ids), num_beams=beams,
                              max_new_tokens=n, length_penalty=1.0, early_stopping=False, **settings)
        return out[:, 1:].tolist()

    def call_ours(ids: torch.Tensor, beams: int, sampled: bool = False) -> list[list[int]]:
        config = Seq2SeqGenerationConfig(max_new_tokens=n, num_beams=beams, **(sample if sampled else {}))
        torch.manual_seed(args.seed)
        return generate_seq2seq(ours, ids, torch.ones_like(ids), config, eos_token_id=None, pad_token_id=1)

    results = []
    gen = torch.Generator().manual_seed(args.seed + 1)
    for beams, sampled in ((1, False), (args.beams, False), (1, True)):
        ids = torch.randint(3, 50265, (args.batch, args.source_tokens), generator=gen).to(device)
        with torch.inference_mode():
            ref, got = call_theirs(ids, beams, sampled), call_ours(ids, beams, sampled)  # also the first warm-up
            times = interleaved_times({"transformers": lambda ids=ids, b=beams, s=sampled: call_theirs(ids, b, s),
                                       "hub": lambda ids=ids, b=beams, s=sampled: call_ours(ids, b, s)},
                                      args.repeats, device, warmup=args.warmup - 1)
        same = sum(a == b for r, g in zip(ref, got) for a, b in zip(r, g))
        total = sum(len(r) for r in ref)
        med = {side: statistics.median(v) for side, v in times.items()}
        decoding = ("sampling (top_p 0.9, same seed)" if sampled else "greedy" if beams == 1
                    else f"beam search ({beams} beams)")
        row = {"decoding": decoding, "beams": beams, "sampled": sampled,
               "batch": args.batch, "source_tokens": args.source_tokens, "new_tokens": n,
               "transformers_tokens_per_s": args.batch * n / med["transformers"],
               "hub_tokens_per_s": args.batch * n / med["hub"],
               "transformers_median_s": med["transformers"], "hub_median_s": med["hub"],
               "hub_speedup": med["transformers"] / med["hub"],
               "token_agreement": same / total if total else 1.0,
               "identical_sequences": sum(r == g for r, g in zip(ref, got)), "times_s": times}
        results.append(row)
        print(f"{row['decoding']}: transformers {row['transformers_tokens_per_s']:.1f} tok/s, hub "
              f"{row['hub_tokens_per_s']:.1f} tok/s ({row['hub_speedup']:.2f}x), token agreement "
              f"{row['token_agreement']:.1%}", flush=True)
    info["load_average_end"] = load_average()
    return {"benchmark": "seq2seq", "machine": info, "machine_tag": args.tag or machine_tag(info),
            "dtype": args.dtype, "device": str(device), "warmup": args.warmup, "repeats": args.repeats,
            "seed": args.seed, "model": MODEL, "results": results}


def markdown(report: dict) -> str:
    lines = [f"## {report['machine_tag']} — {report['dtype']} on {report['device']} ({report['machine']['date']})",
             "", machine_line(report["machine"]) + "  ",
             f"Model: {report['model']}. Fixed number of new tokens (no EOS stop), equal-length random sources; "
             f"{report['warmup']} warm-up call(s), median of {report['repeats']} interleaved repeats; tokens/s = "
             "sources × new tokens / s (encoding included).", "",
             "| decoding | sources | source tokens | new | transformers tok/s | Hub tok/s | Hub speed-up | "
             "token agreement | identical sequences |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["results"]:
        lines.append(f"| {r['decoding']} | {r['batch']} | {r['source_tokens']} | {r['new_tokens']} | "
                     f"{r['transformers_tokens_per_s']:.1f} | {r['hub_tokens_per_s']:.1f} | {r['hub_speedup']:.2f}× | "
                     f"{r['token_agreement']:.1%} | {r['identical_sequences']}/{r['batch']} |")
    lines.append("")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = base_parser(__doc__)
    parser.add_argument("--batch", type=int, default=4, help="sources per call (default 4)")
    parser.add_argument("--beams", type=int, default=4, help="beams of the beam-search row (default 4)")
    parser.add_argument("--source-tokens", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=1, help="warm-up calls per side (>= 1)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    args.warmup = max(args.warmup, 1)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    return finish_token_benchmark("seq2seq", args, report, markdown(report))


if __name__ == "__main__":
    raise SystemExit(main())
