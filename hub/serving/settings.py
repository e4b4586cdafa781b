"""The knobs of ``hub serve``: one frozen, checked :class:`ServeSettings`.

Every limit the server enforces lives here, with its default and why, so the CLI, ``hub.serve``
and :func:`hub.serving.build_app` share one definition and one set of checks (a bad value is an
:class:`~hub.errors.InvalidInputError` naming the knob before anything starts). Nothing here
imports FastAPI or torch.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from hub.errors import InvalidInputError
from hub.validate import check_bool, check_int, check_number

#: the environment variable read when no ``api_key`` is given
API_KEY_ENV = "HUB_API_KEY"


@dataclass(frozen=True)
class ServeSettings:
    """How ``hub serve`` listens, batches and limits work.

    Attributes:
        host: the interface to bind; loopback by default, so a server is never exposed by
            accident (``0.0.0.0`` to serve a network).
        port: the TCP port (0: any free port; the bound one is printed).
        api_key: when set, every route but the health routes requires
            ``Authorization: Bearer <api_key>``. ``None`` reads ``HUB_API_KEY``; ``""`` turns
            authentication off even when the variable is set.
        batching: gather concurrent requests into one pipeline call (off: one call per request).
        max_batch_size: at most this many inputs per pipeline call (a larger request runs alone,
            whole).
        max_wait_ms: how long the first request of a batch waits for others to join it (0: take
            what is queued). Requests that arrive while a batch runs join the next one anyway.
            An upper bound: see ``dispatch_when_idle``.
        dispatch_when_idle: when every request the server is answering is already queued, a
            batch goes at once instead of waiting out ``max_wait_ms`` (nobody else can join
            it): a lone request pays no wait, and under load the requests that arrive while a
            batch runs make the next one. Off: always wait ``max_wait_ms`` for a batch that is
            not full (`hub serve --always-wait`; for tests that need a fixed batch composition).
            Any request in flight counts (other models, a streaming completion, a metrics
            scrape), so while one is, a batch waits as before, never longer than ``max_wait_ms``.
        max_batch_tokens: for text inputs, the token budget of one batch (as
            text-embeddings-inference's ``max_batch_tokens``): a text costs an estimate of its
            tokens (UTF-8 bytes / 4 + 2), other inputs 1; a batch closes before the request that
            would pass the budget.
        max_queue: requests waiting per model; past it a request gets ``503`` with
            ``Retry-After`` at once instead of waiting towards a timeout.
        max_body_bytes: the largest request body (``413`` past it), read before parsing.
        max_inputs_per_request: the most inputs one request may carry (``400`` past it).
        request_timeout_s: from arrival to answer (queue + inference); ``504`` past it. Work
            that has not started is dropped; a running batch finishes, its result discarded.
        retry_after_s: the ``Retry-After`` a ``503`` carries.
        graceful_timeout_s: on ``SIGTERM``, how long in-flight requests may take to finish.
        log_level: the level of the ``hub.serving`` loggers (one access line per request).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    batching: bool = True
    max_batch_size: int = 32
    max_wait_ms: float = 5.0
    dispatch_when_idle: bool = True
    max_batch_tokens: int = 16384
    max_queue: int = 256
    max_body_bytes: int = 32 * 1024 * 1024
    max_inputs_per_request: int = 1024
    request_timeout_s: float = 60.0
    retry_after_s: int = 1
    graceful_timeout_s: float = 30.0
    log_level: str = "info"

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host.strip():
            raise InvalidInputError(f"host must be an interface name or address such as '127.0.0.1', "
                                    f"got {self.host!r}.")
        check_int("port", self.port, minimum=0, maximum=65535)
        if self.api_key is not None and not isinstance(self.api_key, str):
            raise InvalidInputError(f"api_key must be a string (or None to read {API_KEY_ENV}), "
                                    f"got a {type(self.api_key).__name__}.")
        check_bool("batching", self.batching)
        check_int("max_batch_size", self.max_batch_size, minimum=1)
        check_number("max_wait_ms", self.max_wait_ms, minimum=0, maximum=60_000)
        check_bool("dispatch_when_idle", self.dispatch_when_idle)
        check_int("max_batch_tokens", self.max_batch_tokens, minimum=1)
        check_int("max_queue", self.max_queue, minimum=1)
        check_int("max_body_bytes", self.max_body_bytes, minimum=1)
        check_int("max_inputs_per_request", self.max_inputs_per_request, minimum=1)
        check_number("request_timeout_s", self.request_timeout_s, above=0)
        check_int("retry_after_s", self.retry_after_s, minimum=1)
        check_number("graceful_timeout_s", self.graceful_timeout_s, minimum=0)
        levels = ("critical", "error", "warning", "info", "debug")
        if not isinstance(self.log_level, str) or self.log_level.lower() not in levels:
            raise InvalidInputError(f"log_level must be one of {', '.join(levels)}, got {self.log_level!r}.")

    @property
    def resolved_api_key(self) -> str | None:
        """The key requests must carry: ``api_key``, else ``$HUB_API_KEY``; ``None``: no auth."""
        key = self.api_key if self.api_key is not None else os.environ.get(API_KEY_ENV)
        return key or None

    def replace(self, **changes: Any) -> ServeSettings:
        """A copy with ``changes`` (checked like the constructor's arguments).

        Args:
            **changes: knob names and values (an unknown name is an InvalidInputError).

        Returns:
            The new settings.
        """
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise InvalidInputError(f"unknown serve setting(s) {', '.join(map(repr, unknown))}; known: "
                                    f"{', '.join(sorted(known))}.")
        return dataclasses.replace(self, **changes)
