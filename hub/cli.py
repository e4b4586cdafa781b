"""The ``hub`` command line: list, inspect, run, download and fine-tune models.

Catalogue commands (``hub list``, ``hub info``, ``hub plugins``, ``hub --help``) read
only the registry and plugin registrations, which are plain data, so they answer in a
fraction of a second and never import torch or transformers. Commands that run models
(``predict``, ``train``, ``download``) import their heavy modules inside the command.

Every error Hub raises on purpose (:class:`~hub.errors.HubError`) is printed as
``error: <message>`` on stderr with exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from hub._version import __version__

if TYPE_CHECKING:
    from hub.registry import Registry, Task
    from hub.specs import ModelEntry

EXIT_OK = 0
EXIT_ERROR = 2  # a HubError or a usage error (argparse uses 2 as well)
NO_PLUGIN = "no plugin installed"


# --------------------------------------------------------------------------- output helpers
def _json_default(obj: Any) -> Any:
    """Make tensors, paths, dataclasses and the like JSON-ready without importing torch."""
    import dataclasses
    from pathlib import PurePath

    if hasattr(obj, "tolist"):  # torch tensors, numpy arrays and scalars
        return obj.tolist()
    if isinstance(obj, PurePath):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)


def _print_json(data: Any, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    out.write(json.dumps(data, indent=2, ensure_ascii=False, default=_json_default) + "\n")


def _table(rows: Sequence[Sequence[str]], header: Sequence[str], out: TextIO | None = None,
           indent: str = "  ") -> None:
    """A left-aligned plain-text table (no third-party dependency, no colour)."""
    out = out or sys.stdout
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(row, widths)]
        out.write(indent + "  ".join(cells).rstrip() + "\n")


def _glob(pattern: str | None) -> str:
    """``hub list bert`` means ``*bert*``; an explicit glob is used as given."""
    if not pattern:
        return "*"
    return pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"


# --------------------------------------------------------------------------- records
def _task_record(task: "Task", registry: "Registry") -> dict[str, Any]:
    return {
        "name": task.name,
        "aliases": list(task.aliases),
        "default_model": task.default_model,
        "plugin": task.plugin,
        "pipeline": task.spec.pipeline if task.spec else None,
        "modality": task.spec.modality if task.spec else None,
        "pipeline_tag": task.pipeline_tag,
        "description": task.description,
        "models": [m.name for m in registry.models.values() if m.task == task.name],
        "default_offline": _offline(registry.models.get(task.default_model or "")),
    }


def _model_record(entry: "ModelEntry") -> dict[str, Any]:
    return {
        "name": entry.name,
        "task": entry.task,
        "source": entry.source,
        "architecture": entry.architecture,
        "plugin": entry.plugin,
        "license": entry.license,
        "description": entry.description,
        "labels": list(entry.labels),
        "metrics": dict(entry.metrics),
        "origin": entry.origin,
        "offline": _offline(entry),
    }


def _offline(entry: "ModelEntry | None") -> str | None:
    """How a model works offline: 'shipped', 'cached', 'local' or None (hub.cache; no torch)."""
    from hub.cache import offline_status

    return offline_status(entry) if entry is not None else None


def _plugin_health_hint(registry: "Registry | None" = None) -> None:
    """One line on stderr when some plugin failed, so `hub list` users notice."""
    from hub.plugins import get_plugin_manager

    manager = get_plugin_manager()
    failed = [p.name for p in manager.plugins if p.status == "failed"]
    problems = len(registry.problems) if registry is not None else 0
    if failed or manager.hook_errors or problems:
        parts = []
        if failed:
            parts.append(f"plugin(s) failed to load: {', '.join(failed)}")
        if manager.hook_errors:
            parts.append(f"{len(manager.hook_errors)} hook error(s)")
        if problems:
            parts.append(f"{problems} rejected registration(s)")
        sys.stderr.write(f"note: {'; '.join(parts)}; run `hub plugins` for details.\n")


# --------------------------------------------------------------------------- commands
def cmd_list(args: argparse.Namespace) -> int:
    """Tasks and catalogue models; reads data only (no torch)."""
    from hub.registry import get_registry

    registry = get_registry()
    pattern = _glob(args.pattern)
    if args.task:
        wanted = registry.task(args.task)  # UnknownNameError -> exit 2 with close matches
        tasks = [wanted]
    else:
        tasks = [t for _, t in sorted(registry.tasks.items())
                 if any(fnmatch.fnmatchcase(n, pattern) for n in (t.name, *t.aliases))]
    models = registry.list_models(pattern, task=args.task)
    if args.pattern and not args.task:  # a task that matches shows its models too
        matched = {t.name for t in tasks}
        models = sorted({m.name: m for m in [*models, *(m for m in registry.models.values()
                                                         if m.task in matched)]}.values(),
                        key=lambda m: m.name)
    if args.json:
        _print_json({"tasks": [_task_record(t, registry) for t in tasks],
                     "models": [_model_record(m) for m in models]})
    else:
        if tasks:
            print("Tasks")
            _table([(t.name, ", ".join(t.aliases) or "-", t.default_model or "-",
                     _offline(registry.models.get(t.default_model or "")) or "-", t.plugin or NO_PLUGIN)
                    for t in tasks], ("NAME", "ALIASES", "DEFAULT MODEL", "OFFLINE", "PLUGIN"))
        if models:
            print("\nModels" if tasks else "Models")
            _table([(m.name, m.task, _offline(m) or "-", m.source, m.license or "-") for m in models],
                   ("NAME", "TASK", "OFFLINE", "SOURCE", "LICENSE"))
            print("\nOFFLINE: shipped (in an installed package), cached (in the Hugging Face cache: `hub cache`), "
                  "local (a folder); '-' needs a download.")
        if not tasks and not models:
            sys.stderr.write(f"No task or model matches {args.pattern!r}.\n")
    _plugin_health_hint(registry)
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    """Everything the catalogue knows about one task, model or architecture."""
    from hub.registry import get_registry

    registry = get_registry()
    name = args.name.strip()
    canonical = registry.aliases.get(name, name)
    if canonical in registry.tasks:
        record = {"kind": "task", **_task_record(registry.tasks[canonical], registry)}
    elif name in registry.models:
        record = {"kind": "model", **_model_record(registry.models[name])}
    elif name in registry.architectures:
        plugin, spec = registry.architectures[name]
        record = {"kind": "architecture", "name": spec.name, "builder": spec.builder,
                  "plugin": plugin, "description": spec.description}
    else:
        raise registry.unknown_name_error("task, model or architecture", name,
                                          [*registry.tasks, *registry.aliases, *registry.models,
                                           *registry.architectures],
                                          hint="Run `hub list` to see every task and model.")
    if args.json:
        _print_json(record)
        return EXIT_OK
    kind = record.pop("kind")
    print(f"{kind} {record.pop('name')}")
    if kind == "task" and record["plugin"] is None:
        record["plugin"] = NO_PLUGIN
    width = max(len(k) for k in record)
    for key, value in record.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
        elif isinstance(value, list):
            value = ", ".join(map(str, value)) or "-"
        elif value in (None, ""):
            value = "-"
        print(f"  {key.ljust(width)}  {value}")
    return EXIT_OK


def cmd_plugins(args: argparse.Namespace) -> int:
    """Plugin health: what loaded, what failed and why, and rejected registrations."""
    from hub.errors import HubError
    from hub.plugins import get_plugin_manager
    from hub.registry import get_registry

    manager = get_plugin_manager()
    registry, registry_error = None, None
    try:
        registry = get_registry()  # runs the hooks, which fills manager.hook_errors
    except HubError as exc:  # a broken overlay must not hide plugin health
        registry_error = str(exc)
    provides: dict[str, list[str]] = {}
    if registry is not None:
        for task in registry.tasks.values():
            if task.plugin:
                provides.setdefault(task.plugin, []).append(task.name)
    plugins = [{"name": p.name, "module": p.module, "distribution": p.distribution,
                "builtin": p.builtin, "status": p.status, "error": p.error,
                "tasks": sorted(provides.get(p.name, []))} for p in manager.plugins]
    hook_errors = [{"plugin": plugin, "hook": hook, "error": error}
                   for plugin, hook, error in manager.hook_errors]
    problems = list(registry.problems) if registry is not None else []
    if args.json:
        _print_json({"plugins": plugins, "problems": problems, "hook_errors": hook_errors,
                     "registry_error": registry_error})
    else:
        print("Plugins")
        if plugins:
            _table([(p["name"], p["status"], "yes" if p["builtin"] else "no", p["distribution"] or "-",
                     p["module"], ", ".join(p["tasks"]) or "-") for p in plugins],
                   ("NAME", "STATUS", "BUILTIN", "DISTRIBUTION", "MODULE", "TASKS"))
        else:
            print("  (none)")
        for p in plugins:
            if p["error"]:
                print(f"\n{p['status']}: {p['name']} ({p['module']})\n  {p['error']}")
        if hook_errors:
            print("\nHook errors")
            for e in hook_errors:
                print(f"  {e['plugin']}.{e['hook']}: {e['error']}")
        if problems:
            print("\nRejected registrations")
            for problem in problems:
                print(f"  {problem}")
    if registry_error:
        sys.stderr.write(f"error: {registry_error}\n")
        return EXIT_ERROR
    return EXIT_OK


def _read_inputs(items: Iterable[str], stdin: TextIO) -> list[str]:
    """Expand ``-`` into the non-empty lines of stdin (one input per line)."""
    inputs: list[str] = []
    for item in items:
        if item == "-":
            inputs.extend(line.rstrip("\r\n") for line in stdin if line.strip())
        else:
            inputs.append(item)
    return inputs


def _top_k(text: str) -> int | None:
    if text.lower() in ("all", "none"):
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all', got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all', got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def cmd_predict(args: argparse.Namespace) -> int:
    """Run a pipeline on the inputs; results as one JSON document on stdout."""
    import hub
    from hub.errors import InvalidInputError

    inputs = _read_inputs(args.inputs, sys.stdin)
    if not inputs:
        raise InvalidInputError("no inputs: pass them as arguments, or '-' to read one per line "
                                "from stdin.")
    pipe = hub.load(args.task, model=args.model, revision=args.revision, device=args.device,
                    dtype=args.dtype, quantize=args.quantize)
    params: dict[str, Any] = {}
    if args.top_k is not _UNSET:
        accepted = getattr(pipe, "accepted_call_parameters", None)
        if accepted is not None and "top_k" not in accepted():
            raise InvalidInputError(f"--top-k: {pipe.task} takes no top_k (it does not rank labels); "
                                    "drop the option.")
        params["top_k"] = args.top_k
    results = pipe(inputs if len(inputs) > 1 else inputs[0], batch_size=args.batch_size, **params)
    _print_json(results)
    return EXIT_OK


def cmd_cache(args: argparse.Namespace) -> int:
    """List the models in the Hugging Face cache with sizes, or delete some by name (hub.cache)."""
    from pathlib import Path

    from hub import cache
    from hub.errors import InvalidInputError
    from hub.hf import default_cache_dir
    from hub.registry import get_registry

    registry = get_registry()
    folder = Path(args.cache_dir).expanduser() if args.cache_dir else default_cache_dir()
    if args.action == "list":
        if args.names or args.yes or args.revision:
            raise InvalidInputError("`hub cache list` takes no names, --yes or --revision; to delete, run "
                                    "`hub cache delete NAME... --yes`.")
        models = cache.scan(registry, folder)
        total = sum(m.size_on_disk for m in models)
        if args.json:
            _print_json({"cache_dir": str(folder), "size_on_disk": total, "models": [m.record() for m in models]})
            return EXIT_OK
        print(f"Hugging Face cache {folder}: {len(models)} model(s), {cache.human_size(total)}")
        if models:
            _table([(m.repo_id, ", ".join(m.names) or "-", cache.human_size(m.size_on_disk),
                     ", ".join(c[:8] + (f" ({', '.join(refs)})" if refs else "") for c, refs in m.commits.items()),
                     m.record()["last_accessed"]) for m in models],
                   ("REPO", "CATALOGUE", "SIZE", "COMMITS", "LAST ACCESSED"))
        return EXIT_OK
    plan = cache.delete(args.names, registry, revision=args.revision, cache=folder)
    what = ", ".join(m.repo_id for m in plan.repos)
    scope = f"commit {args.revision}" if args.revision else f"{len(plan.commits)} commit(s)"
    if not args.yes:
        sys.stderr.write(f"Would delete {what} ({scope}, {cache.human_size(plan.freed)}) from {folder}. "
                         "Nothing deleted: rerun with --yes to delete.\n")
        return EXIT_ERROR
    plan.execute()
    print(f"Deleted {what} ({scope}, {cache.human_size(plan.freed)} freed) from {folder}.")
    return EXIT_OK


def cmd_freeze(args: argparse.Namespace) -> int:
    """Write a registry overlay pinning cached catalogue models to their resolved commits."""
    import time
    from pathlib import Path

    from hub import cache
    from hub._fs import atomic_write_text
    from hub.hf import default_cache_dir
    from hub.registry import get_registry

    folder = Path(args.cache_dir).expanduser() if args.cache_dir else default_cache_dir()
    overlay, skipped = cache.freeze(get_registry(), args.names or None, folder)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    header = (f"Registry overlay written by `hub freeze` (hub {__version__}) at {stamp}: the catalogue's Hugging\n"
              f"Face models pinned to the commits in the cache {folder}.\n"
              "Use it with HUB_REGISTRY=THIS_FILE (or as ~/.config/hub/registry.yaml).")
    text = cache.overlay_text(overlay, header)
    if args.output:
        atomic_write_text(args.output, text)
        sys.stderr.write(f"Pinned {len(overlay['models'])} model(s) in {args.output}.\n")
    else:
        sys.stdout.write(text)
    if skipped:
        sys.stderr.write(f"Not cached, so not pinned: {', '.join(skipped)} (`hub download` them first).\n")
    return EXIT_OK


def cmd_download(args: argparse.Namespace) -> int:
    """Fetch a model's files into the HF cache; prints where they are and the commit."""
    from hub.errors import InvalidInputError
    from hub.hf import download_model_files, parse_hf_source

    try:
        repo_id, pinned = parse_hf_source(args.repo_id if "/" in args.repo_id or
                                          args.repo_id.startswith("hf://") else f"hf://{args.repo_id}")
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from None
    revision = args.revision or pinned
    snap = download_model_files(repo_id, revision=revision, cache_dir=args.cache_dir)
    record = {"repo_id": snap.repo_id, "revision": snap.revision or "main", "commit": snap.commit,
              "path": str(snap.path)}
    if args.json:
        _print_json(record)
    else:
        for key, value in record.items():
            print(f"{key + ':':<10}{value}")
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    """Fine-tune or pretrain from a config file or flags, save to --output, print a JSON summary."""
    from hub.errors import ConfigError
    from hub.train.distributed import is_main_process
    from hub.train.recipe import load_recipe, recipe_from_dict, run_recipe

    training = {key: value for key, value in (
        ("epochs", args.epochs), ("batch_size", args.batch_size), ("learning_rate", args.learning_rate),
        ("seed", args.seed), ("max_steps", args.max_steps), ("device", args.device),
        ("report_to", args.report_to),
    ) if value is not None}
    overrides = {"train": args.train, "eval": args.eval, "model": args.model, "revision": args.revision,
                 "output": args.output, "training": training}
    if args.target.endswith((".yaml", ".yml")) or os.path.isfile(args.target):
        recipe = load_recipe(args.target, overrides)
    else:
        if not args.train:
            raise ConfigError("hub train TASK needs --train FILE (or pass a CONFIG.yaml).")
        recipe = recipe_from_dict({"task": args.target}, overrides=overrides, source="the command line")
    summary = run_recipe(recipe, resume=args.resume, quiet=args.quiet)
    if is_main_process():
        _print_json(summary)
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve models over HTTP until SIGINT/SIGTERM (hub.serving; FastAPI + uvicorn imported here)."""
    from hub.serving.errors import require_serve_deps
    from hub.serving.settings import ServeSettings

    require_serve_deps()  # before any model loads: a missing extra is one clear error
    from hub.serving.server import serve

    knobs = {key: value for key, value in (
        ("host", args.host), ("port", args.port), ("api_key", args.api_key),
        ("max_batch_size", args.max_batch_size), ("max_wait_ms", args.max_wait_ms),
        ("max_batch_tokens", args.max_batch_tokens), ("max_queue", args.max_queue),
        ("max_body_bytes", args.max_body_bytes), ("max_inputs_per_request", args.max_inputs_per_request),
        ("request_timeout_s", args.request_timeout), ("log_level", args.log_level),
    ) if value is not None}
    if args.no_batching:
        knobs["batching"] = False
    if args.always_wait:
        knobs["dispatch_when_idle"] = False
    if args.ray:  # scale-out: the same app as a Ray Serve deployment (ray imported there)
        from hub.serving.ray import serve_ray

        serve_ray(args.models, ServeSettings(**knobs), replicas=args.replicas or 1, address=args.ray_address,
                  device=args.device, dtype=args.dtype, revision=args.revision, quantize=args.quantize,
                  backend=args.backend)
        return EXIT_OK
    if args.replicas is not None or args.ray_address is not None:
        from hub.errors import ConfigError

        raise ConfigError("--replicas and --ray-address run the server on Ray Serve; add --ray "
                          "(pip install 'hub-sdk[ray]').")
    serve(args.models, ServeSettings(**knobs), device=args.device, dtype=args.dtype, revision=args.revision,
          quantize=args.quantize, backend=args.backend)
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """Export a model to an ONNX folder (parity-checked against the eager model); print a summary."""
    import hub
    from hub.export import INFO_NAME

    pipe = hub.load(args.name, model=args.model, revision=args.revision, device="cpu", quantize=False)
    folder = pipe.export(args.output, format=args.format, opset=args.opset, atol=args.atol)
    info = json.loads((folder / INFO_NAME).read_text(encoding="utf-8"))
    _print_json({"folder": str(folder), "task": pipe.task, "format": args.format,
                 "description": info["description"], "inputs": info["inputs"], "outputs": info["outputs"],
                 "parity": {"atol": info["parity"]["atol"], "max_abs_diff": info["parity"]["max_abs_diff"]},
                 "files": sorted(p.name for p in folder.iterdir()),
                 "load": f"hub.load({pipe.task!r}, model={str(folder)!r}, backend='onnxruntime')"})
    return EXIT_OK


class _Unset:
    def __repr__(self) -> str:
        return "<pipeline default>"


_UNSET: Any = _Unset()


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The argument parser; building it imports nothing heavy (``hub --help`` is instant)."""
    parser = argparse.ArgumentParser(
        prog="hub",
        description="Hub: load, run, fine-tune and share models through plugins.",
        epilog="Run `hub COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"hub {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], int], help_: str,
            description: str | None = None) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=description or help_)
        p.set_defaults(func=func)
        return p

    p = add("list", cmd_list, "List tasks and catalogue models.",
            "List tasks and catalogue models. PATTERN is a glob (e.g. 'bert*'); a plain word "
            "matches as a substring. A task that matches also lists its models.")
    p.add_argument("pattern", nargs="?", metavar="PATTERN", help="filter names (glob or substring)")
    p.add_argument("--task", metavar="T", help="only this task (name or alias) and its models")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = add("info", cmd_info, "Show a task, model or architecture in detail.")
    p.add_argument("name", metavar="NAME", help="a task, task alias, model or architecture name")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = add("plugins", cmd_plugins, "Show installed plugins, failures and rejected registrations.")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = add("predict", cmd_predict, "Run a task on inputs and print JSON results.",
            "Run a task on inputs and print the results as one JSON document (an object for "
            "one input, a list for several).")
    p.add_argument("task", metavar="TASK", help="task name or alias, or a catalogue model name")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="inputs; '-' reads one per line from stdin")
    p.add_argument("--model", metavar="M", help="catalogue name, local folder or HF repo id")
    p.add_argument("--revision", metavar="R", help="branch, tag or commit (HF models)")
    p.add_argument("--device", metavar="D", help="cpu, cuda or cuda:N (default: CUDA if available)")
    p.add_argument("--dtype", metavar="DTYPE", help="float32 (default), bfloat16 or float16")
    p.add_argument("--quantize", choices=("auto", "int8", "float"), default=None,
                   help="int8: Linear layers compute in int8 on CPU; float: never; auto (default): int8 for "
                        "a model stored as int8, on CPU")
    p.add_argument("--top-k", type=_top_k, default=_UNSET, metavar="K",
                   help="return the K best labels (or 'all') where the task supports it")
    p.add_argument("--batch-size", type=_positive_int, metavar="N", help="inputs per forward pass")

    p = add("cache", cmd_cache, "List the models in the Hugging Face cache with sizes, or delete some.",
            "`hub cache` (or `hub cache list`) lists the model repositories in the Hugging Face cache "
            "($HF_HUB_CACHE, else $HF_HOME/hub) with their sizes, commits and the catalogue names that use them. "
            "`hub cache delete NAME... --yes` deletes them (catalogue names or org/name repo ids; only "
            "Hugging Face cache repositories: shipped and local models are never touched); without --yes "
            "it says what it would delete and deletes nothing.")
    p.add_argument("action", nargs="?", choices=("list", "delete"), default="list", help="list (default) or delete")
    p.add_argument("names", nargs="*", metavar="NAME", help="models to delete (catalogue name or org/name)")
    p.add_argument("--revision", metavar="COMMIT", help="delete only this cached commit of the model")
    p.add_argument("--yes", action="store_true", help="really delete")
    p.add_argument("--cache-dir", metavar="DIR", help="cache folder (default: the HF cache)")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = add("freeze", cmd_freeze, "Pin cached catalogue models to their commits in a registry overlay.",
            "Write a registry overlay (YAML, the format of registry.yaml) in which every catalogue model from "
            "the Hugging Face Hub that is in the cache (or each NAME) has its source pinned to the commit the "
            "cache resolved, so a deployment loads exactly those: HUB_REGISTRY=frozen.yaml.")
    p.add_argument("names", nargs="*", metavar="NAME", help="only these catalogue models (default: every cached one)")
    p.add_argument("--output", "-o", metavar="FILE", help="write the overlay here (default: stdout)")
    p.add_argument("--cache-dir", metavar="DIR", help="cache folder (default: the HF cache)")

    p = add("download", cmd_download, "Download a model from the Hugging Face Hub into the cache.")
    p.add_argument("repo_id", metavar="REPO_ID", help="'org/name', 'org/name@rev' or 'hf://...'")
    p.add_argument("--revision", metavar="R", help="branch, tag or commit (default: main)")
    p.add_argument("--cache-dir", metavar="DIR", help="cache folder (default: the HF cache)")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = add("serve", cmd_serve, "Serve models over HTTP (native JSON, Open Inference Protocol v2, metrics).",
            "Serve models over HTTP with dynamic batching: POST /models/NAME/predict (the Python call), "
            "the Open Inference Protocol under /v2, GET /health and GET /metrics. Each MODEL is NAME, "
            "NAME=MODEL or NAME=TASK:MODEL (a task, a catalogue model, a folder saved by Hub, or TASK:FOLDER / "
            "TASK:ORG/REPO for other checkpoints). SIGTERM stops accepting and drains what is in flight. "
            "Needs the serve extra: pip install 'hub-sdk[serve]'.")
    p.add_argument("models", nargs="+", metavar="MODEL", help="NAME, NAME=MODEL or NAME=TASK:MODEL")
    p.add_argument("--host", metavar="H", help="interface to bind (default 127.0.0.1; 0.0.0.0 for a network)")
    p.add_argument("--port", type=int, metavar="P", help="TCP port (default 8000; 0: any free port)")
    p.add_argument("--api-key", metavar="KEY",
                   help="require 'Authorization: Bearer KEY' on every route but health (default: $HUB_API_KEY)")
    p.add_argument("--max-batch-size", type=_positive_int, metavar="N", help="inputs per pipeline call (32)")
    p.add_argument("--max-wait-ms", type=float, metavar="MS",
                   help="how long a batch may wait to fill (5); it goes at once when every request in flight "
                        "is queued")
    p.add_argument("--always-wait", action="store_true",
                   help="a batch that is not full always waits out --max-wait-ms (default: it goes at once when "
                        "no other request is in flight)")
    p.add_argument("--max-batch-tokens", type=_positive_int, metavar="N", help="token budget of a text batch (16384)")
    p.add_argument("--max-queue", type=_positive_int, metavar="N", help="waiting requests per model before 503 (256)")
    p.add_argument("--max-body-bytes", type=_positive_int, metavar="N", help="largest request body (32 MiB)")
    p.add_argument("--max-inputs-per-request", type=_positive_int, metavar="N", help="inputs per request (1024)")
    p.add_argument("--request-timeout", type=float, metavar="S", help="seconds from arrival to answer (60)")
    p.add_argument("--no-batching", action="store_true", help="one pipeline call per request")
    p.add_argument("--device", metavar="D", help="cpu, cuda or cuda:N (default: CUDA if available)")
    p.add_argument("--dtype", metavar="DTYPE", help="float32 (default), bfloat16 or float16")
    p.add_argument("--revision", metavar="R", help="branch, tag or commit (HF models)")
    p.add_argument("--quantize", choices=("auto", "int8", "float"), default=None,
                   help="int8: Linear layers compute in int8 on CPU; float: never; auto (default): int8 for "
                        "a model stored as int8, on CPU")
    p.add_argument("--backend", choices=("torch", "onnxruntime"), default=None,
                   help="torch (default) or onnxruntime (pip install 'hub-sdk[onnx]'; exports and caches the graph)")
    p.add_argument("--log-level", choices=("critical", "error", "warning", "info", "debug"), help="default info")
    p.add_argument("--ray", action="store_true",
                   help="run as a Ray Serve deployment of --replicas copies (pip install 'hub-sdk[ray]')")
    p.add_argument("--replicas", type=_positive_int, metavar="N", help="with --ray: replicas, each loads the models")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="with --ray: the cluster ('auto' for the one `ray start` runs here, HOST:6379; default: "
                        "a local Ray)")

    p = add("export", cmd_export, "Export a model to ONNX (parity-checked), for backend='onnxruntime'.",
            "Export NAME (a task's default model, a catalogue model, or --model M for a task) to the folder "
            "OUT: model.onnx with dynamic batch and sequence axes, Hub's config, the tokenizer or other "
            "preprocessing files and onnx.json. ONNX Runtime is checked against the eager model on other batch "
            "sizes and lengths first (max abs difference <= --atol); a graph that fails is not written. Needs "
            "pip install 'hub-sdk[onnx]'.")
    p.add_argument("name", metavar="NAME", help="a task name or alias, or a catalogue model name")
    p.add_argument("output", metavar="OUT", help="the folder to write (new, empty, or an earlier export)")
    p.add_argument("--format", choices=("onnx",), default="onnx", help="the export format (onnx)")
    p.add_argument("--model", metavar="M", help="catalogue name, local folder or HF repo id")
    p.add_argument("--revision", metavar="R", help="branch, tag or commit (HF models)")
    p.add_argument("--opset", type=_positive_int, metavar="N", help="ONNX opset (default 17)")
    p.add_argument("--atol", type=float, default=1e-4, metavar="X",
                   help="largest ONNX Runtime vs eager difference allowed (default 1e-4)")

    p = add("train", cmd_train, "Fine-tune or pretrain from a config file or flags, and save.",
            "Train from CONFIG.yaml (task, model, data, options, training arguments, output; see "
            "hub/train/recipe.py) or from flags (TASK --train FILE ...). Flags override the file. "
            "Checkpoints go to OUTPUT-run/checkpoints; --resume continues from the latest one. "
            "Works under `torchrun --nproc_per_node=N -m hub train ...` (DDP; rank 0 saves).")
    p.add_argument("target", metavar="CONFIG_OR_TASK", help="a CONFIG.yaml, or a task name or alias")
    p.add_argument("--train", metavar="FILE", help="training data file")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint of the run")
    p.add_argument("--eval", metavar="FILE", help="evaluation data file (picks the best epoch)")
    p.add_argument("--model", metavar="M", help="starting model (default: the task's default)")
    p.add_argument("--revision", metavar="R", help="branch, tag or commit of an HF --model")
    p.add_argument("--output", metavar="DIR", help="where to save (default: the config's output:, else "
                   "$HUB_RUNS_DIR or ~/.cache/hub/runs/CONFIG-NAME for a config file, ./TASK-finetuned for flags)")
    p.add_argument("--device", metavar="D", help="cpu, cuda or cuda:N (default: CUDA if available)")
    p.add_argument("--epochs", type=float, metavar="E")
    p.add_argument("--batch-size", type=_positive_int, metavar="B")
    p.add_argument("--learning-rate", type=float, metavar="LR")
    p.add_argument("--seed", type=int, metavar="S")
    p.add_argument("--max-steps", type=_positive_int, metavar="N", help="stop after N optimiser steps")
    p.add_argument("--report-to", nargs="+", metavar="TRACKER",
                   help="experiment trackers: jsonl tensorboard wandb mlflow, or all / none")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hub`` console script; returns the exit status."""
    from hub.errors import HubError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_ERROR)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_OK
    try:
        return args.func(args)
    except HubError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except BrokenPipeError:  # `hub list | head`: the reader left; not an error of ours
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
