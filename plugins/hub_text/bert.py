"""BERT-family encoders and classifiers, built from the shared backbone.

Hub config (the ``config`` object of a Hub config.json)::

    {"vocab_size": 30522, "max_positions": 512, "type_vocab_size": 2, "pad_token_id": 0,
     "position": "learned", "backbone": {TransformerConfig fields},
     # classifier only:
     "labels": ["negative", "positive"], "pooling": "cls", "pooler": true,
     "classifier_dropout": 0.1}
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hub.backbone import ClassificationHead, TokenEmbedding, Transformer, TransformerConfig, init_weights


class BertEncoder(nn.Module):
    """Token embeddings + post-norm Transformer: (B, T) ids -> (B, T, C) hidden states."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = config
        backbone = TransformerConfig.from_dict(config["backbone"])
        self.embeddings = TokenEmbedding(
            config["vocab_size"], backbone.hidden_size,
            max_positions=config.get("max_positions", 512),
            position=config.get("position", "learned"),
            type_vocab_size=config.get("type_vocab_size", 2),
            norm=backbone.norm_position == "post", norm_eps=backbone.norm_eps,
            dropout=backbone.dropout, pad_token_id=config.get("pad_token_id"),
        )
        self.encoder = Transformer(backbone)

    @property
    def max_positions(self) -> int:
        return self.embeddings.max_positions

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, output_hidden_states: bool = False):
        x = self.embeddings(input_ids, token_type_ids)  # (B, T, C)
        return self.encoder(x, attention_mask, output_hidden_states=output_hidden_states)


class BertClassifier(nn.Module):
    """Encoder + classification head; returns ``{"logits", "loss"?}`` like transformers."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = config
        self.encoder = BertEncoder(config)
        hidden = config["backbone"]["hidden_size"]
        self.head = ClassificationHead(
            hidden, len(config["labels"]), pooling=config.get("pooling", "cls"),
            pooler=config.get("pooler", True),
            dropout=config.get("classifier_dropout", config["backbone"].get("dropout", 0.1)),
        )

    @property
    def labels(self) -> list[str]:
        return list(self.config["labels"])

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        hidden = self.encoder(input_ids, attention_mask, token_type_ids)  # (B, T, C)
        logits = self.head(hidden, attention_mask)  # (B, L)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = F.cross_entropy(logits.float(), labels)
        return out

    @classmethod
    def from_encoder(cls, encoder: BertEncoder, labels: list[str],
                     head: ClassificationHead | None = None) -> "BertClassifier":
        """Wrap a (pretrained) encoder with a new, freshly initialised head."""
        config = {**encoder.config, "labels": list(labels)}
        config.setdefault("pooling", "cls")
        config.setdefault("pooler", True)
        with torch.device("meta"):
            model = cls(config)
        model.encoder = encoder
        model.head = head if head is not None else model.head.to_empty(device=_device_of(encoder))
        if head is None:
            init_weights(model.head)
        return model


def _device_of(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


def build_encoder(config: dict[str, Any]) -> BertEncoder:
    model = BertEncoder(config)
    if not _on_meta(model):
        init_weights(model)
    return model


def build_classifier(config: dict[str, Any]) -> BertClassifier:
    model = BertClassifier(config)
    if not _on_meta(model):
        init_weights(model)
    return model


def _on_meta(module: nn.Module) -> bool:
    return any(p.is_meta for p in module.parameters())
