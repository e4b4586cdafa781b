"""Registrations of the built-in vision plugin (data only; nothing heavy is imported)."""

from __future__ import annotations

from hub import hookimpl
from hub.specs import ArchitectureSpec, ConverterSpec


@hookimpl
def hub_architectures() -> list[ArchitectureSpec]:
    return [
        ArchitectureSpec("vit", "hub_vision.vit:build_vit",
                         "Vision Transformer (patch embedding + pre-norm shared backbone + pooled "
                         "linear classifier; num_classes=0 gives features)."),
    ]


@hookimpl
def hub_converters() -> list[ConverterSpec]:
    return [
        ConverterSpec(name="timm-vit", source="timm", model_types=("vit",), architecture="vit",
                      convert="hub_vision.vit:convert_timm_vit",
                      description="timm VisionTransformer checkpoints in timm's Hugging Face Hub format "
                                  "(config.json with architecture/model_args/pretrained_cfg): class "
                                  "and register tokens, token/avg/max pooling, fc_norm, layer scale."),
    ]
