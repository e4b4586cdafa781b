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
    ``base_model`` and ``metrics``; all optional.
    """
    task = metadata.get("task", "")
    front: dict[str, Any] = {"library_name": "hub-sdk", "tags": ["hub-sdk", task] if task else ["hub-sdk"]}
    if metadata.get("license"):
        front["license"] = metadata["license"]
    tag = metadata.get("pipeline_tag") or pipeline_tag(task)
    if tag:
        front["pipeline_tag"] = tag
    name = metadata.get("model_name") or "model"
    lines = ["---", yaml.safe_dump(front, sort_keys=True).rstrip(), "---", "", f"# {name}", "",
             f"A `{task}` model saved with Hub {__version__}.", "", "```python", "import hub",
             f'pipe = hub.load("{task}", model="<this folder or repo id>")', "```", ""]
    if metadata.get("labels"):
        lines += ["Labels: " + ", ".join(f"`{label}`" for label in metadata["labels"]), ""]
    if metadata.get("base_model"):
        lines += [f"Fine-tuned from `{metadata['base_model']}`.", ""]
    if metadata.get("metrics"):
        lines += ["## Evaluation", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {v} |" for k, v in metadata["metrics"].items()] + [""]
    return "\n".join(lines)
