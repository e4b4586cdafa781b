"""Issue 12 items 12, 15 and 18 for the recommender: ``rec(["1", "2"], batch_size=-1)``
returned ``[]`` and ``batch_size=0`` meant the default; an unknown keyword was a raw
``TypeError``; ``similar_items`` scored every query at once and had no ``top_k``."""

from __future__ import annotations

import pytest

import hub
from hub.errors import InvalidInputError


@pytest.fixture(scope="module")
def rec():
    return hub.load("recommend", device="cpu")


def test_the_reported_negative_batch_size(rec):
    with pytest.raises(InvalidInputError, match="batch_size must be an integer >= 1, got -1"):
        rec(["1", "2"], batch_size=-1)


@pytest.mark.parametrize("size", [0, -1, 1.5, "4"])
def test_non_positive_batch_sizes_everywhere(rec, size, tmp_path):
    with pytest.raises(InvalidInputError, match="batch_size must be an integer >= 1"):
        rec("1", batch_size=size)
    with pytest.raises(InvalidInputError, match="batch_size must be an integer >= 1"):
        rec.similar_items(rec.items.ids[0], batch_size=size)
    test = tmp_path / "test.csv"
    test.write_text(f"user,item\n1,{rec.items.ids[0]}\n")
    with pytest.raises(InvalidInputError, match="batch_size must be an integer >= 1"):
        rec.evaluate(str(test), batch_size=size)


def _same(a, b) -> bool:
    return all([x["item"] for x in r] == [y["item"] for y in q]
               and all(abs(x["score"] - y["score"]) < 1e-4 for x, y in zip(r, q)) for r, q in zip(a, b))


def test_batches_give_the_same_results(rec):
    users = [str(u) for u in rec.users.ids[:7]]
    assert _same(rec(users, batch_size=2), rec(users))
    items = rec.items.ids[:5]
    assert _same(rec.similar_items(items, k=3, batch_size=2), rec.similar_items(items, k=3))
    assert rec.similar_items(items, top_k=3) == rec.similar_items(items, k=3)


def test_unknown_keywords_refused_with_the_close_match(rec):
    with pytest.raises(InvalidInputError, match="unknown keyword 'topk' for recommend; did you mean 'top_k'"):
        rec("1", topk=3)
    with pytest.raises(InvalidInputError, match="did you mean 'exclude_seen'"):
        rec("1", exclude_sen=False)


@pytest.mark.parametrize("options, match", [
    ({"top_k": 0}, "top_k must be an integer >= 1"),
    ({"top_k": "3"}, "top_k must be an integer >= 1"),
    ({"k": 2.5}, "k must be a positive integer"),
    ({"exclude_seen": "no"}, "exclude_seen must be True or False"),
    ({"progress": 1}, "progress must be True or False"),
])
def test_bad_values(rec, options, match):
    with pytest.raises(InvalidInputError, match=match):
        rec("1", **options)


def test_similar_items_checks(rec):
    with pytest.raises(InvalidInputError, match="top_k must be an integer >= 1"):
        rec.similar_items(rec.items.ids[0], top_k=0)
    with pytest.raises(InvalidInputError, match="empty list"):
        rec.similar_items([])
