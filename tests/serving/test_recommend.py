"""recommend over HTTP (a folder): user ids in, ranked ``{item, score}`` out, natively and in the
Open Inference Protocol (``item``/``score`` tensors ``[N, k]``); a list-valued option
(``history``) runs alone; answers equal the in-process pipeline's."""

from __future__ import annotations

import httpx
import pytest

from tests.serving.conftest import serving


@pytest.fixture(scope="module")
def client(folders):
    with serving([f"rec={folders['rec']}"], max_wait_ms=2) as server:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            yield c


def test_native_recommendations(client, pipes):
    rec = pipes["rec"]
    one = client.post("/models/rec/predict", json={"inputs": "u1", "options": {"k": 3}}).json()
    assert one["outputs"] == rec("u1", k=3) and one["metadata"] == rec("u1", k=3).metadata
    many = client.post("/models/rec/predict", json={"inputs": ["u1", "u2", "nobody"], "options": {"k": 2}}).json()
    assert many["outputs"] == rec(["u1", "u2", "nobody"], k=2)
    cold = client.post("/models/rec/predict", json={"inputs": "nobody", "options": {"k": 3, "history": ["i1", "i2"]}})
    assert cold.json()["outputs"] == rec("nobody", k=3, history=["i1", "i2"])
    bad = client.post("/models/rec/predict", json={"inputs": "u1", "options": {"k": 0}})
    assert bad.status_code == 400 and "k must be a positive integer" in bad.json()["error"]["message"]


def test_oip_recommendations(client, pipes):
    body = client.post("/v2/models/rec/infer", json={
        "inputs": [{"name": "user", "shape": [2], "datatype": "BYTES", "data": ["u3", "u4"]}],
        "parameters": {"k": 4}}).json()
    expected = pipes["rec"](["u3", "u4"], k=4)
    item, score = body["outputs"]
    assert item == {"name": "item", "datatype": "BYTES", "shape": [2, 4],
                    "data": [r["item"] for ranked in expected for r in ranked]}
    assert score["shape"] == [2, 4] and score["data"] == [r["score"] for ranked in expected for r in ranked]
    listed = client.post("/v2/models/rec/infer", json={
        "inputs": [{"name": "user", "shape": [1], "datatype": "BYTES", "data": ["u3"]}],
        "parameters": {"history": ["i1"]}})
    assert listed.status_code == 400 and "string, number or boolean" in listed.json()["error"]
