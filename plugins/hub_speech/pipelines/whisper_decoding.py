"""How ``speech-recognize`` decodes a Whisper checkpoint, as transformers' ASR pipeline does.

Per 30 s window (longer audio is cut by :mod:`hub_speech.pipelines.base` into overlapping
chunks of ``chunk_length_s`` <= 30 s): log-mel features from transformers'
``WhisperFeatureExtractor`` with the checkpoint's settings (``n_mels``, ``hop_length``,
``n_fft``, padded to 30 s) -> the encoder -> the encoder-decoder generation
(:func:`hub_text.models.seq2seq_generation.generate_seq2seq`, greedy or beam search) after
Whisper's decoder prompt ``<|startoftranscript|> <|lang|> <|task|> <|notimestamps|>``, with the
checkpoint's ``suppress_tokens`` (every step) and ``begin_suppress_tokens`` (the first step)
-> the tokenizer's text without special tokens (:mod:`hub_speech.pipelines.whisper_text`). The
prompt follows transformers' ``_retrieve_init_tokens``: ``language=`` / ``task=`` when given; otherwise the checkpoint's
``forced_decoder_ids``, and a multilingual model detects the language (the most likely
language token after ``<|startoftranscript|>``). Chunks' tokens are joined where they overlap
(transformers' longest common sequence). Defaults as transformers' pipeline: the checkpoint's
``num_beams`` / ``max_new_tokens`` when its generation config sets them, else 5 beams and
256 new tokens (capped at the decoder's positions).

``return_timestamps=True`` decodes as transformers' ``generate(..., return_timestamps=True)``:
the prompt leaves out ``<|notimestamps|>``, its timestamp rules apply at every step
(:func:`timestamp_rules`: timestamps in pairs, never decreasing, the first token a timestamp
no later than ``max_initial_timestamp_index``, a timestamp whenever their probabilities sum
above every text token's), and a window whose decoding stops inside a segment (its last
timestamps a pair: more speech follows) is decoded again from that pair's time on, its
features shifted left and zero-padded (Whisper's sequential "seek"), until a window ends
with a single timestamp or has no pair; the segments' ids, joined, give the text and the
``chunks`` with (start, end) seconds (time precision 0.02 s).

Training (``fine_tune``): :meth:`WhisperDecoding.training_prompt`, :meth:`~WhisperDecoding.labels`
and :meth:`~WhisperDecoding.training_collate` make transformers' fine-tuning recipe's batches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from hub.errors import InvalidInputError
from hub.validate import check_choice, check_int, check_number
from hub_speech.models.whisper import FEATURE_KEYS, WhisperModel
from hub_speech.pipelines.whisper_text import decode_windows, merge_overlapping

__all__ = ["WhisperDecoding", "merge_overlapping", "timestamp_rules", "window_segments"]

#: the tasks a Whisper decoder prompt can name
TASKS = ("transcribe", "translate")
#: transformers' ASR pipeline defaults where the checkpoint's generation config sets none
PIPELINE_DEFAULTS = {"max_new_tokens": 256, "num_beams": 5}
#: the call keywords only Whisper models take
WHISPER_PARAMETERS = ("language", "task", "max_new_tokens", "num_beams", "length_penalty")
#: the call keywords only CTC models take (with their neutral values)
CTC_PARAMETERS = {"decoder": "greedy", "beam_width": None}
#: Whisper's encoder halves the log-mel frames (conv2's stride): frames per encoder position
INPUT_STRIDE = 2
#: marks the prompt's language slot to fill by detection
DETECT = -1


def _suppressor(suppress: list[int], begin: list[int], timestamps: Any = None) -> Any:
    """transformers' SuppressTokens / SuppressTokensAtBegin processors: -inf on ``suppress``
    at every step, on ``begin`` at the first generated token; then ``timestamps``' rules
    (:func:`timestamp_rules`), in transformers' order."""

    def process(sequences: torch.Tensor, scores: torch.Tensor, length: int) -> torch.Tensor:
        banned = suppress + (begin if length == 1 else [])
        if banned:
            scores = scores.clone()
            scores[:, banned] = float("-inf")
        return timestamps(sequences, scores, length) if timestamps is not None else scores

    return process


def timestamp_rules(timestamp_begin: int, no_timestamps: int, eos: int, max_initial: int | None) -> Any:
    """transformers' ``WhisperTimeStampLogitsProcessor``: ``<|notimestamps|>`` never; after a
    single timestamp another timestamp or the end, after a pair text; timestamps never
    decrease (nor repeat, but to close a pair); the first token a timestamp (at most
    ``max_initial`` steps in); a timestamp whenever the timestamps' probabilities sum above the
    likeliest text token's. ``sequences`` hold the start token, then the generated ones."""
    inf = float("-inf")

    def process(sequences: torch.Tensor, scores: torch.Tensor, length: int) -> torch.Tensor:
        scores = scores.clone()
        scores[:, no_timestamps] = inf
        lowest = []
        for row, seq in enumerate(sequences[:, 1:].tolist()):
            last = len(seq) >= 1 and seq[-1] >= timestamp_begin
            penultimate = len(seq) < 2 or seq[-2] >= timestamp_begin
            if last:
                if penultimate:
                    scores[row, timestamp_begin:] = inf
                else:
                    scores[row, :eos] = inf
            stamps = [t for t in seq if t >= timestamp_begin]
            lowest.append(timestamp_begin if not stamps else
                          stamps[-1] if last and not penultimate else stamps[-1] + 1)
        vocab = torch.arange(scores.shape[-1], device=scores.device)
        floor = torch.tensor(lowest, device=scores.device)[:, None]
        scores.masked_fill_((vocab >= timestamp_begin) & (vocab < floor), inf)
        if length == 1:
            scores[:, :timestamp_begin] = inf
            if max_initial is not None:
                scores[:, timestamp_begin + max_initial + 1:] = inf
        log_probs = torch.log_softmax(scores.float(), dim=-1)
        stamp = log_probs[:, timestamp_begin:].logsumexp(-1) > log_probs[:, :timestamp_begin].max(-1).values
        scores[:, :timestamp_begin].masked_fill_(stamp[:, None], inf)
        return scores

    return process


def window_segments(tokens: list[int], eos: int | None, timestamp_begin: int) -> tuple[list[int], int | None]:
    """One window's generated ids -> (the ids kept, frames to seek on, or None when the window is done):
    transformers' ``_retrieve_segment``. The end token is dropped; a decoding that stops
    inside a segment (its last timestamps a pair, not one closing timestamp) keeps up to that
    pair and is decoded again from the pair's time."""
    if tokens and tokens[-1] == eos:
        tokens = tokens[:-1]
    stamps = [t >= timestamp_begin for t in tokens]
    single_ending = stamps[-2:] == [False, True]
    pairs = [i + 1 for i in range(len(stamps) - 1) if stamps[i] and stamps[i + 1]]
    if not pairs or single_ending:
        return tokens, None
    end = pairs[-1] + 1
    return tokens[:end], (tokens[end - 2] - timestamp_begin) * INPUT_STRIDE


class _Prompted:
    """The model as the generation sees it: the start token is the prompt's last token; the
    first decoder step runs the whole prompt (per row), so positions and the cache hold it;
    the memory is encoded already."""

    def __init__(self, model: WhisperModel, prompt: torch.Tensor, memory: torch.Tensor) -> None:
        self.model, self.prompt, self.memory = model, prompt, memory
        self.decoder_start_token_id = int(prompt[0, -1])
        self.max_positions = model.max_positions - (prompt.shape[1] - 1)

    def encode(self, features: Any, mask: Any = None) -> torch.Tensor:
        return self.memory

    def new_cache(self, batch: int, max_length: int) -> Any:
        return self.model.new_cache(batch, max_length + self.prompt.shape[1] - 1)

    def decode(self, ids: torch.Tensor, memory: torch.Tensor, mask: Any = None, *, cache: Any = None,
               last_only: bool = False) -> torch.Tensor:
        if cache is not None and cache.length == 0:  # the first step: the whole prompt (one per beam)
            prefix = self.prompt[:, :-1].repeat_interleave(ids.shape[0] // self.prompt.shape[0], 0)
            ids = torch.cat([prefix, ids], 1)
        return self.model.decode(ids, memory, mask, cache=cache, last_only=last_only)


class WhisperDecoding:
    """A Whisper checkpoint's decoding: its tokenizer, feature extractor and generation settings.

    Args:
        model: the converted :class:`~hub_speech.models.whisper.WhisperModel`.
        tokenizer: the folder's (transformers') Whisper tokenizer.
    """

    def __init__(self, model: WhisperModel, tokenizer: Any) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.generation: dict[str, Any] = dict(model.config.get("whisper_generation") or {})
        self.languages: dict[str, int] = dict(self.generation.get("lang_to_id") or {})
        self.tasks: dict[str, int] = {k: v for k, v in (self.generation.get("task_to_id") or {}).items()
                                      if k in TASKS}
        self.multilingual = bool(self.generation.get("is_multilingual", bool(self.languages)))
        self._extractor: Any = None

    @classmethod
    def from_folder(cls, folder: Path, model: WhisperModel) -> WhisperDecoding:
        from hub_text.tokenizer import load_tokenizer

        return cls(model, load_tokenizer(folder))

    @property
    def window_s(self) -> float:
        """The seconds one encoder pass hears (30 for every Whisper)."""
        return float(self.model.config.get("feature_extractor", {}).get("chunk_length", 30))

    # -- call keywords -------------------------------------------------------------------
    def check_parameters(self, params: dict[str, Any]) -> None:
        """Refuse CTC-only keywords and check Whisper's (before any audio is read)."""
        for name, neutral in CTC_PARAMETERS.items():
            if params.get(name, neutral) != neutral:
                raise InvalidInputError(f"{name}= is for CTC recognisers; a Whisper model does not take it (pass "
                                        "num_beams= for beam search).")
        self.timestamps(params.get("return_timestamps"))
        chunk = params.get("chunk_length_s")
        if chunk is not None and chunk > self.window_s:
            raise InvalidInputError(f"chunk_length_s={chunk} is longer than the {self.window_s:g} s Whisper hears at "
                                    f"once; pass chunk_length_s <= {self.window_s:g} (longer audio is cut into "
                                    "chunks of that length).")
        self.settings(params, len(self.prompt(params.get("language"), params.get("task"),
                                              self.timestamps(params.get("return_timestamps")))))

    def timestamps(self, value: Any) -> bool:
        """``return_timestamps`` -> whether to decode with timestamps (True: segment-level, as
        transformers' pipeline); word / char level and a model without timestamp tokens refused."""
        if value in (None, False):
            return False
        if value is not True:
            hint = (" (word timestamps need the checkpoint's alignment heads and cross-attention weights, which "
                    "Hub's Whisper decoding does not compute)" if value == "word" else "")
            raise InvalidInputError(f"return_timestamps for a Whisper model is True (segment timestamps) or "
                                    f"False, got {value!r}{hint}.")
        if self.generation.get("no_timestamps_token_id") is None:
            raise InvalidInputError("This Whisper checkpoint's generation config has no no_timestamps_token_id, so "
                                    "its timestamp tokens are unknown; call it without return_timestamps.")
        return True

    def language_id(self, language: Any) -> int:
        """``language`` ("fr", "french" or "<|fr|>") -> its token id; InvalidInputError listing the accepted ones."""
        codes = sorted(k.strip("<|>") for k in self.languages)
        if not self.multilingual or not self.languages:
            raise InvalidInputError("This Whisper model is English-only (its generation config has no language "
                                    "tokens); call it without language= / task=.")
        if not isinstance(language, str):
            raise InvalidInputError(f"language must be a language code such as {codes[0]!r}, got {language!r}.")
        from transformers.models.whisper.tokenization_whisper import TO_LANGUAGE_CODE

        key = language.lower()
        token = key if key in self.languages else f"<|{TO_LANGUAGE_CODE.get(key, key)}|>"
        if token not in self.languages:
            raise InvalidInputError(f"language {language!r} is not one this model knows; pass one of "
                                    f"{', '.join(codes)} (a code, its English name, or '<|code|>').")
        return int(self.languages[token])

    def prompt(self, language: Any = None, task: Any = None, timestamps: bool = False) -> list[int]:
        """The decoder prompt (transformers' ``_retrieve_init_tokens``); :data:`DETECT` where
        the language is to be detected; ``<|notimestamps|>`` last unless ``timestamps``."""
        if task is not None:
            if not self.multilingual or not self.tasks:
                raise InvalidInputError("This Whisper model is English-only (no task tokens); call it without task=.")
            check_choice("task", task, tuple(self.tasks))
        tokens: list[int | None] = [self.model.decoder_start_token_id]
        if task is None and language is None:
            forced = self.generation.get("forced_decoder_ids") or []
            for position, (index, token) in enumerate(forced, 1):
                if index != position:
                    break
                tokens.append(token)
        undefined = len(tokens) <= 1 or tokens[1] is None
        lang = None
        if language is not None:
            lang = self.language_id(language)
        elif self.languages and undefined:
            lang = DETECT
        if lang is not None:
            if len(tokens) > 1:
                tokens[1] = lang
            else:
                tokens.append(lang)
        if task is not None:
            tokens.append(self.tasks[task])
        elif language is not None and "transcribe" in self.tasks and not set(tokens) & set(self.tasks.values()):
            tokens.append(self.tasks["transcribe"])
        no_timestamps = self.generation.get("no_timestamps_token_id")
        if no_timestamps is not None and not timestamps and tokens[-1] != no_timestamps:
            tokens.append(no_timestamps)
        elif no_timestamps is not None and timestamps and len(tokens) > 1 and tokens[-1] == no_timestamps:
            tokens.pop()
        return [t for t in tokens if t is not None]

    def settings(self, params: dict[str, Any], prompt_length: int) -> tuple[int, int, float]:
        """(max_new_tokens, num_beams, length_penalty): the call's, else the checkpoint's, else
        transformers' pipeline defaults; the new tokens fit the decoder's positions."""
        room = self.model.max_positions - prompt_length
        given = params.get("max_new_tokens")
        default = self.generation.get("max_new_tokens", PIPELINE_DEFAULTS["max_new_tokens"])
        new = check_int("max_new_tokens", given if given is not None else min(default, room), minimum=1)
        if new > room:
            raise InvalidInputError(f"max_new_tokens={new} and the {prompt_length}-token prompt exceed the model's "
                                    f"{self.model.max_positions} decoder positions; pass max_new_tokens <= {room}.")
        beams = params.get("num_beams")
        beams = check_int("num_beams", beams if beams is not None else
                          self.generation.get("num_beams", PIPELINE_DEFAULTS["num_beams"]), minimum=1, maximum=256)
        penalty = params.get("length_penalty")
        penalty = check_number("length_penalty", 1.0 if penalty is None else penalty)
        return int(new), int(beams), float(penalty)

    # -- training ------------------------------------------------------------------------
    def training_prompt(self, language: Any = None, task: Any = None) -> list[int]:
        """The prompt a fine-tuning run teaches (``<|startoftranscript|> <|lang|> <|task|>
        <|notimestamps|>``, as :meth:`prompt` builds it); a multilingual model needs the
        transcripts' ``language`` (there is nothing to detect it from in training)."""
        prompt = self.prompt(language, task)
        if DETECT in prompt:
            codes = ", ".join(sorted(k.strip("<|>") for k in self.languages)[:8])
            raise InvalidInputError(f"fine_tune on a multilingual Whisper needs the transcripts' language: pass "
                                    f"language= (one of {codes}, ...), and task= if they are translations.")
        return prompt

    def labels(self, text: str, prompt: list[int], max_target_tokens: int) -> list[int]:
        """A transcript's labels: the prompt after the start token, the text's tokens, the end
        token (transformers' ``WhisperTokenizer(language=, task=)(text).input_ids`` without the
        start token, which the collator of its fine-tuning recipe drops). Text beyond
        ``max_target_tokens`` (and the decoder's positions) is cut; the end token stays."""
        eos = self.model.config.get("eos_token_id")
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        room = min(max_target_tokens, self.model.max_positions) - len(prompt) + 1 - (eos is not None)
        if room < 1:
            raise InvalidInputError(f"max_target_tokens={max_target_tokens} leaves no room for text after the "
                                    f"{len(prompt)}-token prompt; raise it.")
        return [*prompt[1:], *ids[:room], *([eos] if eos is not None else [])]

    def training_collate(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Log-mel features (B, n_mels, 30 s of frames) and labels padded with -100."""
        from hub.data.padding import pad_sequences

        extracted = self.extractor([np.asarray(f["input_values"], dtype=np.float32) for f in features],
                                   sampling_rate=self.model.sample_rate, return_tensors="pt")
        return {"input_features": extracted["input_features"],
                "labels": pad_sequences([f["label"] for f in features], value=-100)[0]}

    # -- features and decoding -------------------------------------------------------------
    @property
    def extractor(self) -> Any:
        if self._extractor is None:
            from transformers import WhisperFeatureExtractor

            settings = self.model.config.get("feature_extractor", {})
            self._extractor = WhisperFeatureExtractor(**{k: settings[k] for k in FEATURE_KEYS if k in settings})
        return self._extractor

    def annotate(self, features: list[dict[str, Any]], params: dict[str, Any]) -> list[dict[str, Any]]:
        """Give every feature (chunk) the call's prompt and settings."""
        timestamps = self.timestamps(params.get("return_timestamps"))
        prompt = self.prompt(params.get("language"), params.get("task"), timestamps)
        settings = (*self.settings(params, len(prompt)), float(timestamps))
        for feature in features:
            feature["whisper"] = (prompt, settings)
        return features

    def collate(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Log-mel features (B, n_mels, 30 s of frames), prompts (B, P) and settings (B, 4:
        new tokens, beams, length penalty, timestamps) as int64 (their float64 bits: exact,
        and movable to every device)."""
        extracted = self.extractor([np.asarray(f["input_values"], dtype=np.float32) for f in features],
                                   sampling_rate=self.model.sample_rate, return_tensors="pt")
        return {"input_features": extracted["input_features"],
                "prompt": torch.tensor([f["whisper"][0] for f in features], dtype=torch.long),
                "settings": torch.tensor([f["whisper"][1] for f in features], dtype=torch.float64).view(torch.int64)}

    def generate(self, batch: dict[str, torch.Tensor], dtype: torch.dtype | None) -> list[list[int]]:
        """Each row's generated ids (the prompt left out; with timestamps, every segment's ids
        of the window's sequential decoding, joined, without end tokens)."""
        from hub_text.models.seq2seq_generation import Seq2SeqGenerationConfig, generate_seq2seq

        model = self.model
        features = batch["input_features"].to(dtype or torch.float32)
        memory = model.encode(features)
        prompt = batch["prompt"]
        if bool((prompt == DETECT).any()):  # transformers' detect_language: the best language token after the start
            logits = model.decode(prompt[:, :1], memory)[:, -1].float()
            allowed = torch.full_like(logits[0], float("-inf"))
            allowed[list(self.languages.values())] = 0.0
            prompt = torch.where(prompt == DETECT, (logits + allowed).argmax(-1, keepdim=True), prompt)
        new, beams, penalty, timestamps = batch["settings"][0].cpu().view(torch.float64).tolist()
        vocab = model.tokens.num_embeddings
        suppress = [t for t in self.generation.get("suppress_tokens") or [] if 0 <= t < vocab]
        begin = [t for t in self.generation.get("begin_suppress_tokens") or [] if 0 <= t < vocab]
        eos = model.config.get("eos_token_id")
        pad = model.config.get("pad_token_id")
        config = Seq2SeqGenerationConfig(max_new_tokens=int(new), num_beams=int(beams), length_penalty=penalty)
        rules = None
        if timestamps:
            timestamp_begin = int(self.generation["no_timestamps_token_id"]) + 1
            rules = timestamp_rules(timestamp_begin, timestamp_begin - 1, int(eos if eos is not None else 0),
                                    self.generation.get("max_initial_timestamp_index"))
        process = _suppressor(suppress, begin, rules)

        def run(rows: torch.Tensor, memory: torch.Tensor) -> list[list[int]]:
            return generate_seq2seq(_Prompted(model, rows, memory), None, None, config, eos_token_id=eos,
                                    pad_token_id=pad if pad is not None else 0, logits_processor=process)

        if not timestamps:
            return run(prompt, memory)
        # Whisper's sequential decoding of each window: seek to the last closed segment, decode again
        frames = features.shape[-1]
        seek = [0] * features.shape[0]
        out: list[list[int]] = [[] for _ in seek]
        active = list(range(len(seek)))
        while active:
            if any(seek[i] for i in active):  # the windows from their seek on, zero-padded (as transformers)
                window = torch.zeros_like(features[active])
                for row, i in enumerate(active):
                    window[row, :, :frames - seek[i]] = features[i, :, seek[i]:]
                memory = model.encode(window)
            still = []
            for i, tokens in zip(active, run(prompt[active], memory)):
                kept, step = window_segments(tokens, eos, timestamp_begin)
                out[i].extend(kept)
                if step:  # (a pair at 0.00 s cannot close a segment: the rules forbid it; never loop on one)
                    seek[i] += step
                    if seek[i] < frames:
                        still.append(i)
            active = still
        return out

    def decode(self, pieces: list[list[int]], strides: list[tuple[float, float, float]],
               timestamps: bool) -> tuple[str, list[dict[str, Any]]]:
        """The windows' generated ids -> (text, timestamped chunks) as transformers'
        ``_decode_asr`` writes them (:func:`hub_speech.pipelines.whisper_text.decode_windows`);
        ``strides``: each window's (length, left, right) in seconds."""
        no_timestamps = self.generation.get("no_timestamps_token_id")
        return decode_windows(self.tokenizer, list(zip(pieces, strides)),
                              timestamp_begin=no_timestamps + 1 if no_timestamps is not None else None,
                              languages=set(self.languages.values()), timestamps=timestamps,
                              time_precision=self.time_precision)

    @property
    def time_precision(self) -> float:
        """Seconds per timestamp step: the window's length over the encoder's positions (0.02 s)."""
        return self.window_s / self.model.encoder_positions.num_embeddings

    def text(self, pieces: list[list[int]]) -> str:
        """The chunks' text without special tokens (overlapping chunks joined), as the
        pipeline's text without timestamps."""
        return self.decode(pieces, [(0.0, 0.0, 0.0)] * len(pieces), False)[0]
