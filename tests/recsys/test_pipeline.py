"""The recommend pipeline on small synthetic interactions: training, round trips, cold start, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hub
from hub.errors import ConfigError, InvalidInputError
from hub_recsys.data import leave_one_out, read_interactions

SEQUENTIAL = {"max_len": 8, "hidden_size": 32, "num_layers": 1, "num_heads": 2, "dropout": 0.0}


def cyclic_rows(users: int = 40, items: int = 24, length: int = 10, seed: int = 0) -> list[tuple]:
    """Each user walks the item cycle from a random start (a strong sequential signal);
    ratings depend on the item (an explicit signal)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(users):
        start = int(rng.integers(items))
        for t in range(length):
            item = (start + t) % items
            rows.append((f"u{u}", f"i{item}", 1.0 + item % 5, 1_000 + t))
    return rows


@pytest.fixture(scope="module")
def split():
    return leave_one_out(read_interactions(cyclic_rows()))


def train(arch: str, split, **args):
    config = {"architecture": arch, **(SEQUENTIAL if arch in ("sasrec", "bert4rec") else {"factors": 16})}
    rec = hub.create("recommend", config=config, device="cpu", seed=0)
    train_, valid, _ = split
    rec.fine_tune(train_, valid, progress=False, **args)
    return rec


@pytest.fixture(scope="module")
def sasrec(split):
    return train("sasrec", split, epochs=15, learning_rate=1e-2, batch_size=16)


def test_sasrec_learns_the_sequence_and_round_trips(sasrec, split, tmp_path):
    rec = sasrec
    result = rec.evaluate(split[2])
    assert result["hr@10"] > 0.9 and "full ranking" in result["protocol"]  # random: ~10/14
    sampled = rec.evaluate(split[2], protocol="sampled", negatives=10)
    assert sampled["hr@10"] >= result["hr@10"] and "10 sampled" in sampled["protocol"]
    # u0's last training item is followed by the next item of the cycle
    top = rec("u0", k=1)[0]["item"]
    history = rec.user_history(rec.users.get("u0"))
    assert top == f"i{(int(rec.items.ids[history[-1]][1:]) + 1) % 24}"
    folder = rec.save(tmp_path / "sasrec")
    again = hub.load("recommend", model=str(folder), device="cpu")
    assert again(["u0", "u5"], k=5) == rec(["u0", "u5"], k=5)
    assert again.evaluate(split[2]) == result


@pytest.mark.parametrize("arch", ["mf", "bpr", "ncf", "bert4rec"])
def test_every_architecture_trains_saves_and_reloads(arch, split, tmp_path):
    rec = train(arch, split, epochs=3)
    folder = rec.save(tmp_path / arch)
    again = hub.load("recommend", model=str(folder), device="cpu")
    assert again.architecture == arch
    assert again(["u1", "u2"], k=4) == rec(["u1", "u2"], k=4)
    assert again.similar_items("i3", k=3) == rec.similar_items("i3", k=3)
    for name, a, b in zip(("model",), (again.model.state_dict(),), (rec.model.state_dict(),)):
        assert all(torch.equal(a[key], b[key]) for key in b), name


def test_mf_predicts_ratings_and_reports_rmse(split):
    rec = train("mf", split, epochs=30, learning_rate=2e-2, batch_size=32)
    result = rec.evaluate(split[2])
    # ratings are 1 + item % 5: a model that learnt item biases beats predicting the global mean
    ratings = split[2].ratings
    assert result["rmse"] < 0.6 * float(np.sqrt(((ratings - split[0].ratings.mean()) ** 2).mean()))
    assert 1.0 <= rec.predict_rating("u0", "i4") <= 5.0


def test_exclude_seen_and_batches(split):
    rec = train("bpr", split, epochs=3)
    seen = {rec.items.ids[i] for i in rec.user_history(rec.users.get("u3"))}
    recommended = {r["item"] for r in rec("u3", k=10)}
    assert not recommended & seen
    with_seen = rec("u3", k=24, exclude_seen=False)
    assert len(with_seen) == 24 and seen <= {r["item"] for r in with_seen}
    batch = rec(["u3", "u4", "nobody"], k=5)
    alone = rec("u3", k=5)
    assert len(batch) == 3 and [r["item"] for r in batch[0]] == [r["item"] for r in alone]
    assert [r["score"] for r in batch[0]] == pytest.approx([r["score"] for r in alone], abs=1e-5)
    scores = [r["score"] for r in batch[1]]
    assert scores == sorted(scores, reverse=True)


def test_cold_start_policies(split, sasrec):
    rec = train("bpr", split, epochs=3)
    cold = rec("stranger", k=3)
    assert cold.metadata == {"user": "stranger", "known_user": False, "policy": "popularity", "ignored_items": []}
    counts = {rec.items.ids[i]: float(c) for i, c in enumerate(rec.popularity)}
    assert [r["score"] for r in cold] == sorted(counts.values(), reverse=True)[:3]
    assert all(counts[r["item"]] == r["score"] for r in cold)
    warm = rec("stranger", history=["i5", "i6"], k=3)
    assert warm.metadata["policy"] == "history" and not {"i5", "i6"} & {r["item"] for r in warm}
    nxt = sasrec("stranger", history=["i5", "i6", "i7"], k=1)
    assert nxt.metadata["policy"] == "history" and nxt[0]["item"] == "i8"


def test_a_stream_of_users_reads_one_history_per_user_in_step(sasrec):
    """issue 13: a generator of users with history= (a generator too) streams batch by batch, each
    user with its own history, and equals the list call; lengths that differ are a clear error."""
    users = ["stranger", "u0", "other", "u3", "new"]
    histories = [["i5", "i6"], None, ["i1"], ["i9", "i10", "i11"], []]
    expected = sasrec(users, history=histories, k=3, batch_size=2)
    streamed = sasrec((u for u in users), history=(h for h in histories), k=3, batch_size=2)
    assert not isinstance(streamed, list)  # a generator: nothing read before it is iterated
    got = list(streamed)
    assert got == expected and [r.metadata for r in got] == [r.metadata for r in expected]
    assert got[0].metadata["policy"] == "history" and got[1].metadata["policy"] == "personal"
    with pytest.raises(InvalidInputError, match=r"history= ran out after 4 values"):
        list(sasrec(iter(users), history=iter(histories[:4]), batch_size=2))
    with pytest.raises(InvalidInputError, match=r"history= has more values than the 5 inputs"):
        list(sasrec(iter(users), history=iter([*histories, ["i1"]]), batch_size=2))
    with pytest.raises(InvalidInputError, match=r"history= must be an iterable with one value per input"):
        sasrec(iter(users), history=5)


def test_unknown_history_items_are_ignored_or_refused(split, caplog):
    rec = train("bpr", split, epochs=2)
    result = rec("stranger", history=["i5", "no-such-item"], k=2)
    assert result.metadata["ignored_items"] == ["no-such-item"] and "does not know" in caplog.text
    with pytest.raises(InvalidInputError, match="does not know: \\['no-such-item'\\]"):
        rec("stranger", history=["no-such-item"], unknown_items="error")
    only_unknown = rec("stranger", history=["no-such-item"], k=2)
    assert only_unknown.metadata["policy"] == "popularity"


def test_bad_calls_raise_clear_errors(split):
    rec = train("bpr", split, epochs=1)
    assert rec([]) == []  # issue 13: as transformers' pipeline (was an "empty list of users" error)
    with pytest.raises(InvalidInputError, match="k must be a positive integer"):
        rec("u1", k=0)
    with pytest.raises(InvalidInputError, match="not among the model's"):
        rec.similar_items("no-such-item")
    with pytest.raises(InvalidInputError, match="one item list per user"):
        rec(["u1", "u2"], history=["i1"])
    with pytest.raises(InvalidInputError, match="not a user id"):
        rec({"id": 1})
    with pytest.raises(ConfigError, match="Unknown recommender architecture"):
        hub.create("recommend", config={"architecture": "svd++"})
    with pytest.raises(InvalidInputError, match="not been trained"):
        hub.create("recommend", config={"architecture": "bpr"}, device="cpu")("u1")
    with pytest.raises(InvalidInputError, match="no rating column"):
        hub.create("recommend", config={"architecture": "mf"}, device="cpu").fine_tune([("u", "i")])
    with pytest.raises(InvalidInputError, match="new users"):
        rec.fine_tune([("brand-new-user", "i1")], progress=False)


def test_bert4rec_pretrain_is_the_cloze_task(split):
    rec = hub.create("recommend", config={"architecture": "bert4rec", **SEQUENTIAL}, device="cpu", seed=0)
    result = rec.pretrain(split[0], epochs=3, progress=False)
    assert result.steps > 0 and rec.model is not None
    with pytest.raises(InvalidInputError, match="sequential models' objective"):
        hub.create("recommend", config={"architecture": "mf"}, device="cpu").pretrain(split[0])


@pytest.mark.parametrize("arch", ["sasrec", "bert4rec"])
def test_sampled_softmax_scores_are_the_full_scores(arch):
    from hub_recsys.models.recommenders import ARCHITECTURES

    torch.manual_seed(0)
    model = ARCHITECTURES[arch]({"num_items": 30, **SEQUENTIAL, "train_negatives": 7}).eval()
    hidden = torch.randn(5, SEQUENTIAL["hidden_size"])
    targets = torch.tensor([0, 3, 29, 3, 8])
    torch.manual_seed(1)
    out = model._sampled_softmax(hidden, targets, 7)
    torch.manual_seed(1)
    sampled = torch.randint(30, (7,))
    full = model.item_logits(hidden)  # (5, 30)
    torch.testing.assert_close(out["logits"][:, 0], full[torch.arange(5), targets])
    expected = full[:, sampled].masked_fill(sampled[None] == targets[:, None], float("-inf"))
    torch.testing.assert_close(out["logits"][:, 1:], expected)


def test_sasrec_trains_with_sampled_negatives(split):
    rec = hub.create("recommend", config={"architecture": "sasrec", **SEQUENTIAL, "train_negatives": 8},
                     device="cpu", seed=0)
    rec.fine_tune(split[0], split[1], epochs=15, learning_rate=1e-2, batch_size=16, progress=False)
    assert rec.evaluate(split[2])["hr@10"] > 0.9


@pytest.mark.slow
def test_training_under_torchrun_ddp(tmp_path):
    """Two CPU processes (gloo) through the common Trainer end with the same, trained weights."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).with_name("ddp_run.py")
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                    str(script), str(tmp_path)], check=True, timeout=240, cwd=Path(__file__).parents[2],
                   capture_output=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["checksum"] == ranks[1]["checksum"]
    assert ranks[0]["hr@10"] > 0.9
