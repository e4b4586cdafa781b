"""Audio inputs -> mono float32 waveforms at the model's sample rate.

Accepted inputs: a path (``str`` / ``Path``; WAV, FLAC, OGG and the other libsndfile formats
through soundfile, anything else through torchaudio when its decoder is installed), the
bytes of such a file, a NumPy array or torch tensor (``sampling_rate=`` required), or a
dict ``{"array"|"raw": ..., "sampling_rate": ...}`` as Hugging Face datasets yield them.
Integer samples are scaled to [-1, 1] (int16 / 32768, ...), multi-channel audio is mixed
down to mono, and any sample rate is resampled (torchaudio) to the model's.

Problems (an empty or corrupt file, a missing sampling rate, NaNs, ...) raise
:class:`~hub.errors.InvalidInputError` or :class:`~hub.errors.InputTypeError` naming the
input and the fix.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hub.errors import InputTypeError, InvalidInputError

#: peak amplitude under which a clip counts as silent
SILENCE_PEAK = 1e-4


@dataclass
class Audio:
    """A decoded clip: mono float32 samples at ``sample_rate``, and where it came from."""

    samples: np.ndarray
    sample_rate: int
    source: str

    @property
    def seconds(self) -> float:
        return self.samples.size / self.sample_rate

    @property
    def silent(self) -> bool:
        return self.samples.size == 0 or float(np.abs(self.samples).max()) < SILENCE_PEAK


def _to_float(array: np.ndarray, what: str) -> np.ndarray:
    if array.dtype.kind == "i":
        scale = float(2 ** (8 * array.dtype.itemsize - 1))
        return array.astype(np.float32) / scale
    if array.dtype.kind == "u":
        half = float(2 ** (8 * array.dtype.itemsize - 1))
        return (array.astype(np.float32) - half) / half
    if array.dtype.kind == "f":
        return array.astype(np.float32, copy=False)
    if array.dtype.kind == "b":
        raise InputTypeError(f"{what} holds booleans; pass audio samples (float or integer PCM).")
    raise InputTypeError(f"{what} has dtype {array.dtype}; pass float or integer PCM samples.")


def _to_mono(array: np.ndarray, what: str, channels_last: bool | None) -> np.ndarray:
    """(S,), (C, S) or (S, C) -> (S,); the channel axis is the short one unless told."""
    if array.ndim == 1:
        return array
    if array.ndim != 2:
        raise InvalidInputError(f"{what} has shape {array.shape}; pass (samples,) or (channels, samples).")
    if channels_last is None:
        channels_last = array.shape[1] < array.shape[0]
    return array.mean(axis=1 if channels_last else 0)


def _decode_file(data: str | Path | bytes, what: str) -> tuple[np.ndarray, int]:
    """Decode a file path or file bytes: soundfile first, torchaudio's decoder as a fallback."""
    import soundfile as sf

    source = io.BytesIO(data) if isinstance(data, bytes) else str(data)
    try:
        samples, rate = sf.read(source, dtype="float32", always_2d=True)  # (S, C)
        return samples.mean(axis=1), int(rate)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        soundfile_error = exc
    try:  # formats libsndfile lacks (e.g. m4a), when torchaudio's decoder (torchcodec/ffmpeg) is installed
        import torchaudio

        if isinstance(data, bytes):
            data = io.BytesIO(data)
        waveform, rate = torchaudio.load(data)  # (C, S)
        return waveform.mean(0).numpy().astype(np.float32), int(rate)
    except Exception:  # noqa: BLE001 - any decoder failure means the same thing to the user
        pass
    raise InvalidInputError(f"Cannot decode {what} as audio ({soundfile_error}). Pass a WAV, FLAC or OGG file "
                            "(other formats need torchaudio's decoder, e.g. pip install torchcodec), or "
                            "an array with sampling_rate=.") from None


def load_audio(item: Any, *, sampling_rate: int | None = None, target_rate: int = 16000,
               index: int = 0, channels_last: bool | None = None) -> Audio:
    """One input (path, bytes, array, tensor or dict) -> mono float32 at ``target_rate``."""
    what = f"input {index}"
    if isinstance(item, dict):
        array = item.get("array", item.get("raw"))
        if array is None:
            raise InvalidInputError(f"{what} is a dict without 'array' (or 'raw'); pass "
                                    "{'array': samples, 'sampling_rate': rate}.")
        rate = item.get("sampling_rate", sampling_rate)
        return load_audio(array, sampling_rate=rate, target_rate=target_rate, index=index,
                          channels_last=channels_last)
    if isinstance(item, (str, Path)):
        path = Path(item)
        what = f"input {index} ({str(path)!r})"
        if not path.is_file():
            raise InvalidInputError(f"{what}: no such audio file." if not path.exists()
                                    else f"{what} is not a file.")
        if path.stat().st_size == 0:
            raise InvalidInputError(f"{what} is an empty file.")
        samples, rate = _decode_file(path, what)
        source = str(path)
    elif isinstance(item, (bytes, bytearray, memoryview)):
        if not len(item):
            raise InvalidInputError(f"{what} is empty bytes; pass the contents of an audio file.")
        samples, rate = _decode_file(bytes(item), f"{what} (bytes)")
        source = "bytes"
    elif isinstance(item, (np.ndarray, torch.Tensor)):
        array = item.detach().cpu().numpy() if isinstance(item, torch.Tensor) else item
        if sampling_rate is None:
            raise InvalidInputError(f"{what} is an array without a sample rate; pass sampling_rate= "
                                    "(e.g. pipe(samples, sampling_rate=16000)).")
        samples = _to_mono(_to_float(np.asarray(array), what), what, channels_last)
        rate = sampling_rate
        source = "array"
    else:
        raise InputTypeError(f"{what} is a {type(item).__name__}; pass a file path, file bytes, a NumPy array "
                             "or tensor (with sampling_rate=), or {'array': ..., 'sampling_rate': ...}.")
    if not isinstance(rate, (int, np.integer)) or isinstance(rate, bool) or rate <= 0:
        raise InvalidInputError(f"{what}: sampling_rate must be a positive integer, got {rate!r}.")
    if samples.size == 0:
        raise InvalidInputError(f"{what} holds no samples (empty audio).")
    if not np.isfinite(samples).all():
        raise InvalidInputError(f"{what} contains NaN or infinite samples.")
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if int(rate) != target_rate:
        import torchaudio.functional as AF

        samples = AF.resample(torch.from_numpy(samples), int(rate), target_rate).numpy()
    return Audio(samples, target_rate, source)


def normalize(samples: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance (wav2vec2's ``do_normalize``; Hub's own models use it too)."""
    return ((samples - samples.mean()) / np.sqrt(samples.var() + 1e-7)).astype(np.float32)
