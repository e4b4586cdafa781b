"""``hub.serving.ray``: the same app as a Ray Serve deployment of 2 replicas, on a local Ray the
test starts on 127.0.0.1 (no network beyond loopback). Slow (Ray and two replicas loading their
models take about a minute here): readiness says "not ready" until the replicas have loaded,
the routes answer as the in-process pipeline does (native and OIP, classification and
embeddings), both replicas answer (``X-Hub-Replica``), each replica's ``/metrics`` is reachable
and labelled with its id, auth and per-request errors behave as in one process, and deleting the
application lets the requests in flight finish. Fast: bad specs and flags fail before anything
starts, and a missing Ray names the extra."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

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


def _watch_readiness(url: str, stop: threading.Event, seen: list) -> None:
    """Poll the readiness routes until ``stop``; record ``(path, status or None, when answered)``."""
    while not stop.is_set():
        for path in ("/v2/health/ready", "/v2/models/clf/ready"):
            try:
                status = httpx.get(url + path, headers=AUTH, timeout=5).status_code
            except httpx.HTTPError:
                status = None  # the proxy is not listening yet, or held the request past the timeout
            seen.append((path, status, time.time()))
        time.sleep(0.1)


@pytest.fixture(scope="module")
def ray_server(folders, tmp_path_factory):
    """The deployment (``.server``), what the readiness routes said while it loaded
    (``.while_loading``) and the folder where the slow model marks its calls (``.markers``)."""
    from hub.serving import ServeSettings
    from hub.serving.ray import build_ray_app, start_ray
    from tests.serving import ray_hooks

    markers = tmp_path_factory.mktemp("slow-calls")
    ray_hooks.MARKER_DIR = str(markers)
    ray.cloudpickle.register_pickle_by_value(ray_hooks)  # the replicas get the hook's code itself
    ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             logging_level="warning", log_to_driver=False)
    try:
        settings = ServeSettings(host="127.0.0.1", port=_free_port(), api_key=KEY, log_level="warning")
        app = build_ray_app([f"clf=text-classify:{folders['clf']}", f"emb=text-embed:{folders['emb']}",
                             f"slow=text-classify:{folders['clf']}"], settings, replicas=2, device="cpu",
                            on_start=ray_hooks.slow_start)
        stop, seen = threading.Event(), []
        watcher = threading.Thread(target=_watch_readiness, args=(f"http://127.0.0.1:{settings.port}", stop, seen),
                                   daemon=True)
        watcher.start()
        try:
            server = start_ray(app, settings, timeout_s=300)
        finally:
            stop.set()
            watcher.join(10)
        assert not server.started_ray  # the test's ray.init was used
        try:
            yield SimpleNamespace(server=server, url=server.url, while_loading=list(seen), markers=markers)
        finally:
            server.stop()
            assert "hub" not in serve.status().applications
    finally:
        serve.shutdown()
        ray.shutdown()
        ray.cloudpickle.unregister_pickle_by_value(ray_hooks)


@pytest.mark.slow
def test_not_ready_while_the_replicas_load_then_ready(ray_server):
    # while the replicas loaded (each start takes >= 4 s more than loading) the readiness routes
    # were probed and said no: the proxy not listening yet (None: refused), no route yet (404),
    # or Ray's proxy held the probe until a replica was up. Which of these a run sees depends on
    # how fast Ray's proxy comes up; what must hold is that probes ran while the replicas loaded
    # and no 200 came before the first replica had finished starting.
    first_up = min(float(p.name.split("-", 1)[1]) for p in ray_server.markers.glob("started-*"))
    seen = ray_server.while_loading
    assert [s for _, s, when in seen if when < first_up - 1.0], seen  # probed while loading
    assert not [(p, when - first_up) for p, s, when in seen if s == 200 and when < first_up], seen
    for path in ("/v2/health/ready", "/v2/models/clf/ready", "/v2/models/slow/ready"):
        assert httpx.get(ray_server.url + path, headers=AUTH, timeout=60).status_code == 200, path


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


def _scrape_each_replica(url: str) -> dict[str, str]:
    """``{replica id: its /metrics text}``, scraping through the proxy until both answered."""
    bodies: dict[str, str] = {}
    deadline = time.monotonic() + 60
    with httpx.Client(timeout=60, headers=AUTH) as client:
        while len(bodies) < 2:
            assert time.monotonic() < deadline, f"only {sorted(bodies)} answered /metrics"
            response = client.get(f"{url}/metrics")
            assert response.status_code == 200
            bodies[response.headers["x-hub-replica"]] = response.text
    return bodies


def _predict_200s(text: str, replica: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("hub_"):  # every sample names the replica that serves it
                assert sample.labels.get("replica") == replica, sample
            if (sample.name == "hub_requests_total" and sample.labels["model"] == "clf"
                    and sample.labels["route"] == "/models/{name}/predict" and sample.labels["status"] == "200"):
                total += sample.value
    return total


@pytest.mark.slow
def test_each_replica_has_its_metrics_labelled_by_replica(ray_server):
    before = {r: _predict_200s(text, r) for r, text in _scrape_each_replica(ray_server.url).items()}
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda i: httpx.post(f"{ray_server.url}/models/clf/predict", headers=AUTH,
                                                      json={"inputs": f"metrics {i}"}, timeout=60).status_code,
                                 range(24)))
    assert statuses == [200] * 24
    after = {r: _predict_200s(text, r) for r, text in _scrape_each_replica(ray_server.url).items()}
    assert set(after) == set(before)
    assert sum(after.values()) - sum(before.values()) == 24  # the replicas' counters add up to the requests


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


@pytest.mark.slow
def test_deleting_the_application_lets_requests_in_flight_finish(ray_server, pipes):
    # the last slow test of the module: it deletes the application the others use
    from hub.serving.ray import DEFAULT_APP_NAME

    results: dict = {}

    def post(i: int) -> None:
        try:
            results[i] = httpx.post(f"{ray_server.url}/models/slow/predict", json={"inputs": TEXTS[i % 3]},
                                    headers=AUTH, timeout=120)
        except httpx.HTTPError as exc:
            results[i] = exc

    threads = [threading.Thread(target=post, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while not any(ray_server.markers.glob("entered-*")):  # a slow call (3 s) has started in a replica
        assert time.monotonic() < deadline, "no slow call started"
        time.sleep(0.05)
    started = time.monotonic()
    serve.delete(DEFAULT_APP_NAME)  # as `hub serve --ray` does on SIGTERM; returns once deleted
    deleted_after = time.monotonic() - started
    for thread in threads:
        thread.join(60)
    assert DEFAULT_APP_NAME not in serve.status().applications
    statuses = [getattr(results[i], "status_code", results[i]) for i in range(4)]
    assert statuses == [200] * 4, statuses  # every request in flight was answered, none cut off
    for i in range(4):
        assert results[i].json()["outputs"]["label"] == pipes["clf"](TEXTS[i % 3])["label"]
    assert deleted_after > 1.0  # deleting waited for the slow calls


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
