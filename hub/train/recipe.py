"""Training recipes: one YAML file says what ``hub train CONFIG.yaml`` runs.

    task: text-classify            # a task name or alias
    mode: fine_tune                # fine_tune (default) or pretrain
    model: sentiment-minilm        # catalogue name, HF repo id or folder (default: the task's)
    revision: null                 # branch, tag or commit of an HF model
    from_scratch: null             # {sizes...}: a fresh model (hub.create) instead of `model`
    tokenizer: null                # with from_scratch: a folder holding a tokenizer
    data: {train: train.jsonl, eval: val.jsonl}
    # or Hugging Face datasets (the datasets extra), a local folder/file or a Hub name:
    # data: {train: {dataset: imdb, split: train, columns: {text: text, label: label}},
    #        eval: {dataset: imdb, split: test}}
    options: {max_tokens: 256}     # the task's own fine_tune/pretrain keywords
    training: {epochs: 3, batch_size: 16}   # hub.train.TrainingArguments
    output: my-model               # the final model folder (checkpoints go to OUTPUT-run/); default:
                                   # $HUB_RUNS_DIR or ~/.cache/hub/runs, /<recipe name> for a file

Everything is checked before any model is loaded: an unknown key names its closest
matches, a value of the wrong type names the key, a missing data file names the path.
Relative paths are relative to the config file. The same file works under
``torchrun --nproc_per_node=N -m hub train CONFIG.yaml``: every process trains, rank 0
logs and saves.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.errors import ConfigError
from hub.train.args import TrainingArguments, check_keys

MODES = ("fine_tune", "pretrain")
#: the keys of a ``data.train`` / ``data.eval`` entry that names a Hugging Face dataset
DATASET_KEYS = ("dataset", "name", "split", "data_files", "revision", "streaming", "columns")
_TOP_LEVEL = ("task", "mode", "model", "revision", "from_scratch", "tokenizer", "data", "options", "training",
              "output")


@dataclass
class Recipe:
    task: str
    train: str | dict[str, Any]  # a path, or a dataset entry {dataset: ..., split: ..., columns: ...}
    eval: str | dict[str, Any] | None = None
    mode: str = "fine_tune"
    model: str | None = None
    revision: str | None = None
    from_scratch: dict[str, Any] | None = None
    tokenizer: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    output: str | None = None
    source: str | None = None  # the recipe file, when read from one

    @property
    def output_path(self) -> Path:
        """``output``; without it, a recipe file's run goes under the user's runs folder
        (:func:`runs_root` / the file's name), never beside the file (a source tree), and a
        command-line run to ``./TASK-finetuned``."""
        if self.output:
            return Path(self.output)
        if self.source and self.source.endswith((".yaml", ".yml")):
            return runs_root() / Path(self.source).stem
        return Path(f"{self.task}-{'pretrained' if self.mode == 'pretrain' else 'finetuned'}")


def runs_root() -> Path:
    """Where recipe runs go by default: ``$HUB_RUNS_DIR``, else ``$XDG_CACHE_HOME/hub/runs``
    (``~/.cache/hub/runs``)."""
    if os.environ.get("HUB_RUNS_DIR"):
        return Path(os.environ["HUB_RUNS_DIR"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "hub" / "runs"


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """Read and check a recipe file; ``overrides`` (from flags) replace its values:
    keys ``train``, ``eval``, ``model``, ``revision``, ``output`` and ``training`` (a dict).

    The file is read by :func:`hub._yaml.load_yaml_file`, the reader registry overlays use:
    ``5e-5`` is a number, anchors/aliases and duplicate keys are refused, a UTF-8 BOM is fine,
    and every problem is one line, ``FILE:LINE:COLUMN: problem``."""
    from hub._yaml import YAMLFileError, load_yaml_file

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Training config {path} does not exist.")
    try:
        raw = load_yaml_file(path)
    except YAMLFileError as exc:
        error = ConfigError(exc.one_line())
        error.file, error.line, error.column = exc.file, exc.line, exc.column
        raise error from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of keys (task, data, training, ...), got "
                          f"{type(raw).__name__}.")
    return recipe_from_dict(raw, base=path.parent, source=str(path), overrides=overrides)


def recipe_from_dict(raw: dict[str, Any], *, base: Path = Path("."), source: str = "config",
                     overrides: dict[str, Any] | None = None) -> Recipe:
    overrides = overrides or {}
    check_keys(raw, known=list(_TOP_LEVEL), what=f"key in {source}:")
    data = raw.get("data") or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: 'data' must be a mapping like {{train: FILE, eval: FILE}}.")
    check_keys(data, known=["train", "eval"], what=f"key in {source} data:")
    for key in ("options", "training", "from_scratch"):
        if raw.get(key) is not None and not isinstance(raw[key], dict):
            raise ConfigError(f"{source}: {key!r} must be a mapping, got {raw[key]!r}.")
    for key in ("task", "mode", "model", "revision", "tokenizer", "output"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise ConfigError(f"{source}: {key!r} must be a string, got {raw[key]!r}.")
    if not raw.get("task"):
        raise ConfigError(f"{source}: 'task' is missing (e.g. task: text-classify); `hub list` shows the tasks.")
    mode = raw.get("mode") or "fine_tune"
    if mode not in MODES:
        raise ConfigError(f"{source}: mode must be one of {', '.join(MODES)}, got {mode!r}.")
    if raw.get("from_scratch") is not None and raw.get("model"):
        raise ConfigError(f"{source}: give either 'model' (start from weights) or 'from_scratch' (a fresh model).")

    def local(value: Any) -> Any:  # paths in the file are relative to the file; ~ is the home folder
        if value is None or "://" in value:
            return value
        value = os.path.expanduser(value)
        if os.path.isabs(value):
            return value
        candidate = base / value
        return str(candidate) if candidate.exists() or not Path(value).exists() else value

    def data_entry(name: str, value: Any) -> Any:
        if not isinstance(value, dict):
            return local(value) if isinstance(value, str) or value is None else value
        check_keys(value, known=list(DATASET_KEYS), what=f"key in {source} data.{name}:")
        if not isinstance(value.get("dataset"), str) or not value["dataset"]:
            raise ConfigError(f"{source}: data.{name} needs 'dataset: NAME_OR_PATH' (a Hugging Face dataset name, "
                              "or a local folder or file datasets.load_dataset reads).")
        if value.get("columns") is not None and (not isinstance(value["columns"], dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value["columns"].items())):
            raise ConfigError(f"{source}: data.{name}.columns must map the task's field to the dataset's column, "
                              "e.g. {text: review_body, label: stars}.")
        for key in ("name", "split", "revision"):
            if value.get(key) is not None and not isinstance(value[key], str):
                raise ConfigError(f"{source}: data.{name}.{key} must be a string, got {value[key]!r}.")
        from hub.data.hf_datasets import require_datasets

        require_datasets(f"{source}: data.{name} (dataset: {value['dataset']})")
        return {**value, "base": str(base)}

    for name in ("train", "eval"):
        if data.get(name) is not None and not isinstance(data[name], (str, dict)):
            raise ConfigError(f"{source}: data.{name} must be a file path or a dataset entry "
                              f"{{dataset: NAME, split: ...}}, got {data[name]!r}.")
    training = {**(raw.get("training") or {}), **overrides.get("training", {})}
    TrainingArguments.from_kwargs(**{k: v for k, v in training.items()})  # every key and type, now
    recipe = Recipe(task=raw["task"], mode=mode,
                    train=overrides.get("train") or data_entry("train", data.get("train")),
                    eval=overrides.get("eval") or data_entry("eval", data.get("eval")),
                    model=overrides.get("model") or (local(raw["model"]) if raw.get("model") and
                                                     (base / raw["model"]).exists() else raw.get("model")),
                    revision=overrides.get("revision") or raw.get("revision"),
                    from_scratch=raw.get("from_scratch"), tokenizer=local(raw.get("tokenizer")),
                    options=dict(raw.get("options") or {}), training=training,
                    output=overrides.get("output") or local(raw.get("output")), source=source)
    if not recipe.train:
        raise ConfigError(f"{source}: data.train is missing (the training data file).")
    for name, value in (("data.train", recipe.train), ("data.eval", recipe.eval)):
        if isinstance(value, str) and not Path(value).exists():
            raise ConfigError(f"{source}: {name} {value!r} does not exist.")
    return recipe


def check_options(recipe: Recipe, pipeline_cls: type) -> None:
    """The task's own keywords must be ones its fine_tune/pretrain accepts."""
    method = getattr(pipeline_cls, recipe.mode, None)
    if not callable(method):
        raise ConfigError(f"Task {recipe.task!r} does not support {recipe.mode!r}.")
    params = inspect.signature(method).parameters
    accepted = [name for name, p in params.items() if name not in ("self", "train", "data", "eval")
                and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    open_ended = any(p.kind is p.VAR_KEYWORD for p in params.values())  # the method checks the rest itself
    for key in recipe.options:
        if key in accepted:
            continue
        if key in TrainingArguments.__dataclass_fields__:
            raise ConfigError(f"{key!r} is a training argument: put it under 'training:', not 'options:'.")
        if not open_ended:
            check_keys({key: None}, known=accepted, what=f"option of {recipe.task} {recipe.mode}:")


def recipe_data(recipe: Recipe) -> tuple[Any, Any]:
    """The recipe's ``(train, eval)``: paths as they are; dataset entries loaded with
    ``datasets.load_dataset`` (a DatasetDict's splits chosen as ``fine_tune`` chooses them) and
    read into rows with their ``columns`` mapping, named as the recipe names them."""
    from hub.data.hf_datasets import load_from_spec, training_records

    loaded, specs = {}, {}
    for role, entry in (("train", recipe.train), ("eval", recipe.eval)):
        specs[role] = entry if isinstance(entry, dict) else {}
        loaded[role] = load_from_spec(entry, base=entry.get("base"), source=recipe.source or "config") \
            if isinstance(entry, dict) else entry
    eval_spec = specs["eval"] if recipe.eval is not None else specs["train"]
    return training_records(loaded["train"], loaded["eval"], columns=specs["train"].get("columns"),
                            eval_columns=eval_spec.get("columns"), name=specs["train"].get("dataset"),
                            eval_name=eval_spec.get("dataset"))


def run_recipe(recipe: Recipe, *, resume: bool = False, quiet: bool = False) -> dict[str, Any]:
    """Load (or create) the model, train it, save it on rank 0; returns a summary."""
    import dataclasses

    import hub
    from hub._fs import check_save_target
    from hub.registry import get_registry
    from hub.specs import load_object
    from hub.train.distributed import env_from_torchrun, is_main_process

    entry = get_registry().task(recipe.task)
    if entry.spec is None:
        raise ConfigError(f"No installed plugin provides task {entry.name!r}; `hub plugins` lists them.")
    pipeline_cls = load_object(entry.spec.pipeline)
    if recipe.mode not in pipeline_cls.supported_verbs():  # before any model is loaded or created
        raise pipeline_cls._not_supported(recipe.mode)
    check_options(recipe, pipeline_cls)
    check_save_target(recipe.output_path)  # a bad `output` fails now, not after hours of training
    training = dict(recipe.training)
    training.setdefault("output_dir", str(recipe.output_path) + "-run")
    if resume:
        training["resume_from_checkpoint"] = True
    if quiet:
        training["progress"] = False
    env = env_from_torchrun()
    device = training.get("device")
    if device is None and env.enabled:
        import torch

        device = f"cuda:{env.local_rank}" if torch.cuda.is_available() else "cpu"
    if recipe.from_scratch is not None:
        pipe = hub.create(recipe.task, config=recipe.from_scratch, tokenizer=recipe.tokenizer, device=device,
                          seed=training.get("seed", 0))
    else:
        pipe = hub.load(recipe.task, model=recipe.model, revision=recipe.revision, device=device)
    # fine_tune and pretrain have one signature on every task: (data, eval=None, **training_args)
    train = pipe.pretrain if recipe.mode == "pretrain" else pipe.fine_tune
    train_data, eval_data = recipe_data(recipe)
    result = train(train_data, eval_data, **recipe.options, **training)
    saved = pipe.save(recipe.output_path) if is_main_process() else None
    details = dataclasses.asdict(result) if dataclasses.is_dataclass(result) else {}
    return {"task": pipe.task, "mode": recipe.mode, "base_model": recipe.model or pipe.metadata.get("model_name"),
            "output": str(Path(saved or recipe.output_path).resolve()), "run_dir": training["output_dir"],
            "monitored": f"eval_{training.get('metric_for_best', 'loss')}" if recipe.eval else "train_loss",
            "epochs": details.get("epochs_run"),
            **{k: details.get(k) for k in ("best_metric", "best_epoch", "best_step", "epochs_run", "steps",
                                          "stopped_early", "train_seconds", "resumed_from", "last_checkpoint")},
            "history": details.get("history", [])}
