"""Errors of the server and how each becomes an HTTP status and a JSON body.

One mapping for every route: a :class:`~hub.errors.HubError` from validation or from the
pipeline is the client's input problem (``400``, its message naming the input index and the
fix); :class:`ServeError` carries the server's own statuses (401, 404, 413, 503 + Retry-After,
504); anything else is a ``500`` whose body names only the request id (the traceback goes to
the server log, never to the client). The body's shape belongs to the protocol the route
speaks: the native one is ``{"error": {"type", "message", "request_id", "input"?}}``; other
protocols register their own shape with :func:`hub.serving.app.add_error_format`.
"""

from __future__ import annotations

import re
from typing import Any

from hub.errors import HubError

#: what to install when the serving libraries are missing
SERVE_EXTRA = "pip install 'hub-sdk[serve]'"


class MissingExtraError(HubError, ImportError):
    """An optional dependency of a feature is not installed; the message names the extra."""


def require_serve_deps() -> None:
    """Check that FastAPI, uvicorn, prometheus-client and python-multipart are installed, so a
    missing one is one clear error naming the extra rather than an ImportError mid-request."""
    from importlib.util import find_spec

    missing = []
    for modules, dist in ((("fastapi",), "fastapi"), (("uvicorn",), "uvicorn"),
                          (("prometheus_client",), "prometheus-client"),
                          (("python_multipart", "multipart"), "python-multipart")):
        try:
            found = any(find_spec(module) is not None for module in modules)
        except (ImportError, ValueError):  # a module set to None in sys.modules, a broken parent
            found = False
        if not found:
            missing.append(dist)
    if missing:
        raise MissingExtraError(f"`hub serve` needs {', '.join(missing)}, not installed; install the "
                                f"serving extra: {SERVE_EXTRA}")


class ServeError(Exception):
    """An error the server answers with a given status (not the client's input problem).

    Args:
        status: the HTTP status.
        type: a short machine-readable name (``"unauthorized"``, ``"overloaded"``, ...).
        message: what happened and what to do.
        headers: extra response headers (``Retry-After``, ``WWW-Authenticate``).
    """

    def __init__(self, status: int, type: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.type, self.message = status, type, message
        self.headers = dict(headers or {})


class ClientDisconnected(Exception):
    """The client went away before its answer was ready; its work was dropped."""


_INPUT_INDEX = re.compile(r"\binput (\d+)\b")


def input_index(message: str) -> int | None:
    """The input index a Hub error message names ("input 3 is an empty string"), if any."""
    match = _INPUT_INDEX.search(message)
    return int(match.group(1)) if match else None


def describe(exc: BaseException, request_id: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    """``(status, error fields, headers)`` for an exception raised while answering a request.

    Args:
        exc: the exception.
        request_id: the request's id, quoted in every error (and the only detail of a 500).

    Returns:
        The HTTP status; ``{"type", "message", "request_id"}`` plus ``"input"`` (the input
        index) when the message names one; response headers.
    """
    if isinstance(exc, ServeError):
        return exc.status, {"type": exc.type, "message": exc.message, "request_id": request_id}, exc.headers
    if isinstance(exc, HubError):
        message = str(exc)
        fields: dict[str, Any] = {"type": type(exc).__name__, "message": message, "request_id": request_id}
        index = input_index(message)
        if index is not None:
            fields["input"] = index
        return 400, fields, {}
    return 500, {"type": "internal_error", "request_id": request_id,
                 "message": f"the server failed on this request (id {request_id}); its log has the details."}, {}
