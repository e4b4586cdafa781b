"""Vision Transformer (ViT) on the shared backbone, and the converter from timm checkpoints.

Hub config (the ``config`` object of a Hub config.json; defaults give ViT-B/16 at 224)::

    {"img_size": [224, 224], "patch_size": [16, 16], "in_chans": 3, "num_classes": 1000,
     "global_pool": "token",          # "token" | "avg" | "max" | "avgmax" | "" (no pooling)
     "class_token": true, "reg_tokens": 0, "no_embed_class": false, "pos_embed": true,
     "patch_bias": true, "pre_norm": false,   # LayerNorm after the embeddings (CLIP)
     "norm": true,                    # final norm after the blocks (timm's ``norm``)
     "fc_norm": false,                # norm after pooling instead (timm's ``fc_norm``)
     "pool_include_prefix": false, "pos_dropout": 0.0, "head_dropout": 0.0,
     "backbone": {TransformerConfig fields; norm_position "pre", norm_eps 1e-6, gelu, qkv_bias},
     "labels": [...],                 # optional class names, one per output
     "preprocess": {...}}             # optional: input_size, mean, std, interpolation, crop_pct

``norm`` defaults to ``not fc_norm`` and ``fc_norm`` to ``global_pool in (avg, max, avgmax)``,
as timm decides them.

timm checkpoints in timm's Hugging Face Hub layout (``config.json`` with ``architecture``,
``model_args`` and ``pretrained_cfg``, written by ``timm.models.save_for_hf`` /
``push_to_hf_hub``, + ``model.safetensors``) convert with :func:`convert_timm_vit`; the
ViT's shape is read from timm's own model built on the meta device, so timm's per-name
defaults (norm eps, activation, layer scale, ...) are honoured exactly.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hub.backbone import Transformer, TransformerConfig, init_weights
from hub.backbone.config import ConfigReader
from hub.backbone.layers import make_norm
from hub.backbone.pooling import pool
from hub.errors import ConfigError, HubError, ModelLoadError
from hub.modeling import build_budget
from hub_vision.models.patches import PatchEmbedding
from hub_vision.models.timm_args import check_model_args

POOLS = ("token", "avg", "max", "avgmax", "")
# timm's global_pool names -> hub.backbone.pooling's
TIMM_POOLING = {"token": "cls", "avg": "mean", "max": "max", "avgmax": "avgmax"}
BACKBONE_DEFAULTS: dict[str, Any] = {
    "norm_position": "pre", "norm_eps": 1e-6, "activation": "gelu", "qkv_bias": True,
    "dropout": 0.0, "attention_dropout": 0.0,
}


#: the keys of a ``vit`` config (``hub.create`` refuses others)
VIT_KEYS = ("img_size", "patch_size", "in_chans", "num_classes", "global_pool", "class_token", "reg_tokens",
            "no_embed_class", "pos_embed", "patch_bias", "pre_norm", "norm", "fc_norm", "pool_include_prefix",
            "pos_dropout", "head_dropout", "backbone", "labels", "preprocess")


def check_vit_config(config: Any) -> None:
    """Validate a ``vit`` config's keys (one ConfigError naming the key and what it takes)."""
    read = ConfigReader(config, "vit config")
    img, patch = read.size_pair("img_size", 224), read.size_pair("patch_size", 16)
    if any(s % p for s, p in zip(img, patch)):
        raise ConfigError(f"vit config: img_size {list(img)} must be a multiple of patch_size {list(patch)}.")
    read.int("in_chans", 3)
    read.int("num_classes", 1000, minimum=0)
    read.labels("labels", None, optional=True)
    read.choice("global_pool", POOLS, "token")
    read.int("reg_tokens", 0, minimum=0, maximum=4096)
    for flag in ("class_token", "no_embed_class", "pos_embed", "patch_bias", "pre_norm", "pool_include_prefix"):
        read.bool(flag, False)
    for flag in ("norm", "fc_norm"):
        if config.get(flag) is not None:
            read.bool(flag)
    read.float("pos_dropout", 0.0, minimum=0.0, below=1.0)
    read.float("head_dropout", 0.0, minimum=0.0, below=1.0)
    if config.get("preprocess") is not None:
        read.mapping("preprocess")
    read.mapping("backbone", {})


def backbone_config(config: dict[str, Any]) -> TransformerConfig:
    check_vit_config(config)
    backbone = TransformerConfig.from_dict({**BACKBONE_DEFAULTS, **config.get("backbone", {})})
    if backbone.norm_position != "pre" or backbone.causal or backbone.rotary_dim:
        raise ConfigError("a ViT backbone is a pre-norm, non-causal Transformer without rotary positions.")
    return backbone


def pool_tokens(hidden: torch.Tensor, how: str, num_prefix_tokens: int, include_prefix: bool = False
                ) -> torch.Tensor:
    """(B, T, C) -> (B, C) as timm's ``global_pool``: the class token, or the mean / max /
    mean+max average over the patch tokens (prefix tokens too with ``include_prefix``);
    ``""`` keeps every token, (B, T, C)."""
    if how == "":
        return hidden
    if how not in TIMM_POOLING:
        raise ValueError(f"unknown global_pool {how!r}; use one of {POOLS}")
    return pool(hidden, None, TIMM_POOLING[how], skip=0 if include_prefix else num_prefix_tokens)


class VisionTransformer(nn.Module):
    """Patches -> shared pre-norm Transformer -> pool -> [fc_norm] -> linear classifier.

    ``forward(pixel_values)`` returns ``{"features": (B, C) pooled, "logits": (B, num_classes),
    "loss"?}``; with ``num_classes == 0`` there is no classifier and only ``"features"`` (timm's
    ``forward`` output for such a model).
    """

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = config
        backbone = backbone_config(config)
        labels = config.get("labels")
        num_classes = config.get("num_classes", len(labels) if labels else 1000)
        if labels and len(labels) != num_classes:
            raise ConfigError(f"{len(labels)} labels for num_classes={num_classes}.")
        self.global_pool = config.get("global_pool", "token")
        if self.global_pool not in POOLS:
            raise ConfigError(f"global_pool {self.global_pool!r} is not one of {POOLS}.")
        class_token = bool(config.get("class_token", True))
        if self.global_pool == "token" and not class_token:
            raise ConfigError("global_pool='token' needs the class token (class_token=true).")
        use_fc_norm = config.get("fc_norm")
        if use_fc_norm is None:
            use_fc_norm = self.global_pool in ("avg", "max", "avgmax")
        use_norm = config.get("norm", not use_fc_norm)
        self.pool_include_prefix = bool(config.get("pool_include_prefix", False))
        self.num_classes = num_classes
        pre_norm = bool(config.get("pre_norm", False))

        self.embeddings = PatchEmbedding(
            config.get("img_size", 224), config.get("patch_size", 16), config.get("in_chans", 3),
            backbone.hidden_size, class_token=class_token, reg_tokens=int(config.get("reg_tokens", 0)),
            position="learned" if config.get("pos_embed", True) else "none",
            no_embed_class=bool(config.get("no_embed_class", False)),
            bias=bool(config.get("patch_bias", not pre_norm)), dropout=config.get("pos_dropout", 0.0),
        )
        self.norm_pre = make_norm(backbone) if pre_norm else None
        self.encoder = Transformer(backbone)
        if not use_norm:
            self.encoder.final_norm = nn.Identity()
        self.fc_norm = make_norm(backbone) if use_fc_norm else None
        self.head_drop = nn.Dropout(config.get("head_dropout", 0.0))
        self.head = nn.Linear(backbone.hidden_size, num_classes) if num_classes > 0 else None

    @property
    def labels(self) -> list[str]:
        labels = self.config.get("labels")
        return list(labels) if labels else [f"LABEL_{i}" for i in range(self.num_classes)]

    @property
    def num_prefix_tokens(self) -> int:
        return self.embeddings.num_prefix_tokens

    @property
    def in_chans(self) -> int:
        return int(self.config.get("in_chans", 3))

    channels_last = False  # a patch convolution then matmuls: NCHW is as fast

    def get_classifier(self) -> nn.Module:
        """The head (an Identity when the model has no classifier), as timm's ``get_classifier``."""
        return self.head if self.head is not None else nn.Identity()

    def reset_classifier(self, labels: int | list[str]) -> None:
        """A new linear head for ``labels`` (names, or a count: ``LABEL_0 ...``), initialised as
        timm initialises one (truncated normal, std 0.02; a zero head would stop every gradient
        into a backbone trained from scratch). The backbone is untouched."""
        from hub.data.labels import head_labels

        labels = head_labels(labels)
        width = self.embeddings.proj.out_channels
        head = nn.Linear(width, len(labels), device=self.embeddings.proj.weight.device,
                         dtype=self.embeddings.proj.weight.dtype)
        nn.init.trunc_normal_(head.weight, std=0.02)
        nn.init.zeros_(head.bias)
        self.head, self.num_classes = head, len(labels)
        self.config = {**self.config, "num_classes": len(labels), "labels": list(labels)}

    def feature_maps(self, pixel_values: torch.Tensor, indices: int | list[int] | None = None,
                     norm: bool = False) -> list[torch.Tensor]:
        """Block outputs as (B, C, grid_h, grid_w) maps, prefix tokens dropped: timm's
        ``forward_intermediates(..., output_fmt="NCHW", intermediates_only=True)``.
        ``indices``: None = every block, an int k = the last k, a list = those blocks."""
        _, hidden = self.encoder(self.embed(pixel_values), output_hidden_states=True)
        blocks = hidden[1:]
        n = len(blocks)
        chosen = range(n) if indices is None else (
            range(n - indices, n) if isinstance(indices, int) else [i % n for i in indices])
        gh, gw = self.embeddings.grid_size
        maps = []
        for i in chosen:
            x = blocks[i]
            if norm and not isinstance(self.encoder.final_norm, nn.Identity):
                x = self.encoder.final_norm(x)
            x = x[:, self.num_prefix_tokens:]  # (B, N, C)
            maps.append(x.transpose(1, 2).reshape(x.shape[0], x.shape[2], gh, gw))
        return maps

    def embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, in_chans, H, W) -> (B, T, C) tokens entering the first block."""
        x = self.embeddings(pixel_values)
        return self.norm_pre(x) if self.norm_pre is not None else x

    def forward_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, in_chans, H, W) -> (B, T, C) final hidden states (after the final norm, if any)."""
        return self.encoder(self.embed(pixel_values))

    def forward_head(self, hidden: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """(B, T, C) hidden states (or (B, C) class-token states) -> (B, num_classes) logits,
        or the pooled (B, C) features with ``pre_logits`` or without a classifier."""
        x = hidden if hidden.ndim == 2 else pool_tokens(hidden, self.global_pool, self.num_prefix_tokens,
                                                         self.pool_include_prefix)
        if self.fc_norm is not None:
            x = self.fc_norm(x)
        if pre_logits or self.head is None:
            return x
        return self.head(self.head_drop(x))

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        x = self.embed(pixel_values)  # (B, T, C)
        if self.global_pool == "token" and not self.training:
            hidden = self.encoder(x, select=0)  # only the class token's last-layer query: (B, C)
        else:
            hidden = self.encoder(x)  # (B, T, C)
        features = self.forward_head(hidden, pre_logits=True)
        out = {"features": features}
        if self.head is not None:
            out["logits"] = self.head(self.head_drop(features))
            if labels is not None:
                out["loss"] = F.cross_entropy(out["logits"].float(), labels)
        return out


def build_vit(config: dict[str, Any]) -> VisionTransformer:
    model = VisionTransformer(config)
    if not any(p.is_meta for p in model.parameters()):
        init_weights(model)
        model.embeddings.reset_parameters()
    return model


# ---------------------------------------------------------------------------------------------
# timm -> Hub


def _timm_reference(hf: dict[str, Any], state: dict[str, torch.Tensor] | None = None) -> tuple[str, nn.Module]:
    """timm's own model for this config.json, built on the meta device (no memory, no init),
    under a budget from ``state`` (the checkpoint's weights) when given."""
    name = hf.get("architecture")
    if not isinstance(name, str) or not name:
        raise ModelLoadError("timm config.json has no 'architecture' (the timm model name).")
    try:
        import timm
    except ImportError as exc:  # pragma: no cover - timm is a dependency
        raise ModelLoadError(f"converting a timm checkpoint needs timm: {exc}") from None
    if not timm.is_model(name.split(".")[0]):
        raise ModelLoadError(f"timm has no architecture {name!r} (timm {timm.__version__}); "
                             "upgrade timm or check config.json's 'architecture'.")
    # only the model class's own keyword arguments: never checkpoint_path & co (files)
    kwargs = check_model_args(name.split(".")[0], hf.get("model_args"), "timm config.json",
                              allow=frozenset({"num_classes", "global_pool"}))
    if "num_classes" in hf:
        kwargs.setdefault("num_classes", hf["num_classes"])
    if isinstance(hf.get("global_pool"), str):
        kwargs.setdefault("global_pool", hf["global_pool"])
    for key in ("num_classes",):
        value = kwargs.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ModelLoadError(f"timm config.json {key!r} must be a non-negative integer, got {value!r:.60}.")
    budget = contextlib.nullcontext() if state is None else build_budget(
        4 * len(state) + 64, 4 * sum(t.numel() for t in state.values()) + (1 << 20), 16 * len(state) + 1024,
        lambda what: ModelLoadError(f"timm config.json describes a {name!r} with {what}, but its weights hold "
                                    f"{len(state):,} tensors: model_args {kwargs} do not belong to these weights."))
    try:
        with budget, torch.device("meta"):
            try:  # classic VisionTransformer even if TIMM_USE_NAFLEXVIT is set
                model = timm.create_model(name, pretrained=False, use_naflex=False, **kwargs)
            except TypeError:
                model = timm.create_model(name, pretrained=False, **kwargs)
    except HubError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"timm cannot build {name!r} with model_args {kwargs}: "
                             f"{type(exc).__name__}: {exc}") from None
    return name, model


def _hub_config_from_timm(name: str, ref: nn.Module, hf: dict[str, Any]) -> dict[str, Any]:
    """Read a (meta) timm VisionTransformer's structure; refuse what the backbone cannot do."""
    from timm.layers import Attention, LayerNorm, LayerScale, Mlp, PatchEmbed, RmsNorm
    from timm.layers.activations import GELU, GELUTanh
    from timm.models.vision_transformer import Block
    from timm.models.vision_transformer import VisionTransformer as TimmViT

    activations = {GELU: "gelu", GELUTanh: "gelu_tanh", nn.ReLU: "relu", nn.SiLU: "silu"}

    def unsupported(feature: str) -> ModelLoadError:
        return ModelLoadError(f"timm model {name!r} uses {feature}, which Hub's ViT does not support "
                              "(supported: class/register tokens, learned positions, token/avg/max "
                              "pooling, fc_norm, layer scale, pre-norm, LayerNorm/RMSNorm, GELU).")

    if type(ref) is not TimmViT:
        raise unsupported(f"the model class {type(ref).__name__} (only timm's VisionTransformer converts)")
    pe = ref.patch_embed
    if type(pe) is not PatchEmbed:
        raise unsupported(f"the patch embedding {type(pe).__name__} (hybrid CNN stems are not supported)")
    proj = pe.proj
    if (tuple(proj.kernel_size) != tuple(proj.stride) or tuple(proj.padding) != (0, 0)
            or tuple(proj.dilation) != (1, 1) or proj.groups != 1):
        raise unsupported("a patch convolution that is not kernel == stride, unpadded")
    if not isinstance(pe.norm, nn.Identity):
        raise unsupported("a norm inside the patch embedding (embed_norm_layer)")
    if getattr(pe, "dynamic_img_pad", False):
        raise unsupported("dynamic_img_pad")
    if ref.attn_pool is not None:
        raise unsupported(f"attention pooling (global_pool={ref.global_pool!r})")
    if ref.global_pool not in POOLS:
        raise unsupported(f"global_pool={ref.global_pool!r}")

    norms: list[nn.Module] = [m for m in (ref.norm_pre, ref.norm, ref.fc_norm) if not isinstance(m, nn.Identity)]
    blocks = list(ref.blocks)
    if not blocks:
        raise unsupported("depth=0")
    first = blocks[0]
    for block in blocks:
        if type(block) is not Block:
            raise unsupported(f"the block type {type(block).__name__} (block_fn)")
        attn, mlp = block.attn, block.mlp
        if type(attn) is not Attention:
            raise unsupported(f"the attention layer {type(attn).__name__} (attn_layer)")
        if not isinstance(attn.q_norm, nn.Identity) or not isinstance(attn.k_norm, nn.Identity):
            raise unsupported("qk_norm (normalised queries and keys)")
        if not isinstance(attn.norm, nn.Identity):
            raise unsupported("scale_attn_norm (a norm before the attention projection)")
        if getattr(attn, "gate", None) is not None:
            raise unsupported("gated attention")
        if attn.attn_dim != ref.embed_dim or attn.proj.out_features != ref.embed_dim:
            raise unsupported("an attention width other than embed_dim (attn_head_dim)")
        if abs(attn.scale - attn.head_dim ** -0.5) > 1e-12:
            raise unsupported("a non-standard attention scale")
        if type(mlp) is not Mlp:
            raise unsupported(f"the MLP {type(mlp).__name__} (mlp_layer, e.g. SwiGLU)")
        if not isinstance(mlp.norm, nn.Identity):
            raise unsupported("scale_mlp_norm (a norm inside the MLP)")
        if (mlp.fc1.bias is None) != (mlp.fc2.bias is None):
            raise unsupported("an MLP with a bias on only one of its layers")
        for ls in (block.ls1, block.ls2):
            if not isinstance(ls, (nn.Identity, LayerScale)):
                raise unsupported(f"the layer scale {type(ls).__name__}")
        norms += [block.norm1, block.norm2]
        shape = (attn.num_heads, attn.qkv.bias is None, attn.proj.bias is None, mlp.fc1.bias is None,
                 mlp.fc1.out_features, type(mlp.act), getattr(mlp.act, "approximate", None))
        ref_shape = (first.attn.num_heads, first.attn.qkv.bias is None, first.attn.proj.bias is None,
                     first.mlp.fc1.bias is None, first.mlp.fc1.out_features, type(first.mlp.act),
                     getattr(first.mlp.act, "approximate", None))
        if shape != ref_shape:
            raise unsupported("blocks of different shapes")

    act = first.mlp.act
    if type(act) is nn.GELU:
        activation = "gelu" if act.approximate == "none" else "gelu_tanh"
    elif type(act) in activations:
        activation = activations[type(act)]
    else:
        raise unsupported(f"the activation {type(act).__name__} (act_layer)")

    kinds = set()
    for norm in norms:
        if isinstance(norm, nn.LayerNorm) and (type(norm) is nn.LayerNorm or type(norm) is LayerNorm):
            if not norm.elementwise_affine or norm.bias is None:
                raise unsupported("a LayerNorm without weight or bias")
            kinds.add("layernorm")
        elif type(norm) is RmsNorm and norm.weight is not None:
            kinds.add("rmsnorm")
        else:
            raise unsupported(f"the norm layer {type(norm).__name__} (norm_layer)")
        if getattr(norm, "_fast_norm", False):
            raise unsupported("fast_norm (APEX) norms")
    eps = {float(n.eps) for n in norms}
    if len(kinds) != 1 or len(eps) != 1:
        raise unsupported("norm layers of different kinds or eps")

    backbone = {
        "hidden_size": ref.embed_dim, "num_layers": len(blocks), "num_heads": first.attn.num_heads,
        "intermediate_size": first.mlp.fc1.out_features, "activation": activation,
        "norm": kinds.pop(), "norm_eps": eps.pop(), "norm_position": "pre",
        "qkv_bias": first.attn.qkv.bias is not None, "out_bias": first.attn.proj.bias is not None,
        "mlp_bias": first.mlp.fc1.bias is not None,
        "dropout": float(first.attn.proj_drop.p), "attention_dropout": float(first.attn.attn_drop.p),
    }
    config: dict[str, Any] = {
        "img_size": list(pe.img_size), "patch_size": list(pe.patch_size), "in_chans": proj.in_channels,
        "num_classes": ref.num_classes, "global_pool": ref.global_pool,
        "class_token": ref.cls_token is not None, "reg_tokens": int(ref.num_reg_tokens),
        "no_embed_class": bool(ref.no_embed_class), "pos_embed": ref.pos_embed is not None,
        "patch_bias": proj.bias is not None, "pre_norm": not isinstance(ref.norm_pre, nn.Identity),
        "norm": not isinstance(ref.norm, nn.Identity), "fc_norm": not isinstance(ref.fc_norm, nn.Identity),
        "pool_include_prefix": bool(ref.pool_include_prefix),
        "pos_dropout": float(ref.pos_drop.p), "head_dropout": float(ref.head_drop.p),
        "backbone": backbone,
    }
    config.update(timm_labels_and_preprocess(hf, ref.num_classes))
    return config


def timm_labels_and_preprocess(hf: dict[str, Any], num_classes: int) -> dict[str, Any]:
    """What a timm HF config.json says beyond the architecture: ``labels`` (from
    ``label_names``, when one per class) and ``preprocess`` (from ``pretrained_cfg``)."""
    extras: dict[str, Any] = {}
    labels = _labels(hf.get("label_names"), num_classes)
    if labels:
        extras["labels"] = labels
    cfg = hf.get("pretrained_cfg") or {}
    preprocess = {k: cfg[k] for k in ("input_size", "interpolation", "crop_pct", "crop_mode", "mean", "std")
                  if k in cfg}
    if preprocess:
        extras["preprocess"] = preprocess
    return extras


def _labels(names: Any, num_classes: int) -> list[str] | None:
    if isinstance(names, dict):
        names = [names.get(str(i), names.get(i)) for i in range(len(names))]
    if isinstance(names, (list, tuple)) and len(names) == num_classes and all(n is not None for n in names):
        return [str(n) for n in names]
    return None


_RENAMES = [  # timm name -> Hub name (regex, template)
    (r"patch_embed\.proj\.(weight|bias)", r"embeddings.proj.\1"),
    (r"(cls_token|reg_token|pos_embed)", r"embeddings.\1"),
    (r"norm_pre\.(weight|bias)", r"norm_pre.\1"),
    (r"blocks\.(\d+)\.(norm1|norm2)\.(weight|bias)", r"encoder.layers.\1.\2.\3"),
    (r"blocks\.(\d+)\.attn\.qkv\.(weight|bias)", r"encoder.layers.\1.attn.qkv.\2"),  # q, k, v: same order
    (r"blocks\.(\d+)\.attn\.proj\.(weight|bias)", r"encoder.layers.\1.attn.out.\2"),
    (r"blocks\.(\d+)\.mlp\.(fc1|fc2)\.(weight|bias)", r"encoder.layers.\1.mlp.\2.\3"),
    (r"norm\.(weight|bias)", r"encoder.final_norm.\1"),
    (r"fc_norm\.(weight|bias)", r"fc_norm.\1"),
    (r"head\.(weight|bias)", r"head.\1"),
]
# layer scale ``x + gamma * f(x)`` is folded into f's output layer: gamma * (W y + b)
_LAYER_SCALE = re.compile(r"blocks\.(\d+)\.(ls1|ls2)\.gamma")
_SCALED = {"ls1": "attn.out", "ls2": "mlp.fc2"}


def convert_timm_vit(hf: dict[str, Any], state: dict[str, torch.Tensor]
                     ) -> tuple[str, dict[str, Any], dict[str, torch.Tensor]]:
    """timm ``VisionTransformer`` (timm's HF Hub format) -> Hub ``vit``.

    Layer scale (``init_values``) is folded into the attention output projection and the
    second MLP layer (exact up to float rounding), so the converted model is the plain
    shared backbone.
    """
    name, ref = _timm_reference(hf, state)
    config = _hub_config_from_timm(name, ref, hf)
    expected = ref.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise ModelLoadError(
            f"the weights do not match timm's {name!r} as config.json describes it: "
            f"missing {missing[:8]}{'...' if len(missing) > 8 else ''}, "
            f"unexpected {unexpected[:8]}{'...' if len(unexpected) > 8 else ''}.")
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise ModelLoadError(f"weight {key!r} has shape {tuple(state[key].shape)} but timm's {name!r} "
                                 f"with the config.json's model_args expects {tuple(tensor.shape)}.")
    out: dict[str, torch.Tensor] = {}
    scales: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        match = _LAYER_SCALE.fullmatch(key)
        if match:
            scales[f"encoder.layers.{match[1]}.{_SCALED[match[2]]}"] = tensor
            continue
        for pattern, template in _RENAMES:
            if re.fullmatch(pattern, key):
                out[re.sub(pattern, template, key)] = tensor
                break
        else:
            raise ModelLoadError(f"timm weight {key!r} of {name!r} has no place in Hub's ViT.")
    for layer, gamma in scales.items():
        for kind in ("weight", "bias"):
            if f"{layer}.{kind}" in out:
                w = out[f"{layer}.{kind}"]
                g = gamma.float()
                out[f"{layer}.{kind}"] = (w.float() * (g[:, None] if kind == "weight" else g)).to(w.dtype)
    return "vit", config, out
