"""``image-embed``: images in, pooled features out (a list of floats per image, as the
model's classifier sees them: timm's ``pre_logits``); ``normalize=True`` gives unit vectors.

On a CLIP folder the vector is the projected image embedding (transformers'
``get_image_features``) in the space ``text-embed`` puts the same folder's texts in,
normalised to unit length by default as CLIP compares them (``normalize=False``: the raw
projection); the cosine of an image's and a text's vectors is CLIP's similarity.

``pipe.feature_maps(images)`` returns intermediate maps instead and ``pipe.features_only()``
the model as a feature-map extractor (both on the base, :mod:`hub_vision.pipelines.base`).
"""

from __future__ import annotations

from typing import Any

import torch

from hub.errors import NotSupportedError
from hub.results import ResultList
from hub_vision.pipelines.base import VisionPipeline


class ImageEmbeddingPipeline(VisionPipeline):
    task = "image-embed"

    def fine_tune(self, train: Any, eval: Any = None, **options: Any):
        """As the vision base's (supervised, on labelled images); a CLIP trains on image-text pairs
        through ``zero-shot-image-classify`` instead (its text tower needs the tokenizer)."""
        self._refuse_clip_training("fine_tune")
        return super().fine_tune(train, eval, **options)

    def pretrain(self, data: Any, eval: Any = None, **options: Any):
        """As the vision base's; a CLIP pretrains through ``zero-shot-image-classify``."""
        self._refuse_clip_training("pretrain")
        return super().pretrain(data, eval, **options)

    def _refuse_clip_training(self, verb: str) -> None:
        if self.architecture == "clip":
            raise NotSupportedError(f"image-embed cannot {verb}() a CLIP model: CLIP trains on image-text pairs. Load "
                                    f"it with hub.load('zero-shot-image-classify', model=...) and call {verb}(pairs) "
                                    "there; image-embed on the saved folder then gives the new embeddings.")

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(self.pixels(batch))["features"].float()  # (B, C)

    def postprocess(self, outputs: list[torch.Tensor], features: list[dict[str, Any]], *,
                    normalize: bool | None = None) -> ResultList:
        vector = outputs[0]
        if normalize is None:  # the model's own convention: CLIP compares unit vectors
            normalize = bool(getattr(self.model, "embedding_options", {}).get("normalize", False))
        if normalize:
            vector = torch.nn.functional.normalize(vector, dim=0)
        return ResultList(vector.tolist(), metadata={"dim": vector.numel(), "normalized": bool(normalize)})
