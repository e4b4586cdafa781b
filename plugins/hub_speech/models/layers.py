"""The speech plugin's layers: waveforms -> (B, T, C) frames, and the CTC output layer.

* :class:`LogMelFrontEnd` + :class:`ConvSubsampling`: log-mel filterbanks (torchaudio's
  mel scale, computed on the fly so no filterbank is stored with the weights), then two
  stride-2 3x3 convolutions (4x fewer frames: 40 ms per frame at a 10 ms hop) and a linear
  projection, as Conformer/Whisper-style recognisers start. Hub's own speech models use them.
* :class:`CTCHead`: per-frame vocabulary logits and the CTC loss, for Hub's recogniser and
  the converted wav2vec2 ones.

wav2vec 2.0's own feature encoder and positional convolution are in
:mod:`hub_speech.models.wav2vec2_layers`. Every front end also maps sample-level lengths to
frame-level lengths (``output_lengths``), from which the padding mask of the frames is
made (:func:`lengths_to_mask`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

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


class CTCHead(nn.Module):
    """(B, T, C) frames -> (B, T, V) logits (dropout + linear; index ``blank`` is CTC's blank).

    Named ``proj`` so that transformers' ``lm_head`` of ``Wav2Vec2ForCTC`` maps onto it.
    """

    def __init__(self, hidden_size: int, vocab_size: int, *, blank: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        self.blank = blank
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(hidden_size, vocab_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.proj(self.dropout(hidden))

    def loss(self, logits: torch.Tensor, frame_lengths: torch.Tensor, labels: torch.Tensor,
             reduction: str = "mean") -> torch.Tensor:
        """CTC loss; ``labels`` (B, L) padded with -100 (or any negative id), as transformers pads them.

        ``reduction="mean"`` divides each sequence's loss by its label length, then averages
        (transformers' ``ctc_loss_reduction="mean"``); impossible alignments count as zero.
        """
        real = labels >= 0
        label_lengths = real.sum(-1)
        targets = labels.masked_select(real)
        log_probs = F.log_softmax(logits.float(), dim=-1).transpose(0, 1)  # (T, B, V)
        with torch.backends.cudnn.flags(enabled=False):
            return F.ctc_loss(log_probs, targets, frame_lengths, label_lengths, blank=self.blank,
                              reduction=reduction, zero_infinity=True)


def _dft_log_mel(front: LogMelFrontEnd, waveforms: torch.Tensor) -> torch.Tensor:
    """:meth:`LogMelFrontEnd.forward` with the STFT as a strided convolution whose kernels are
    the windowed DFT cosines and sines (made in float64): the same frames, centring and zero
    padding, in operators every ONNX runtime has."""
    import math

    x = waveforms.to(torch.float32)
    window, filters = front._window_and_filters(x.device, torch.float32)
    n_fft, bins = front.n_fft, front.n_fft // 2 + 1
    k = torch.arange(bins, dtype=torch.float64)[:, None]
    n = torch.arange(n_fft, dtype=torch.float64)[None, :]
    angle = 2 * math.pi * k * n / n_fft
    kernel = torch.cat([torch.cos(angle), -torch.sin(angle)]) * window.double()  # (2F, n_fft)
    padded = F.pad(x[:, None, :], (n_fft // 2, n_fft // 2))  # center=True, pad_mode="constant"
    spec = F.conv1d(padded, kernel.to(torch.float32)[:, None, :], stride=front.hop_length)  # (B, 2F, T)
    power = spec[:, :bins].square() + spec[:, bins:].square()
    mel = torch.matmul(power.transpose(1, 2), filters)  # (B, T, n_mels)
    return torch.log(mel + 1e-6)


@contextlib.contextmanager
def exportable_front_ends(model: nn.Module) -> Iterator[None]:
    """Within the block, every :class:`LogMelFrontEnd` of ``model`` computes through
    :func:`_dft_log_mel` (for ONNX export: ``torch.stft``'s complex output does not export)."""
    fronts = [m for m in model.modules() if isinstance(m, LogMelFrontEnd)]
    for front in fronts:
        front.forward = lambda waveforms, front=front: _dft_log_mel(front, waveforms)
    try:
        yield
    finally:
        for front in fronts:
            del front.forward
