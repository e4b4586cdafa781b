"""Audio inputs: files, bytes, arrays, dicts; resampling, mono mix-down, integer PCM; clear errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
import torch

from hub.errors import InputTypeError, InvalidInputError
from hub_speech.audio import load_audio
from tests.speech.checkpoints import tone


@pytest.mark.parametrize("fmt, subtype, suffix", [("WAV", "PCM_16", ".wav"), ("FLAC", "PCM_16", ".flac"),
                                                  ("OGG", "VORBIS", ".ogg")])
def test_files_and_bytes_decode_to_the_same_samples(tmp_path, fmt, subtype, suffix):
    audio = tone(0.5)
    path = tmp_path / f"clip{suffix}"
    sf.write(path, audio, 16000, format=fmt, subtype=subtype)
    from_path = load_audio(str(path))
    from_bytes = load_audio(path.read_bytes())
    assert from_path.sample_rate == 16000 and from_path.samples.dtype == np.float32
    assert np.array_equal(from_path.samples, from_bytes.samples)
    tolerance = 1e-3 if subtype == "PCM_16" else 0.1  # Vorbis is lossy
    assert np.abs(from_path.samples[: audio.size] - audio).max() < tolerance


def test_resampling_matches_torchaudio_and_keeps_duration():
    import torchaudio.functional as AF

    audio = tone(1.0, rate=8000)
    loaded = load_audio(audio, sampling_rate=8000, target_rate=16000)
    expected = AF.resample(torch.from_numpy(audio), 8000, 16000).numpy()
    assert loaded.samples.size == 16000 and np.allclose(loaded.samples, expected, atol=1e-6)
    assert load_audio(tone(1.0, rate=44100), sampling_rate=44100).samples.size == 16000


def test_stereo_is_mixed_down_whatever_the_channel_axis(tmp_path):
    left, right = tone(0.3), tone(0.3, freq=200, seed=1)
    expected = (left + right) / 2
    assert np.allclose(load_audio(np.stack([left, right]), sampling_rate=16000).samples, expected, atol=1e-6)
    assert np.allclose(load_audio(np.stack([left, right], 1), sampling_rate=16000).samples, expected, atol=1e-6)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], 1), 16000, subtype="FLOAT")
    assert np.allclose(load_audio(path).samples, expected, atol=1e-6)


def test_integer_pcm_tensors_and_dicts():
    audio = tone(0.2)
    pcm = (audio * 32767).astype(np.int16)
    assert np.abs(load_audio(pcm, sampling_rate=16000).samples - audio).max() < 1e-3
    pcm32 = (audio.astype(np.float64) * 2**31 * 0.999).astype(np.int32)
    assert np.abs(load_audio(pcm32, sampling_rate=16000).samples - audio).max() < 1e-3
    unsigned = ((audio * 127) + 128).astype(np.uint8)
    assert np.abs(load_audio(unsigned, sampling_rate=16000).samples - audio).max() < 2e-2
    as_tensor = load_audio(torch.from_numpy(audio), sampling_rate=16000).samples
    as_dict = load_audio({"array": audio, "sampling_rate": 16000}).samples
    assert np.array_equal(as_tensor, audio) and np.array_equal(as_dict, audio)


@pytest.mark.parametrize("item, kwargs, error, match", [
    (np.zeros(100, np.float32), {}, InvalidInputError, "sampling_rate="),
    (np.zeros(0, np.float32), {"sampling_rate": 16000}, InvalidInputError, "no samples"),
    (np.array([0.1, np.nan], np.float32), {"sampling_rate": 16000}, InvalidInputError, "NaN"),
    (np.zeros((2, 3, 4), np.float32), {"sampling_rate": 16000}, InvalidInputError, "shape"),
    (np.zeros(10, bool), {"sampling_rate": 16000}, InputTypeError, "booleans"),
    (np.zeros(100, np.float32), {"sampling_rate": -5}, InvalidInputError, "positive integer"),
    (12, {}, InputTypeError, "file path"),
    (b"", {}, InvalidInputError, "empty bytes"),
    (b"RIFF not really a wav file at all", {}, InvalidInputError, "Cannot decode"),
    ({"sampling_rate": 16000}, {}, InvalidInputError, "'array'"),
    ("/no/such/clip.wav", {}, InvalidInputError, "no such audio file"),
])
def test_bad_inputs_raise_clear_errors(item, kwargs, error, match):
    with pytest.raises(error, match=match):
        load_audio(item, **kwargs)


def test_empty_and_corrupt_files(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(InvalidInputError, match="empty file"):
        load_audio(empty)
    buffer = io.BytesIO()
    sf.write(buffer, tone(0.5), 16000, format="FLAC")
    corrupt = tmp_path / "corrupt.flac"
    corrupt.write_bytes(buffer.getvalue()[:40])
    with pytest.raises(InvalidInputError, match="corrupt.flac"):
        load_audio(corrupt)
