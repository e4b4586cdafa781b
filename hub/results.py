"""One result type for every pipeline: a ``dict`` (:class:`Result`) or a ``list``
(:class:`ResultList`) that also carries per-input ``.metadata`` (was the input truncated,
cut into windows, which policy answered...). Both compare equal to the plain dict or list,
so results stay JSON-ready and equal to transformers' results; the metadata is not part of
the value. One input gives one such result; a list of inputs gives a plain list of them.

The per-task shapes and metadata keys are in the README table "What a pipeline returns".
"""

from __future__ import annotations

from typing import Any

__all__ = ["EntityList", "Prediction", "Recommendations", "Result", "ResultList", "ranked_labels",
           "weighted_mean_probabilities"]


class Result(dict):
    """A ``dict`` result with a ``metadata`` attribute (not part of the dict itself).

    >>> p = Result(label="great", score=0.9, metadata={"truncated": False})
    >>> p == {"label": "great", "score": 0.9}, p.metadata["truncated"]
    (True, False)
    """

    def __init__(self, *args: Any, metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.metadata: dict[str, Any] = dict(metadata or {})


class ResultList(list):
    """A ``list`` result (ranked labels, entities, recommendations, an embedding's floats)
    with a ``metadata`` attribute (not part of the list itself).

    >>> r = ResultList([0.5, 0.25], metadata={"windows": 1})
    >>> r == [0.5, 0.25], r.metadata["windows"]
    (True, 1)
    """

    def __init__(self, items: Any = (), *, metadata: dict[str, Any] | None = None) -> None:
        super().__init__(items)
        self.metadata: dict[str, Any] = dict(metadata or {})


#: the names results had before they were one type (kept: plugins and user code import them)
Prediction = Result
EntityList = ResultList
Recommendations = ResultList


def ranked_labels(probs: Any, labels: list[str], top_k: int | None,
                  metadata: dict[str, Any] | None = None) -> ResultList:
    """The ``top_k`` (None: all) labels of a 1-D probability tensor, best first, as a
    :class:`ResultList` of ``{"label", "score"}`` results (each, and the list, carrying
    ``metadata``); a clear error for a bad ``top_k``."""
    from hub.errors import InvalidInputError

    k = len(labels) if top_k is None else top_k
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InvalidInputError(f"top_k must be a positive integer or None, got {top_k!r}.")
    scores, indices = probs.topk(min(k, len(labels)))
    return ResultList([Result(label=labels[i], score=s, metadata=metadata)
                       for s, i in zip(scores.tolist(), indices.tolist())], metadata=metadata)


#: how a classifier's logits become scores (transformers' ``function_to_apply``)
SCORE_FUNCTIONS = ("softmax", "sigmoid", "none")


def score_function(problem_type: str | None, num_labels: int) -> str:
    """The scores a checkpoint means, as transformers' text-classification pipeline decides
    them: ``"none"`` for regression, ``"sigmoid"`` for multi-label or single-logit models,
    else ``"softmax"``."""
    if problem_type == "regression":
        return "none"
    if problem_type == "multi_label_classification" or num_labels == 1:
        return "sigmoid"
    return "softmax"


def apply_score_function(logits: Any, function: str) -> Any:
    """``logits`` (..., L) as scores: softmax over the labels, sigmoid per label, or as they are."""
    if function == "softmax":
        return logits.softmax(-1)
    if function == "sigmoid":
        return logits.sigmoid()
    return logits


def weighted_mean_probabilities(logits: list[Any], weights: list[float], function: str = "softmax") -> Any:
    """One score vector for an input seen in pieces (text windows, audio chunks): the mean
    of the pieces' scores (:func:`apply_score_function`), weighted by their lengths."""
    import torch

    probs = apply_score_function(torch.stack(logits), function)
    if len(logits) == 1:
        return probs[0]
    w = torch.tensor(weights, dtype=probs.dtype)
    return (probs * w[:, None]).sum(0) / w.sum()
