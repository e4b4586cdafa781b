"""fine_tune and pretrain through the common Trainer: folders, manifests, round trips, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

import hub
from hub.errors import DataError, InvalidInputError

TINY = {"backbone": {"num_layers": 1, "hidden_size": 32, "num_heads": 2, "rotary_dim": 16, "intermediate_size": 64,
                     "dropout": 0.0, "attention_dropout": 0.0}, "subsample_channels": 8}
FREQ = {"a": 300, "b": 700, "c": 1500}


def _tones(text: str, seed: int) -> np.ndarray:
    """One tone per letter (a: 300 Hz, b: 700 Hz, c: 1.5 kHz) with gaps and noise."""
    rng = np.random.default_rng(seed)
    parts = [np.zeros(1600)]
    for letter in text:
        t = np.arange(int(rng.uniform(0.2, 0.3) * 16000)) / 16000
        parts += [rng.uniform(0.2, 0.6) * np.sin(2 * np.pi * FREQ[letter] * t), np.zeros(int(rng.uniform(0.08, 0.15) * 16000))]
    x = np.concatenate(parts)
    return (x + 0.02 * rng.standard_normal(x.size)).astype(np.float32)


def test_classifier_fine_tunes_from_a_folder_and_reloads_exactly(tmp_path):
    for label in ("a", "b", "c"):
        (tmp_path / "train" / label).mkdir(parents=True)
        for i in range(6):
            sf.write(tmp_path / "train" / label / f"{i}.wav", _tones(label, seed=i), 16000)
    test = [{"path": f"{label}-{i}.flac", "label": label} for label in "abc" for i in range(3)]
    (tmp_path / "test").mkdir()
    for record in test:
        sf.write(tmp_path / "test" / record["path"], _tones(record["label"], seed=100 + len(record["path"])), 16000)
    (tmp_path / "test" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in test))

    pipe = hub.create("audio-classify", config={**TINY, "labels": ["x", "y"]}, seed=0)
    result = pipe.fine_tune(tmp_path / "train", eval=tmp_path / "test" / "test.jsonl", epochs=6, batch_size=6,
                            learning_rate=5e-3, progress=False, metric_for_best="accuracy")
    assert pipe.labels == ["a", "b", "c"]  # new head for the data's labels
    assert result.best_metric == 1.0
    assert pipe.evaluate(tmp_path / "test" / "test.jsonl") == {"accuracy": 1.0, "n": 9}
    folder = pipe.save(tmp_path / "model")
    again = hub.load("audio-classify", model=str(folder), device="cpu")
    clip = _tones("b", seed=7)
    assert again(clip, sampling_rate=16000, top_k=None) == pipe(clip, sampling_rate=16000, top_k=None)
    with pytest.raises(InvalidInputError, match=r"labels \['c'\]"):
        again.fine_tune([(clip, "c")], labels=["a", "b"], epochs=1)


def test_ctc_fine_tune_from_a_manifest_learns_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    records = []
    for i in range(32):
        text = "".join(rng.choice(list("abc"), rng.integers(1, 4)))
        sf.write(tmp_path / f"{i}.wav", _tones(text, seed=i), 16000)
        records.append({"path": f"{i}.wav", "text": text.upper()})  # case is folded to the vocabulary's
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    pipe = hub.create("speech-recognize", config={**TINY, "vocab": ["<pad>", "|", "a", "b", "c"]}, seed=0)
    result = pipe.fine_tune(tmp_path / "train.jsonl", epochs=6, batch_size=8, learning_rate=5e-3, progress=False)
    losses = [h["train_loss"] for h in result.history if "train_loss" in h]
    assert losses[-1] < 0.3 * losses[0]
    folder = pipe.save(tmp_path / "model")
    again = hub.load("speech-recognize", model=str(folder), device="cpu")
    clip = _tones("abc", seed=99)
    assert again(clip, sampling_rate=16000, return_timestamps="char") == pipe(clip, sampling_rate=16000,
                                                                              return_timestamps="char")
    with pytest.raises(InvalidInputError, match="not in the model's vocabulary"):
        pipe.fine_tune([({"array": clip, "sampling_rate": 16000}, "abd")], epochs=1)


def test_recognition_folder_needs_transcripts(tmp_path):
    sf.write(tmp_path / "one.wav", _tones("a", 0), 16000)
    pipe = hub.create("speech-recognize", config=TINY)
    with pytest.raises(DataError, match="no transcript"):
        pipe.fine_tune(tmp_path, epochs=1)
    (tmp_path / "one.txt").write_text("a\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="holds no audio files"):
        pipe.fine_tune(empty, epochs=1)


def test_masked_frame_pretraining_lowers_its_loss_and_changes_only_the_encoder(tmp_path):
    for i in range(8):
        sf.write(tmp_path / f"{i}.wav", _tones("abc"[i % 3] * 3, seed=i), 16000)
    pipe = hub.create("speech-recognize", config=TINY, seed=0)
    head = {k: v.clone() for k, v in pipe.model.head.state_dict().items()}
    encoder = {k: v.clone() for k, v in pipe.model.encoder.state_dict().items()}
    result = pipe.pretrain(tmp_path, epochs=8, batch_size=4, learning_rate=3e-3, progress=False,
                           mask_prob=0.2, span=3, eval=tmp_path)
    losses = [h["train_loss"] for h in result.history if "train_loss" in h]
    assert losses[-1] < 0.75 * losses[0] and "eval_loss" in result.history[-1]
    assert all(torch.equal(v, pipe.model.head.state_dict()[k]) for k, v in head.items())
    assert not torch.equal(encoder["encoder.layers.0.attn.qkv.weight"],
                           pipe.model.encoder.state_dict()["encoder.layers.0.attn.qkv.weight"])
