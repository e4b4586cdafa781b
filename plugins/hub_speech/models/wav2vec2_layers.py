"""wav2vec 2.0's layers, laid out so transformers' ``Wav2Vec2Model`` checkpoints map 1:1.

* :class:`ConvFeatureEncoder`: the learned convolutional feature encoder over raw samples
  (20 ms per frame).
* :class:`ConvPositionalEmbedding`: the grouped convolutional relative position embedding;
  :func:`fold_weight_norm` folds the checkpoint's weight norm into its plain weight.
"""

from __future__ import annotations

import torch
from torch import nn

from hub.backbone.layers import activation_fn


class _ConvLayer(nn.Module):
    """One wav2vec 2.0 feature-encoder layer: conv -> [GroupNorm | LayerNorm] -> GELU."""

    def __init__(self, in_dim: int, out_dim: int, kernel: int, stride: int, *, bias: bool, norm: str | None,
                 activation: str) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_dim, out_dim, kernel, stride=stride, bias=bias)
        self.norm_kind = norm
        if norm == "group":
            self.norm = nn.GroupNorm(out_dim, out_dim, affine=True)
        elif norm == "layer":
            self.norm = nn.LayerNorm(out_dim, elementwise_affine=True)
        else:
            self.norm = None
        self.act = activation_fn(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)  # (B, C, T)
        if self.norm_kind == "group":
            x = self.norm(x)
        elif self.norm_kind == "layer":
            x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        return self.act(x)


class ConvFeatureEncoder(nn.Module):
    """wav2vec 2.0's feature encoder: (B, S) raw samples -> (B, T, conv_dim[-1]).

    ``norm="group"`` normalises the first layer only (GroupNorm with one group per
    channel, wav2vec2-base); ``"layer"`` puts a LayerNorm in every layer (large-lv60).
    """

    def __init__(self, conv_dim: list[int], conv_kernel: list[int], conv_stride: list[int], *,
                 bias: bool = False, norm: str = "group", activation: str = "gelu") -> None:
        super().__init__()
        if not len(conv_dim) == len(conv_kernel) == len(conv_stride):
            raise ValueError("conv_dim, conv_kernel and conv_stride must have the same length.")
        if norm not in ("group", "layer"):
            raise ValueError(f"norm must be 'group' or 'layer', got {norm!r}")
        self.kernels, self.strides = list(conv_kernel), list(conv_stride)
        dims = [1, *conv_dim]
        self.conv_layers = nn.ModuleList(
            _ConvLayer(dims[i], dims[i + 1], conv_kernel[i], conv_stride[i], bias=bias, activation=activation,
                       norm="layer" if norm == "layer" else ("group" if i == 0 else None))
            for i in range(len(conv_dim)))

    @property
    def receptive_field(self) -> int:
        """The fewest samples that give one frame."""
        field = 1
        for kernel, stride in zip(reversed(self.kernels), reversed(self.strides)):
            field = (field - 1) * stride + kernel
        return field

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        for kernel, stride in zip(self.kernels, self.strides):
            lengths = torch.div(lengths - kernel, stride, rounding_mode="floor") + 1
        return lengths.clamp(min=0)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        x = waveforms[:, None]  # (B, 1, S)
        for layer in self.conv_layers:
            x = layer(x)
        return x.transpose(1, 2)  # (B, T, C)


class ConvPositionalEmbedding(nn.Module):
    """wav2vec 2.0's relative positions: a wide grouped convolution over the frames + GELU,
    added to them by the caller. The checkpoint's weight norm is folded into ``conv.weight``."""

    def __init__(self, hidden_size: int, kernel: int = 128, groups: int = 16, activation: str = "gelu") -> None:
        super().__init__()
        self.conv = nn.Conv1d(hidden_size, hidden_size, kernel, padding=kernel // 2, groups=groups)
        self.trim = 1 if kernel % 2 == 0 else 0
        self.act = activation_fn(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x.transpose(1, 2))  # (B, C, T + trim)
        if self.trim:
            y = y[:, :, :-self.trim]
        return self.act(y).transpose(1, 2)


def fold_weight_norm(g: torch.Tensor, v: torch.Tensor, dim: int = 2) -> torch.Tensor:
    """``g * v / ||v||`` with the norm over every dimension but ``dim`` (torch's weight_norm)."""
    dims = [d for d in range(v.dim()) if d != dim]
    return g * v / v.norm(dim=dims, keepdim=True)

