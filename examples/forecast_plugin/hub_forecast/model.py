"""``patch-forecaster``: a PatchTST-style forecaster built on :class:`hub.backbone.Transformer`.

The last ``context_length`` values are normalised by their own mean and standard deviation
(so one model serves series of any scale), cut into non-overlapping patches of
``patch_length`` values, each patch embedded by a linear layer plus a learned position,
transformed by the shared backbone (bidirectional), and a linear head reads all patches'
states to predict the next ``horizon`` values, which are de-normalised.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hub.backbone import Transformer, TransformerConfig, init_weights
from hub.errors import ConfigError

#: the model's sizes; ``backbone`` holds :class:`hub.backbone.TransformerConfig` fields
DEFAULT_CONFIG: dict[str, Any] = {
    "context_length": 32,
    "patch_length": 8,
    "horizon": 8,
    "backbone": {"hidden_size": 32, "num_layers": 2, "num_heads": 2, "intermediate_size": 64,
                 "norm_position": "pre", "dropout": 0.0, "attention_dropout": 0.0, "norm_eps": 1e-5},
}


def resolve_config(config: dict[str, Any] | None) -> dict[str, Any]:
    """``config`` over :data:`DEFAULT_CONFIG` (``backbone`` merged key by key), checked."""
    config = dict(config or {})
    unknown = set(config) - set(DEFAULT_CONFIG)
    if unknown:
        raise ConfigError(f"time-series-forecast: unknown config key(s) {sorted(unknown)}; "
                          f"known: {sorted(DEFAULT_CONFIG)}.")
    merged = {**DEFAULT_CONFIG, **config,
              "backbone": {**DEFAULT_CONFIG["backbone"], **dict(config.get("backbone") or {})}}
    for key in ("context_length", "patch_length", "horizon"):
        value = merged[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"time-series-forecast: config[{key!r}] must be a positive integer, got {value!r}.")
    if merged["context_length"] % merged["patch_length"]:
        raise ConfigError(f"time-series-forecast: context_length ({merged['context_length']}) must be a multiple "
                          f"of patch_length ({merged['patch_length']}).")
    TransformerConfig.from_dict(merged["backbone"])  # a bad backbone key or size: ConfigError naming it
    return merged


class PatchForecaster(nn.Module):
    """``model(series=(B, context_length), target=(B, horizon) optional)`` ->
    ``{"logits": (B, horizon) forecast, "loss": MSE on the normalised scale}`` (the
    :mod:`hub.train.contract` the Trainer reads)."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = resolve_config(config)
        backbone = TransformerConfig.from_dict(self.config["backbone"])
        self.num_patches = self.config["context_length"] // self.config["patch_length"]
        self.patch_embed = nn.Linear(self.config["patch_length"], backbone.hidden_size)
        self.position = nn.Parameter(torch.zeros(1, self.num_patches, backbone.hidden_size))
        self.encoder = Transformer(backbone)
        self.head = nn.Linear(self.num_patches * backbone.hidden_size, self.config["horizon"])
        self.apply(init_weights)
        nn.init.normal_(self.position, std=0.02)

    def forward(self, series: torch.Tensor, target: torch.Tensor | None = None, **_: Any) -> dict[str, torch.Tensor]:
        series = series.to(self.patch_embed.weight.dtype)
        mean = series.mean(dim=1, keepdim=True)
        scale = series.std(dim=1, keepdim=True, unbiased=False).clamp_min(1e-5)
        x = ((series - mean) / scale).unflatten(1, (self.num_patches, self.config["patch_length"]))
        hidden = self.encoder(self.patch_embed(x) + self.position)        # (B, P, C)
        normalised = self.head(hidden.flatten(1))                        # (B, horizon)
        out = {"logits": normalised * scale + mean}
        if target is not None:
            out["loss"] = nn.functional.mse_loss(normalised, (target.to(series.dtype) - mean) / scale)
        return out


def build_patch_forecaster(config: dict[str, Any]) -> PatchForecaster:
    """The ``patch-forecaster`` architecture's builder (named in the plugin's ArchitectureSpec)."""
    return PatchForecaster(config)
