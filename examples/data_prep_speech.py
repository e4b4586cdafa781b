"""Synthesise real spoken words and phrases with three independent speech synthesisers, once.

Training audio comes from espeak-ng (seven English accents x ~30 voice variants, random speed
and pitch) and festival (kal_diphone, cmu_us_slt_arctic_hts, random duration stretch; the
``festival`` supplements add festival-only clips with ked_diphone too and random tape speed); the
held-out test audio comes from a synthesiser never used in training: flite's ``awb`` and
``rms`` voices (flite's ``kal`` and ``slt`` speakers also exist in festival, so they are left
out to avoid a leak). Every clip gets random leading/trailing silence, gain and added noise
(white or brown, SNR 5-30 dB for training, 15-30 dB for the test clips), is resampled to
16 kHz mono and written as 16-bit WAV; each set gets a jsonl manifest of
``{"path": relative wav path, "text": ..., "label": ..., "voice": ...}`` records.

    apt-get install -y espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
    python -m examples.data_prep_speech            # both sets
    python -m examples.data_prep_speech kws        # keyword spotting: 20 words, one word per clip
                                                   # (+ kws-festival: 720 festival-only clips, 3 voices)
    python -m examples.data_prep_speech asr        # recognition: 2-4 word phrases over 35 words
                                                   # (+ asr-festival: 900 festival-only clips)

Files land under ``$HUB_DATA_CACHE/speech`` (default ``~/.cache/hub/datasets/speech``);
a set that is already complete is not made again. Everything is seeded, so a rerun on
the same synthesiser versions produces the same clips.
"""

from __future__ import annotations

import io
import json
import random
import shutil
import subprocess
import sys
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from examples.data_prep import cache_dir
from hub._fs import atomic_write_text

SAMPLE_RATE = 16000
#: the 20 core words of Speech Commands: ten commands and the ten digits
KWS_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
             "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
#: all 35 words of Speech Commands v2, the vocabulary of the recognition phrases
ASR_WORDS = KWS_WORDS + ("backward", "forward", "follow", "learn", "visual", "bed", "bird", "cat",
                         "dog", "happy", "house", "marvin", "sheila", "tree", "wow")
ESPEAK_LANGS = ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-gb-x-gbclan",
                "en-gb-x-gbcwmd")
ESPEAK_VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
                   "klatt", "klatt2", "klatt3", "klatt4", "adam", "Andy", "Annie", "benjamin", "david",
                   "john", "linda", "max", "paul", "robert", "steph", "travis", "victor", "aunty",
                   "grandpa", "Lee", "rob", "quincy")
FESTIVAL_VOICES = ("kal_diphone", "cmu_us_slt_arctic_hts")
#: voices of the festival-only supplement (``kws-festival``); ked needs festvox-kdlpc16k
FESTIVAL_EXTRA_VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
FLITE_TEST_VOICES = ("awb", "rms")
SIZES = {"kws": {"train": 2400, "test": 240, "festival": 720}, "asr": {"train": 3000, "test": 240, "festival": 900}}


@dataclass(frozen=True)
class Clip:
    index: int
    text: str
    label: str
    split: str


def root() -> Path:
    return cache_dir() / "speech"


def manifest(task: str, split: str) -> Path:
    """``speech/{task}-{split}.jsonl``, made on first use (task ``kws`` or ``asr``)."""
    path = root() / f"{task}-{split}.jsonl"
    if not path.is_file():
        build(task, splits=[split])
    return path


def _check_tools() -> None:
    missing = [tool for tool in ("espeak-ng", "flite", "text2wave") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"Missing synthesiser(s) {missing}. On Debian or Ubuntu run: apt-get install -y "
                         "espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts")


def _run(cmd: list[str], text: str | None = None) -> None:
    subprocess.run(cmd, input=text, text=True, check=True, capture_output=True, timeout=120)


def _synthesise(clip: Clip, rng: random.Random, wav: Path) -> str:
    """Write ``clip.text`` spoken by a voice chosen for its split to ``wav``; return the voice."""
    if clip.split == "test":
        voice = FLITE_TEST_VOICES[clip.index % len(FLITE_TEST_VOICES)]
        stretch = rng.choice((0.8, 0.9, 1.0, 1.1, 1.25))
        f0 = rng.randint(85, 150)
        _run(["flite", "-voice", voice, "--setf", f"duration_stretch={stretch}", "--setf",
              f"int_f0_target_mean={f0}", "-t", clip.text, "-o", str(wav)])
        return f"flite:{voice}"
    if clip.split == "festival" or rng.random() < 0.12:
        voice = rng.choice(FESTIVAL_EXTRA_VOICES if clip.split == "festival" else FESTIVAL_VOICES)
        stretch = round(rng.uniform(0.8, 1.3), 2)
        _run(["text2wave", "-eval", f"(voice_{voice})", "-eval", f"(Parameter.set 'Duration_Stretch {stretch})",
              "-o", str(wav)], text=clip.text)
        return f"festival:{voice}"
    lang, variant = rng.choice(ESPEAK_LANGS), rng.choice(ESPEAK_VARIANTS)
    name = f"{lang}+{variant}" if variant else lang
    _run(["espeak-ng", "-v", name, "-s", str(rng.randint(120, 220)), "-p", str(rng.randint(20, 80)),
          "-a", "150", "-w", str(wav), clip.text])
    return f"espeak-ng:{name}"


def _noise(rng: np.random.Generator, n: int) -> np.ndarray:
    white = rng.standard_normal(n)
    if rng.random() < 0.5:
        return white
    brown = np.cumsum(white)
    brown -= np.convolve(brown, np.ones(801) / 801, mode="same")  # remove the drift
    return brown


def _finish(audio: np.ndarray, rate: int, clip: Clip, seed: int) -> np.ndarray:
    """Mono, 16 kHz, random padding, gain and noise (seeded per clip)."""
    import torch
    import torchaudio.functional as AF

    if audio.ndim == 2:
        audio = audio.mean(1)
    rng = np.random.default_rng(seed)
    if clip.split == "festival":  # festival has few voices: vary speed and pitch together ("tape speed")
        rate = int(round(rate * rng.uniform(0.88, 1.12) / 800)) * 800  # a multiple of 800: a cheap resampling kernel
    if rate != SAMPLE_RATE:
        audio = AF.resample(torch.from_numpy(audio.astype(np.float32)), rate, SAMPLE_RATE).numpy()
    pad = rng.integers(0, int(0.25 * SAMPLE_RATE), size=2)
    audio = np.concatenate([np.zeros(pad[0]), audio, np.zeros(pad[1])])
    peak = np.abs(audio).max() or 1.0
    audio = audio / peak * rng.uniform(0.2, 0.9)
    snr = rng.uniform(15, 30) if clip.split == "test" else rng.uniform(5, 30)
    noise = _noise(rng, audio.size)
    signal_power = np.mean(audio[np.abs(audio) > 0.01 * np.abs(audio).max()] ** 2)
    noise *= np.sqrt(signal_power / 10 ** (snr / 10) / max(np.mean(noise ** 2), 1e-12))
    return np.clip(audio + noise, -1.0, 1.0).astype(np.float32)


def _make(clip: Clip, folder: Path, seed: int) -> dict:
    import soundfile as sf

    rng = random.Random(seed)
    out = folder / f"{clip.split}-{clip.index:05d}.wav"
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        voice = _synthesise(clip, rng, raw)
        audio, rate = sf.read(io.BytesIO(raw.read_bytes()), dtype="float32")
    sf.write(out, _finish(audio, rate, clip, seed), SAMPLE_RATE, subtype="PCM_16")
    return {"path": f"{folder.name}/{out.name}", "text": clip.text, "label": clip.label, "voice": voice}


def _clips(task: str, split: str) -> list[Clip]:
    rng = random.Random(f"{task}-{split}")
    clips = []
    for index in range(SIZES[task][split]):
        if task == "kws":
            word = KWS_WORDS[index % len(KWS_WORDS)]
            clips.append(Clip(index, word, word, split))
        else:
            words = [rng.choice(ASR_WORDS) for _ in range(rng.randint(2, 4))]
            clips.append(Clip(index, " ".join(words), "", split))
    return clips


def build(task: str, workers: int = 2, splits: list[str] | None = None) -> list[Path]:
    """Synthesise ``splits`` (default: all) of ``task`` (``kws`` or ``asr``); returns their manifests."""
    if task not in SIZES:
        raise SystemExit(f"unknown speech set {task!r}; known: {', '.join(SIZES)}")
    _check_tools()
    paths = []
    for split in splits or SIZES[task]:
        path = root() / f"{task}-{split}.jsonl"
        paths.append(path)
        if path.is_file():
            continue
        folder = root() / f"{task}-{split}"
        folder.mkdir(parents=True, exist_ok=True)
        clips = _clips(task, split)
        seeds = [zlib.crc32(f"{task}-{split}-{c.index}".encode()) for c in clips]
        with ThreadPoolExecutor(workers) as pool:
            records = list(pool.map(_make, clips, [folder] * len(clips), seeds))
        if task == "asr":
            for record in records:
                record.pop("label")
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))
        print(f"{path}: {len(records)} clips", flush=True)
    return paths


def main(argv: list[str]) -> None:
    for task in argv or list(SIZES):
        for path in build(task):
            print(path)


if __name__ == "__main__":
    main(sys.argv[1:])
