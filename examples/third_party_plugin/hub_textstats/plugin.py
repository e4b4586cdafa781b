"""The plugin module named by the ``hub.plugins`` entry point.

Hooks return *data* only. The pipeline is named by a ``"module:attr"`` string, so this
module imports neither torch nor the pipeline: ``hub list`` and ``hub --help`` stay
instant however many plugins are installed.
"""

from __future__ import annotations

from hub import hookimpl
from hub.specs import ModelEntry, TaskSpec

TASK = "text-stats"
DEFAULT_MODEL = "textstats-basic"


@hookimpl
def hub_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name=TASK,
            pipeline="hub_textstats.pipeline:TextStatsPipeline",
            description="Count words, characters and sentences of texts (no weights needed).",
            aliases=("text-statistics",),
            default_model=DEFAULT_MODEL,  # a model this plugin's hub_models hook lists
            modality="text",  # informational; Hub assumes none
            pipeline_tag=None,  # the Hugging Face Hub has no tag for text statistics
        ),
    ]


@hookimpl
def hub_models() -> list[ModelEntry]:
    # Even a weight-free task loads from a folder: here a config.json with the
    # counting options, shipped inside this package (``package:`` sources).
    return [
        ModelEntry(
            name=DEFAULT_MODEL,
            task=TASK,
            source="package:hub_textstats/model",
            license="apache-2.0",
            description="Regex word and sentence splitting; lower-cased top words.",
        ),
    ]
