"""Registrations of the built-in text plugin (data only; nothing heavy is imported)."""

from __future__ import annotations

from hub import hookimpl
from hub.specs import ArchitectureSpec, ConverterSpec, TaskSpec


@hookimpl
def hub_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name="text-classify",
            pipeline="hub_text.classify:TextClassificationPipeline",
            description="Classify texts (sentiment by default): {'label', 'score'} per text.",
            aliases=("text-classification",),
        ),
    ]


@hookimpl
def hub_architectures() -> list[ArchitectureSpec]:
    return [
        ArchitectureSpec("bert", "hub_text.bert:build_encoder",
                         "BERT-family encoder (post-norm) on the shared backbone."),
        ArchitectureSpec("bert-classifier", "hub_text.bert:build_classifier",
                         "BERT encoder + pooler + linear classification head."),
    ]


@hookimpl
def hub_converters() -> list[ConverterSpec]:
    return [
        ConverterSpec(name="transformers-bert", source="transformers", model_types=("bert",),
                      architecture="bert-classifier", convert="hub_text.convert:convert_bert",
                      description="transformers BertModel / BertForSequenceClassification."),
    ]
