"""How ``speech-recognize`` decodes a Whisper checkpoint, as transformers' ASR pipeline does.

Per 30 s window (longer audio is cut by :mod:`hub_speech.pipelines.base` into overlapping
chunks of ``chunk_length_s`` <= 30 s): log-mel features from transformers'
``WhisperFeatureExtractor`` with the checkpoint's settings (``n_mels``, ``hop_length``,
``n_fft``, padded to 30 s) -> the encoder -> the encoder-decoder generation
(:func:`hub_text.models.seq2seq_generation.generate_seq2seq`, greedy or beam search) after
Whisper's decoder prompt ``<|startoftranscript|> <|lang|> <|task|> <|notimestamps|>``, with the
checkpoint's ``suppress_tokens`` (every step) and ``begin_suppress_tokens`` (the first step)
-> the tokenizer's text without special tokens. The prompt follows transformers'
``_retrieve_init_tokens``: ``language=`` / ``task=`` when given; otherwise the checkpoint's
``forced_decoder_ids``, and a multilingual model detects the language (the most likely
language token after ``<|startoftranscript|>``). Chunks' tokens are joined where they overlap
(transformers' longest common sequence). Defaults as transformers' pipeline: the checkpoint's
``num_beams`` / ``max_new_tokens`` when its generation config sets them, else 5 beams and
256 new tokens (capped at the decoder's positions).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from hub.errors import InvalidInputError
from hub.validate import check_choice, check_int, check_number
from hub_speech.models.whisper import FEATURE_KEYS, WhisperModel

#: the tasks a Whisper decoder prompt can name
TASKS = ("transcribe", "translate")
#: transformers' ASR pipeline defaults where the checkpoint's generation config sets none
PIPELINE_DEFAULTS = {"max_new_tokens": 256, "num_beams": 5}
#: the call keywords only Whisper models take
WHISPER_PARAMETERS = ("language", "task", "max_new_tokens", "num_beams", "length_penalty")
#: the call keywords only CTC models take (with their neutral values)
CTC_PARAMETERS = {"decoder": "greedy", "beam_width": None, "return_timestamps": None}
#: marks the prompt's language slot to fill by detection
DETECT = -1


def _suppressor(suppress: list[int], begin: list[int]) -> Any:
    """transformers' SuppressTokens / SuppressTokensAtBegin processors: -inf on ``suppress``
    at every step, on ``begin`` at the first generated token."""

    def process(sequences: torch.Tensor, scores: torch.Tensor, length: int) -> torch.Tensor:
        banned = suppress + (begin if length == 1 else [])
        if banned:
            scores = scores.clone()
            scores[:, banned] = float("-inf")
        return scores

    return process


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
            if params.get(name, neutral) not in (neutral, False if name == "return_timestamps" else neutral):
                hint = " (pass num_beams= for beam search)" if name in ("decoder", "beam_width") else ""
                raise InvalidInputError(f"{name}= is for CTC recognisers; a Whisper model does not take it{hint}.")
        chunk = params.get("chunk_length_s")
        if chunk is not None and chunk > self.window_s:
            raise InvalidInputError(f"chunk_length_s={chunk} is longer than the {self.window_s:g} s Whisper hears at "
                                    f"once; pass chunk_length_s <= {self.window_s:g} (longer audio is cut into "
                                    "chunks of that length).")
        self.settings(params, len(self.prompt(params.get("language"), params.get("task"))))

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

    def prompt(self, language: Any = None, task: Any = None) -> list[int]:
        """The decoder prompt (transformers' ``_retrieve_init_tokens`` without timestamps);
        :data:`DETECT` where the language is to be detected."""
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
        if no_timestamps is not None and tokens[-1] != no_timestamps:
            tokens.append(no_timestamps)
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
        prompt = self.prompt(params.get("language"), params.get("task"))
        settings = self.settings(params, len(prompt))
        for feature in features:
            feature["whisper"] = (prompt, settings)
        return features

    def collate(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Log-mel features (B, n_mels, 30 s of frames), prompts (B, P) and settings (B, 3) as
        int64 (the length penalty's float64 bits: exact, and movable to every device)."""
        extracted = self.extractor([np.asarray(f["input_values"], dtype=np.float32) for f in features],
                                   sampling_rate=self.model.sample_rate, return_tensors="pt")
        return {"input_features": extracted["input_features"],
                "prompt": torch.tensor([f["whisper"][0] for f in features], dtype=torch.long),
                "settings": torch.tensor([f["whisper"][1] for f in features], dtype=torch.float64).view(torch.int64)}

    def generate(self, batch: dict[str, torch.Tensor], dtype: torch.dtype | None) -> list[list[int]]:
        """Each row's generated ids (the prompt left out)."""
        from hub_text.models.seq2seq_generation import Seq2SeqGenerationConfig, generate_seq2seq

        model = self.model
        memory = model.encode(batch["input_features"].to(dtype or torch.float32))
        prompt = batch["prompt"]
        if bool((prompt == DETECT).any()):  # transformers' detect_language: the best language token after the start
            logits = model.decode(prompt[:, :1], memory)[:, -1].float()
            allowed = torch.full_like(logits[0], float("-inf"))
            allowed[list(self.languages.values())] = 0.0
            prompt = torch.where(prompt == DETECT, (logits + allowed).argmax(-1, keepdim=True), prompt)
        settings = batch["settings"][0].cpu()
        new, beams = (int(v) for v in settings[:2].view(torch.float64).tolist())
        penalty = float(settings[2:].view(torch.float64))
        vocab = model.tokens.num_embeddings
        suppress = [t for t in self.generation.get("suppress_tokens") or [] if 0 <= t < vocab]
        begin = [t for t in self.generation.get("begin_suppress_tokens") or [] if 0 <= t < vocab]
        eos = model.config.get("eos_token_id")
        pad = model.config.get("pad_token_id")
        config = Seq2SeqGenerationConfig(max_new_tokens=new, num_beams=beams, length_penalty=penalty)
        return generate_seq2seq(_Prompted(model, prompt, memory), None, None, config, eos_token_id=eos,
                                pad_token_id=pad if pad is not None else 0,
                                logits_processor=_suppressor(suppress, begin))

    def text(self, pieces: list[list[int]]) -> str:
        """The chunks' tokens decoded without special tokens, joined where they overlap, as
        transformers' ``_decode_asr`` does without timestamps: overlapping chunks merge by
        :func:`merge_overlapping`; a change of language token starts a new stretch of text."""
        special = set(self.tokenizer.all_special_ids)
        no_timestamps = self.generation.get("no_timestamps_token_id")
        first_timestamp = no_timestamps + 1 if no_timestamps is not None else None
        languages = set(self.languages.values())
        texts: list[str] = []
        previous: list[list[int]] = []
        last_language = None
        for tokens in pieces:
            current: list[int] = []
            for token in tokens:
                if token in special:
                    if token in languages:
                        if last_language is not None and token != last_language:
                            previous.append(current)
                            texts.append(self.tokenizer.decode(merge_overlapping(previous)))
                            previous, current = [], []
                        last_language = token
                elif first_timestamp is None or token < first_timestamp:  # timestamps are not text
                    current.append(token)
            if current:
                previous.append(current)
            elif not any(previous):
                previous = []
        if previous:
            texts.append(self.tokenizer.decode(merge_overlapping(previous)))
        return "".join(texts)


def merge_overlapping(sequences: list[list[int]]) -> list[int]:
    """Consecutive chunks' tokens as one sequence: transformers' Whisper
    ``_find_longest_common_sequence`` (slide each chunk over the text so far, keep the offset
    where most tokens agree, more than one, longer perfect matches preferred; the left chunk
    wins the left half of the overlap, the right chunk the right half)."""
    left = list(sequences[0])
    total: list[int] = []
    for right in sequences[1:]:
        best, chosen = 0.0, (len(left), len(left), 0, 0)
        for i in range(1, len(left) + len(right)):
            left_start, left_stop = max(0, len(left) - i), min(len(left), len(left) + len(right) - i)
            right_start, right_stop = max(0, i - len(left)), min(len(right), i)
            matches = sum(a == b for a, b in zip(left[left_start:left_stop], right[right_start:right_stop]))
            matching = matches / i + i / 10000.0  # epsilon: favour long perfect matches
            if matches > 1 and matching > best:
                best, chosen = matching, (left_start, left_stop, right_start, right_stop)
        left_start, left_stop, right_start, right_stop = chosen
        total.extend(left[:(left_stop + left_start) // 2])
        left = list(right[(right_stop + right_start) // 2:])
    return total + left
