"""Whisper generation speed: Hub's Whisper (``generate_seq2seq`` on the shared backbone) vs
transformers' ``WhisperForConditionalGeneration.generate``.

Run by hand (not a test)::

    python benchmarks/whisper.py                            # CPU fp32: greedy and 5-beam search
    python benchmarks/whisper.py --batch 4 --new-tokens 64 --repeats 5
    python benchmarks/whisper.py --device cuda

Both sides get the same Whisper-base-sized random ``WhisperForConditionalGeneration`` (d_model
512, 6 + 6 layers, 8 heads, FFN 2048, 80 mel bins, vocabulary 51865, 1500 source / 448 target
positions; seeded, saved with ``save_pretrained``; Hub converts the folder with
``hub.modeling.load_model``) and the same input: ``--batch`` windows of 30 s of log-mel
features (80 x 3000 frames of seeded noise, what ``WhisperFeatureExtractor`` gives for 30 s).
Each side decodes exactly ``--new-tokens`` tokens after the start token (end-of-text,
suppressed tokens and forced prompt tokens disabled, so both do the same work): greedy and
beam search (``--beams``, length penalty 1), with their KV caches (Hub computes the encoder
memory's keys/values once per window). Each configuration is warmed up, then timed
``--repeats`` times interleaved; the median is reported as new tokens/s (windows x new tokens
/ seconds, the 30 s encoder pass included) and the generated ids are compared token by token.

Results go to ``benchmarks/results/whisper-<machine-tag>[-<dtype>].json`` and a markdown table
is appended to ``benchmarks/results/whisper.md``; the machine and its load average (this
machine is shared) are part of both.
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

MODEL = ("WhisperForConditionalGeneration base-sized (512/6+6/8 heads/FFN 2048, 80 mels, vocab 51865), "
         "random seeded")
START, PAD = 50258, 50257


def save_whisper(folder: Path, seed: int) -> None:
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    torch.manual_seed(seed)
    config = WhisperConfig(vocab_size=51865, d_model=512, encoder_layers=6, decoder_layers=6,
                           encoder_attention_heads=8, decoder_attention_heads=8, encoder_ffn_dim=2048,
                           decoder_ffn_dim=2048, num_mel_bins=80, max_source_positions=1500,
                           max_target_positions=448, pad_token_id=PAD, bos_token_id=PAD, eos_token_id=PAD,
                           decoder_start_token_id=START, suppress_tokens=None, begin_suppress_tokens=None)
    model = WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():  # well-separated argmaxes: beams and greedy are compared token for token
        for p in model.parameters():
            if p.ndim == 1 and p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(str(folder))


def run(args: argparse.Namespace) -> dict:
    from transformers import WhisperForConditionalGeneration
    from transformers.utils import logging as hf_logging

    from hub.modeling import load_model
    from hub_text.models.seq2seq_generation import Seq2SeqGenerationConfig, generate_seq2seq

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    info = machine(device)
    with tempfile.TemporaryDirectory(prefix="hub-bench-whisper-") as tmp:
        save_whisper(Path(tmp), args.seed)
        theirs = WhisperForConditionalGeneration.from_pretrained(tmp, dtype=dtype).to(device).eval()
        ours = load_model(tmp, device=device, dtype=dtype).module
    generation = theirs.generation_config  # exactly N tokens, no prompt beyond the start token
    generation.eos_token_id = None
    generation.suppress_tokens = generation.begin_suppress_tokens = None
    generation.forced_decoder_ids = None
    generation.pad_token_id = PAD
    n = args.new_tokens

    def call_theirs(features: torch.Tensor, beams: int) -> list[list[int]]:
        out = theirs.generate(input_features=features, do_sample=False, num_beams=beams, max_new_tokens=n,
                              length_penalty=1.0, early_stopping=False)
        return [row[1:] if row and row[0] == START else row for row in out.tolist()]

    def call_ours(features: torch.Tensor, beams: int) -> list[list[int]]:
        config = Seq2SeqGenerationConfig(max_new_tokens=n, num_beams=beams)
        return generate_seq2seq(ours, features, None, config, eos_token_id=None, pad_token_id=PAD)

    results = []
    gen = torch.Generator().manual_seed(args.seed + 1)
    for beams in (1, args.beams):
        features = torch.randn(args.batch, 80, 3000, generator=gen).to(device=device, dtype=dtype)
        with torch.inference_mode():
            ref, got = call_theirs(features, beams), call_ours(features, beams)  # also the first warm-up
            times = interleaved_times({"transformers": lambda f=features, b=beams: call_theirs(f, b),
                                       "hub": lambda f=features, b=beams: call_ours(f, b)},
                                      args.repeats, device, warmup=args.warmup - 1)
        same = sum(a == b for r, g in zip(ref, got) for a, b in zip(r, g))
        total = sum(len(r) for r in ref)
        med = {side: statistics.median(v) for side, v in times.items()}
        row = {"decoding": "greedy" if beams == 1 else f"beam search ({beams} beams)", "beams": beams,
               "batch": args.batch, "audio_s": 30.0, "new_tokens": n,
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
    return {"benchmark": "whisper", "machine": info, "machine_tag": args.tag or machine_tag(info),
            "dtype": args.dtype, "device": str(device), "warmup": args.warmup, "repeats": args.repeats,
            "seed": args.seed, "model": MODEL, "results": results}


def markdown(report: dict) -> str:
    lines = [f"## {report['machine_tag']} — {report['dtype']} on {report['device']} ({report['machine']['date']})",
             "", machine_line(report["machine"]) + "  ",
             f"Model: {report['model']}. 30 s windows of log-mel features; fixed number of new tokens (no "
             f"end-of-text stop, no suppression); {report['warmup']} warm-up call(s), median of "
             f"{report['repeats']} interleaved repeats; tokens/s = windows × new tokens / s (encoder included).", "",
             "| decoding | windows | new | transformers tok/s | Hub tok/s | Hub speed-up | token agreement | "
             "identical sequences |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["results"]:
        lines.append(f"| {r['decoding']} | {r['batch']} | {r['new_tokens']} | {r['transformers_tokens_per_s']:.1f} | "
                     f"{r['hub_tokens_per_s']:.1f} | {r['hub_speedup']:.2f}× | {r['token_agreement']:.1%} | "
                     f"{r['identical_sequences']}/{r['batch']} |")
    lines.append("")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = base_parser(__doc__)
    parser.add_argument("--batch", type=int, default=2, help="30 s windows per call (default 2)")
    parser.add_argument("--beams", type=int, default=5, help="beams of the beam-search row (default 5, as "
                                                             "transformers' ASR pipeline)")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=1, help="warm-up calls per side (>= 1)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    args.warmup = max(args.warmup, 1)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    return finish_token_benchmark("whisper", args, report, markdown(report))


if __name__ == "__main__":
    raise SystemExit(main())
