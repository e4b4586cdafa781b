"""CTC decoding (greedy and prefix beam search), timestamps and error rates."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from hub.errors import InvalidInputError
from hub_speech.ctc_decode import CTCVocab, char_timestamps, word_timestamps
from hub_speech.metrics import edit_distance, error_rate

VOCAB = CTCVocab(["<pad>", "<unk>", "|", "a", "b", "c"])


def _frames(*rows: dict[int, float]) -> torch.Tensor:
    """Log-probabilities from per-frame {token: probability} (the rest spread over the others)."""
    out = torch.full((len(rows), len(VOCAB)), 0.0)
    for t, row in enumerate(rows):
        rest = (1 - sum(row.values())) / (len(VOCAB) - len(row))
        for token in range(len(VOCAB)):
            out[t, token] = row.get(token, rest)
    return out.clamp(min=1e-9).log()


def test_greedy_merges_repeats_and_drops_blanks():
    # a a _ a b | b _ -> "aa b"; a blank between equal letters keeps both
    lp = _frames({3: .9}, {3: .9}, {0: .9}, {3: .9}, {4: .9}, {2: .9}, {4: .9}, {0: .9})
    decoded = VOCAB.greedy(lp)
    assert decoded.text == "aab b"
    assert [c for c, _, _ in decoded.chars] == ["a", "a", "b", "|", "b"]
    assert decoded.chars[0] == ("a", 0, 1)  # the first "a" runs over frames 0-1
    words = word_timestamps(decoded, "|", 0.04)
    assert words == [{"text": "aab", "timestamp": (0.0, 0.2)}, {"text": "b", "timestamp": (0.24, 0.28)}]
    assert char_timestamps(decoded, "|", 0.04)[3] == {"text": " ", "timestamp": (0.2, 0.24)}


def _labelling_probability(lp: torch.Tensor, labels: tuple[int, ...]) -> float:
    """Sum over every frame path that collapses to ``labels`` (brute force)."""
    total = 0.0
    for path in itertools.product(range(len(VOCAB)), repeat=lp.shape[0]):
        collapsed = [k for k, _ in itertools.groupby(path) if k != 0]
        if tuple(collapsed) == labels:
            total += math.exp(sum(lp[t, k].item() for t, k in enumerate(path)))
    return total


def test_beam_search_finds_the_most_probable_labelling_where_greedy_does_not():
    # greedy: blank, blank -> "" ; but "a" wins once its alignments are summed
    lp = _frames({0: .4, 3: .35, 4: .25}, {0: .4, 3: .35, 4: .25})
    assert VOCAB.greedy(lp).text == ""
    best = VOCAB.beam_search(lp, beam_width=8, prune=-50)
    assert best.text == "a"
    assert _labelling_probability(lp, (3,)) > _labelling_probability(lp, ())


def test_beam_search_equals_greedy_on_peaked_outputs():
    torch.manual_seed(0)
    logits = torch.randn(30, len(VOCAB)) * 8
    lp = logits.log_softmax(-1)
    assert VOCAB.beam_search(lp, beam_width=4).text == VOCAB.greedy(lp).text
    with pytest.raises(InvalidInputError, match="beam_width"):
        VOCAB.beam_search(lp, beam_width=0)


def test_encode_round_trips_and_refuses_unknown_characters():
    assert VOCAB.encode("Ab  c") == [3, 4, 2, 5]
    assert CTCVocab(["<pad>", "|", "a"]).normalise("  A  a ") == "a a"
    with pytest.raises(InvalidInputError, match="not in the model's vocabulary"):
        CTCVocab(["<pad>", "|", "a"]).encode("ab")
    assert VOCAB.encode("d") == [1]  # <unk> when the vocabulary has one


def test_error_rates():
    assert edit_distance("kitten", "sitting") == 3
    assert error_rate(["go left now", "yes"], ["go right now", "yes"]) == pytest.approx(1 / 4)
    assert error_rate(["ab"], ["abc"], words=False) == pytest.approx(0.5)
    assert error_rate(["a b"], [""]) == 1.0
