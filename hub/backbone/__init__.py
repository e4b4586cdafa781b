"""The shared Transformer library every Hub modality builds on.

Front ends (:mod:`~hub.backbone.embeddings`) turn inputs into (B, T, C) hidden states,
:class:`~hub.backbone.transformer.Transformer` transforms them, and heads
(:mod:`~hub.backbone.heads`) turn them into task outputs. ``transformer.py`` and
``attention.py`` are the reference path; the inference fast paths (unpad/packing,
``select=``, the KV cache's use) live in :mod:`~hub.backbone.fastpaths`.
"""

from hub.backbone.cache import KVCache
from hub.backbone.config import TransformerConfig
from hub.backbone.embeddings import TokenEmbedding, sinusoidal_positions
from hub.backbone.heads import ClassificationHead, MaskedLMHead, TokenClassificationHead, pool
from hub.backbone.transformer import Transformer, TransformerBlock, build_attention_mask, init_weights

__all__ = [
    "ClassificationHead", "KVCache", "MaskedLMHead", "TokenClassificationHead", "TokenEmbedding", "Transformer", "TransformerBlock", "TransformerConfig",
    "build_attention_mask", "init_weights", "pool", "sinusoidal_positions",
]
