"""Limits and failure behaviour: a full queue answers 503 + Retry-After at once and recovers,
bodies past the limit 413, requests past their time 504 (and their queued work never runs),
a client that leaves drops its work, health and metrics answer during a long batch, and
authentication is on with a key and off without."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from hub.serving import ServeSettings
from hub.serving.models import ServedModel
from tests.serving.conftest import fresh, serving


class Gate:
    """A predict that blocks until released (a long batch), recording what it was given."""

    def __init__(self, pipe):
        self.pipe = pipe
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls: list[list] = []

    def __call__(self, items, **options):
        self.calls.append(items if isinstance(items, list) else [items])
        self.entered.set()
        assert self.release.wait(30), "the test never released the gate"
        return self.pipe(items, **options)


@pytest.fixture(scope="module")
def clf(folders):
    return fresh(folders, "clf")


def post_in_thread(url, body, results, key, timeout=30.0, path="/models/clf/predict"):
    def run():
        try:
            results[key] = httpx.post(url + path, json=body, timeout=timeout)
        except httpx.HTTPError as exc:
            results[key] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def wait_until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_a_full_queue_answers_503_at_once_and_recovers(clf):
    gate = Gate(clf)
    with serving([ServedModel("clf", clf, predict=gate)], max_batch_size=1, max_queue=2, max_wait_ms=0) as server:
        batcher = server.app.state.hub.models["clf"].batcher
        results: dict = {}
        threads = [post_in_thread(server.url, {"inputs": "running"}, results, "a")]
        assert gate.entered.wait(10)
        threads += [post_in_thread(server.url, {"inputs": t}, results, t) for t in ("queued one", "queued two")]
        wait_until(lambda: batcher.depth == 2)
        started = time.monotonic()
        refused = httpx.post(f"{server.url}/models/clf/predict", json={"inputs": "one too many"})
        oip = httpx.post(f"{server.url}/v2/models/clf/infer",
                         json={"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["x"]}]})
        assert time.monotonic() - started < 5.0  # at once, not after a timeout (60 s here)
        gate.release.set()
        for thread in threads:
            thread.join(30)
        after = httpx.post(f"{server.url}/models/clf/predict", json={"inputs": "after the burst"})
        depth = server.app.state.hub.metrics.sample("hub_queue_depth", {"model": "clf"})
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    error = refused.json()["error"]
    assert error["type"] == "overloaded" and "max_queue=2" in error["message"]
    assert oip.status_code == 503 and "max_queue=2" in oip.json()["error"]
    assert all(results[k].status_code == 200 for k in ("a", "queued one", "queued two"))
    assert after.status_code == 200 and after.json()["outputs"]["label"] == clf("after the burst")["label"]
    assert depth == 0


def test_a_body_over_the_limit_is_413(clf):
    with serving([ServedModel("clf", clf)], max_body_bytes=2000) as server:
        declared = httpx.post(f"{server.url}/models/clf/predict", json={"inputs": "good " * 600})
        chunks = (b'{"inputs": "' + b"good " * 200, b"good " * 400 + b'"}')
        streamed = httpx.post(f"{server.url}/models/clf/predict", content=iter(chunks),
                              headers={"content-type": "application/json"})
        oip = httpx.post(f"{server.url}/v2/models/clf/infer", json={"inputs": [{"data": ["good " * 600]}]})
        small = httpx.post(f"{server.url}/models/clf/predict", json={"inputs": "good"})
    assert "content-length" not in {k.lower() for k in httpx.Request("POST", "/", content=iter(chunks)).headers}
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json()["error"]["type"] == "body_too_large"
        assert "max_body_bytes=2,000" in response.json()["error"]["message"]
    assert oip.status_code == 413 and "max_body_bytes" in oip.json()["error"]
    assert small.status_code == 200


def test_a_request_past_its_time_is_504_and_queued_work_is_dropped(clf):
    gate = Gate(clf)
    with serving([ServedModel("clf", clf, predict=gate)], max_batch_size=1, max_wait_ms=0,
                 request_timeout_s=0.6) as server:
        results: dict = {}
        first = post_in_thread(server.url, {"inputs": "slow one"}, results, "running")
        assert gate.entered.wait(10)
        queued = post_in_thread(server.url, {"inputs": "never runs"}, results, "queued")
        first.join(10)
        queued.join(10)
        depth_after = server.app.state.hub.models["clf"].batcher.depth
        gate.release.set()
        time.sleep(0.3)
        later = httpx.post(f"{server.url}/models/clf/predict", json={"inputs": "fresh"})
    for key in ("running", "queued"):
        assert results[key].status_code == 504
        error = results[key].json()["error"]
        assert error["type"] == "timeout" and "request_timeout_s=0.6" in error["message"]
    assert depth_after == 0
    assert gate.calls == [["slow one"], ["fresh"]]  # the timed-out queued request never reached the model
    assert later.status_code == 200


def test_a_client_that_leaves_drops_its_queued_work(clf):
    gate = Gate(clf)
    with serving([ServedModel("clf", clf, predict=gate)], max_batch_size=1, max_wait_ms=0) as server:
        results: dict = {}
        first = post_in_thread(server.url, {"inputs": "running"}, results, "running")
        assert gate.entered.wait(10)
        leaver = post_in_thread(server.url, {"inputs": "left early"}, results, "left", timeout=0.5)
        leaver.join(10)
        metrics = server.app.state.hub.metrics
        labels = {"model": "clf", "route": "/models/{name}/predict", "status": "499"}
        wait_until(lambda: metrics.sample("hub_requests_total", labels) == 1)
        depth = server.app.state.hub.models["clf"].batcher.depth
        gate.release.set()
        first.join(10)
    assert isinstance(results["left"], httpx.TimeoutException)
    assert depth == 0 and results["running"].status_code == 200
    assert gate.calls == [["running"]]


def test_health_and_metrics_answer_during_a_long_batch(clf):
    gate = Gate(clf)
    with serving([ServedModel("clf", clf, predict=gate)]) as server:
        results: dict = {}
        thread = post_in_thread(server.url, {"inputs": "a long batch"}, results, "long")
        assert gate.entered.wait(10)
        timings = {}
        for path in ("/v2/health/live", "/v2/health/ready", "/health", "/metrics", "/v2/models/clf"):
            started = time.monotonic()
            response = httpx.get(server.url + path, timeout=5)
            timings[path] = (response.status_code, time.monotonic() - started)
        inflight = server.app.state.hub.metrics.sample("hub_inflight_requests")
        gate.release.set()
        thread.join(10)
    assert all(status == 200 and seconds < 5.0 for status, seconds in timings.values()), timings  # the batch waits for ever
    assert inflight == 1 and results["long"].status_code == 200


def test_auth_with_a_key_on_every_route_but_health(clf):
    with serving([ServedModel("clf", clf)], api_key="s3cret") as server:
        get = lambda path, **kw: httpx.get(server.url + path, **kw)
        assert get("/v2/health/live").status_code == 200 and get("/v2/health/ready").status_code == 200
        assert get("/health").status_code == 200
        for path in ("/models", "/metrics", "/v2", "/v2/models/clf", "/openapi.json"):
            refused = get(path)
            assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        refused = httpx.post(f"{server.url}/models/clf/predict", json={"inputs": "good"},
                             headers={"Authorization": "Bearer wrong"})
        assert refused.status_code == 401 and "Authorization: Bearer" in refused.json()["error"]["message"]
        oip = httpx.post(f"{server.url}/v2/models/clf/infer", json={"inputs": []})
        assert oip.status_code == 401 and isinstance(oip.json()["error"], str)
        ok = httpx.post(f"{server.url}/models/clf/predict", json={"inputs": "good"},
                        headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert get("/metrics", headers={"Authorization": "bearer s3cret"}).status_code == 200


def test_auth_off_by_default_and_from_the_environment(clf, monkeypatch):
    monkeypatch.delenv("HUB_API_KEY", raising=False)
    with serving([ServedModel("clf", clf)]) as server:
        assert httpx.get(f"{server.url}/models").status_code == 200
    monkeypatch.setenv("HUB_API_KEY", "from-env")
    assert ServeSettings().resolved_api_key == "from-env"
    assert ServeSettings(api_key="").resolved_api_key is None  # explicit "": off even with the variable set
    with serving([ServedModel("clf", clf)]) as server:
        assert httpx.get(f"{server.url}/models").status_code == 401
        assert httpx.get(f"{server.url}/models", headers={"Authorization": "Bearer from-env"}).status_code == 200


def test_stopping_drains_queued_requests(clf):
    # the 4 requests wait out max_wait_ms in the queue (not dispatched as soon as all are there)
    with serving([ServedModel("clf", clf)], max_wait_ms=800, dispatch_when_idle=False,
                 log_level="warning") as server:
        results: dict = {}
        threads = [post_in_thread(server.url, {"inputs": f"queued {i}"}, results, i) for i in range(4)]
        batcher = server.app.state.hub.models["clf"].batcher
        wait_until(lambda: batcher.depth == 4)
        server.stop()  # what SIGTERM does: stop accepting, finish what is in flight
        for thread in threads:
            thread.join(10)
    assert [results[i].status_code for i in range(4)] == [200] * 4
    assert results[0].json()["outputs"]["label"] == clf("queued 0")["label"]


def test_settings_are_checked():
    with pytest.raises(Exception, match="max_batch_size must be an integer >= 1"):
        ServeSettings(max_batch_size=0)
    with pytest.raises(Exception, match="request_timeout_s must be a finite number > 0"):
        ServeSettings(request_timeout_s=0)
    with pytest.raises(Exception, match="unknown serve setting"):
        ServeSettings().replace(max_batch=4)


def test_readiness_is_false_while_a_model_is_not_loaded(clf):
    # what /v2/health/ready and /v2/models/{name}/ready answer is the models' state, not a constant
    loading = ServedModel("clf", clf, ready=False)
    with serving([loading]) as server:
        def get(path):
            return httpx.get(server.url + path, timeout=30)

        assert get("/v2/health/live").status_code == 200  # alive meanwhile
        assert get("/v2/health/ready").status_code == 503 and get("/v2/health/ready").json()["ready"] is False
        assert get("/v2/models/clf/ready").status_code == 503
        assert get("/health").json()["status"] == "loading"
        refused = httpx.post(f"{server.url}/models/clf/predict", json={"inputs": "fine"}, timeout=30)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["type"] == "not_ready"
        loading.ready = True
        assert get("/v2/health/ready").status_code == 200 and get("/v2/models/clf/ready").status_code == 200
        answer = httpx.post(f"{server.url}/models/clf/predict", json={"inputs": "fine"}, timeout=30)
        assert answer.status_code == 200 and answer.json()["outputs"]["label"] == clf("fine")["label"]
