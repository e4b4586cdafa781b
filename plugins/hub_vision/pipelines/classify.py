"""``image-classify``: images in, the top-k ``{"label", "score"}`` out (as transformers'
image-classification pipeline returns them: a list per image, best first)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hub.errors import InputTypeError, InvalidInputError, ModelLoadError, OfflineModelNotCachedError
from hub.results import ResultList, ranked_labels
from hub_vision.pipelines.base import VisionPipeline


class ImageClassificationPipeline(VisionPipeline):
    task = "image-classify"

    @classmethod
    def _model_from_loaded(cls, loaded: Any, metadata: dict[str, Any]) -> nn.Module:
        """A vision classifier; an image-text model (CLIP) has no fixed labels: zero-shot-image-classify."""
        if loaded.architecture == "clip":
            from hub.modeling import wrong_model

            raise wrong_model(loaded, cls.task, "an image classifier with its own labels (a CLIP model scores "
                                                "labels given at call time: use zero-shot-image-classify)")
        return super()._model_from_loaded(loaded, metadata)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(self.pixels(batch))["logits"].float()  # (B, num_classes)

    def postprocess(self, outputs: list[torch.Tensor], features: list[dict[str, Any]], *,
                    top_k: int | None = 5) -> ResultList:
        return ranked_labels(outputs[0].softmax(-1), self.labels, top_k)

    @classmethod
    def from_torchvision(cls, model: nn.Module | str, weights: Any = None, *, labels: list[str] | None = None,
                         device: Any = None, dtype: Any = None) -> "ImageClassificationPipeline":
        """A pipeline around a torchvision ResNet: a model object (its weights are copied) or a
        builder name (``"resnet50"``) with ``weights`` (a torchvision ``Weights`` enum member,
        whose transforms and categories become the pipeline's preprocessing and labels)."""
        from hub.api import _torch_device, _torch_dtype
        from hub_vision.models.cnn import TorchvisionResNet

        torch_device, torch_dtype = _torch_device(device), _torch_dtype(dtype)  # before any download
        if isinstance(model, str):
            name = _torchvision_builder(model)
            weights = _torchvision_weights(name, weights)
            model = _get_torchvision_model(name, weights)
        elif isinstance(model, nn.Module):
            name = _torchvision_name(model)
            weights = _torchvision_weights(name, weights)
        else:
            raise InputTypeError(f"from_torchvision takes a torchvision ResNet (a model object) or a builder name "
                                 f"such as 'resnet50', got {type(model).__name__} {model!r:.60}.")
        num_classes = model.fc.out_features
        categories = list(getattr(weights, "meta", {}).get("categories") or []) if weights is not None else []
        labels = list(labels) if labels is not None else (categories if len(categories) == num_classes else None)
        config: dict[str, Any] = {"torchvision_model": name, "num_classes": num_classes,
                                  "preprocess": _torchvision_preprocess(weights)}
        if labels:
            config["labels"] = labels
        wrapper = TorchvisionResNet(config)
        wrapper.model.load_state_dict(model.state_dict())
        metadata = {"task": cls.task, "architecture": "torchvision-resnet", "source": f"torchvision:{name}",
                    "labels": wrapper.labels}
        return cls(wrapper, device=torch_device, dtype=torch_dtype, metadata=metadata)


def _torchvision_builder(name: str) -> str:
    import torchvision

    from hub_vision.models.cnn import TORCHVISION_RESNETS

    known = sorted(n for n in torchvision.models.list_models(torchvision.models) if n.startswith(TORCHVISION_RESNETS))
    if name not in known:
        raise InvalidInputError(f"from_torchvision: {name!r} is not a torchvision ResNet builder; known: "
                                f"{', '.join(known)}.")
    return name


def _torchvision_weights(name: str, weights: Any) -> Any:
    """``weights`` as the builder's Weights enum member (a member, or its name such as
    ``"DEFAULT"`` / ``"IMAGENET1K_V2"``), or None."""
    import torchvision

    if weights is None:
        return None
    enum = torchvision.models.get_model_weights(name)
    try:
        return enum.verify(weights)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise InvalidInputError(f"from_torchvision: weights {weights!r:.60} are not weights of {name!r}; use one of "
                                f"{', '.join(['DEFAULT', *enum.__members__])} (or {enum.__name__}.<member>), "
                                "or None for a randomly initialised model.") from None


def _get_torchvision_model(name: str, weights: Any) -> nn.Module:
    """torchvision's builder, its weights from torch's cache (downloaded there when online);
    offline and not cached is an error saying where the file goes, never a raw URLError."""
    import os
    import pickle
    import urllib.error
    from pathlib import Path
    from urllib.parse import urlparse

    import torchvision

    if weights is None:
        return torchvision.models.get_model(name, weights=None)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)
    try:
        return torchvision.models.get_model(name, weights=weights)
    except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise OfflineModelNotCachedError(
            f"torchvision's {weights} weights for {name!r} are not in torch's cache ({cached}) and cannot be "
            f"downloaded ({reason}). On a machine with network access, run python -c \"import torchvision; "
            f"torchvision.models.get_model('{name}', weights='{weights.name}')\" (or download {weights.url}) "
            f"and copy the file to {cached} (torch.hub.get_dir()/checkpoints; $TORCH_HOME moves it).") from None
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError) as exc:  # a truncated or damaged cached file
        if not cached.is_file():
            raise
        raise ModelLoadError(f"torchvision's cached weights {cached} cannot be read ({str(exc).splitlines()[0]:.160}); "
                             "the file is damaged: delete it and load again to download it afresh.") from None


def _torchvision_name(model: nn.Module) -> str:
    import torchvision

    from hub_vision.models.cnn import TORCHVISION_RESNETS

    if not isinstance(model, torchvision.models.ResNet):
        raise InvalidInputError(f"from_torchvision takes a torchvision ResNet, got {type(model).__name__}.")
    layers = [len(getattr(model, f"layer{i}")) for i in range(1, 5)]
    block = type(model.layer1[0]).__name__
    groups, width = model.layer1[0].conv2.groups if block == "Bottleneck" else 1, model.layer1[0].conv1.out_channels
    for name in torchvision.models.list_models(torchvision.models):
        if not name.startswith(TORCHVISION_RESNETS):
            continue
        with torch.device("meta"):
            candidate = torchvision.models.get_model(name, weights=None)
        first = candidate.layer1[0]
        if ([len(getattr(candidate, f"layer{i}")) for i in range(1, 5)] == layers
                and type(first).__name__ == block and first.conv1.out_channels == width
                and (first.conv2.groups if block == "Bottleneck" else 1) == groups):
            return name
    raise InvalidInputError("this torchvision ResNet matches none of torchvision's ResNet builders.")


def _torchvision_preprocess(weights: Any) -> dict[str, Any]:
    """torchvision's ImageClassification transform as timm's data config (resize the short
    side to resize_size, centre-crop crop_size: crop_pct = crop / resize)."""
    if weights is None:
        return {"input_size": [3, 224, 224], "crop_pct": 224 / 256, "interpolation": "bilinear",
                "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    t = weights.transforms()
    crop, resize = t.crop_size[0], t.resize_size[0]
    return {"input_size": [3, crop, crop], "crop_pct": crop / resize, "crop_mode": "center",
            "interpolation": t.interpolation.value, "mean": list(t.mean), "std": list(t.std)}
