"""Plain result types: dicts (JSON-ready, equal to transformers' results) that also
carry per-input metadata such as whether an input was truncated."""

from __future__ import annotations

from typing import Any


class Prediction(dict):
    """A ``dict`` result with a ``metadata`` attribute (not part of the dict itself).

    >>> p = Prediction(label="great", score=0.9, metadata={"truncated": False})
    >>> p == {"label": "great", "score": 0.9}, p.metadata["truncated"]
    (True, False)
    """

    def __init__(self, *args: Any, metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.metadata: dict[str, Any] = dict(metadata or {})


def ranked_labels(probs: Any, labels: list[str], top_k: int | None,
                  metadata: dict[str, Any] | None = None) -> list[Prediction]:
    """The ``top_k`` (None: all) labels of a 1-D probability tensor, best first, as
    ``{"label", "score"}`` predictions; a clear error for a bad ``top_k``."""
    from hub.errors import InvalidInputError

    k = len(labels) if top_k is None else top_k
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InvalidInputError(f"top_k must be a positive integer or None, got {top_k!r}.")
    scores, indices = probs.topk(min(k, len(labels)))
    return [Prediction(label=labels[i], score=s, metadata=metadata)
            for s, i in zip(scores.tolist(), indices.tolist())]


def weighted_mean_probabilities(logits: list[Any], weights: list[float]) -> Any:
    """One probability vector for an input seen in pieces (text windows, audio chunks):
    the mean of the pieces' softmaxes, weighted by their lengths."""
    import torch

    probs = torch.stack(logits).softmax(-1)
    if len(logits) == 1:
        return probs[0]
    w = torch.tensor(weights, dtype=probs.dtype)
    return (probs * w[:, None]).sum(0) / w.sum()
