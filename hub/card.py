"""Model cards: the README.md written beside every saved or pushed model."""

from __future__ import annotations

from typing import Any

import yaml

from hub._version import __version__

# Hub task -> the Hugging Face Hub's pipeline_tag (what the Hub's model pages filter by)
_PIPELINE_TAGS = {"text-classify": "text-classification", "token-classify": "token-classification",
                  "text-generate": "text-generation", "fill-mask": "fill-mask", "text-embed": "feature-extraction",
                  "image-classify": "image-classification", "image-embed": "image-feature-extraction",
                  "speech-recognize": "automatic-speech-recognition", "audio-classify": "audio-classification"}


def render_model_card(metadata: dict[str, Any]) -> str:
    """YAML front matter the Hugging Face Hub understands, then a short description."""
    task = metadata.get("task", "")
    front: dict[str, Any] = {"library_name": "hub-sdk", "tags": ["hub-sdk", task] if task else ["hub-sdk"]}
    if metadata.get("license"):
        front["license"] = metadata["license"]
    if task in _PIPELINE_TAGS:
        front["pipeline_tag"] = _PIPELINE_TAGS[task]
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
