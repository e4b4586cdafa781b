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

Limits, so that a small file cannot take gigabytes (a WAV whose header says 1 Hz is
otherwise upsampled 16000-fold): a clip may last at most ``max_audio_seconds`` (default
:data:`DEFAULT_MAX_AUDIO_SECONDS`, one hour; or ``HUB_MAX_AUDIO_SECONDS``), and its sample
rate must lie between :data:`MIN_SAMPLE_RATE` and :data:`MAX_SAMPLE_RATE` Hz
(``HUB_MIN_SAMPLE_RATE`` / ``HUB_MAX_SAMPLE_RATE``). A file's header is read before its
samples, so such files are refused before anything is decoded. Multi-channel files are
mixed down block by block (memory: one mono copy). Rates whose ratio to the model's
reduces to no small fraction (44101 Hz -> 16000 Hz would need a 2.8 GB filter) are
resampled at the nearest ratio whose filter fits :data:`MAX_RESAMPLE_KERNEL` (a part per
million or so off in speed, inaudible).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hub.errors import InputTypeError, InvalidInputError
from hub.validate import resolve_limit

#: peak amplitude under which a clip counts as silent
SILENCE_PEAK = 1e-4
#: the longest clip, in seconds, unless ``max_audio_seconds=`` or ``HUB_MAX_AUDIO_SECONDS`` says otherwise
DEFAULT_MAX_AUDIO_SECONDS = 3600
MAX_AUDIO_SECONDS_ENV = "HUB_MAX_AUDIO_SECONDS"
#: accepted sample rates (Hz); below 1 kHz nothing is speech, above 384 kHz nothing is audio
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 384_000
#: the largest resampling filter (torchaudio's kernel elements) computed for an exact ratio
MAX_RESAMPLE_KERNEL = 2**24


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


def max_audio_seconds(value: Any = None) -> int:
    """The duration limit in force: ``value`` if given, else ``HUB_MAX_AUDIO_SECONDS``, else
    :data:`DEFAULT_MAX_AUDIO_SECONDS`."""
    return resolve_limit("max_audio_seconds", value, MAX_AUDIO_SECONDS_ENV, DEFAULT_MAX_AUDIO_SECONDS)


def sample_rate_range() -> tuple[int, int]:
    """(lowest, highest) accepted sample rate, from ``HUB_MIN_SAMPLE_RATE`` / ``HUB_MAX_SAMPLE_RATE``."""
    return (resolve_limit("min sample rate", None, "HUB_MIN_SAMPLE_RATE", MIN_SAMPLE_RATE),
            resolve_limit("max sample rate", None, "HUB_MAX_SAMPLE_RATE", MAX_SAMPLE_RATE))


def check_rate(rate: Any, what: str) -> int:
    """A sample rate: a positive integer within :func:`sample_rate_range`."""
    if not isinstance(rate, (int, np.integer)) or isinstance(rate, bool) or rate <= 0:
        raise InvalidInputError(f"{what}: sampling_rate must be a positive integer, got {rate!r}.")
    low, high = sample_rate_range()
    if not low <= rate <= high:
        raise InvalidInputError(
            f"{what}: a sample rate of {int(rate)} Hz is outside {low}-{high} Hz (a corrupt header, or the wrong "
            "sampling_rate=?); pass the real rate, or set HUB_MIN_SAMPLE_RATE / HUB_MAX_SAMPLE_RATE.")
    return int(rate)


def check_duration(samples: int, rate: int, limit: int, what: str) -> None:
    """Refuse a clip longer than ``limit`` seconds, saying how to allow it."""
    if samples > limit * rate:
        seconds = samples / rate
        raise InvalidInputError(
            f"{what} lasts {seconds:,.0f} s, more than max_audio_seconds={limit}; cut it, or pass "
            f"max_audio_seconds={math.ceil(seconds)} (or set {MAX_AUDIO_SECONDS_ENV}) to read it anyway.")


def resample_kernel_size(orig: int, new: int) -> int:
    """Elements of the filter torchaudio's ``resample(x, orig, new)`` builds (its defaults:
    lowpass_filter_width 6, rolloff 0.99): ``new' x (orig' + 2 width)`` for the reduced rates."""
    gcd = math.gcd(orig, new)
    orig, new = orig // gcd, new // gcd
    width = math.ceil(6 * orig / (min(orig, new) * 0.99))
    return new * (orig + 2 * width)


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """torchaudio's sinc resampling from ``rate`` to ``target``. A ratio whose exact filter
    would exceed :data:`MAX_RESAMPLE_KERNEL` elements (rates sharing no large factor with
    the target, such as 44101 Hz) is replaced by the nearest ratio whose filter fits: well
    under a part per million off for most rates, never audible."""
    import torchaudio.functional as AF

    orig, new = rate, target
    if resample_kernel_size(orig, new) > MAX_RESAMPLE_KERNEL:
        denominator = max(1, math.isqrt(int(MAX_RESAMPLE_KERNEL * rate / target)))
        while True:
            ratio = Fraction(target, rate).limit_denominator(denominator)
            orig, new = ratio.denominator, ratio.numerator
            if resample_kernel_size(orig, new) <= MAX_RESAMPLE_KERNEL or denominator == 1:
                break
            denominator //= 2
    return AF.resample(torch.from_numpy(samples), orig, new).numpy()


def _decode_file(data: str | Path | bytes, what: str, limit: int) -> tuple[np.ndarray, int]:
    """Decode a file path or file bytes: soundfile first, torchaudio's decoder as a fallback.
    The header's rate and length are checked before any sample is read."""
    import soundfile as sf

    source = io.BytesIO(data) if isinstance(data, bytes) else str(data)
    try:
        with sf.SoundFile(source) as f:
            rate = check_rate(f.samplerate, what)
            check_duration(f.frames, rate, limit, what)
            # mixed down block by block: one mono copy in memory, not all channels
            blocks = [block.mean(axis=1) for block in f.blocks(blocksize=1 << 16, dtype="float32", always_2d=True)]
        samples = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
        return samples, rate
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
               index: int = 0, channels_last: bool | None = None, max_seconds: int | None = None) -> Audio:
    """One input (path, bytes, array, tensor or dict) -> mono float32 at ``target_rate``.

    ``max_seconds``: the longest clip accepted (see :func:`max_audio_seconds`)."""
    what = f"input {index}"
    limit = max_audio_seconds(max_seconds)
    if isinstance(item, dict):
        array = item.get("array", item.get("raw"))
        if array is None:
            raise InvalidInputError(f"{what} is a dict without 'array' (or 'raw'); pass "
                                    "{'array': samples, 'sampling_rate': rate}.")
        rate = item.get("sampling_rate", sampling_rate)
        return load_audio(array, sampling_rate=rate, target_rate=target_rate, index=index,
                          channels_last=channels_last, max_seconds=limit)
    if isinstance(item, (str, Path)):
        path = Path(item)
        what = f"input {index} ({str(path)!r})"
        if not path.is_file():
            raise InvalidInputError(f"{what}: no such audio file." if not path.exists()
                                    else f"{what} is not a file.")
        if path.stat().st_size == 0:
            raise InvalidInputError(f"{what} is an empty file.")
        samples, rate = _decode_file(path, what, limit)
        source = str(path)
    elif isinstance(item, (bytes, bytearray, memoryview)):
        if not len(item):
            raise InvalidInputError(f"{what} is empty bytes; pass the contents of an audio file.")
        samples, rate = _decode_file(bytes(item), f"{what} (bytes)", limit)
        source = "bytes"
    elif isinstance(item, (np.ndarray, torch.Tensor)):
        array = item.detach().cpu().numpy() if isinstance(item, torch.Tensor) else item
        if sampling_rate is None:
            raise InvalidInputError(f"{what} is an array without a sample rate; pass sampling_rate= "
                                    "(e.g. pipe(samples, sampling_rate=16000)).")
        check_rate(sampling_rate, what)  # before any conversion
        samples = _to_mono(_to_float(np.asarray(array), what), what, channels_last)
        rate = sampling_rate
        source = "array"
    else:
        raise InputTypeError(f"{what} is a {type(item).__name__}; pass a file path, file bytes, a NumPy array "
                             "or tensor (with sampling_rate=), or {'array': ..., 'sampling_rate': ...}.")
    rate = check_rate(rate, what)
    check_duration(samples.size, rate, limit, what)  # before resampling, which may multiply the length
    if samples.size == 0:
        raise InvalidInputError(f"{what} holds no samples (empty audio).")
    if not np.isfinite(samples).all():
        raise InvalidInputError(f"{what} contains NaN or infinite samples.")
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if rate != target_rate:
        samples = resample(samples, rate, target_rate)
    return Audio(samples, target_rate, source)


def normalize(samples: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance (wav2vec2's ``do_normalize``; Hub's own models use it too)."""
    return ((samples - samples.mean()) / np.sqrt(samples.var() + 1e-7)).astype(np.float32)
