"""The speech pipelines: batching, long-audio chunking and stitching, silence, short clips, options."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hub
from hub.errors import InvalidInputError
from hub.modeling import build_module
from hub_speech.pipelines.recognize import SpeechRecognitionPipeline
from tests.speech.checkpoints import tone


def _local_recogniser() -> SpeechRecognitionPipeline:
    """A wav2vec2-layout recogniser whose every output frame depends only on nearby samples
    (per-layer LayerNorm convolutions, conv positions, no attention layers), so chunked
    recognition must reproduce whole-clip recognition exactly."""
    config = {"conv_dim": [16, 16, 16], "conv_kernel": [10, 3, 3], "conv_stride": [5, 2, 2],
              "conv_bias": True, "feat_extract_norm": "layer", "num_conv_pos_embeddings": 16,
              "num_conv_pos_embedding_groups": 4, "stable_layer_norm": True,
              "backbone": {"hidden_size": 32, "num_layers": 0, "num_heads": 4, "intermediate_size": 64,
                           "norm_position": "pre", "norm_eps": 1e-5, "dropout": 0.0},
              "vocab": ["<pad>", "<unk>", "|", *"abcdefghijklmnopqrstuvwxyz'"], "blank": 0,
              "word_delimiter": "|", "sample_rate": 16000, "do_normalize": True}
    torch.manual_seed(0)
    model = build_module("wav2vec2-ctc", config)
    with torch.no_grad():
        model.head.proj.weight.mul_(40)  # confident outputs: no near-ties in the argmax
    return SpeechRecognitionPipeline(model.eval(), device="cpu", metadata={"architecture": "wav2vec2-ctc"})


def _speechlike(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * 16000)) / 16000
    freq = 300 + 200 * np.sin(2 * np.pi * 0.7 * t)
    return (np.sin(2 * np.pi * np.cumsum(freq) / 16000) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
            + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def test_long_audio_is_chunked_and_stitched_exactly():
    pipe = _local_recogniser()
    audio = _speechlike(3.3)
    whole = pipe(audio, sampling_rate=16000, chunk_length_s=60, return_timestamps="char")
    chunked = pipe(audio, sampling_rate=16000, chunk_length_s=0.5, stride_length_s=0.05,
                   return_timestamps="char")
    assert whole.metadata["chunks"] == 1 and chunked.metadata["chunks"] == 8
    assert len(whole["text"]) > 50
    assert chunked == whole  # same text and the same timestamps: nothing lost or doubled at the seams


def test_long_audio_is_not_truncated_by_hub_models():
    pipe = hub.create("speech-recognize", config={"backbone": {"num_layers": 1, "hidden_size": 32,
                                                               "num_heads": 2, "rotary_dim": 16}})
    audio = _speechlike(25.0)
    result = pipe(audio, sampling_rate=16000, return_timestamps="char")
    assert result.metadata["chunks"] == 2 and result.metadata["seconds"] == 25.0
    stamps = [c["timestamp"] for c in result["chunks"]]
    assert stamps == sorted(stamps) and stamps[-1][1] > 20.0  # characters found past the first chunk


def test_batches_equal_single_calls_and_results_keep_order():
    pipe = hub.create("speech-recognize", config={"backbone": {"num_layers": 2, "hidden_size": 32,
                                                               "num_heads": 2, "rotary_dim": 16}})
    clips = [tone(0.4), _speechlike(1.7), tone(1.1, freq=220, seed=3)]
    together = pipe(clips, sampling_rate=16000, batch_size=3)
    assert together == [pipe(c, sampling_rate=16000) for c in clips]
    model = pipe.model  # a clip padded inside a batch gives the logits it gives alone
    padded = torch.zeros(2, clips[1].size)
    padded[0, : clips[0].size] = torch.from_numpy(clips[0])
    padded[1] = torch.from_numpy(clips[1])
    mask = (padded != 0).long()
    mask[1] = 1
    with torch.no_grad():
        alone = model(torch.from_numpy(clips[0])[None])["logits"][0]
        out = model(padded, mask)
    assert int(out["frame_mask"][0].sum()) == alone.shape[0]
    assert (out["logits"][0, : alone.shape[0]] - alone).abs().max() < 1e-5


def test_silence_short_clips_and_options():
    pipe = hub.create("speech-recognize", config={"backbone": {"num_layers": 1, "hidden_size": 32,
                                                               "num_heads": 2, "rotary_dim": 16}})
    silent = pipe(np.zeros(16000, np.float32), sampling_rate=16000, return_timestamps="word")
    assert silent == {"text": "", "chunks": []} and silent.metadata["silent"]
    with pytest.raises(InvalidInputError, match="ms long"):
        pipe(np.ones(100, np.float32), sampling_rate=16000)
    with pytest.raises(InvalidInputError, match="decoder"):
        pipe(tone(0.5), sampling_rate=16000, decoder="viterbi")
    with pytest.raises(InvalidInputError, match="return_timestamps"):
        pipe(tone(0.5), sampling_rate=16000, return_timestamps="segment")
    with pytest.raises(InvalidInputError, match="chunk_length_s"):
        pipe(tone(0.5), sampling_rate=16000, chunk_length_s=0)
    assert pipe([]) == []  # issue 13: as transformers' pipeline (was an "empty list" error)
    beam = pipe(tone(0.5), sampling_rate=16000, decoder="beam", beam_width=4)
    assert isinstance(beam["text"], str)


def test_audio_classify_top_k_chunks_and_silence():
    pipe = hub.create("audio-classify", config={"labels": ["low", "high", "noise"],
                                                "backbone": {"num_layers": 1, "hidden_size": 32, "num_heads": 2,
                                                             "rotary_dim": 16}})
    ranked = pipe(tone(0.5), sampling_rate=16000, top_k=None)
    assert [r["label"] for r in ranked] != [] and len(ranked) == 3
    assert abs(sum(r["score"] for r in ranked) - 1) < 1e-5
    assert ranked == sorted(ranked, key=lambda r: -r["score"])
    long = pipe(_speechlike(25.0), sampling_rate=16000)
    assert long.metadata["chunks"] == 4 and set(long) == {"label", "score"}
    with pytest.raises(InvalidInputError, match="silent"):
        pipe([tone(0.5), np.zeros(8000, np.float32)], sampling_rate=16000)
    with pytest.raises(InvalidInputError, match="top_k"):
        pipe(tone(0.5), sampling_rate=16000, top_k=0)
