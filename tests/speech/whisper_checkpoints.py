"""Tiny random multilingual Whisper checkpoints, written offline as transformers saves them
(``WhisperForConditionalGeneration`` + ``WhisperProcessor``): a byte-level tokenizer with
Whisper's special tokens (and, with ``timestamps=True``, its 1,501 timestamp tokens
``<|0.00|>`` .. ``<|30.00|>`` after ``<|notimestamps|>``), a generation config with language
and task tokens and the given suppressed tokens."""

from __future__ import annotations

from pathlib import Path

import numpy as np

RATE = 16000
SPECIALS = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|fr|>", "<|de|>", "<|translate|>",
            "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>"]
#: Whisper's timestamp tokens: 0.00 s to 30.00 s in steps of 0.02 s
TIMESTAMPS = [f"<|{i * 0.02:.2f}|>" for i in range(1501)]


def whisper_folder(folder: Path, *, suppress: list[int], begin_suppress: int | None, timestamps: bool = False,
                   scale: float = 0.5, max_target_positions: int = 40, seed: int = 0,
                   max_initial_timestamp_index: int | None = None) -> Path:
    """Save a random Whisper (d_model 32, 2 + 2 layers, 80 mels, 30 s windows) into ``folder``.

    ``scale``: the random noise added to every weight (larger: a less uniform, more varied
    output). Returns the folder."""
    import torch
    from transformers import (
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {c: i for i, c in enumerate(bytes_to_unicode().values())}
    for token in SPECIALS:
        vocab[token] = len(vocab)
    if timestamps:
        for token in TIMESTAMPS:
            vocab[token] = len(vocab)
    tokenizer = WhisperTokenizer(vocab=vocab, merges=[], pad_token="<|endoftext|>")
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIALS[1:]})
    ids = dict(zip(SPECIALS, tokenizer.convert_tokens_to_ids(SPECIALS)))
    begin = [begin_suppress] if begin_suppress is not None else []
    torch.manual_seed(seed)
    config = WhisperConfig(vocab_size=len(vocab), d_model=32, encoder_layers=2, decoder_layers=2,
                           encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                           decoder_ffn_dim=64, num_mel_bins=80, max_source_positions=1500,
                           max_target_positions=max_target_positions, pad_token_id=ids["<|endoftext|>"],
                           bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|endoftext|>"],
                           decoder_start_token_id=ids["<|startoftranscript|>"], suppress_tokens=list(suppress),
                           begin_suppress_tokens=[*begin, ids["<|endoftext|>"]])
    model = WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * scale)
    generation = model.generation_config
    generation._from_model_config = False
    generation.lang_to_id = {k: ids[k] for k in ("<|en|>", "<|fr|>", "<|de|>")}
    generation.task_to_id = {"translate": ids["<|translate|>"], "transcribe": ids["<|transcribe|>"]}
    generation.no_timestamps_token_id = ids["<|notimestamps|>"]
    generation.is_multilingual = True
    generation.max_length = max_target_positions
    if max_initial_timestamp_index is not None:
        generation.max_initial_timestamp_index = max_initial_timestamp_index
    model.save_pretrained(str(folder))
    WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=80), tokenizer=tokenizer
                     ).save_pretrained(str(folder))
    return Path(folder)


def audio(seconds: float, seed: int = 0) -> np.ndarray:
    """A noisy tone (deterministic)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * (200 + 50 * seed) * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
