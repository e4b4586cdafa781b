"""BERT-family encoders (BERT, RoBERTa, DistilBERT) and their task heads, built from the
shared backbone.

Hub config (the ``config`` object of a Hub config.json)::

    {"vocab_size": 30522, "max_positions": 512, "type_vocab_size": 2, "pad_token_id": 0,
     "position": "learned", "padding_aware_positions": false,   # true for RoBERTa
     "backbone": {TransformerConfig fields},
     # sequence classifier: "labels", "pooling", "pooler", "pooler_activation", "classifier_dropout"
     # token classifier:    "labels", "classifier_dropout"
     # masked LM:           "mlm_activation"}
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hub.backbone import ClassificationHead, MaskedLMHead, TokenEmbedding, Transformer, TransformerConfig, init_weights
from hub.backbone.config import ACTIVATIONS, ConfigReader
from hub.errors import ConfigError

POSITIONS = ("learned", "sinusoidal", "none")


def check_encoder_config(config: Any, what: str = "bert") -> TransformerConfig:
    """Validate a BERT-family config's encoder keys (one ConfigError naming the key); returns
    its backbone. Loading and ``hub.create`` both pass through here."""
    read = ConfigReader(config, f"{what} config")
    vocab = read.int("vocab_size")
    read.int("max_positions", 512)
    read.int("type_vocab_size", 2, minimum=0)
    pad = read.int("pad_token_id", None, minimum=0, maximum=max(vocab - 1, 0), optional=True)
    read.choice("position", POSITIONS, "learned")
    if read.bool("padding_aware_positions", False):
        if pad is None:
            raise ConfigError(f"{what} config: padding_aware_positions (RoBERTa) needs 'pad_token_id'.")
        if config.get("max_positions", 512) <= pad + 1:
            raise ConfigError(f"{what} config: 'max_positions' ({config.get('max_positions', 512)}) must exceed "
                              f"pad_token_id + 1 ({pad + 1}) with padding_aware_positions (RoBERTa numbers "
                              "positions from pad_token_id + 1).")
    return TransformerConfig.from_dict(read.mapping("backbone"))


def _check_head_config(config: dict[str, Any], what: str, *, labels: bool, classifier: bool = False,
                       mlm: bool = False) -> None:
    read = ConfigReader(config, f"{what} config")
    if labels:
        read.labels("labels")
        read.float("classifier_dropout", 0.1, minimum=0.0, below=1.0)
    if classifier:
        read.choice("pooling", ("cls", "mean"), "cls")
        read.bool("pooler", True)
        read.choice("pooler_activation", ("tanh", "relu"), "tanh")
    if mlm:
        read.choice("mlm_activation", ACTIVATIONS, "gelu")


class BertEncoder(nn.Module):
    """Token embeddings + Transformer: (B, T) ids -> (B, T, C) hidden states."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = config
        backbone = check_encoder_config(config)
        self.pad_token_id = config.get("pad_token_id")
        self.padding_aware_positions = bool(config.get("padding_aware_positions", False))
        self.embeddings = TokenEmbedding(
            config["vocab_size"], backbone.hidden_size,
            max_positions=config.get("max_positions", 512),
            position=config.get("position", "learned"),
            type_vocab_size=config.get("type_vocab_size", 2),
            norm=backbone.norm_position == "post", norm_eps=backbone.norm_eps,
            dropout=backbone.dropout, pad_token_id=self.pad_token_id,
        )
        self.encoder = Transformer(backbone)

    @property
    def max_positions(self) -> int:
        """The longest input in tokens (RoBERTa's first pad_token_id + 1 positions are unused)."""
        offset = (self.pad_token_id or 0) + 1 if self.padding_aware_positions else 0
        return self.embeddings.max_positions - offset

    def position_ids(self, input_ids: torch.Tensor) -> torch.Tensor | None:
        """RoBERTa numbers real tokens from pad_token_id + 1 and gives padding pad_token_id."""
        if not self.padding_aware_positions:
            return None
        real = (input_ids != self.pad_token_id).long()
        return torch.cumsum(real, dim=1) * real + self.pad_token_id

    def embed(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        return self.embeddings(input_ids, token_type_ids, self.position_ids(input_ids))  # (B, T, C)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, output_hidden_states: bool = False):
        return self.encoder(self.embed(input_ids, token_type_ids), attention_mask,
                            output_hidden_states=output_hidden_states)


class _WithEncoder(nn.Module):
    """A head on top of a BertEncoder; subclasses add ``self.head``."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = config
        self.encoder = BertEncoder(config)

    @property
    def labels(self) -> list[str]:
        return list(self.config["labels"])

    @classmethod
    def from_encoder(cls, encoder: BertEncoder, labels: list[str] | None = None, **extra: Any):
        """Wrap a (pretrained) encoder with a new, freshly initialised head."""
        config = {**encoder.config, **extra}
        if labels is not None:
            config["labels"] = list(labels)
        with torch.device("meta"):
            model = cls(config)
        model.encoder = encoder
        model._install_head(model.head)
        return model

    def _install_head(self, head: nn.Module) -> None:
        """Materialise a (meta) head on the encoder's device and dtype, initialise it as the
        model was at creation (same draws as building it fresh) and tie it."""
        reference = next(self.encoder.parameters())
        self.head = head.to_empty(device=reference.device).to(reference.dtype)
        init_weights(self.head)
        self._tie()

    def _tie(self) -> None:
        """Re-establish weight ties after the encoder was replaced or loaded."""


class _Classifier(_WithEncoder):
    """timm's head vocabulary for the text classifiers: ``get_classifier()`` is the task head
    (``head.*`` in the state dict: pooler + classifier for sequences, the tagging linear for
    tokens), ``reset_classifier(labels)`` puts a freshly initialised one in its place."""

    def _make_head(self, config: dict[str, Any]) -> nn.Module:
        raise NotImplementedError

    def get_classifier(self) -> nn.Module:
        """The head that maps encoder states to label logits."""
        return self.head

    def reset_classifier(self, labels: int | list[str]) -> None:
        """A new head for ``labels`` (names, or a count: ``LABEL_0 ...``); the encoder's
        weights are untouched and the config's ``labels`` follow."""
        from hub.data.labels import head_labels

        self.config = {**self.config, "labels": head_labels(labels)}
        with torch.device("meta"):
            head = self._make_head(self.config)
        self._install_head(head)


class BertClassifier(_Classifier):
    """Sequence classification; returns ``{"logits", "loss"?}`` like transformers."""

    def __init__(self, config: dict[str, Any]) -> None:
        check_encoder_config(config, "bert-classifier")
        _check_head_config(config, "bert-classifier", labels=True, classifier=True)
        super().__init__(config)
        self.head = self._make_head(config)

    def _make_head(self, config: dict[str, Any]) -> nn.Module:
        return ClassificationHead(
            config["backbone"]["hidden_size"], len(config["labels"]),
            pooling=config.get("pooling", "cls"), pooler=config.get("pooler", True),
            pooler_activation=config.get("pooler_activation", "tanh"),
            dropout=config.get("classifier_dropout", config["backbone"].get("dropout", 0.1)),
        )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        hidden = self.encoder(input_ids, attention_mask, token_type_ids)  # (B, T, C)
        logits = self.head(hidden, attention_mask)  # (B, L)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = F.cross_entropy(logits.float(), labels)
        return out


class TokenClassificationHead(nn.Module):
    """Per-token logits for tagging (NER): dropout -> linear, (B, T, C) -> (B, T, L).

    Named ``classifier`` as transformers' ``*ForTokenClassification`` heads are.
    """

    def __init__(self, hidden_size: int, num_labels: int, *, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(hidden))


class BertTokenClassifier(_Classifier):
    """Per-token tagging; ``labels`` (B, T) uses -100 for positions without a tag."""

    def __init__(self, config: dict[str, Any]) -> None:
        check_encoder_config(config, "bert-token-classifier")
        _check_head_config(config, "bert-token-classifier", labels=True)
        super().__init__(config)
        self.head = self._make_head(config)

    def _make_head(self, config: dict[str, Any]) -> nn.Module:
        return TokenClassificationHead(
            config["backbone"]["hidden_size"], len(config["labels"]),
            dropout=config.get("classifier_dropout", config["backbone"].get("dropout", 0.1)))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        logits = self.head(self.encoder(input_ids, attention_mask, token_type_ids))  # (B, T, L)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100)
        return out


class BertMaskedLM(_WithEncoder):
    """Masked-language model; the output projection is tied to the token embedding."""

    def __init__(self, config: dict[str, Any]) -> None:
        check_encoder_config(config, "bert-mlm")
        _check_head_config(config, "bert-mlm", labels=False, mlm=True)
        super().__init__(config)
        backbone = config["backbone"]
        self.head = MaskedLMHead(backbone["hidden_size"], config["vocab_size"],
                                 activation=config.get("mlm_activation", backbone.get("activation", "gelu")),
                                 norm_eps=backbone.get("norm_eps", 1e-12))
        self._tie()

    def _tie(self) -> None:
        self.head.tie_to(self.encoder.embeddings.tokens)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        logits = self.head(self.encoder(input_ids, attention_mask, token_type_ids))  # (B, T, V)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100)
        return out


def _build(cls):
    def build(config: dict[str, Any]) -> nn.Module:
        model = cls(config)
        if not any(p.is_meta for p in model.parameters()):
            init_weights(model)
        return model
    build.__name__ = f"build_{cls.__name__}"
    return build


build_encoder = _build(BertEncoder)
build_classifier = _build(BertClassifier)
build_token_classifier = _build(BertTokenClassifier)
build_masked_lm = _build(BertMaskedLM)
