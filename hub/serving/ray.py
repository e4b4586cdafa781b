"""Scale-out: the same ``hub serve`` application as a Ray Serve deployment of N replicas.

>>> from hub.serving import ServeSettings                                   # doctest: +SKIP
>>> from hub.serving.ray import build_ray_app, start_ray
>>> app = build_ray_app(["clf=text-classify"], ServeSettings(port=8000), replicas=4)
>>> server = start_ray(app, address="auto")   # on a running cluster; server.url, server.stop()

or from the command line, ``hub serve clf=text-classify --ray --replicas 4 --ray-address auto``.

Every replica is an ordinary Hub app (:func:`hub.serving.build_app`): it loads the models
itself (through :func:`hub.load`, so plugins and catalogue models work as in one process),
answers the same routes (native, Open Inference Protocol, ``/health``, ``/metrics``) with the
same errors, limits and auth, and batches with **Hub's own batchers**, one per model per
replica. Ray Serve's HTTP proxy (one per node) takes the connections and spreads the requests
over the replicas; Ray places the replicas on the cluster's nodes and restarts failed ones.

Why Hub's batchers and not Ray Serve's ``@serve.batch``: ``@serve.batch`` gathers calls of one
Python method and hands the list to one function; it knows nothing of the pipeline's contract.
It would batch requests with different call options together (or need one method per option
set), count inputs rather than a token budget, and when the function raises, every request of
the batch gets the exception (the LitServe / TorchServe failure the batcher was written to
avoid). Hub's :class:`~hub.serving.batcher.Batcher` checks each request before it queues, keys
batches by the options, honours ``max_batch_tokens``, retries a failed batch one request at a
time so only the culprit fails, and answers ``503`` past ``max_queue``. So Ray Serve does what
it is good at (placement, replicas, routing, restarts) and the replica's app is exactly
``hub serve``. Each replica's ``max_ongoing_requests`` is ``max_queue + max_batch_size`` so the
proxy hands a replica enough concurrent requests for its batcher to fill batches (Ray's
default of a handful per replica would cap every batch at that many requests).

How the app reaches the replicas: ``@serve.ingress`` is given a small picklable ASGI object
(:class:`ReplicaApp`) holding only the model *specs* and the settings, never loaded weights;
on the replica's ASGI startup it builds the Hub app (loading the models, off the event loop)
and hands the lifespan to it, which starts the batchers; on shutdown Ray runs the lifespan's
end, which drains them. Every response carries ``X-Hub-Replica`` (the Ray replica id), so a
client or a test can see which replica answered.

* Readiness: a replica takes traffic only once its models have loaded (its ASGI startup builds
  the app); until one has, ``/v2/health/ready`` through the proxy is a 404 (no route yet) or
  is held by the proxy until a replica is up, never a 200.
* Metrics: ``GET /metrics`` through the proxy reaches one replica per request; every sample
  carries ``replica="<id>"`` (the ``X-Hub-Replica`` of that answer), so scrapes keep each
  replica's counters apart and a sum over ``replica`` is the application's. Ray Serve's own
  metrics (each node's metrics agent) cover the proxies.
* Draining: deleting the application (``serve.delete``, what ``hub serve --ray`` does on
  ``SIGTERM``) lets each replica finish the requests in flight, queued ones included, for up to
  ``graceful_timeout_s``, before its batchers stop.

On a real cluster::

    ray start --head --port 6379                      # on the head machine
    ray start --address HEAD_IP:6379                  # on every other machine
    hub serve clf=text-classify --ray --ray-address auto --replicas 4 --host 0.0.0.0 --port 8000

Every node needs Hub (and any plugin) installed in the same Python environment, and the model
specs must resolve there: a task or catalogue name, a Hugging Face repo id, or a folder present
at the same path on each node. Ray Serve runs one HTTP proxy per node on ``--host:--port``; the
first Serve instance on a cluster fixes them (a later ``--port`` is ignored by Ray while Serve
keeps running). Stopping the command (``Ctrl-C``/``SIGTERM``) deletes the application from the
cluster; the replicas drain what is in flight first.

Needs the ``ray`` extra: ``pip install 'hub-sdk[ray]'`` (``ray[serve]``), besides ``serve``.
"""

from __future__ import annotations

import asyncio
import inspect
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hub.errors import InvalidInputError
from hub.serving.errors import MissingExtraError, require_serve_deps
from hub.serving.models import LOAD_OPTIONS
from hub.serving.settings import ServeSettings

#: what to install when Ray Serve is missing
RAY_EXTRA = "pip install 'hub-sdk[ray]'"
#: the response header naming the replica that answered
REPLICA_HEADER = "x-hub-replica"
#: the Serve application's default name on the cluster
DEFAULT_APP_NAME = "hub"


def require_ray() -> Any:
    """``ray.serve`` (and the serving libraries), or a :class:`MissingExtraError` naming the extra."""
    require_serve_deps()
    try:
        from ray import serve
    except ImportError as exc:
        raise MissingExtraError(f"`hub serve --ray` needs Ray Serve ({exc.name or 'ray'} is not installed); "
                                f"install the ray extra: {RAY_EXTRA}") from None
    return serve


def _replica_id() -> str:
    """This replica's id in Ray Serve (``replica_id.unique_id``; ``replica_tag`` in older Ray)."""
    try:
        from ray import serve

        context = serve.get_replica_context()
    except Exception:  # not inside a replica
        return ""
    replica = getattr(context, "replica_id", None)
    unique = getattr(replica, "unique_id", None)
    return str(unique or getattr(context, "replica_tag", "") or "")


class ReplicaApp:
    """The ASGI app of one replica: builds Hub's app from specs when the replica starts.

    Picklable (specs and settings only), so ``@serve.ingress`` can ship it to every replica;
    the weights are loaded there, not on the machine that deploys.

    Args:
        specs: ``NAME[=MODEL]`` strings (see :mod:`hub.serving.models`).
        settings: the knobs of every replica's app.
        load_options: ``device``, ``dtype``, ``revision``, ``quantize``, ``backend`` for :func:`hub.load`.
        on_start: ``on_start(app)``, called in each replica once its app is built (models
            loaded) and before it takes traffic: warm-up calls, wrapping a model's ``predict``
            (tracing, a test's slow model). Shipped to the replicas with Ray's cloudpickle.
    """

    def __init__(self, specs: list[str], settings: ServeSettings, load_options: dict[str, Any],
                 on_start: Callable[[Any], None] | None = None) -> None:
        self.specs = list(specs)
        self.settings = settings
        self.load_options = dict(load_options)
        self.on_start = on_start
        self.app: Any = None
        self.replica = ""

    def __getstate__(self) -> dict[str, Any]:
        return {"specs": self.specs, "settings": self.settings, "load_options": self.load_options,
                "on_start": self.on_start}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["specs"], state["settings"], state["load_options"], state.get("on_start"))

    def build(self) -> Any:
        """Load the models and build the Hub app (once per replica)."""
        if self.app is None:
            from hub.serving.app import build_app
            from hub.serving.server import _configure_logging

            _configure_logging(self.settings.log_level)
            self.replica = _replica_id()
            app = build_app(self.specs, self.settings, replica=self.replica, **self.load_options)
            if self.on_start is not None:
                self.on_start(app)
            self.app = app
        return self.app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan" and self.app is None:
            await asyncio.to_thread(self.build)  # model loading off the replica's event loop
        if self.app is None:  # a request before startup finished (Ray should never route one)
            from starlette.responses import JSONResponse

            response = JSONResponse({"error": {"type": "not_ready", "message": "this replica is still loading its "
                                               "models; retry shortly."}}, status_code=503,
                                    headers={"Retry-After": str(self.settings.retry_after_s)})
            await response(scope, receive, send)
            return
        if scope["type"] != "http" or not self.replica:
            await self.app(scope, receive, send)
            return
        header = (REPLICA_HEADER.encode("latin-1"), self.replica.encode("latin-1"))
        # Ray's proxy gives each request an id (the client's X-Request-ID, else its own), passes it
        # in, and adds it to the response: Hub's app echoes the same id, which would appear twice
        given = {v for k, v in scope.get("headers", []) if k.lower() == b"x-request-id"}

        async def send_with_replica(message: dict[str, Any]) -> None:
            if message.get("type") == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", [])
                        if not (k.lower() == b"x-request-id" and v in given)]
                message = {**message, "headers": [*kept, header]}
            await send(message)

        await self.app(scope, receive, send_with_replica)


def _spec_strings(models: Iterable[Any] | Mapping[str, Any]) -> list[str]:
    """``NAME[=MODEL]`` strings for the replicas, checked here so a bad spec fails before
    anything is deployed. Loaded pipelines cannot be shipped: the replicas load their own."""
    from hub.serving.models import ModelSpec, parse_spec

    if isinstance(models, Mapping):
        items = []
        for name, target in models.items():
            if not isinstance(target, str):
                raise InvalidInputError(f"model {name!r}: a Ray Serve replica loads its own models, so give a spec "
                                        f"(task, catalogue name, folder or TASK:REPO), not a {type(target).__name__}.")
            items.append(f"{name}={target}")
        models = items
    elif isinstance(models, (str, ModelSpec)):
        models = [models]
    specs: list[str] = []
    for model in models:
        if isinstance(model, ModelSpec):
            target = f"{model.load_name}:{model.model}" if model.model else model.load_name
            model = f"{model.name}={target}"
        if not isinstance(model, str):
            raise InvalidInputError(f"a Ray Serve replica loads its own models, so give NAME[=MODEL] specs, not a "
                                    f"{type(model).__name__} (a loaded pipeline cannot be sent to the replicas).")
        parse_spec(model)
        specs.append(model)
    if not specs:
        raise InvalidInputError("no model to serve: pass at least one NAME[=MODEL], e.g. `hub serve text-classify`.")
    names = [parse_spec(s).name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidInputError(f"two models would be served as {', '.join(map(repr, duplicates))}; give each its own "
                                "name: NAME=MODEL.")
    return specs


def build_ray_app(models: Iterable[Any] | Mapping[str, Any], settings: ServeSettings | None = None, *,
                  replicas: int = 1, ray_actor_options: Mapping[str, Any] | None = None,
                  deployment_name: str = "HubServer", on_start: Callable[[Any], None] | None = None,
                  **load_options: Any) -> Any:
    """The Ray Serve application: a deployment of ``replicas`` copies of ``hub serve``'s app.

    Args:
        models: ``NAME[=MODEL]`` specs (or ``{name: spec}``); each replica loads them itself.
        settings: the knobs of every replica's app (batching, limits, auth); ``host``/``port``
            are used by :func:`start_ray` for Ray Serve's HTTP proxy.
        replicas: how many replicas (each loads every model and has its own batchers).
        ray_actor_options: resources per replica, as Ray takes them (default ``{"num_cpus":
            1}``; e.g. ``{"num_gpus": 1}`` to give each replica a GPU).
        deployment_name: the deployment's name within the application.
        on_start: ``on_start(app)`` in each replica after its models load, before traffic
            (see :class:`ReplicaApp`).
        **load_options: ``device``, ``dtype``, ``revision``, ``quantize``, ``backend`` for
            :func:`hub.load` in each replica.

    Returns:
        A bound Ray Serve application, for ``serve.run(app, route_prefix="/")`` or
        :func:`start_ray`.

    Raises:
        MissingExtraError: Ray Serve (or the serving libraries) is not installed.
        InvalidInputError: a bad spec, setting or replica count.
    """
    from hub.validate import check_int

    serve = require_ray()
    settings = settings or ServeSettings()
    check_int("replicas", replicas, minimum=1)
    specs = _spec_strings(models)
    load_options = {k: v for k, v in load_options.items() if v is not None}
    unknown = sorted(set(load_options) - set(LOAD_OPTIONS))
    if unknown:
        raise InvalidInputError(f"unknown load option(s) {', '.join(map(repr, unknown))}; known: "
                                f"{', '.join(LOAD_OPTIONS)}.")
    options: dict[str, Any] = {"name": deployment_name, "num_replicas": replicas,
                               "ray_actor_options": dict(ray_actor_options or {"num_cpus": 1}),
                               "graceful_shutdown_timeout_s": max(1.0, settings.graceful_timeout_s)}
    parameters = inspect.signature(serve.deployment).parameters
    ongoing = settings.max_queue + settings.max_batch_size
    if "max_ongoing_requests" in parameters:
        options["max_ongoing_requests"] = ongoing
    elif "max_concurrent_queries" in parameters:  # Ray < 2.10
        options["max_concurrent_queries"] = ongoing

    class HubServer:
        """One replica: Hub's app, built from the specs when the replica starts."""

    ingress = serve.ingress(ReplicaApp(specs, settings, load_options, on_start))(HubServer)
    return serve.deployment(**options)(ingress).bind()


@dataclass
class RayServer:
    """A Hub application running on Ray Serve (from :func:`start_ray`).

    Attributes:
        url: where Ray Serve's HTTP proxy answers (on this node).
        name: the application's name on the cluster.
        started_ray: whether :func:`start_ray` started or connected Ray (then :meth:`stop`
            disconnects, which also ends a local cluster it started).
    """

    url: str
    name: str
    started_ray: bool

    def stop(self) -> None:
        """Delete the application (its replicas drain what is in flight), then disconnect."""
        import ray
        from ray import serve

        try:
            serve.delete(self.name)
        finally:
            if self.started_ray:
                serve.shutdown()
                ray.shutdown()

    def __enter__(self) -> RayServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_ray(app: Any, settings: ServeSettings | None = None, *, address: str | None = None,
              name: str = DEFAULT_APP_NAME, timeout_s: float = 600.0) -> RayServer:
    """Deploy ``app`` (from :func:`build_ray_app`) on Ray Serve and wait until it is running.

    Args:
        app: the bound application.
        settings: for the HTTP proxy's ``host``/``port`` and its request timeout (default
            :class:`ServeSettings`).
        address: the Ray cluster (``"auto"``: the one ``ray start`` runs on this machine;
            ``"HOST:6379"``; ``None``: a running ``ray.init()`` of this process, else a new
            local Ray). Ignored when Ray is already initialised here.
        name: the application's name on the cluster.
        timeout_s: how long the replicas may take to load their models.

    Returns:
        The running server (``.url``, ``.stop()``).
    """
    import ray

    serve = require_ray()
    settings = settings or ServeSettings()
    started = False
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, logging_level="warning")
        except ConnectionError as exc:
            raise InvalidInputError(f"no Ray cluster at --ray-address {address!r} ({exc}); start one with "
                                    "`ray start --head` (and `ray start --address HEAD:6379` on the other "
                                    "machines), or leave --ray-address out for a local Ray.") from None
        started = True
    # Hub's own timeout (504) answers first; Ray's proxy limit is a backstop above it
    http_options = {"host": settings.host, "port": settings.port,
                    "request_timeout_s": settings.request_timeout_s + 10}
    serve.start(http_options=http_options)
    run = inspect.signature(serve.run).parameters
    kwargs: dict[str, Any] = {"name": name, "route_prefix": "/"}
    if "blocking" in run:
        kwargs["blocking"] = False
    if "_blocking" in run:  # wait for the replicas to be running (Ray >= 2.10: the default)
        kwargs["_blocking"] = True
    if "timeout_s" in run:
        kwargs["timeout_s"] = timeout_s
    serve.run(app, **kwargs)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return RayServer(url=f"http://{host}:{settings.port}", name=name, started_ray=started)


def serve_ray(models: Iterable[Any], settings: ServeSettings | None = None, *, replicas: int = 1,
              address: str | None = None, ray_actor_options: Mapping[str, Any] | None = None,
              **load_options: Any) -> None:
    """``hub serve --ray``: deploy on Ray Serve and block until ``SIGINT``/``SIGTERM``, then
    delete the application (the replicas drain first) and disconnect.

    Args:
        models: ``NAME[=MODEL]`` specs.
        settings: the knobs (``host``/``port`` for Ray Serve's proxies).
        replicas: how many replicas.
        address: the Ray cluster (``"auto"``, ``"HOST:6379"``; ``None``: a local Ray).
        ray_actor_options: resources per replica.
        **load_options: ``device``, ``dtype``, ``revision``, ``quantize``, ``backend``.
    """
    from hub.serving.models import parse_spec

    settings = settings or ServeSettings()
    if settings.port == 0:
        raise InvalidInputError("--ray needs a fixed --port (Ray Serve's proxies bind it on every node); "
                                "0 is only for a single-process server.")
    app = build_ray_app(models, settings, replicas=replicas, ray_actor_options=ray_actor_options, **load_options)
    server = start_ray(app, settings, address=address)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    sys.stderr.write(f"hub serve: listening on {server.url} (Ray Serve, {replicas} replica(s); models: "
                     f"{', '.join(parse_spec(s).name for s in _spec_strings(models))}; "
                     f"auth {'on' if settings.resolved_api_key else 'off'}; "
                     f"batching {'on' if settings.batching else 'off'})\n")
    sys.stderr.flush()
    try:
        while not stop.wait(0.5):
            pass
        sys.stderr.write("hub serve: stopping; the replicas finish what is in flight\n")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop()
