"""Issue 12 item 7 (audio), item 10 (chunks), item 15 (``--top-k`` on speech) and item 18
(speech call parameters).

A WAV whose header says 1 Hz (or ``sampling_rate=1``) was upsampled 16000-fold (38-64 s,
3.4 GB); a coprime rate such as 44101 Hz asked torchaudio for a 2.8 GB filter; clip length
was unbounded; ``chunk_length_s=nan`` / a stride leaving no step / ``beam_width="8"``
failed with raw ``ValueError`` / ``TypeError``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF

import hub
from hub.cli import main
from hub.errors import InvalidInputError
from hub_speech.audio import DEFAULT_MAX_AUDIO_SECONDS, MAX_RESAMPLE_KERNEL, load_audio
from hub_speech.pipelines.base import DEFAULT_MAX_CHUNKS
from tests.speech.checkpoints import tone

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def asr():
    return hub.load("speech-recognize", device="cpu")


@pytest.fixture(scope="module")
def kws():
    return hub.load("audio-classify", device="cpu")


@pytest.fixture
def no_reading(monkeypatch):
    """Fail if any sample is read from a file: the header checks must come first."""
    def blocks(self, *args, **kwargs):
        raise AssertionError("samples were read")
    monkeypatch.setattr(sf.SoundFile, "blocks", blocks)


# -- item 7: sample rates, resampling, duration ----------------------------------------------------
def test_a_wav_whose_header_says_1_hz_is_refused_before_reading(asr, tmp_path, no_reading):
    path = tmp_path / "one_hz.wav"
    sf.write(path, tone(1.0, rate=16000)[:2000], 1, subtype="PCM_16")  # 2000 s at 1 Hz: x16000 to resample
    with pytest.raises(InvalidInputError) as info:
        asr([{"array": tone(1.0), "sampling_rate": 16000}, str(path)])
    message = str(info.value)
    for part in ("input 1", "one_hz.wav", "1 Hz is outside 1000-384000 Hz", "HUB_MIN_SAMPLE_RATE"):
        assert part in message, part


@pytest.mark.parametrize("rate", [1, 999, 384_001, 10**9])
def test_sampling_rate_out_of_range_refused(asr, rate):
    with pytest.raises(InvalidInputError, match=f"{rate} Hz is outside 1000-384000 Hz"):
        asr(np.zeros(1000, np.float32), sampling_rate=rate)
    with pytest.raises(InvalidInputError, match="input 0"):  # a dict's own rate too, naming the input
        load_audio({"array": np.zeros(1000, np.float32), "sampling_rate": rate})


def test_sample_rate_bounds_are_adjustable(monkeypatch):
    monkeypatch.setenv("HUB_MIN_SAMPLE_RATE", "500")
    assert load_audio(np.zeros(500, np.float32), sampling_rate=500).samples.size == 16000
    monkeypatch.setenv("HUB_MAX_SAMPLE_RATE", "16000")
    with pytest.raises(InvalidInputError, match="outside 500-16000 Hz"):
        load_audio(np.zeros(500, np.float32), sampling_rate=44100)


def test_long_clips_refused_from_the_header_with_the_fix(asr, tmp_path, no_reading, monkeypatch):
    path = tmp_path / "three_seconds.wav"
    sf.write(path, tone(3.0, rate=8000), 8000)
    with pytest.raises(InvalidInputError, match=r"input 0 \('.*three_seconds.wav'\) lasts 3 s, more than "
                                                r"max_audio_seconds=2; cut it, or pass max_audio_seconds=3"):
        asr(str(path), max_audio_seconds=2)
    monkeypatch.setenv("HUB_MAX_AUDIO_SECONDS", "2")
    with pytest.raises(InvalidInputError, match="max_audio_seconds=2"):
        asr(path.read_bytes())  # file bytes: the header is read first too


def test_long_arrays_refused_before_resampling(monkeypatch):
    def resample(*args, **kwargs):
        raise AssertionError("resampled")
    monkeypatch.setattr(AF, "resample", resample)
    with pytest.raises(InvalidInputError, match="lasts 5 s, more than max_audio_seconds=4"):
        load_audio(np.zeros(5 * 8000, np.float32), sampling_rate=8000, max_seconds=4)
    assert DEFAULT_MAX_AUDIO_SECONDS == 3600


def test_an_hour_is_the_default_limit(monkeypatch):
    samples = np.zeros(3600 * 1000 + 1, np.int8)  # an hour and a millisecond at 1 kHz: 3.6 MB
    with pytest.raises(InvalidInputError, match="more than max_audio_seconds=3600"):
        load_audio(samples, sampling_rate=1000)


@pytest.mark.parametrize("rate", [44101, 15999, 22051, 383_999])
def test_awkward_rates_resample_with_a_small_filter(monkeypatch, rate):
    """44101 Hz -> 16000 Hz needed a 16000 x 44135 filter (2.8 GB); now the nearest small ratio."""
    real, calls = AF.resample, []

    def resample(waveform, orig, new, **kwargs):
        g = math.gcd(orig, new)
        o, n = orig // g, new // g
        width = math.ceil(6 * o / (min(o, n) * 0.99))
        calls.append((orig, new))
        assert n * (o + 2 * width) <= MAX_RESAMPLE_KERNEL, (orig, new)
        return real(waveform, orig, new, **kwargs)

    monkeypatch.setattr(AF, "resample", resample)
    clip = load_audio(tone(1.0, rate=rate, freq=300), sampling_rate=rate)
    assert calls and abs(clip.samples.size - 16000) <= 1
    # the approximate ratio is within a few parts per million: the same tone, at the same pitch
    reference = tone(1.0, rate=16000, freq=300)
    spectrum = np.abs(np.fft.rfft(clip.samples[:16000]))
    assert np.argmax(spectrum) == np.argmax(np.abs(np.fft.rfft(reference)))


def test_common_rates_resample_exactly_as_before():
    clip = tone(1.0, rate=44100)
    expected = AF.resample(torch.from_numpy(clip), 44100, 16000).numpy()
    assert np.array_equal(load_audio(clip, sampling_rate=44100).samples, expected)


def test_multichannel_files_mixed_down_as_before(tmp_path):
    rng = np.random.default_rng(0)
    stereo = (rng.standard_normal((150_000, 3)) * 0.1).astype(np.float32)  # several read blocks
    path = tmp_path / "three.wav"
    sf.write(path, stereo, 48000, subtype="FLOAT")
    samples, rate = sf.read(path, dtype="float32", always_2d=True)
    expected = AF.resample(torch.from_numpy(np.ascontiguousarray(samples.mean(axis=1))), 48000, 16000).numpy()
    assert np.array_equal(load_audio(str(path)).samples, expected)


# -- item 10 for audio: chunks ---------------------------------------------------------------------
def test_too_many_chunks_refused_before_the_model_runs(asr, monkeypatch):
    clip = {"array": tone(20.0), "sampling_rate": 16000}
    chunks = asr(clip, chunk_length_s=1).metadata["chunks"]  # the count the refusal must name
    assert chunks > 10

    def forward(batch):
        raise AssertionError("the model ran")
    monkeypatch.setattr(asr, "forward", forward)
    with pytest.raises(InvalidInputError, match=rf"input 1 \(20.0 s\) would be cut into {chunks} chunks of 1 s, "
                                                rf"more than max_chunks=10; pass max_chunks={chunks}"):
        asr([{"array": tone(1.0), "sampling_rate": 16000}, clip], chunk_length_s=1, max_chunks=10)
    monkeypatch.setenv("HUB_MAX_CHUNKS", "10")
    with pytest.raises(InvalidInputError, match="more than max_chunks=10"):
        asr(clip, chunk_length_s=1)
    monkeypatch.undo()
    assert asr(clip, chunk_length_s=1, max_chunks=chunks).metadata["chunks"] == chunks
    assert DEFAULT_MAX_CHUNKS >= math.ceil(3600 / (20 - 2 * 20 / 6))  # an hour in default chunks fits


# -- item 18: speech call parameters ----------------------------------------------------------------
@pytest.mark.parametrize("options, match", [
    ({"chunk_length_s": float("nan")}, "chunk_length_s must be a finite number > 0"),
    ({"chunk_length_s": float("inf")}, "chunk_length_s must be a finite number > 0"),
    ({"chunk_length_s": "10"}, "chunk_length_s must be a finite number > 0"),
    ({"chunk_length_s": -1}, "chunk_length_s must be a finite number > 0"),
    ({"chunk_length_s": True}, "chunk_length_s must be a finite number > 0"),
    ({"stride_length_s": float("nan")}, "stride_length_s must be a finite number >= 0"),
    ({"stride_length_s": -0.5}, "stride_length_s must be a finite number >= 0"),
    ({"chunk_length_s": 1, "stride_length_s": 0.5}, "less than half of chunk_length_s"),
    ({"chunk_length_s": 0.96, "stride_length_s": 0.47}, "leaves no step between chunks"),  # range() step 0
    ({"beam_width": "8"}, "beam_width must be an integer >= 1"),
    ({"beam_width": 0, "decoder": "beam"}, "beam_width must be an integer >= 1"),
    ({"beam_width": 2.5}, "beam_width must be an integer >= 1"),
    ({"decoder": "beams"}, "decoder must be one of 'greedy', 'beam'"),
    ({"sampling_rate": "16000"}, "sampling_rate must be a positive integer"),
    ({"max_chunks": 0}, "max_chunks must be an integer >= 1"),
    ({"max_audio_seconds": -1}, "max_audio_seconds must be an integer >= 1"),
])
def test_bad_speech_parameters_refused_before_reading_audio(asr, options, match, tmp_path):
    long_clip = {"array": tone(30.0), "sampling_rate": 16000}  # long enough to be chunked
    with pytest.raises(InvalidInputError, match=match):
        asr(["/no/such/file.wav", long_clip], **options)  # the parameter error comes first


def test_audio_classify_top_k_checked_first(kws):
    for top_k in (0, "2", 1.5):
        with pytest.raises(InvalidInputError, match="top_k must be an integer >= 1 or None"):
            kws("/no/such/file.wav", top_k=top_k)
    assert len(kws({"array": tone(1.0), "sampling_rate": 16000}, top_k=3)) == 3


def test_unknown_keyword_for_speech(asr):
    with pytest.raises(InvalidInputError, match="unknown keyword 'top_k' for speech-recognize"):
        asr({"array": tone(1.0), "sampling_rate": 16000}, top_k=3)
    with pytest.raises(InvalidInputError, match="did you mean 'chunk_length_s'"):
        asr({"array": tone(1.0), "sampling_rate": 16000}, chunk_length=3)


def test_cli_top_k_on_speech_recognize_is_a_clean_error(tmp_path, capsys):
    path = tmp_path / "clip.wav"
    sf.write(path, tone(1.0), 16000)
    assert main(["predict", "speech-recognize", str(path), "--top-k", "3", "--device", "cpu"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: --top-k: speech-recognize takes no top_k") and "Traceback" not in captured.err
    assert main(["predict", "audio-classify", str(path), "--top-k", "3", "--device", "cpu"]) == 0
