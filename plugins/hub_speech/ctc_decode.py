"""CTC vocabularies and decoding: greedy (best path) and prefix beam search, with timestamps.

A vocabulary is a list of tokens by id, as wav2vec2's ``vocab.json`` holds them: the blank
(``<pad>``), special tokens in angle brackets, ``|`` between words, and characters.
Decoding returns the text and, per emitted character, the frame where it starts and the
frame where its run ends, from which word and character timestamps are made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from hub.errors import InvalidInputError
from hub.validate import check_int


@dataclass
class Decoded:
    text: str
    chars: list[tuple[str, int, int]]  # (character, first frame, last frame) per emitted character


class CTCVocab:
    """Tokens by id; ``blank`` is CTC's blank; ``delimiter`` separates words."""

    def __init__(self, tokens: list[str], *, blank: int = 0, delimiter: str = "|") -> None:
        self.tokens, self.blank, self.delimiter = list(tokens), blank, delimiter
        self.index = {t: i for i, t in enumerate(self.tokens)}
        letters = [t for t in self.tokens if len(t) == 1 and t.isalpha()]
        self.upper = bool(letters) and all(t.isupper() for t in letters)
        self.unk = self.index.get("<unk>")

    def __len__(self) -> int:
        return len(self.tokens)

    def is_special(self, token_id: int) -> bool:
        token = self.tokens[token_id]
        return token_id == self.blank or (token.startswith("<") and token.endswith(">") and len(token) > 2)

    def normalise(self, text: str) -> str:
        """The spelling the vocabulary can write: case folded, spaces collapsed."""
        text = " ".join(text.split())
        return text.upper() if self.upper else text.lower()

    def encode(self, text: str) -> list[int]:
        """Text -> label ids (spaces become the word delimiter); unknown characters raise."""
        ids = []
        for char in self.normalise(text):
            token = self.delimiter if char == " " else char
            if token in self.index:
                ids.append(self.index[token])
            elif self.unk is not None:
                ids.append(self.unk)
            else:
                raise InvalidInputError(f"the character {char!r} in {text!r} is not in the model's vocabulary "
                                        f"({''.join(t for t in self.tokens if len(t) == 1)!r}).")
        return ids

    def _text(self, chars: list[tuple[str, int, int]]) -> str:
        return " ".join("".join(c for c, _, _ in chars).replace(self.delimiter, " ").split())

    def greedy(self, log_probs: torch.Tensor) -> Decoded:
        """(T, V) -> the best path with repeats merged and blanks removed (special tokens other
        than the blank are dropped first, so they do not separate repeats)."""
        best = log_probs.argmax(-1).tolist()
        chars: list[tuple[str, int, int]] = []
        previous = None
        for frame, token in enumerate(best):
            if token != self.blank and self.is_special(token):
                continue  # <s>, </s>, <unk>: dropped before repeats merge, as transformers' decode does
            if token == previous:
                if chars and not self.is_special(token):
                    chars[-1] = (chars[-1][0], chars[-1][1], frame)
                continue
            previous = token
            if not self.is_special(token):
                chars.append((self.tokens[token], frame, frame))
        return Decoded(self._text(chars), chars)

    def beam_search(self, log_probs: torch.Tensor, *, beam_width: int = 8, prune: float = -12.0) -> Decoded:
        """CTC prefix beam search over (T, V) log-probabilities (no language model).

        Keeps the ``beam_width`` most probable prefixes, summing the probabilities of every
        alignment of a prefix (ending in blank or not); tokens whose log-probability at a
        frame is below ``prune`` are skipped. Returns the most probable prefix.
        """
        check_int("beam_width", beam_width, minimum=1)
        lp = log_probs.float().cpu()
        neg = -math.inf
        # prefix (tuple of token ids) -> [log P(ending in blank), log P(ending in non-blank)], frames
        beams: dict[tuple[int, ...], list[float]] = {(): [0.0, neg]}
        frames: dict[tuple[int, ...], tuple[tuple[int, int], ...]] = {(): ()}
        for t in range(lp.shape[0]):
            row = lp[t]
            candidates = (row > prune).nonzero().squeeze(1).tolist() or [int(row.argmax())]
            nxt: dict[tuple[int, ...], list[float]] = {}
            for prefix, (p_b, p_nb) in beams.items():
                total = _logsumexp(p_b, p_nb)
                for token in candidates:
                    p = float(row[token])
                    if token == self.blank:
                        entry = nxt.setdefault(prefix, [neg, neg])
                        entry[0] = _logsumexp(entry[0], total + p)
                        continue
                    if self.is_special(token):  # <unk>, <s>: ignored, so they do not separate repeats
                        entry = nxt.setdefault(prefix, [neg, neg])
                        entry[0] = _logsumexp(entry[0], p_b + p)
                        entry[1] = _logsumexp(entry[1], p_nb + p)
                        continue
                    last = prefix[-1] if prefix else None
                    extended = prefix + (token,)
                    entry = nxt.setdefault(extended, [neg, neg])
                    if token == last:  # a repeat needs a blank in between; without one it stays
                        entry[1] = _logsumexp(entry[1], p_b + p)
                        same = nxt.setdefault(prefix, [neg, neg])
                        same[1] = _logsumexp(same[1], p_nb + p)
                        frames[prefix] = _extend_last(frames[prefix], t)
                    else:
                        entry[1] = _logsumexp(entry[1], total + p)
                    if extended not in frames or frames[extended][-1][0] > t:
                        frames[extended] = frames[prefix] + ((t, t),)
            ranked = sorted(nxt.items(), key=lambda kv: _logsumexp(*kv[1]), reverse=True)[:beam_width]
            beams = dict(ranked)
            frames = {prefix: frames[prefix] for prefix in beams}
        best = max(beams.items(), key=lambda kv: _logsumexp(*kv[1]))[0]
        chars = [(self.tokens[tok], start, end) for tok, (start, end) in zip(best, frames[best])]
        return Decoded(self._text(chars), chars)


def _extend_last(spans: tuple[tuple[int, int], ...], frame: int) -> tuple[tuple[int, int], ...]:
    if not spans:
        return spans
    return spans[:-1] + ((spans[-1][0], max(spans[-1][1], frame)),)


def _logsumexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    high = max(a, b)
    return high + math.log1p(math.exp(-abs(a - b)))


def word_timestamps(decoded: Decoded, delimiter: str, seconds_per_frame: float,
                    offset: float = 0.0) -> list[dict]:
    """Words with ``(start, end)`` seconds: first frame of the first letter to the end of the last."""
    words, current = [], []
    for char in [*decoded.chars, (delimiter, -1, -1)]:
        if char[0] == delimiter or char[0] == " ":
            if current:
                text = "".join(c for c, _, _ in current)
                start, end = current[0][1], current[-1][2] + 1
                words.append({"text": text, "timestamp": (round(offset + start * seconds_per_frame, 3),
                                                          round(offset + end * seconds_per_frame, 3))})
            current = []
        else:
            current.append(char)
    return words


def char_timestamps(decoded: Decoded, delimiter: str, seconds_per_frame: float) -> list[dict]:
    return [{"text": " " if c == delimiter else c,
             "timestamp": (round(s * seconds_per_frame, 3), round((e + 1) * seconds_per_frame, 3))}
            for c, s, e in decoded.chars]
