"""What every benchmark here shares: describing the machine, timing sync, writing results.

Results go to ``benchmarks/results/<name>-<machine-tag>[-<dtype>].json`` plus a markdown
table appended to ``benchmarks/results/<name>.md``, so that every figure names its machine.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# -- shared helpers ----------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        return None


def machine(device: torch.device) -> dict:
    import tokenizers
    import transformers

    info = {
        "cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "transformers": transformers.__version__,
        "python": platform.python_version(), "platform": platform.platform(),
        "device": str(device), "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "load_average_start": load_average(), "tokenizers": tokenizers.__version__,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def machine_tag(info: dict) -> str:
    name = info["gpu"] if "gpu" in info else f"{info['cpu']}-{info['torch_threads']}t"
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return f"{'cuda' if 'gpu' in info else 'cpu'}-{slug}"


def machine_line(m: dict) -> str:
    where = m.get("gpu") or f"{m['cpu']}, {m['torch_threads']} torch threads"
    start, end = m.get("load_average_start"), m.get("load_average_end")
    return (f"Machine: {where} ({m['cpu_count']} logical CPUs); torch {m['torch']}, transformers "
            f"{m['transformers']}, Python {m['python']}; load average (1 min) "
            f"{start[0] if start else '?'} at start, {end[0] if end else '?'} at end.")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_times(calls: dict[str, Callable[[], object]], repeats: int, device: torch.device,
                      warmup: int = 0) -> dict[str, list[float]]:
    """Seconds per call of each entry of ``calls``, ``repeats`` times, the calls taken in turn
    (interleaved, so drift on a shared machine hits every side alike), after ``warmup`` rounds."""
    for _ in range(warmup):
        for fn in calls.values():
            fn()
    sync(device)
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def write_results(name: str, report: dict, table: str, dtype: str, *, default_dtype: str = "float32",
                  tags: tuple[str, ...] = ()) -> Path:
    """``<name>-<machine>[-tag...][-dtype].json`` (the dtype only when not the default) and
    the table appended to ``<name>.md``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = "".join(f"-{tag}" for tag in tags) + ("" if dtype == default_dtype else f"-{dtype}")
    path = RESULTS / f"{name}-{report['machine_tag']}{suffix}.json"
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    with open(RESULTS / f"{name}.md", "a", encoding="utf-8") as handle:
        handle.write(table + "\n")
    print(f"wrote {path} and appended to {RESULTS / (name + '.md')}")
    return path


def finish_token_benchmark(name: str, args: argparse.Namespace, report: dict, table: str, *,
                           what: str = "tokens agree with transformers'") -> int:
    """The end of a generation benchmark (generate, seq2seq, whisper): print the table, write
    the results unless ``--no-write``, and exit 1 when a float32 run's tokens are not
    transformers' (the speed of a different answer is not a comparison).

    Returns:
        the process exit status.
    """
    print()
    print(table)
    if not args.no_write:
        write_results(name, report, table, args.dtype)
    agreement = min(r["token_agreement"] for r in report["results"])
    if args.dtype == "float32" and agreement < 1.0:
        print(f"Hub's {what} on only {agreement:.1%}", file=sys.stderr)
        return 1
    return 0


def base_parser(doc: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--dtype", default="float32", choices=tuple(DTYPES))
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default="", help="machine tag for the results file name")
    parser.add_argument("--no-write", action="store_true", help="print only; write no results files")
    return parser
