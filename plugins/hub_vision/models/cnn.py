"""Convolutional networks behind Hub's vision pipelines: any timm model (ResNet, ConvNeXt,
EfficientNet, MobileNet, ...) and torchvision's ResNet family, wrapped to the interface the
pipelines use (shared with :class:`hub_vision.models.vit.VisionTransformer`):

* ``forward(pixel_values, labels=None) -> {"features": (B, C) pooled, "logits"?, "loss"?}``
* ``labels``, ``num_classes``, ``in_chans``, ``config`` (with ``"preprocess"``)
* ``reset_classifier(labels)`` (a new, freshly initialised head), ``classifier()`` (the head
  module, the part left trainable by ``freeze_backbone``)
* ``feature_maps(pixel_values, indices=None) -> [(B, C_i, H_i, W_i), ...]`` (timm's
  ``features_only`` levels: stem, then each stage)

Hub config of the ``timm`` architecture::

    {"timm_model": "resnet50", "model_args": {...}, "num_classes": 1000, "labels": [...],
     "preprocess": {"input_size": [3, 224, 224], "mean": [...], ...}}

and of ``torchvision-resnet``: ``{"torchvision_model": "resnet50", "num_classes": ..., ...}``.
Weights are the wrapped model's own state dict under ``model.``, so timm's and
torchvision's checkpoints map 1:1.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hub.backbone.config import ConfigReader
from hub.errors import ConfigError, HubError, ModelLoadError
from hub_vision.models.timm_args import check_model_args
from hub_vision.models.vit import timm_labels_and_preprocess

TORCHVISION_RESNETS = ("resnet", "resnext", "wide_resnet")
#: the keys of the ``timm`` and ``torchvision-resnet`` configs (``hub.create`` refuses others)
TIMM_KEYS = ("timm_model", "model_args", "num_classes", "labels", "preprocess")
TORCHVISION_KEYS = ("torchvision_model", "num_classes", "labels", "preprocess")


def _check_labels(config: Any, what: str = "timm") -> int:
    """num_classes (default: one per label, else 1000) and labels agreeing with it."""
    read = ConfigReader(config, f"{what} config")
    labels = read.labels("labels", None, optional=True)
    num_classes = read.int("num_classes", len(labels) if labels else 1000, minimum=0)
    if labels and len(labels) != num_classes:
        raise ConfigError(f"{what} config: {len(labels)} labels for num_classes={num_classes}; give one label "
                          "per class (or leave num_classes out).")
    if config.get("preprocess") is not None:
        read.mapping("preprocess")
    return num_classes


class _Classifier(nn.Module):
    """What the wrappers share: labels, loss, frozen-backbone batch norm."""

    config: dict[str, Any]
    num_classes: int

    @property
    def labels(self) -> list[str]:
        labels = self.config.get("labels")
        return list(labels) if labels else [f"LABEL_{i}" for i in range(self.num_classes)]

    @property
    def in_chans(self) -> int:
        return int((self.config.get("model_args") or {}).get("in_chans", 3))

    def _outputs(self, features: torch.Tensor, logits: torch.Tensor | None,
                 labels: torch.Tensor | None) -> dict[str, torch.Tensor]:
        out = {"features": features}
        if logits is not None:
            out["logits"] = logits
            if labels is not None:
                out["loss"] = F.cross_entropy(logits.float(), labels)
        return out

    def train(self, mode: bool = True) -> "_Classifier":
        """Batch norms whose parameters are frozen keep their running statistics."""
        super().train(mode)
        if mode:
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.weight is not None \
                        and not module.weight.requires_grad:
                    module.eval()
        return self


class TimmModel(_Classifier):
    """A timm model built by name (``timm.create_model(..., pretrained=False)``)."""

    channels_last = True

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        import timm

        name = config.get("timm_model") if isinstance(config, dict) else None
        if not isinstance(name, str) or not timm.is_model(name):
            raise ConfigError(f"timm config: 'timm_model' must name a timm architecture (timm.list_models()), "
                              f"got {name!r:.60}.")
        self.config = config
        self.num_classes = _check_labels(config)
        args = check_model_args(name, config.get("model_args"), "timm config")
        if "num_classes" in args:
            raise ConfigError("timm config: give num_classes at the top level of the config, not in model_args.")
        try:
            self.model = timm.create_model(name, pretrained=False, num_classes=self.num_classes, **args)
        except HubError:
            raise
        except Exception as exc:  # timm's own checks: bad sizes, wrong types
            raise ConfigError(f"timm config: timm cannot build {name!r} with model_args {args}: "
                              f"{type(exc).__name__}: {exc}") from None

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        hidden = self.model.forward_features(pixel_values)
        features = self.model.forward_head(hidden, pre_logits=True)  # (B, C)
        logits = None
        if self.num_classes > 0:  # in training, timm's own head (so its dropout applies)
            logits = self.model.forward_head(hidden) if self.training else self.get_classifier()(features)
        return self._outputs(features, logits, labels)

    def get_classifier(self) -> nn.Module:
        """timm's own head (``model.get_classifier()``)."""
        return self.model.get_classifier()

    def reset_classifier(self, labels: int | list[str]) -> None:
        """timm's ``reset_classifier`` for ``labels`` (names, or a count: ``LABEL_0 ...``)."""
        from hub.data.labels import head_labels

        labels = head_labels(labels)
        reference = next(self.model.parameters())
        self.model.reset_classifier(len(labels))
        self.model.get_classifier().to(reference.device, reference.dtype)
        self.num_classes = len(labels)
        self.config = {**self.config, "num_classes": len(labels), "labels": list(labels)}

    def feature_maps(self, pixel_values: torch.Tensor, indices: int | list[int] | None = None
                     ) -> list[torch.Tensor]:
        if not hasattr(self.model, "forward_intermediates"):
            raise ModelLoadError(f"timm's {self.config['timm_model']!r} has no forward_intermediates; "
                                 "feature maps are not available for it.")
        return list(self.model.forward_intermediates(pixel_values, indices=indices, intermediates_only=True))


class TorchvisionResNet(_Classifier):
    """torchvision's ResNet / ResNeXt / Wide ResNet (``torchvision.models.get_model``)."""

    channels_last = True

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        import torchvision

        name = config.get("torchvision_model") if isinstance(config, dict) else None
        if not isinstance(name, str) or not name.startswith(TORCHVISION_RESNETS) \
                or name not in torchvision.models.list_models(torchvision.models):
            raise ConfigError(f"'torchvision_model' must name a torchvision ResNet builder "
                              f"(resnet18 ... wide_resnet101_2), got {name!r:.60}.")
        self.config = config
        self.num_classes = _check_labels(config, "torchvision-resnet")
        self.model = torchvision.models.get_model(name, weights=None, num_classes=max(1, self.num_classes))
        if self.num_classes == 0:
            self.model.fc = nn.Identity()

    def _stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        m = self.model
        stem = m.relu(m.bn1(m.conv1(x)))  # (B, 64, H/2, W/2)
        maps = [stem]
        x = m.maxpool(stem)
        for layer in (m.layer1, m.layer2, m.layer3, m.layer4):
            x = layer(x)
            maps.append(x)
        return maps

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        features = torch.flatten(self.model.avgpool(self._stages(pixel_values)[-1]), 1)  # (B, C)
        logits = self.model.fc(features) if self.num_classes > 0 else None
        return self._outputs(features, logits, labels)

    def get_classifier(self) -> nn.Module:
        """torchvision's ``fc`` (an Identity when the model has no classifier)."""
        return self.model.fc

    def reset_classifier(self, labels: int | list[str]) -> None:
        """A new ``fc`` for ``labels`` (names, or a count: ``LABEL_0 ...``), initialised as
        torchvision initialises ``nn.Linear``; the backbone is untouched."""
        from hub.data.labels import head_labels

        labels = head_labels(labels)
        width = self.model.fc.in_features if isinstance(self.model.fc, nn.Linear) else \
            self.model.layer4[-1].conv1.in_channels
        reference = self.model.conv1.weight
        self.model.fc = nn.Linear(width, len(labels)).to(reference.device, reference.dtype)
        self.num_classes = len(labels)
        self.config = {**self.config, "num_classes": len(labels), "labels": list(labels)}

    def feature_maps(self, pixel_values: torch.Tensor, indices: int | list[int] | None = None
                     ) -> list[torch.Tensor]:
        maps = self._stages(pixel_values)
        return [maps[i] for i in _indices(indices, len(maps))]


def _indices(indices: int | list[int] | None, n: int) -> list[int]:
    """timm's convention: None = all, an int k = the last k, a list = those (negative allowed)."""
    if indices is None:
        return list(range(n))
    if isinstance(indices, int):
        return list(range(n - indices, n))
    return [i % n for i in indices]


def build_timm(config: dict[str, Any]) -> TimmModel:
    return TimmModel(config)


def build_torchvision_resnet(config: dict[str, Any]) -> TorchvisionResNet:
    return TorchvisionResNet(config)


# ---------------------------------------------------------------------------------------------
# timm's Hugging Face Hub format -> Hub


def convert_timm(hf: dict[str, Any], state: dict[str, torch.Tensor]
                 ) -> tuple[str, dict[str, Any], dict[str, torch.Tensor]]:
    """timm checkpoint (``config.json`` with ``architecture``, ``model_args``, ``num_classes``,
    ``pretrained_cfg``, ``label_names`` + ``model.safetensors``) -> Hub ``timm``.

    timm Vision Transformers go to the shared backbone (:func:`hub_vision.models.vit.convert_timm_vit`);
    every other timm model is built by timm itself and the weights checked against it.
    """
    from timm.models.vision_transformer import VisionTransformer as TimmViT

    from hub_vision.models.vit import _timm_reference, convert_timm_vit

    name, ref = _timm_reference(hf, state)
    if type(ref) is TimmViT:
        return convert_timm_vit(hf, state)
    expected = ref.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise ModelLoadError(f"the weights do not match timm's {name!r} as config.json describes it: "
                             f"missing {missing[:8]}, unexpected {unexpected[:8]}.")
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise ModelLoadError(f"weight {key!r} has shape {tuple(state[key].shape)} but timm's {name!r} "
                                 f"expects {tuple(tensor.shape)}.")
    model_args = dict(hf.get("model_args") or {})
    model_args.pop("num_classes", None)
    if isinstance(hf.get("global_pool"), str):
        model_args.setdefault("global_pool", hf["global_pool"])
    config: dict[str, Any] = {"timm_model": name.split(".")[0], "model_args": model_args,
                              "num_classes": ref.num_classes}
    config.update(timm_labels_and_preprocess(hf, ref.num_classes))
    return "timm", config, {f"model.{k}": v for k, v in state.items()}
