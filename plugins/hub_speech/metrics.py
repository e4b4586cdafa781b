"""Word and character error rates (Levenshtein distance over the reference length)."""

from __future__ import annotations

from collections.abc import Sequence


def edit_distance(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Substitutions + deletions + insertions turning ``reference`` into ``hypothesis``."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, start=1):
        current = [i]
        for j, hyp in enumerate(hypothesis, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1]


def error_rate(references: Sequence[str], hypotheses: Sequence[str], *, words: bool = True) -> float:
    """Corpus WER (``words=True``) or CER: total edits / total reference units."""
    edits = total = 0
    for ref, hyp in zip(references, hypotheses, strict=True):
        r, h = (ref.split(), hyp.split()) if words else (" ".join(ref.split()), " ".join(hyp.split()))
        edits += edit_distance(r, h)
        total += len(r)
    return edits / max(total, 1)
