"""Hub's own speech models: log-mel -> conv subsampling -> shared backbone -> a task head.

Hub config (``config`` object of a Hub config.json)::

    {"sample_rate": 16000, "n_fft": 400, "hop_length": 160, "n_mels": 80,
     "subsample_channels": 64,          # channels of the two stride-2 convolutions
     "mel_norm": null,                  # "clip": subtract each mel bin's mean over the clip (CMN)
     "spec_augment": {"freq_masks": 2, "freq_width": 12, "time_masks": 2, "time_width": 0.1},
     "backbone": {TransformerConfig fields; pre-norm, rotary positions by default},
     # speech-ctc:       "vocab": [tokens by id], "blank": 0, "word_delimiter": "|"
     # audio-classifier: "labels": [...], "pooling": "mean"}

Waveforms are normalised per clip (zero mean, unit variance) by the pipeline, as
wav2vec2's feature extractor does. SpecAugment masks (frequency bands and time spans of
the log-mel frames) apply in training mode only.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hub.backbone import (
    ClassificationHead,
    Transformer,
    TransformerConfig,
    init_weights,
)
from hub.backbone.config import ConfigReader
from hub.errors import ConfigError
from hub_speech.models.layers import ConvSubsampling, CTCHead, LogMelFrontEnd, lengths_to_mask

BACKBONE_DEFAULTS: dict[str, Any] = {
    "hidden_size": 144, "num_layers": 4, "num_heads": 4, "intermediate_size": 576, "norm_position": "pre",
    "norm_eps": 1e-5, "activation": "gelu", "dropout": 0.1, "attention_dropout": 0.1, "rotary_dim": 36,
}
FRONT_DEFAULTS: dict[str, Any] = {"sample_rate": 16000, "n_fft": 400, "hop_length": 160, "n_mels": 80,
                                  "subsample_channels": 64,
                                  "spec_augment": {"freq_masks": 2, "freq_width": 12, "time_masks": 2,
                                                   "time_width": 0.1}}


#: the keys of each speech config (``hub.create`` refuses others; loading tolerates the ones pipelines add)
FRONT_KEYS = ("sample_rate", "n_fft", "hop_length", "n_mels", "subsample_channels", "mel_norm", "spec_augment",
              "backbone", "do_normalize")
SPEECH_CTC_KEYS = (*FRONT_KEYS, "vocab", "blank", "word_delimiter")
AUDIO_CLASSIFIER_KEYS = (*FRONT_KEYS, "labels", "pooling")
#: the front end's bounds: an FFT longer than 65536 samples (4 s at 16 kHz) is no speech front end
MAX_N_FFT = 65536


def check_front_config(config: Any, what: str) -> None:
    """Validate the log-mel front end's keys (one ConfigError naming the key)."""
    read = ConfigReader(config, f"{what} config")
    read.int("sample_rate", 16000, minimum=1000, maximum=768000)
    n_fft = read.int("n_fft", 400, minimum=16, maximum=MAX_N_FFT)
    read.int("hop_length", 160, maximum=n_fft)
    read.int("n_mels", 80, maximum=n_fft // 2 + 1)
    read.int("subsample_channels", 64, maximum=65536)
    read.choice("mel_norm", (None, "clip"), None)
    if config.get("spec_augment") is not None:
        spec = read.section("spec_augment")
        spec.known(("freq_masks", "freq_width", "time_masks", "time_width"))
        for key in ("freq_masks", "freq_width", "time_masks"):
            spec.int(key, 0, minimum=0, maximum=10_000)
        spec.float("time_width", 0.0, minimum=0.0, maximum=1.0)
    read.mapping("backbone", {})


def full_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with every front-end and backbone default filled in (what gets saved)."""
    if not isinstance(config, dict):
        raise ConfigError(f"a speech model config must be an object (dict), got {type(config).__name__}.")
    merged = {**FRONT_DEFAULTS, **config}
    check_front_config(merged, "speech model")
    merged["backbone"] = TransformerConfig.from_dict({**BACKBONE_DEFAULTS, **config.get("backbone", {})}).to_dict()
    return merged


class SpeechEncoder(nn.Module):
    """(B, S) normalised samples -> (B, T, C) frames, one per ``samples_per_frame`` samples."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        config = full_config(config)
        backbone = TransformerConfig.from_dict(config["backbone"])
        if backbone.causal:
            raise ConfigError("a speech encoder is bidirectional; set backbone.causal to false.")
        self.spec_augment = dict(config.get("spec_augment") or {})
        self.mel_norm = config.get("mel_norm")
        if self.mel_norm not in (None, "clip"):
            raise ConfigError(f"mel_norm must be null or 'clip', got {self.mel_norm!r}.")
        self.front = LogMelFrontEnd(sample_rate=config["sample_rate"], n_fft=config["n_fft"],
                                    hop_length=config["hop_length"], n_mels=config["n_mels"])
        self.subsample = ConvSubsampling(config["n_mels"], backbone.hidden_size,
                                         channels=config["subsample_channels"])
        self.dropout = nn.Dropout(backbone.dropout)
        self.mask_embedding = nn.Parameter(torch.zeros(backbone.hidden_size))  # masked-frame pretraining
        self.encoder = Transformer(backbone)
        self.hidden_size = backbone.hidden_size

    @property
    def samples_per_frame(self) -> int:
        return self.front.hop_length * 4

    def frame_lengths(self, sample_lengths: torch.Tensor) -> torch.Tensor:
        return self.subsample.output_lengths(self.front.output_lengths(sample_lengths))

    def _augment(self, mel: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """SpecAugment: zero random frequency bands and time spans (training only)."""
        spec = self.spec_augment
        batch, _, bins = mel.shape
        mel = mel.clone()
        floor = mel.mean()
        for b in range(batch):
            for _ in range(int(spec.get("freq_masks", 0))):
                width = int(torch.randint(0, int(spec.get("freq_width", 0)) + 1, ()))
                start = int(torch.randint(0, max(1, bins - width), ()))
                mel[b, :, start:start + width] = floor
            max_width = int(float(spec.get("time_width", 0)) * int(lengths[b]))
            for _ in range(int(spec.get("time_masks", 0))):
                width = int(torch.randint(0, max_width + 1, ()))
                start = int(torch.randint(0, max(1, int(lengths[b]) - width), ()))
                mel[b, start:start + width] = floor
        return mel

    def embed(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Front end + subsampling: (B, T, C) frames, (B, T4, n_mels) log-mel, (B, T) frame mask."""
        sample_lengths = (attention_mask.sum(-1) if attention_mask is not None else
                          torch.full((input_values.shape[0],), input_values.shape[1], device=input_values.device))
        mel = self.front(input_values)  # (B, T4, n_mels)
        if self.mel_norm == "clip":  # cepstral mean normalisation: each bin's mean over the clip removed
            real = lengths_to_mask(self.front.output_lengths(sample_lengths), mel.shape[1])[..., None].to(mel.dtype)
            mel = (mel - (mel * real).sum(1, keepdim=True) / real.sum(1, keepdim=True)) * real
        if self.training and self.spec_augment:
            mel = self._augment(mel, self.front.output_lengths(sample_lengths))
        mel_lengths = self.front.output_lengths(sample_lengths) if attention_mask is not None else None
        frames = self.subsample(mel.to(self.subsample.proj.weight.dtype), mel_lengths)  # (B, T, C)
        mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            mask = lengths_to_mask(self.frame_lengths(sample_lengths), frames.shape[1])
        return frames, mel, mask

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        frames, _, mask = self.embed(input_values, attention_mask)
        return self.encoder(self.dropout(frames), mask), mask


def _lengths(mask: torch.Tensor | None, hidden: torch.Tensor) -> torch.Tensor:
    if mask is not None:
        return mask.sum(-1)
    return torch.full((hidden.shape[0],), hidden.shape[1], dtype=torch.long, device=hidden.device)


class SpeechCTC(nn.Module):
    """A CTC recogniser: :class:`SpeechEncoder` + :class:`~hub_speech.models.layers.CTCHead`."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        if not isinstance(config, dict) or not config.get("vocab"):
            raise ConfigError("a speech-ctc config needs 'vocab' (the output tokens, blank first).")
        read = ConfigReader(config, "speech-ctc config")
        vocab = read.str_list("vocab")
        read.int("blank", 0, minimum=0, maximum=len(vocab) - 1)
        read.str("word_delimiter", "|", optional=True)
        self.config = full_config(config)
        self.encoder = SpeechEncoder(self.config)
        self.head = CTCHead(self.encoder.hidden_size, len(self.config["vocab"]), blank=self.config.get("blank", 0))

    def get_classifier(self) -> nn.Module:
        """The CTC head (``head.*``), as timm's ``get_classifier``. There is no
        ``reset_classifier``: the outputs are the vocabulary the transcripts are written in
        (``config["vocab"]``, saved as ``vocab.json``), not class labels."""
        return self.head

    sample_rate = property(lambda self: int(self.config["sample_rate"]))
    samples_per_frame = property(lambda self: self.encoder.samples_per_frame)
    min_samples = property(lambda self: self.config["n_fft"])

    def frame_lengths(self, sample_lengths: torch.Tensor) -> torch.Tensor:
        return self.encoder.frame_lengths(sample_lengths)

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        hidden, mask = self.encoder(input_values, attention_mask)
        logits = self.head(hidden)  # (B, T, V)
        out = {"logits": logits}
        if mask is not None:
            out["frame_mask"] = mask
        if labels is not None:
            out["loss"] = self.head.loss(logits, _lengths(mask, hidden), labels)
        return out


class AudioClassifier(nn.Module):
    """An audio classifier: :class:`SpeechEncoder` + mean pooling + linear layer."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        if not isinstance(config, dict) or not config.get("labels"):
            raise ConfigError("an audio-classifier config needs 'labels' (one name per class).")
        read = ConfigReader(config, "audio-classifier config")
        read.labels("labels")
        read.choice("pooling", ("mean", "cls"), "mean")
        self.config = full_config(config)
        self.labels = list(self.config["labels"])
        self.encoder = SpeechEncoder(self.config)
        self.head = self._make_head(len(self.labels))

    def _make_head(self, num_labels: int) -> ClassificationHead:
        return ClassificationHead(self.encoder.hidden_size, num_labels,
                                  pooling=self.config.get("pooling", "mean"), pooler=False,
                                  dropout=self.config["backbone"]["dropout"])

    def get_classifier(self) -> nn.Module:
        """The head (mean pooling + linear layer; ``head.*`` in the state dict), as timm's
        ``get_classifier``."""
        return self.head

    def reset_classifier(self, labels: int | list[str]) -> None:
        """A new head for ``labels`` (names, or a count: ``LABEL_0 ...``), initialised as
        ``nn.Linear`` initialises itself, on the encoder's device and dtype; the encoder is
        untouched and the config's ``labels`` follow."""
        from hub.data.labels import head_labels

        labels = head_labels(labels)
        reference = next(self.encoder.parameters())
        self.config = {**self.config, "labels": labels}
        self.labels = list(labels)
        self.head = self._make_head(len(labels)).to(reference.device, reference.dtype)

    sample_rate = property(lambda self: int(self.config["sample_rate"]))
    samples_per_frame = property(lambda self: self.encoder.samples_per_frame)
    min_samples = property(lambda self: self.config["n_fft"])

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        hidden, mask = self.encoder(input_values, attention_mask)
        logits = self.head(hidden, mask)  # (B, L)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits.float(), labels)
        return out


class MaskedFramePretrainer(nn.Module):
    """Self-supervised objective for a :class:`SpeechEncoder` on unlabelled audio.

    Spans of subsampled frames (``mask_prob`` of the frames start a span of ``span``
    frames) are replaced by the learned ``mask_embedding`` before the Transformer, which
    must reconstruct the log-mel frames under them (the 4 input frames per subsampled
    frame, standardised per clip); the loss is the L1 error on masked frames only.
    """

    def __init__(self, encoder: SpeechEncoder, *, mask_prob: float = 0.065, span: int = 5) -> None:
        super().__init__()
        self.encoder, self.mask_prob, self.span = encoder, mask_prob, span
        bins = encoder.front.n_mels
        self.reconstruct = nn.Linear(encoder.hidden_size, 4 * bins)

    def _span_mask(self, mask: torch.Tensor) -> torch.Tensor:
        batch, length = mask.shape
        starts = (torch.rand(batch, length, device=mask.device) < self.mask_prob) & mask
        spans = torch.zeros_like(mask)
        for offset in range(self.span):
            spans[:, offset:] |= starts[:, :length - offset]
        return spans & mask

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        frames, mel, mask = self.encoder.embed(input_values, attention_mask)
        real = mask if mask is not None else torch.ones(frames.shape[:2], dtype=torch.bool, device=frames.device)
        masked = self._span_mask(real)
        frames = torch.where(masked[..., None], self.encoder.mask_embedding.to(frames.dtype), frames)
        hidden = self.encoder.encoder(self.encoder.dropout(frames), mask)
        batch, length, bins = mel.shape
        target = nn.functional.pad(mel, (0, 0, 0, 4 * frames.shape[1] - length))  # (B, 4T, M)
        target = target.reshape(batch, frames.shape[1], 4 * bins)
        mel_mask = lengths_to_mask(self.encoder.front.output_lengths(
            attention_mask.sum(-1) if attention_mask is not None else torch.full((batch,), input_values.shape[1],
                                                                                 device=mel.device)), length)
        # one mean and deviation per clip (not per bin: bins that stay at the floor have none)
        weights = mel_mask[..., None].to(mel.dtype)
        count = weights.sum((1, 2), keepdim=True) * bins
        mean = (mel * weights).sum((1, 2), keepdim=True) / count
        std = (((mel - mean).square() * weights).sum((1, 2), keepdim=True) / count).sqrt()
        target = (target - mean) / (std + 1e-3)
        prediction = self.reconstruct(hidden)
        error = (prediction.float() - target.float()).abs().mean(-1)  # (B, T)
        loss = (error * masked).sum() / masked.sum().clamp(min=1)
        return {"loss": loss, "logits": prediction}


def build_speech_ctc(config: dict[str, Any]) -> SpeechCTC:
    return SpeechCTC(config)


def build_audio_classifier(config: dict[str, Any]) -> AudioClassifier:
    return AudioClassifier(config)


def new_model(cls: type[nn.Module], config: dict[str, Any]) -> nn.Module:
    """A randomly initialised ``cls`` (SpeechCTC or AudioClassifier) for ``from_scratch``:
    unknown keys refused, the size bounded by HUB_MAX_PARAMETERS / HUB_MAX_MODULES (a meta
    build first) before any memory is allocated."""
    from hub.modeling import check_scratch_size

    keys = SPEECH_CTC_KEYS if cls is SpeechCTC else AUDIO_CLASSIFIER_KEYS
    what = "speech-ctc" if cls is SpeechCTC else "audio-classifier"
    ConfigReader(config, f"{what} config").known(keys)
    check_scratch_size(lambda: cls(config), what, config)
    return initialise(cls(config))


def initialise(module: nn.Module) -> nn.Module:
    """Fresh weights for training from scratch (BERT-style normal init, PyTorch's for convolutions)."""
    init_weights(module)
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            m.reset_parameters()
    return module
