"""``image-embed``: images in, pooled features out (a list of floats per image, as the
model's classifier sees them: timm's ``pre_logits``); ``normalize=True`` gives unit vectors.

``pipe.feature_maps(images)`` returns intermediate maps instead and ``pipe.features_only()``
the model as a feature-map extractor (both on the base, :mod:`hub_vision.pipelines.base`).
"""

from __future__ import annotations

from typing import Any

import torch

from hub.results import ResultList
from hub_vision.pipelines.base import VisionPipeline


class ImageEmbeddingPipeline(VisionPipeline):
    task = "image-embed"

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(self.pixels(batch))["features"].float()  # (B, C)

    def postprocess(self, outputs: list[torch.Tensor], features: list[dict[str, Any]], *,
                    normalize: bool = False) -> ResultList:
        vector = outputs[0]
        if normalize:
            vector = torch.nn.functional.normalize(vector, dim=0)
        return ResultList(vector.tolist(), metadata={"dim": vector.numel(), "normalized": bool(normalize)})
