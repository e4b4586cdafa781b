"""The shared Transformer library every Hub modality builds on.

A front end turns inputs into (B, T, C) hidden states,
:class:`~hub.backbone.transformer.Transformer` transforms them, and a head turns them into
task outputs. An encoder-decoder is two stacks: the decoder's config sets
``cross_attention`` and it is called with the encoder's output as ``memory``; T5's
relative-position bias is :mod:`~hub.backbone.relative_position`. The core holds only what
several families share (timm's ``layers/`` rule): the Transformer, its attention, norms,
feed-forwards, rotary and KV cache, the token
embedding (text and recsys), :func:`~hub.backbone.pooling.pool` (text, audio, vision) and
the classification and masked-token heads (:mod:`~hub.backbone.heads`). A layer only one
family uses, or one laid out for one foreign checkpoint (wav2vec2's convolutions, the CTC
head, the log-mel and patch front ends), lives in that family's plugin, where a
third-party plugin would put its own.

``transformer.py`` and ``attention.py`` are the reference path; the inference fast paths
(unpad/packing, ``select=``, the KV cache's use) live in :mod:`~hub.backbone.fastpaths`.
"""

from hub.backbone.cache import KVCache
from hub.backbone.config import TransformerConfig
from hub.backbone.embeddings import TokenEmbedding, sinusoidal_positions
from hub.backbone.heads import ClassificationHead, MaskedLMHead
from hub.backbone.pooling import pool
from hub.backbone.transformer import Transformer, TransformerBlock, build_attention_mask, init_weights

__all__ = [
    "ClassificationHead", "KVCache", "MaskedLMHead", "TokenEmbedding", "Transformer", "TransformerBlock",
    "TransformerConfig",
    "build_attention_mask", "init_weights", "pool", "sinusoidal_positions",
]
