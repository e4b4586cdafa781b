"""The one evaluation module every recommender figure comes from (Hub's models, baselines, peers).

Ranking (held-out item per user, e.g. chronological leave-one-out):

* ``protocol="full"``: the target is ranked against every item, minus the user's seen
  items (the target itself is never removed).
* ``protocol="sampled"``: the target is ranked against ``negatives`` (default 100) items
  drawn uniformly, without replacement, from the items the user has not seen; the draw
  depends only on ``seed`` and the data, so every model meets the same negatives.

Ties count against the target (rank = items scored higher + other items scored equal), so
a model that scores everything alike gets no credit. HR@K = share of targets ranked in the
top K; NDCG@K = mean of 1/log2(rank + 2) over those; MRR = mean of 1/(rank + 1) over all.
Every report names its protocol. Rating prediction: RMSE and MAE.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

PROTOCOLS = ("full", "sampled")


def ranks_from_scores(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B, V) scores, (B,) target columns -> (B,) 0-based ranks, ties counted against the target."""
    target = scores.gather(1, targets[:, None])  # (B, 1)
    higher = (scores > target).sum(1)
    equal = (scores == target).sum(1) - 1
    return higher + equal


def summarize(ranks: torch.Tensor | np.ndarray, k: int) -> dict[str, float]:
    ranks = torch.as_tensor(ranks, dtype=torch.float64)
    if ranks.numel() == 0:
        return {f"hr@{k}": float("nan"), f"ndcg@{k}": float("nan"), "mrr": float("nan")}
    hit = ranks < k
    return {f"hr@{k}": hit.double().mean().item(),
            f"ndcg@{k}": torch.where(hit, 1.0 / torch.log2(ranks + 2.0), torch.zeros_like(ranks)).mean().item(),
            "mrr": (1.0 / (ranks + 1.0)).mean().item()}


def metrics_from_logits(logits: torch.Tensor, labels: torch.Tensor, k: int = 10) -> dict[str, float]:
    """``compute_metrics`` for the Trainer: full-ranking metrics of (B, V) logits whose seen
    items were already masked to -inf by the model."""
    return summarize(ranks_from_scores(logits.float(), labels.long()), k)


def rating_metrics(predictions: torch.Tensor | np.ndarray, ratings: torch.Tensor | np.ndarray) -> dict[str, float]:
    p = torch.as_tensor(predictions, dtype=torch.float64).reshape(-1)
    r = torch.as_tensor(ratings, dtype=torch.float64).reshape(-1)
    err = p - r
    return {"rmse": err.pow(2).mean().sqrt().item(), "mae": err.abs().mean().item(), "n": int(r.numel())}


def sample_negatives(seen: Sequence[np.ndarray], targets: np.ndarray, num_items: int, negatives: int,
                     seed: int) -> np.ndarray:
    """(R, negatives) item indices per row, uniform over items outside seen and the target."""
    rng = np.random.default_rng(seed)
    out = np.empty((len(targets), negatives), dtype=np.int64)
    for row, target in enumerate(targets):
        banned = np.union1d(seen[row], [target])
        allowed = num_items - len(banned)
        if allowed < negatives:
            raise ValueError(f"row {row}: only {allowed} unseen items, fewer than negatives={negatives}.")
        # draw among the allowed items by position: j-th allowed item = j + (# banned <= it)
        picks = rng.choice(allowed, size=negatives, replace=False)
        out[row] = picks + np.searchsorted(banned - np.arange(len(banned)), picks, side="right")
    return out


def evaluate_ranking(score: Callable[[np.ndarray], torch.Tensor], targets: np.ndarray,
                     seen: Sequence[np.ndarray], num_items: int, *, k: int = 10, protocol: str = "full",
                     negatives: int = 100, seed: int = 0, batch_size: int = 256) -> dict[str, Any]:
    """Rank each row's target item. ``score(rows)`` returns (len(rows), num_items) scores for
    the evaluation rows ``rows``; ``seen[r]`` are the items row r must not be credited for
    (its training history)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}.")
    targets = np.asarray(targets, dtype=np.int64)
    sampled = sample_negatives(seen, targets, num_items, negatives, seed) if protocol == "sampled" else None
    ranks = []
    for start in range(0, len(targets), batch_size):
        rows = np.arange(start, min(start + batch_size, len(targets)))
        scores = torch.as_tensor(score(rows)).float().cpu()
        target = torch.as_tensor(targets[rows])
        if sampled is None:
            mask = torch.zeros_like(scores, dtype=torch.bool)
            for j, r in enumerate(rows):
                mask[j, torch.as_tensor(seen[r], dtype=torch.long)] = True
            mask[torch.arange(len(rows)), target] = False
            scores = scores.masked_fill(mask, float("-inf"))
            ranks.append(ranks_from_scores(scores, target))
        else:
            candidates = torch.cat([target[:, None], torch.as_tensor(sampled[rows])], 1)  # target first
            ranks.append(ranks_from_scores(scores.gather(1, candidates), torch.zeros(len(rows), dtype=torch.long)))
    result: dict[str, Any] = summarize(torch.cat(ranks) if ranks else torch.empty(0), k)
    result["protocol"] = describe(protocol, num_items, negatives)
    result["users"] = len(targets)
    return result


def describe(protocol: str, num_items: int, negatives: int = 100) -> str:
    if protocol == "full":
        return f"full ranking over all {num_items:,} items minus each user's seen items"
    return f"target among {negatives} sampled unseen negatives (seeded)"


def ndcg_at(rank: int, k: int) -> float:
    """NDCG@k of one target at 0-based ``rank`` (for documentation and tests)."""
    return 1.0 / math.log2(rank + 2) if rank < k else 0.0
