"""The shared backbone before and after a change, side by side in one process.

Run by hand (not a test)::

    python benchmarks/backbone_refactor_ab.py                        # before = BEFORE below
    python benchmarks/backbone_refactor_ab.py --before <commit> --layers 4 --repeats 9

A timing on a shared, loaded machine drifts by more than a refactor should change it,
so two runs of ``benchmarks/backbone.py`` an hour apart cannot say whether speed
dropped. This script loads the *old* ``hub/backbone`` modules from ``git show
<before>:hub/backbone/<file>`` into a temporary package (``hub_backbone_before``, its
``hub.backbone.`` imports rewritten to it), builds both stacks with identical weights
(the old one loads the new one's ``state_dict``), checks their outputs agree and times
them interleaved (:func:`common.interleaved_times`; half the rounds in each order), so
load hits both alike.

Cases, each in eval mode under ``torch.inference_mode`` unless marked train:

* ``bert``: post-norm encoder, full (B, T) batch, plain pass;
* ``bert classify``: the same on a padded batch with ``unpad=True, select=0`` (what
  text-classify runs);
* ``gpt2``: pre-norm causal decoder, plain pass;
* ``gpt2 decode``: KV-cache prefill of T/2 tokens, then 16 one-token steps;
* ``llama``: pre-norm causal, RMSNorm, SwiGLU, rotary, plain pass;
* ``bert train``: forward + backward in train mode (dropout 0).

Reported: median ms of each side, the ratio of the medians before / after (> 1: after is
faster) and the ratio of each side's fastest run (the least disturbed by other load). Run
it once with ``--before`` set to the working tree's own commit (an A/A run) to see how far
the ratios stray from 1 on identical code under the machine's current load.
``--write`` appends the table to ``benchmarks/results/backbone.md`` and the figures to
``benchmarks/results/backbone-<machine>-refactor-ab.json``.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, base_parser, interleaved_times, load_average, machine, machine_line, machine_tag, write_results  # noqa: E402

#: the last commit before the backbone refactor of issue 13, item 7
BEFORE = "2e395e40171556383b648f1d1bca5d0ec6ad2a2c"
FILES = ("attention.py", "cache.py", "config.py", "layers.py", "rotary.py", "transformer.py",
         "fastpaths.py")  # fastpaths.py: only where the old commit has it
OLD_PACKAGE = "hub_backbone_before"


def load_before(commit: str, folder: Path):
    """The old ``hub.backbone`` modules as package ``hub_backbone_before`` under ``folder``."""
    package = folder / OLD_PACKAGE
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in FILES:
        shown = subprocess.run(["git", "show", f"{commit}:hub/backbone/{name}"], cwd=ROOT,
                               capture_output=True, text=True)
        if shown.returncode:
            continue
        (package / name).write_text(shown.stdout.replace("hub.backbone.", f"{OLD_PACKAGE}."))
    sys.path.insert(0, str(folder))
    return importlib.import_module(f"{OLD_PACKAGE}.transformer"), importlib.import_module(f"{OLD_PACKAGE}.config"), \
        importlib.import_module(f"{OLD_PACKAGE}.cache")


def configs(args: argparse.Namespace) -> dict[str, dict]:
    size = dict(hidden_size=args.hidden, num_layers=args.layers, num_heads=args.hidden // 64,
                intermediate_size=4 * args.hidden, dropout=0.0, attention_dropout=0.0)
    bert = dict(size, norm_position="post", activation="gelu")
    gpt2 = dict(size, norm_position="pre", causal=True, activation="gelu_tanh", norm_eps=1e-5)
    llama = dict(size, norm_position="pre", causal=True, activation="swiglu", norm="rmsnorm", norm_eps=1e-5,
                 rotary_dim=64, qkv_bias=False, out_bias=False, mlp_bias=False)
    return {"bert": bert, "bert classify": bert, "gpt2": gpt2, "gpt2 decode": gpt2, "llama": llama,
            "bert train": bert}


def caller(case: str, model, cache_class, x: torch.Tensor, mask: torch.Tensor) -> Callable[[], torch.Tensor]:
    """A no-argument call of ``model`` for ``case`` returning the tensor compared."""
    config = model.config
    if case == "bert classify":
        return lambda: model(x, mask, unpad=True, select=0)
    if case == "gpt2 decode":
        prefill, steps = x.shape[1] // 2, 16

        def decode() -> torch.Tensor:
            cache = cache_class(config.num_layers, x.shape[0], config.num_heads, prefill + steps, config.head_dim,
                                dtype=x.dtype)
            outs = [model(x[:, :prefill], cache=cache)[:, -1:]]
            for t in range(prefill, prefill + steps):
                outs.append(model(x[:, t:t + 1], cache=cache))
            return torch.cat(outs, 1)
        return decode
    if case == "bert train":
        def step() -> torch.Tensor:
            model.zero_grad(set_to_none=True)
            with torch.enable_grad():
                out = model(x, mask)
                out.pow(2).mean().backward()
            return torch.cat([p.grad.flatten() for p in model.parameters()])
        return step
    return lambda: model(x)


def run(args: argparse.Namespace) -> dict:
    from hub.backbone.cache import KVCache
    from hub.backbone.config import TransformerConfig
    from hub.backbone.transformer import Transformer

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    info = machine(device)
    rows = []
    with tempfile.TemporaryDirectory(prefix="hub-backbone-before-") as tmp:
        old_transformer, old_config, old_cache = load_before(args.before, Path(tmp))
        for case, config in configs(args).items():
            if args.cases and case not in args.cases:
                continue
            torch.manual_seed(args.seed)
            after = Transformer(TransformerConfig(**config)).to(device)
            before = old_transformer.Transformer(old_config.TransformerConfig(**config)).to(device)
            before.load_state_dict(after.state_dict())
            train = case.endswith("train")
            after.train(train), before.train(train)
            gen = torch.Generator().manual_seed(args.seed + 1)
            batch, seq = args.batch, args.seq
            x = torch.randn(batch, seq, args.hidden, generator=gen).to(device)
            lengths = torch.randint(seq // 4, seq + 1, (batch,), generator=gen)
            lengths[0] = seq
            mask = (torch.arange(seq)[None, :] < lengths[:, None]).to(device)
            if case not in ("bert classify", "bert train"):
                mask = torch.ones_like(mask)
            calls = {"before": caller(case, before, old_cache.KVCache, x, mask),
                     "after": caller(case, after, KVCache, x, mask)}
            context = torch.enable_grad() if train else torch.inference_mode()
            with context:
                diff = (calls["before"]() - calls["after"]()).abs().max().item()
                # half the rounds before-first, half after-first: whichever runs second in a
                # round (warmer caches, or a neighbour's burst) gets no standing advantage
                seconds = interleaved_times(calls, (args.repeats + 1) // 2, device, args.warmup)
                swapped = interleaved_times(dict(reversed(calls.items())), args.repeats // 2, device)
                seconds = {side: seconds[side] + swapped[side] for side in calls}
            med = {side: statistics.median(v) * 1000 for side, v in seconds.items()}
            row = {"case": case, "batch": batch, "seq": seq, "before_ms": med["before"], "after_ms": med["after"],
                   "ratio": med["before"] / med["after"], "min_ratio": min(seconds["before"]) / min(seconds["after"]),
                   "max_abs_diff": diff,
                   "times_ms": {side: [t * 1000 for t in v] for side, v in seconds.items()}}
            rows.append(row)
            print(f"{case}: before {med['before']:.2f} ms, after {med['after']:.2f} ms, "
                  f"before/after {row['ratio']:.3f} (fastest runs: {row['min_ratio']:.3f}), "
                  f"max abs diff {diff:.1e}", flush=True)
    info["load_average_end"] = load_average()
    return {"benchmark": "backbone_refactor_ab", "before": args.before, "machine": info,
            "machine_tag": args.tag or machine_tag(info), "dtype": "float32", "device": str(device),
            "layers": args.layers, "hidden": args.hidden, "warmup": args.warmup, "repeats": args.repeats,
            "results": rows}


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"## {report['machine_tag']} — backbone before/after {report['before'][:10]}, float32 on "
             f"{report['device']} ({m['date']})", "",
             machine_line(m) + "  ",
             f"`benchmarks/backbone_refactor_ab.py`: old modules from `git show {report['before'][:10]}` vs the "
             f"working tree, identical weights, {report['hidden']} hidden × {report['layers']} layers; "
             f"{report['warmup']} warm-up rounds, median of {report['repeats']} interleaved repeats.", "",
             "| case | batch × seq | before ms | after ms | before / after | fastest before / after | max abs diff |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in report["results"]:
        lines.append(f"| {r['case']} | {r['batch']} × {r['seq']} | {r['before_ms']:.2f} | {r['after_ms']:.2f} | "
                     f"{r['ratio']:.3f} | {r['min_ratio']:.3f} | {r['max_abs_diff']:.1e} |")
    lines += ["", "before / after > 1: the new code is faster.", ""]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = base_parser(__doc__)
    parser.add_argument("--before", default=BEFORE, help="commit whose hub/backbone is 'before'")
    parser.add_argument("--cases", type=lambda s: [c.strip() for c in s.split(",") if c.strip()], default=[],
                        help="comma separated subset of: " + ", ".join(configs(argparse.Namespace(
                            hidden=64, layers=1))))
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=768, help="a multiple of 64 (64-channel heads)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--write", action="store_true", help="append to benchmarks/results/backbone.md")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    table = markdown(report)
    print()
    print(table)
    if args.write and not args.no_write:
        write_results("backbone", report, table, "float32", tags=("refactor-ab",))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
