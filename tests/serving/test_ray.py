"""``hub.serving.ray``: the same app as a Ray Serve deployment of 2 replicas, on a local Ray the
test starts on 127.0.0.1 (no network beyond loopback). Slow (Ray and two replicas loading their
models take about a minute here): the routes answer as the in-process pipeline does (native and
OIP, classification and embeddings), both replicas answer (``X-Hub-Replica``), auth and
per-request errors behave as in one process, and stopping deletes the application. Fast: bad
specs and flags fail before anything starts, and a missing Ray names the extra."""

from __future__ import annotations

import os
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

import hub.cli
from hub.errors import InvalidInputError

# Ray turns a node address of 127.0.0.1 into the machine's network address, except where it treats
# the host as a one-machine install (its Windows/macOS default): then GCS, raylet and workers use
# loopback. Read when Ray is imported, so set first; the workers inherit it.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
TEXTS = ["good food", "the tea was stale and the service slow", "fine"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def ray_server(folders):
    from hub.serving import ServeSettings
    from hub.serving.ray import build_ray_app, start_ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             logging_level="warning", log_to_driver=False)
    try:
        settings = ServeSettings(host="127.0.0.1", port=_free_port(), api_key=KEY, log_level="warning")
        app = build_ray_app([f"clf=text-classify:{folders['clf']}", f"emb=text-embed:{folders['emb']}"], settings,
                            replicas=2, device="cpu")
        server = start_ray(app, settings, timeout_s=300)
        assert not server.started_ray  # the test's ray.init was used
        try:
            yield server
        finally:
            server.stop()
            assert "hub" not in serve.status().applications
    finally:
        serve.shutdown()
        ray.shutdown()


@pytest.mark.slow
def test_routes_answer_as_the_pipeline_does(ray_server, pipes):
    url = ray_server.url
    with httpx.Client(base_url=url, timeout=60, headers=AUTH) as client:
        native = client.post("/models/clf/predict", json={"inputs": TEXTS, "options": {"top_k": 2}})
        assert native.status_code == 200, native.text
        expected = pipes["clf"](TEXTS, top_k=2)
        got = native.json()["outputs"]
        assert [[r["label"] for r in row] for row in got] == [[r["label"] for r in row] for row in expected]
        assert np.allclose([[r["score"] for r in row] for row in got],
                           [[r["score"] for r in row] for row in expected], atol=1e-5)

        oip = client.post("/v2/models/clf/infer", json={
            "inputs": [{"name": "text", "shape": [len(TEXTS)], "datatype": "BYTES", "data": TEXTS}]})
        assert oip.status_code == 200, oip.text
        outputs = {o["name"]: o for o in oip.json()["outputs"]}
        one = pipes["clf"](TEXTS)
        assert outputs["label"]["data"] == [r["label"] for r in one]
        assert np.allclose(outputs["score"]["data"], [r["score"] for r in one], atol=1e-5)

        emb = client.post("/v2/models/emb/infer", json={
            "inputs": [{"name": "text", "shape": [len(TEXTS)], "datatype": "BYTES", "data": TEXTS}]})
        assert emb.status_code == 200, emb.text
        embedding = {o["name"]: o for o in emb.json()["outputs"]}["embedding"]
        reference = np.asarray(pipes["emb"](TEXTS), dtype=np.float32)
        assert embedding["shape"] == list(reference.shape)
        assert np.abs(np.asarray(embedding["data"], dtype=np.float32).reshape(reference.shape)
                      - reference).max() <= 1e-5

        # the one-process server's behaviour: a bad input is a 400 naming it, an id is echoed once
        bad = client.post("/models/clf/predict", json={"inputs": ["fine", ""]}, headers={"X-Request-ID": "r-1"})
        assert bad.status_code == 400
        assert bad.json()["error"]["input"] == 1 and "empty" in bad.json()["error"]["message"]
        assert bad.headers.get_list("x-request-id") == ["r-1"]
    # auth on every route but health, as in one process
    assert httpx.post(f"{url}/models/clf/predict", json={"inputs": "fine"}, timeout=60).status_code == 401
    assert httpx.get(f"{url}/v2/health/ready", timeout=60).status_code == 200


@pytest.mark.slow
def test_both_replicas_serve(ray_server):
    def one(i: int) -> str:
        response = httpx.post(f"{ray_server.url}/models/clf/predict", json={"inputs": f"text {i}"}, headers=AUTH,
                              timeout=60)
        assert response.status_code == 200, response.text
        return response.headers["x-hub-replica"]

    seen: set[str] = set()
    deadline = time.monotonic() + 60
    with ThreadPoolExecutor(8) as pool:
        while len(seen) < 2 and time.monotonic() < deadline:
            seen.update(pool.map(one, range(16)))
    assert len(seen) == 2, seen


def test_bad_specs_fail_before_anything_is_deployed(folders):
    from hub.serving.ray import build_ray_app

    with pytest.raises(InvalidInputError, match="replica loads its own models"):
        build_ray_app({"clf": object()})
    with pytest.raises(InvalidInputError, match="two models would be served as 'clf'"):
        build_ray_app([f"clf=text-classify:{folders['clf']}", f"clf=text-embed:{folders['emb']}"])
    with pytest.raises(InvalidInputError, match="replicas"):
        build_ray_app([f"clf=text-classify:{folders['clf']}"], replicas=0)


def test_ray_flags_without_ray_and_a_missing_ray_are_clear(monkeypatch, capsys):
    assert hub.cli.main(["serve", "text-classify", "--replicas", "2"]) == 2
    err = capsys.readouterr().err
    assert "--replicas and --ray-address run the server on Ray Serve; add --ray" in err and "Traceback" not in err
    assert hub.cli.main(["serve", "text-classify", "--ray", "--port", "0"]) == 2
    assert "--ray needs a fixed --port" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ray", None)
    assert hub.cli.main(["serve", "text-classify", "--ray", "--replicas", "2"]) == 2
    assert "pip install 'hub-sdk[ray]'" in capsys.readouterr().err
