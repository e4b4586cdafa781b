"""Preprocessing that travels with the weights: timm's data config and transforms.

A model's config carries ``"preprocess"`` (timm's ``pretrained_cfg`` keys: ``input_size``,
``interpolation``, ``crop_pct``, ``crop_mode``, ``mean``, ``std``), so a pipeline never guesses
how its model was trained. Evaluation and training transforms are timm's own
(``resolve_data_config`` + ``create_transform``): resize + centre crop + normalise at
inference, RandomResizedCrop + flip (+ whatever ``augment`` asks for) when training.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PREPROCESS_KEYS = ("input_size", "interpolation", "crop_pct", "crop_mode", "mean", "std")
IMAGENET = {"interpolation": "bicubic", "crop_pct": 0.875, "crop_mode": "center",
            "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def data_config(preprocess: dict[str, Any] | None, *, in_chans: int = 3,
                img_size: int | tuple[int, int] | list[int] | None = None) -> dict[str, Any]:
    """timm's resolved data config from a Hub ``preprocess`` dict (defaults: ImageNet, 224)."""
    from timm.data import resolve_data_config

    cfg = {**IMAGENET, **{k: v for k, v in (preprocess or {}).items() if k in PREPROCESS_KEYS}}
    if "input_size" not in cfg:
        size = img_size if img_size is not None else 224
        h, w = (size, size) if isinstance(size, int) else size
        cfg["input_size"] = (in_chans, int(h), int(w))
    cfg["input_size"] = tuple(int(x) for x in cfg["input_size"])
    for key in ("mean", "std"):
        values = tuple(float(x) for x in cfg[key])
        cfg[key] = values[:1] if in_chans == 1 and len(values) == 3 and len(set(values)) == 1 else values
    resolved = resolve_data_config(pretrained_cfg=cfg)
    resolved["crop_mode"] = cfg.get("crop_mode", "center")
    return resolved


def as_preprocess(resolved: dict[str, Any]) -> dict[str, Any]:
    """A resolved data config -> the JSON-friendly dict stored in config.json."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in resolved.items() if k in PREPROCESS_KEYS}


def eval_transform(resolved: dict[str, Any]) -> Callable[[Any], Any]:
    """PIL image -> normalised (C, H, W) float tensor, as timm evaluates."""
    from timm.data import create_transform

    return create_transform(**resolved, is_training=False)


def train_transform(resolved: dict[str, Any], augment: dict[str, Any] | None = None) -> Callable[[Any], Any]:
    """timm's training transform (RandomResizedCrop, horizontal flip, colour jitter, ...).

    ``augment`` passes options to ``timm.data.create_transform`` (``scale``, ``ratio``,
    ``hflip``, ``vflip``, ``color_jitter``, ``auto_augment``, ``re_prob``, ...).
    """
    from timm.data import create_transform

    options = {k: v for k, v in resolved.items() if k != "crop_pct" and k != "crop_mode"}
    return create_transform(**options, is_training=True, **(augment or {}))
