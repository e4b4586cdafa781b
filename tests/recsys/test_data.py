"""Interaction readers, id maps, duplicate policies, splits and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from hub.errors import DataError
from hub_recsys.data import leave_one_out, random_split, read_interactions


def test_csv_with_string_ids_and_header_spellings(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("userId,movieId,rating,timestamp\nalice,m1,4.5,10\nbob,m2,3,11\nalice,m2,2,12\n")
    data = read_interactions(path)
    assert data.user_ids.ids == ["alice", "bob"] and data.item_ids.ids == ["m1", "m2"]
    assert data.users.tolist() == [0, 1, 0] and data.items.tolist() == [0, 1, 1]
    assert data.ratings.tolist() == [4.5, 3.0, 2.0] and data.timestamps.tolist() == [10, 11, 12]


def test_movielens_formats(tmp_path):
    dat = tmp_path / "ratings.dat"
    dat.write_text("1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n")
    data = read_interactions(dat)
    assert len(data) == 3 and data.item_ids.ids == ["1193", "661"] and data.ratings.tolist() == [5, 3, 4]
    udata = tmp_path / "u.data"
    udata.write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    data = read_interactions(udata)
    assert data.user_ids.ids == ["196", "186"] and data.timestamps.tolist() == [881250949, 891717742]


def test_parquet_round_trip(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"user_id": [1, 2, 1], "item_id": ["a", "b", "b"], "rating": [1.0, 2.0, 3.0]}), path)
    data = read_interactions(path)
    assert data.user_ids.ids == ["1", "2"] and data.item_ids.ids == ["a", "b"] and data.timestamps is None


def test_lists_tuples_and_dicts_agree():
    tuples = read_interactions([("u", "i", 5, 1), ("v", "i", 3, 2)])
    dicts = read_interactions([{"user": "u", "item": "i", "rating": 5, "timestamp": 1},
                               {"user": "v", "item": "i", "rating": 3, "timestamp": 2}])
    columns = read_interactions({"user": ["u", "v"], "item": ["i", "i"], "rating": [5, 3], "timestamp": [1, 2]})
    for data in (dicts, columns):
        assert data.users.tolist() == tuples.users.tolist() and data.ratings.tolist() == tuples.ratings.tolist()


@pytest.mark.parametrize("policy, rating", [("last", 1.0), ("first", 5.0)])
def test_duplicates_keep_latest_or_earliest(policy, rating):
    data = read_interactions([("u", "i", 5, 1), ("u", "j", 4, 2), ("u", "i", 1, 3)], duplicates=policy)
    assert len(data) == 2
    assert data.ratings[data.items == 0].tolist() == [rating]


def test_duplicates_keep_and_error():
    rows = [("u", "i", 5, 1), ("u", "i", 1, 3)]
    assert len(read_interactions(rows, duplicates="keep")) == 2
    with pytest.raises(DataError, match="user 'u' and item 'i' appear in 2 rows"):
        read_interactions(rows, duplicates="error")


def test_non_numeric_rating_names_the_row(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("user,item,rating\na,x,4\nb,y,five\n")
    with pytest.raises(DataError, match=r"data row 2: rating 'five' is not a number"):
        read_interactions(path)


@pytest.mark.parametrize("content, message", [("", "is empty"), ("user,item,rating\n", "holds no interactions"),
                                              ("user,rating\nu,3\n", "no item column")])
def test_empty_or_malformed_files(tmp_path, content, message):
    path = tmp_path / "r.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        read_interactions(path)


def test_missing_file_and_empty_list(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_interactions(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="holds no interactions"):
        read_interactions([])


def test_leave_one_out_is_chronological():
    rows = [("u", "a", 1, 30), ("u", "b", 1, 10), ("u", "c", 1, 20), ("u", "d", 1, 40),
            ("v", "a", 1, 1), ("v", "b", 1, 2)]  # v has too few rows to hold any out
    train, valid, test = leave_one_out(read_interactions(rows))
    ids = lambda d: [(d.user_ids.ids[u], d.item_ids.ids[i]) for u, i in zip(d.users, d.items)]
    assert ids(test) == [("u", "d")] and ids(valid) == [("u", "a")]
    assert sorted(ids(train)) == [("u", "b"), ("u", "c"), ("v", "a"), ("v", "b")]
    assert [train.item_ids.ids[i] for i in train.sequences()[0]] == ["b", "c"]


def test_random_split_is_fixed_and_disjoint():
    data = read_interactions([(f"u{n % 7}", f"i{n}", 3.0) for n in range(100)])
    a1, b1 = random_split(data, test_fraction=0.2, seed=0)
    a2, b2 = random_split(data, test_fraction=0.2, seed=0)
    assert len(b1) == 20 and np.array_equal(b1.items, b2.items) and np.array_equal(a1.items, a2.items)
    assert not set(a1.items.tolist()) & set(b1.items.tolist())
