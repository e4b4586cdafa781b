"""The extension points other protocols build on: a protocol module added to
``PROTOCOL_MODULES`` gets its routes, its error shape and the whole request path (checks,
batching, errors) through ``state.infer``; ``Batcher.iterate`` streams a generator computed in
the model's inference thread."""

from __future__ import annotations

import asyncio
import sys
import threading
import types

import httpx
import pytest
from fastapi import APIRouter, Request

from hub.serving import app as serving_app
from hub.serving.batcher import Batcher
from hub.serving.models import ServedModel
from tests.serving.conftest import fresh, serving


def _echo_protocol() -> types.ModuleType:
    module = types.ModuleType("tests.serving._echo_protocol")
    module.PREFIX = "/echo"
    module.router = APIRouter(prefix=module.PREFIX)

    @module.router.post("/{name}")
    async def echo(name: str, request: Request):
        state = serving_app.get_state(request)
        model = state.model(name)
        body = await request.json()
        results = await state.infer(request, model, body["texts"], body.get("options", {}))
        return {"labels": [r["label"] for r in results]}

    module.error_format = lambda status, fields: {"problem": fields["message"], "status": status}
    return module


def test_a_protocol_module_plugs_in(folders, pipes, monkeypatch):
    module = _echo_protocol()
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(serving_app, "PROTOCOL_MODULES", [*serving_app.PROTOCOL_MODULES, module.__name__])
    with serving([ServedModel("clf", fresh(folders, "clf"))]) as server:
        ok = httpx.post(f"{server.url}/echo/clf", json={"texts": ["good food", "stale tea"]})
        bad = httpx.post(f"{server.url}/echo/clf", json={"texts": ["good", ""]})
        missing = httpx.post(f"{server.url}/echo/nope", json={"texts": ["x"]})
        native = httpx.post(f"{server.url}/models/clf/predict", json={"inputs": ""})
    assert ok.json() == {"labels": [r["label"] for r in pipes["clf"](["good food", "stale tea"])]}
    assert bad.status_code == 400 and bad.json() == {"problem": "text-classify: input 1 is an empty string; pass "
                                                                "some text.", "status": 400}
    assert missing.status_code == 404 and "no model is served as 'nope'" in missing.json()["problem"]
    assert native.json()["error"]["type"] == "InvalidInputError"  # the other routes keep their shape


def test_iterate_streams_in_the_inference_thread_and_stops_early():
    threads, produced = [], []

    def pieces(n):
        for i in range(n):
            threads.append(threading.current_thread().name)
            produced.append(i)
            yield f"piece {i}"

    def failing():
        yield "first"
        raise ValueError("broke mid-stream")

    async def main():
        batcher = Batcher("gen", lambda items, **o: items)
        batcher.start()
        try:
            whole = [p async for p in batcher.iterate(lambda: pieces(5))]
            early = []
            async for piece in batcher.iterate(lambda: pieces(1000)):
                early.append(piece)
                if len(early) == 2:
                    break
            got = []
            with pytest.raises(ValueError, match="broke mid-stream"):
                async for piece in batcher.iterate(failing):
                    got.append(piece)
            batch = await batcher.submit(["a", "b"], {})
        finally:
            await batcher.close()
        return whole, early, got, batch

    whole, early, got, batch = asyncio.run(main())
    assert whole == [f"piece {i}" for i in range(5)] and early == ["piece 0", "piece 1"]
    assert got == ["first"] and batch == ["a", "b"]
    assert len(produced) <= 5 + 2 + 16 + 1  # the early stop ended the producer (at most `ahead` pieces ahead)
    assert set(threads) and all(name.startswith("hub-infer-gen") for name in threads)
