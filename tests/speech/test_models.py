"""Hub's own speech models: configs, mel normalisation, SpecAugment, training-time augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hub.errors import ConfigError
from hub_speech.augment import AugmentedClips, perturb
from hub_speech.models.encoder import AudioClassifier, SpeechCTC, SpeechEncoder
from tests.speech.checkpoints import tone

SMALL = {"backbone": {"num_layers": 1, "hidden_size": 32, "num_heads": 2, "rotary_dim": 16}}


def test_configs_are_checked():
    with pytest.raises(ConfigError, match="vocab"):
        SpeechCTC(SMALL)
    with pytest.raises(ConfigError, match="labels"):
        AudioClassifier(SMALL)
    with pytest.raises(ConfigError, match="mel_norm"):
        SpeechEncoder({**SMALL, "mel_norm": "global"})
    with pytest.raises(ConfigError, match="bidirectional"):
        SpeechEncoder({"backbone": {**SMALL["backbone"], "causal": True}})


def test_clip_mel_normalisation_centres_every_bin_over_the_real_frames():
    encoder = SpeechEncoder({**SMALL, "mel_norm": "clip"}).eval()
    x = torch.zeros(2, 16000)
    x[0] = torch.from_numpy(tone(1.0))
    x[1, :9000] = torch.from_numpy(tone(1.0, freq=900, seed=1))[:9000]
    mask = (torch.arange(16000) < torch.tensor([[16000], [9000]])).long()
    _, mel, _ = encoder.embed(x, mask)
    real = encoder.front.output_lengths(mask.sum(-1))
    for row, n in enumerate(real.tolist()):
        assert mel[row, :n].mean(0).abs().max() < 1e-4
        assert torch.all(mel[row, n:] == 0)


def test_spec_augment_only_in_training():
    torch.manual_seed(0)
    encoder = SpeechEncoder({**SMALL, "spec_augment": {"freq_masks": 2, "freq_width": 20, "time_masks": 2,
                                                       "time_width": 0.2}})
    x = torch.from_numpy(tone(1.0))[None]
    encoder.eval()
    clean = encoder.embed(x)[1]
    assert torch.equal(clean, encoder.embed(x)[1])
    encoder.train()
    masked = encoder.embed(x)[1]
    assert not torch.equal(masked, clean)


def test_perturbation_changes_speed_and_keeps_clips_normalised():
    x = tone(1.0)
    faster = perturb(x, 1.25, 0.0)
    assert faster.size == 12800 and abs(faster.mean()) < 1e-5 and abs(faster.std() - 1) < 1e-3
    assert perturb(x, 0.8, 0.5).size == 20000
    clips = AugmentedClips([{"input_values": x, "length": x.size, "label": 1}], speed=(0.9, 1.1))
    torch.manual_seed(0)
    first, second = clips[0], clips[0]
    assert first["label"] == 1 and first["length"] == first["input_values"].size
    assert first["length"] != second["length"] or not np.array_equal(first["input_values"], second["input_values"])
    assert 14000 <= first["length"] <= 18000
