"""Well-known task names from the Hugging Face Hub, so a name error can say what a name *is*.

``hub.load("summarization")`` with no plugin providing summarization should say exactly
that, not suggest the nearest installed spelling (difflib rates ``recommendation`` 0.52
similar to ``summarization``). This table is data, not a list of what Hub supports: a
plugin provides a task by registering a :class:`~hub.specs.TaskSpec` (and usually takes the
Hugging Face name as an alias and as its ``pipeline_tag``).

The names are the Hugging Face Hub's ``pipeline_tag`` values (huggingface.co/tasks) and
transformers' pipeline names; the descriptions are one phrase each, for error messages.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

#: Hugging Face pipeline task name -> what it does (one phrase, for messages)
HF_TASKS: dict[str, str] = {
    # text
    "text-classification": "label a text",
    "sentiment-analysis": "label a text's sentiment (transformers' alias of text-classification)",
    "token-classification": "label each token of a text",
    "ner": "tag named entities (transformers' alias of token-classification)",
    "fill-mask": "predict a masked token",
    "feature-extraction": "embed a text",
    "sentence-similarity": "compare sentences by their embeddings",
    "text-generation": "continue a prompt",
    "text2text-generation": "rewrite a text with an encoder-decoder model",
    "summarization": "condense a text",
    "translation": "translate a text",
    "question-answering": "extract an answer span from a context",
    "table-question-answering": "answer a question about a table",
    "zero-shot-classification": "label a text with candidate labels given at call time",
    "multiple-choice": "pick one of several answers",
    "text-ranking": "rank passages for a query",
    "text-retrieval": "retrieve documents for a query",
    # vision
    "image-classification": "label an image",
    "image-feature-extraction": "embed an image",
    "object-detection": "find and label objects in an image",
    "image-segmentation": "label an image's pixels",
    "depth-estimation": "estimate per-pixel depth",
    "keypoint-detection": "find keypoints in an image",
    "mask-generation": "generate segmentation masks (e.g. SAM)",
    "zero-shot-image-classification": "label an image with candidate labels given at call time",
    "zero-shot-object-detection": "find objects named at call time",
    "image-to-image": "transform an image",
    "image-to-text": "caption an image",
    "image-text-to-text": "answer or chat about images",
    "visual-question-answering": "answer a question about an image",
    "document-question-answering": "answer a question about a document image",
    "text-to-image": "generate an image from text",
    "unconditional-image-generation": "generate images",
    "video-classification": "label a video",
    "text-to-video": "generate a video from text",
    # audio
    "automatic-speech-recognition": "transcribe speech",
    "audio-classification": "label an audio clip",
    "zero-shot-audio-classification": "label audio with candidate labels given at call time",
    "text-to-speech": "synthesise speech from text",
    "text-to-audio": "generate audio from text",
    "audio-to-audio": "transform audio (enhancement, separation)",
    "voice-activity-detection": "find where speech is",
    # other
    "tabular-classification": "label a table row",
    "tabular-regression": "predict a number from a table row",
    "time-series-forecasting": "forecast a time series",
    "reinforcement-learning": "act in an environment",
    "graph-ml": "learn on graphs",
    "any-to-any": "map any modality to any other",
}


def hf_task_description(name: str) -> str | None:
    """What the well-known task ``name`` does, or ``None`` when it is not one."""
    return HF_TASKS.get(name)


#: how similar (difflib ratio) an installed name must be to a well-known task name to be
#: offered as "did you mean": a real task name is not a typo, and distinct tasks look alike
#: (summarization/recommendation 0.52, video-/image-classification 0.85), so only
#: near-identical spellings count.
CLOSE_CUTOFF = 0.9


def close_installed(name: str, installed: Iterable[str], cutoff: float = CLOSE_CUTOFF) -> list[str]:
    """Installed task names and aliases that are near-identical spellings of ``name``."""
    return difflib.get_close_matches(name, sorted(set(installed)), n=3, cutoff=cutoff)
