"""``hub serve``: every Hub task over HTTP, with dynamic batching, standard protocols and metrics.

>>> from hub.serving import serve, ServeSettings            # doctest: +SKIP
>>> serve(["clf=text-classify", "emb=text-embed"], port=8000)  # blocks; SIGTERM drains

Modules, one job each: :mod:`~hub.serving.settings` (the knobs), :mod:`~hub.serving.models`
(what is served, ``NAME[=MODEL]`` specs), :mod:`~hub.serving.batcher` (dynamic batching per
model), :mod:`~hub.serving.codec` (JSON and files in, JSON out, per-request checks),
:mod:`~hub.serving.app` (the FastAPI app: auth, limits, errors, logs, lifecycle),
:mod:`~hub.serving.metrics` (Prometheus), :mod:`~hub.serving.routes_native` (the Python call
over HTTP), :mod:`~hub.serving.routes_oip` (Open Inference Protocol v2),
:mod:`~hub.serving.server` (uvicorn), :mod:`~hub.serving.ray` (the same app as a Ray Serve
deployment of N replicas, ``hub serve --ray``).

Extending (a new protocol, e.g. OpenAI-compatible routes under ``/v1``): write a module with
a FastAPI ``router = APIRouter(...)`` whose handlers do ``state = get_state(request)``,
``model = state.model(name)`` (404 when unknown), decode the body into a list of inputs and an
options dict, and ``results = await state.infer(request, model, items, options)``: the
per-request checks, batching, queue bound (503), timeout (504), client disconnects and the
error mapping all come with it. Add the module's name to
:data:`hub.serving.app.PROTOCOL_MODULES`; a module-level ``PREFIX`` and
``error_format(status, fields) -> body`` give its routes their protocol's error shape.
Streaming (token by token): ``options = state.admit(model, [item], options)`` (the checks
``infer`` runs before queueing), then ``model.batcher.iterate(lambda: pipe.stream(...))``, an
async iterator of pieces computed in the model's inference thread (taking turns with the
batches), in a ``StreamingResponse`` (``hub.serving.routes_openai`` does this).

Nothing here is imported by ``import hub``; FastAPI and uvicorn are imported when an app is
built (``pip install 'hub-sdk[serve]'``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hub.serving.settings import ServeSettings

if TYPE_CHECKING:
    from hub.serving.app import build_app
    from hub.serving.models import ServedModel
    from hub.serving.server import BackgroundServer, serve

__all__ = ["BackgroundServer", "ServeSettings", "ServedModel", "build_app", "serve"]


def __getattr__(name: str) -> Any:
    if name == "build_app":
        from hub.serving.app import build_app

        return build_app
    if name == "serve":
        from hub.serving.server import serve

        return serve
    if name == "BackgroundServer":
        from hub.serving.server import BackgroundServer

        return BackgroundServer
    if name == "ServedModel":
        from hub.serving.models import ServedModel

        return ServedModel
    raise AttributeError(f"module 'hub.serving' has no attribute {name!r}")
