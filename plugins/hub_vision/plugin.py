"""Registrations of the built-in vision plugin (data only; nothing heavy is imported).

Each TaskSpec is the one place its task's facts live; the default names a model in Hub's
registry.yaml.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hub import hookimpl
from hub.specs import ArchitectureSpec, ConverterSpec, TaskSpec

TIMM_VIT = ConverterSpec(
    name="timm-vit", source="timm", model_types=(), architecture="vit",
    convert="hub_vision.models.vit:convert_timm_vit",
    description="timm VisionTransformer checkpoints in timm's Hugging Face Hub format (config.json with "
                "architecture/model_args/pretrained_cfg): class and register tokens, token/avg/max pooling, "
                "fc_norm, layer scale.")
TRANSFORMERS_CLIP = ConverterSpec(
    name="transformers-clip", source="transformers", model_types=("clip",), architecture="clip",
    convert="hub_vision.models.clip:convert_transformers_clip",
    description="transformers' CLIPModel (openai/clip-vit-*): both towers, projections and logit_scale; "
                "image preprocessing from preprocessor_config.json.")
TIMM_CNN = ConverterSpec(
    name="timm-cnn", source="timm", model_types=(), architecture="timm",
    convert="hub_vision.models.cnn:convert_timm",
    description="timm checkpoints in timm's Hugging Face Hub format (config.json + model.safetensors): "
                "built by timm, preprocessing from pretrained_cfg (timm ViTs go to the shared backbone).")


@hookimpl
def hub_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(name="image-classify", pipeline="hub_vision.pipelines.classify:ImageClassificationPipeline",
                 description="Classify images: the top-k {'label', 'score'} per image.",
                 aliases=("image-classification",), default_model="icon-context-resnet",
                 modality="vision", pipeline_tag="image-classification"),
        TaskSpec(name="image-embed", pipeline="hub_vision.pipelines.embed:ImageEmbeddingPipeline",
                 description="Image embeddings (pooled features); feature maps for downstream heads.",
                 aliases=("image-feature-extraction",), default_model="icon-context-features",
                 modality="vision", pipeline_tag="image-feature-extraction"),
        TaskSpec(name="zero-shot-image-classify",
                 pipeline="hub_vision.pipelines.zero_shot:ZeroShotImageClassificationPipeline",
                 description="Classify images into labels chosen at call time (candidate_labels=[...]) with an "
                             "image-text model (CLIP).",
                 aliases=("zero-shot-image-classification",), default_model="clip-vit-base-patch32",
                 modality="vision", pipeline_tag="zero-shot-image-classification"),
    ]


@hookimpl
def hub_architectures() -> list[ArchitectureSpec]:
    return [
        ArchitectureSpec("vit", "hub_vision.models.vit:build_vit",
                         "Vision Transformer (patch embedding + pre-norm shared backbone + pooled "
                         "linear classifier; num_classes=0 gives features)."),
        ArchitectureSpec("timm", "hub_vision.models.cnn:build_timm",
                         "Any timm model by name (ResNet, ConvNeXt, EfficientNet, ...), timm's own code."),
        ArchitectureSpec("torchvision-resnet", "hub_vision.models.cnn:build_torchvision_resnet",
                         "torchvision's ResNet, ResNeXt and Wide ResNet builders."),
        ArchitectureSpec("clip", "hub_vision.models.clip:build_clip",
                         "CLIP: a ViT image tower and a causal text tower on the shared backbone, projected "
                         "into one embedding space, with a learnable temperature."),
    ]


@hookimpl
def hub_converters() -> list[ConverterSpec]:
    """timm's configs have no ``model_type``: :func:`hub_select_converter` picks those two;
    transformers' CLIP checkpoints say ``model_type: clip``."""
    return [TIMM_VIT, TIMM_CNN, TRANSFORMERS_CLIP]


@hookimpl
def hub_select_converter(config: dict[str, Any], files: tuple[str, ...]) -> ConverterSpec | None:
    """timm's Hugging Face layout (``timm.models.save_for_hf`` / ``push_to_hf_hub``): a config.json
    with ``architecture`` (the timm model name, e.g. ``"vit_base_patch16_224.augreg_in21k"``) and a
    ``pretrained_cfg`` object, and no ``model_type``. ``vit_*`` models go to the ViT converter,
    every other name to timm itself (which says when it has no such model). The family, the
    name up to its first underscore, is the ``converted_from`` model type (``"timm:resnet10t"``)."""
    architecture = config.get("architecture")
    if "model_type" in config or not isinstance(architecture, str) or \
            not isinstance(config.get("pretrained_cfg"), dict):
        return None
    family = architecture.split(".")[0].split("_")[0]
    if not family:
        return None
    return dataclasses.replace(TIMM_VIT if family == "vit" else TIMM_CNN, model_types=(family,))
