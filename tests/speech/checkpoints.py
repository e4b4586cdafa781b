"""Small random transformers Wav2Vec2ForCTC checkpoints written as the HF Hub lays them out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

VOCAB = ["<pad>", "<s>", "</s>", "<unk>", "|", *"ETAONISRHDLUMCWFGYPBVK'XJQZ"]


def wav2vec2_ctc_folder(folder: Path, *, stable: bool = False, seed: int = 0, layers: int = 2) -> Path:
    """config.json + model.safetensors + vocab.json + preprocessor_config.json of a random
    Wav2Vec2ForCTC (base layout, or large-lv60's ``do_stable_layer_norm``)."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

    torch.manual_seed(seed)
    config = Wav2Vec2Config(
        vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=layers, num_attention_heads=4,
        intermediate_size=64, conv_dim=(16, 16, 16), conv_kernel=(10, 3, 3), conv_stride=(5, 2, 2),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, do_stable_layer_norm=stable,
        feat_extract_norm="layer" if stable else "group", conv_bias=stable, pad_token_id=0,
        mask_time_prob=0.0, ctc_loss_reduction="mean")
    model = Wav2Vec2ForCTC(config).eval()
    with torch.no_grad():  # make the norms and biases non-trivial so a mapping error shows
        for name, param in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                param.add_(torch.randn_like(param) * 0.1)
    model.save_pretrained(folder, safe_serialization=True)
    (Path(folder) / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(VOCAB)}))
    (Path(folder) / "preprocessor_config.json").write_text(json.dumps({
        "do_normalize": True, "feature_size": 1, "padding_side": "right", "padding_value": 0.0,
        "return_attention_mask": stable, "sampling_rate": 16000,
        "feature_extractor_type": "Wav2Vec2FeatureExtractor"}))
    return Path(folder)


def tone(seconds: float, rate: int = 16000, freq: float = 440.0, seed: int = 0) -> np.ndarray:
    """A noisy tone: deterministic audio for shape and parity checks."""
    t = np.arange(int(seconds * rate)) / rate
    noise = np.random.default_rng(seed).standard_normal(t.size) * 0.05
    return (0.5 * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32)
