"""Audio front ends: waveforms -> (B, T, C) frames for the shared Transformer.

Two families:

* :class:`LogMelFrontEnd` + :class:`ConvSubsampling`: log-mel filterbanks (torchaudio's
  mel scale, computed on the fly so no filterbank is stored with the weights), then two
  stride-2 3x3 convolutions (4x fewer frames: 40 ms per frame at a 10 ms hop) and a linear
  projection, as Conformer/Whisper-style recognisers start.
* :class:`ConvFeatureEncoder` + :class:`ConvPositionalEmbedding`: wav2vec 2.0's learned
  convolutional feature encoder over raw samples (20 ms per frame) and its grouped
  convolutional relative position embedding, laid out so transformers' ``Wav2Vec2Model``
  checkpoints map 1:1.

Every front end also maps sample-level lengths to frame-level lengths
(``output_lengths``), from which the padding mask of the frames is made.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def lengths_to_mask(lengths: torch.Tensor, length: int) -> torch.Tensor:
    """(B,) lengths -> (B, length) bool mask, True at real positions."""
    return torch.arange(length, device=lengths.device)[None, :] < lengths[:, None]


class LogMelFrontEnd(nn.Module):
    """(B, S) waveforms at ``sample_rate`` -> (B, T, n_mels) log-mel frames (T = S // hop + 1).

    Parameter-free: the window and mel filterbank are made on first use per device and dtype.
    """

    def __init__(self, *, sample_rate: int = 16000, n_fft: int = 400, hop_length: int = 160,
                 n_mels: int = 80, f_min: float = 0.0, f_max: float | None = None) -> None:
        super().__init__()
        self.sample_rate, self.n_fft, self.hop_length, self.n_mels = sample_rate, n_fft, hop_length, n_mels
        self.f_min, self.f_max = f_min, f_max if f_max is not None else sample_rate / 2
        self._tables: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}

    def _window_and_filters(self, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        key = (device, dtype)
        if key not in self._tables:
            import torchaudio.functional as AF

            window = torch.hann_window(self.n_fft, device=device, dtype=dtype)
            filters = AF.melscale_fbanks(self.n_fft // 2 + 1, self.f_min, self.f_max, self.n_mels,
                                         self.sample_rate, norm="slaney", mel_scale="slaney")
            self._tables[key] = window, filters.to(device=device, dtype=dtype)  # (F, n_mels)
        return self._tables[key]

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return torch.div(lengths, self.hop_length, rounding_mode="floor") + 1

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        dtype = waveforms.dtype if waveforms.dtype in (torch.float32, torch.float64) else torch.float32
        x = waveforms.to(dtype)
        window, filters = self._window_and_filters(x.device, dtype)
        # zero ("constant") padding at the edges: a clip then gives the same frames alone as
        # zero-padded in a batch
        spec = torch.stft(x, self.n_fft, self.hop_length, window=window, center=True, pad_mode="constant",
                          return_complex=True)  # (B, F, T)
        power = spec.real.square() + spec.imag.square()
        mel = torch.matmul(power.transpose(1, 2), filters)  # (B, T, n_mels)
        return torch.log(mel + 1e-6)


class ConvSubsampling(nn.Module):
    """(B, T, n_mels) -> (B, ceil(ceil(T/2)/2), C): two stride-2 3x3 convolutions + ReLU, then
    a linear projection of (channels x reduced mel bins) to the model width."""

    def __init__(self, n_mels: int, hidden_size: int, *, channels: int | None = None) -> None:
        super().__init__()
        channels = channels or hidden_size
        self.conv1 = nn.Conv2d(1, channels, kernel_size=3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=1)
        freq = (((n_mels - 1) // 2 + 1) - 1) // 2 + 1
        self.proj = nn.Linear(channels * freq, hidden_size)

    @staticmethod
    def output_lengths(lengths: torch.Tensor) -> torch.Tensor:
        for _ in range(2):
            lengths = torch.div(lengths - 1, 2, rounding_mode="floor") + 1
        return lengths

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``lengths`` (B,) real frames per row: padding is zeroed before each convolution, so a
        padded clip gives the same outputs as the clip alone (whose edges see zero padding)."""
        x = frames[:, None]  # (B, 1, T, M)
        for conv in (self.conv1, self.conv2):
            if lengths is not None:
                x = x * lengths_to_mask(lengths, x.shape[2])[:, None, :, None].to(x.dtype)
                lengths = torch.div(lengths - 1, 2, rounding_mode="floor") + 1
            x = F.relu(conv(x))  # (B, ch, T/2, M/2), then (B, ch, T/4, M/4)
        batch, channels, length, freq = x.shape
        return self.proj(x.permute(0, 2, 1, 3).reshape(batch, length, channels * freq))


class _ConvLayer(nn.Module):
    """One wav2vec 2.0 feature-encoder layer: conv -> [GroupNorm | LayerNorm] -> GELU."""

    def __init__(self, in_dim: int, out_dim: int, kernel: int, stride: int, *, bias: bool, norm: str | None,
                 activation: str) -> None:
        super().__init__()
        from hub.backbone.layers import activation_fn

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
        from hub.backbone.layers import activation_fn

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

