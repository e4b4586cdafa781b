"""CLIP (contrastive image-text model) on the shared backbone, and the converter from
transformers' ``CLIPModel``.

Two towers map images and texts into one embedding space:

* **vision**: the vision plugin's :class:`~hub_vision.models.vit.VisionTransformer` as CLIP
  lays it out: patch convolution without bias, a class token, learned positions, a
  LayerNorm before the blocks (``pre_norm``), pre-norm blocks, the final norm read at the
  class token (CLIP's ``post_layernorm``: a LayerNorm is per token, so normalising every
  token and reading the first is the same), no classifier;
* **text**: token + learned position embeddings, causally masked pre-norm blocks, a final
  norm, pooled at the end-of-text token (:func:`eos_positions`, transformers' rule);

each followed by a bias-free linear projection into ``projection_dim``, and a learnable
temperature ``logit_scale`` (logits are ``exp(logit_scale) * cos(image, text)``).

Hub config::

    {"vision": {vit config: img_size, patch_size, in_chans, backbone; "quick_gelu"},
     "text": {"vocab_size", "max_positions", "eos_token_id", "backbone": {...}, "quick_gelu"},
     "projection_dim": 512, "logit_scale_init": 2.6592,
     "preprocess": {timm data config keys}}   # default: CLIP's, at vision.img_size

``quick_gelu`` (OpenAI CLIP's ``x * sigmoid(1.702 x)``) is CLIP's own activation; it lives
here, in the one family that uses it, as a feed-forward with the backbone's parameter names.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hub.backbone import Transformer, TransformerConfig, init_weights
from hub.backbone.config import ConfigReader
from hub.backbone.layers import FeedForward
from hub.errors import ConfigError, ModelLoadError
from hub.modeling import check_layer_count
from hub_vision.models.vit import VisionTransformer

#: OpenAI CLIP's image normalisation (transformers' OPENAI_CLIP_MEAN / OPENAI_CLIP_STD)
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
CLIP_KEYS = ("vision", "text", "projection_dim", "logit_scale_init", "preprocess")
TEXT_KEYS = ("vocab_size", "max_positions", "eos_token_id", "backbone", "quick_gelu", "pooling")
#: where the text tower reads a text: "auto" (transformers' rule, see :func:`eos_positions`),
#: "eos" (the first eos_token_id) or "argmax" (the highest token id: open_clip's default)
POOLINGS = ("auto", "eos", "argmax")
TOWER_BACKBONE = {"norm_position": "pre", "norm_eps": 1e-5, "activation": "gelu", "dropout": 0.0,
                  "attention_dropout": 0.0}


class QuickGELUFeedForward(FeedForward):
    """``fc2(quick_gelu(fc1(x)))`` with ``quick_gelu(x) = x * sigmoid(1.702 x)``: OpenAI CLIP's
    MLP. Same parameters as :class:`hub.backbone.layers.FeedForward`, so it replaces a
    block's ``mlp`` in place."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        return self.fc2(h * torch.sigmoid(1.702 * h))


def use_quick_gelu(encoder: Transformer) -> None:
    """Make every block's feed-forward CLIP's quick-GELU one: the same module and weights, its
    class switched to :class:`QuickGELUFeedForward` (no new parameters are allocated, which
    matters when the model is built on the meta device under a size budget)."""
    for layer in encoder.layers:
        if type(layer.mlp) is not FeedForward or layer.mlp.gate is not None:
            raise ConfigError("quick_gelu applies to a plain (ungated) feed-forward.")
        layer.mlp.__class__ = QuickGELUFeedForward


def eos_positions(input_ids: torch.Tensor, eos_token_id: int, pooling: str = "auto") -> torch.Tensor:
    """(B, T) token ids -> (B,) the position each text is pooled at. ``"auto"`` is transformers'
    rule: configs from before its PR #24773 say ``eos_token_id == 2`` and pool at the highest
    token id (the end-of-text token is the last in CLIP's vocabulary); otherwise the first
    ``eos_token_id`` (padding may reuse that id, so never the last). ``"argmax"`` /
    ``"eos"`` choose one of the two whatever the id (open_clip's ``pool_type``)."""
    if pooling == "argmax" or (pooling == "auto" and eos_token_id == 2):
        return input_ids.to(torch.int).argmax(dim=-1)
    return (input_ids == eos_token_id).to(torch.int).argmax(dim=-1)


def text_backbone(config: dict[str, Any]) -> TransformerConfig:
    backbone = TransformerConfig.from_dict({**TOWER_BACKBONE, **config.get("backbone", {}), "causal": True})
    if backbone.norm_position != "pre" or backbone.rotary_dim:
        raise ConfigError("a CLIP text tower is a pre-norm causal Transformer with learned positions.")
    return backbone


class ClipTextTower(nn.Module):
    """Token ids -> (B, C) states at each text's end-of-text token (before projection)."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        read = ConfigReader(config, "clip config", "text.")
        read.known(TEXT_KEYS)
        vocab, positions = read.int("vocab_size"), read.int("max_positions", 77)
        self.eos_token_id = read.int("eos_token_id", minimum=0)
        self.pooling = read.choice("pooling", POOLINGS, "auto")
        if self.eos_token_id >= vocab:
            raise ConfigError(f"clip config: text.eos_token_id ({self.eos_token_id}) must be below text.vocab_size "
                              f"({vocab}).")
        backbone = text_backbone(config)
        self.max_positions = positions
        self.token_embedding = nn.Embedding(vocab, backbone.hidden_size)
        self.position_embedding = nn.Embedding(positions, backbone.hidden_size)
        self.encoder = Transformer(backbone)
        if read.bool("quick_gelu", False):
            use_quick_gelu(self.encoder)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) ids and padding mask (1 = real) -> (B, C) pooled states."""
        length = input_ids.shape[1]
        if length > self.max_positions:
            raise ValueError(f"a text of {length} tokens is longer than the model's {self.max_positions} positions.")
        positions = torch.arange(length, device=input_ids.device)
        x = self.token_embedding(input_ids) + self.position_embedding(positions)[None]  # (B, T, C)
        if attention_mask is not None and bool((attention_mask[:, 1:] <= attention_mask[:, :-1]).all()):
            # right padding: no token at or before a text's end attends to it under the causal
            # mask, so the pooled states are the same without the padding mask, and the
            # attention runs causal-only kernels (open_clip never passes one)
            attention_mask = None
        hidden = self.encoder(x, attention_mask)  # (B, T, C), final norm applied
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        return hidden[rows, eos_positions(input_ids, self.eos_token_id, self.pooling).to(hidden.device)]  # (B, C)


def vision_config(config: dict[str, Any]) -> dict[str, Any]:
    """A CLIP vision tower's ``vit`` config: the ViT layout CLIP uses, features only."""
    fixed = {"class_token": True, "pre_norm": True, "patch_bias": False, "global_pool": "token", "norm": True,
             "fc_norm": False, "num_classes": 0, "reg_tokens": 0, "no_embed_class": False, "pos_embed": True}
    for key, value in fixed.items():
        if key in config and config[key] != value:
            raise ConfigError(f"clip config: vision.{key} must be {value!r} (CLIP's vision layout), got "
                              f"{config[key]!r:.40}.")
    out = {**{k: v for k, v in config.items() if k != "quick_gelu"}, **fixed}
    out["backbone"] = {**TOWER_BACKBONE, **config.get("backbone", {})}
    if "preprocess" in out:
        raise ConfigError("clip config: the image preprocessing is the top-level 'preprocess', not vision.preprocess.")
    return out


def default_preprocess(vision: dict[str, Any]) -> dict[str, Any]:
    """CLIP's preprocessing at the tower's size: bicubic resize of the short side, centre crop,
    OpenAI's mean and std (grey images: 0.5 / 0.5)."""
    read = ConfigReader(vision, "clip config", "vision.")
    height, width = read.size_pair("img_size", 224)
    chans = read.int("in_chans", 3)
    mean, std = (CLIP_MEAN, CLIP_STD) if chans == 3 else ([0.5] * chans, [0.5] * chans)
    return {"input_size": [chans, height, width], "interpolation": "bicubic", "crop_pct": 1.0, "crop_mode": "center",
            "mean": mean, "std": std}


class ClipModel(nn.Module):
    """Image and text towers, their projections and the temperature.

    ``forward(pixel_values=None, input_ids=None, attention_mask=None)``: with both inputs,
    ``{"loss", "logits", "logits_per_text", "image_embeds", "text_embeds"}`` (embeddings
    normalised, ``logits`` = ``logits_per_image``, the loss CLIP's symmetric InfoNCE over the
    batch, see :func:`contrastive_loss`); with pixels only, ``{"features"}`` = the projected
    image embeddings (not normalised), as ``image-embed`` reads them.
    """

    channels_last = False
    #: what text-embed does with :meth:`embed_text` (CLIP compares unit vectors)
    embedding_options = {"pooling": "eos", "normalize": True, "max_tokens": None}

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        read = ConfigReader(config, "clip config")
        read.known(CLIP_KEYS)
        read.mapping("vision")
        read.mapping("text")
        dim = read.int("projection_dim", 512)
        init = read.float("logit_scale_init", 2.6592, minimum=-100.0, maximum=100.0)
        vision = vision_config(config["vision"])
        quick = ConfigReader(config["vision"], "clip config", "vision.").bool("quick_gelu", False)
        preprocess = read.mapping("preprocess", None) if config.get("preprocess") is not None else None
        self.config = {**config, "vision": {**vision, "quick_gelu": quick},
                       "preprocess": preprocess or default_preprocess(vision)}
        self.vision = VisionTransformer(vision)
        if quick:
            use_quick_gelu(self.vision.encoder)
        self.text = ClipTextTower(config["text"])
        self.visual_projection = nn.Linear(self.vision.encoder.config.hidden_size, dim, bias=False)
        self.text_projection = nn.Linear(self.text.encoder.config.hidden_size, dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(float(init)))

    # -- what the vision pipelines read -------------------------------------------
    @property
    def in_chans(self) -> int:
        return self.vision.in_chans

    @property
    def labels(self) -> list[str]:
        return []  # the labels are the caller's (candidate_labels)

    num_classes = 0

    @property
    def max_positions(self) -> int:
        """The longest text the text tower takes (what text pipelines cap tokens at)."""
        return self.text.max_positions

    def feature_maps(self, pixel_values: torch.Tensor, indices: int | list[int] | None = None,
                     norm: bool = False) -> list[torch.Tensor]:
        """The vision tower's block outputs as (B, C, grid_h, grid_w) maps."""
        return self.vision.feature_maps(pixel_values, indices, norm)

    # -- embeddings ------------------------------------------------------------------
    def embed_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, projection_dim) projected image embeddings (not normalised;
        transformers' ``get_image_features``)."""
        return self.visual_projection(self.vision(pixel_values)["features"])

    def embed_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) ids -> (B, projection_dim) projected text embeddings (not normalised;
        transformers' ``get_text_features``). ``text-embed`` calls this on a CLIP folder."""
        return self.text_projection(self.text(input_ids, attention_mask))

    def forward(self, pixel_values: torch.Tensor | None = None, input_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, text_groups: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        if input_ids is None:
            if pixel_values is None:
                raise ValueError("ClipModel needs pixel_values, input_ids or both.")
            return {"features": self.embed_images(pixel_values)}
        text_embeds = F.normalize(self.embed_text(input_ids, attention_mask), dim=-1)
        if pixel_values is None:
            return {"text_embeds": text_embeds}
        image_embeds = F.normalize(self.embed_images(pixel_values), dim=-1)
        logits_per_text = self.logit_scale.exp() * text_embeds @ image_embeds.t()  # (B_text, B_image)
        logits = logits_per_text.t()
        out = {"logits": logits, "logits_per_text": logits_per_text, "image_embeds": image_embeds,
               "text_embeds": text_embeds}
        if logits.shape[0] == logits.shape[1]:
            out["loss"] = contrastive_loss(image_embeds, text_embeds, self.logit_scale, text_groups)
        return out


#: CLIP clamps its temperature at 100 (exp(logit_scale) <= 100) while training
MAX_LOGIT_SCALE = math.log(100.0)


def contrastive_loss(image_embeds: torch.Tensor, text_embeds: torch.Tensor, logit_scale: torch.Tensor,
                     text_groups: torch.Tensor | None = None) -> torch.Tensor:
    """CLIP's symmetric InfoNCE: the mean of the image->text and text->image cross-entropies
    over a batch of matched pairs (row i of each is a pair), the temperature clamped at 100.

    ``text_groups`` (B,) ids of identical captions: pairs sharing a caption are all positives
    of each other (the target spreads evenly over them), so two icons named alike in one
    batch do not push each other apart. Without it the target is the diagonal, as CLIP's.
    """
    scale = logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()
    logits = scale * image_embeds @ text_embeds.t()  # (B, B)
    if text_groups is None:
        target = torch.arange(logits.shape[0], device=logits.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
    same = (text_groups[:, None] == text_groups[None, :]).to(logits.dtype)
    target = same / same.sum(-1, keepdim=True)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


def build_clip(config: dict[str, Any]) -> ClipModel:
    """The ``clip`` architecture's builder; a fresh (not meta) model gets CLIP-style random
    weights (normal 0.02, positions 0.01, truncated-normal patch positions)."""
    model = ClipModel(config)
    if not any(p.is_meta for p in model.parameters()):
        init_weights(model)
        model.vision.embeddings.reset_parameters()
        nn.init.normal_(model.text.position_embedding.weight, std=0.01)
    return model


# -- transformers' CLIPModel -----------------------------------------------------------
#: transformers' CLIPTextConfig / CLIPVisionConfig defaults, for configs that omit a key
_TEXT_DEFAULTS = {"vocab_size": 49408, "hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12,
                  "num_attention_heads": 8, "max_position_embeddings": 77, "hidden_act": "quick_gelu",
                  "layer_norm_eps": 1e-5, "eos_token_id": 49407}
_VISION_DEFAULTS = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
                    "num_channels": 3, "image_size": 224, "patch_size": 32, "hidden_act": "quick_gelu",
                    "layer_norm_eps": 1e-5}
_ACTIVATIONS = {"quick_gelu": ("gelu", True), "gelu": ("gelu", False), "gelu_new": ("gelu_tanh", False),
                "gelu_pytorch_tanh": ("gelu_tanh", False), "relu": ("relu", False), "silu": ("silu", False)}


def _tower(hf: Any, defaults: dict[str, Any], which: str) -> tuple[dict[str, Any], dict[str, Any], bool]:
    if hf is not None and not isinstance(hf, dict):
        raise ModelLoadError(f"config.json {which} must be an object, got {type(hf).__name__}.")
    cfg = {**defaults, **{k: v for k, v in (hf or {}).items() if v is not None}}
    act = cfg["hidden_act"]
    if act not in _ACTIVATIONS:
        raise ModelLoadError(f"config.json {which}.hidden_act={act!r} is not one Hub's CLIP runs "
                             f"({', '.join(_ACTIVATIONS)}).")
    activation, quick = _ACTIVATIONS[act]
    backbone = {"hidden_size": cfg["hidden_size"], "num_layers": cfg["num_hidden_layers"],
                "num_heads": cfg["num_attention_heads"], "intermediate_size": cfg["intermediate_size"],
                "activation": activation, "norm_eps": float(cfg["layer_norm_eps"]), "norm_position": "pre",
                "dropout": 0.0, "attention_dropout": 0.0}
    return cfg, backbone, quick


def _preprocess(processor: Any, size: int) -> dict[str, Any]:
    """CLIPImageProcessor's preprocessor_config.json -> the ``preprocess`` block (resize the
    short side, centre-crop, normalise), as timm's data config states it."""
    processor = processor if isinstance(processor, dict) else {}
    crop = processor.get("crop_size", size)
    crop = crop.get("height", size) if isinstance(crop, dict) else crop
    short = processor.get("size", {"shortest_edge": crop})
    short = short.get("shortest_edge", short.get("height", crop)) if isinstance(short, dict) else short
    resample = processor.get("resample", 3)
    interpolation = {0: "nearest", 2: "bilinear", 3: "bicubic"}.get(resample, "bicubic")
    if not isinstance(crop, int) or not isinstance(short, int) or crop < 1 or short < 1:
        raise ModelLoadError(f"preprocessor_config.json: crop_size {crop!r} / size {short!r} must be positive "
                             "integers.")
    return {"input_size": [3, crop, crop], "crop_pct": crop / short if processor.get("do_center_crop", True)
            else 1.0, "interpolation": interpolation, "crop_mode": "center",
            "mean": list(processor.get("image_mean", CLIP_MEAN)), "std": list(processor.get("image_std", CLIP_STD))}


class WeightTaker:
    """A foreign checkpoint's tensors handed out by name, for the CLIP converters (transformers'
    and open_clip's): a missing weight is refused by name, and :meth:`left` names the ones no
    converted key took, which each converter refuses in its own words.

    Args:
        state: the checkpoint's tensors by name.
        source: the layout, as the error names it ("CLIP", "open_clip").
    """

    def __init__(self, state: dict[str, torch.Tensor], source: str) -> None:
        self.state, self.source = state, source
        self.taken: set[str] = set()

    def __call__(self, key: str) -> torch.Tensor:
        if key not in self.state:
            raise ModelLoadError(f"the {self.source} weights lack {key!r}.")
        self.taken.add(key)
        return self.state[key]

    def left(self) -> list[str]:
        """The names nothing took, sorted."""
        return sorted(set(self.state) - self.taken)


def convert_transformers_clip(hf: dict[str, Any], state: dict[str, torch.Tensor], *, checkpoint: Any = None
                              ) -> tuple[str, dict[str, Any], dict[str, torch.Tensor]]:
    """transformers ``CLIPModel`` -> Hub ``clip`` (q/k/v fused; the class embedding and the
    position table reshaped to the ViT's ``cls_token`` / ``pos_embed``; ``post_layernorm``
    and ``final_layer_norm`` become the towers' final norms). The image preprocessing comes
    from ``preprocessor_config.json`` when the folder has one."""
    text_cfg, text_backbone_cfg, text_quick = _tower(hf.get("text_config"), _TEXT_DEFAULTS, "text_config")
    vis_cfg, vis_backbone_cfg, vis_quick = _tower(hf.get("vision_config"), _VISION_DEFAULTS, "vision_config")
    state = {k: v for k, v in state.items() if not k.endswith("position_ids")}  # old checkpoints' buffers
    for prefix, cfg, which in (("text_model.encoder.layers.", text_cfg, "text_config"),
                               ("vision_model.encoder.layers.", vis_cfg, "vision_config")):
        check_layer_count(state, prefix, cfg["num_hidden_layers"], f"{which}.num_hidden_layers")
    processor = checkpoint.read_json("preprocessor_config.json") if checkpoint is not None else None
    size = vis_cfg["image_size"]
    config = {
        "vision": {"img_size": size, "patch_size": vis_cfg["patch_size"], "in_chans": vis_cfg["num_channels"],
                   "backbone": vis_backbone_cfg, "quick_gelu": vis_quick},
        "preprocess": _preprocess(processor, size),
        "text": {"vocab_size": text_cfg["vocab_size"], "max_positions": text_cfg["max_position_embeddings"],
                 "eos_token_id": text_cfg["eos_token_id"], "backbone": text_backbone_cfg, "quick_gelu": text_quick},
        "projection_dim": hf.get("projection_dim") or 512,
        "logit_scale_init": float(hf.get("logit_scale_init_value", 2.6592)),
    }
    out: dict[str, torch.Tensor] = {}
    take = WeightTaker(state, "CLIP")

    for src, dst, cfg in (("text_model.", "text.", text_cfg), ("vision_model.", "vision.", vis_cfg)):
        for i in range(cfg["num_hidden_layers"]):
            a, b = f"{src}encoder.layers.{i}.", f"{dst}encoder.layers.{i}."
            for kind in ("weight", "bias"):
                out[f"{b}attn.qkv.{kind}"] = torch.cat([take(f"{a}self_attn.{p}_proj.{kind}") for p in "qkv"])
                out[f"{b}attn.out.{kind}"] = take(f"{a}self_attn.out_proj.{kind}")
                out[f"{b}norm1.{kind}"] = take(f"{a}layer_norm1.{kind}")
                out[f"{b}norm2.{kind}"] = take(f"{a}layer_norm2.{kind}")
                out[f"{b}mlp.fc1.{kind}"] = take(f"{a}mlp.fc1.{kind}")
                out[f"{b}mlp.fc2.{kind}"] = take(f"{a}mlp.fc2.{kind}")
    width = vis_cfg["hidden_size"]
    out["vision.embeddings.proj.weight"] = take("vision_model.embeddings.patch_embedding.weight")
    out["vision.embeddings.cls_token"] = take("vision_model.embeddings.class_embedding").reshape(1, 1, width)
    out["vision.embeddings.pos_embed"] = take("vision_model.embeddings.position_embedding.weight")[None]
    for kind in ("weight", "bias"):
        out[f"vision.norm_pre.{kind}"] = take(f"vision_model.pre_layrnorm.{kind}")
        out[f"vision.encoder.final_norm.{kind}"] = take(f"vision_model.post_layernorm.{kind}")
        out[f"text.encoder.final_norm.{kind}"] = take(f"text_model.final_layer_norm.{kind}")
    out["text.token_embedding.weight"] = take("text_model.embeddings.token_embedding.weight")
    out["text.position_embedding.weight"] = take("text_model.embeddings.position_embedding.weight")
    out["visual_projection.weight"] = take("visual_projection.weight")
    out["text_projection.weight"] = take("text_projection.weight")
    out["logit_scale"] = take("logit_scale")
    left = take.left()
    if left:
        raise ModelLoadError(f"CLIP weights {left[:6]}{'...' if len(left) > 6 else ''} have no place in Hub's CLIP "
                             "(is this a CLIPModel checkpoint?).")
    return "clip", config, out
