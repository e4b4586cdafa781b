"""Pretraining for vision models through the common Trainer.

* ``supervised``: every weight trained on labelled images (ImageFolder / CSV), the recipe
  timm's ViTs were pretrained with; it is :meth:`VisionPipeline.fine_tune` without a frozen
  part.
* ``mim``: masked-image modelling on unlabelled images, as SimMIM does it (Xie et al.,
  2022): a random ``mask_ratio`` of the patch embeddings is replaced by a learned mask
  token, the ViT encodes the whole sequence, and a linear decoder predicts the masked
  patches' pixels (each patch normalised to zero mean and unit variance, ``norm_pix``);
  the loss is the mean squared error on the masked patches only. The decoder is dropped
  afterwards: the pipeline keeps the pretrained encoder, ready for ``fine_tune``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hub.errors import ConfigError
from hub_vision.models.vit import VisionTransformer

OBJECTIVES = ("supervised", "mim")


class MaskedImageModel(nn.Module):
    """A ViT with SimMIM's mask token and linear pixel decoder; ``forward`` -> ``{"loss", "logits"}``."""

    def __init__(self, vit: VisionTransformer, mask_ratio: float = 0.6, norm_pix: bool = True) -> None:
        super().__init__()
        if not 0.0 < mask_ratio < 1.0:
            raise ConfigError(f"mask_ratio must be in (0, 1), got {mask_ratio!r}.")
        self.vit, self.mask_ratio, self.norm_pix = vit, mask_ratio, norm_pix
        width = vit.embeddings.proj.out_channels
        ph, pw = vit.embeddings.patch_size
        self.patch_pixels = ph * pw * vit.in_chans
        param = vit.embeddings.proj.weight
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width, device=param.device, dtype=param.dtype))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.decoder = nn.Linear(width, self.patch_pixels, device=param.device, dtype=param.dtype)

    def patchify(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, N, ph * pw * C) in the patch embedding's row-major order."""
        ph, pw = self.vit.embeddings.patch_size
        b, c, h, w = pixels.shape
        x = pixels.reshape(b, c, h // ph, ph, w // pw, pw).permute(0, 2, 4, 3, 5, 1)  # (B, gh, gw, ph, pw, C)
        return x.reshape(b, (h // ph) * (w // pw), ph * pw * c)

    def random_mask(self, batch: int, patches: int, device: torch.device) -> torch.Tensor:
        """(B, N) bool, exactly round(mask_ratio * N) True per image."""
        count = max(1, round(self.mask_ratio * patches))
        ranks = torch.rand(batch, patches, device=device).argsort(1).argsort(1)
        return ranks < count

    def embed_masked(self, pixel_values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """PatchEmbedding's forward with masked patches replaced by the mask token: (B, T, C)."""
        emb = self.vit.embeddings
        x = emb.proj(pixel_values).flatten(2).transpose(1, 2)  # (B, N, C)
        x = torch.where(mask[..., None], self.mask_token.to(x.dtype).expand_as(x), x)
        prefix = [t.expand(x.shape[0], -1, -1) for t in (emb.cls_token, emb.reg_token) if t is not None]
        if emb.pos_embed is not None and emb.no_embed_class:
            x = torch.cat([*prefix, x + emb.pos_embed], dim=1)
        else:
            x = torch.cat([*prefix, x], dim=1)
            x = x + emb.pos_embed if emb.pos_embed is not None else x
        x = emb.dropout(x)
        return self.vit.norm_pre(x) if self.vit.norm_pre is not None else x

    def forward(self, pixel_values: torch.Tensor) -> dict[str, torch.Tensor]:
        gh, gw = self.vit.embeddings.grid_size
        mask = self.random_mask(pixel_values.shape[0], gh * gw, pixel_values.device)
        hidden = self.vit.encoder(self.embed_masked(pixel_values, mask))[:, self.vit.num_prefix_tokens:]  # (B, N, C)
        prediction = self.decoder(hidden).float()  # (B, N, P)
        target = self.patchify(pixel_values.float())
        if self.norm_pix:
            target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6).sqrt()
        per_patch = F.mse_loss(prediction, target, reduction="none").mean(-1)  # (B, N)
        loss = (per_patch * mask).sum() / mask.sum()
        return {"loss": loss, "logits": per_patch.detach()}


def _has_labels(data: Any) -> bool:
    if isinstance(data, (str, Path)):
        path = Path(data).expanduser()
        if path.is_dir():
            return any(d.is_dir() and not d.name.startswith(".") for d in path.iterdir())
        return path.suffix.lower() == ".csv"
    return bool(data) and isinstance(data, (list, tuple)) and isinstance(data[0], (tuple, list, dict))


def pretrain(pipe: Any, data: Any, *, eval: Any = None, objective: str | None = None, mask_ratio: float = 0.6,
             norm_pix: bool = True, augment: dict[str, Any] | None = None, **training_args: Any):
    """Run ``objective`` (default: ``supervised`` for labelled data, else ``mim``) on ``pipe``'s
    model; returns the :class:`~hub.train.TrainResult`."""
    objective = objective or ("supervised" if _has_labels(data) else "mim")
    if objective not in OBJECTIVES:
        raise ConfigError(f"objective must be one of {OBJECTIVES}, got {objective!r}.")
    if objective == "supervised":
        return pipe.fine_tune(data, eval, augment=augment, **training_args)
    if not isinstance(pipe.model, VisionTransformer):
        raise ConfigError(f"masked-image modelling pretrains a ViT; this pipeline holds a {pipe.architecture!r} "
                          "model. Use objective='supervised' with labelled images instead.")
    from hub.train import Trainer, TrainingArguments
    from hub_vision.data import read_unlabelled
    from hub_vision.images import to_pil
    from hub_vision.preprocess import train_transform

    args = TrainingArguments.from_kwargs(**training_args)
    augmenter = train_transform(pipe.data_config, {"scale": (0.67, 1.0), "hflip": 0.5, **(augment or {})})
    mode = pipe.image_mode

    def collate(items: list[tuple[int, Any]]) -> dict[str, torch.Tensor]:
        pixels = torch.stack([augmenter(to_pil(image, n, "pretraining data", mode)) for n, image in items])
        return {"pixel_values": pixels}  # no labels: the Trainer needs them only for compute_metrics

    def numbered(images: list[Any]) -> list[tuple[int, Any]]:
        return list(enumerate(images))

    model = MaskedImageModel(pipe.model, mask_ratio=mask_ratio, norm_pix=norm_pix)
    trainer = Trainer(model, args, train_data=numbered(read_unlabelled(data)), collate=collate,
                      eval_data=numbered(read_unlabelled(eval)) if eval is not None else None)
    result = trainer.train()
    pipe.model.to(pipe.device).eval()
    return result
