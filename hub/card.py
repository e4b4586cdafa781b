"""Model cards: the README.md written beside every saved or pushed model."""

from __future__ import annotations

from typing import Any

import yaml

from hub._version import __version__
from hub.errors import UnknownNameError


def pipeline_tag(task: str) -> str | None:
    """The Hugging Face Hub ``pipeline_tag`` (what its model pages filter by) of a Hub task.

    Read from the task's :class:`~hub.specs.TaskSpec` through the registry, so a task's tag
    is declared once, by its plugin, for built-in and third-party tasks alike. ``None`` for a
    task that declares none or that no plugin registers (a pipeline used without one).
    """
    from hub.registry import get_registry

    if not task:
        return None
    try:
        return get_registry().task(task).pipeline_tag
    except UnknownNameError:
        return None


def render_model_card(metadata: dict[str, Any]) -> str:
    """YAML front matter the Hugging Face Hub understands, then a short description.

    ``metadata`` holds ``task`` (its ``pipeline_tag`` comes from the task's TaskSpec unless
    ``metadata["pipeline_tag"]`` gives one), ``model_name``, ``license``, ``labels``,
    ``base_model``, ``metrics``, ``training`` and ``evaluation`` (the last two written by
    :mod:`hub.train.provenance` after ``fine_tune`` / ``pretrain`` / ``evaluate``); all optional.
    A trained model's card says, as transformers' Trainer card does, what it was fine-tuned
    from, on which data (file name, or dataset name, split and rows), with which training
    arguments, and its evaluation figures (the best evaluation and the per-evaluation table).
    """
    task = metadata.get("task", "")
    front: dict[str, Any] = {"library_name": "hub-sdk", "tags": ["hub-sdk", task] if task else ["hub-sdk"]}
    if metadata.get("license"):
        front["license"] = metadata["license"]
    tag = metadata.get("pipeline_tag") or pipeline_tag(task)
    if tag:
        front["pipeline_tag"] = tag
    base = metadata.get("base_model")
    if isinstance(base, str) and _looks_like_repo_id(base):  # the Hub validates base_model: repo ids only
        front["base_model"] = base
    names = [d.get("dataset") for d in _data_of(metadata.get("training") or {})]
    hub_names = sorted({n for n in names if isinstance(n, str) and _looks_like_repo_id(n)})
    if hub_names:
        front["datasets"] = hub_names
    name = metadata.get("model_name") or "model"
    lines = ["---", yaml.safe_dump(front, sort_keys=True).rstrip(), "---", "", f"# {name}", "",
             f"A `{task}` model saved with Hub {__version__}.", "", "```python", "import hub",
             f'pipe = hub.load("{task}", model="<this folder or repo id>")', "```", ""]
    if metadata.get("labels"):
        lines += ["Labels: " + ", ".join(f"`{label}`" for label in metadata["labels"]), ""]
    training = metadata.get("training") or {}
    if metadata.get("base_model"):
        on = f" on {describe_data(training['data'])}" if training.get("data") else ""
        lines += [f"Fine-tuned from `{metadata['base_model']}`{on}.", ""]
    elif training.get("data"):
        verb = "Pretrained" if training.get("verb") == "pretrain" else "Trained"
        lines += [f"{verb} from scratch on {describe_data(training['data'])}.", ""]
    if metadata.get("metrics"):
        lines += ["## Evaluation", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {v} |" for k, v in metadata["metrics"].items()] + [""]
    if training:
        lines += _training_section(training)
    evaluation = metadata.get("evaluation") or {}
    if evaluation.get("metrics"):
        on = f" on {describe_data(evaluation['data'])}" if evaluation.get("data") else ""
        lines += [f"## Evaluation with `evaluate()`{on}", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {v} |" for k, v in evaluation["metrics"].items()] + [""]
    lines += [_embedded(metadata), ""]
    return "\n".join(lines)


#: the HTML comment (invisible where the card is rendered) that carries the card's data as JSON
CARD_DATA_MARK = "hub-card-data:"
#: what a reloaded card restores: lineage and figures, not what the model folder itself says
#: (labels come from the config, the task from the loader)
RESTORED_KEYS = ("base_model", "training", "evaluation", "metrics", "license", "model_name")


def _embedded(metadata: dict[str, Any]) -> str:
    """The card's own data as one JSON line in an HTML comment, so that :func:`read_card_data`
    gives it back after ``hub.load(folder)`` and a later ``save`` writes the same card (the
    rendered Markdown alone loses types and the training arguments' exact values)."""
    import json

    data = {k: metadata[k] for k in RESTORED_KEYS if metadata.get(k) is not None}
    # '<' and '>' only occur inside JSON strings, where their \u escapes mean the same: the
    # comment cannot be closed early by a value holding '-->'
    text = json.dumps(data, default=str).replace("<", "\\u003c").replace(">", "\\u003e")
    return f"<!-- {CARD_DATA_MARK} {text} -->"


def read_card_data(folder: Any) -> dict[str, Any]:
    """The data a card written by :func:`render_model_card` carries (``{}`` for a folder
    without README.md, a card from elsewhere, or an unreadable one).

    ``hub.load`` merges it under what the loader knows, so a model fine-tuned from another
    keeps its base model, data, training arguments and figures through ``load`` + ``save``.

    Args:
        folder: a model folder.

    Returns:
        ``{key: value}`` for the keys of :data:`RESTORED_KEYS` the card holds.
    """
    import json
    import re
    from pathlib import Path

    path = Path(folder) / "README.md"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    found = re.findall(rf"<!-- {re.escape(CARD_DATA_MARK)} (.*?) -->", text)
    if not found:
        return {}
    try:
        data = json.loads(found[-1])
    except ValueError:
        return {}
    return {k: data[k] for k in RESTORED_KEYS if isinstance(data, dict) and k in data}


def describe_data(data: Any) -> str:
    """One phrase for a data description of :func:`hub.data.hf_datasets.describe_data`."""
    if not isinstance(data, dict):
        return str(data)
    if data.get("dataset") is not None or "split" in data or "splits" in data:
        text = f"the dataset `{data.get('dataset') or '(unnamed)'}`"
        if data.get("split"):
            text += f", split `{data['split']}`"
        if data.get("splits"):
            text += f", splits {', '.join(f'`{s}`' for s in data['splits'])}"
        if data.get("rows") is not None:
            text += f" ({data['rows']:,} rows)"
        return text
    if data.get("file"):
        return f"`{data['file']}`"
    if data.get("list") is not None:
        return f"a list of {data['list']:,} examples"
    return f"a {data.get('type', 'data')} object"


def _training_section(training: dict[str, Any]) -> list[str]:
    import torch  # a trained model's card: torch is loaded already

    verb = "pretraining" if training.get("verb") == "pretrain" else "fine-tuning"
    lines = ["## Training", "", f"Trained with Hub's `{training.get('verb', 'fine_tune')}` ({verb}).", ""]
    for key, what in (("data", "Training data"), ("eval_data", "Evaluation data")):
        if training.get(key):
            lines.append(f"- {what}: {describe_data(training[key])}")
    for key, what in (("train_examples", "training examples"), ("eval_examples", "evaluation examples"),
                      ("steps", "optimizer steps"), ("epochs_run", "epochs")):
        if training.get(key) is not None:
            lines.append(f"- {what}: {training[key]:,}")
    if training.get("best_step") is not None:
        lines.append(f"- best evaluation at step {training['best_step']} (epoch {training.get('best_epoch')})")
    lines.append("")
    results = training.get("results") or {}
    if results:
        lines += ["### Results (best evaluation)", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {v} |" for k, v in results.items()] + [""]
    arguments = training.get("arguments") or {}
    if arguments:
        lines += ["### Training arguments", "", "`hub.train.TrainingArguments` (optimizer: AdamW):", ""]
        lines += [f"- {k}: {v}" for k, v in sorted(arguments.items())] + [""]
    history = training.get("history") or []
    if history:
        keys = ["epoch", "step"] + sorted({k for r in history for k in r} - {"epoch", "step"})
        lines += ["### Evaluations during training", "", "| " + " | ".join(keys) + " |",
                  "| " + " | ".join("---" for _ in keys) + " |"]
        lines += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in history] + [""]
    lines += ["### Framework versions", "", f"- Hub {__version__}", f"- PyTorch {torch.__version__}", ""]
    return lines


def _data_of(training: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in (training.get("data"), training.get("eval_data")) if isinstance(d, dict)]


def _looks_like_repo_id(name: str) -> bool:
    """``org/name`` as the Hugging Face Hub spells a repo id (not a local path)."""
    import re

    return bool(re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", name)) and not name.startswith((".", "/"))
