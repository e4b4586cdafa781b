"""What the vision pipelines share: loading any vision model folder, turning images into
batches with the model's own preprocessing, fast batched inference, saving, fine-tuning
and from-scratch models.

Models (``vit`` on the shared backbone, ``timm`` for timm's CNNs, ``torchvision-resnet``)
share one interface (see :mod:`hub_vision.models.cnn`). Inference runs CNNs in channels-last
memory format (oneDNN's and cuDNN's fast layout for convolutions) and in the pipeline's
dtype (``dtype="bfloat16"``: bf16 weights on a CPU, bf16 autocast on CUDA).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import torch
from torch import nn

from hub.errors import ConfigError, InputTypeError, InvalidInputError, ModelLoadError
from hub.modeling import LoadedModel, wrong_model
from hub.pipeline import Pipeline, default_device, shift_input_index
from hub.validate import check_bool, check_int
from hub_vision.images import load_images, max_image_pixels, to_pil
from hub_vision.preprocess import (
    as_preprocess,
    data_config,
    eval_transform,
    train_transform,
)

logger = logging.getLogger(__name__)
#: lists longer than this many batches are preprocessed chunk by chunk (bounded memory)
CHUNK_BATCHES = 8


def architecture_of(model: nn.Module) -> str:
    from hub_vision.models.clip import ClipModel
    from hub_vision.models.cnn import TimmModel, TorchvisionResNet
    from hub_vision.models.vit import VisionTransformer

    for cls, name in ((VisionTransformer, "vit"), (TimmModel, "timm"), (TorchvisionResNet, "torchvision-resnet"),
                      (ClipModel, "clip")):
        if isinstance(model, cls):
            return name
    raise ModelLoadError(f"{type(model).__name__} is not a Hub vision model (vit, timm, torchvision-resnet, clip).")


def scratch_config(config: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """``hub.create`` config -> (architecture, model config). ``timm_model`` / ``torchvision_model``
    pick a CNN; otherwise a ViT, whose backbone sizes may be given at the top level
    (``num_layers``, ``hidden_size``, ``num_heads``, ``intermediate_size``)."""
    from hub.backbone.config import ConfigReader
    from hub_vision.models.cnn import TIMM_KEYS, TORCHVISION_KEYS
    from hub_vision.models.vit import VIT_KEYS

    read = ConfigReader({} if config is None else config, "image model config")  # unknown keys: an error
    config = dict(config or {})
    if "timm_model" in config:
        read.known(TIMM_KEYS)
        return "timm", config
    if "torchvision_model" in config:
        read.known(TORCHVISION_KEYS)
        return "torchvision-resnet", config
    top_level = ("num_layers", "hidden_size", "num_heads", "intermediate_size")
    read.known({*VIT_KEYS, *top_level})
    backbone = read.mapping("backbone", {})
    config.pop("backbone", None)
    for key in top_level:
        if key in config:
            backbone[key] = config.pop(key)
    hidden = ConfigReader(backbone, "vit config", "backbone.").int("hidden_size", 192)
    backbone.setdefault("hidden_size", hidden)
    backbone.setdefault("num_layers", 6)
    backbone.setdefault("num_heads", max(1, hidden // 64))
    backbone.setdefault("intermediate_size", 4 * hidden)
    config["backbone"] = backbone
    if "labels" in config:
        config.setdefault("num_classes", len(read.labels("labels")))
    return "vit", config


class VisionPipeline(Pipeline):
    """Base of ``image-classify`` and ``image-embed``."""

    __abstract__ = True
    default_batch_size: ClassVar[int] = 32

    def __init__(self, model: nn.Module, *, device: torch.device | str = "cpu", dtype: torch.dtype | None = None,
                 metadata: dict[str, Any] | None = None) -> None:
        super().__init__(model, device=device, dtype=dtype, metadata=metadata)
        self.architecture = architecture_of(model)
        self.model.to(self.device).eval()
        if dtype is not None:
            self.model.to(dtype)  # bf16 weights, so no per-call casts of them
        if getattr(model, "channels_last", False):
            self.model.to(memory_format=torch.channels_last)
        self.data_config = data_config(model.config.get("preprocess"), in_chans=model.in_chans,
                                       img_size=model.config.get("img_size"))
        fixed = model.config.get("img_size")  # a ViT takes exactly its img_size
        if fixed is not None:
            fixed = [fixed, fixed] if isinstance(fixed, int) else list(fixed)
            if list(self.data_config["input_size"][1:]) != fixed:
                logger.warning("preprocessing input_size %s disagrees with the model's img_size %s; using the "
                               "latter.", self.data_config["input_size"], fixed)
                self.data_config["input_size"] = (model.in_chans, *fixed)
        model.config = {**model.config, "preprocess": as_preprocess(self.data_config)}
        self.transform = eval_transform(self.data_config)
        self.image_mode = "L" if model.in_chans == 1 else "RGB"

    @classmethod
    def _model_from_loaded(cls, loaded: LoadedModel, metadata: dict[str, Any]) -> torch.nn.Module:
        """Any vision model (one with ``feature_maps``: vit, timm, torchvision); its labels."""
        if not hasattr(loaded.module, "feature_maps"):
            raise wrong_model(loaded, cls.task, "a vision model (vit, timm or torchvision-resnet)")
        metadata["labels"] = loaded.module.labels
        return loaded.module

    @classmethod
    def from_scratch(cls, config: dict[str, Any] | None = None, *, tokenizer: Any = None,
                     device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                     seed: int | None = None) -> "VisionPipeline":
        """A randomly initialised model (``hub.create``): a ViT unless the config names
        ``timm_model`` or ``torchvision_model``; ``labels`` sets the classes."""
        from hub.modeling import build_module

        if tokenizer is not None:
            raise ConfigError(f"{cls.task} models take no tokenizer.")
        architecture, arch_config = scratch_config(config)
        if seed is not None:
            torch.manual_seed(seed)
        model = build_module(architecture, arch_config)
        device = default_device(device)
        metadata = {"task": cls.task, "architecture": architecture, "source": "scratch", "labels": model.labels}
        return cls(model, device=device, dtype=dtype, metadata=metadata)

    # -- inference -----------------------------------------------------------------
    @property
    def labels(self) -> list[str]:
        return self.model.labels

    def _predict(self, items: list[Any], *, batch_size: int, progress: bool | None,
                 params: dict[str, Any]) -> list[Any]:
        """A long list runs ``batch_size * CHUNK_BATCHES`` images at a time, so only one step's
        decoded images are in memory at once (the base decodes a whole list in ``preprocess``)."""
        step = batch_size * CHUNK_BATCHES
        if len(items) <= step:
            return super()._predict(items, batch_size=batch_size, progress=progress, params=params)
        results: list[Any] = []
        with self.progress_bar(len(items), progress, unit="image") as bar:
            for start in range(0, len(items), step):
                try:
                    results += super()._predict(items[start:start + step], batch_size=batch_size, progress=False,
                                                params=params)
                except (InvalidInputError, InputTypeError) as exc:  # name the index in the whole list
                    raise shift_input_index(exc, start) from None
                bar.update(min(step, len(items) - start))
        return results

    def check_parameters(self, params: dict[str, Any]) -> None:
        """Values checked before any image is decoded (image-classify's ``top_k``, image-embed's
        ``normalize``, both tasks' ``max_pixels``)."""
        max_image_pixels(params.get("max_pixels"))
        if "top_k" in params:
            check_int("top_k", params["top_k"], minimum=1, none_ok=True)
        if "normalize" in params:
            check_bool("normalize", params["normalize"])

    def preprocess(self, inputs: list[Any], *, max_pixels: int | None = None) -> list[dict[str, Any]]:
        """Decode (at most ``max_pixels`` pixels per image, see :mod:`hub_vision.images`) and
        transform with the model's own preprocessing."""
        images = load_images(inputs, self.task, self.image_mode, max_pixels=max_pixels)
        return [{"pixel_values": self.transform(image), "length": 0} for image in images]

    def collate(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = {"pixel_values": torch.stack([f["pixel_values"] for f in features])}
        if "label" in features[0]:
            batch["labels"] = torch.tensor([f["label"] for f in features], dtype=torch.long)
        return batch

    def pixels(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The batch's pixels in the model's dtype and memory format."""
        x = batch["pixel_values"]
        dtype = next(self.model.parameters()).dtype
        x = x.to(dtype) if x.dtype != dtype else x
        return x.contiguous(memory_format=torch.channels_last) if getattr(self.model, "channels_last", False) else x

    def feature_maps(self, inputs: Any, *, indices: int | list[int] | None = None,
                     batch_size: int | None = None) -> Any:
        """Intermediate feature maps per image: a list of (C_i, H_i, W_i) tensors (timm's
        ``features_only`` levels for CNNs; block outputs as grids for a ViT)."""
        single = not isinstance(inputs, (list, tuple))
        items = [inputs] if single else list(inputs)
        if not items:
            raise InvalidInputError(f"{self.task}: got an empty list of images.")
        size = self.resolve_batch_size(batch_size)
        _check_indices(indices)
        features = self.preprocess(items)
        out: list[list[torch.Tensor]] = []
        for start in range(0, len(features), size):
            batch = self.collate(features[start:start + size])
            with torch.inference_mode(), self.autocast():
                try:
                    maps = self.model.feature_maps(self.pixels({k: v.to(self.device) for k, v in batch.items()}),
                                                   indices=indices)
                except (AssertionError, IndexError) as exc:  # timm asserts the levels exist
                    raise InvalidInputError(f"indices={indices!r} names feature levels this model lacks "
                                            f"({exc}).") from None
            out += [[m[row].float().cpu() for m in maps] for row in range(batch["pixel_values"].shape[0])]
        return out[0] if single else out

    def _export_spec(self) -> Any:
        """The model's logits and pooled features from (B, C, H, W) pixels (dynamic batch), as
        both vision tasks' :meth:`forward` reads them; decoding and the transform stay Hub's."""
        from hub.export import ExportSpec, ModuleCall

        outputs = ("logits", "features") if self.model.num_classes > 0 else ("features",)
        generator = torch.Generator().manual_seed(0)
        examples = [(torch.randn(batch, *self.data_config["input_size"], generator=generator),) for batch in (2, 1, 5)]
        return ExportSpec(
            module=ModuleCall(self.model, outputs), inputs=("pixel_values",), outputs=outputs,
            dynamic_axes={name: {0: "batch"} for name in ("pixel_values", *outputs)}, examples=examples,
            description=f"{self.architecture} vision model: {' and '.join(outputs)} per image from pixel_values "
                        "(batch, channels, height, width), transformed as 'preprocessing' says",
            preprocessing={"image": as_preprocess(self.data_config), "mode": self.image_mode, "labels": self.labels})

    def features_only(self, indices: int | list[int] | None = None) -> nn.Module:
        """The model as a feature-map extractor for downstream heads (detection, segmentation):
        ``module(pixel_values) -> [(B, C_i, H_i, W_i), ...]``; it shares this pipeline's weights."""
        return FeatureExtractor(self.model, indices)

    # saving: Pipeline.save (config.json holds the architecture and the config with labels and
    # preprocessing; nothing else to write)

    # -- training ------------------------------------------------------------------
    def fine_tune(self, train: Any, eval: Any = None, *, labels: list[str] | None = None,
                  freeze_backbone: bool = False, augment: dict[str, Any] | None = None, reset_head: bool = False,
                  **training_args: Any):
        """Fine-tune on labelled images: an ImageFolder (``root/<class>/<image>``), a CSV of
        ``path,label`` or a list of ``(image, label)`` pairs (:mod:`hub_vision.data`).

        Training images go through timm's training transform (RandomResizedCrop + flip; more
        with ``augment``, e.g. ``{"scale": (0.5, 1.0), "color_jitter": 0.2}``), evaluation
        images through the model's own preprocessing. Labels a trained head lacks are refused
        unless ``labels=[...]`` or ``reset_head=True`` asks for a new head (:mod:`hub.data.labels`);
        ``freeze_backbone=True`` trains the head only (batch
        norm statistics frozen too). ``training_args`` are :class:`hub.train.TrainingArguments`.
        Returns the :class:`~hub.train.TrainResult`; the pipeline keeps the best epoch.
        """
        from hub.data import resolve_labels
        from hub.data.labels import head_is_trained
        from hub.train import Trainer, TrainingArguments
        from hub.train.trainer import accuracy
        from hub_vision.data import read_labelled

        args = TrainingArguments.from_kwargs(**training_args)
        train_rows = read_labelled(train)
        eval_rows = read_labelled(eval) if eval is not None else None
        current = self.labels if self.model.num_classes > 0 else []
        labels, rebuild = resolve_labels([label for _, label in train_rows], [label for _, label in eval_rows or []],
                                         current=current, labels=labels, reset_head=reset_head,
                                         head_trained=head_is_trained(self.metadata))
        if rebuild:
            self.model.reset_classifier(labels)
            self.model.to(self.device)
        index = {label: i for i, label in enumerate(labels)}
        augmenter = train_transform(self.data_config, augment)
        mode, task = self.image_mode, self.task

        def collate_train(items: list[Any]) -> dict[str, torch.Tensor]:
            if isinstance(items[0], dict):  # evaluation features, already preprocessed
                return self.collate(items)
            pixels = [augmenter(to_pil(image, number, f"{task} training data", mode)) for number, image, _ in items]
            return {"pixel_values": torch.stack(pixels), "labels": torch.tensor([y for _, _, y in items])}

        train_data = [(number, image, index[label]) for number, (image, label) in enumerate(train_rows)]
        eval_data = None
        if eval_rows:
            eval_data = self.preprocess([image for image, _ in eval_rows])
            for feature, (_, label) in zip(eval_data, eval_rows):
                feature["label"] = index[label]
        frozen = []
        if freeze_backbone:
            head = {id(p) for p in self.model.get_classifier().parameters()}
            frozen = [p for p in self.model.parameters() if id(p) not in head and p.requires_grad]
            for p in frozen:
                p.requires_grad_(False)
        try:
            trainer = Trainer(self.model, args, train_data=train_data, collate=collate_train, eval_data=eval_data,
                              compute_metrics=accuracy, save_best=lambda model, path: self.save(path))
            result = trainer.train()
        finally:
            for p in frozen:
                p.requires_grad_(True)
        self.model.to(self.device).eval()
        self.metadata.update(labels=labels, head_initialized=True)
        return result

    def evaluate(self, data: Any, *, batch_size: int | None = None) -> dict[str, float]:
        """Top-1 accuracy on labelled images (the inputs :meth:`fine_tune` takes)."""
        from hub_vision.data import read_labelled

        rows = read_labelled(data)
        logits = self.logits([image for image, _ in rows], batch_size=batch_size)
        predicted = [self.labels[i] for i in logits.argmax(-1).tolist()]
        correct = sum(p == label for p, (_, label) in zip(predicted, rows))
        return {"accuracy": correct / len(rows), "n": len(rows)}

    def logits(self, images: list[Any], *, batch_size: int | None = None) -> torch.Tensor:
        """(N, num_classes) float logits for a list of images."""
        size = self.resolve_batch_size(batch_size)
        out = []
        for start in range(0, len(images), size * CHUNK_BATCHES):
            try:
                features = self.preprocess(images[start:start + size * CHUNK_BATCHES])
            except (InvalidInputError, InputTypeError) as exc:
                raise shift_input_index(exc, start) from None
            for first in range(0, len(features), size):
                batch = {k: v.to(self.device) for k, v in self.collate(features[first:first + size]).items()}
                with torch.inference_mode(), self.autocast():
                    out.append(self.model(self.pixels(batch))["logits"].float().cpu())
        return torch.cat(out)

    def pretrain(self, data: Any, eval: Any = None, *, objective: str | None = None, **options: Any):
        """Pretrain: ``objective="supervised"`` trains every weight on labelled images (an
        ImageFolder or CSV; the default for such data), ``"mim"`` is masked-image modelling
        on unlabelled images (ViT only; the default for a folder of images without class
        folders). See :mod:`hub_vision.pretrain`."""
        from hub_vision.pretrain import pretrain

        return pretrain(self, data, eval=eval, objective=objective, **options)


class FeatureExtractor(nn.Module):
    """``features_only`` view of a Hub vision model (weights shared, not copied)."""

    def __init__(self, model: nn.Module, indices: int | list[int] | None = None) -> None:
        super().__init__()
        self.model, self.indices = model, indices

    def forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        return self.model.feature_maps(pixel_values, indices=self.indices)


def _check_indices(indices: Any) -> None:
    """``feature_maps``' ``indices``: None, a positive int (the last k levels) or a list of ints."""
    def is_int(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    if indices is None or (is_int(indices) and indices >= 1):
        return
    if isinstance(indices, (list, tuple)) and indices and all(is_int(i) for i in indices):
        return
    raise InvalidInputError(f"indices must be None (every level), a positive integer k (the last k levels) or a "
                            f"non-empty list of level numbers, got {indices!r:.60}.")
