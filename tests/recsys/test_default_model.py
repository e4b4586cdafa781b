"""The shipped default (``movielens-sasrec``) loads offline and behaves; its figures are
recomputed on the real data in test_movielens.py."""

from __future__ import annotations

from pathlib import Path

import hub
from hub.registry import get_registry


def test_default_recommends_offline():
    rec = hub.load("recommend", device="cpu")
    assert rec.architecture == "sasrec" and rec.metadata["model_name"] == "movielens-sasrec"
    seen = {rec.items.ids[i] for i in rec.user_history(rec.users.get("1"))}
    top = rec("1", k=10)
    assert len(top) == 10 and not {r["item"] for r in top} & seen and top.metadata["policy"] == "personal"
    assert len(rec.similar_items("260", k=5)) == 5  # Star Wars (1977)
    cold = rec("someone-new", history=["260", "1196"], k=3)
    assert cold.metadata["policy"] == "history" and len(cold) == 3


def test_default_is_small_and_its_figures_name_the_protocol():
    entry = get_registry().model("movielens-sasrec")
    assert hub.load("recommend", device="cpu").metadata["source"] == "package:hub_recsys/weights/movielens-sasrec"
    assert entry.metrics["hr@10_full"] > entry.metrics["popularity_hr@10_full"]
    assert "leave-one-out" in entry.metrics["protocol"]
    import hub_recsys

    weights = Path(hub_recsys.__file__).parent / "weights" / "movielens-sasrec"
    assert sum(f.stat().st_size for f in weights.iterdir()) < 5e6
