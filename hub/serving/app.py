"""The ASGI application of ``hub serve``: :func:`build_app`.

Why FastAPI (on Starlette, served by uvicorn): request parsing, multipart uploads (through
python-multipart), routing, exception handlers and the OpenAPI page (``/docs``) come from
well-kept, widely deployed libraries, so no HTTP is written here; uvicorn brings HTTP/1.1
keep-alive, the event loop and graceful shutdown on ``SIGTERM`` (it stops accepting, lets
in-flight requests finish, then runs the app's shutdown, which drains the batchers). Starlette
alone would do, but FastAPI's routers and generated docs make the protocol modules (native, OIP,
and those added later) independent files that each add an ``APIRouter``.

What the app adds around the routes, in one pure-ASGI middleware (so it sees every request,
unmatched ones and body-limit failures included, without BaseHTTPMiddleware's overhead):

* a request id (the client's ``X-Request-ID`` when sane, else a new one), echoed in the response
  header and in every error body, and one structured (JSON) log line per request;
* ``Authorization: Bearer <key>`` on every route except the health routes when a key is set
  (compared in constant time);
* the body size limit (``413``), from ``Content-Length`` at once, else while the body streams;
* metrics (requests by model/route/status, latency, in-flight);
* errors as JSON in the shape of the route's protocol, never a traceback (a 500 names the
  request id; the traceback goes to the log).

Routes reach the models through :class:`ServingState` (``request.app.state.hub``); its
:meth:`ServingState.infer` is the one way into a model's batcher (checks, queue, timeout,
client disconnect). The protocols are the modules of :data:`PROTOCOL_MODULES`, each an
``APIRouter``; adding one is adding a module (see the package docstring).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import importlib
import itertools
import json
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from hub.errors import HubError, InvalidInputError
from hub.serving.batcher import Batcher
from hub.serving.codec import check_items
from hub.serving.errors import ClientDisconnected, ServeError, describe
from hub.serving.metrics import Metrics
from hub.serving.models import ServedModel
from hub.serving.settings import ServeSettings

access_log = logging.getLogger("hub.serving.access")
logger = logging.getLogger("hub.serving")

#: the protocol modules whose ``router`` (a FastAPI APIRouter) every app includes; a module may
#: also define ``PREFIX`` and ``error_format(status, fields) -> body`` to give the routes under
#: that prefix its protocol's error shape (see :func:`add_error_format`)
PROTOCOL_MODULES: list[str] = ["hub.serving.routes_native", "hub.serving.routes_oip", "hub.serving.routes_openai"]
#: the routes that answer without authentication (liveness and readiness probes)
PUBLIC_PATHS = {"/health", "/v2/health/live", "/v2/health/ready"}
#: ``formatter(status, fields) -> body`` for the error bodies of routes under a path prefix
ErrorFormatter = Callable[[int, dict[str, Any]], Any]
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
#: new request ids: a random prefix per process (replicas never collide) and a counter (no
#: urandom system call per request, as uuid4 makes)
_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """A request id unique across processes, 32 hex digits as a UUID's: 16 random ones (per
    process) and a counter."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def native_error(status: int, fields: dict[str, Any]) -> Any:
    """The native error body: ``{"error": {"type", "message", "request_id", "input"?}}``."""
    return {"error": fields}


class ServingState:
    """What the routes share: the settings, the served models, the metrics and the error shapes.

    Args:
        models: the served models.
        settings: the knobs.
        replica: the Ray Serve replica id this app runs in (labels its metrics); empty in one
            process.
    """

    def __init__(self, models: Iterable[ServedModel], settings: ServeSettings, replica: str = "") -> None:
        self.settings = settings
        self.models: dict[str, ServedModel] = {}
        for model in models:
            if model.name in self.models:
                raise InvalidInputError(f"two models are served as {model.name!r}; give each its own name.")
            self.models[model.name] = model
        self.replica = replica
        self.metrics = Metrics(replica)
        self.api_key = settings.resolved_api_key
        self.public_paths = set(PUBLIC_PATHS)
        self.error_formats: list[tuple[str, ErrorFormatter]] = []
        self.draining = False
        #: HTTP requests being answered now (every route); the batchers dispatch at once when
        #: all of them are queued (``dispatch_when_idle``)
        self.in_flight = 0
        in_flight = (lambda: self.in_flight) if settings.dispatch_when_idle else None
        for model in self.models.values():
            if model.batcher is None:
                model.batcher = Batcher(model.name, model.predict, max_batch_size=settings.max_batch_size,
                                        max_wait_ms=settings.max_wait_ms, max_batch_tokens=settings.max_batch_tokens,
                                        max_queue=settings.max_queue, batching=settings.batching,
                                        retry_after_s=settings.retry_after_s, observer=self.metrics,
                                        in_flight=in_flight)
        self._batchers = [m.batcher for m in self.models.values()]

    def request_started(self) -> None:
        """Count a request the middleware took in."""
        self.in_flight += 1
        self.metrics.inflight.inc()

    def request_finished(self) -> None:
        """Count a request answered (or gone), and let batches being gathered re-check
        whether everyone left in flight is queued."""
        self.in_flight -= 1
        self.metrics.inflight.dec()
        for batcher in self._batchers:
            batcher.poke()

    @property
    def ready(self) -> bool:
        """Ready for traffic: every model loaded and not shutting down."""
        return not self.draining and all(m.ready for m in self.models.values())

    def model(self, name: str) -> ServedModel:
        """The served model called ``name``; 404 naming the served ones otherwise."""
        try:
            return self.models[name]
        except KeyError:
            served = ", ".join(sorted(self.models)) or "none"
            raise ServeError(404, "model_not_found", f"no model is served as {name!r}; served: {served}.") from None

    def error_format(self, path: str) -> ErrorFormatter:
        """The error shape of the route at ``path`` (longest registered prefix; else native)."""
        best, formatter = -1, native_error
        for prefix, candidate in self.error_formats:
            if path.startswith(prefix) and len(prefix) > best:
                best, formatter = len(prefix), candidate
        return formatter

    async def infer(self, request: Any, model: ServedModel, items: list[Any], options: Mapping[str, Any], *,
                    single: bool = False) -> list[Any]:
        """Run one request's inputs through ``model``'s batcher and wait for its results.

        The inputs are checked first (count, :func:`hub.serving.codec.check_items`) and the
        options by the pipeline's own keyword checks, so a bad request never enters a batch.
        The wait is bounded by the request's timeout (``504``) and ends early, dropping the
        work, when the client disconnects.

        Args:
            request: the Starlette request (for its id, arrival time and disconnects).
            model: the served model.
            items: the decoded inputs (a list, even for one input).
            options: the call options.
            single: the request was one input, not a list (the Python call's distinction: a
                lone run then calls the pipeline on that input itself).

        Returns:
            One result per input, in order.

        Raises:
            HubError: a bad input or option (``400``), also when the pipeline found it.
            ServeError: ``503`` (queue full, not ready), ``504`` (timeout).
            ClientDisconnected: the client left.
        """
        options = self.admit(model, items, options)
        if not items:
            return []
        return await self.wait(request, model.batcher.submit(items, options, single=single,
                                                             request_id=request_id(request)))

    def admit(self, model: ServedModel, items: list[Any], options: Mapping[str, Any] | None) -> dict[str, Any]:
        """The checks every request passes before its work is queued (:meth:`infer`, and the
        streaming routes, which hand their work to ``model.batcher.iterate`` themselves).

        Args:
            model: the served model.
            items: the decoded inputs (a list, even for one input).
            options: the call options.

        Returns:
            The options as a dict, checked by the pipeline's own keyword checks.

        Raises:
            HubError: too many inputs, a bad input or option (``400``).
            ServeError: ``503`` when the model is not ready.
        """
        limit = self.settings.max_inputs_per_request
        if len(items) > limit:
            raise InvalidInputError(f"{model.task}: a request may carry at most {limit} inputs "
                                    f"(--max-inputs-per-request), got {len(items)}; split it.")
        options = model.check_options(options)
        if not items:
            return options
        check_items(items, task=model.task, modality=model.modality, pipeline=model.pipeline)
        if not model.ready or model.batcher is None:
            raise ServeError(503, "not_ready", f"model {model.name!r} is not ready; retry shortly.",
                             {"Retry-After": str(self.settings.retry_after_s)})
        return options

    async def wait(self, request: Any, awaitable: Awaitable[Any]) -> Any:
        """Await ``awaitable`` within the request's remaining time, cancelling it when the
        client disconnects (:class:`ClientDisconnected`) or the time is up (``504``)."""
        started = request.scope.get("state", {}).get("hub_started", time.monotonic())
        remaining = self.settings.request_timeout_s - (time.monotonic() - started)
        task = asyncio.ensure_future(awaitable)
        watcher = asyncio.ensure_future(_wait_for_disconnect(request))
        try:
            done, _ = await asyncio.wait({task, watcher}, timeout=max(remaining, 0.0),
                                         return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            watcher.cancel()
        if task in done:
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        if watcher in done:
            raise ClientDisconnected()
        raise ServeError(504, "timeout", f"no answer within request_timeout_s={self.settings.request_timeout_s:g} s "
                         "(queue and inference); the work was dropped. Retry, send fewer inputs, or raise "
                         "--request-timeout.")


async def _wait_for_disconnect(request: Any) -> None:
    """Return when the client disconnects (the ASGI ``http.disconnect`` message); the body has
    been read by then, so ``receive`` has nothing else to deliver."""
    while True:
        message = await request.receive()
        if message.get("type") == "http.disconnect":
            return


def request_id(request: Any) -> str:
    """The id of the request being answered (set by the middleware)."""
    return request.scope.get("state", {}).get("request_id", "")


def get_state(request: Any) -> ServingState:
    """The :class:`ServingState` of the app answering ``request``."""
    return request.app.state.hub


def add_error_format(app: Any, prefix: str, formatter: ErrorFormatter) -> None:
    """Give the routes under ``prefix`` their protocol's error body (e.g. OIP's
    ``{"error": "<message>"}``); the longest matching prefix wins.

    Args:
        app: the app from :func:`build_app`.
        prefix: a path prefix such as ``"/v2"``.
        formatter: ``formatter(status, fields) -> JSON body``; ``fields`` has ``type``,
            ``message``, ``request_id`` and maybe ``input``.
    """
    app.state.hub.error_formats.append((prefix, formatter))


def error_response(state: ServingState, path: str, exc: BaseException, rid: str) -> Any:
    """The JSON response for ``exc`` on ``path``: the status of :func:`describe`, the body in
    the route's protocol shape, its headers (``Retry-After``...) and the request id."""
    from starlette.responses import JSONResponse

    status, fields, headers = describe(exc, rid)
    if status >= 500:
        logger.error("request %s failed: %s", rid, exc, exc_info=status == 500)
    return JSONResponse(state.error_format(path)(status, fields), status_code=status,
                        headers={**headers, "X-Request-ID": rid})


class _HubMiddleware:
    """Request id, auth, body limit, metrics, the access log and last-resort errors."""

    def __init__(self, app: Any, state: ServingState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = self.state
        started = time.monotonic()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        given = headers.get("x-request-id", "")
        rid = given if _REQUEST_ID.match(given) else new_request_id()
        scope.setdefault("state", {}).update(request_id=rid, hub_started=started)
        path = scope.get("path", "")
        status_box = [0]
        recorded = [False]

        def record(status: int) -> None:
            """Count and log the request once, just before its answer's last byte is sent (a
            client never sees its answer before the metrics and the log line do)."""
            if not recorded[0]:
                recorded[0] = True
                state.request_finished()
                self._record(scope, path, status, time.monotonic() - started, rid)

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status_box[0] = message["status"]
                message.setdefault("headers", [])
                if not any(k.lower() == b"x-request-id" for k, _ in message["headers"]):
                    message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                record(status_box[0])
            await send(message)

        limit = state.settings.max_body_bytes
        received = [0]

        async def receive_wrapper() -> dict[str, Any]:
            message = await receive()
            if message["type"] == "http.request":
                received[0] += len(message.get("body", b""))
                if received[0] > limit:
                    raise ServeError(413, "body_too_large", f"the request body is over max_body_bytes={limit:,} "
                                     "bytes; send fewer or smaller inputs, or raise --max-body-bytes.")
            return message

        state.request_started()
        try:
            problem = self._precheck(path, headers, limit)
            if problem is not None:
                await error_response(state, path, problem, rid)(scope, receive, send_wrapper)
            else:
                await self.app(scope, receive_wrapper, send_wrapper)
        except ClientDisconnected:
            status_box[0] = 499  # nginx's "client closed request"; nothing is sent
        except Exception as exc:  # noqa: BLE001 - the last resort: a JSON 500, never a traceback
            if status_box[0]:
                raise  # a response already started: nothing clean can be sent
            await error_response(state, path, exc, rid)(scope, receive, send_wrapper)
        finally:
            record(status_box[0] or 500)

    def _precheck(self, path: str, headers: dict[str, str], limit: int) -> ServeError | None:
        state = self.state
        if state.api_key and path not in state.public_paths:
            scheme, _, token = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), state.api_key.encode()):
                return ServeError(401, "unauthorized", "this server needs `Authorization: Bearer <api key>` "
                                  "(the key given to `hub serve --api-key` or HUB_API_KEY).",
                                  {"WWW-Authenticate": "Bearer"})
        length = headers.get("content-length")
        if length is not None and length.strip().isdigit() and int(length) > limit:
            return ServeError(413, "body_too_large", f"the request body ({int(length):,} bytes) is over "
                              f"max_body_bytes={limit:,}; send fewer or smaller inputs, or raise --max-body-bytes.")
        return None

    def _record(self, scope: dict[str, Any], path: str, status: int, seconds: float, rid: str) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        name = scope.get("path_params", {}).get("name", "")
        model = name if name in self.state.models else ""
        self.state.metrics.request_done(model, template, status, seconds)
        if access_log.isEnabledFor(logging.INFO):
            client = scope.get("client")
            access_log.info(json.dumps({
                "request_id": rid, "method": scope.get("method"), "path": path, "route": template, "model": model,
                "status": status, "ms": round(seconds * 1000, 2),
                "client": f"{client[0]}:{client[1]}" if client else None}))


def build_app(models: Iterable[ServedModel | str] | Mapping[str, Any], settings: ServeSettings | None = None, *,
              replica: str = "", **load_options: Any) -> Any:
    """The FastAPI app serving ``models``: native routes (``/models/...``), Open Inference
    Protocol routes (``/v2/...``), ``/health`` and ``/metrics``.

    Args:
        models: :class:`ServedModel` objects, ``NAME[=MODEL]`` specs (loaded now), or a mapping
            ``{name: pipeline or spec}``.
        settings: the knobs (default :class:`ServeSettings`).
        replica: the Ray Serve replica the app runs in (:mod:`hub.serving.ray` sets it; its
            metrics then carry a ``replica`` label).
        **load_options: ``device``, ``dtype``, ``revision``, ``quantize``, ``backend`` for the specs
            that are loaded.

    Returns:
        The app; ``app.state.hub`` is its :class:`ServingState`. Serve it with uvicorn
        (:func:`hub.serving.serve` does).
    """
    from hub.serving.errors import require_serve_deps

    require_serve_deps()
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.responses import Response

    from hub._version import __version__
    from hub.serving.models import load_models

    settings = settings or ServeSettings()
    if isinstance(models, Mapping):
        models = [m if isinstance(m, ServedModel) else
                  (load_models([f"{name}={m}"], **load_options)[0] if isinstance(m, str) else ServedModel(name, m))
                  for name, m in models.items()]
    served = load_models(list(models), **load_options)
    state = ServingState(served, settings, replica)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any):
        for model in state.models.values():
            assert model.batcher is not None
            model.batcher.start()
        try:
            yield
        finally:
            state.draining = True
            await asyncio.gather(*(m.batcher.close() for m in state.models.values() if m.batcher is not None))
            logger.info("stopped: every request in flight was answered")

    app = FastAPI(title="Hub model server", version=__version__, lifespan=lifespan,
                  description="Every Hub task over HTTP: native JSON routes, the Open Inference Protocol (v2), "
                              "health and Prometheus metrics; concurrent requests are batched per model.")
    app.state.hub = state

    async def hub_error(request: Any, exc: Exception) -> Any:
        return error_response(state, request.url.path, exc, request_id(request))

    async def http_error(request: Any, exc: StarletteHTTPException) -> Any:
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        error = ServeError(exc.status_code, kind, str(exc.detail), dict(exc.headers or {}))
        return error_response(state, request.url.path, error, request_id(request))

    async def validation_error(request: Any, exc: RequestValidationError) -> Any:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        error = ServeError(400, "invalid_request", f"{where}: {first.get('msg', 'invalid request')}")
        return error_response(state, request.url.path, error, request_id(request))

    app.add_exception_handler(HubError, hub_error)
    app.add_exception_handler(ServeError, hub_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_middleware(_HubMiddleware, state=state)

    @app.get("/health", tags=["health"], summary="Liveness and readiness (no authentication)")
    async def health() -> Any:
        from starlette.responses import JSONResponse

        body = {"status": "ready" if state.ready else ("draining" if state.draining else "loading"),
                "models": {name: m.ready for name, m in state.models.items()}}
        return JSONResponse(body, status_code=200 if state.ready else 503)

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics (text exposition format)")
    async def metrics() -> Any:
        content, media_type = state.metrics.exposition()
        return Response(content, media_type=media_type)

    for name in PROTOCOL_MODULES:
        module = importlib.import_module(name)
        app.include_router(module.router)
        if getattr(module, "error_format", None) is not None:
            add_error_format(app, module.PREFIX, module.error_format)
    return app
