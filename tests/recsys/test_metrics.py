"""The evaluation module: ranks, ties, exclusions and the sampled-negatives protocol by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hub_recsys.metrics import (
    evaluate_ranking,
    rating_metrics,
    sample_negatives,
    summarize,
)


def test_full_ranking_by_hand():
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.1, 0.5],   # target 2; item 0 seen -> rank 1
                           [0.1, 0.2, 0.3, 0.4, 0.5]])  # target 0 -> rank 4
    result = evaluate_ranking(lambda rows: scores[rows], np.array([2, 0]), [np.array([0]), np.array([])],
                              num_items=5, k=2)
    assert result["hr@2"] == 0.5
    assert result["ndcg@2"] == pytest.approx(0.5 / math.log2(3))
    assert result["mrr"] == pytest.approx((1 / 2 + 1 / 5) / 2)
    assert result["users"] == 2 and "full ranking" in result["protocol"]


def test_seen_target_is_never_excluded_and_ties_count_against_it():
    scores = torch.zeros(1, 4)
    result = evaluate_ranking(lambda rows: scores[rows], np.array([1]), [np.array([1, 2])], num_items=4, k=1)
    assert result["hr@1"] == 0.0  # target ties with the two unexcluded items: rank 2
    assert result["mrr"] == pytest.approx(1 / 3)


def test_sampled_negatives_avoid_seen_items_and_are_seeded():
    seen = [np.array([0, 1, 2, 3]), np.array([5])]
    targets = np.array([4, 6])
    a = sample_negatives(seen, targets, num_items=50, negatives=20, seed=3)
    b = sample_negatives(seen, targets, num_items=50, negatives=20, seed=3)
    assert np.array_equal(a, b)
    for row in range(2):
        assert len(set(a[row])) == 20 and not set(a[row]) & (set(seen[row]) | {targets[row]})
        assert a[row].max() < 50


def test_sampled_protocol_ranks_among_the_candidates():
    scores = torch.arange(10, dtype=torch.float32)[None]  # higher index, higher score
    result = evaluate_ranking(lambda rows: scores.expand(len(rows), -1), np.array([9]), [np.array([])],
                              num_items=10, k=1, protocol="sampled", negatives=5)
    assert result["hr@1"] == 1.0 and "5 sampled" in result["protocol"]
    with pytest.raises(ValueError, match="protocol"):
        evaluate_ranking(lambda rows: scores, np.array([9]), [np.array([])], num_items=10, protocol="loo")


def test_summaries_and_rating_metrics():
    assert summarize(torch.tensor([0, 3]), k=3) == {"hr@3": 0.5, "ndcg@3": 0.5, "mrr": pytest.approx(0.625)}
    result = rating_metrics(np.array([3.0, 4.0]), np.array([4.0, 4.0]))
    assert result["rmse"] == pytest.approx(math.sqrt(0.5)) and result["mae"] == 0.5


def test_item_knn_and_popularity_by_hand():
    from hub_recsys.data import read_interactions
    from hub_recsys.models.baselines import ItemKNN, popularity_scores

    data = read_interactions([("a", "x"), ("a", "y"), ("b", "x"), ("b", "y"), ("c", "x"), ("c", "z")])
    assert popularity_scores(data).tolist() == [3.0, 2.0, 1.0]
    knn = ItemKNN(data, neighbours=2)
    # cos(x, y) = 2 / sqrt(3 * 2), cos(x, z) = 1 / sqrt(3), cos(y, z) = 0
    assert knn.sim[0, 1].item() == pytest.approx(2 / math.sqrt(6)) and knn.sim[1, 2].item() == 0.0
    scores = knn.scores(torch.tensor([2]))[0]  # user c has x and z
    assert scores[1].item() == pytest.approx(2 / math.sqrt(6))
