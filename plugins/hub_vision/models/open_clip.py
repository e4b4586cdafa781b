"""open_clip's CLIP checkpoints (``open_clip.model.CLIP``) converted into Hub's ``clip``.

open_clip stores OpenAI's original layout under its own names, and on the Hugging Face Hub
as ``open_clip_config.json`` (``{"model_cfg": {"embed_dim", "quick_gelu", "vision_cfg",
"text_cfg"}, "preprocess_cfg": {...}}``) beside ``open_clip_model.safetensors``, with no
``config.json``: that folder is what :func:`load_open_clip_folder` reads (the
``zero-shot-image-classify`` pipeline calls it for such a folder, so ``hub.load(...,
model=folder_or_repo)`` works). The architecture is OpenAI CLIP's, which Hub's
:class:`~hub_vision.models.clip.ClipModel` already is; only names and layouts differ:

==========================================  ==============================================
open_clip                                   Hub ``clip``
==========================================  ==============================================
``visual.conv1`` / ``class_embedding`` /    ``vision.embeddings.proj`` / ``cls_token`` /
``positional_embedding``                    ``pos_embed``
``visual.ln_pre`` / ``visual.ln_post``      ``vision.norm_pre`` / ``vision.encoder.final_norm``
``*.transformer.resblocks.N.attn.in_proj_*``  ``*.encoder.layers.N.attn.qkv.*`` (q, k, v
                                            stacked in the same order)
``ln_1`` / ``ln_2`` / ``mlp.c_fc`` /        ``norm1`` / ``norm2`` / ``mlp.fc1`` / ``mlp.fc2``
``mlp.c_proj``
``visual.proj`` / ``text_projection``       ``visual_projection`` / ``text_projection``
(``(width, embed_dim)`` matrices)           (Linear weights: the transpose)
``token_embedding``, ``positional_embedding``, ``ln_final``, ``logit_scale``: the text
tower's embeddings and final norm, the temperature
==========================================  ==============================================

The activation is the one real difference between open_clip configs of the same shape:
``quick_gelu: true`` (OpenAI's own weights, ``ViT-B-32-quickgelu``) is ``x * sigmoid(1.702
x)``; without it open_clip builds ``nn.GELU`` (exact erf GELU), which most LAION / DataComp
checkpoints were trained with. Running a checkpoint with the other one gives wrong
embeddings with no error, so the flag is carried into both towers' config.

The text tower pools at the highest token id (``pool_type: "argmax"``, the end-of-text token
is the last of OpenAI's vocabulary) or at the first ``eos_id`` (``"eos"``). What open_clip
builds but OpenAI's layout lacks (layer scale, attentional pooling, timm or Hugging Face
towers, SigLIP's logit bias, CoCa's decoder, ...) is refused by name.

The tokenizer: OpenAI's BPE that open_clip ships (``bpe_simple_vocab_16e6.txt.gz``), laid
out as transformers' ``CLIPTokenizer`` (:func:`openai_clip_tokenizer`; needs open_clip
installed: ``pip install 'hub-sdk[clip]'``) when the folder holds no tokenizer files.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from hub.errors import HubError, ModelLoadError

CONFIG_NAME = "open_clip_config.json"
WEIGHTS_NAME = "open_clip_model.safetensors"
LEGACY_WEIGHTS_NAME = "open_clip_pytorch_model.bin"
#: model_cfg keys that change nothing Hub computes at inference
_IGNORED_MODEL_KEYS = {"embed_dim", "quick_gelu", "vision_cfg", "text_cfg", "custom_text", "init_logit_scale",
                       "cast_dtype", "output_dict"}
#: values of open_clip's vision / text config that OpenAI's layout has (key: the allowed values)
_VISION_FIXED: dict[str, tuple[Any, ...]] = {
    "ls_init_value": (None,), "attentional_pool": (False,), "no_ln_pre": (False,), "pos_embed_type": ("learnable",),
    "pool_type": ("tok",), "act_kwargs": (None, {}), "norm_kwargs": (None, {}), "block_type": (None, "default"),
    "qk_norm": (False,), "scaled_cosine_attn": (False,), "scale_heads": (False,), "scale_attn_inner": (False,),
    "scale_attn": (False,), "scale_fc": (False,), "timm_model_name": (None, ""), "input_patchnorm": (False,),
}
_TEXT_FIXED: dict[str, tuple[Any, ...]] = {
    "ls_init_value": (None,), "embed_cls": (False,), "no_causal_mask": (False,), "pool_type": ("argmax", "eos"),
    "proj_bias": (False,), "proj_type": ("linear",), "act_kwargs": (None, {}), "norm_kwargs": (None, {}),
    "block_type": (None, "default"), "qk_norm": (False,), "scaled_cosine_attn": (False,), "scale_heads": (False,),
    "scale_attn_inner": (False,), "scale_attn": (False,), "scale_fc": (False,), "hf_model_name": (None, ""),
}
#: open_clip's defaults (CLIPVisionCfg / CLIPTextCfg) for the keys a config may omit
_VISION_DEFAULTS = {"layers": 12, "width": 768, "head_width": 64, "mlp_ratio": 4.0, "patch_size": 16,
                    "image_size": 224}
_TEXT_DEFAULTS = {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 12,
                  "mlp_ratio": 4.0, "pool_type": "argmax", "eos_id": 2}
#: open_clip's resize modes as timm's data-config crop modes
_RESIZE_MODES = {"shortest": "center", "squash": "squash", "longest": "border"}
_OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
_OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def is_open_clip_folder(folder: str | Path) -> bool:
    """A folder in open_clip's Hugging Face layout: ``open_clip_config.json`` and no
    ``config.json`` (repos holding both are transformers ``CLIPModel`` checkpoints too,
    which Hub converts from ``config.json``)."""
    folder = Path(folder)
    return (folder / CONFIG_NAME).is_file() and not (folder / "config.json").is_file()


def _check_fixed(cfg: dict[str, Any], fixed: dict[str, tuple[Any, ...]], which: str) -> None:
    for key, allowed in fixed.items():
        if key in cfg and cfg[key] not in allowed:
            raise ModelLoadError(f"{CONFIG_NAME}: model_cfg.{which}.{key}={cfg[key]!r:.60} is not OpenAI CLIP's "
                                 f"layout (Hub converts {key}={allowed[0]!r}); this open_clip model needs open_clip "
                                 "itself.")


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ModelLoadError(f"{CONFIG_NAME}: {where} must be an object, got {type(value).__name__}.")
    return value


def _positive_int(cfg: dict[str, Any], key: str, which: str) -> int:
    value = cfg[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelLoadError(f"{CONFIG_NAME}: model_cfg.{which}.{key} must be a positive integer, got {value!r:.40}.")
    return value


def _backbone(cfg: dict[str, Any], heads: int, which: str) -> dict[str, Any]:
    width, layers = _positive_int(cfg, "width", which), _positive_int(cfg, "layers", which)
    ratio = cfg["mlp_ratio"]
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or ratio <= 0:
        raise ModelLoadError(f"{CONFIG_NAME}: model_cfg.{which}.mlp_ratio must be a positive number, got {ratio!r}.")
    if width % heads:
        raise ModelLoadError(f"{CONFIG_NAME}: model_cfg.{which}: width {width} does not split into {heads} heads.")
    return {"hidden_size": width, "num_layers": layers, "num_heads": heads, "intermediate_size": int(width * ratio),
            "activation": "gelu", "norm_eps": 1e-5, "norm_position": "pre", "dropout": 0.0, "attention_dropout": 0.0}


def open_clip_config(raw: Any) -> dict[str, Any]:
    """``open_clip_config.json`` (or a bare ``model_cfg``) -> Hub's ``clip`` config.

    Raises:
        ModelLoadError: a config that is not OpenAI CLIP's layout, named by its key.
    """
    raw = _mapping(raw, "the file")
    model_cfg = _mapping(raw.get("model_cfg", raw), "model_cfg")
    unknown = sorted(set(model_cfg) - _IGNORED_MODEL_KEYS)
    if unknown:  # multimodal_cfg (CoCa), init_logit_bias (SigLIP), ...
        raise ModelLoadError(f"{CONFIG_NAME}: model_cfg {unknown} is not part of OpenAI CLIP's layout; Hub converts "
                             "open_clip's CLIP (vision_cfg, text_cfg, embed_dim, quick_gelu) only.")
    vision = {**_VISION_DEFAULTS, **_mapping(model_cfg.get("vision_cfg"), "model_cfg.vision_cfg")}
    text = {**_TEXT_DEFAULTS, **_mapping(model_cfg.get("text_cfg"), "model_cfg.text_cfg")}
    _check_fixed(vision, _VISION_FIXED, "vision_cfg")
    _check_fixed(text, _TEXT_FIXED, "text_cfg")
    quick = bool(model_cfg.get("quick_gelu", False))
    head_width = _positive_int(vision, "head_width", "vision_cfg")
    if vision["width"] % head_width:
        raise ModelLoadError(f"{CONFIG_NAME}: model_cfg.vision_cfg: width {vision['width']} is not a multiple of "
                             f"head_width {head_width}.")
    size, patch = vision["image_size"], vision["patch_size"]
    size = list(size) if isinstance(size, list | tuple) else size
    vocab = _positive_int(text, "vocab_size", "text_cfg")
    pool = text["pool_type"]
    eos = vocab - 1 if pool == "argmax" else text["eos_id"]
    preprocess = _mapping(raw.get("preprocess_cfg"), "preprocess_cfg")
    height, width = (size, size) if isinstance(size, int) else size
    resize = preprocess.get("resize_mode", "shortest")
    if resize not in _RESIZE_MODES:
        raise ModelLoadError(f"{CONFIG_NAME}: preprocess_cfg.resize_mode={resize!r} is not one of "
                             f"{sorted(_RESIZE_MODES)}.")
    embed_dim = model_cfg.get("embed_dim", 512)
    if isinstance(embed_dim, bool) or not isinstance(embed_dim, int) or embed_dim < 1:
        raise ModelLoadError(f"{CONFIG_NAME}: model_cfg.embed_dim must be a positive integer, got {embed_dim!r:.40}.")
    return {
        "vision": {"img_size": size, "patch_size": patch, "in_chans": 3, "quick_gelu": quick,
                   "backbone": _backbone(vision, vision["width"] // head_width, "vision_cfg")},
        "text": {"vocab_size": vocab, "max_positions": _positive_int(text, "context_length", "text_cfg"),
                 "eos_token_id": eos, "pooling": "argmax" if pool == "argmax" else "eos", "quick_gelu": quick,
                 "backbone": _backbone(text, _positive_int(text, "heads", "text_cfg"), "text_cfg")},
        "projection_dim": embed_dim,
        "logit_scale_init": float(model_cfg.get("init_logit_scale", math.log(1 / 0.07))),
        "preprocess": {"input_size": [3, height, width], "crop_pct": 1.0, "crop_mode": _RESIZE_MODES[resize],
                       "interpolation": preprocess.get("interpolation", "bicubic"),
                       "mean": list(preprocess.get("mean", _OPENAI_MEAN)),
                       "std": list(preprocess.get("std", _OPENAI_STD))},
    }


#: open_clip's per-block names -> Hub's (``in_proj`` is q, k, v stacked, as Hub's fused qkv)
_BLOCK = {"ln_1": "norm1", "ln_2": "norm2", "attn.out_proj": "attn.out", "mlp.c_fc": "mlp.fc1",
          "mlp.c_proj": "mlp.fc2"}
#: OpenAI's JIT-era state dicts carry these integers; they are not weights
_SCALARS = ("input_resolution", "context_length", "vocab_size")


def convert_open_clip(raw_config: Any, state: dict[str, torch.Tensor]
                      ) -> tuple[str, dict[str, Any], dict[str, torch.Tensor]]:
    """open_clip ``CLIP`` weights and config -> Hub ``clip`` (architecture, config, state dict).

    Raises:
        ModelLoadError: the config is not OpenAI CLIP's layout, or the weights lack or add a
            tensor (each named).
    """
    from hub.modeling import check_layer_count
    from hub_vision.models.clip import WeightTaker

    config = open_clip_config(raw_config)
    state = {k: v for k, v in state.items() if k not in _SCALARS and not k.endswith("attn_mask")}
    out: dict[str, torch.Tensor] = {}
    take = WeightTaker(state, "open_clip")

    for src, dst, tower in (("transformer.", "text.", "text"), ("visual.transformer.", "vision.", "vision")):
        layers = config[tower]["backbone"]["num_layers"]
        check_layer_count(state, f"{src}resblocks.", layers, f"model_cfg.{tower}_cfg.layers")
        for i in range(layers):
            a, b = f"{src}resblocks.{i}.", f"{dst}encoder.layers.{i}."
            out[f"{b}attn.qkv.weight"] = take(f"{a}attn.in_proj_weight")
            out[f"{b}attn.qkv.bias"] = take(f"{a}attn.in_proj_bias")
            for theirs, ours in _BLOCK.items():
                for kind in ("weight", "bias"):
                    out[f"{b}{ours}.{kind}"] = take(f"{a}{theirs}.{kind}")
    width = config["vision"]["backbone"]["hidden_size"]
    out["vision.embeddings.proj.weight"] = take("visual.conv1.weight")
    out["vision.embeddings.cls_token"] = take("visual.class_embedding").reshape(1, 1, width)
    out["vision.embeddings.pos_embed"] = take("visual.positional_embedding")[None]
    for kind in ("weight", "bias"):
        out[f"vision.norm_pre.{kind}"] = take(f"visual.ln_pre.{kind}")
        out[f"vision.encoder.final_norm.{kind}"] = take(f"visual.ln_post.{kind}")
        out[f"text.encoder.final_norm.{kind}"] = take(f"ln_final.{kind}")
    out["visual_projection.weight"] = take("visual.proj").t().contiguous()
    out["text_projection.weight"] = take("text_projection").t().contiguous()
    out["text.token_embedding.weight"] = take("token_embedding.weight")
    out["text.position_embedding.weight"] = take("positional_embedding")
    out["logit_scale"] = take("logit_scale").reshape(())
    left = take.left()
    if left:
        raise ModelLoadError(f"open_clip weights {left[:6]}{'...' if len(left) > 6 else ''} have no place in OpenAI "
                             "CLIP's layout (a logit_bias is SigLIP's, text.* a custom text tower's): Hub converts "
                             "open_clip's CLIP only.")
    return "clip", config, out


def load_open_clip_folder(folder: str | Path, *, device: Any = None, dtype: Any = None) -> Any:
    """An open_clip Hugging Face folder (``open_clip_config.json`` +
    ``open_clip_model.safetensors``, or ``open_clip_pytorch_model.bin`` read weights-only) as
    a :class:`hub.modeling.LoadedModel` of architecture ``clip``.

    Raises:
        ModelLoadError: unreadable files or a model that is not OpenAI CLIP's layout (the
            message names the file).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from hub.checkpoint import Checkpoint
    from hub.modeling import LoadedModel, _read_legacy, build_module, check_finite

    folder = Path(folder)
    checkpoint = Checkpoint.from_folder(folder, {})
    raw = checkpoint.read_json(CONFIG_NAME)
    if raw is None:
        raise ModelLoadError(f"{str(folder)!r} has no {CONFIG_NAME}; it is not an open_clip checkpoint folder.")
    weights = folder / WEIGHTS_NAME
    if weights.is_file():
        try:
            state = load_file(weights)
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelLoadError(f"Cannot read {str(weights)!r}: {exc}. The file is corrupt or truncated.") from None
    elif (folder / LEGACY_WEIGHTS_NAME).is_file():
        state = _read_legacy(folder / LEGACY_WEIGHTS_NAME)
    else:
        raise ModelLoadError(f"{str(folder)!r} has {CONFIG_NAME} but no weights ({WEIGHTS_NAME}).")
    try:
        architecture, config, state = convert_open_clip(raw, state)
        check_finite(state, str(folder))
        module = build_module(architecture, config, state)
    except HubError as exc:
        if not isinstance(exc, ModelLoadError) and type(exc).__name__ != "ConfigError":
            raise
        raise type(exc)(f"{str(folder / CONFIG_NAME)!r} (open_clip): {exc}") from None
    module.to(device=device, dtype=dtype).eval()
    return LoadedModel(module, architecture, config, folder, "open_clip:clip", None)


def openai_clip_tokenizer(max_length: int = 77) -> Any:
    """OpenAI CLIP's tokenizer (the BPE open_clip ships) as a transformers ``CLIPTokenizer``:
    the vocabulary laid out as open_clip's ``SimpleTokenizer`` lays it out (256 byte symbols,
    the same ending a word, one token per merge, then start- and end-of-text), so the ids are
    open_clip's.

    Raises:
        ModelLoadError: open_clip is not installed (naming the extra).
    """
    import gzip

    try:
        from open_clip.tokenizer import bytes_to_unicode, default_bpe
    except ImportError:
        raise ModelLoadError("an open_clip folder without tokenizer files needs OpenAI's BPE, which open_clip ships: "
                             "pip install 'hub-sdk[clip]' (open_clip_torch).") from None
    from transformers import CLIPTokenizer

    from hub_vision.clip_tokenizer import BOS, EOS

    with gzip.open(default_bpe()) as handle:
        lines = handle.read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    merges = [tuple(line.split()) for line in lines]
    symbols = list(bytes_to_unicode().values())
    tokens = [*symbols, *(s + "</w>" for s in symbols), *("".join(m) for m in merges), BOS, EOS]
    vocab = {token: i for i, token in enumerate(tokens)}
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=max_length)


def model_config_of(model: Any) -> dict[str, Any]:
    """An open_clip ``CLIP`` instance's ``model_cfg`` as open_clip_config.json states it, read
    from the modules (widths, depths, heads, the activation, the pooling), so a model made by
    ``open_clip.create_model_and_transforms`` converts without its config file.

    Raises:
        ModelLoadError: not OpenAI CLIP's layout (a CustomTextCLIP, CoCa, a timm or ResNet
            image tower, attentional pooling).
    """
    from open_clip.model import CLIP
    from open_clip.transformer import VisionTransformer

    if type(model) is not CLIP:
        raise ModelLoadError(f"Hub converts open_clip's CLIP (OpenAI's layout), not {type(model).__name__}.")
    visual = model.visual
    if type(visual) is not VisionTransformer or visual.attn_pool is not None or visual.pool_type != "tok":
        raise ModelLoadError(f"this open_clip CLIP's image tower ({type(visual).__name__}, pool "
                             f"{getattr(visual, 'pool_type', '?')!r}) is not OpenAI's ViT layout.")
    if getattr(model, "logit_bias", None) is not None:
        raise ModelLoadError("this open_clip model has a logit_bias (SigLIP): not OpenAI CLIP's layout.")

    def tower(transformer: Any) -> dict[str, Any]:
        block = transformer.resblocks[0]
        return {"layers": len(transformer.resblocks), "width": block.attn.embed_dim,
                "mlp_ratio": block.mlp.c_fc.out_features / block.attn.embed_dim}, block

    vision, vblock = tower(visual.transformer)
    text, tblock = tower(model.transformer)
    quick = type(vblock.mlp.gelu).__name__ == "QuickGELU"
    if quick != (type(tblock.mlp.gelu).__name__ == "QuickGELU"):
        raise ModelLoadError("this open_clip model's towers use different activations; Hub's CLIP uses one.")
    vision.update(head_width=vision["width"] // vblock.attn.num_heads, patch_size=list(visual.patch_size)[0],
                  image_size=list(visual.image_size))
    text.update(heads=tblock.attn.num_heads, context_length=model.context_length, vocab_size=model.vocab_size,
                pool_type=model.text_pool_type, eos_id=model.text_eos_id)
    return {"embed_dim": model.text_projection.shape[1], "quick_gelu": quick, "vision_cfg": vision,
            "text_cfg": text}


def pipeline_from_open_clip(model: Any, *, tokenizer: Any = None, device: Any = None) -> Any:
    """A ``zero-shot-image-classify`` pipeline on a live open_clip ``CLIP`` (its weights
    converted, copied), e.g. ``open_clip.create_model_and_transforms("ViT-B-32",
    pretrained=...)[0]``: the image preprocessing from ``model.visual``'s mean, std and
    ``preprocess_cfg``, the tokenizer OpenAI's BPE unless one is given (a transformers
    tokenizer). ``pipe.save(folder)`` then writes a Hub folder ``hub.load`` reads.

    Raises:
        ModelLoadError: the model is not OpenAI CLIP's layout (named).
    """
    from hub.modeling import build_module
    from hub.pipeline import default_device
    from hub_vision.pipelines.zero_shot import ZeroShotImageClassificationPipeline

    visual = model.visual
    preprocess = dict(getattr(visual, "preprocess_cfg", None) or {})
    for key in ("mean", "std"):
        value = getattr(visual, f"image_{key}", None)
        if value is not None:
            preprocess[key] = list(value)
    weights = {k: v.detach().to("cpu", torch.float32, copy=True) for k, v in model.state_dict().items()}
    architecture, config, state = convert_open_clip({"model_cfg": model_config_of(model),
                                                     "preprocess_cfg": preprocess}, weights)
    module = build_module(architecture, config, state)
    tokenizer = tokenizer if tokenizer is not None else openai_clip_tokenizer(config["text"]["max_positions"])
    metadata = {"task": ZeroShotImageClassificationPipeline.task, "architecture": architecture,
                "converted_from": "open_clip:clip", "source": "open_clip model"}
    return ZeroShotImageClassificationPipeline(module.eval(), tokenizer, device=default_device(device),
                                               metadata=metadata)
