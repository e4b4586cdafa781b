"""Dynamic batching across concurrent HTTP requests: requests are merged into one pipeline call
(and the answers do not change), different options never share a call, a failing batch is
retried request by request so only the culprit fails, and 1,000 requests at concurrency 32
with 10 % malformed ones are all answered correctly or refused with a 4xx."""

from __future__ import annotations

import time

import httpx
import pytest

from hub.errors import InvalidInputError
from hub.serving.batcher import options_key, text_cost
from hub.serving.models import ServedModel
from tests.serving.conftest import Recorder, fresh, run_concurrently, serving
from tests.text.checkpoints import WORDS


def texts(n: int, offset: int = 0) -> list[str]:
    """n distinct short texts."""
    return [" ".join(WORDS[(i * 7 + j + offset) % len(WORDS)] for j in range(1 + i % 5)) + f" {i + offset}"
            for i in range(n)]


def close(got, want, tol=1e-5) -> bool:
    if isinstance(want, list):
        return len(got) == len(want) and all(close(g, w, tol) for g, w in zip(got, want))
    return got["label"] == want["label"] and abs(got["score"] - want["score"]) <= tol


def test_concurrent_requests_share_one_call_and_answers_do_not_change(folders, pipes):
    inputs = texts(16)
    expected = pipes["clf"](inputs)
    recorder = Recorder(fresh(folders, "clf"))
    with serving([ServedModel("clf", recorder.pipe, predict=recorder)], max_wait_ms=150) as server:
        responses = run_concurrently(server.url, [("/models/clf/predict", {"inputs": t}) for t in inputs])
        metrics = server.app.state.hub.metrics
        calls = metrics.sample("hub_batch_size_count", {"model": "clf"})
        merged_items = metrics.sample("hub_batch_size_sum", {"model": "clf"})
        single_batches = metrics.sample("hub_batch_size_bucket", {"model": "clf", "le": "1.0"})
    assert [r.status_code for r in responses] == [200] * 16
    for response, want in zip(responses, expected):
        assert close(response.json()["outputs"], want)
    sizes = [len(items) for items, _ in recorder.calls]
    assert sum(sizes) == 16 and max(sizes) > 1 and len(sizes) < 16
    assert merged_items == 16 and calls == len(sizes) and single_batches < calls  # the histogram saw batches > 1


def test_different_options_are_batched_separately(folders, pipes):
    plain, top1, top2 = texts(6), texts(6, 100), texts(6, 200)
    recorder = Recorder(fresh(folders, "clf"))
    requests = ([("/models/clf/predict", {"inputs": t}) for t in plain]
                + [("/models/clf/predict", {"inputs": t, "options": {"top_k": 1}}) for t in top1]
                + [("/models/clf/predict", {"inputs": t, "options": {"top_k": 2}}) for t in top2])
    requests = [requests[i] for i in range(0, 18, 3)] + [requests[i] for i in range(1, 18, 3)] + \
        [requests[i] for i in range(2, 18, 3)]  # interleaved
    with serving([ServedModel("clf", recorder.pipe, predict=recorder)], max_wait_ms=150) as server:
        responses = run_concurrently(server.url, requests)
    group = {**{t: {} for t in plain}, **{t: {"top_k": 1} for t in top1}, **{t: {"top_k": 2} for t in top2}}
    for items, options in recorder.calls:
        assert all(group[t] == options for t in items), (items, options)
    assert max(len(items) for items, _ in recorder.calls) > 1
    for (_, body), response in zip(requests, responses):
        want = pipes["clf"](body["inputs"], **body.get("options", {}))
        assert close(response.json()["outputs"], want)


def test_a_failing_batch_is_retried_alone_so_only_the_culprit_fails(folders, pipes):
    def bug(items):
        return RuntimeError("a bug that only this input triggers")

    recorder = Recorder(fresh(folders, "clf"), fail_on="boom", error=bug)
    good = texts(5)
    requests = [("/models/clf/predict", {"inputs": t}) for t in good[:3]] + \
        [("/models/clf/predict", {"inputs": ["fine text", "boom"]})] + \
        [("/models/clf/predict", {"inputs": t}) for t in good[3:]]
    # a wait long enough for all six requests to join one batch even on a loaded machine
    with serving([ServedModel("clf", recorder.pipe, predict=recorder)], max_wait_ms=2000) as server:
        responses = run_concurrently(server.url, requests)
    statuses = [r.status_code for r in responses]
    assert statuses == [200, 200, 200, 500, 200, 200]
    culprit = responses[3].json()["error"]
    assert culprit["type"] == "internal_error" and culprit["request_id"] in culprit["message"]
    assert "Traceback" not in responses[3].text and "a bug" not in responses[3].text
    for response, text in zip(responses[:3] + responses[4:], good):
        assert close(response.json()["outputs"], pipes["clf"](text))
    first_items, _ = recorder.calls[0]
    assert len(first_items) == 7  # one merged call, which raised...
    assert sorted(len(items) for items, _ in recorder.calls[1:]) == [1, 1, 1, 1, 1, 2]  # ...then each request alone


def test_an_input_error_found_in_a_batch_names_the_index_within_its_own_request(folders):
    def invalid(items):
        return InvalidInputError(f"text-classify: input {items.index('boom')} is not allowed here; remove it.")

    recorder = Recorder(fresh(folders, "clf"), fail_on="boom", error=invalid)
    requests = [("/models/clf/predict", {"inputs": t}) for t in texts(4)] + \
        [("/models/clf/predict", {"inputs": ["fine", "also fine", "boom"]})]
    with serving([ServedModel("clf", recorder.pipe, predict=recorder)], max_wait_ms=300) as server:
        responses = run_concurrently(server.url, requests)
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 400]
    error = responses[-1].json()["error"]
    assert error["input"] == 2 and "input 2 is not allowed" in error["message"]  # not 6, its index in the batch


def test_batching_off_runs_one_call_per_request(folders):
    recorder = Recorder(fresh(folders, "clf"))
    with serving([ServedModel("clf", recorder.pipe, predict=recorder)], batching=False, max_wait_ms=100) as server:
        responses = run_concurrently(server.url, [("/models/clf/predict", {"inputs": t}) for t in texts(8)])
    assert all(r.status_code == 200 for r in responses)
    assert [len(items) for items, _ in recorder.calls] == [1] * 8


def test_the_token_budget_closes_text_batches(folders):
    recorder = Recorder(fresh(folders, "clf"))
    inputs = [f"{'good food ' * 4}{i}" for i in range(8)]  # 41-42 bytes: 12 tokens each
    assert {text_cost(t) for t in inputs} == {12}
    with serving([ServedModel("clf", recorder.pipe, predict=recorder)], max_wait_ms=150,
                 max_batch_tokens=30) as server:
        responses = run_concurrently(server.url, [("/models/clf/predict", {"inputs": t}) for t in inputs])
    assert all(r.status_code == 200 for r in responses)
    sizes = [len(items) for items, _ in recorder.calls]
    assert sum(sizes) == 8 and max(sizes) == 2  # 2 x 12 <= 30 < 3 x 12


def test_options_key_shares_scalars_and_isolates_the_rest():
    assert options_key({"top_k": 2, "stride": 4}) == options_key({"stride": 4, "top_k": 2})
    assert options_key({"top_k": 2}) != options_key({"top_k": 3}) != options_key({})
    assert options_key({"history": ["a", "b"]}) is None  # per-user lists: never merged
    assert options_key({"seed": 0}) is None  # sampling depends on the batch


def _malformed(i: int) -> tuple[str, object]:
    kind = i % 6
    if kind == 0:
        return "/models/clf/predict", {"inputs": ""}
    if kind == 1:
        return "/models/clf/predict", {"inputs": ["fine", 12]}
    if kind == 2:
        return "/models/clf/predict", b'{"inputs": ["unterminated'
    if kind == 3:
        return "/models/clf/predict", {"inputs": "fine", "options": {"top_k": 0}}
    if kind == 4:
        return "/v2/models/clf/infer", {"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["a"]}]}
    return "/v2/models/clf/infer", {"inputs": [{"name": "text", "shape": [1], "datatype": "FP32", "data": [1.0]}]}


def test_1000_requests_at_concurrency_32_with_10_percent_malformed(folders, pipes):
    pool = texts(50)
    reference = dict(zip(pool, pipes["clf"](pool)))
    requests, expected = [], []
    for i in range(1000):
        if i % 10 == 3:
            requests.append(_malformed(i // 10))
            expected.append(None)
            continue
        text = pool[i % len(pool)]
        if i % 2:
            requests.append(("/models/clf/predict", {"inputs": text}))
        else:
            requests.append(("/v2/models/clf/infer", {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES",
                                                                  "data": [text]}]}))
        expected.append(reference[text])
    with serving([f"clf=text-classify:{folders['clf']}"], max_wait_ms=2) as server:
        started = time.monotonic()
        responses = run_concurrently(server.url, requests, concurrency=32)
        elapsed = time.monotonic() - started
        alive = httpx.get(f"{server.url}/v2/health/ready")
        batches = server.app.state.hub.metrics.sample("hub_batch_size_count", {"model": "clf"})
    assert alive.status_code == 200
    statuses = [r.status_code for r in responses]
    assert not [s for s in statuses if s >= 500]
    for (path, _), response, want in zip(requests, responses, expected):
        if want is None:
            assert 400 <= response.status_code < 500, response.text
            continue
        assert response.status_code == 200, response.text
        body = response.json()
        if path.startswith("/v2"):
            label, score = body["outputs"]
            assert label["data"] == [want["label"]] and score["data"] == pytest.approx([want["score"]], abs=1e-5)
        else:
            assert close(body["outputs"], want)
    assert batches < 900  # merged: fewer pipeline calls than valid requests
    print(f"1000 requests in {elapsed:.1f} s ({1000 / elapsed:.0f}/s), {batches:.0f} pipeline calls")
