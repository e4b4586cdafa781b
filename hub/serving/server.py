"""Running the app under uvicorn: :func:`serve` (blocking, what ``hub serve`` calls) and
:class:`BackgroundServer` (a server in a thread, for tests, notebooks and benchmarks).

The socket is bound here, before uvicorn starts, so ``port=0`` gives a free port whose number
is known (printed by :func:`serve`, ``.port`` of the background server). It is bound only once
every model has loaded (:func:`serve` builds the app first), so readiness is truthful by
construction: while the models load a probe's connection is refused (not ready), and once the
port answers, ``/v2/health/ready`` says what the models' ``ready`` flags say (an app built
around a :class:`~hub.serving.models.ServedModel` with ``ready=False`` answers ``503`` there
and on ``/v2/models/{name}/ready`` until it is set). Under Ray Serve the proxy does not route to a
replica before its models have loaded (see :mod:`hub.serving.ray`). uvicorn handles
``SIGINT``/``SIGTERM``: it stops accepting connections, lets in-flight requests finish (at most
``graceful_timeout_s``), then runs the app's shutdown, which drains the batchers, and finally
re-raises the signal, so the process ends as terminated by it (exit status 143 for SIGTERM),
as supervisors expect. The app is marked draining (``/v2/health/ready`` answers 503) as soon
as the signal arrives.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
import threading
from collections.abc import Iterable
from typing import Any

from hub.serving.models import LOAD_OPTIONS
from hub.serving.settings import ServeSettings


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on such sockets; with proto 0 every
    # response waited ~40 ms for the client's delayed ACK (Nagle)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        from hub.errors import InvalidInputError

        raise InvalidInputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port "
                                "(0: any free port) or --host.") from None
    sock.listen(2048)  # connections wait in the backlog until uvicorn accepts them, never refused
    sock.set_inheritable(True)
    return sock


def _uvicorn_server(app: Any, settings: ServeSettings) -> Any:
    import uvicorn

    class _Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:  # readiness turns false at once
            state = app.state.hub
            if not state.draining:
                inflight = int(state.metrics.sample("hub_inflight_requests") or 0)
                logging.getLogger("hub.serving").warning(
                    "%s: no longer accepting connections; finishing %d request(s) in flight",
                    signal.Signals(sig).name, inflight)
            state.draining = True
            super().handle_exit(sig, frame)

    config = uvicorn.Config(app, log_level=settings.log_level.lower(), access_log=False, lifespan="on",
                            timeout_graceful_shutdown=int(max(1, settings.graceful_timeout_s)),
                            timeout_keep_alive=5)
    return _Server(config)


def _configure_logging(level: str) -> None:
    """The ``hub.serving`` loggers at ``level``, printed on stderr unless the application
    configured logging itself (a handler here or on the root logger)."""
    log = logging.getLogger("hub.serving")
    log.setLevel(level.upper())
    if not log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        log.addHandler(handler)


def serve(models: Iterable[Any], settings: ServeSettings | None = None, **options: Any) -> None:
    """Serve ``models`` over HTTP until ``SIGINT``/``SIGTERM`` (blocking).

    Args:
        models: ``NAME[=MODEL]`` specs (``"text-classify"``, ``"clf=./my-model"``,
            ``"emb=text-embed:org/name"``), :class:`~hub.serving.models.ServedModel` objects, or
            a mapping ``{name: pipeline or spec}``.
        settings: the knobs; ``**options`` may instead give them by name (``port=8080,
            max_batch_size=16``), and ``device``, ``dtype``, ``revision``, ``quantize``,
            ``backend`` go to :func:`hub.load`.

    Raises:
        MissingExtraError: the ``serve`` extra is not installed.
        InvalidInputError: a bad spec or setting, or the port is taken.
    """
    from hub.serving.app import build_app

    load_options = {k: options.pop(k) for k in LOAD_OPTIONS if k in options}
    settings = (settings or ServeSettings()).replace(**options) if options else (settings or ServeSettings())
    app = build_app(models, settings, **load_options)
    _configure_logging(settings.log_level)
    sock = _bind(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    names = ", ".join(app.state.hub.models)
    shown = f"[{host}]" if ":" in host else host
    sys.stderr.write(f"hub serve: listening on http://{shown}:{port} (models: {names}; "
                     f"auth {'on' if app.state.hub.api_key else 'off'}; "
                     f"batching {'on' if settings.batching else 'off'})\n")
    sys.stderr.flush()
    server = _uvicorn_server(app, settings)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


class BackgroundServer:
    """A server for ``app`` in a background thread on a free loopback port.

    >>> with BackgroundServer(build_app({"clf": pipe})) as server:   # doctest: +SKIP
    ...     httpx.post(f"{server.url}/models/clf/predict", json={"inputs": "hi"})

    Args:
        app: the app from :func:`hub.serving.build_app`.
        host: the interface (loopback by default); port: 0 for any free one.
        settings: for the log level and the graceful-shutdown time (default the app's).
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0,
                 settings: ServeSettings | None = None) -> None:
        self.app = app
        self.settings = settings or app.state.hub.settings
        self._sock = _bind(host, port)
        self.host, self.port = self._sock.getsockname()[:2]
        self.url = f"http://{self.host}:{self.port}"
        self._server = _uvicorn_server(app, self.settings)
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 30.0) -> BackgroundServer:
        """Start and wait until the server accepts connections."""
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name=f"hub-serve-{self.port}", daemon=True)
        self._thread.start()
        import time

        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Shut down as ``SIGTERM`` would (drain, then stop) and wait for the thread."""
        self.app.state.hub.draining = True
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
