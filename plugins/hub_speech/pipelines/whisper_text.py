"""Whisper's generated token ids -> text, and timestamped chunks, as transformers' ASR pipeline
writes them (its tokenizer's ``_decode_asr``, ported so Hub's output does not hang on a
private function).

Each window (chunk of audio) contributes its generated ids and its stride ``(chunk_s,
left_s, right_s)``; tokens are of four kinds: a language token, another special token
(ignored), a timestamp token (``<|notimestamps|>`` + 1 + k: k * ``time_precision`` seconds,
0.02 s for every Whisper) and text. Without timestamps the windows' text tokens are joined
where they overlap (:func:`merge_overlapping`) and a change of language starts a new stretch.
With timestamps a pair of timestamps closes a chunk ``{"timestamp": (start, end), "text"}``;
times are offset by the window's start in the audio (its stride), timestamps inside a
stride are skipped (the neighbouring window's are kept), and a timestamp lower than the one
before marks a new segment of one window's sequential decoding (the seek loop in
:mod:`hub_speech.pipelines.whisper_decoding`), whose times continue from the last segment's.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

#: the 1,500 encoder positions of a 30 s window (timestamps step by their length, 0.02 s)
SEGMENT_SIZE = 1500


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


def decode_windows(tokenizer: Any, windows: list[tuple[list[int], tuple[float, float, float]]], *,
                   timestamp_begin: int | None, languages: set[int], timestamps: bool,
                   time_precision: float = 0.02) -> tuple[str, list[dict[str, Any]]]:
    """(text, chunks) from each window's generated ids and stride in seconds.

    Args:
        tokenizer: the checkpoint's Whisper tokenizer (its special ids; decodes the text tokens).
        windows: per window of audio, in order: its generated ids (no prompt) and
            ``(chunk_s, left_stride_s, right_stride_s)``.
        timestamp_begin: the first timestamp token's id (None: the model has none).
        languages: the language tokens' ids.
        timestamps: split into timestamped chunks (else one text, and ``chunks`` is empty).
        time_precision: seconds per timestamp step.

    Returns:
        The text, and the chunks ``[{"timestamp": (start_s, end_s | None), "text": ...}]``
        (empty without ``timestamps``).
    """
    special = set(tokenizer.all_special_ids)
    previous_prompt = tokenizer.convert_tokens_to_ids("<|startofprev|>")
    start = tokenizer.convert_tokens_to_ids("<|startoftranscript|>")
    begin = timestamp_begin if timestamp_begin is not None else float("inf")
    chunks: list[dict[str, Any]] = []
    chunk: dict[str, Any] = {"timestamp": [None, None], "text": ""}
    time_offset = 0.0
    previous: list[list[int]] = []
    skip = False
    last_language: int | None = None
    for token_ids, (chunk_s, left_s, right_s) in windows:
        if token_ids and token_ids[0] == previous_prompt:  # a previous-text prompt: up to the start token
            token_ids = token_ids[token_ids.index(start):] if start in token_ids else []
        last_timestamp: int | None = None
        first_timestamp = begin
        current_max, segments_length, penultimate = 0.0, 0.0, 0.0
        time_offset -= left_s
        right_start = chunk_s - right_s
        if left_s:
            first_timestamp = left_s / time_precision + begin
        if right_s:  # the last timestamps in the right stride are left to the next window
            for token in reversed(token_ids):
                if token >= begin:
                    if last_timestamp is not None and (token - begin) * time_precision < right_start:
                        break
                    last_timestamp = token
        current: list[int] = []
        for i, token in enumerate(token_ids):
            if token in special:
                if token in languages:
                    if last_language is not None and token != last_language and not timestamps:
                        previous.append(current)
                        chunk["text"] = tokenizer.decode(merge_overlapping(previous))
                        chunks.append(chunk)
                        previous, current = [], []
                        chunk = {"timestamp": [None, None], "text": ""}
                    last_language = token
            elif token >= begin:
                timestamp = float((token - begin) * time_precision)
                if timestamp < current_max:  # the next segment of a sequential decoding has started
                    single_ending = i >= 2 and not (token_ids[i - 1] >= begin and token_ids[i - 2] >= begin)
                    if single_ending:
                        segments_length += time_precision * SEGMENT_SIZE
                    else:
                        current_max = penultimate
                        segments_length += penultimate
                penultimate, current_max = current_max, timestamp
                time = round((token - begin) * time_precision + time_offset + segments_length, 2)
                if last_timestamp and token >= last_timestamp:
                    skip = True  # inside the right stride: resolved by the next window (pairs: skip the next too)
                elif skip or (previous and token < first_timestamp):
                    skip = False
                elif chunk["timestamp"][0] is None:
                    chunk["timestamp"][0] = time
                elif time != chunk["timestamp"][0]:  # equal: a duplicated start, which stays a start
                    chunk["timestamp"][1] = time
                    previous.append(current)
                    chunk["text"] = tokenizer.decode(merge_overlapping(previous))
                    chunks.append(chunk)
                    previous, current = [], []
                    chunk = {"timestamp": [None, None], "text": ""}
            else:
                current.append(token)
        time_offset += chunk_s - right_s
        if current:
            previous.append(current)
        elif not any(previous):
            chunk = {"timestamp": [None, None], "text": ""}
            previous = []
    if previous:
        if timestamps:
            logger.warning("Whisper did not predict an ending timestamp (audio cut off in the middle of a word?); "
                           "the last chunk has no end time.")
        chunk["text"] = tokenizer.decode(merge_overlapping(previous))
        chunks.append(chunk)
    text = "".join(c["text"] for c in chunks)
    if not timestamps:
        return text, []
    return text, [{"timestamp": tuple(c["timestamp"]), "text": c["text"]} for c in chunks]
