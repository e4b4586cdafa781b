"""Whisper timestamps in ``speech-recognize`` (``return_timestamps=True``), against transformers.

The checkpoint is a tiny random multilingual Whisper whose tokenizer has Whisper's 1,501
timestamp tokens. A random model writes timestamps without any biasing: the timestamp rules
force the first token to be one, and force one whenever the timestamps' probabilities sum
above the likeliest text token's (1,501 timestamps against 256 byte tokens: often). Its windows
also stop inside a segment (the token budget runs out after a pair), so each is decoded again
from the pair's time (Whisper's seek loop) and the joined segments' timestamps restart: the
whole of transformers' timestamp path is exercised. Hub's text and chunks equal
``pipeline("automatic-speech-recognition", return_timestamps=True)``'s (greedy, beams, a
language, 70 s chunked with offsets across chunks), and Hub's port of the chunk decoding equals
the tokenizer's ``_decode_asr`` on the same ids for many crafted windows (pairs, single
endings, restarts, strides, language tokens)."""

from __future__ import annotations

import random

import pytest
import torch

import hub
from hub.errors import InvalidInputError
from hub_speech.pipelines.whisper_decoding import window_segments
from hub_speech.pipelines.whisper_text import decode_windows
from tests.speech.whisper_checkpoints import RATE, audio, whisper_folder

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def whisper_dir(tmp_path_factory):
    return whisper_folder(tmp_path_factory.mktemp("whisper-ts"), suppress=[77, 110], begin_suppress=101,
                          timestamps=True, max_initial_timestamp_index=50)


@pytest.fixture(scope="module")
def pipes(whisper_dir):
    from transformers import pipeline

    return (hub.load("speech-recognize", model=str(whisper_dir), device="cpu"),
            pipeline("automatic-speech-recognition", model=str(whisper_dir), device="cpu"))


def _theirs(pipe, clip, **kwargs):
    generate = {k: kwargs.pop(k) for k in ("max_new_tokens", "num_beams", "language") if k in kwargs}
    return pipe({"raw": clip.copy(), "sampling_rate": RATE}, return_timestamps=True, generate_kwargs=generate,
                **kwargs)


@pytest.mark.parametrize("settings", [
    {"max_new_tokens": 12, "num_beams": 1},
    {"max_new_tokens": 12, "num_beams": 2, "language": "fr"},
])
def test_timestamps_equal_transformers_pipeline(pipes, settings, monkeypatch):
    ours, theirs = pipes
    clips = [audio(3.0, 0), audio(5.0, 1)]
    encodes = []
    encode = ours.model.encode
    monkeypatch.setattr(ours.model, "encode", lambda *a, **k: encodes.append(1) or encode(*a, **k))
    got = ours([{"array": c, "sampling_rate": RATE} for c in clips], return_timestamps=True, **settings)
    want = [_theirs(theirs, c, **settings) for c in clips]
    assert [dict(g) for g in got] == want
    assert len(encodes) > 1  # a window was decoded again from its last segment (the seek loop ran)
    chunks = [c for w in want for c in w["chunks"]]
    assert len(chunks) >= 4 and all(c["timestamp"][0] is not None for c in chunks)
    assert any(c["timestamp"][1] is not None for c in chunks)


def test_long_audio_timestamps_are_offset_across_chunks(pipes):
    ours, theirs = pipes
    clip = audio(70.0, 2)
    settings = {"max_new_tokens": 12, "num_beams": 1, "language": "en"}
    got = ours({"array": clip, "sampling_rate": RATE}, chunk_length_s=30, return_timestamps=True, **settings)
    want = _theirs(theirs, clip, chunk_length_s=30, **settings)
    assert got.metadata["chunks"] == 3
    assert dict(got) == want
    assert max(c["timestamp"][0] for c in want["chunks"]) > 30.0  # later windows' times carry their offset


def test_timestamps_survive_save_and_reload(pipes, tmp_path):
    ours = pipes[0]
    clip = {"array": audio(2.0, 4), "sampling_rate": RATE}
    again = hub.load("speech-recognize", model=str(ours.save(tmp_path / "saved")), device="cpu")
    assert again.whisper.generation.get("max_initial_timestamp_index") == 50
    settings = {"max_new_tokens": 10, "num_beams": 1, "return_timestamps": True}
    assert dict(again(clip, **settings)) == dict(ours(clip, **settings))


def test_timestamp_keywords_are_checked(pipes):
    ours = pipes[0]
    clip = {"array": audio(1.0), "sampling_rate": RATE}
    with pytest.raises(InvalidInputError, match="True \\(segment timestamps\\) or False, got 'word'.*alignment"):
        ours(clip, return_timestamps="word")
    with pytest.raises(InvalidInputError, match="got 'char'"):
        ours(clip, return_timestamps="char")
    without = type(ours.whisper)(ours.model, ours.whisper.tokenizer)
    without.generation.pop("no_timestamps_token_id")
    with pytest.raises(InvalidInputError, match="no no_timestamps_token_id"):
        without.timestamps(True)
    assert "chunks" not in ours(clip, max_new_tokens=4, num_beams=1)  # off by default, as transformers


def test_the_prompt_leaves_out_notimestamps_as_transformers(pipes, whisper_dir):
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

    ours = pipes[0].whisper
    model = WhisperForConditionalGeneration.from_pretrained(str(whisper_dir)).eval()
    features = WhisperFeatureExtractor(feature_size=80)(audio(1.0), sampling_rate=RATE,
                                                        return_tensors="pt").input_features
    for language, task in (("fr", None), ("de", "translate")):
        model.generation_config.language, model.generation_config.task = language, task
        model.generation_config.return_timestamps = True
        want = model._retrieve_init_tokens(features, 1, model.generation_config, model.config, 3000, {})
        assert ours.prompt(language, task, timestamps=True) == want[0].tolist()


def _window(rng: random.Random, begin: int, languages: list[int], others: list[int]) -> list[int]:
    """Ids as Whisper's timestamp rules let them come: segments <|a|> text <|b|>, pairs, restarts
    at a lower time (a new seek), a single closing timestamp or an unfinished segment."""
    tokens: list[int] = [rng.choice(languages)] if rng.random() < 0.3 else []
    time = rng.randrange(0, 60)
    for _ in range(rng.randrange(1, 5)):
        if rng.random() < 0.2:
            tokens.append(rng.choice(others))  # another special token: ignored
        tokens.append(begin + time)
        tokens += [rng.randrange(33, 127) for _ in range(rng.randrange(0, 4))]
        time = min(time + rng.randrange(0, 400), 1500)
        tokens.append(begin + time)
        ending = rng.random()
        if ending < 0.15:
            return tokens  # a single closing timestamp
        if ending < 0.3:
            tokens += [rng.randrange(33, 127) for _ in range(2)]
            return tokens  # cut inside a segment
        if ending < 0.45:
            time = rng.randrange(0, max(time, 1))  # the next seek's segment restarts the times
    return tokens


@pytest.mark.parametrize("seed", range(40))
def test_chunk_decoding_equals_transformers_decode_asr(pipes, seed):
    ours = pipes[0].whisper
    tokenizer = ours.tokenizer
    begin = ours.generation["no_timestamps_token_id"] + 1
    languages = sorted(ours.languages.values())
    others = [t for t in tokenizer.all_special_ids if t not in languages and t < begin]
    rng = random.Random(seed)
    windows, chunk = [], rng.choice([30.0, 20.0, 12.5])
    count = rng.randrange(1, 4)
    for index in range(count):
        left = 0.0 if index == 0 else chunk / 6
        right = 0.0 if index == count - 1 else chunk / 6
        windows.append((_window(rng, begin, languages, others), (chunk, left, right)))
    for timestamps in (True, False):
        want_text, want = tokenizer._decode_asr([{"tokens": torch.tensor([ids]), "stride": stride}
                                                 for ids, stride in windows],
                                                return_timestamps=timestamps, return_language=None,
                                                time_precision=0.02)
        text, chunks = decode_windows(tokenizer, windows, timestamp_begin=begin, languages=set(languages),
                                      timestamps=timestamps)
        assert text == want_text
        assert chunks == want.get("chunks", [])


def test_window_segments_follow_transformers_seek():
    """A window that stops inside a segment keeps up to its last pair and seeks to the pair's
    first time (in log-mel frames, 2 per 0.02 s); one closing timestamp or no pair ends it."""
    eos, b = 9, 100
    assert window_segments([b + 0, 1, b + 10, b + 10, 2, 3, eos], eos, b) == ([b, 1, b + 10, b + 10], 20)
    assert window_segments([b + 0, 1, b + 10, b + 10, 2, b + 30], eos, b) == ([b, 1, b + 10, b + 10, 2, b + 30],
                                                                              None)
    assert window_segments([b + 5, 1, 2], eos, b) == ([b + 5, 1, 2], None)
