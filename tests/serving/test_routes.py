"""Every route of ``hub serve`` through a real HTTP client against a real uvicorn server on
127.0.0.1: native and Open Inference Protocol answers equal the in-process pipeline's on the
same inputs; errors are JSON in the route's protocol shape and name the input."""

from __future__ import annotations

import base64
import json

import httpx
import numpy as np
import pytest

from tests.serving.conftest import png_bytes, serving

TEXTS = ["the food was great", "awful stale coffee", "tea", "very very good value for the price", "not bad"]


@pytest.fixture(scope="module")
def server(folders):
    specs = [f"clf=text-classify:{folders['clf']}", f"emb=text-embed:{folders['emb']}", f"img={folders['img']}"]
    with serving(specs, max_wait_ms=2) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def assert_ranked_equal(got, expected, tol=1e-5):
    assert [r["label"] for r in got] == [r["label"] for r in expected]
    assert [r["score"] for r in got] == pytest.approx([r["score"] for r in expected], abs=tol)


# --------------------------------------------------------------------------- health and metadata
def test_health_and_server_metadata(client):
    assert client.get("/health").json() == {"status": "ready", "models": {"clf": True, "emb": True, "img": True}}
    assert client.get("/v2/health/live").json() == {"live": True}
    ready = client.get("/v2/health/ready")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    meta = client.get("/v2").json()
    assert meta["name"] == "hub" and isinstance(meta["version"], str) and meta["extensions"] == []


def test_model_metadata_and_ready(client, pipes):
    meta = client.get("/v2/models/clf").json()
    assert meta["name"] == "clf" and meta["platform"] == "hub:text-classify" and meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert [o["name"] for o in meta["outputs"]] == ["label", "score"]
    assert client.get("/v2/models/emb/versions/1").json()["outputs"][0]["name"] == "embedding"
    assert client.get("/v2/models/clf/ready").json() == {"name": "clf", "ready": True}
    assert client.get("/v2/models/clf/versions/1/ready").json() == {"name": "clf", "ready": True}
    missing = client.get("/v2/models/clf/versions/7")
    assert missing.status_code == 404 and "no version '7'" in missing.json()["error"]
    listed = client.get("/models").json()["models"]
    assert [m["name"] for m in listed] == ["clf", "emb", "img"]
    info = client.get("/models/clf").json()
    assert info["task"] == "text-classify" and info["labels"] == pipes["clf"].labels
    assert "top_k" in info["options"] and "batch_size" not in info["options"]


def test_unknown_model_is_404_in_each_protocol(client):
    native = client.post("/models/nope/predict", json={"inputs": "x"})
    assert native.status_code == 404
    assert native.json()["error"]["type"] == "model_not_found" and "served: clf, emb, img" in \
        native.json()["error"]["message"]
    oip = client.post("/v2/models/nope/infer", json={"inputs": []})
    assert oip.status_code == 404 and set(oip.json()) == {"error"} and "nope" in oip.json()["error"]


# --------------------------------------------------------------------------- native route
def test_native_predict_mirrors_the_python_call(client, pipes):
    clf = pipes["clf"]
    one = client.post("/models/clf/predict", json={"inputs": TEXTS[0]}).json()
    expected = clf(TEXTS[0])
    assert one["model"] == "clf" and one["outputs"]["label"] == expected["label"]
    assert one["outputs"]["score"] == pytest.approx(expected["score"], abs=1e-5)
    assert one["metadata"] == expected.metadata
    many = client.post("/models/clf/predict", json={"inputs": TEXTS, "options": {"top_k": 2}}).json()
    reference = clf(TEXTS, top_k=2)
    assert len(many["outputs"]) == len(TEXTS)
    for got, want in zip(many["outputs"], reference):
        assert_ranked_equal(got, want)
    assert many["metadata"] == [r.metadata for r in reference]
    assert client.post("/models/clf/predict", json={"inputs": []}).json()["outputs"] == []


def test_native_embeddings_within_1e_5(client, pipes):
    got = client.post("/models/emb/predict", json={"inputs": TEXTS}).json()["outputs"]
    expected = pipes["emb"](TEXTS)
    assert np.abs(np.array(got) - np.array(expected)).max() <= 1e-5


def test_native_images_as_base64_and_multipart(client, pipes):
    images = [png_bytes(1), png_bytes(2, (30, 18))]
    expected = pipes["img"](images, top_k=2)
    got = client.post("/models/img/predict", json={"inputs": [{"b64": base64.b64encode(b).decode()} for b in images],
                                                   "options": {"top_k": 2}}).json()["outputs"]
    for g, e in zip(got, expected):
        assert_ranked_equal(g, e)
    one = client.post("/models/img/predict", files={"file": ("a.png", images[0], "image/png")}).json()["outputs"]
    assert_ranked_equal(one, pipes["img"](images[0]))
    two = client.post("/models/img/predict", files=[("file", ("a.png", images[0])), ("file", ("b.png", images[1]))],
                      data={"options": json.dumps({"top_k": 2})}).json()["outputs"]
    for g, e in zip(two, expected):
        assert_ranked_equal(g, e)


@pytest.mark.parametrize("body, status, kind, words", [
    ({"inputs": ["good", ""]}, 400, "InvalidInputError", ["input 1", "empty string"]),
    ({"inputs": ["good", 7]}, 400, "InputTypeError", ["input 1", "expected a string"]),
    ({"inputs": None}, 400, "InputTypeError", ["input 0", "null"]),
    ({"inputs": {"text": "good"}}, 400, "InputTypeError", ["input 0 is an object; expected a string"]),
    ({"inputs": [["good"]]}, 400, "InputTypeError", ["input 0 is an array; expected a string"]),
    ({"inputs": "good", "options": {"topk": 2}}, 400, "InvalidInputError", ["'topk'", "did you mean 'top_k'"]),
    ({"inputs": "good", "options": {"top_k": "3"}}, 400, "InvalidInputError", ["top_k"]),
    ({"inputs": "good", "options": {"batch_size": 4}}, 400, "InvalidInputError", ["'batch_size'", "set by the server"]),
    ({"inputs": "good", "options": {"max_windows": 10**9}}, 400, "InvalidInputError", ["HUB_MAX_WINDOWS"]),
    ({"inputs": "good", "options": [1]}, 400, "InvalidInputError", ["options must be a JSON object"]),
    ({"input": "good"}, 400, "invalid_request", ["'input'", "did you mean 'inputs'"]),
    ({}, 400, "invalid_request", ["no 'inputs'"]),
    ([1, 2], 400, "invalid_request", ["JSON object"]),
])
def test_native_errors_name_the_problem(client, body, status, kind, words):
    response = client.post("/models/clf/predict", json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["type"] == kind and error["request_id"] == response.headers["x-request-id"]
    for word in words:
        assert word in error["message"]
    assert "Traceback" not in response.text
    if "input 1" in words:
        assert error["input"] == 1


def test_native_bad_json_and_bad_files(client):
    broken = client.post("/models/clf/predict", content=b'{"inputs": [', headers={"content-type": "application/json"})
    assert broken.status_code == 400 and broken.json()["error"]["type"] == "invalid_json"
    assert "line 1" in broken.json()["error"]["message"]
    path = client.post("/models/img/predict", json={"inputs": "/etc/passwd"})
    assert path.status_code == 400 and "would name a file on the server" in path.json()["error"]["message"]
    not_b64 = client.post("/models/img/predict", json={"inputs": [{"b64": "%%%"}]})
    assert not_b64.status_code == 400 and "not valid base64" in not_b64.json()["error"]["message"]
    not_image = client.post("/models/img/predict", json={"inputs": [{"b64": base64.b64encode(b"hello").decode()}]})
    assert not_image.status_code == 400 and "input 0" in not_image.json()["error"]["message"]


def test_hostile_json_is_a_400(client):
    deep = b'{"inputs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = client.post("/models/clf/predict", content=deep, headers={"content-type": "application/json"})
    assert response.status_code == 400 and "too deeply" in response.json()["error"]["message"]
    surrogate = client.post("/models/clf/predict", content=b'{"inputs": ["ok", "bad \\ud800 text"]}',
                            headers={"content-type": "application/json"})
    assert surrogate.status_code == 400 and surrogate.json()["error"]["input"] == 1
    assert "lone surrogate" in surrogate.json()["error"]["message"]
    nested = client.post("/v2/models/clf/infer", json={"inputs": [{"name": "t", "shape": [2], "datatype": "BYTES",
                                                                   "data": [[[["good"]]], [["tea"]]]}]})
    assert nested.status_code == 200 and nested.json()["outputs"][0]["shape"] == [2]


def test_request_id_is_echoed_or_made(client):
    given = client.get("/v2/health/live", headers={"x-request-id": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = client.get("/v2/health/live", headers={"x-request-id": "bad id with spaces"})
    assert made.headers["x-request-id"] != "bad id with spaces" and len(made.headers["x-request-id"]) == 32


# --------------------------------------------------------------------------- Open Inference Protocol
def _infer(client, name, tensor, **body):
    return client.post(f"/v2/models/{name}/infer", json={"inputs": [tensor], **body})


def test_oip_text_classify_equals_the_pipeline(client, pipes):
    response = _infer(client, "clf", {"name": "text", "shape": [len(TEXTS)], "datatype": "BYTES", "data": TEXTS},
                      id="req-1")
    body = response.json()
    expected = pipes["clf"](TEXTS)
    assert body["model_name"] == "clf" and body["model_version"] == "1" and body["id"] == "req-1"
    label, score = body["outputs"]
    assert label == {"name": "label", "datatype": "BYTES", "shape": [5], "data": [r["label"] for r in expected]}
    assert score["name"] == "score" and score["datatype"] == "FP32" and score["shape"] == [5]
    assert score["data"] == pytest.approx([r["score"] for r in expected], abs=1e-5)
    assert json.loads(body["parameters"]["metadata"]) == [r.metadata for r in expected]


def test_oip_top_k_parameters_and_requested_outputs(client, pipes):
    tensor = {"name": "text", "shape": [2, 1], "datatype": "BYTES", "data": [[TEXTS[0]], [TEXTS[1]]]}
    body = _infer(client, "clf", tensor, parameters={"top_k": 2}, outputs=[{"name": "score"}]).json()
    expected = pipes["clf"](TEXTS[:2], top_k=2)
    assert [o["name"] for o in body["outputs"]] == ["score"]
    score = body["outputs"][0]
    assert score["shape"] == [2, 2]
    assert score["data"] == pytest.approx([r["score"] for ranked in expected for r in ranked], abs=1e-5)
    unknown = _infer(client, "clf", tensor, outputs=[{"name": "logits"}])
    assert unknown.status_code == 400 and "'logits'" in unknown.json()["error"]


def test_oip_embeddings_within_1e_5(client, pipes):
    body = _infer(client, "emb", {"name": "text", "shape": [3], "datatype": "BYTES", "data": TEXTS[:3]}).json()
    (output,) = body["outputs"]
    expected = np.array(pipes["emb"](TEXTS[:3]))
    assert output["name"] == "embedding" and output["datatype"] == "FP32" and output["shape"] == list(expected.shape)
    assert np.abs(np.array(output["data"]).reshape(expected.shape) - expected).max() <= 1e-5


def test_oip_images_as_bytes_and_uint8(client, pipes):
    images = [png_bytes(3), png_bytes(4)]
    expected = pipes["img"](images)
    body = _infer(client, "img", {"name": "image", "shape": [2], "datatype": "BYTES",
                                  "data": [base64.b64encode(b).decode() for b in images]}).json()
    label, score = body["outputs"]
    assert label["shape"] == [2, 3] and label["data"] == [r["label"] for ranked in expected for r in ranked]
    assert score["data"] == pytest.approx([r["score"] for ranked in expected for r in ranked], abs=1e-5)
    pixels = (np.random.RandomState(5).rand(2, 16, 16, 3) * 255).astype("uint8")
    expected = pipes["img"]([pixels[0], pixels[1]])
    body = _infer(client, "img", {"name": "image", "shape": [2, 16, 16, 3], "datatype": "UINT8",
                                  "data": pixels.tolist()}).json()  # nested data is allowed too
    assert body["outputs"][0]["data"] == [r["label"] for ranked in expected for r in ranked]


@pytest.mark.parametrize("body, words", [
    ({"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["a", 3]}]}, ["element 1", "BYTES"]),
    ({"inputs": [{"name": "text", "shape": [3], "datatype": "BYTES", "data": ["a", "b"]}]}, ["3 elements", "has 2"]),
    ({"inputs": [{"name": "text", "shape": [1], "datatype": "STRING", "data": ["a"]}]}, ["datatype 'STRING'"]),
    ({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [""]}]}, ["input 0", "empty string"]),
    ({"inputs": [{"name": "text", "shape": [2], "datatype": "INT64", "data": [1, 2]}]}, ["input 0", "expected a string"]),
    ({"inputs": [{"name": "text", "shape": [-1], "datatype": "BYTES", "data": []}]}, ["'shape'"]),
    ({"inputs": []}, ["one input tensor"]),
    ({"inputs": [{"name": "a", "shape": [1], "datatype": "BYTES", "data": ["x"]}] * 2}, ["takes one input tensor"]),
    ({"inputs": [{"name": "t", "shape": [1], "datatype": "BYTES", "data": ["x"], "dtype": 1}]}, ["'dtype'"]),
    ({"inputs": [{"name": "t", "shape": [1], "datatype": "BYTES", "data": ["x"]}], "parameters": {"top_k": [1]}},
     ["string, number or boolean"]),
    ({"inputs": [{"name": "t", "shape": [1], "datatype": "BYTES", "data": ["x"]}], "parameters": {"topk": 1}},
     ["did you mean 'top_k'"]),
])
def test_oip_errors_are_the_spec_shape(client, body, words):
    response = client.post("/v2/models/clf/infer", json=body)
    assert response.status_code == 400
    assert set(response.json()) == {"error"} and isinstance(response.json()["error"], str)
    for word in words:
        assert word in response.json()["error"]


# --------------------------------------------------------------------------- metrics and docs
def test_metrics_count_requests_batches_and_queue(client):
    client.post("/models/clf/predict", json={"inputs": TEXTS})
    client.post("/models/clf/predict", json={"inputs": ""})
    text = client.get("/metrics").text
    assert 'hub_requests_total{model="clf",route="/models/{name}/predict",status="200"}' in text
    assert 'hub_requests_total{model="clf",route="/models/{name}/predict",status="400"}' in text
    assert 'hub_request_duration_seconds_bucket{le="0.001",model="clf",route="/models/{name}/predict"}' in text
    assert 'hub_batch_size_bucket{le="8.0",model="clf"}' in text
    assert 'hub_queue_depth{model="clf"} 0.0' in text
    assert 'hub_requests_total{model="",route="unmatched",status="404"}' not in text
    client.get("/no/such/route")
    assert 'hub_requests_total{model="",route="unmatched",status="404"}' in client.get("/metrics").text


def test_openapi_docs_list_the_routes(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/models/{name}/predict", "/v2/models/{name}/infer", "/v2/health/live", "/metrics"):
        assert path in paths


def test_unknown_options_list_only_what_a_request_may_set(client):
    message = client.post("/models/clf/predict", json={"inputs": "good", "options": {"topk": 1}}).json()["error"]["message"]
    assert "did you mean 'top_k'" in message
    assert "top_k" in message and "batch_size" not in message and "max_windows" not in message


def test_one_structured_log_line_per_request(client, caplog):
    import logging
    import time

    with caplog.at_level(logging.INFO, logger="hub.serving.access"):
        response = client.post("/models/clf/predict", json={"inputs": "good"}, headers={"x-request-id": "log-me-1"})
        client.get("/v2/health/live", headers={"x-request-id": "log-me-2"})
        deadline = time.monotonic() + 5  # the line is written just after the answer is sent
        while "log-me-2" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.01)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "hub.serving.access"]
    mine = [line for line in lines if line["request_id"] == "log-me-1"]
    assert response.status_code == 200 and len(mine) == 1
    assert mine[0]["route"] == "/models/{name}/predict" and mine[0]["model"] == "clf" and mine[0]["status"] == 200
    assert mine[0]["method"] == "POST" and mine[0]["ms"] >= 0 and mine[0]["client"].startswith("127.0.0.1:")
    assert [line["path"] for line in lines if line["request_id"] == "log-me-2"] == ["/v2/health/live"]
