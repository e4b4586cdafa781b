"""Registrations of the built-in vision plugin (data only; nothing heavy is imported).

Each TaskSpec is the one place its task's facts live; the default names a model in Hub's
registry.yaml.
"""

from __future__ import annotations

from pathlib import Path

from hub import hookimpl
from hub.specs import ArchitectureSpec, ConverterSpec, TaskSpec


def timm_families() -> tuple[str, ...]:
    """timm's model families (architecture names up to the first underscore, the model type
    Hub reads from a timm config.json), listed in timm_families.txt; "vit" is the ViT's."""
    text = (Path(__file__).parent / "timm_families.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


@hookimpl
def hub_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(name="image-classify", pipeline="hub_vision.classify:ImageClassificationPipeline",
                 description="Classify images: the top-k {'label', 'score'} per image.",
                 aliases=("image-classification",), default_model="icon-context-resnet",
                 modality="vision", pipeline_tag="image-classification"),
        TaskSpec(name="image-embed", pipeline="hub_vision.embed:ImageEmbeddingPipeline",
                 description="Image embeddings (pooled features); feature maps for downstream heads.",
                 aliases=("image-feature-extraction",), default_model="vit-base-patch16-224-features",
                 modality="vision", pipeline_tag="image-feature-extraction"),
    ]


@hookimpl
def hub_architectures() -> list[ArchitectureSpec]:
    return [
        ArchitectureSpec("vit", "hub_vision.vit:build_vit",
                         "Vision Transformer (patch embedding + pre-norm shared backbone + pooled "
                         "linear classifier; num_classes=0 gives features)."),
        ArchitectureSpec("timm", "hub_vision.cnn:build_timm",
                         "Any timm model by name (ResNet, ConvNeXt, EfficientNet, ...), timm's own code."),
        ArchitectureSpec("torchvision-resnet", "hub_vision.cnn:build_torchvision_resnet",
                         "torchvision's ResNet, ResNeXt and Wide ResNet builders."),
    ]


@hookimpl
def hub_converters() -> list[ConverterSpec]:
    return [
        ConverterSpec(name="timm-vit", source="timm", model_types=("vit",), architecture="vit",
                      convert="hub_vision.vit:convert_timm_vit",
                      description="timm VisionTransformer checkpoints in timm's Hugging Face Hub format "
                                  "(config.json with architecture/model_args/pretrained_cfg): class "
                                  "and register tokens, token/avg/max pooling, fc_norm, layer scale."),
        ConverterSpec(name="timm-cnn", source="timm", model_types=timm_families(), architecture="timm",
                      convert="hub_vision.cnn:convert_timm",
                      description="timm CNN checkpoints in timm's Hugging Face Hub format (config.json + "
                                  "model.safetensors): built by timm, preprocessing from pretrained_cfg."),
    ]
