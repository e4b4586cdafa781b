"""Dynamic batching across concurrent HTTP requests: requests are merged into one pipeline call
(and the answers do not change), different options never share a call, a failing batch is
retried request by request so only the culprit fails, and 1,000 requests at concurrency 32
with 10 % malformed ones are all answered correctly or refused with a 4xx. ``max_wait_ms`` is only
an upper bound: a lone request goes at once, and requests that arrive while a batch runs go
together as the next batch.

(The tests that need several requests to meet in one batch turn ``dispatch_when_idle`` off, so
the requests wait out ``max_wait_ms`` whatever order the threads reach the server in.)"""

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
    with serving([ServedModel("clf", recorder.pipe, predict=recorder)], max_wait_ms=150, dispatch_when_idle=False) as server:
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
    with serving([ServedModel("clf", recorder.pipe, predict=recorder)], max_wait_ms=150, dispatch_when_idle=False) as server:
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
    with serving([ServedModel("clf", recorder.pipe, predict=recorder)], max_wait_ms=2000,
                 dispatch_when_idle=False) as server:
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
                 max_batch_tokens=30, dispatch_when_idle=False) as server:
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


# -- max_wait_ms is an upper bound (dispatch_when_idle) ---------------------------------------
class _Blocking:
    """A predict that records each call; once armed, the next call blocks until released (a
    long batch)."""

    def __init__(self, pipe, armed: bool = True) -> None:
        import threading

        self.pipe = pipe
        self.calls: list[list] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.armed = armed

    def arm(self) -> None:
        self.calls.clear()
        self.entered.clear()
        self.release.clear()
        self.armed = True

    def __call__(self, items, **options):
        inputs = items if isinstance(items, list) else [items]
        self.calls.append(list(inputs))
        if self.armed:
            self.armed = False
            self.entered.set()
            assert self.release.wait(30), "the test never released the batch"
        return self.pipe(items, **options)


def test_batcher_a_lone_request_does_not_wait_out_max_wait_ms():
    import asyncio

    from hub.serving.batcher import Batcher

    calls: list[list] = []

    def predict(items):
        calls.append(list(items))
        return [x.upper() for x in items]

    async def main():
        # a minute of max_wait_ms: a request that waited it out would miss the 20 s bound below
        batcher = Batcher("m", predict, max_wait_ms=60_000, in_flight=lambda: 1)
        batcher.start()
        try:
            return await asyncio.wait_for(batcher.submit(["hi"], {}), 20)
        finally:
            await batcher.close()

    assert asyncio.run(main()) == ["HI"] and calls == [["hi"]]


def test_batcher_requests_that_arrive_while_a_batch_runs_make_the_next_batch():
    import asyncio

    from hub.serving.batcher import Batcher

    recorder = _Blocking(lambda items: [x.upper() for x in items])
    outstanding = [0]

    async def main():
        batcher = Batcher("m", recorder, max_wait_ms=60_000, in_flight=lambda: outstanding[0])

        async def request(text):  # what the app's middleware does: count in, count out, poke
            outstanding[0] += 1
            try:
                return await batcher.submit([text], {})
            finally:
                outstanding[0] -= 1
                batcher.poke()

        batcher.start()
        try:
            first = asyncio.ensure_future(request("a"))
            await asyncio.to_thread(recorder.entered.wait, 20)  # "a" runs alone, at once
            rest = [asyncio.ensure_future(request(t)) for t in "bcdef"]
            while batcher.depth < 5:
                await asyncio.sleep(0.01)
            recorder.release.set()
            return await asyncio.wait_for(asyncio.gather(first, *rest), 20)
        finally:
            await batcher.close()

    assert asyncio.run(main()) == [[t.upper()] for t in "abcdef"]
    assert recorder.calls == [["a"], ["b", "c", "d", "e", "f"]]  # one batch, not five, and no minute's wait


def test_batcher_without_in_flight_waits_for_the_batch_to_fill():
    import asyncio

    from hub.serving.batcher import Batcher

    calls: list[list] = []

    async def main():
        batcher = Batcher("m", lambda items: calls.append(list(items)) or list(items), max_wait_ms=60_000,
                          max_batch_size=3)
        batcher.start()
        try:
            first = asyncio.ensure_future(batcher.submit(["a"], {}))
            await asyncio.sleep(0.2)
            assert not first.done() and calls == []  # waiting for others (max_wait_ms is a minute)
            rest = [asyncio.ensure_future(batcher.submit([t], {})) for t in "bc"]
            return await asyncio.wait_for(asyncio.gather(first, *rest), 20)  # full at 3: goes
        finally:
            await batcher.close()

    assert asyncio.run(main()) == [["a"], ["b"], ["c"]] and calls == [["a", "b", "c"]]


def test_over_http_a_lone_request_goes_at_once_and_concurrent_ones_still_batch(folders, pipes):
    recorder = _Blocking(fresh(folders, "clf"), armed=False)
    inputs = texts(6)
    with serving([ServedModel("clf", recorder.pipe, predict=recorder)], max_wait_ms=60_000) as server:
        lone = httpx.post(f"{server.url}/models/clf/predict", json={"inputs": inputs[0]}, timeout=20)
        assert lone.status_code == 200 and close(lone.json()["outputs"], pipes["clf"](inputs[0]))
        assert recorder.calls == [[inputs[0]]]
        recorder.arm()
        import threading

        results: dict = {}

        def post(i):
            results[i] = httpx.post(f"{server.url}/models/clf/predict", json={"inputs": inputs[i]}, timeout=30)

        threads = [threading.Thread(target=post, args=(0,))]
        threads[0].start()
        assert recorder.entered.wait(20)  # request 0 runs alone at once...
        batcher = server.app.state.hub.models["clf"].batcher
        threads += [threading.Thread(target=post, args=(i,)) for i in range(1, 6)]
        for thread in threads[1:]:
            thread.start()
        deadline = time.monotonic() + 20
        while batcher.depth < 5:  # ...and 1-5 queue meanwhile
            assert time.monotonic() < deadline, "the requests did not queue"
            time.sleep(0.01)
        recorder.release.set()
        for thread in threads:
            thread.join(30)
        metrics = server.app.state.hub.metrics
        calls = metrics.sample("hub_batch_size_count", {"model": "clf"})
    assert [results[i].status_code for i in range(6)] == [200] * 6
    for i in range(6):
        assert close(results[i].json()["outputs"], pipes["clf"](inputs[i]))
    first, second = recorder.calls  # the 5 queued requests: one call (in arrival order), no minute's wait
    assert first == [inputs[0]] and sorted(second) == sorted(inputs[1:])
    assert calls == 3  # the lone request, then these two
