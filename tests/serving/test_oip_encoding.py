"""How result shapes become Open Inference Protocol output tensors (hub.serving.routes_oip):
named after the fields, typed when every input's value is one scalar type and length, JSON text
per input otherwise."""

from __future__ import annotations

import json

from hub.results import Result, ResultList
from hub.serving.routes_oip import encode_outputs


def by_name(outputs):
    return {o["name"]: o for o in outputs}


def test_dicts_give_one_tensor_per_field():
    out = by_name(encode_outputs([Result(label="a", score=0.5), Result(label="b", score=0.25)]))
    assert out["label"] == {"name": "label", "datatype": "BYTES", "shape": [2], "data": ["a", "b"]}
    assert out["score"] == {"name": "score", "datatype": "FP32", "shape": [2], "data": [0.5, 0.25]}


def test_fp64_int64_and_bool():
    out = by_name(encode_outputs([{"x": 0.1, "n": 3, "ok": True}, {"x": 0.2, "n": -1, "ok": False}]))
    assert out["x"]["datatype"] == "FP64"  # 0.1 is not a float32 value
    assert out["n"] == {"name": "n", "datatype": "INT64", "shape": [2], "data": [3, -1]}
    assert out["ok"]["datatype"] == "BOOL"


def test_ranked_lists_give_n_by_k_and_ragged_ones_json():
    ranked = [ResultList([{"item": "i1", "score": 1.0}, {"item": "i2", "score": 0.5}]),
              ResultList([{"item": "i3", "score": 2.0}, {"item": "i4", "score": 1.5}])]
    out = by_name(encode_outputs(ranked))
    assert out["item"]["shape"] == [2, 2] and out["item"]["data"] == ["i1", "i2", "i3", "i4"]
    ragged = by_name(encode_outputs([ranked[0], ranked[1][:1]]))
    assert ragged["item"]["datatype"] == "BYTES" and ragged["item"]["parameters"] == {"content_type": "json"}
    assert [json.loads(v) for v in ragged["item"]["data"]] == [["i1", "i2"], ["i3"]]


def test_embeddings_and_other_shapes():
    (emb,) = encode_outputs([[0.5, 0.25], [1.0, 2.0]], "embedding")
    assert emb == {"name": "embedding", "datatype": "FP32", "shape": [2, 2], "data": [0.5, 0.25, 1.0, 2.0]}
    (mixed,) = encode_outputs([[[{"token": 1}], [{"token": 2}]], [[{"token": 3}]]])  # one list per [MASK]
    assert mixed["name"] == "result" and json.loads(mixed["data"][0]) == [[{"token": 1}], [{"token": 2}]]
    (none,) = encode_outputs([None, "x"])
    assert none["datatype"] == "BYTES" and [json.loads(v) for v in none["data"]] == [None, "x"]
    assert encode_outputs([{"text": "hi", "chunks": [{"t": (0.0, 0.5)}]}])[1]["data"] == ['[{"t": [0.0, 0.5]}]']
