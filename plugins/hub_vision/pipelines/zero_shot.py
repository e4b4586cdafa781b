"""``zero-shot-image-classify``: images scored against labels chosen at call time, with an
image-text model (CLIP), as transformers' ``ZeroShotImageClassificationPipeline`` does.

Each candidate label becomes a prompt (``hypothesis_template`` with the label in place of
``{}``, default ``"This is a photo of {}."``, transformers' default); the prompts and the
image are embedded by CLIP's two towers, normalised, and the label scores are the softmax
over the labels of ``logits_per_image = exp(logit_scale) * cos(image, prompt)``. The result
is transformers': a list of ``{"score", "label"}``, best first (ties keep the labels' order).

The prompts are embedded once per call and shared by every image of it, so a list of
images costs one text pass plus one image pass per image; their number is bounded
(``max_candidate_labels=``, ``HUB_MAX_CANDIDATE_LABELS``, default 256).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from hub.errors import ConfigError, InvalidInputError, ModelLoadError
from hub.modeling import LoadedModel, wrong_model
from hub.results import Result, ResultList
from hub.validate import check_candidate_labels, check_template
from hub_vision.pipelines.base import VisionPipeline

DEFAULT_TEMPLATE = "This is a photo of {}."
#: prompts embedded per pass of the text tower
TEXT_BATCH = 256


class ZeroShotImageClassificationPipeline(VisionPipeline):
    task = "zero-shot-image-classify"
    architecture = "clip"
    model_needs = "an image-text model (CLIP: transformers' CLIPModel, an open_clip folder or a Hub clip folder)"

    def __init__(self, model: torch.nn.Module, tokenizer: Any, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.tokenizer = tokenizer

    @classmethod
    def _load_model(cls, folder: Path, *, device: torch.device, dtype: torch.dtype | None) -> LoadedModel:
        """Hub's and transformers' folders as every pipeline reads them; an open_clip folder
        (``open_clip_config.json`` + ``open_clip_model.safetensors``, no ``config.json``)
        through :func:`hub_vision.models.open_clip.load_open_clip_folder`."""
        from hub_vision.models.open_clip import is_open_clip_folder, load_open_clip_folder

        if is_open_clip_folder(folder):
            return load_open_clip_folder(folder, device=device, dtype=dtype)
        return super()._load_model(folder, device=device, dtype=dtype)

    @classmethod
    def _model_from_loaded(cls, loaded: LoadedModel, metadata: dict[str, Any]) -> torch.nn.Module:
        from hub_vision.models.clip import ClipModel

        if not isinstance(loaded.module, ClipModel):
            raise wrong_model(loaded, cls.task, cls.model_needs)
        return loaded.module

    @classmethod
    def _load_extra_files(cls, folder: Path, model: torch.nn.Module, metadata: dict[str, Any]) -> dict[str, Any]:
        from hub_vision.clip_tokenizer import has_tokenizer, load_clip_tokenizer
        from hub_vision.models.open_clip import is_open_clip_folder, openai_clip_tokenizer

        if is_open_clip_folder(folder) and not has_tokenizer(folder):  # open_clip's own BPE (OpenAI's)
            vocab = model.config["text"]["vocab_size"]
            if vocab != 49408:
                raise ModelLoadError(f"{str(folder)!r}: an open_clip text tower of {vocab:,} tokens is not OpenAI's "
                                     "tokenizer (49,408) and the folder has no tokenizer files; save the tokenizer "
                                     "beside the weights.")
            return {"tokenizer": openai_clip_tokenizer(model.max_positions)}
        return {"tokenizer": load_clip_tokenizer(folder)}

    def _save_extra_files(self, folder: Path) -> None:
        self.tokenizer.save_pretrained(str(folder))

    @classmethod
    def from_scratch(cls, config: dict[str, Any] | None = None, *, tokenizer: Any = None,
                     device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                     seed: int | None = None) -> ZeroShotImageClassificationPipeline:
        """A randomly initialised CLIP (``hub.create``) for the ``tokenizer`` given (e.g.
        :func:`hub_vision.clip_tokenizer.train_clip_tokenizer` on the captions): the text
        tower's vocabulary, end-of-text id and positions come from it. ``config`` is a
        ``clip`` config (``vision``, ``text``, ``projection_dim``; see
        :mod:`hub_vision.models.clip`), each tower's ``backbone`` defaulting to ViT-B/32's."""
        from hub.modeling import build_module
        from hub.pipeline import default_device

        if tokenizer is None:
            raise ConfigError("zero-shot-image-classify from scratch needs tokenizer= (a transformers CLIPTokenizer, "
                              "e.g. hub_vision.clip_tokenizer.train_clip_tokenizer(captions)).")
        config = scratch_config(config, tokenizer)
        if seed is not None:
            torch.manual_seed(seed)
        model = build_module("clip", config)
        metadata = {"task": cls.task, "architecture": "clip", "source": "scratch"}
        return cls(model, tokenizer, device=default_device(device), dtype=dtype, metadata=metadata)

    # -- inference -----------------------------------------------------------------
    def check_parameters(self, params: dict[str, Any]) -> None:
        """Labels, template and pixel limit checked before any image is decoded."""
        super().check_parameters(params)
        if "candidate_labels" in params:  # required, but hub.load(..., candidate_labels=) may give it
            check_candidate_labels(self.task, params["candidate_labels"], params.get("max_candidate_labels"))
        if "hypothesis_template" in params:
            check_template(params["hypothesis_template"], DEFAULT_TEMPLATE)

    def preprocess_images(self, images: list[Any], max_pixels: int | None = None) -> list[dict[str, Any]]:
        """Decode and transform images (the vision base's preprocessing)."""
        return super().preprocess(images, max_pixels=max_pixels)

    def preprocess(self, inputs: list[Any], *, candidate_labels: Any = None,
                   hypothesis_template: str = DEFAULT_TEMPLATE, max_candidate_labels: int | None = None,
                   max_pixels: int | None = None) -> list[dict[str, Any]]:
        labels = check_candidate_labels(self.task, candidate_labels, max_candidate_labels)
        template = check_template(hypothesis_template, DEFAULT_TEMPLATE)
        features = self.preprocess_images(inputs, max_pixels=max_pixels)
        prompts = self.embed_texts([template.format(label) for label in labels])  # (L, P), unit rows
        for feature in features:
            feature["labels"], feature["prompts"] = labels, prompts
        return features

    def embed_texts(self, texts: list[str], *, truncate: bool = False) -> torch.Tensor:
        """(len(texts), projection_dim) normalised text embeddings, on the CPU in float32. A
        text longer than the text tower's positions is an error naming it (transformers'
        pipeline fails on it too), or, with ``truncate`` (evaluation, as training does), cut."""
        limit = self.model.max_positions
        ids = self.tokenizer(texts, verbose=False, truncation=truncate, max_length=limit)["input_ids"]
        for index, seq in enumerate(ids):
            if len(seq) > limit:
                raise InvalidInputError(f"{self.task}: the prompt {texts[index]!r:.80} has {len(seq)} tokens, more "
                                        f"than the text tower's {limit}; shorten the label or the template.")
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        out = []
        from hub.data.padding import pad_sequences

        for start in range(0, len(ids), TEXT_BATCH):
            input_ids, mask = pad_sequences(ids[start:start + TEXT_BATCH], value=pad)
            with torch.inference_mode(), self.autocast():
                vectors = self.model.embed_text(input_ids.to(self.device), mask.to(self.device))
            out.append(F.normalize(vectors.float(), dim=-1).cpu())
        return torch.cat(out)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return F.normalize(self.model.embed_images(self.pixels(batch)).float(), dim=-1)  # (B, P)

    def postprocess(self, outputs: list[torch.Tensor], features: list[dict[str, Any]]) -> ResultList:
        """``[{"score", "label"}, ...]`` over every candidate label, best first."""
        labels, prompts = features[0]["labels"], features[0]["prompts"]
        logits = float(self.model.logit_scale.detach().float().exp()) * (prompts @ outputs[0])  # (L,)
        scores = logits.softmax(-1).tolist()
        ranked = sorted(zip(scores, labels), key=lambda pair: -pair[0])  # stable: ties keep the label order
        metadata = {"candidates": len(labels)}
        return ResultList([Result(score=score, label=label, metadata=metadata) for score, label in ranked],
                          metadata=metadata)

    # -- training and evaluation ---------------------------------------------------------
    def fine_tune(self, train: Any, eval: Any = None, *, augment: dict[str, Any] | None = None,
                  **training_args: Any):
        """Contrastive fine-tuning on image-text pairs (:mod:`hub_vision.contrastive`: a list of
        ``(image, text)``, a CSV with path and text columns, or an ImageFolder whose folder
        names are the texts). ``training_args`` are :class:`hub.train.TrainingArguments`."""
        from hub_vision.contrastive import train_contrastive

        return train_contrastive(self, train, eval, augment=augment, **training_args)

    def pretrain(self, data: Any, eval: Any = None, *, augment: dict[str, Any] | None = None,
                 **training_args: Any):
        """Contrastive pretraining (CLIP's objective; the same as :meth:`fine_tune`, typically
        from :meth:`from_scratch`)."""
        from hub_vision.contrastive import train_contrastive

        return train_contrastive(self, data, eval, augment=augment, **training_args)

    def evaluate(self, data: Any, *, batch_size: int | None = None) -> dict[str, float]:
        """Retrieval on held-out image-text pairs: for each image, the rank of its own text
        among every distinct text of the data (image->text R@1 / R@5), and for each distinct
        text the rank of its images among all images (text->image R@1)."""
        from hub_vision.contrastive import read_pairs

        rows = read_pairs(data)
        texts = sorted({captions[0] for _, captions in rows})
        index = {t: i for i, t in enumerate(texts)}
        images = self.image_embeddings([image for image, _ in rows], batch_size=batch_size)  # (N, P)
        sims = images @ self.embed_texts(texts, truncate=True).t()  # (N, T)
        truth = torch.tensor([index[captions[0]] for _, captions in rows])
        rank = (sims > sims[torch.arange(len(rows)), truth][:, None]).sum(-1)  # 0 = best
        best_image = sims.argmax(0)  # per text, its most similar image
        t2i = sum(index[rows[int(best_image[i])][1][0]] == i for i in range(len(texts))) / len(texts)
        return {"image_to_text_r1": float((rank < 1).float().mean()),
                "image_to_text_r5": float((rank < 5).float().mean()),
                "text_to_image_r1": float(t2i), "n": len(rows), "texts": len(texts)}

    def image_embeddings(self, images: list[Any], *, batch_size: int | None = None) -> torch.Tensor:
        """(N, projection_dim) normalised image embeddings of a list of images."""
        size = self.resolve_batch_size(batch_size)
        out = []
        for start in range(0, len(images), size):
            batch = self.collate(self.preprocess_images(images[start:start + size]))
            with torch.inference_mode(), self.autocast():
                out.append(self.forward({k: v.to(self.device) for k, v in batch.items()}).cpu())
        return torch.cat(out)


def scratch_config(config: dict[str, Any] | None, tokenizer: Any) -> dict[str, Any]:
    """A ``clip`` config for ``hub.create``: ViT-B/32-sized towers unless ``config`` says
    otherwise (each tower's ``backbone`` merged key by key); the text tower's vocabulary,
    end-of-text id and positions (at most 77) from the tokenizer."""
    from hub.backbone.config import ConfigReader

    read = ConfigReader({} if config is None else config, "clip config")
    config = dict(config or {})
    vision = read.mapping("vision", {})
    text = read.mapping("text", {})
    if tokenizer.eos_token_id is None:
        raise ConfigError("the tokenizer has no end-of-text token (eos_token); CLIP's text tower pools at it.")
    positions = getattr(tokenizer, "model_max_length", 77)
    positions = positions if isinstance(positions, int) and 0 < positions <= 77 else 77
    config["vision"] = {"img_size": 224, "patch_size": 32, "in_chans": 3, **vision,
                        "backbone": {"hidden_size": 768, "num_layers": 12, "num_heads": 12, "intermediate_size": 3072,
                                     **vision.get("backbone", {})}}
    config["text"] = {"vocab_size": len(tokenizer), "eos_token_id": tokenizer.eos_token_id, "max_positions": positions,
                      **text, "backbone": {"hidden_size": 512, "num_layers": 12, "num_heads": 8,
                                           "intermediate_size": 2048, **text.get("backbone", {})}}
    return config
