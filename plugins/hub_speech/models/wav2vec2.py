"""wav2vec 2.0 CTC recognisers on the shared backbone, and the converter from transformers.

The convolutional feature encoder and positional convolution come from
:mod:`hub_speech.models.wav2vec2_layers`; the Transformer is Hub's backbone (post-norm for the
wav2vec2-base layout, pre-norm + final norm for ``do_stable_layer_norm`` models such as
large-lv60); the output layer is :class:`hub_speech.models.layers.CTCHead`.

Hub config (``config`` object of a Hub config.json)::

    {"conv_dim": [512]*7, "conv_kernel": [10,3,3,3,3,2,2], "conv_stride": [5,2,2,2,2,2,2],
     "conv_bias": false, "feat_extract_norm": "group", "feat_extract_activation": "gelu",
     "num_conv_pos_embeddings": 128, "num_conv_pos_embedding_groups": 16,
     "layer_norm_eps": 1e-5, "stable_layer_norm": false,
     "backbone": {TransformerConfig fields}, "vocab": [...tokens by id...], "blank": 0,
     "word_delimiter": "|", "sample_rate": 16000, "do_normalize": true}
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hub.backbone import Transformer, TransformerConfig
from hub.backbone.config import ACTIVATIONS, ConfigReader
from hub.checkpoint import Checkpoint
from hub.errors import ConfigError, ModelLoadError
from hub.modeling import check_layer_count
from hub_speech.models.layers import CTCHead, lengths_to_mask
from hub_speech.models.wav2vec2_layers import ConvFeatureEncoder, ConvPositionalEmbedding, fold_weight_norm


def check_wav2vec2_config(config: Any) -> TransformerConfig:
    """Validate a ``wav2vec2-ctc`` config (one ConfigError naming the key); returns its backbone."""
    read = ConfigReader(config, "wav2vec2-ctc config")
    dims = read.int_list("conv_dim", max_length=64)
    read.int_list("conv_kernel", length=len(dims))
    read.int_list("conv_stride", length=len(dims))
    read.bool("conv_bias", False)
    read.choice("feat_extract_norm", ("group", "layer"), "group")
    read.choice("feat_extract_activation", tuple(a for a in ACTIVATIONS if a != "swiglu"), "gelu")
    read.int("num_conv_pos_embeddings", 128, maximum=65536)
    groups = read.int("num_conv_pos_embedding_groups", 16)
    read.float("layer_norm_eps", 1e-5, above=0.0, maximum=1.0)
    read.bool("stable_layer_norm", False)
    read.float("final_dropout", 0.0, minimum=0.0, below=1.0)
    vocab = read.str_list("vocab")
    read.int("blank", 0, minimum=0, maximum=len(vocab) - 1)
    read.int("sample_rate", 16000, minimum=1000, maximum=768000)
    backbone = TransformerConfig.from_dict(read.mapping("backbone"))
    if backbone.hidden_size % groups:
        raise ConfigError(f"wav2vec2-ctc config: backbone.hidden_size ({backbone.hidden_size}) must be divisible "
                          f"by num_conv_pos_embedding_groups ({groups}).")
    return backbone


class Wav2Vec2CTC(nn.Module):
    """Raw 16 kHz samples -> conv features -> projection -> + conv positions -> Transformer -> CTC logits."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        backbone = check_wav2vec2_config(config)
        self.config = config
        eps = config.get("layer_norm_eps", 1e-5)
        dims = config["conv_dim"]
        self.features = ConvFeatureEncoder(dims, config["conv_kernel"], config["conv_stride"],
                                           bias=config.get("conv_bias", False),
                                           norm=config.get("feat_extract_norm", "group"),
                                           activation=config.get("feat_extract_activation", "gelu"))
        self.projection_norm = nn.LayerNorm(dims[-1], eps=eps)
        self.projection = nn.Linear(dims[-1], backbone.hidden_size)
        self.position = ConvPositionalEmbedding(backbone.hidden_size, config.get("num_conv_pos_embeddings", 128),
                                                config.get("num_conv_pos_embedding_groups", 16),
                                                config.get("feat_extract_activation", "gelu"))
        self.stable_layer_norm = bool(config.get("stable_layer_norm", False))
        # post-norm (base): LayerNorm after adding positions; pre-norm: the backbone's final norm
        self.input_norm = nn.Identity() if self.stable_layer_norm else nn.LayerNorm(backbone.hidden_size, eps=eps)
        self.dropout = nn.Dropout(backbone.dropout)
        self.encoder = Transformer(backbone)
        self.head = CTCHead(backbone.hidden_size, len(config["vocab"]), blank=config.get("blank", 0),
                            dropout=config.get("final_dropout", 0.0))

    def get_classifier(self) -> nn.Module:
        """The CTC head (``head.*``), as timm's ``get_classifier``. There is no
        ``reset_classifier``: the outputs are the vocabulary the transcripts are written in
        (``config["vocab"]``, saved as ``vocab.json``), not class labels."""
        return self.head

    @property
    def sample_rate(self) -> int:
        return int(self.config.get("sample_rate", 16000))

    @property
    def samples_per_frame(self) -> int:
        stride = 1
        for s in self.config["conv_stride"]:
            stride *= s
        return stride

    @property
    def min_samples(self) -> int:
        return self.features.receptive_field

    def frame_lengths(self, sample_lengths: torch.Tensor) -> torch.Tensor:
        return self.features.output_lengths(sample_lengths)

    def encode(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, S) samples -> (B, T, C) final hidden states and the (B, T) frame mask (None: no padding)."""
        x = self.features(input_values)  # (B, T, conv_dim)
        x = self.projection(self.projection_norm(x))  # (B, T, C)
        mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            mask = lengths_to_mask(self.frame_lengths(attention_mask.sum(-1)), x.shape[1])
            x = x.masked_fill(~mask[..., None], 0.0)
        x = self.dropout(self.input_norm(x + self.position(x)))
        return self.encoder(x, mask), mask

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        hidden, mask = self.encode(input_values, attention_mask)
        logits = self.head(hidden)  # (B, T, V)
        out = {"logits": logits}
        if mask is not None:
            out["frame_mask"] = mask
        if labels is not None:
            lengths = mask.sum(-1) if mask is not None else torch.full(
                (logits.shape[0],), logits.shape[1], dtype=torch.long, device=logits.device)
            out["loss"] = self.head.loss(logits, lengths, labels)
        return out


def build_wav2vec2_ctc(config: dict[str, Any]) -> Wav2Vec2CTC:
    return Wav2Vec2CTC(config)


_UNSUPPORTED = {"add_adapter": "adapter layers", "use_weighted_layer_sum": "weighted layer sums"}


def _side_files(checkpoint: Checkpoint | None, classes: int) -> dict[str, Any]:
    """The Hub config values a transformers wav2vec2 folder keeps beside config.json: the
    vocabulary (``vocab.json``, token -> id) and the feature extractor's ``do_normalize`` and
    ``sampling_rate`` (``preprocessor_config.json``). Absent files give the defaults."""
    values: dict[str, Any] = {"do_normalize": True, "sample_rate": 16000}
    if checkpoint is None:
        return values
    where = str(checkpoint.folder / "vocab.json")
    vocab = checkpoint.read_json("vocab.json")
    if vocab:
        if not isinstance(vocab, dict) or not all(isinstance(i, int) and not isinstance(i, bool)
                                                  for i in vocab.values()):
            raise ModelLoadError(f"{where!r} must map each token to its integer id, as transformers writes it.")
        if len(vocab) != classes:
            raise ModelLoadError(f"{where!r} has {len(vocab)} tokens but the model outputs {classes}.")
        values["vocab"] = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    preprocessor = checkpoint.read_json("preprocessor_config.json") or {}
    if not isinstance(preprocessor, dict):
        raise ModelLoadError(f"{str(checkpoint.folder / 'preprocessor_config.json')!r} must be a JSON object.")
    values["do_normalize"] = bool(preprocessor.get("do_normalize", True))
    values["sample_rate"] = int(preprocessor.get("sampling_rate", 16000))
    return values


def convert_wav2vec2(config: dict[str, Any], state: dict[str, torch.Tensor], *,
                     checkpoint: Checkpoint | None = None
                     ) -> tuple[str, dict[str, Any], dict[str, torch.Tensor]]:
    """transformers ``Wav2Vec2ForCTC`` (config.json + weights) -> ("wav2vec2-ctc", Hub config, state dict).

    ``checkpoint`` gives the folder's side files: the vocabulary comes from ``vocab.json`` and
    ``do_normalize`` / ``sample_rate`` from ``preprocessor_config.json`` (see :func:`_side_files`).
    """
    for key, what in _UNSUPPORTED.items():
        if config.get(key):
            raise ModelLoadError(f"wav2vec2 checkpoints with {what} ({key}=true) are not supported yet.")
    if config.get("hidden_act", "gelu") not in ("gelu", "relu", "gelu_new", "silu"):
        raise ModelLoadError(f"wav2vec2 hidden_act {config.get('hidden_act')!r} is not supported.")
    prefix = "wav2vec2." if any(k.startswith("wav2vec2.") for k in state) else ""
    if "lm_head.weight" not in state:
        raise ModelLoadError("This wav2vec2 checkpoint has no CTC head (lm_head); speech-recognize needs a "
                             "Wav2Vec2ForCTC checkpoint such as facebook/wav2vec2-base-960h.")
    check_layer_count(state, prefix + "encoder.layers.", config["num_hidden_layers"], "num_hidden_layers")
    stable = bool(config.get("do_stable_layer_norm", False))
    activation = {"gelu_new": "gelu_tanh"}.get(config.get("hidden_act", "gelu"), config.get("hidden_act", "gelu"))
    backbone = TransformerConfig(
        hidden_size=config["hidden_size"], num_layers=config["num_hidden_layers"],
        num_heads=config["num_attention_heads"], intermediate_size=config["intermediate_size"],
        activation=activation, norm="layernorm", norm_eps=config.get("layer_norm_eps", 1e-5),
        norm_position="pre" if stable else "post", qkv_bias=True, out_bias=True, mlp_bias=True,
        dropout=config.get("hidden_dropout", 0.1), attention_dropout=config.get("attention_dropout", 0.1))
    side = _side_files(checkpoint, int(state["lm_head.weight"].shape[0]))
    hub_config = {
        "conv_dim": list(config["conv_dim"]), "conv_kernel": list(config["conv_kernel"]),
        "conv_stride": list(config["conv_stride"]), "conv_bias": bool(config.get("conv_bias", False)),
        "feat_extract_norm": config.get("feat_extract_norm", "group"),
        "feat_extract_activation": config.get("feat_extract_activation", "gelu"),
        "num_conv_pos_embeddings": config.get("num_conv_pos_embeddings", 128),
        "num_conv_pos_embedding_groups": config.get("num_conv_pos_embedding_groups", 16),
        "layer_norm_eps": config.get("layer_norm_eps", 1e-5), "stable_layer_norm": stable,
        "backbone": backbone.to_dict(),
        "vocab": side.get("vocab") or [f"<{i}>" for i in range(state["lm_head.weight"].shape[0])],
        "blank": config.get("pad_token_id", 0), "word_delimiter": "|", "sample_rate": side["sample_rate"],
        "do_normalize": side["do_normalize"],
    }
    out: dict[str, torch.Tensor] = {}

    def get(name: str) -> torch.Tensor:
        if prefix + name not in state:
            raise ModelLoadError(f"wav2vec2 checkpoint is missing weight {prefix + name!r}; it is not a complete "
                                 "Wav2Vec2ForCTC checkpoint.")
        return state[prefix + name]
    for i in range(len(config["conv_dim"])):
        src = f"feature_extractor.conv_layers.{i}."
        for kind in ("conv.weight", "conv.bias", "layer_norm.weight", "layer_norm.bias"):
            if prefix + src + kind in state:
                out[f"features.conv_layers.{i}.{kind.replace('layer_norm', 'norm')}"] = get(src + kind)
    for ours, theirs in (("projection_norm", "feature_projection.layer_norm"),
                         ("projection", "feature_projection.projection")):
        out[f"{ours}.weight"], out[f"{ours}.bias"] = get(f"{theirs}.weight"), get(f"{theirs}.bias")
    pos = "encoder.pos_conv_embed.conv."
    if prefix + pos + "parametrizations.weight.original0" in state:
        g, v = get(pos + "parametrizations.weight.original0"), get(pos + "parametrizations.weight.original1")
    elif prefix + pos + "weight_g" in state:
        g, v = get(pos + "weight_g"), get(pos + "weight_v")
    else:
        g = v = None
    out["position.conv.weight"] = fold_weight_norm(g, v, dim=2) if g is not None else get(pos + "weight")
    out["position.conv.bias"] = get(pos + "bias")
    norm_target = "encoder.final_norm" if stable else "input_norm"
    out[f"{norm_target}.weight"], out[f"{norm_target}.bias"] = get("encoder.layer_norm.weight"), \
        get("encoder.layer_norm.bias")
    for i in range(config["num_hidden_layers"]):
        src, dst = f"encoder.layers.{i}.", f"encoder.layers.{i}."
        a = src + "attention."
        out[dst + "attn.qkv.weight"] = torch.cat([get(a + f"{p}_proj.weight") for p in "qkv"])
        out[dst + "attn.qkv.bias"] = torch.cat([get(a + f"{p}_proj.bias") for p in "qkv"])
        out[dst + "attn.out.weight"], out[dst + "attn.out.bias"] = get(a + "out_proj.weight"), get(a + "out_proj.bias")
        for ours, theirs in (("norm1", "layer_norm"), ("norm2", "final_layer_norm"),
                             ("mlp.fc1", "feed_forward.intermediate_dense"),
                             ("mlp.fc2", "feed_forward.output_dense")):
            out[f"{dst}{ours}.weight"], out[f"{dst}{ours}.bias"] = get(f"{src}{theirs}.weight"), \
                get(f"{src}{theirs}.bias")
    if "lm_head.bias" not in state:
        raise ModelLoadError("wav2vec2 checkpoint is missing weight 'lm_head.bias'.")
    out["head.proj.weight"], out["head.proj.bias"] = state["lm_head.weight"], state["lm_head.bias"]
    return "wav2vec2-ctc", hub_config, {k: v.contiguous() for k, v in out.items()}
