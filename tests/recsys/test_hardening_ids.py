"""Hostile ids, timestamps and model folders for the recommender (issue 12, items 13, 16, 18)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import hub
from hub.errors import DataError, InvalidInputError, ModelLoadError
from hub_recsys.data import IdMap, normalize_id, read_interactions


def bpr_rows() -> list[tuple]:
    """Users 1..12 (as the strings "1".."12"), one padded user, each with a few items."""
    rows = []
    for u in range(1, 13):
        for t in range(4):
            rows.append((str(u), f"i{(u + t) % 9}", 1_000 + t))
    rows += [("  padded  ", "i1", 2_000), ("  padded  ", "i2", 2_001), ("  padded  ", "i3", 2_002)]
    return rows


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    rec = hub.create("recommend", config={"architecture": "bpr", "factors": 8}, device="cpu", seed=0)
    rec.fine_tune(bpr_rows(), epochs=2, batch_size=16, progress=False)
    folder = rec.save(tmp_path_factory.mktemp("rec") / "bpr")
    return rec, folder


# -- item 13: one id normalisation ----------------------------------------------------------
@pytest.mark.parametrize("value, key", [
    ("1", "1"), (1, "1"), (1.0, "1"), (np.int64(1), "1"), (np.float32(1.0), "1"), ("  1 ", "1"),
    ("007", "007"), ("1.0", "1.0"), (1.5, "1.5"), ("  padded  ", "padded"), (-3, "-3"),
])
def test_normalize_id_rule(value, key):
    assert normalize_id(value) == key


@pytest.mark.parametrize("value", [True, False, np.bool_(True), None, "", "   ", math.nan, math.inf, [1], {"a": 1},
                                   b"1"])
def test_normalize_id_refuses(value):
    with pytest.raises(InvalidInputError):
        normalize_id(value)


def test_int_float_and_string_ids_are_one_user_before_and_after_reload(saved):
    rec, folder = saved
    again = hub.load("recommend", model=str(folder), device="cpu")
    for pipe in (rec, again):
        reference = pipe("1", k=3)
        assert reference.metadata["policy"] == "personal"
        for spelling in (1, 1.0, np.int64(1), " 1 "):
            got = pipe(spelling, k=3)
            assert got.metadata["policy"] == "personal", spelling
            assert list(got) == list(reference)
        padded = pipe("  padded  ", k=3)
        assert padded.metadata["known_user"] and pipe("padded", k=3) == padded
    assert again.users.ids == rec.users.ids and "padded" in again.users.ids


def test_history_items_use_the_same_normalisation(saved):
    rec, _ = saved
    assert rec("new-user", history=[" i1 ", "i2"], k=3).metadata["policy"] == "history"
    with pytest.raises(InvalidInputError, match=r"history\[1\].*boolean"):
        rec("new-user", history=["i1", True])


@pytest.mark.parametrize("user", [True, False, None, "", "  ", math.nan, [1]])
def test_unusable_user_ids_are_refused(saved, user):
    rec, _ = saved
    with pytest.raises(InvalidInputError, match="not a user id"):
        rec(user) if not isinstance(user, list) else rec([user])


def test_training_ids_are_checked_per_row():
    with pytest.raises(DataError, match=r"the interactions list, row 1: user id True is a boolean"):
        read_interactions([("u1", "i1"), (True, "i2")])
    with pytest.raises(DataError, match=r"row 0: item id \{'x': 1\} is a dict"):
        read_interactions([("u1", {"x": 1})])
    data = read_interactions([(1, "i1"), (1.0, "i2"), ("1", "i3"), (" 1", "i4")])
    assert data.user_ids.ids == ["1"] and data.num_users == 1


def test_idmap_round_trip_of_old_style_ids():
    ids = IdMap(["a", " b ", 3])
    assert ids.ids == ["a", "b", "3"] and ids.get("b") == 1 and 3.0 in ids and ids.get("zz") is None


# -- item 16: timestamps --------------------------------------------------------------------
@pytest.mark.parametrize("stamp, message", [
    ("1e30", "out of range"), (1e30, "out of range"), (2**63, "out of range"), ("nan", "not a finite"),
    (math.inf, "not a finite"), ("-inf", "not a finite"), ("yesterday", "is not a number"), (True, "is not a number"),
])
def test_bad_timestamps_name_file_and_row(tmp_path, stamp, message):
    path = tmp_path / "ratings.csv"
    path.write_text(f"user,item,timestamp\nu1,i1,100\nu2,i2,{stamp}\n")
    if isinstance(stamp, str):
        with pytest.raises(DataError, match=rf"ratings.csv, data row 2: timestamp .*{message}"):
            read_interactions(path)
    with pytest.raises(DataError, match=rf"the interactions list, row 1: timestamp .*{message}"):
        read_interactions([("u1", "i1", 1.0, 100), ("u2", "i2", 1.0, stamp)])


def test_large_integer_timestamps_are_exact():
    nanoseconds = [1_700_000_000_000_000_001, 1_700_000_000_000_000_002]  # beyond float64's 2**53
    data = read_interactions({"user": ["u", "u"], "item": ["a", "b"], "timestamp": [str(t) for t in nanoseconds]})
    assert data.timestamps.tolist() == nanoseconds


def test_bom_and_non_utf8_interaction_files(tmp_path):
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufeffuser,item\nu1,i1\n".encode())
    assert read_interactions(bom).user_ids.ids == ["u1"]
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"user,item\nu1,i1\nJos\xe9,i2\n")
    with pytest.raises(DataError, match=r"latin.csv, line 3, column 4: byte 0xe9 is not UTF-8"):
        read_interactions(latin)


# -- item 18: broken ids.json / history.safetensors -----------------------------------------
def _copy(folder, tmp_path):
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(folder, target)
    return target


def _edit_ids(folder, change):
    ids = json.loads((folder / "ids.json").read_text())
    (folder / "ids.json").write_text(json.dumps(change(ids)))


@pytest.mark.parametrize("breakage, message", [
    (lambda f: (f / "ids.json").write_text("{not json"), "is not valid UTF-8 JSON"),
    (lambda f: (f / "ids.json").write_bytes(b'{"users": ["\xff"]}'), "is not valid UTF-8 JSON"),
    (lambda f: (f / "ids.json").write_text("[1, 2]"), "must be a JSON object"),
    (lambda f: _edit_ids(f, lambda ids: {"users": ids["users"]}), "must be a JSON object"),
    (lambda f: _edit_ids(f, lambda ids: {**ids, "items": ids["items"][:-1]}), r"names 8 items, but the model has 9"),
    (lambda f: _edit_ids(f, lambda ids: {**ids, "users": ids["users"] + ["extra"]}), "names 14 users, but the model has 13"),
    (lambda f: _edit_ids(f, lambda ids: {**ids, "users": [ids["users"][1]] + ids["users"][1:]}), "duplicate id"),
    (lambda f: _edit_ids(f, lambda ids: {**ids, "users": [None] + ids["users"][1:]}), r"users\[0\] is None"),
    (lambda f: _edit_ids(f, lambda ids: {**ids, "users": [True] + ids["users"][1:]}), r"users\[0\] is True"),
])
def test_broken_ids_json_is_a_model_load_error(saved, tmp_path, breakage, message):
    folder = _copy(saved[1], tmp_path)
    breakage(folder)
    with pytest.raises(ModelLoadError, match=rf"ids.json: .*{message}") as info:
        hub.load("recommend", model=str(folder), device="cpu")
    assert "pipe.save(dir)" in str(info.value)


def _edit_history(folder, change):
    history = load_file(folder / "history.safetensors")
    save_file(change(history), folder / "history.safetensors")


@pytest.mark.parametrize("breakage, message", [
    (lambda f: (f / "history.safetensors").write_bytes(b"\x00" * 40), "is not a readable safetensors file"),
    (lambda f: _edit_history(f, lambda h: {k: v for k, v in h.items() if k != "popularity"}), "lacks the tensor 'popularity'"),
    (lambda f: _edit_history(f, lambda h: {**h, "indptr": h["indptr"].int()}), r"'indptr' is int32"),
    (lambda f: _edit_history(f, lambda h: {**h, "indptr": h["indptr"][:-1].clone()}), r"'indptr' is int64 \(13,\)"),
    (lambda f: _edit_history(f, lambda h: {**h, "popularity": h["popularity"].bfloat16()}), "'popularity' is bfloat16"),
    (lambda f: _edit_history(f, lambda h: {**h, "items": h["items"][:-1].clone()}), "'indptr' is not a valid row index"),
    (lambda f: _edit_history(f, lambda h: {**h, "items": h["items"] + 100}), "outside 0..8"),
    (lambda f: _edit_history(f, lambda h: {**h, "popularity": torch.full_like(h["popularity"], float("nan"))}),
     "NaN or infinite"),
])
def test_broken_history_is_a_model_load_error(saved, tmp_path, breakage, message):
    folder = _copy(saved[1], tmp_path)
    breakage(folder)
    with pytest.raises(ModelLoadError, match=rf"history.safetensors: .*{message}"):
        hub.load("recommend", model=str(folder), device="cpu")
